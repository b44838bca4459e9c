"""The one place the registry calls governance, so a change of governance's API touches one
file. Governance never imports the hub; the hub may import governance."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def grant_site_agent(*, user: Any, hospital: Any) -> None:
    """Give a site agent's service account the site-agent role on its own hospital."""
    try:
        from governance import access
    except ImportError:  # governance not installed yet: nothing to grant
        return
    grant = getattr(access, "grant_hospital", None)
    role = getattr(getattr(access, "Role", None), "SITE_AGENT", None)
    if grant is not None and role is not None:
        grant(user, hospital, role)


def current_policy(*, hospital_id: int) -> dict[str, Any] | None:
    """The site's policy in force: the newest published version whose effective time has
    come. None when governance has published none."""
    from django.db.models import Q
    from django.utils import timezone

    try:
        from governance.models import SharingPolicy
    except ImportError:
        return None
    policy = (
        SharingPolicy.objects.filter(hospital_id=hospital_id, status="published")
        .filter(Q(effective_at__isnull=True) | Q(effective_at__lte=timezone.now()))
        .order_by("-version")
        .first()
    )
    if policy is None:
        return None
    return {
        "site_code": policy.site_code,
        "version": policy.version,
        "key_id": policy.key_id,
        "effective_at": policy.effective_at,
        "signed": bytes(policy.signed or b""),
        "document": policy.document,
    }


def policy_changes_at(*, hospital_id: int) -> datetime | None:
    """When the site's policy in force would change by the clock alone: the earliest effective
    time still ahead among its published policies (None: not before the next write)."""
    from django.db.models import Min
    from django.utils import timezone

    try:
        from governance.models import SharingPolicy
    except ImportError:
        return None
    ahead: datetime | None = SharingPolicy.objects.filter(
        hospital_id=hospital_id, status="published", effective_at__gt=timezone.now()
    ).aggregate(at=Min("effective_at"))["at"]
    return ahead


def mirror_erasure_directive(*, hospital_id: int, directive: dict[str, Any], **_: Any) -> Any:
    """Governance executed an erasure: queue its signed directive for the site's agent, which
    fetches it through the site API (``GET /api/v1/site/directives/``), verifies governance's
    signature, crypto-shreds and confirms. A resent directive that is still pending is not
    queued twice."""
    from hub.registry.models import Directive, Hospital

    pending = Directive.objects.filter(
        hospital_id=hospital_id,
        kind=Directive.Kind.ERASURE,
        acknowledged_at__isnull=True,
        payload__directive_id=directive.get("directive_id"),
    ).first()
    if pending is not None:
        return pending
    from hub.registry.services import directive_issue

    return directive_issue(
        hospital=Hospital.objects.get(pk=hospital_id),
        kind=Directive.Kind.ERASURE,
        payload=dict(directive),
        issued_by=None,
    )


def _on_erasure_directive(sender: Any, **kwargs: Any) -> None:
    mirror_erasure_directive(hospital_id=kwargs["hospital_id"], directive=kwargs["directive"])


def scrub_erasure_directives(*, hospital_id: int, erasure_id: str, surrogate_digest: str) -> int:
    """The erasure is confirmed: the queued directive keeps the surrogate's digest instead of
    the surrogate (the hub holds nothing that names the patient afterwards) and, if the site
    confirmed without acknowledging it, it counts as acknowledged."""
    from django.utils import timezone

    from hub.registry.models import Directive

    rows = Directive.objects.select_for_update().filter(
        hospital_id=hospital_id, kind=Directive.Kind.ERASURE, payload__erasure_id=erasure_id
    )
    count = 0
    for row in rows:
        payload = {k: v for k, v in row.payload.items() if k not in ("surrogate_id", "signature")}
        row.payload = {**payload, "surrogate_digest": surrogate_digest, "confirmed": True}
        row.acknowledged_at = row.acknowledged_at or timezone.now()
        row.save(update_fields=["payload", "acknowledged_at"])
        count += 1
    return count


def _on_erasure_confirmed(sender: Any, **kwargs: Any) -> None:
    scrub_erasure_directives(
        hospital_id=kwargs["hospital_id"],
        erasure_id=str(kwargs["erasure"].pk),
        surrogate_digest=kwargs["surrogate_digest"],
    )


def connect_signals() -> None:
    """Listen to governance's signals (called once from the registry app's ``ready``)."""
    try:
        from governance import signals
    except ImportError:
        return
    issued = getattr(signals, "erasure_directive_issued", None)
    if issued is not None:
        issued.connect(_on_erasure_directive, dispatch_uid="registry.mirror_erasure_directive")
    confirmed = getattr(signals, "erasure_confirmed", None)
    if confirmed is not None:
        confirmed.connect(_on_erasure_confirmed, dispatch_uid="registry.scrub_erasure_directive")
