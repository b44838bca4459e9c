"""KPIs from de-identified flow records in the database, stored, suppressed and exported."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from governance import access
from governance.roles import Role
from hub.benchmarks import services
from hub.benchmarks.models import HospitalKpi, UnitLosKpi
from hub.census.models import FlowEvent
from hub.registry.models import Hospital
from tests.hub.coordination.db import new_region, site

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

DAY = datetime(2026, 11, 23, tzinfo=UTC)


def flow(hospital: Hospital, surrogate: str, event: str, at: datetime, **kw: Any) -> None:
    FlowEvent.objects.create(
        event_id=uuid.uuid4(),
        observed_at=at,
        hospital=hospital,
        site_code=hospital.site_code,
        audience="regional_operations",
        policy_version=1,
        source_event_id=str(uuid.uuid4()),
        surrogate_id=surrogate,
        event_type=event,
        produced_at=at,
        received_at=at,
        key_id="test",
        via="kafka",
        **kw,
    )


def visits(hospital: Hospital, n: int, *, admitted_every: int = 3) -> None:
    """n ED visits on DAY: visit i stays 60 + 30·i minutes; every third is admitted to ward
    after a 45-minute wait from the decision to admit, and discharged two days later."""
    for i in range(n):
        s = f"sg-{hospital.site_code}-{i}"
        arrival = DAY + timedelta(hours=8, minutes=i)
        flow(hospital, s, "register", arrival, unit_type="emergency", acuity=1 + i % 5)
        leave = arrival + timedelta(minutes=60 + 30 * i)
        if i % admitted_every == 0:
            flow(
                hospital,
                s,
                "admit",
                leave,
                unit_type="medical_surgical",
                prior_unit_type="emergency",
                wait_minutes=45,
            )
            flow(
                hospital,
                s,
                "discharge",
                leave + timedelta(days=2),
                unit_type="",
                prior_unit_type="medical_surgical",
            )
        else:
            flow(hospital, s, "discharge", leave, prior_unit_type="emergency")


def test_daily_kpis_are_computed_stored_and_small_samples_withheld() -> None:
    region = new_region("bench-1")
    big, small = site(region, "BIG").hospital, site(region, "SMALL").hospital
    visits(big, 20)
    visits(small, 4)  # under the default 11-case threshold: withheld
    # Three days: the visits of the first, the discharges from the ward on the third.
    written = services.kpis_refresh(
        hospitals=Hospital.objects.filter(region=region),
        period="day",
        since=DAY,
        until=DAY + timedelta(days=3),
    )
    assert written == 2
    k = HospitalKpi.objects.get(hospital=big, period="day")
    assert k.attendances == 20
    # Stays are 60, 90, ..., 630 minutes: within 4 h are 60..240 (7 of 20).
    assert k.within_4h_share == pytest.approx(7 / 20)
    assert k.waits_over_12h == 0
    assert k.admissions == 7  # i = 0, 3, ..., 18
    assert k.boarding_median_minutes == pytest.approx(45)
    assert k.peer_group == "small/general"
    s = HospitalKpi.objects.get(hospital=small)
    assert s.suppressed is True
    assert s.attendances is None
    assert s.within_4h_share is None
    los = UnitLosKpi.objects.get(hospital=big, unit_type="medical_surgical")
    assert los.period_start == (DAY + timedelta(days=2)).date()
    assert (los.stays, los.suppressed) == (None, True)  # 7 stays: under 11, withheld
    # Re-running replaces, never duplicates.
    services.kpis_refresh(
        hospitals=Hospital.objects.filter(region=region),
        period="day",
        since=DAY,
        until=DAY + timedelta(days=1),
    )
    assert HospitalKpi.objects.filter(hospital=big, period="day").count() == 1


def test_csv_export_and_peer_ranks(django_user_model: Any) -> None:
    region = new_region("bench-2")
    a, b = site(region, "A").hospital, site(region, "B").hospital
    visits(a, 12)
    visits(b, 15, admitted_every=2)
    services.kpis_refresh(
        hospitals=Hospital.objects.filter(region=region),
        period="day",
        since=DAY,
        until=DAY + timedelta(days=1),
    )
    user = django_user_model.objects.create_user(username="bench-op", password=None)
    access.assign_role(user, Role.REGIONAL_OPERATOR)
    client = APIClient()
    client.force_authenticate(user=user)
    r = client.get("/api/v1/benchmarks/kpis/export/?period=day")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv")
    lines = r.content.decode().splitlines()
    assert lines[0].startswith("hospital,period,period_start,peer_group,attendances,")
    assert {line.split(",")[0] for line in lines[1:]} >= {a.site_code, b.site_code}
    ranks = client.get("/api/v1/benchmarks/kpis/peers/?period=day&metric=within_4h_share").json()
    by_code = {row["hospital"]: row for row in ranks}
    assert {by_code[a.site_code]["rank"], by_code[b.site_code]["rank"]} == {1.0, 2.0}
