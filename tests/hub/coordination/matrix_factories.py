"""Objects of the coordination and benchmarks models for the permission matrix
(tests/governance/test_permission_matrix.py): one object per hospital the matrix asks for."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db import models
from django.utils import timezone

from governance.testing import register_matrix_factory, register_url_kwarg
from hub.benchmarks.models import HospitalKpi, UnitLosKpi
from hub.coordination import checklists
from hub.coordination import models as m


# Region routes name the region by code; the matrix hands us a hospital of that region.
def _region_code(obj: Any) -> str:
    return str(obj.region.code)


register_url_kwarg("region_code", _region_code)


def _recommendation(hospital: Any) -> m.DiversionRecommendation:
    now = timezone.now()
    # One pending recommendation per hospital: the matrix asks for a fresh one every time.
    m.DiversionRecommendation.objects.filter(
        hospital=hospital, state=m.DiversionRecommendation.State.PENDING
    ).update(state=m.DiversionRecommendation.State.SUPERSEDED, closed_at=now)
    return m.DiversionRecommendation.objects.create(
        region=hospital.region,
        hospital=hospital,
        status=m.DiversionStatus.ADVISORY,
        score=0.7,
        routes=[],
        explanation="matrix: synthetic advice",
        created_at=now,
        renewed_at=now,
        expires_at=now + timedelta(minutes=60),
    )


@register_matrix_factory("coordination.DiversionRecommendation")
def recommendation(hospital: Any, unit: Any) -> models.Model:
    return _recommendation(hospital)


@register_matrix_factory("coordination.DiversionDecision")
def decision(hospital: Any, unit: Any) -> models.Model:
    now = timezone.now()
    m.DiversionDecision.objects.filter(
        hospital=hospital, state=m.DiversionDecision.State.ACTIVE
    ).update(state=m.DiversionDecision.State.SUPERSEDED, closed_at=now)
    return m.DiversionDecision.objects.create(
        region=hospital.region,
        hospital=hospital,
        recommendation=_recommendation(hospital),
        action=m.DiversionDecision.Action.ACCEPT,
        status=m.DiversionStatus.ADVISORY,
        decided_at=now,
        expires_at=now + timedelta(minutes=60),
    )


@register_matrix_factory("coordination.HospitalStatus")
def hospital_status(hospital: Any, unit: Any) -> models.Model:
    row, _ = m.HospitalStatus.objects.get_or_create(hospital=hospital)
    return row


@register_matrix_factory("coordination.SurgeLevelChange")
def surge_change(hospital: Any, unit: Any) -> models.Model:
    digests = checklists.checklists_store([("matrix: review the escalation plan",)])
    return m.SurgeLevelChange.objects.create(
        region=hospital.region,
        hospital=hospital,
        from_level=1,
        to_level=2,
        score=30.0,
        checklist_ref_id=next(iter(digests.values())),
        explanation="matrix: OPEL 1 → 2",
        at=timezone.now(),
    )


@register_matrix_factory("coordination.Alert")
def alert(hospital: Any, unit: Any) -> models.Model:
    now = timezone.now()
    return m.Alert.objects.create(
        region=hospital.region,
        hospital=hospital,
        key=f"matrix:{hospital.site_code}:{now.timestamp()}",
        kind="threshold",
        severity=m.Severity.WARNING,
        title="matrix alert",
        message="matrix alert",
        raised_at=now,
        opened_at=now,
        last_seen_at=now,
        last_notified_at=now,
    )


@register_matrix_factory("coordination.ResourceRequest")
def resource_request(hospital: Any, unit: Any) -> models.Model:
    now = timezone.now()
    return m.ResourceRequest.objects.create(
        region=hospital.region,
        requester=hospital,
        kind=m.ResourceKind.EQUIPMENT,
        item="ventilator",
        quantity=1,
        created_at=now,
        updated_at=now,
    )


@register_matrix_factory("coordination.ResourceAvailability")
def availability(hospital: Any, unit: Any) -> models.Model:
    return m.ResourceAvailability.objects.create(
        hospital=hospital,
        kind=m.ResourceKind.EQUIPMENT,
        item="ventilator",
        quantity=2,
        as_of=timezone.now(),
    )


@register_matrix_factory("benchmarks.HospitalKpi")
def kpi(hospital: Any, unit: Any) -> models.Model:
    start = date(2026, 1, 1) + timedelta(days=HospitalKpi.objects.count())
    return HospitalKpi.objects.create(
        hospital=hospital,
        period="day",
        period_start=start,
        attendances=120,
        within_4h_share=0.8,
        computed_at=timezone.now(),
    )


@register_matrix_factory("benchmarks.UnitLosKpi")
def unit_los(hospital: Any, unit: Any) -> models.Model:
    start = date(2026, 1, 1) + timedelta(days=UnitLosKpi.objects.count())
    return UnitLosKpi.objects.create(
        hospital=hospital,
        unit_type="adult_icu",
        period="day",
        period_start=start,
        stays=20,
        los_median_days=3.0,
        computed_at=timezone.now(),
    )
