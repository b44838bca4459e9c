"""The governance board's screens: sharing policies, erasure requests, the audit log and
retention. Every view declares a governed action per HTTP method, reads through the
governance selectors, and changes things only through ``governance.services``.

An invalid form comes back as the same page (status 200, like Django's form views) with the
errors next to the fields; a workflow step the services refuse becomes an error message."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, ClassVar

from django.contrib import messages
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from governance import chain, control, policies, selectors, services
from governance.access import can
from governance.decorators import GovernedViewMixin
from governance.models import (
    AuditEvent,
    ErasureRequest,
    ErasureStatus,
    PolicyDecision,
    PolicyStatus,
    RetentionRun,
    SharingPolicy,
)
from governance.paging import CappedPaginator
from governance.web import forms
from governance.web import selectors as screens

AUDIT_PAGE_SIZE = 50
EXPORT_FIELDS = chain.EVENT_FIELDS


class GovernedScreen(GovernedViewMixin, View):
    """A page whose governed action depends on the HTTP method (``governance_actions``);
    ``queryset`` names the model its detail URLs point at (the permission matrix uses it)."""

    governance_actions: ClassVar[dict[str, str]] = {}
    queryset: ClassVar[models.QuerySet[Any] | None] = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        method = (request.method or "get").lower()
        action = self.governance_actions.get("get" if method == "head" else method)
        if action is None:
            return self.http_method_not_allowed(request, *args, **kwargs)
        self.governance_action = action
        return super().dispatch(request, *args, **kwargs)


def _run(
    request: HttpRequest, service: Callable[..., Any], success: str, **kwargs: Any
) -> Any | None:
    """Call one service; its refusals become error messages, never a server error."""
    try:
        result = service(actor=request.user, request=request, **kwargs)
    except services.Conflict as exc:
        messages.error(request, f"Not allowed now: {exc}.")
        return None
    except services.ServiceError as exc:
        messages.error(request, str(exc))
        return None
    except control.PublishError as exc:
        # The change is committed; only the message to the site was not acknowledged.
        messages.warning(request, f"Saved, but the site was not reached yet ({exc}).")
        return True
    messages.success(request, success)
    return result


# --- Sharing policies --------------------------------------------------------------------------


def _user_labels(ids: set[int]) -> dict[int, str]:
    from django.contrib.auth import get_user_model

    model = get_user_model()
    rows = model._default_manager.filter(pk__in=ids).values_list("pk", model.USERNAME_FIELD)
    return {int(pk): str(name) for pk, name in rows}


class PolicyListView(GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"get": "read_policy", "post": "manage_policy"}

    def get(self, request: HttpRequest, form: forms.PolicyDraftForm | None = None) -> HttpResponse:
        hospital = request.GET.get("hospital", "")
        status = request.GET.get("status", "")
        hospital_id = int(hospital) if hospital.isdigit() else None
        if status not in PolicyStatus.values:
            status = ""
        rows = list(
            screens.policies_for_screen(user=request.user, hospital_id=hospital_id, status=status)
        )
        authors = _user_labels({p.created_by_id for p in rows if p.created_by_id})
        in_force = {p.hospital_id: p.version for p in rows if p.status == PolicyStatus.PUBLISHED}
        return render(
            request,
            "governance/web/policy_list.html",
            {
                "page_title": "Sharing policies",
                "policies": [
                    {
                        "policy": p,
                        "badge": screens.POLICY_BADGES.get(PolicyStatus(p.status), "info"),
                        "author": authors.get(p.created_by_id or 0, ""),
                        "approvals": sum(
                            1
                            for d in p.decisions.all()
                            if d.decision == PolicyDecision.Decision.APPROVE
                        ),
                        "in_force": in_force.get(p.hospital_id) == p.version,
                    }
                    for p in rows
                ],
                "hospitals": screens.hospital_choices(),
                "statuses": forms.policy_status_choices(),
                "selected_hospital": hospital_id,
                "selected_status": status,
                "can_manage": can(request.user, "manage_policy"),
                "form": form or forms.PolicyDraftForm(),
            },
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = forms.PolicyDraftForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form)
        policy = _run(
            request,
            services.policy_create_draft,
            "Draft created: edit it, then submit it for review.",
            hospital_id=form.cleaned_data["hospital"],
            note=form.cleaned_data["note"],
        )
        if isinstance(policy, SharingPolicy):
            return redirect("govweb:policy-detail", pk=policy.pk)
        return self.get(request, form=form)


class PolicyObjectMixin:
    request: HttpRequest

    def get_policy(self, pk: int, action: str = "read_policy") -> SharingPolicy:
        policy = screens.policy_for_screen(user=self.request.user, pk=pk, action=action)
        if policy is None:
            raise Http404("no such policy")
        return policy

    def not_a_draft(self, policy: SharingPolicy) -> HttpResponse | None:
        """The editors open drafts only: anything else goes back to the policy with a word."""
        if policy.status == PolicyStatus.DRAFT:
            return None
        messages.error(self.request, f"Only drafts can be edited; this version is {policy.status}.")
        return redirect("govweb:policy-detail", pk=policy.pk)


def _records_summary(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's sharing rules as rows (record kind, audience, fields, detail)."""
    out: list[dict[str, Any]] = []
    records = document.get("records") or {}
    if not isinstance(records, dict):
        return out
    for kind, audiences in records.items():
        if not isinstance(audiences, dict):
            continue
        for audience, rule in audiences.items():
            if not isinstance(rule, dict):
                continue
            out.append(
                {
                    "kind": kind,
                    "audience": str(audience).replace("_", " "),
                    "fields": rule.get("fields") or [],
                    "granularity": rule.get("date_granularity", ""),
                    "threshold": rule.get("small_cell_threshold"),
                    "k": rule.get("k"),
                    "quasi": rule.get("quasi_identifiers") or [],
                }
            )
    return out


