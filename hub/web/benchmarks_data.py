"""Reads behind the benchmarks page and its CSV: stored KPIs (``hub.benchmarks``) for the
hospitals the user may see, filtered by KPI, period kind, date range and hospitals; a chart
config per KPI over time; the peer ranking of the latest period shown. The ranking uses
``benchmarks.kpis.rank_within_peers`` on the visible rows only, so an executive's table holds
their own hospital(s) and nothing of anyone else's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from django.db.models import QuerySet

from governance.access import restrict
from hub.benchmarks import kpis
from hub.benchmarks.apis import LOWER_IS_BETTER
from hub.benchmarks.models import HospitalKpi
from hub.benchmarks.services import KPI_FIELDS
from hub.registry.models import Hospital

ACTION = "read_benchmarks"
LABELS: dict[str, str] = {
    "attendances": "ED attendances",
    "los_median_minutes": "ED length of stay, median (min)",
    "los_p90_minutes": "ED length of stay, p90 (min)",
    "within_4h_share": "Seen within 4 hours (share)",
    "within_4h_adjusted": "Within 4 hours, acuity-adjusted",
    "waits_over_12h": "12-hour waits",
    "admissions": "Admissions",
    "conversion_rate": "Conversion to admission",
    "boarding_median_minutes": "Boarding, median (min)",
    "boarding_p90_minutes": "Boarding, p90 (min)",
    "offload_p90_minutes": "Ambulance offload p90 (min)",
    "or_utilisation": "OR utilisation",
    "cancelled_electives": "Cancelled electives",
    "bed_occupancy": "Bed occupancy",
    "icu_occupancy": "ICU occupancy",
}
SHARES = {
    "within_4h_share",
    "within_4h_adjusted",
    "conversion_rate",
    "or_utilisation",
    "bed_occupancy",
    "icu_occupancy",
}
WITHHELD = "withheld (small numbers)"
# Distinguishable on the dark theme (Okabe–Ito, colour-blind safe).
PALETTE = ("#56b4e9", "#e69f00", "#009e73", "#f0e442", "#cc79a7", "#d55e00", "#0072b2", "#999")


@dataclass(frozen=True)
class Filters:
    kpi: str
    period: str
    since: date | None
    until: date | None
    hospitals: list[Hospital]


def hospitals(user: Any) -> QuerySet[Hospital]:
    return restrict(Hospital.objects.filter(active=True), user, ACTION).order_by("name")


def rows(user: Any, f: Filters) -> list[HospitalKpi]:
    qs = restrict(HospitalKpi.objects.all(), user, ACTION).select_related("hospital")
    qs = qs.filter(period=f.period)
    if f.since:
        qs = qs.filter(period_start__gte=f.since)
    if f.until:
        qs = qs.filter(period_start__lte=f.until)
    if f.hospitals:
        qs = qs.filter(hospital__in=f.hospitals)
    return list(qs.order_by("period_start", "hospital__name"))


def display(value: Any, kpi: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if kpi in SHARES:
        return f"{float(value) * 100:.1f}%"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def chart(data: list[HospitalKpi], kpi: str) -> dict[str, Any]:
    """A Chart.js line chart: one line per hospital over the period starts."""
    starts = sorted({r.period_start for r in data})
    labels = [d.isoformat() for d in starts]
    series: dict[str, dict[date, Any]] = {}
    for r in data:
        v = getattr(r, kpi)
        if v is not None and kpi in SHARES:
            v = round(v * 100, 2)
        series.setdefault(r.hospital.name, {})[r.period_start] = v
    datasets = [
        {
            "label": name,
            "data": [values.get(d) for d in starts],
            "borderColor": PALETTE[i % len(PALETTE)],
            "backgroundColor": PALETTE[i % len(PALETTE)],
            "spanGaps": True,
            "tension": 0,
        }
        for i, (name, values) in enumerate(sorted(series.items()))
    ]
    unit = " (%)" if kpi in SHARES else ""
    return {
        "type": "line",
        "data": {"labels": labels, "datasets": datasets},
        "options": {
            "responsive": True,
            "maintainAspectRatio": False,
            "animation": False,
            "plugins": {"title": {"display": True, "text": LABELS[kpi] + unit}},
            "scales": {"y": {"title": {"display": True, "text": LABELS[kpi] + unit}}},
        },
    }


def ranking(data: list[HospitalKpi], kpi: str) -> list[dict[str, Any]]:
    """Rank of each shown hospital in its peer group, latest period shown."""
    if not data:
        return []
    latest = max(r.period_start for r in data)
    current = [r for r in data if r.period_start == latest]
    frame = pd.DataFrame(
        [
            {
                "hospital": r.hospital.name,
                "period": pd.Timestamp(r.period_start),
                "peer_group": r.peer_group,
                kpi: getattr(r, kpi),
                "suppressed": r.suppressed,
            }
            for r in current
        ]
    )
    frame[kpi] = pd.to_numeric(frame[kpi], errors="coerce")
    ranked = kpis.rank_within_peers(frame, kpi, higher_is_better=kpi not in LOWER_IS_BETTER)
    ranked = ranked.sort_values(["peer_group", "rank", "hospital"], na_position="last")
    return [
        {
            "hospital": rec["hospital"],
            "period": latest,
            "peer_group": rec["peer_group"] or "—",
            "value": WITHHELD if rec["suppressed"] else display(rec[kpi], kpi),
            "rank": None if pd.isna(rec["rank"]) else int(rec["rank"]),
            "peers": None if pd.isna(rec["peers"]) else int(rec["peers"]),
            "peer_median": display(rec["peer_median"], kpi),
        }
        for rec in ranked.to_dict("records")
    ]


def csv_text(data: list[HospitalKpi], kpi: str) -> str:
    """Exactly the table shown: hospital, period start, peer group, the KPI, suppressed."""
    frame = pd.DataFrame(
        [
            {
                "hospital": r.hospital.name,
                "period": r.period,
                "period_start": r.period_start.isoformat(),
                "peer_group": r.peer_group,
                kpi: getattr(r, kpi),
                "suppressed": r.suppressed,
            }
            for r in data
        ],
        columns=["hospital", "period", "period_start", "peer_group", kpi, "suppressed"],
    )
    return kpis.to_csv(frame)


assert set(LABELS) == set(KPI_FIELDS)  # noqa: S101 (a new KPI needs a label)
