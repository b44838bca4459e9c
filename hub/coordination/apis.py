"""The coordination API (/api/v1/coordination/): each view validates, calls one service,
serializes. Reads are ``read_coordination`` (operators; executives for their hospitals),
writes ``coordinate`` (operators); ``GovernedViewSetMixin`` restricts every queryset."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.access import restrict
from governance.api.governed import GovernedPermission, GovernedViewSetMixin
from hub.coordination import models as m
from hub.coordination import selectors, services
from hub.coordination import serializers as s
from hub.coordination.governed import COORDINATE, READ_COORDINATION
from hub.registry.models import Hospital, Region


def _call(fn: Any, **kwargs: Any) -> Any:
    """Run a service; its refusals become 409 (state) or 400 (input)."""
    try:
        return fn(**kwargs)
    except services.Conflict as exc:
        raise _Conflict(str(exc)) from None
    except services.CoordinationError as exc:
        raise ValidationError({"detail": str(exc)}) from None


class _Conflict(ValidationError):
    status_code = status.HTTP_409_CONFLICT


def _own(request: Request, hospital: Hospital, action: str = COORDINATE) -> Hospital:
    if not restrict(Hospital.objects.filter(pk=hospital.pk), request.user, action).exists():
        raise PermissionDenied("not a hospital you coordinate")
    return hospital


_READS = {"list": READ_COORDINATION, "retrieve": READ_COORDINATION}


class RecommendationViewSet(
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[m.DiversionRecommendation],
):
    """Diversion recommendations, newest first (``?state=pending`` for the open ones)."""

    queryset = m.DiversionRecommendation.objects.select_related("region__coordination_state")
    serializer_class = s.RecommendationSerializer
    governance_actions = {  # noqa: RUF012 (a read-only mapping)
        **_READS,
        "accept": COORDINATE,
        "override": COORDINATE,
    }

    def get_queryset(self) -> Any:
        state = self.request.query_params.get("state")
        return selectors.recommendations(queryset=super().get_queryset(), state=state)

    @extend_schema(request=s.AcceptInput, responses={201: s.DecisionSerializer})
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        data = s.AcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        decision = _call(
            services.diversion_accept,
            recommendation=self.get_object(),
            user=request.user,
            reason=data.validated_data["reason"],
            ttl_minutes=data.validated_data.get("ttl_minutes"),
        )
        return Response(s.DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.OverrideInput, responses={201: s.DecisionSerializer})
    @action(detail=True, methods=["post"])
    def override(self, request: Request, pk: str | None = None) -> Response:
        data = s.OverrideInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        routes = None
        if "routes" in v:
            routes = [
                {"class": r["ambulance_class"], "destination": r["destination"]}
                for r in v["routes"]
            ]
        decision = _call(
            services.diversion_override,
            recommendation=self.get_object(),
            user=request.user,
            reason=v["reason"],
            status=v["status"],
            routes=routes,
            ttl_minutes=v.get("ttl_minutes"),
        )
        return Response(s.DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)


class DecisionViewSet(
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[m.DiversionDecision],
):
    """Decisions (accepted, overridden, expired, ended), with who, when and why."""

    queryset = m.DiversionDecision.objects.all()
    serializer_class = s.DecisionSerializer
    governance_actions = {  # noqa: RUF012 (a read-only mapping)
        **_READS,
        "trust": READ_COORDINATION,
        "renew": COORDINATE,
        "end": COORDINATE,
    }

    def get_queryset(self) -> Any:
        state = self.request.query_params.get("state")
        return selectors.decisions(queryset=super().get_queryset(), state=state)

    @extend_schema(responses={200: dict})
    @action(detail=False, methods=["get"])
    def trust(self, request: Request) -> Response:
        """How many recommendations were accepted as they stood, how many overridden."""
        return Response(selectors.decision_trust(queryset=self.get_queryset()))

    @extend_schema(request=s.RenewInput, responses=s.DecisionSerializer)
    @action(detail=True, methods=["post"])
    def renew(self, request: Request, pk: str | None = None) -> Response:
        data = s.RenewInput(data=request.data)
        data.is_valid(raise_exception=True)
        decision = _call(
            services.diversion_renew,
            decision=self.get_object(),
            user=request.user,
            ttl_minutes=data.validated_data.get("ttl_minutes"),
            reason=data.validated_data["reason"],
        )
        return Response(s.DecisionSerializer(decision).data)

    @extend_schema(request=s.ReasonInput, responses=s.DecisionSerializer)
    @action(detail=True, methods=["post"])
    def end(self, request: Request, pk: str | None = None) -> Response:
        data = s.ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        decision = _call(
            services.diversion_end,
            decision=self.get_object(),
            user=request.user,
            reason=data.validated_data["reason"],
        )
        return Response(s.DecisionSerializer(decision).data)


class StatusViewSet(GovernedViewSetMixin, viewsets.ReadOnlyModelViewSet[m.HospitalStatus]):
    """Each hospital's recommended status and OPEL level as of the last evaluation."""

    queryset = m.HospitalStatus.objects.select_related("hospital").order_by("hospital__site_code")
    serializer_class = s.StatusSerializer
    governance_action = READ_COORDINATION