class PolicyDetailView(PolicyObjectMixin, GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"get": "read_policy"}
    queryset = SharingPolicy.objects.all()

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        policy = self.get_policy(pk)
        decisions = list(policy.decisions.order_by("decided_at"))
        approvals = sum(1 for d in decisions if d.decision == PolicyDecision.Decision.APPROVE)
        user = request.user
        is_author = policy.created_by_id is not None and policy.created_by_id == user.pk
        decided = any(d.member_id == user.pk for d in decisions)
        manage = can(user, "manage_policy")
        approve = can(user, "approve_policy")
        status = policy.status
        authors = _user_labels({policy.created_by_id} if policy.created_by_id else set())
        return render(
            request,
            "governance/web/policy_detail.html",
            {
                "page_title": f"Policy {policy.site_code} v{policy.version}",
                "policy": policy,
                "badge": screens.POLICY_BADGES.get(PolicyStatus(status), "info"),
                "author": authors.get(policy.created_by_id or 0, ""),
                "decisions": decisions,
                "approvals": approvals,
                "quorum": services.hospital_quorum(policy.hospital_id),
                "steps": _steps(status),
                "rules": _records_summary(policy.document),
                "retention": policy.document.get("retention") or {},
                "in_force": selectors.policy_in_force(hospital_id=policy.hospital_id),
                "can_edit": manage and status == PolicyStatus.DRAFT,
                "can_submit": manage and status == PolicyStatus.DRAFT,
                "can_decide": approve and status == PolicyStatus.REVIEW and not decided,
                "can_approve": not is_author,
                "is_author": is_author,
                "decided": decided,
                "can_publish": manage and status == PolicyStatus.APPROVED,
                "can_redraft": manage
                and status in (PolicyStatus.PUBLISHED, PolicyStatus.REJECTED)
                and not SharingPolicy.objects.filter(
                    hospital_id=policy.hospital_id, version__gt=policy.version
                ).exists(),
                "decision_form": forms.DecisionForm(),
                "publish_form": forms.PublishForm(),
            },
        )


