"""Reads. Every selector that returns rows to a person takes the user and restricts with
``governance.access.restrict``; selectors never write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from governance.access import restrict
from governance.models import (
    AuditEvent,
    ErasureRequest,
    PolicyStatus,
    RetentionRun,
    SharingPolicy,
)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor_id: int | None = None
    actor: str = ""
    action: str = ""
    hospital_id: int | None = None
    request_id: str = ""
    since: datetime | None = None
    until: datetime | None = None


def audit_event_list(
    *, user: Any, filters: AuditFilter | None = None, action: str = "read_audit"
) -> QuerySet[AuditEvent]:
    """The board's and auditors' audit search, newest first."""
    qs = restrict(AuditEvent.objects.all(), user, action)
    f = filters or AuditFilter()
    if f.actor_id is not None:
        qs = qs.filter(actor_id=f.actor_id)
    if f.actor:
        qs = qs.filter(actor_label=f.actor)
    if f.action:
        qs = qs.filter(action=f.action)
    if f.hospital_id is not None:
        qs = qs.filter(hospital_ids__contains=[f.hospital_id])
    if f.request_id:
        qs = qs.filter(request_id=f.request_id)
    if f.since is not None:
        qs = qs.filter(occurred_at__gte=f.since)
    if f.until is not None:
        qs = qs.filter(occurred_at__lt=f.until)
    return qs.order_by("-id")


def policy_list(*, user: Any, action: str = "read_policy") -> QuerySet[SharingPolicy]:
    return restrict(SharingPolicy.objects.all(), user, action).prefetch_related("decisions")


def policy_in_force(*, hospital_id: int) -> SharingPolicy | None:
    """The published version a hospital's DE-ID workers should be running."""
    return (
        SharingPolicy.objects.filter(hospital_id=hospital_id, status=PolicyStatus.PUBLISHED)
        .order_by("-version")
        .first()
    )


def erasure_request_list(*, user: Any, action: str = "read_erasure") -> QuerySet[ErasureRequest]:
    return restrict(ErasureRequest.objects.all(), user, action)


def retention_run_list(*, user: Any) -> QuerySet[RetentionRun]:
    return restrict(RetentionRun.objects.all(), user, "read_retention")