class SurgeChangeViewSet(GovernedViewSetMixin, viewsets.ReadOnlyModelViewSet[m.SurgeLevelChange]):
    """OPEL level changes with their causes and checklists, newest first."""

    queryset = m.SurgeLevelChange.objects.select_related("hospital", "region", "checklist_ref")
    serializer_class = s.SurgeChangeSerializer
    governance_action = READ_COORDINATION


class AlertViewSet(
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[m.Alert],
):
    """Alerts (``?live=1`` for open and acknowledged ones)."""

    queryset = m.Alert.objects.all()
    serializer_class = s.AlertSerializer
    governance_actions = {  # noqa: RUF012 (a read-only mapping)
        **_READS,
        "acknowledge": COORDINATE,
    }

    def get_queryset(self) -> Any:
        q = self.request.query_params
        return selectors.alerts(
            queryset=super().get_queryset(),
            state=q.get("state"),
            live=q.get("live") in {"1", "true", "yes"},
        )

    @extend_schema(request=s.AcknowledgeInput, responses=s.AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        data = s.AcknowledgeInput(data=request.data)
        data.is_valid(raise_exception=True)
        alert = _call(
            services.alert_acknowledge,
            alert=self.get_object(),
            user=request.user,
            note=data.validated_data["note"],
        )
        return Response(s.AlertSerializer(alert).data)


class ResourceRequestViewSet(
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[m.ResourceRequest],
):
    """Requests between hospitals: requested → offered → accepted → fulfilled / cancelled."""

    queryset = m.ResourceRequest.objects.select_related("requester").prefetch_related(
        "offers__donor", "events__actor"
    )
    serializer_class = s.ResourceRequestSerializer
    governance_actions = {  # noqa: RUF012 (a read-only mapping)
        **_READS,
        "create": COORDINATE,
        "offer": COORDINATE,
        "accept": COORDINATE,
        "fulfil": COORDINATE,
        "cancel": COORDINATE,
        "suggest": COORDINATE,
    }

    @extend_schema(request=s.ResourceRequestInput, responses={201: s.ResourceRequestSerializer})
    def create(self, request: Request) -> Response:
        data = s.ResourceRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        row = _call(
            services.resource_request_create,
            requester=_own(request, v["requester"]),
            kind=v["kind"],
            item=v["item"],
            quantity=v["quantity"],
            shift=v["shift"],
            needed_by=v["needed_by"],
            note=v["note"],
            user=request.user,
        )
        return Response(self.get_serializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.OfferInput, responses={201: s.ResourceRequestSerializer})
    @action(detail=True, methods=["post"])
    def offer(self, request: Request, pk: str | None = None) -> Response:
        data = s.OfferInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = self.get_object()
        _call(
            services.resource_offer_make,
            request=row,
            donor=_own(request, data.validated_data["donor"]),
            quantity=data.validated_data["quantity"],
            note=data.validated_data["note"],
            user=request.user,
        )
        return Response(self.get_serializer(self.get_object()).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.AcceptOfferInput, responses=s.ResourceRequestSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        data = s.AcceptOfferInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = self.get_object()
        offer = get_object_or_404(m.ResourceOffer, pk=data.validated_data["offer"], request=row)
        _call(
            services.resource_offer_accept,
            offer=offer,
            user=request.user,
            note=data.validated_data["note"],
        )
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=s.NoteInput, responses=s.ResourceRequestSerializer)
    @action(detail=True, methods=["post"])
    def fulfil(self, request: Request, pk: str | None = None) -> Response:
        data = s.NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        _call(
            services.resource_request_fulfil,
            request=self.get_object(),
            user=request.user,
            note=data.validated_data["note"],
        )
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=s.ReasonInput, responses=s.ResourceRequestSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        data = s.ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        _call(
            services.resource_request_cancel,
            request=self.get_object(),
            user=request.user,
            reason=data.validated_data["reason"],
        )
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=None, responses=s.ResourceRequestSerializer)
    @action(detail=True, methods=["post"])
    def suggest(self, request: Request, pk: str | None = None) -> Response:
        row = _call(services.resource_request_suggest, request=self.get_object())
        return Response(self.get_serializer(row).data)