def _steps(status: str) -> list[dict[str, Any]]:
    order = [PolicyStatus.DRAFT, PolicyStatus.REVIEW, PolicyStatus.APPROVED, PolicyStatus.PUBLISHED]
    if status in (PolicyStatus.REJECTED, PolicyStatus.SUPERSEDED):
        reached = len(order) if status == PolicyStatus.SUPERSEDED else 2
    else:
        reached = order.index(PolicyStatus(status)) + 1
    return [
        {"label": s.label, "done": i < reached, "current": i == reached - 1}
        for i, s in enumerate(order)
    ]


class PolicyEditView(PolicyObjectMixin, GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"get": "manage_policy", "post": "manage_policy"}
    queryset = SharingPolicy.objects.all()

    def _page(
        self, request: HttpRequest, policy: SharingPolicy, form: forms.PolicyEditForm
    ) -> HttpResponse:
        return render(
            request,
            "governance/web/policy_edit.html",
            {
                "page_title": f"Edit {policy.site_code} v{policy.version}",
                "policy": policy,
                "form": form,
            },
        )

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        policy = self.get_policy(pk, "manage_policy")
        refused = self.not_a_draft(policy)
        return refused or self._page(request, policy, forms.PolicyEditForm.for_policy(policy))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        policy = self.get_policy(pk, "manage_policy")
        form = forms.PolicyEditForm(request.POST, policy=policy)
        if not form.is_valid():
            return self._page(request, policy, form)
        saved = _run(
            request,
            services.policy_update_draft,
            "Draft saved.",
            policy=policy,
            document=form.cleaned_data["document"],
            note=form.cleaned_data["note"],
            effective_at=form.cleaned_data["effective_at"],
        )
        if saved is None:
            return self._page(request, policy, form)
        return redirect("govweb:policy-detail", pk=policy.pk)


class PolicyRulesView(PolicyObjectMixin, GovernedScreen):
    """The structured editor of a draft's sharing rules (the JSON editor is the other way)."""

    governance_actions: ClassVar[dict[str, str]] = {"get": "manage_policy", "post": "manage_policy"}
    queryset = SharingPolicy.objects.all()

    def _page(
        self, request: HttpRequest, policy: SharingPolicy, form: forms.PolicyRulesForm
    ) -> HttpResponse:
        return render(
            request,
            "governance/web/policy_rules.html",
            {
                "page_title": f"Sharing rules of {policy.site_code} v{policy.version}",
                "policy": policy,
                "form": form,
                "rows": form.bound_rows(),
                "retention": form.bound_retention(),
            },
        )

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        policy = self.get_policy(pk, "manage_policy")
        refused = self.not_a_draft(policy)
        return refused or self._page(request, policy, forms.PolicyRulesForm(policy=policy))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        policy = self.get_policy(pk, "manage_policy")
        form = forms.PolicyRulesForm(request.POST, policy=policy)
        if not form.is_valid():
            return self._page(request, policy, form)
        saved = _run(
            request,
            services.policy_update_draft,
            "Sharing rules saved.",
            policy=policy,
            document=form.cleaned_data["document"],
        )
        if saved is None:
            return self._page(request, policy, form)
        return redirect("govweb:policy-detail", pk=policy.pk)


class PolicyDiffView(PolicyObjectMixin, GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"get": "read_policy"}
    queryset = SharingPolicy.objects.all()

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        policy = self.get_policy(pk)
        base = screens.policy_base_for_diff(user=request.user, policy=policy)
        changes = policies.diff(base.document if base else {}, policy.document)
        return render(
            request,
            "governance/web/policy_diff.html",
            {
                "page_title": f"Changes in {policy.site_code} v{policy.version}",
                "policy": policy,
                "base": base,
                "changes": [
                    {
                        "path": c.path,
                        "kind": c.kind,
                        "before": _show(c.before) if c.kind != "added" else "",
                        "after": _show(c.after) if c.kind != "removed" else "",
                    }
                    for c in changes
                ],
            },
        )


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class PolicyPreviewView(PolicyObjectMixin, GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"get": "read_policy"}
    queryset = SharingPolicy.objects.all()

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        policy = self.get_policy(pk)
        problem = ""
        result: policies.Preview | None = None
        try:
            result = policies.preview(
                policy.document, site_code=policy.site_code, version=policy.version
            )
        except policies.PolicyError as exc:
            problem = str(exc)
        slots: list[dict[str, Any]] = []
        if result is not None:
            names = sorted(set(result.released) | set(result.held))
            for slot in names:
                kind, _, audience = slot.partition("/")
                samples = result.samples.get(slot, [])
                slots.append(
                    {
                        "kind": kind,
                        "audience": audience.replace("_", " "),
                        "released": result.released.get(slot, 0),
                        "held": result.held.get(slot, []),
                        "sample": [
                            (k, "—" if v is None else _show(v))
                            for k, v in sorted(samples[0].items())
                            if k not in ("event_id", "source_event_id", "produced_at")
                        ]
                        if samples
                        else [],
                    }
                )
        return render(
            request,
            "governance/web/policy_preview.html",
            {
                "page_title": f"Preview {policy.site_code} v{policy.version}",
                "policy": policy,
                "preview": asdict(result) if result is not None else None,
                "slots": slots,
                "problem": problem,
            },
        )


