"""Writes of benchmarking: compute the KPIs of a window and store them (idempotently: a
re-run replaces the rows of the same hospital and period)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from governance.selectors import policy_in_force
from hub.benchmarks import kpis, selectors
from hub.benchmarks.models import HospitalKpi, UnitLosKpi
from hub.registry.models import Hospital

# Without a published policy, cells under 11 are withheld: the CMS cell-size suppression
# rule (1-10), the common default for published hospital statistics.
DEFAULT_MIN_CELL = 11
KPI_FIELDS = [
    "attendances",
    "los_median_minutes",
    "los_p90_minutes",
    "within_4h_share",
    "within_4h_adjusted",
    "waits_over_12h",
    "admissions",
    "conversion_rate",
    "boarding_median_minutes",
    "boarding_p90_minutes",
    "offload_p90_minutes",
    "or_utilisation",
    "cancelled_electives",
    "bed_occupancy",
    "icu_occupancy",
]
COUNT_FIELDS = {"attendances", "waits_over_12h", "admissions", "cancelled_electives"}


def min_cell(hospital_id: int) -> int:
    """The small-cell threshold of the hospital's sharing policy for published benchmarks."""
    policy = policy_in_force(hospital_id=hospital_id)
    if policy is None:
        return DEFAULT_MIN_CELL
    records = (policy.document or {}).get("records", {})
    best = 0
    for kind in ("flow", "census"):
        rule = records.get(kind, {}).get("public_benchmarks") or {}
        threshold = rule.get("small_cell_threshold")
        if isinstance(threshold, int):
            best = max(best, threshold)
    return best or DEFAULT_MIN_CELL


def _clean(value: Any, integer: bool = False) -> Any:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(f):
        return None
    return round(f) if integer else f


@transaction.atomic
def kpis_refresh(
    *,
    hospitals: QuerySet[Hospital],
    period: kpis.Period,
    since: datetime,
    until: datetime,
    now: datetime | None = None,
) -> int:
    """Compute and store the KPIs of every period starting in [since, until); returns the
    number of hospital-period rows written."""
    now = now or timezone.now()
    visits = selectors.ed_visits(hospitals=hospitals, since=since, until=until)
    frames: list[pd.DataFrame] = []
    if not visits.empty:
        frames.append(kpis.ed_kpis(visits, period))
        adjusted = kpis.acuity_adjusted_within_4h(visits, period)
        if not adjusted.empty:
            frames.append(adjusted[["hospital", "period", "within_4h_adjusted"]])
    snaps = selectors.bed_snapshots(hospitals=hospitals, since=since, until=until)
    if not snaps.empty:
        frames.append(kpis.occupancy_kpis(snaps, period))
    if not frames:
        return 0
    merged = frames[0]
    for f in frames[1:]:
        merged = merged.merge(f, on=["hospital", "period"], how="outer")
    beds = selectors.staffed_beds(hospitals)
    by_id = {h.pk: h for h in hospitals}
    rows = []
    for record in merged.to_dict("records"):
        h = by_id.get(int(record["hospital"]))
        if h is None:
            continue
        count = _clean(record.get("attendances"), integer=True)
        small = count is not None and count < min_cell(h.pk)
        values = {
            f: (None if small else _clean(record.get(f), integer=f in COUNT_FIELDS))
            for f in KPI_FIELDS
        }
        rows.append(
            HospitalKpi(
                hospital=h,
                period=period,
                period_start=pd.Timestamp(record["period"]).date(),
                peer_group=kpis.peer_group(
                    beds=beds.get(h.pk),
                    trauma_level=h.trauma_level,
                    stroke=h.stroke,
                    stemi_pci=h.stemi_pci,
                ),
                suppressed=small,
                computed_at=now,
                **values,
            )
        )
    HospitalKpi.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["hospital", "period", "period_start"],
        update_fields=[*KPI_FIELDS, "peer_group", "suppressed", "computed_at"],
    )
    stays = selectors.inpatient_stays(hospitals=hospitals, since=since, until=until)
    if not stays.empty:
        los = kpis.inpatient_los(stays, period)
        los_rows = []
        for record in los.to_dict("records"):
            h = by_id.get(int(record["hospital"]))
            if h is None:
                continue
            n = int(record["stays"])
            small = n < min_cell(h.pk)
            los_rows.append(
                UnitLosKpi(
                    hospital=h,
                    unit_type=record["unit_type"],
                    period=period,
                    period_start=pd.Timestamp(record["period"]).date(),
                    stays=None if small else n,
                    los_median_days=None if small else _clean(record["los_median_days"]),
                    los_mean_days=None if small else _clean(record["los_mean_days"]),
                    suppressed=small,
                    computed_at=now,
                )
            )
        UnitLosKpi.objects.bulk_create(
            los_rows,
            update_conflicts=True,
            unique_fields=["hospital", "unit_type", "period", "period_start"],
            update_fields=[
                "stays",
                "los_median_days",
                "los_mean_days",
                "suppressed",
                "computed_at",
            ],
        )
    return len(rows)
