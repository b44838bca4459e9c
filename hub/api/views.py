"""The hub's REST API, /api/v1/. Views validate input, call one selector or service, and
serialize; every view declares its governed action and reads through ``restrict``."""

from __future__ import annotations

import base64
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ParseError, PermissionDenied, ValidationError
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.access import restrict, scope_for
from governance.api.governed import GovernedViewSetMixin
from hub.api import history_json, live_parts
from hub.api import serializers as s
from hub.api.authentication import SiteAgentAuthentication
from hub.api.governed import MANAGE_REGISTRY, SITE_ENROL
from hub.api.live_cache import registry_answer, state_answer
from hub.api.live_output import (
    census_history_rows,
    census_history_values,
    hospital_live_data,
    region_live_data,
)
from hub.api.renderers import SharedJSON, plain_json_accepted, render_json
from hub.census import selectors as census
from hub.census.deadletters import dead_letter_rejections
from hub.census.ingest import IngestBatch, envelope_into_batch, shared_directory
from hub.census.models import CensusSnapshot, FlowEvent
from hub.census.services import census_ingest_batch
from hub.exports import edxl_have, measure_report
from hub.registry import governance_bridge
from hub.registry import selectors as registry_selectors
from hub.registry import services as registry
from hub.registry.models import Directive, Hospital, Region, SiteAgent, TravelTime, Unit

MAX_ENVELOPE_BYTES = 8 * 1024 * 1024

READ_WRITE = {
    "list": "read_hospitals",
    "retrieve": "read_hospitals",
    "create": MANAGE_REGISTRY,
    "update": MANAGE_REGISTRY,
    "partial_update": MANAGE_REGISTRY,
    "destroy": MANAGE_REGISTRY,
}

# What the JSON renderer answers as Content-Type (DRF: the media type, no charset).
JSON = "application/json"

SITE_CODE_PATH = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"


# --- Registry ---------------------------------------------------------------------------------


class RegionViewSet(GovernedViewSetMixin, viewsets.ModelViewSet[Region]):
    """Regions: region-level data, so region-wide roles only (others see their hospital's
    region on the hospital). Changes are the operators'."""

    queryset = Region.objects.all()
    serializer_class = s.RegionSerializer
    governance_actions = READ_WRITE
    lookup_field = "code"
    http_method_names = ("get", "post", "put", "patch", "head", "options")


class HospitalViewSet(GovernedViewSetMixin, viewsets.ModelViewSet[Hospital]):
    """Hospitals of the region with their capabilities; ``?region=<code>`` filters."""

    queryset = Hospital.objects.select_related("region").prefetch_related("units")
    serializer_class = s.HospitalSerializer
    governance_actions = READ_WRITE
    lookup_field = "site_code"
    lookup_value_regex = SITE_CODE_PATH
    http_method_names = ("get", "post", "put", "patch", "head", "options")

    @extend_schema(parameters=[OpenApiParameter("region", str, required=False)])
    def list(  # type: ignore[override]  # an HttpResponse: the shared JSON
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        # The directory changes rarely and every operations screen asks for it: the answer is
        # shared per registry state, caller's scope and exact URL (hub/api/live_cache.py).
        action_name = self.get_governance_action()
        key = (
            "hospitals",
            action_name,
            scope_for(request.user, action_name),
            request.build_absolute_uri(),
        )
        shared: SharedJSON = registry_answer(
            request,
            key,
            lambda: SharedJSON.of(super(HospitalViewSet, self).list(request, *args, **kwargs).data),
        )
        return shared_response(request, shared)

    def get_queryset(self) -> QuerySet[Hospital]:
        qs = super().get_queryset()
        region = self.request.query_params.get("region")
        return qs.filter(region__code=region) if region else qs


class UnitViewSet(GovernedViewSetMixin, viewsets.ModelViewSet[Unit]):
    """Units with their baseline beds; ``?hospital=<site code>`` filters."""

    queryset = Unit.objects.select_related("hospital")
    serializer_class = s.UnitSerializer
    governance_actions = READ_WRITE
    http_method_names = ("get", "post", "put", "patch", "head", "options")

    @extend_schema(parameters=[OpenApiParameter("hospital", str, required=False)])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Unit]:
        qs = super().get_queryset().order_by("hospital__site_code", "code")
        hospital = self.request.query_params.get("hospital")
        return qs.filter(hospital__site_code=hospital) if hospital else qs


