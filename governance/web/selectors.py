"""Reads for the governance screens. Every query that returns rows to a person starts from a
``governance.selectors`` function (which restricts with ``governance.access.restrict``); this
module only adds the screens' own filters and look-ups on top."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from governance import conf, selectors
from governance.models import AuditEvent, PolicyStatus, SharingPolicy

# The order policy states are shown in, and the badge class of each (app.css).
POLICY_BADGES = {
    PolicyStatus.DRAFT: "muted",
    PolicyStatus.REVIEW: "warn",
    PolicyStatus.APPROVED: "info",
    PolicyStatus.PUBLISHED: "ok",
    PolicyStatus.SUPERSEDED: "muted",
    PolicyStatus.REJECTED: "bad",
}
ERASURE_BADGES = {
    "received": "warn",
    "approved": "info",
    "executed": "info",
    "closed": "ok",
    "rejected": "bad",
}


def hospital_choices() -> list[tuple[int, str]]:
    """(id, "SITE — name") of every hospital of the configured model, for pickers. The
    governance screens are region-wide (board only), so no hospital is hidden."""
    model = conf.hospital_model()
    code_field = conf.setting("GOVERNANCE_HOSPITAL_SITE_CODE_FIELD", "site_code")
    fields = [f.name for f in model._meta.get_fields()]
    name_field = "name" if "name" in fields else code_field
    rows = model._default_manager.order_by(code_field).values_list("pk", code_field, name_field)
    return [(int(pk), f"{code} — {name}" if name != code else str(code)) for pk, code, name in rows]


def policies_for_screen(
    *, user: Any, hospital_id: int | None = None, status: str = ""
) -> QuerySet[SharingPolicy]:
    qs = selectors.policy_list(user=user)
    if hospital_id is not None:
        qs = qs.filter(hospital_id=hospital_id)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("site_code", "-version")


def policy_for_screen(*, user: Any, pk: int, action: str = "read_policy") -> SharingPolicy | None:
    return selectors.policy_list(user=user, action=action).filter(pk=pk).first()


def policy_base_for_diff(*, user: Any, policy: SharingPolicy) -> SharingPolicy | None:
    """What a version is compared with: the policy in force for its hospital (when that is
    another version), else the version before it."""
    visible = selectors.policy_list(user=user).filter(hospital_id=policy.hospital_id)
    in_force = selectors.policy_in_force(hospital_id=policy.hospital_id)
    if in_force is not None and in_force.pk != policy.pk:
        return visible.filter(pk=in_force.pk).first()
    return visible.filter(version__lt=policy.version).order_by("-version").first()


@dataclass(frozen=True, slots=True)
class AuditSearch:
    """The audit screen's search: the API's filters plus target and free text."""

    base: selectors.AuditFilter
    target: str = ""
    text: str = ""


def audit_search(
    *, user: Any, search: AuditSearch, action: str = "read_audit"
) -> QuerySet[AuditEvent]:
    qs = selectors.audit_event_list(user=user, filters=search.base, action=action)
    if search.target:
        qs = qs.filter(target__icontains=search.target)
    if search.text:
        text = search.text
        qs = qs.filter(
            Q(action__icontains=text)
            | Q(actor_label__icontains=text)
            | Q(target__icontains=text)
            | Q(path__icontains=text)
            | Q(request_id=text)
        )
    return qs


# The picker's actions come from the newest events: a DISTINCT over the whole log reads all
# of it (PostgreSQL has no skip scan), which a log of tens of millions of rows a day would
# make outlast the web's statement timeout (governance/paging.py). Any action can still be
# typed into the search.
ACTION_NAMES_FROM = 100_000


def audit_action_names(*, user: Any) -> list[str]:
    """The actions of the newest ``ACTION_NAMES_FROM`` events the user may see, for the
    search form's picker (one ``DISTINCT`` over that many rows of the id index)."""
    newest = selectors.audit_event_list(user=user).values("action")[:ACTION_NAMES_FROM]
    sql, params = newest.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT action FROM ({sql}) AS newest", params)  # noqa: S608  # nosec B608
        return sorted(str(row[0]) for row in cursor.fetchall())