class AvailabilityViewSet(
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[m.ResourceAvailability],
):
    """Spare staff, OR time and equipment hospitals declare (beds come from the census)."""

    queryset = m.ResourceAvailability.objects.select_related("hospital")
    serializer_class = s.AvailabilitySerializer
    governance_actions = {  # noqa: RUF012 (a read-only mapping)
        **_READS,
        "create": COORDINATE,
    }

    @extend_schema(request=s.AvailabilityInput, responses={201: s.AvailabilitySerializer})
    def create(self, request: Request) -> Response:
        data = s.AvailabilityInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        row = _call(
            services.resource_availability_declare,
            hospital=_own(request, v["hospital"]),
            kind=v["kind"],
            item=v["item"],
            quantity=v["quantity"],
            shift=v["shift"],
            note=v["note"],
            user=request.user,
        )
        return Response(s.AvailabilitySerializer(row).data, status=status.HTTP_201_CREATED)


class _RegionView(APIView):
    permission_classes = [GovernedPermission]  # noqa: RUF012 (DRF attribute)
    governance_action = COORDINATE

    def region(self, request: Request, region_code: str) -> Region:
        region = get_object_or_404(Region, code=region_code)
        context = getattr(request._request, "audit_context", None)
        if context is not None:
            context["target"] = f"registry.region:{region.pk}"
        return region


class RegionStateView(_RegionView):
    """The region's mode (normal or load-balancing) and OPEL level as last evaluated."""

    @extend_schema(responses=s.RegionStateSerializer)
    def get(self, request: Request, region_code: str) -> Response:
        region = self.region(request, region_code)
        state, _ = m.RegionState.objects.get_or_create(region=region)
        return Response(s.RegionStateSerializer(state).data)


class RegionEvaluateView(_RegionView):
    """Re-evaluate the region now (the beat does it every minute anyway)."""

    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request, region_code: str) -> Response:
        summary = services.region_evaluate(region=self.region(request, region_code))
        body = dataclasses.asdict(summary)
        body["at"] = summary.at.isoformat()
        return Response(body)


class RegionSettingsView(_RegionView):
    """The region's thresholds: what it stores (``config``) and what applies (``effective``,
    the documented defaults overlaid with it)."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request, region_code: str) -> Response:
        region = self.region(request, region_code)
        row = m.RegionSettings.objects.filter(region=region).first()
        stored = row.config if row is not None else {}
        return Response({"config": stored, "effective": services.region_config(region).to_dict()})

    @extend_schema(request=s.SettingsInput, responses={200: dict})
    def put(self, request: Request, region_code: str) -> Response:
        region = self.region(request, region_code)
        data = s.SettingsInput(data=request.data)
        data.is_valid(raise_exception=True)
        config = data.validated_data["config"]
        if not isinstance(config, dict):
            raise ValidationError({"config": "expected an object"})
        row = _call(services.region_settings_set, region=region, config=config, user=request.user)
        return Response({"config": row.config, "effective": row.region_config().to_dict()})