class TravelTimeViewSet(GovernedViewSetMixin, viewsets.ModelViewSet[TravelTime]):
    """Ground-ambulance travel times between hospitals; ``?origin=<site code>`` filters."""

    queryset = TravelTime.objects.select_related("origin", "destination")
    serializer_class = s.TravelTimeSerializer
    governance_actions = READ_WRITE

    @extend_schema(parameters=[OpenApiParameter("origin", str, required=False)])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[TravelTime]:
        qs = super().get_queryset()
        origin = self.request.query_params.get("origin")
        return qs.filter(origin__site_code=origin) if origin else qs


class SiteAgentViewSet(
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[SiteAgent],
):
    """Site agents and DE-ID workers: their keys, enrolment state and last heartbeat.

    POST creates a pending agent and returns its one-time enrolment token (shown once).
    """

    queryset = SiteAgent.objects.select_related("hospital")
    serializer_class = s.SiteAgentSerializer
    governance_action = MANAGE_REGISTRY

    @extend_schema(request=s.EnrolmentIssueInput, responses={201: s.EnrolmentIssueOutput})
    def create(self, request: Request) -> Response:
        data = s.EnrolmentIssueInput(data=request.data)
        data.is_valid(raise_exception=True)
        hospital = data.validated_data["hospital"]
        if not restrict(Hospital.objects.filter(pk=hospital.pk), request.user, MANAGE_REGISTRY):
            raise PermissionDenied("not your hospital")
        ticket = registry.agent_enrolment_issue(
            hospital=hospital,
            name=data.validated_data["name"],
            component=data.validated_data["component"],
        )
        out = s.EnrolmentIssueOutput(
            {
                "agent": ticket.agent,
                "enrolment_token": ticket.token,
                "expires_at": ticket.expires_at,
            }
        )
        return Response(out.data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.SiteAgentSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        agent = registry.agent_revoke(agent=self.get_object())
        shared_directory().invalidate()
        return Response(s.SiteAgentSerializer(agent).data)


class DirectiveViewSet(
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Directive],
):
    """Directives to sites: diversion decisions (``payload.ems_traffic`` Normal, Advisory or
    Closed, with a ``reason``), surge levels, notices.

    Erasure directives are governance's (signed, naming a surrogate until the site confirms):
    they are neither listed nor issued here, only fetched by the site's own agent."""

    queryset = Directive.objects.select_related("hospital").exclude(kind=Directive.Kind.ERASURE)
    serializer_class = s.DirectiveSerializer
    governance_action = "coordinate"

    @extend_schema(request=s.DirectiveInput, responses={201: s.DirectiveSerializer})
    def create(self, request: Request) -> Response:
        data = s.DirectiveInput(data=request.data)
        data.is_valid(raise_exception=True)
        hospital = data.validated_data["hospital"]
        if data.validated_data["kind"] == Directive.Kind.ERASURE:
            raise ValidationError({"kind": "erasure directives come from governance only"})
        if not restrict(Hospital.objects.filter(pk=hospital.pk), request.user, "coordinate"):
            raise PermissionDenied("not your hospital")
        directive = registry.directive_issue(
            hospital=hospital,
            kind=data.validated_data["kind"],
            payload=data.validated_data["payload"],
            issued_by=request.user if request.user.is_authenticated else None,
            expires_at=data.validated_data.get("expires_at"),
        )
        return Response(s.DirectiveSerializer(directive).data, status=status.HTTP_201_CREATED)


# --- Live state -------------------------------------------------------------------------------


AUDIENCE_PARAM = OpenApiParameter(
    "audience",
    str,
    required=False,
    enum=["regional_operations", "peer_hospitals", "public_benchmarks"],
)


