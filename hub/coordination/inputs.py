"""The adapter: the registry and the live census in, the pure rules' dataclasses out.

Thin on purpose: every decision is in the pure modules; this only reads
(``hub.census.selectors.live_hospitals``, travel times, the statuses the last evaluation
left) and converts. Figures the census does not carry yet (share of ED patients over
4 hours, handovers over 30 minutes, staffing gaps, ambulance arrivals per hour) stay None:
the rules leave a missing figure out rather than guess it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db.models import Count, Max

from deid.contracts.vocabulary import UnitType
from hub.census.selectors import HospitalLive, UnitLive, live_hospitals
from hub.coordination import models as m
from hub.coordination.diversion import Mode, PriorStatus, Status
from hub.coordination.region import Priors
from hub.coordination.state import (
    AmbulanceClass,
    Capabilities,
    Forecast,
    ForecastPoint,
    HospitalState,
    StrokeLevel,
    TravelTimes,
)
from hub.coordination.surge import PriorLevel
from hub.registry.models import Hospital, Region, TravelTime

ICU_TYPES = {UnitType.ADULT_ICU.value}
# General and acute adult beds: what "ward availability" and bed occupancy mean here.
WARD_TYPES = {
    UnitType.MEDICAL_SURGICAL.value,
    UnitType.STEP_DOWN.value,
    UnitType.ISOLATION.value,
}


def capabilities(h: Hospital) -> Capabilities:
    try:
        stroke = StrokeLevel(h.stroke)
    except ValueError:
        stroke = StrokeLevel.NONE
    return Capabilities(
        trauma_level=h.trauma_level,
        stroke=stroke,
        stemi_pci=h.stemi_pci,
        paediatrics=h.paediatrics,
        burns=h.burns,
        psychiatry=h.psychiatry,
        maternity=h.maternity,
    )


def _points(rows: Iterable[Mapping[str, Any]]) -> tuple[ForecastPoint, ...]:
    out = []
    for r in rows:
        try:
            horizon = float(r["horizon_hours"])
        except (KeyError, TypeError, ValueError):
            continue
        p50 = r.get("p50")
        if p50 is None:
            continue  # the median withheld (suppressed): no point to use
        out.append(
            ForecastPoint(
                horizon_hours=horizon,
                p50=float(p50),
                p10=None if r.get("p10") is None else float(r["p10"]),
                p90=None if r.get("p90") is None else float(r["p90"]),
            )
        )
    return tuple(sorted(out, key=lambda p: p.horizon_hours))


def _summed(units: Sequence[UnitLive]) -> tuple[ForecastPoint, ...]:
    """Several units of one kind: add their forecasts per horizon (the median of a sum is
    not the sum of medians, but for a few units the sum is the figure operators read)."""
    if len(units) == 1:
        return _points(units[0].forecast)
    by_h: dict[float, list[ForecastPoint]] = {}
    for u in units:
        for p in _points(u.forecast):
            by_h.setdefault(p.horizon_hours, []).append(p)
    out = []
    for h, ps in sorted(by_h.items()):
        if len(ps) != len(units):
            continue  # a unit without this horizon: the sum would undercount
        out.append(
            ForecastPoint(
                horizon_hours=h,
                p50=sum(p.p50 for p in ps),
                p10=None if any(p.p10 is None for p in ps) else sum(p.p10 or 0 for p in ps),
                p90=None if any(p.p90 is None for p in ps) else sum(p.p90 or 0 for p in ps),
            )
        )
    return tuple(out)


def _beds(units: Sequence[UnitLive]) -> tuple[int | None, int | None]:
    fresh = [u for u in units if not u.freshness.stale]
    if not fresh:
        return None, None
    staffed = occupied = 0
    for u in fresh:
        f = u.figures
        staffed += (f.get("staffed_beds") or u.baseline_staffed) + (f.get("surge_beds") or 0)
        occ = f.get("occupied_beds")
        if occ is None:
            return None, None  # withheld somewhere: a partial sum would look emptier
        occupied += occ
    return staffed, occupied


def hospital_state(live: HospitalLive, now: datetime) -> HospitalState:
    """One hospital's live state as the pure rules read it."""
    h = live.hospital
    ed_units = [u for u in live.units if u.unit_type == UnitType.EMERGENCY.value]
    icu_units = [u for u in live.units if u.unit_type in ICU_TYPES]
    ward_units = [u for u in live.units if u.unit_type in WARD_TYPES]
    ed = ed_units[0] if ed_units else None
    fig = ed.figures if ed is not None else {}
    capacity = 0
    occupied = 0
    if ed is not None:
        capacity = (fig.get("staffed_beds") or ed.baseline_staffed) + (fig.get("surge_beds") or 0)
        occupied = fig.get("occupied_beds") or 0
        if fig.get("occupied_beds") is None and fig.get("ed_in_treatment") is not None:
            occupied = (fig.get("ed_in_treatment") or 0) + (fig.get("ed_boarding") or 0)
    as_of = ed.freshness.observed_at if ed is not None else None
    icu_cap, icu_occ = _beds(icu_units)
    ward_cap, ward_occ = _beds(ward_units)
    forecast = None
    ed_points = _points(ed.forecast) if ed is not None else ()
    icu_points = _summed(icu_units) if icu_units else ()
    ward_points = _summed(ward_units) if ward_units else ()
    if ed_points or icu_points or ward_points:
        # The forecast rides with the census snapshot: it is as old as the snapshot.
        forecast = Forecast(as_of=as_of or now, ed=ed_points, icu=icu_points, ward=ward_points)
    return HospitalState(
        code=h.site_code,
        name=h.name,
        capabilities=capabilities(h),
        as_of=as_of or datetime.min.replace(tzinfo=now.tzinfo),
        feed_stale=ed is None or ed.freshness.stale,
        ed_capacity=capacity,
        ed_occupied=occupied,
        ed_waiting=fig.get("ed_waiting"),
        ed_boarding=fig.get("ed_boarding"),
        longest_boarding_minutes=fig.get("longest_boarding_minutes"),
        offload_p90_minutes=fig.get("offload_p90_minutes"),
        offload_as_of=as_of,
        icu_capacity=icu_cap,
        icu_occupied=icu_occ,
        ward_capacity=ward_cap,
        ward_occupied=ward_occ,
        forecast=forecast,
    )


