"""View-model of one hospital's page: its tile's figures, and the sections the user's role
allows — units and beds (``read_census``, only the units granted), forecasts
(``read_forecast``), ambulance arrivals (``read_flow``), coordination (``read_coordination``).

A hospital the user may not see is ``None``: the page answers 404 whether or not it exists.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from governance.access import can, restrict
from hub.census.models import FlowEvent
from hub.census.selectors import EdLive, FeedLive, HospitalLive, UnitLive
from hub.coordination import models as coordination
from hub.registry.models import Hospital
from hub.web.board_charts import free_beds_chart, lines_chart
from hub.web.board_data import (
    EMERGENCY,
    READ_COORDINATION,
    Access,
    ForecastBand,
    Tile,
    access_for,
    age_text,
    bed_type_label,
    build_tile,
    history,
    live_for,
    spark_groups,
    statuses_for,
    summed_forecast,
)

HOURS_CHOICES = (24, 48, 72)
READ_FLOW = "read_flow"
ARRIVAL_HOURS = 6
RECENT = 10
ROMAN = ("I", "II", "III", "IV", "V")  # ACS trauma levels are written in Roman numerals


@dataclass(frozen=True)
class UnitRow:
    code: str
    name: str
    type_label: str
    staffed: int | None
    surge: int | None
    occupied: int | None
    free: int | None
    blocked: int | None
    pending_admissions: int | None
    pending_discharges: int | None
    stale: bool
    age: str
    reason: str
    suppressed: list[str]

    @property
    def occupancy_pct(self) -> float | None:
        if not self.staffed or self.occupied is None:
            return None
        return round(100 * self.occupied / (self.staffed + (self.surge or 0)), 1)


@dataclass(frozen=True)
class UnitForecast:
    code: str
    name: str
    bands: list[ForecastBand]


@dataclass(frozen=True)
class Arrivals:
    """Ambulance arrivals already registered at the ED, per hour (from flow records)."""

    hours: list[tuple[datetime, int]]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.hours)


@dataclass(frozen=True)
class CoordinationView:
    status: coordination.HospitalStatus | None
    pending: coordination.DiversionRecommendation | None
    decisions: list[coordination.DiversionDecision]
    surge_changes: list[coordination.SurgeLevelChange]


@dataclass
class HospitalDetail:
    hospital: Hospital
    tile: Tile
    capabilities: list[str]
    ed: EdLive | None
    feeds: list[FeedLive]
    hours: int
    units: list[UnitRow] | None  # None: the role reads no unit of this hospital
    timeline_chart: dict[str, Any] | None
    ed_chart: dict[str, Any] | None
    outlook_chart: dict[str, Any] | None
    unit_forecasts: list[UnitForecast] | None  # None: the role reads no forecast here
    type_forecasts: list[UnitForecast] | None  # the same, added up per bed type
    horizons: list[float]
    arrivals: Arrivals | None
    coordination: CoordinationView | None


def capabilities(h: Hospital) -> list[str]:
    out = []
    if h.trauma_level:
        out.append(f"Trauma level {ROMAN[h.trauma_level - 1]}")
    if h.stroke and h.stroke != "none":
        out.append(h.get_stroke_display().capitalize())
    for flag, label in (
        (h.stemi_pci, "STEMI / 24-7 PCI"),
        (h.paediatrics, "Paediatrics"),
        (h.maternity, "Maternity"),
        (h.psychiatry, "Psychiatry"),
        (h.burns, "Burns"),
    ):
        if flag:
            out.append(label)
    return out


def _unit_row(u: UnitLive) -> UnitRow:
    f = u.figures
    return UnitRow(
        code=u.code,
        name=u.name,
        type_label=bed_type_label(u.unit_type),
        staffed=f.get("staffed_beds") if f else u.baseline_staffed,
        surge=f.get("surge_beds"),
        occupied=f.get("occupied_beds"),
        free=f.get("available_beds"),
        blocked=f.get("blocked_beds"),
        pending_admissions=f.get("pending_admissions"),
        pending_discharges=f.get("pending_discharges"),
        stale=u.freshness.stale,
        age=age_text(u.freshness.age_seconds),
        reason=u.freshness.reason,
        suppressed=u.suppressed,
    )


def _timeline(
    units: list[UnitLive], tz: str, *, now: datetime, hours: int
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    if not units:
        return None, None
    by_type: dict[str, list[int]] = defaultdict(list)
    for u in units:
        if u.unit_type != EMERGENCY:
            by_type[u.unit_type].append(u.unit_id)
    ed_ids = [u.unit_id for u in units if u.unit_type == EMERGENCY]
    groups: dict[str, list[int]] = {**by_type, EMERGENCY: ed_ids}
    hist = history(
        groups, ("occupied", "capacity", "ed_waiting", "ed_boarding"), end=now, hours=hours
    )
    series = []
    for unit_type in sorted(by_type):
        occupied = hist.series(unit_type, "occupied")
        capacity = hist.series(unit_type, "capacity")
        series.append(
            (
                bed_type_label(unit_type),
                [
                    round(100 * o / c, 1) if o is not None and c else None
                    for o, c in zip(occupied, capacity, strict=True)
                ],
            )
        )
    beds = (
        lines_chart(hist.times, series, tz, y_title="Occupancy (%)", y_max=100) if series else None
    )
    ed = None
    if ed_ids:
        ed = lines_chart(
            hist.times,
            [
                ("Waiting to be seen", hist.series(EMERGENCY, "ed_waiting")),
                ("Boarding", hist.series(EMERGENCY, "ed_boarding")),
            ],
            tz,
            y_title="Patients",
        )
    return beds, ed


def _arrivals(user: Any, hospital: Hospital, now: datetime) -> Arrivals | None:
    if not can(user, READ_FLOW):
        return None
    since = now - timedelta(hours=ARRIVAL_HOURS)
    rows = (
        restrict(
            FlowEvent.objects.filter(
                hospital_id=hospital.pk,
                observed_at__gte=since,
                arrival_mode="ambulance",
                event_type="register",
            ),
            user,
            READ_FLOW,
        )
        .annotate(hour=TruncHour("observed_at"))
        .values("hour")
        .annotate(n=Count("event_id"))
        .order_by("hour")
    )
    hours = [(r["hour"], r["n"]) for r in rows]
    return Arrivals(hours) if hours else None


def _coordination(user: Any, hospital: Hospital, status: Any) -> CoordinationView:
    def mine(qs: Any) -> Any:
        return restrict(qs.filter(hospital_id=hospital.pk), user, READ_COORDINATION)

    pending = (
        mine(coordination.DiversionRecommendation.objects.filter(state="pending"))
        .order_by("-created_at")
        .first()
    )
    decisions = list(
        mine(coordination.DiversionDecision.objects.select_related("decided_by")).order_by(
            "-decided_at", "-id"
        )[:RECENT]
    )
    changes = list(
        mine(coordination.SurgeLevelChange.objects.select_related("checklist_ref")).order_by(
            "-at", "-id"
        )[:RECENT]
    )
    return CoordinationView(status, pending, decisions, changes)


def hospital_detail(
    user: Any, site_code: str, *, hours: int = 24, now: datetime | None = None
) -> HospitalDetail | None:
    """The page of one hospital as ``user`` may see it, or None if they may not see it."""
    now = now or timezone.now()
    access: Access = access_for(user)
    lives: list[HospitalLive] = live_for(
        access, access.hospitals().filter(site_code=site_code), now=now
    )
    if not lives:
        return None
    live = lives[0]
    h = live.hospital
    statuses = statuses_for(access, [h.pk])
    hist = history(spark_groups([live]), ("free",), end=now, hours=24)
    tile = build_tile(live, access, now=now, status=statuses.get(h.pk), hist=hist)

    detail_units = [u for u in live.units if access.unit_detail(h.pk, u.unit_id)]
    timeline, ed_chart = _timeline(live.units, tile.timezone, now=now, hours=hours)

    forecast_units = [u for u in live.units if access.forecasts(h.pk, u.unit_id)]
    unit_forecasts = None
    type_forecasts = None
    horizons: list[float] = []
    if forecast_units:
        unit_forecasts = [
            UnitForecast(u.code, u.name, summed_forecast([u])) for u in forecast_units
        ]
        by_type: dict[str, list[UnitLive]] = defaultdict(list)
        for u in forecast_units:
            by_type[u.unit_type].append(u)
        type_forecasts = [
            UnitForecast(
                bed_type_label(t),
                f"{len(us)} unit{'s' if len(us) > 1 else ''}",
                summed_forecast(us),
            )
            for t, us in sorted(by_type.items(), key=lambda kv: kv[0] != EMERGENCY)
        ]
        horizons = sorted({b.horizon_hours for f in unit_forecasts for b in f.bands})
    outlook = None
    if tile.spark_times and (tile.forecast or any(v is not None for v in tile.spark_free)):
        outlook = free_beds_chart(
            tile.spark_times, tile.spark_free, tile.forecast, tile.timezone, sparkline=False
        )
    return HospitalDetail(
        hospital=h,
        tile=tile,
        capabilities=capabilities(h),
        ed=live.ed,
        feeds=live.feeds,
        hours=hours,
        units=[_unit_row(u) for u in detail_units] if detail_units else None,
        timeline_chart=timeline,
        ed_chart=ed_chart,
        outlook_chart=outlook,
        unit_forecasts=unit_forecasts,
        type_forecasts=type_forecasts,
        horizons=horizons,
        arrivals=_arrivals(user, h, now),
        coordination=(
            _coordination(user, h, statuses.get(h.pk)) if access.coordination_of(h.pk) else None
        ),
    )