class PolicyActionView(PolicyObjectMixin, GovernedScreen):
    """POST-only workflow steps of one policy: submit, decide, publish, next draft."""

    queryset = SharingPolicy.objects.all()
    step: ClassVar[str] = ""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        policy = self.get_policy(pk, self.governance_action)
        self.act(request, policy)
        return redirect("govweb:policy-detail", pk=policy.pk)

    def act(self, request: HttpRequest, policy: SharingPolicy) -> None:
        raise NotImplementedError


class PolicySubmitView(PolicyActionView):
    governance_actions: ClassVar[dict[str, str]] = {"post": "manage_policy"}

    def act(self, request: HttpRequest, policy: SharingPolicy) -> None:
        _run(request, services.policy_submit, "Submitted for the board's review.", policy=policy)


class PolicyDecideView(PolicyActionView):
    governance_actions: ClassVar[dict[str, str]] = {"post": "approve_policy"}

    def act(self, request: HttpRequest, policy: SharingPolicy) -> None:
        form = forms.DecisionForm(request.POST)
        decision = request.POST.get("decision")
        if decision not in ("approve", "reject") or not form.is_valid():
            messages.error(request, "Choose Approve or Reject (comments up to 2000 characters).")
            return
        approve = decision == "approve"
        _run(
            request,
            services.policy_decide,
            "Approval recorded." if approve else "Rejection recorded: the policy goes back.",
            policy=policy,
            approve=approve,
            comment=form.cleaned_data["comment"],
        )


class PolicyPublishView(PolicyActionView):
    governance_actions: ClassVar[dict[str, str]] = {"post": "manage_policy"}

    def act(self, request: HttpRequest, policy: SharingPolicy) -> None:
        form = forms.PublishForm(request.POST)
        if not form.is_valid():
            messages.error(
                request,
                "Effective date: " + " ".join(str(e) for e in form.errors.get("effective_at", [])),
            )
            return
        when = form.cleaned_data["effective_at"]
        scheduled = when is not None and when > timezone.now()
        _run(
            request,
            services.policy_publish,
            f"Scheduled: published automatically at {when:%Y-%m-%d %H:%M} UTC."
            if scheduled
            else "Published: signed and sent to the site.",
            policy=policy,
            effective_at=when,
        )


class PolicyRedraftView(PolicyActionView):
    governance_actions: ClassVar[dict[str, str]] = {"post": "manage_policy"}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        policy = self.get_policy(pk, "manage_policy")
        draft = _run(
            request,
            services.policy_create_draft,
            "Next version drafted from this one.",
            hospital_id=policy.hospital_id,
            document=dict(policy.document),
        )
        target = draft.pk if isinstance(draft, SharingPolicy) else policy.pk
        return redirect("govweb:policy-detail", pk=target)


# --- Erasure requests --------------------------------------------------------------------------


def _due(erasure: ErasureRequest) -> str:
    if erasure.status in (ErasureStatus.CLOSED, ErasureStatus.REJECTED):
        return ""
    days = (erasure.due_at - timezone.now()).days
    return "overdue" if days < 0 else ("soon" if days < 7 else "")


