"""Governance's API: thin views that validate, call one selector or service, serialize.

Every view declares its governed action(s); the permission matrix test fails on one that
does not.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import chain, policies, selectors, services
from governance.access import scope_for
from governance.api import serializers as s
from governance.api.governed import GovernedViewSetMixin
from governance.models import AuditEvent, ErasureRequest, RetentionRun, SharingPolicy
from governance.paging import AuditCursorPagination


class ConflictError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the object is not in a state that allows this"
    default_code = "conflict"


def call(service: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one service; its refusals become 409 (wrong state) or 400 (bad input)."""
    try:
        return service(**kwargs)
    except services.Conflict as exc:
        raise ConflictError(str(exc)) from None
    except services.ServiceError as exc:
        raise ValidationError({"detail": str(exc)}) from None


def valid(serializer_class: type[Any], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class WorkflowMixin:
    """One workflow step of a governed object: fetch it (another hospital's id is a 404
    before the body is validated), validate the body, call the service, serialize."""

    target_kwarg: str  # the service's keyword for the object: "policy", "erasure"
    output: type[Any]

    def transition(
        self,
        request: Request,
        service: Callable[..., Any],
        body: type[Any] | None = None,
        **fixed: Any,
    ) -> Response:
        obj = self.get_object()  # type: ignore[attr-defined]
        data = valid(body, request.data) if body is not None else {}
        result = call(
            service,
            actor=request.user,
            request=request,
            **{self.target_kwarg: obj},
            **fixed,
            **data,
        )
        return Response(self.output(result).data)


def _audit_filter(request: Request) -> selectors.AuditFilter:
    params = s.AuditFilterIn(data=request.query_params)
    params.is_valid(raise_exception=True)
    return selectors.AuditFilter(**params.validated_data)


class AuditEventViewSet(GovernedViewSetMixin, viewsets.ReadOnlyModelViewSet[AuditEvent]):
    """Search the audit log (board, auditors); ``export`` streams it as CSV."""

    queryset = AuditEvent.objects.all()
    serializer_class = s.AuditEventOut
    # By cursor: the log grows by a row a request, and counting it for offset pages would
    # outgrow the web's statement timeout (governance/paging.py).
    pagination_class = AuditCursorPagination
    governance_actions = {  # noqa: RUF012 (read-only mapping)
        "list": "read_audit",
        "retrieve": "read_audit",
        "export": "export_audit",
    }

    def get_queryset(self) -> Any:
        return selectors.audit_event_list(
            user=self.request.user,
            filters=_audit_filter(self.request),
            action=self.get_governance_action(),
        )

    @extend_schema(responses={200: str})
    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> StreamingHttpResponse:
        queryset = self.get_queryset()
        fields = s.AuditEventOut.Meta.fields
        count = queryset.count()
        context = getattr(request._request, "audit_context", None)
        if context is not None:
            context.update(row_count=count, detail={"format": "csv"})

        class Echo:
            def write(self, value: str) -> str:
                return value

        def rows() -> Iterator[str]:
            writer = csv.writer(Echo())
            yield writer.writerow(fields)
            for row in queryset.values_list(*fields).iterator(chunk_size=2000):
                yield writer.writerow(row)

        response = StreamingHttpResponse(rows(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        return response


class AuditVerifyView(GovernedViewSetMixin, APIView):
    """Walk the hash chain now (what ``manage.py audit verify`` does)."""

    governance_action = "read_audit"

    @extend_schema(responses={200: s.VerifyOut})
    def get(self, request: Request) -> Response:
        report = chain.verify()
        return Response(
            s.VerifyOut(
                {
                    "ok": report.ok,
                    "checked": report.checked,
                    "first_bad_id": report.first_bad_id,
                    "problem": report.problem,
                    "unlinked": len(report.unlinked_ids),
                    "checkpoints_checked": report.checkpoints_checked,
                    "checkpoint_problems": report.checkpoint_problems,
                }
            ).data
        )


class PolicyViewSet(
    WorkflowMixin,
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[SharingPolicy],
):
    """Sharing policies: draft → review → approved (board quorum) → published (signed)."""

    queryset = SharingPolicy.objects.all()
    serializer_class = s.PolicyOut
    target_kwarg, output = "policy", s.PolicyOut
    governance_actions = {  # noqa: RUF012
        "list": "read_policy",
        "retrieve": "read_policy",
        "preview": "read_policy",
        "diff": "read_policy",
        "template": "read_policy",
        "create": "manage_policy",
        "partial_update": "manage_policy",
        "submit": "manage_policy",
        "publish": "manage_policy",
        "approve": "approve_policy",
        "reject": "approve_policy",
    }

    def get_queryset(self) -> Any:
        return selectors.policy_list(user=self.request.user, action=self.get_governance_action())

    def _out(self, policy: SharingPolicy, code: int = status.HTTP_200_OK) -> Response:
        return Response(s.PolicyOut(policy).data, status=code)

    @extend_schema(request=s.PolicyCreateIn, responses={201: s.PolicyOut})
    def create(self, request: Request) -> Response:
        data = valid(s.PolicyCreateIn, request.data)
        policy = call(services.policy_create_draft, actor=request.user, request=request, **data)
        return self._out(policy, status.HTTP_201_CREATED)

    @extend_schema(request=s.PolicyUpdateIn, responses={200: s.PolicyOut})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        return self.transition(request, services.policy_update_draft, s.PolicyUpdateIn)

    @extend_schema(request=None, responses={200: s.PolicyOut})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        return self.transition(request, services.policy_submit)

    @extend_schema(request=s.DecisionIn, responses={200: s.PolicyOut})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self.transition(request, services.policy_decide, s.DecisionIn, approve=True)

    @extend_schema(request=s.DecisionIn, responses={200: s.PolicyOut})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return self.transition(request, services.policy_decide, s.DecisionIn, approve=False)

    @extend_schema(request=s.PublishIn, responses={200: s.PolicyOut})
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        return self.transition(request, services.policy_publish, s.PublishIn)

    @extend_schema(request=None, responses={200: s.PreviewOut})
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """What this version would release, on a synthetic sample (DE-ID offline transform)."""
        policy = self.get_object()
        try:
            result = policies.preview(
                policy.document, site_code=policy.site_code, version=policy.version
            )
        except policies.PolicyError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(s.PreviewOut(asdict(result)).data)

    @extend_schema(parameters=[s.DiffIn], responses={200: s.DiffOut})
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, pk: str | None = None) -> Response:
        policy = self.get_object()
        against = valid(s.DiffIn, request.query_params).get("against")
        others = self.get_queryset().filter(hospital_id=policy.hospital_id)
        if against is None:
            base = others.filter(version__lt=policy.version).order_by("-version").first()
        else:
            base = others.filter(version=against).first()
            if base is None:
                raise ValidationError({"against": "no such version"})
        changes = policies.diff(base.document if base else {}, policy.document)
        return Response(
            s.DiffOut(
                {
                    "from_version": base.version if base else None,
                    "to_version": policy.version,
                    "changes": [asdict(c) for c in changes],
                }
            ).data
        )

    @extend_schema(responses={200: dict})
    @action(detail=False, methods=["get"])
    def template(self, request: Request) -> Response:
        """The DE-ID template a first draft starts from."""
        return Response(policies.template())


class ErasureRequestViewSet(
    WorkflowMixin,
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[ErasureRequest],
):
    """The board's view of erasure requests: open, approve, execute, reject, resend."""

    queryset = ErasureRequest.objects.all()
    serializer_class = s.ErasureOut
    target_kwarg, output = "erasure", s.ErasureOut
    governance_actions = {  # noqa: RUF012
        "list": "read_erasure",
        "retrieve": "read_erasure",
        "create": "manage_erasure",
        "approve": "manage_erasure",
        "execute": "manage_erasure",
        "reject": "manage_erasure",
        "resend": "manage_erasure",
    }

    def _out(self, erasure: ErasureRequest, code: int = status.HTTP_200_OK) -> Response:
        return Response(s.ErasureOut(erasure).data, status=code)

    @extend_schema(request=s.ErasureCreateIn, responses={201: s.ErasureOut})
    def create(self, request: Request) -> Response:
        data = valid(s.ErasureCreateIn, request.data)
        erasure = call(
            services.erasure_request_create,
            actor=request.user,
            request=request,
            origin=ErasureRequest.Origin.BOARD,
            **data,
        )
        return self._out(erasure, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.ErasureOut})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self.transition(request, services.erasure_request_approve)

    @extend_schema(request=None, responses={200: s.ErasureOut})
    @action(detail=True, methods=["post"])
    def execute(self, request: Request, pk: str | None = None) -> Response:
        return self.transition(request, services.erasure_request_execute)

    @extend_schema(request=s.RejectIn, responses={200: s.ErasureOut})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return self.transition(request, services.erasure_request_reject, s.RejectIn)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, pk: str | None = None) -> Response:
        call(services.erasure_directive_resend, erasure=self.get_object())
        return Response(status=status.HTTP_202_ACCEPTED)