def region_states(region: Region, now: datetime) -> list[HospitalState]:
    lives = live_hospitals(hospitals=Hospital.objects.filter(region=region), now=now)
    return [hospital_state(live, now) for live in lives]


def travel_times(region: Region) -> TravelTimes:
    out: dict[str, dict[str, float]] = {}
    rows = TravelTime.objects.filter(
        origin__region=region, destination__region=region, origin__active=True
    ).values_list("origin__site_code", "destination__site_code", "minutes")
    for origin, destination, minutes in rows:
        out.setdefault(origin, {})[destination] = float(minutes)
    return out


def travel_version(region: Region) -> tuple[int, str]:
    """Changes whenever a travel time of the region is added, changed or removed."""
    agg = TravelTime.objects.filter(origin__region=region).aggregate(
        n=Count("pk"), last=Max("updated_at")
    )
    return int(agg["n"] or 0), str(agg["last"])


def priors(region: Region) -> Priors:
    """What the last evaluation left: statuses, levels, the region's mode and level."""
    diversion: dict[str, PriorStatus] = {}
    surge: dict[str, PriorLevel] = {}
    rows = m.HospitalStatus.objects.filter(hospital__region=region).select_related("hospital")
    for row in rows:
        code = row.hospital.site_code
        diversion[code] = PriorStatus(
            status=Status(row.diversion_status),
            since=row.status_since,
            expires_at=row.expires_at,
            destinations={AmbulanceClass(k): v for k, v in (row.destinations or {}).items()},
        )
        if row.surge_level is not None:
            surge[code] = PriorLevel(level=row.surge_level, since=row.level_since)
    state = m.RegionState.objects.filter(region=region).first()
    region_level = None
    mode = Mode.NORMAL
    if state is not None:
        mode = Mode(state.mode)
        if state.surge_level is not None:
            region_level = PriorLevel(level=state.surge_level, since=state.level_since)
    return Priors(diversion=diversion, surge=surge, region_level=region_level, mode=mode)


def closed_by_decision(region: Region) -> set[str]:
    """Hospitals an operator's decision in force keeps on diversion."""
    return set(
        m.DiversionDecision.objects.filter(
            region=region,
            state=m.DiversionDecision.State.ACTIVE,
            status__in=[m.DiversionStatus.ADVISORY, m.DiversionStatus.CLOSED],
        ).values_list("hospital__site_code", flat=True)
    )