class ErasureListView(GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"get": "read_erasure", "post": "manage_erasure"}

    def get(
        self, request: HttpRequest, form: forms.ErasureCreateForm | None = None
    ) -> HttpResponse:
        status = request.GET.get("status", "")
        qs = selectors.erasure_request_list(user=request.user)
        if status == "open":
            qs = qs.exclude(status__in=[ErasureStatus.CLOSED, ErasureStatus.REJECTED])
        elif status in ErasureStatus.values:
            qs = qs.filter(status=status)
        else:
            status = ""
        rows = list(qs.order_by("due_at")[:500])
        return render(
            request,
            "governance/web/erasure_list.html",
            {
                "page_title": "Erasure requests",
                "rows": [
                    {
                        "e": e,
                        "badge": screens.ERASURE_BADGES.get(e.status, "info"),
                        "due": _due(e),
                        "deleted": sum(int(v) for v in e.deleted_counts.values()),
                    }
                    for e in rows
                ],
                "statuses": [("", "All"), ("open", "Open"), *ErasureStatus.choices],
                "selected_status": status,
                "can_manage": can(request.user, "manage_erasure"),
                "form": form or forms.ErasureCreateForm(),
                "open_form": form is not None,
            },
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = forms.ErasureCreateForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form)
        erasure = _run(
            request,
            services.erasure_request_create,
            "Erasure request opened; it needs approval before anything is deleted.",
            hospital_id=form.cleaned_data["hospital"],
            surrogate_id=form.cleaned_data["surrogate_id"],
            origin=ErasureRequest.Origin.BOARD,
            reason=form.cleaned_data["reason"],
        )
        if isinstance(erasure, ErasureRequest):
            return redirect("govweb:erasure-detail", pk=erasure.pk)
        return self.get(request, form=form)


class ErasureObjectMixin:
    request: HttpRequest

    def get_erasure(self, pk: Any, action: str = "read_erasure") -> ErasureRequest:
        erasure = (
            selectors.erasure_request_list(user=self.request.user, action=action)
            .filter(pk=pk)
            .first()
        )
        if erasure is None:
            raise Http404("no such erasure request")
        return erasure


class ErasureDetailView(ErasureObjectMixin, GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"get": "read_erasure"}
    queryset = ErasureRequest.objects.all()

    def get(self, request: HttpRequest, pk: Any, reject_form: Any = None) -> HttpResponse:
        erasure = self.get_erasure(pk)
        manage = can(request.user, "manage_erasure")
        status = erasure.status
        timeline = [
            ("Received", erasure.received_at, erasure.requested_by_label or erasure.origin),
            ("Approved", erasure.approved_at, erasure.approved_by_label),
            ("Executed at the hub", erasure.executed_at, ""),
            ("Site confirmed", erasure.confirmed_at, ""),
            ("Closed", erasure.closed_at, ""),
        ]
        return render(
            request,
            "governance/web/erasure_detail.html",
            {
                "page_title": f"Erasure at {erasure.site_code}",
                "e": erasure,
                "badge": screens.ERASURE_BADGES.get(status, "info"),
                "due": _due(erasure),
                "timeline": timeline,
                "deleted": sorted(erasure.deleted_counts.items()),
                "deleted_total": sum(int(v) for v in erasure.deleted_counts.values()),
                "evidence": sorted((k, _show(v)) for k, v in erasure.site_evidence.items()),
                "can_approve": manage and status == ErasureStatus.RECEIVED,
                "can_execute": manage and status == ErasureStatus.APPROVED,
                "can_reject": manage and status in (ErasureStatus.RECEIVED, ErasureStatus.APPROVED),
                "can_resend": manage and status == ErasureStatus.EXECUTED,
                "reject_form": reject_form or forms.ErasureRejectForm(),
            },
        )


class ErasureActionView(ErasureObjectMixin, GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"post": "manage_erasure"}
    queryset = ErasureRequest.objects.all()

    def post(self, request: HttpRequest, pk: Any) -> HttpResponse:
        erasure = self.get_erasure(pk, "manage_erasure")
        response = self.act(request, erasure)
        return response or redirect("govweb:erasure-detail", pk=erasure.pk)

    def act(self, request: HttpRequest, erasure: ErasureRequest) -> HttpResponse | None:
        raise NotImplementedError