class SiteErasureRequestViewSet(
    WorkflowMixin,
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[ErasureRequest],
):
    """The site API: a site agent opens requests for its own patients and confirms the
    crypto-shredding its directive asked for. Another site's request is a 404."""

    queryset = ErasureRequest.objects.all()
    serializer_class = s.ErasureOut
    target_kwarg, output = "erasure", s.ErasureOut
    governance_action = "site_erasure"

    def _own_hospital(self, request: Request) -> int:
        hospitals = scope_for(request.user, "site_erasure").hospital_ids
        if len(hospitals) != 1:
            raise PermissionDenied("a site agent account must belong to exactly one hospital")
        return int(next(iter(hospitals)))

    @extend_schema(request=s.SiteErasureCreateIn, responses={201: s.ErasureOut})
    def create(self, request: Request) -> Response:
        data = valid(s.SiteErasureCreateIn, request.data)
        erasure = call(
            services.erasure_request_create,
            actor=request.user,
            request=request,
            hospital_id=self._own_hospital(request),
            origin=ErasureRequest.Origin.SITE,
            **data,
        )
        return Response(s.ErasureOut(erasure).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ConfirmIn, responses={200: s.ErasureOut})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str | None = None) -> Response:
        return self.transition(request, services.erasure_request_confirm, s.ConfirmIn)


class RetentionRunViewSet(
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[RetentionRun],
):
    """Retention reports; POST starts a run now (``dry_run`` defaults to true)."""

    queryset = RetentionRun.objects.all()
    serializer_class = s.RetentionRunOut
    governance_actions = {  # noqa: RUF012
        "list": "read_retention",
        "retrieve": "read_retention",
        "create": "run_retention",
    }

    @extend_schema(request=s.RetentionRunIn, responses={201: s.RetentionRunOut})
    def create(self, request: Request) -> Response:
        data = valid(s.RetentionRunIn, request.data)
        run = call(services.retention_run, actor=request.user, request=request, **data)
        return Response(s.RetentionRunOut(run).data, status=status.HTTP_201_CREATED)