@dataclass(frozen=True)
class LiveAnswer:
    """A live answer (shared between requests: hub/api/live_cache.py, live_parts.py): the
    response data and what the request's audit event records about it."""

    data: dict[str, Any]
    hospital_ids: tuple[int, ...]
    row_count: int

    @classmethod
    def built(cls, data: dict[str, Any], hospitals: list[census.HospitalLive]) -> LiveAnswer:
        return cls(
            data, tuple(h.hospital.pk for h in hospitals), sum(len(h.units) for h in hospitals)
        )

    @classmethod
    def of_parts(cls, data: dict[str, Any], parts: list[live_parts.HospitalPart]) -> LiveAnswer:
        return cls(data, tuple(p.pk for p in parts), sum(p.row_count for p in parts))


def shared_response(request: Request, shared: SharedJSON) -> HttpResponse:
    """A shared answer: its JSON as rendered once when plain JSON is negotiated (the same
    bytes the renderer would write), else rendered from its data as before."""
    if plain_json_accepted(request):
        return HttpResponse(shared.json, content_type=JSON)
    return Response(shared.data)


class _LiveBase(GovernedViewSetMixin, GenericAPIView[Hospital]):
    queryset = Hospital.objects.all()

    def audience(self) -> str:
        value = self.request.query_params.get("audience")
        if value is None:
            return census.DEFAULT_AUDIENCE
        query = s.HistoryQuery(data={"audience": value})
        query.is_valid(raise_exception=True)
        return str(query.validated_data["audience"])

    def scoped(self) -> tuple[QuerySet[Hospital], QuerySet[Unit]]:
        action_name = self.get_governance_action()
        hospitals = restrict(Hospital.objects.all(), self.request.user, action_name)
        units = restrict(Unit.objects.all(), self.request.user, action_name)
        return hospitals, units

    def scope_key(self) -> Hashable:
        """Who the answer is for: the caller's scope for the view's action (never the user:
        two operators share the region's answer, an ED nurse never sees theirs)."""
        return (
            self.get_governance_action(),
            scope_for(self.request.user, self.get_governance_action()),
        )

    def note_answer(self, answer: LiveAnswer) -> None:
        context = getattr(self.request._request, "audit_context", None)
        if context is not None:
            context["hospital_ids"] = list(answer.hospital_ids)
            context["row_count"] = answer.row_count

    def note(self, hospitals: list[census.HospitalLive]) -> None:
        context = getattr(self.request._request, "audit_context", None)
        if context is not None:
            context["hospital_ids"] = [h.hospital.pk for h in hospitals]
            context["row_count"] = sum(len(h.units) for h in hospitals)


class LiveRegionView(_LiveBase):
    """The region's live state: every visible hospital, unit by unit, with freshness and
    provenance of every figure, and regional totals per bed type (fresh figures only)."""

    governance_action = "read_census"
    serializer_class = s.RegionLiveOutput

    @extend_schema(parameters=[AUDIENCE_PARAM], responses=s.RegionLiveOutput)
    def get(self, request: Request) -> HttpResponse:
        audience = self.audience()
        now = timezone.now()
        # Per-hospital parts, rebuilt only where the data moved (hub/api/live_parts.py).
        parts = live_parts.hospital_parts(
            ("region", self.scope_key(), audience), self.scoped, audience, now
        )
        if parts is not None and plain_json_accepted(request):
            # The JSON straight from the parts' templates: the same bytes as rendering
            # ``region_data`` (tests/hub/api/test_live_parts.py), without building it.
            self.note_answer(LiveAnswer.of_parts({}, parts))
            return HttpResponse(live_parts.region_json(parts, now), content_type=JSON)
        if parts is not None:
            answer = LiveAnswer.of_parts(live_parts.region_data(parts, now), parts)
        else:  # nothing may be shared (no Redis): built for this request
            hospitals, units = self.scoped()
            region = census.live_region(
                hospitals=hospitals, units=units, audience=audience, now=now
            )
            answer = LiveAnswer.built(region_live_data(region), region.hospitals)
        self.note_answer(answer)
        return Response(answer.data)