class ErasureApproveView(ErasureActionView):
    def act(self, request: HttpRequest, erasure: ErasureRequest) -> HttpResponse | None:
        _run(request, services.erasure_request_approve, "Approved.", erasure=erasure)
        return None


class ErasureExecuteView(ErasureActionView):
    def act(self, request: HttpRequest, erasure: ErasureRequest) -> HttpResponse | None:
        _run(
            request,
            services.erasure_request_execute,
            "Executed: the hub's rows are deleted and the directive is sent to the site.",
            erasure=erasure,
        )
        return None


class ErasureRejectView(ErasureActionView):
    def act(self, request: HttpRequest, erasure: ErasureRequest) -> HttpResponse | None:
        form = forms.ErasureRejectForm(request.POST)
        if not form.is_valid():
            view = ErasureDetailView()
            view.request = request
            return view.get(request, erasure.pk, reject_form=form)
        _run(
            request,
            services.erasure_request_reject,
            "Rejected.",
            erasure=erasure,
            reason=form.cleaned_data["reason"],
        )
        return None


class ErasureResendView(ErasureActionView):
    def act(self, request: HttpRequest, erasure: ErasureRequest) -> HttpResponse | None:
        try:
            services.erasure_directive_resend(erasure=erasure)
        except services.ServiceError as exc:
            messages.error(request, f"Not allowed now: {exc}.")
        except control.PublishError as exc:
            messages.warning(request, f"The site was not reached ({exc}); try again later.")
        else:
            messages.success(request, "Directive sent to the site again.")
        return None


# --- Audit log ---------------------------------------------------------------------------------


def _audit_query(request: HttpRequest) -> tuple[forms.AuditSearchForm, screens.AuditSearch]:
    form = forms.AuditSearchForm(request.GET or None)
    if form.is_bound:
        form.is_valid()
    return form, form.search()


def _querystring(request: HttpRequest, drop: tuple[str, ...] = ("page",)) -> str:
    params = request.GET.copy()
    for key in drop:
        params.pop(key, None)
    return params.urlencode()


