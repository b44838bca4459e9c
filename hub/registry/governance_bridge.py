"""The one place the registry calls governance, so a change of governance's API touches one
file. Governance never imports the hub; the hub may import governance."""

from __future__ import annotations

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