class LiveHospitalView(_LiveBase):
    """One hospital's live state."""

    governance_action = "read_census"
    serializer_class = s.HospitalLiveOutput

    @extend_schema(parameters=[AUDIENCE_PARAM], responses=s.HospitalLiveOutput)
    def get(self, request: Request, site_code: str) -> HttpResponse:
        audience = self.audience()
        now = timezone.now()

        def scoped() -> tuple[QuerySet[Hospital], QuerySet[Unit]]:
            hospitals, units = self.scoped()
            return hospitals.filter(site_code=site_code), units

        parts = live_parts.hospital_parts(
            ("hospital", self.scope_key(), audience, site_code), scoped, audience, now
        )
        answer: LiveAnswer | None
        if parts and plain_json_accepted(request):
            self.note_answer(LiveAnswer.of_parts({}, parts))
            return HttpResponse(parts[0].json_at(now), content_type=JSON)
        if parts is not None:
            answer = LiveAnswer.of_parts(parts[0].data_at(now), parts) if parts else None
        else:  # nothing may be shared (no Redis): built for this request
            hospitals, units = scoped()
            found = census.live_hospitals(
                hospitals=hospitals, units=units, audience=audience, now=now
            )
            answer = LiveAnswer.built(hospital_live_data(found[0]), found) if found else None
        if answer is None:
            raise NotFound("no such hospital, or not visible to you")
        self.note_answer(answer)
        return Response(answer.data)


class LiveSummaryView(_LiveBase):
    """Hospital-level totals only (no unit detail), for aggregate-level roles."""

    governance_action = "read_aggregates"
    serializer_class = s.RegionSummaryOutput

    @extend_schema(parameters=[AUDIENCE_PARAM], responses=s.RegionSummaryOutput)
    def get(self, request: Request) -> Response:
        hospitals, units = self.scoped()
        region = census.live_region(hospitals=hospitals, units=units, audience=self.audience())
        self.note(region.hospitals)
        return Response(s.RegionSummaryOutput(region).data)


# --- History ----------------------------------------------------------------------------------


class HistoryPagination(CursorPagination):
    """Cursor pagination: stable under inserts and no OFFSET scans on large series."""

    ordering = ("-observed_at", "-event_id")
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


def _history_params(serializer: type[s.HistoryQuery]) -> list[OpenApiParameter]:
    return [
        OpenApiParameter(str(name), OpenApiTypes.STR, required=False)
        for name in serializer().fields
        if name not in ("since", "until")
    ] + [
        OpenApiParameter("since", OpenApiTypes.DATETIME, required=False),
        OpenApiParameter("until", OpenApiTypes.DATETIME, required=False),
    ]


def _note_history_page(request: Request, event_ids: list[str], hospital_ids: list[int]) -> None:
    """The request's audit event: the page's snapshots and their hospitals."""
    context = getattr(request._request, "audit_context", None)
    if context is not None:
        context["object_ids"] = event_ids
        context["hospital_ids"] = sorted(set(hospital_ids))
        context["row_count"] = len(event_ids)


