"""Reads of the registry."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from hub.registry.models import Directive, Hospital, SiteAgent, Unit
from hub.registry.services import secret_digest


def agent_by_credential(credential: str) -> SiteAgent | None:
    """The enrolled, unrevoked agent holding this credential, or None."""
    if not credential:
        return None
    return (
        SiteAgent.objects.select_related("hospital", "service_user")
        .filter(
            credential_hash=secret_digest(credential),
            enrolled_at__isnull=False,
            revoked_at__isnull=True,
        )
        .first()
    )


def site_verification_keys(site_code: str) -> tuple[int | None, dict[str, str]]:
    """(hospital id, {key_id: public key}) of every enrolled, unrevoked agent of a site.

    Several keys are normal during a key rotation: both the old and new agent verify until
    the old one is revoked.
    """
    hospital = Hospital.objects.filter(site_code=site_code, active=True).only("pk").first()
    if hospital is None:
        return None, {}
    keys = dict(
        SiteAgent.objects.filter(
            hospital=hospital, enrolled_at__isnull=False, revoked_at__isnull=True
        )
        .exclude(public_key="")
        .values_list("key_id", "public_key")
    )
    return hospital.pk, keys


def hospital_list() -> QuerySet[Hospital]:
    return Hospital.objects.select_related("region").prefetch_related(
        Prefetch("units", queryset=Unit.objects.filter(active=True).order_by("code"))
    )


def unit_index(hospital_id: int) -> tuple[dict[str, int], dict[str, int], frozenset[str]]:
    """Lookups for ingestion: {unit code: unit id}, {unit type: unit id} for the types a
    hospital has exactly one active unit of (a record without a unit code can be placed only
    then), and every unit type the hospital has."""
    by_code: dict[str, int] = {}
    by_type: dict[str, list[int]] = {}
    for pk, code, unit_type in Unit.objects.filter(
        hospital_id=hospital_id, active=True
    ).values_list("pk", "code", "unit_type"):
        by_code[code] = pk
        by_type.setdefault(unit_type, []).append(pk)
    return by_code, {t: ids[0] for t, ids in by_type.items() if len(ids) == 1}, frozenset(by_type)


def directives_pending(*, hospital_id: int) -> QuerySet[Directive]:
    """Directives an agent has not acknowledged yet, oldest first (it applies them in order)."""
    return Directive.objects.filter(hospital_id=hospital_id, acknowledged_at__isnull=True).order_by(
        "issued_at", "id"
    )