class AuditListView(GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"get": "read_audit"}

    def get(self, request: HttpRequest) -> HttpResponse:
        form, search = _audit_query(request)
        qs = screens.audit_search(user=request.user, search=search)
        page = CappedPaginator(qs, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
        return render(
            request,
            "governance/web/audit_list.html",
            {
                "page_title": "Audit log",
                "form": form,
                "page": page,
                "events": [
                    {"ev": ev, "detail": _show(ev.detail) if ev.detail else ""}
                    for ev in page.object_list
                ],
                "actions": screens.audit_action_names(user=request.user),
                "query": _querystring(request),
                "can_export": can(request.user, "export_audit"),
            },
        )


class AuditExportView(GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"get": "export_audit"}

    def get(self, request: HttpRequest) -> HttpResponseBase:
        form, search = _audit_query(request)
        fmt = request.GET.get("format", "csv")
        if fmt not in ("csv", "jsonl") or (form.is_bound and form.errors):
            messages.error(request, "Fix the search (or choose CSV or JSON Lines) to export.")
            return redirect(reverse("govweb:audit") + "?" + _querystring(request, ("format",)))
        qs = screens.audit_search(user=request.user, search=search, action="export_audit")
        count = qs.count()
        context = getattr(request, "audit_context", None)
        if context is not None:  # the export's own audit event says what was exported
            context.update(
                row_count=count,
                detail={"format": fmt, "query": _querystring(request, ("format", "page"))},
            )
        rows = qs.values_list(*EXPORT_FIELDS).iterator(chunk_size=2000)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        if fmt == "csv":
            body: Iterator[str] = _csv_rows(rows)
            content_type, name = "text/csv; charset=utf-8", f"audit-{stamp}.csv"
        else:
            body = _jsonl_rows(rows)
            content_type, name = "application/jsonl; charset=utf-8", f"audit-{stamp}.jsonl"
        response = StreamingHttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(rows: Iterator[tuple[Any, ...]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for row in rows:
        yield writer.writerow(_show(v) if isinstance(v, dict | list) else v for v in row)


def _jsonl_rows(rows: Iterator[tuple[Any, ...]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(dict(zip(EXPORT_FIELDS, row, strict=True)), default=str) + "\n"


class AuditVerifyView(GovernedScreen):
    """Walk the hash chain now and show the outcome (what ``manage.py audit verify`` does)."""

    governance_actions: ClassVar[dict[str, str]] = {"post": "read_audit"}

    def post(self, request: HttpRequest) -> HttpResponse:
        report = chain.verify()
        head = (
            AuditEvent.objects.filter(chain_seq__isnull=False)
            .order_by("-chain_seq")
            .values("id", "chain_seq", "chain_hash", "occurred_at")
            .first()
        )
        bad = None
        if report.first_bad_id is not None:
            bad = AuditEvent.objects.filter(pk=report.first_bad_id).first()
        return render(
            request,
            "governance/web/audit_verify.html",
            {
                "page_title": "Audit chain verification",
                "report": report,
                "head": head,
                "bad": bad,
                "unlinked": len(report.unlinked_ids),
                "verified_at": timezone.now(),
            },
        )


# --- Retention ---------------------------------------------------------------------------------


def _run_totals(run: RetentionRun) -> dict[str, int]:
    deleted = errors = 0
    for dc in (run.report or {}).get("classes", []):
        for t in dc.get("tables", []):
            deleted += int(t.get("rows_deleted", 0) or 0) + int(
                t.get("rows_in_dropped_partitions", 0) or 0
            )
            errors += 1 if t.get("error") else 0
    return {"deleted": deleted, "errors": errors}


class RetentionListView(GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {
        "get": "read_retention",
        "post": "run_retention",
    }

    def get(self, request: HttpRequest, form: forms.RetentionRunForm | None = None) -> HttpResponse:
        runs = list(selectors.retention_run_list(user=request.user).order_by("-started_at")[:100])
        return render(
            request,
            "governance/web/retention_list.html",
            {
                "page_title": "Retention",
                "runs": [{"run": r, **_run_totals(r)} for r in runs],
                "can_run": can(request.user, "run_retention"),
                "form": form or forms.RetentionRunForm(initial={"mode": "dry"}),
            },
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = forms.RetentionRunForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form)
        dry = form.dry_run
        run = _run(
            request,
            services.retention_run,
            "Dry run finished: nothing was deleted." if dry else "Retention run finished.",
            dry_run=dry,
        )
        if isinstance(run, RetentionRun):
            return redirect("govweb:retention-detail", pk=run.pk)
        return self.get(request, form=form)


def _when(text: Any) -> str:
    """An ISO timestamp of a report as "YYYY-MM-DD HH:MM" (UTC), or the text as it is."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return str(text or "")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _class_report(dc: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": dc.get("name", ""),
        "months": dc.get("months"),
        "cutoff": _when(dc.get("cutoff")),
        "per_hospital": [
            (h, _when(c)) for h, c in sorted((dc.get("per_hospital_cutoffs") or {}).items())
        ],
        "tables": [
            {
                "table": t.get("table", ""),
                "deleted": int(t.get("rows_deleted", 0) or 0),
                "partitions": t.get("partitions_dropped") or [],
                "partition_rows": int(t.get("rows_in_dropped_partitions", 0) or 0),
                "error": t.get("error", ""),
            }
            for t in dc.get("tables", [])
        ],
    }


class RetentionDetailView(GovernedScreen):
    governance_actions: ClassVar[dict[str, str]] = {"get": "read_retention"}
    queryset = RetentionRun.objects.all()

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = selectors.retention_run_list(user=request.user).filter(pk=pk).first()
        if run is None:
            raise Http404("no such retention run")
        classes = [_class_report(dc) for dc in (run.report or {}).get("classes", [])]
        return render(
            request,
            "governance/web/retention_detail.html",
            {
                "page_title": f"Retention run {run.pk}",
                "run": run,
                "classes": classes,
                **_run_totals(run),
            },
        )