class CensusHistoryView(GovernedViewSetMixin, ListAPIView[CensusSnapshot]):
    """Census snapshots over a time range, newest first (cursor-paginated)."""

    queryset = CensusSnapshot.objects.all()
    serializer_class = s.CensusSnapshotOutput
    governance_action = "read_census"
    pagination_class = HistoryPagination

    @extend_schema(parameters=_history_params(s.CensusHistoryQuery))
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[CensusSnapshot]:
        query = s.CensusHistoryQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return census.census_history(queryset=super().get_queryset(), **query.validated_data)

    def list(  # type: ignore[override]  # an HttpResponse: the JSON of the rows
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        if plain_json_accepted(request):
            page_query = self.json_page_query()
            if page_query is not None:
                return self.list_json(page_query)
        # Plain rows, not model instances through DRF's fields: the same JSON
        # (tests/hub/api/test_live_output.py), a fraction of the CPU.
        rows = census_history_values(self.get_queryset())
        page = self.paginate_queryset(rows)
        assert page is not None  # noqa: S101 - pagination_class is set
        _note_history_page(
            request,
            [str(r.get("event_id_text") or r["event_id"]) for r in page],
            [r["hospital_id"] for r in page],
        )
        return self.get_paginated_response(census_history_rows(page))

    def json_page_query(self) -> history_json.CensusHistoryPage | None:
        """The history asked for, read without the ORM (hub/api/history_json.py), within the
        caller's scope (``restrict``, as ``get_queryset``); None where the ORM answers."""
        query = s.CensusHistoryQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return history_json.history_page(super().get_queryset(), query.validated_data)

    def list_json(self, page_query: history_json.CensusHistoryPage) -> HttpResponse:
        """The page as plain JSON: DRF's cursor pagination of the rows PostgreSQL wrote, the
        same bytes as rendering ``list``'s answer (tests/hub/api/test_history_json.py)."""
        page = self.paginate_queryset(page_query)  # type: ignore[arg-type]
        assert page is not None  # noqa: S101 - pagination_class is set
        _note_history_page(
            self.request, history_json.page_event_ids(page), history_json.page_hospital_ids(page)
        )
        answer = self.get_paginated_response(history_json.page_data(page))
        return HttpResponse(render_json(answer.data), content_type=JSON)


class FlowHistoryView(GovernedViewSetMixin, ListAPIView[FlowEvent]):
    """De-identified flow records over a time range, newest first (cursor-paginated)."""

    queryset = FlowEvent.objects.all()
    serializer_class = s.FlowEventOutput
    governance_action = "read_flow"
    pagination_class = HistoryPagination

    @extend_schema(parameters=_history_params(s.FlowHistoryQuery))
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[FlowEvent]:
        query = s.FlowHistoryQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return census.flow_history(queryset=super().get_queryset(), **query.validated_data)


# --- Exports ----------------------------------------------------------------------------------


class XMLRenderer(BaseRenderer):
    """Passes export bytes through; renders an error body as a one-element XML document."""

    media_type = "application/xml"
    format = "xml"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        from xml.sax.saxutils import escape

        detail = data.get("detail", data) if isinstance(data, dict) else data
        return (
            f'<?xml version="1.0" encoding="utf-8"?>\n<error>{escape(str(detail))}</error>'.encode()
        )


class FHIRJSONRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


class EdxlHaveView(_LiveBase):
    """OASIS EDXL-HAVE XML of the region, or of one hospital with ``/<site code>/``."""

    governance_action = "read_aggregates"
    renderer_classes = (XMLRenderer, JSONRenderer)

    @extend_schema(responses={(200, "application/xml"): OpenApiTypes.STR})
    def get(self, request: Request, site_code: str | None = None) -> Response:
        hospitals, units = self.scoped()
        if site_code is not None:
            hospitals = hospitals.filter(site_code=site_code)
        region = census.live_region(hospitals=hospitals, units=units)
        if site_code is not None and not region.hospitals:
            raise NotFound("no such hospital, or not visible to you")
        self.note(region.hospitals)
        return Response(edxl_have.edxl_have_region(region), content_type=edxl_have.CONTENT_TYPE)


class EdxlHaveHospitalView(EdxlHaveView):
    """OASIS EDXL-HAVE XML of one hospital."""

    @extend_schema(
        operation_id="v1_exports_edxl_have_hospital",
        responses={(200, "application/xml"): OpenApiTypes.STR},
    )
    def get(self, request: Request, site_code: str | None = None) -> Response:
        return super().get(request, site_code)


class MeasureReportView(_LiveBase):
    """FHIR R5 MeasureReport (bed capacity, SANER style): a Bundle with the region's report
    and each hospital's, or one hospital's report with ``/<site code>/``."""

    governance_action = "read_aggregates"
    renderer_classes = (JSONRenderer, FHIRJSONRenderer)

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request: Request, site_code: str | None = None) -> Response:
        hospitals, units = self.scoped()
        if site_code is not None:
            hospitals = hospitals.filter(site_code=site_code)
        region = census.live_region(hospitals=hospitals, units=units)
        self.note(region.hospitals)
        now = region.generated_at
        if site_code is not None:
            if not region.hospitals:
                raise NotFound("no such hospital, or not visible to you")
            return Response(measure_report.hospital_measure_report(region.hospitals[0], now=now))
        region_code = region.hospitals[0].hospital.region.code if region.hospitals else "none"
        reports = [measure_report.region_measure_report(region, region_code=region_code)]
        reports += [measure_report.hospital_measure_report(h, now=now) for h in region.hospitals]
        return Response(measure_report.measure_report_bundle(reports, now=now))


class MeasureReportHospitalView(MeasureReportView):
    """FHIR R5 MeasureReport (bed capacity) of one hospital."""

    @extend_schema(
        operation_id="v1_exports_measure_report_hospital",
        responses={(200, "application/json"): OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, site_code: str | None = None) -> Response:
        return super().get(request, site_code)


# --- Site API ---------------------------------------------------------------------------------


class _SiteBase(GovernedViewSetMixin, GenericAPIView[Hospital]):
    authentication_classes = (SiteAgentAuthentication,)
    queryset = Hospital.objects.all()

    def agent(self) -> SiteAgent:
        agent = self.request.auth
        if not isinstance(agent, SiteAgent):
            raise PermissionDenied("the site API is for enrolled site agents")
        return agent


class EnrolView(APIView):
    """Exchange a one-time enrolment token for a credential, registering the agent's
    Ed25519 public key. Authenticated by the token itself (no user yet)."""

    governance_action = SITE_ENROL
    governance_public = "authenticated by its one-time enrolment token, not by a user"
    authentication_classes = ()
    permission_classes = (permissions.AllowAny,)

    @extend_schema(request=s.EnrolInput, responses={201: s.EnrolOutput}, auth=[])
    def post(self, request: Request) -> Response:
        data = s.EnrolInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = registry.agent_enrol(**data.validated_data)
        shared_directory().invalidate()
        agent = result.agent
        context = getattr(request._request, "audit_context", None)
        if context is not None:
            context["action"] = SITE_ENROL
            context["target"] = agent
            context["hospital_ids"] = [agent.hospital_id]
        out = s.EnrolOutput(
            {
                "agent_id": agent.pk,
                "site_code": agent.hospital.site_code,
                "key_id": agent.key_id,
                "credential": result.credential,
            }
        )
        return Response(out.data, status=status.HTTP_201_CREATED)


class SiteSelfView(_SiteBase):
    """Who am I: the agent, its site and the units the hub has registered for it."""

    governance_action = "site_read"
    serializer_class = s.AgentSelfOutput

    def get(self, request: Request) -> Response:
        return Response(s.AgentSelfOutput(self.agent()).data)


class SiteHeartbeatView(_SiteBase):
    """The agent is alive: its version, feed status, policy in force, outbox backlog."""

    governance_action = "site_push"
    serializer_class = s.HeartbeatOutput

    @extend_schema(request=s.HeartbeatInput, responses=s.HeartbeatOutput)
    def post(self, request: Request) -> Response:
        agent = self.agent()
        data = s.HeartbeatInput(data=request.data)
        data.is_valid(raise_exception=True)
        feeds = [
            {**f, "last_message_at": f["last_message_at"].isoformat()}
            if f.get("last_message_at")
            else f
            for f in data.validated_data["feeds"]
        ]
        agent = registry.agent_heartbeat_record(
            agent=agent,
            agent_version=data.validated_data["agent_version"],
            feeds=feeds,
            policy_version=data.validated_data.get("policy_version"),
            outbox_backlog=data.validated_data.get("outbox_backlog"),
        )
        pending = len(_pending_directives(agent.hospital_id).data)
        context = getattr(request._request, "audit_context", None)
        if context is not None:
            # Liveness, replaced by the next heartbeat: its event need not wait for the disk.
            context["durable"] = False
        return Response(
            s.HeartbeatOutput(
                {"received_at": agent.last_heartbeat_at, "pending_directives": pending}
            ).data
        )


class SitePolicyView(_SiteBase):
    """The site's current signed sharing policy, as governance published it; 204 while none
    is published (the DE-ID worker then releases nothing: it fails closed)."""

    governance_action = "site_read"
    serializer_class = s.PolicyOutput

    @extend_schema(responses={200: s.PolicyOutput, 204: None})
    def get(self, request: Request) -> HttpResponse:
        agent = self.agent()

        def build() -> tuple[Any, datetime | None]:
            # When the clock alone would change the answer, read before the answer itself:
            # a policy that comes into force in between is then at most a request late.
            until = governance_bridge.policy_changes_at(hospital_id=agent.hospital_id)
            policy = governance_bridge.current_policy(hospital_id=agent.hospital_id)
            if policy is None:
                return None, until
            signed = base64.b64encode(bytes(policy.get("signed") or b"")).decode()
            return SharedJSON.of(s.PolicyOutput({**policy, "signed": signed}).data), until

        # Shared per state of the policy table, until a published policy's effective time
        # comes (hub/api/live_cache.py).
        shared = state_answer(("policy", agent.hospital_id), build, kind="policy")
        if shared is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return shared_response(request, shared)


class SiteDirectivesView(_SiteBase):
    """Directives for this site that it has not acknowledged yet, oldest first."""

    governance_action = "site_read"
    serializer_class = s.DirectiveSerializer
    pagination_class = None  # a site has a handful pending at most; the list is the answer

    @extend_schema(responses=s.DirectiveSerializer(many=True))
    def get(self, request: Request) -> HttpResponse:
        agent = self.agent()
        return shared_response(request, _pending_directives(agent.hospital_id))


def _pending_directives(hospital_id: int) -> SharedJSON:
    """The site's unacknowledged directives as answered, shared per state of the directive
    table (hub/api/live_cache.py): agents poll them every few seconds. The answer does not
    depend on the clock (expired directives stay listed until acknowledged)."""

    def build() -> tuple[SharedJSON, None]:
        rows = registry_selectors.directives_pending(hospital_id=hospital_id).select_related(
            "hospital"
        )
        return SharedJSON.of(list(s.DirectiveSerializer(rows, many=True).data)), None

    pending: SharedJSON = state_answer(("directives", hospital_id), build, "directives")
    return pending


class SiteDirectiveAckView(_SiteBase):
    """Acknowledge a directive (idempotent)."""

    governance_action = "site_push"
    serializer_class = s.DirectiveSerializer

    @extend_schema(request=None, responses=s.DirectiveSerializer)
    def post(self, request: Request, directive_id: int) -> Response:
        agent = self.agent()
        directive = get_object_or_404(Directive, pk=directive_id, hospital_id=agent.hospital_id)
        directive = registry.directive_acknowledge(directive=directive, agent=agent)
        return Response(s.DirectiveSerializer(directive).data)


class EnvelopeParser(BaseParser):
    """The body is the signed envelope exactly as it would travel on Kafka: the signature
    covers its bytes, so they must not be re-encoded on the way in."""

    media_type = "*/*"

    def parse(  # type: ignore[override]
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> bytes:
        body = stream.read(MAX_ENVELOPE_BYTES + 1) if stream is not None else b""
        if len(body) > MAX_ENVELOPE_BYTES:
            raise ParseError("envelope larger than 8 MiB: split the batch")
        return bytes(body)


class SiteBatchView(_SiteBase):
    """Fallback HTTPS push of one signed envelope when Kafka is unreachable from the site.

    The same signature check, validation and idempotent upsert as the consumer: pushing an
    envelope that also arrives through Kafka stores nothing twice. 422 when the envelope
    itself is refused; otherwise 200 with per-record rejections (also dead-lettered).
    """

    governance_action = "site_push"
    serializer_class = s.BatchOutput
    parser_classes = (EnvelopeParser,)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: s.BatchOutput, 422: OpenApiResponse(description="envelope refused")},
    )
    def post(self, request: Request) -> Response:
        agent = self.agent()
        body = request.data
        if not isinstance(body, bytes) or not body:
            raise ParseError("send the signed envelope as the request body")
        batch = IngestBatch()
        accepted = envelope_into_batch(
            body,
            directory=shared_directory(),
            batch=batch,
            received_at=timezone.now(),
            via="https",
            expected_site=agent.hospital.site_code,
        )
        if accepted == 0 and batch.rejections and not batch.rejections[0].event_id:
            dead_letter_rejections(batch.rejections)
            return Response(
                {"detail": batch.rejections[0].reason},
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        counts = census_ingest_batch(batch=batch)
        if batch.rejections:
            dead_letter_rejections(batch.rejections)
        out = s.BatchOutput(
            {
                "accepted": accepted,
                "stored": counts.census_inserted + counts.flow_inserted + counts.heartbeats,
                "duplicates": counts.duplicates,
                "rejected": [
                    {"event_id": r.event_id, "reason": r.reason} for r in batch.rejections
                ],
            }
        )
        return Response(out.data)
