"""The adapter: the registry and the live census in, the pure rules' dataclasses out.

Thin on purpose: every decision is in the pure modules; this only reads
(``hub.census.selectors.live_hospitals``, travel times, the statuses the last evaluation
left) and converts. Figures the census does not carry yet (share of ED patients over
4 hours, handovers over 30 minutes, staffing gaps, ambulance arrivals per hour) stay None:
the rules leave a missing figure out rather than guess it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import connection, transaction

from deid.contracts.vocabulary import UnitType
from hub.census import conf
from hub.census.selectors import DEFAULT_AUDIENCE, HospitalLive, UnitLive, live_hospitals
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
    return _capabilities(
        h.trauma_level, h.stroke, h.stemi_pci, h.paediatrics, h.burns, h.psychiatry, h.maternity
    )


def _capabilities(
    trauma_level: int | None,
    stroke: str,
    stemi_pci: bool,
    paediatrics: bool,
    burns: bool,
    psychiatry: bool,
    maternity: bool,
) -> Capabilities:
    try:
        level = StrokeLevel(stroke)
    except ValueError:
        level = StrokeLevel.NONE
    return Capabilities(
        trauma_level=trauma_level,
        stroke=level,
        stemi_pci=stemi_pci,
        paediatrics=paediatrics,
        burns=burns,
        psychiatry=psychiatry,
        maternity=maternity,
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
    return _summed_forecasts([u.forecast for u in units])


def _summed_forecasts(
    forecasts: Sequence[Iterable[Mapping[str, Any]]],
) -> tuple[ForecastPoint, ...]:
    """``_summed`` of the units' forecasts (one list of points per unit, in unit order)."""
    if len(forecasts) == 1:
        return _points(forecasts[0])
    # Summed straight from the records, in the order ``_points`` would give (by horizon,
    # unit by unit): a region reads thousands of these a minute.
    by_h: dict[float, list[Any]] = {}  # horizon: [entries, p50, p10 or None, p90 or None]
    for forecast in forecasts:
        for r in forecast:
            try:
                horizon = float(r["horizon_hours"])
            except (KeyError, TypeError, ValueError):
                continue
            p50 = r.get("p50")
            if p50 is None:
                continue  # the median withheld (suppressed): no point to use
            p10, p90 = r.get("p10"), r.get("p90")
            acc = by_h.get(horizon)
            if acc is None:
                acc = by_h[horizon] = [0, 0, 0, 0]
            acc[0] += 1
            acc[1] += float(p50)
            acc[2] = None if acc[2] is None or p10 is None else acc[2] + (float(p10) or 0)
            acc[3] = None if acc[3] is None or p90 is None else acc[3] + (float(p90) or 0)
    return tuple(
        ForecastPoint(horizon_hours=h, p50=acc[1], p10=acc[2], p90=acc[3])
        for h, acc in sorted(by_h.items())
        # A unit without this horizon: the sum would undercount.
        if acc[0] == len(forecasts)
    )


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


def region_states_live(region: Region, now: datetime) -> list[HospitalState]:
    """``region_states`` through the live board's selector (``live_hospitals``): the same
    states, built from every unit's full live record. Kept as the reference the fast read
    is tested against."""
    lives = live_hospitals(hospitals=Hospital.objects.filter(region=region), now=now)
    return [hospital_state(live, now) for live in lives]


# The live state the rules read, one row per active hospital of a region, in one query:
# the first ED unit by code with its live figures, and per kind (ICU, ward) the summed beds of
# the fresh units and the units' forecasts. The same reading as ``hospital_state`` over
# ``live_hospitals`` (a unit is fresh when it has a snapshot its site does not flag as stale,
# observed within the staleness limit; staffed beds 0 or missing fall back to the registry's
# baseline; one withheld occupancy makes the kind's beds unknown), without building the
# board's per-unit records (provenance, EDXL-HAVE types, feeds, directives) for 60,000 units.
_STATES_SQL = """
WITH units AS (
    SELECT u.hospital_id, u.id AS unit_id, u.code, u.unit_type = ANY(%(icu)s) AS icu,
        s.id IS NOT NULL AND s.stale IS NOT TRUE AND s.observed_at >= %(fresh_after)s AS fresh,
        COALESCE(NULLIF(s.staffed_beds, 0), u.staffed_beds) + COALESCE(s.surge_beds, 0) AS beds,
        s.occupied_beds, COALESCE(s.forecast, '[]'::jsonb) AS forecast
    FROM registry_unit u
    JOIN registry_hospital h ON h.id = u.hospital_id
    LEFT JOIN census_unitstate s ON s.unit_id = u.id AND s.audience = %(audience)s
    WHERE h.region_id = %(region)s AND h.active AND u.active AND {only}
        AND (u.unit_type = ANY(%(icu)s) OR u.unit_type = ANY(%(ward)s))
), kinds AS (
    SELECT hospital_id,
        count(*) FILTER (WHERE fresh AND icu) AS icu_fresh,
        bool_or(occupied_beds IS NULL) FILTER (WHERE fresh AND icu) AS icu_withheld,
        sum(beds) FILTER (WHERE fresh AND icu) AS icu_beds,
        sum(occupied_beds) FILTER (WHERE fresh AND icu) AS icu_occupied,
        -- Per unit, in unit order; not needed when a unit of several has none (the sum of
        -- every horizon would lack that unit).
        CASE WHEN count(*) FILTER (WHERE icu) = 1
                OR bool_and(forecast <> '[]'::jsonb) FILTER (WHERE icu)
            THEN {icu_forecasts} END AS icu_forecasts,
        count(*) FILTER (WHERE fresh AND NOT icu) AS ward_fresh,
        bool_or(occupied_beds IS NULL) FILTER (WHERE fresh AND NOT icu) AS ward_withheld,
        sum(beds) FILTER (WHERE fresh AND NOT icu) AS ward_beds,
        sum(occupied_beds) FILTER (WHERE fresh AND NOT icu) AS ward_occupied,
        CASE WHEN count(*) FILTER (WHERE NOT icu) = 1
                OR bool_and(forecast <> '[]'::jsonb) FILTER (WHERE NOT icu)
            THEN {ward_forecasts} END AS ward_forecasts
    FROM units GROUP BY hospital_id
)
SELECT h.site_code, h.name, h.trauma_level, h.stroke, h.stemi_pci, h.paediatrics, h.burns,
    h.psychiatry, h.maternity,
    ed.unit_id, ed.baseline, ed.has_state, ed.stale, ed.observed_at, ed.staffed_beds,
    ed.surge_beds, ed.occupied_beds, ed.ed_in_treatment, ed.ed_waiting, ed.ed_boarding,
    ed.longest_boarding_minutes, ed.offload_p90_minutes, {ed_forecast},
    k.icu_fresh, k.icu_withheld, k.icu_beds, k.icu_occupied, k.icu_forecasts,
    k.ward_fresh, k.ward_withheld, k.ward_beds, k.ward_occupied, k.ward_forecasts, h.id
FROM registry_hospital h
LEFT JOIN LATERAL (
    SELECT u.id AS unit_id, u.staffed_beds AS baseline, s.id IS NOT NULL AS has_state,
        s.stale, s.observed_at, s.staffed_beds, s.surge_beds, s.occupied_beds,
        s.ed_in_treatment, s.ed_waiting, s.ed_boarding, s.longest_boarding_minutes,
        s.offload_p90_minutes, s.forecast
    FROM registry_unit u
    LEFT JOIN census_unitstate s ON s.unit_id = u.id AND s.audience = %(audience)s
    WHERE u.hospital_id = h.id AND u.active AND u.unit_type = %(ed)s
    ORDER BY u.code LIMIT 1
) ed ON true
LEFT JOIN kinds k ON k.hospital_id = h.id
WHERE h.region_id = %(region)s AND h.active AND {only}
ORDER BY h.site_code
"""
# Two readings of the forecasts. Each minute, a 64-bit hash of each hospital's forecasts per
# kind (``jsonb_hash_extended`` walks the stored binary; the units' hashes are summed, each
# seeded with its unit id): a national region's forecasts are ≈6 MB of JSON whose
# aggregation, text output and decoding were most of the read, and they change far less
# often than the census snapshots. Then the forecasts themselves, only for the hospitals
# whose hashes this worker has not decoded yet (``_FORECASTS``).
_HASHED_SQL = _STATES_SQL.format(
    only="true",
    icu_forecasts="sum(jsonb_hash_extended(forecast, unit_id)) FILTER (WHERE icu)",
    ward_forecasts="sum(jsonb_hash_extended(forecast, unit_id)) FILTER (WHERE NOT icu)",
    ed_forecast="jsonb_hash_extended(ed.forecast, 0)",
)
_FORECASTS_SQL = _STATES_SQL.format(
    only="h.id = ANY(%(only)s::bigint[])",
    icu_forecasts="jsonb_agg(forecast ORDER BY code) FILTER (WHERE icu)",
    ward_forecasts="jsonb_agg(forecast ORDER BY code) FILTER (WHERE NOT icu)",
    ed_forecast="ed.forecast",
)
_FORECAST_COLUMNS = (22, 27, 32)


def _kind_beds(
    fresh_units: int | None, withheld: bool | None, beds: int | None, occupied: int | None
) -> tuple[int | None, int | None]:
    if not fresh_units or withheld:
        return None, None
    return int(beds or 0), int(occupied or 0)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


# Forecast points by the JSON text they were read from: a site's forecast changes far less
# often than its census snapshot, and decoding and summing a national region's forecasts
# was a third of the census read. Points are immutable tuples; a pure function of the text.
_DECODED: dict[tuple[Any, str], tuple[ForecastPoint, ...]] = {}
_DECODED_LIMIT = 100_000


def _decoded(value: Any, read: Any) -> tuple[ForecastPoint, ...]:
    if not isinstance(value, str):
        return read(_json(value))
    key = (read, value)
    points = _DECODED.get(key)
    if points is None:
        if len(_DECODED) >= _DECODED_LIMIT:
            _DECODED.clear()
        points = _DECODED[key] = read(json.loads(value))
    return points


# Per (database, region), per hospital id: the forecast hashes and the points decoded from
# the forecasts that had them.
_FORECASTS: dict[
    tuple[str, int],
    dict[int, tuple[tuple[Any, ...], tuple[tuple[ForecastPoint, ...], ...]]],
] = {}


def _hashes(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(row[i] for i in _FORECAST_COLUMNS)


def _forecast_points(row: Sequence[Any]) -> tuple[tuple[ForecastPoint, ...], ...]:
    """(ED, ICU, ward) points of one row of the forecasts query. JSON arrives as text
    (Django's psycopg loader): decoded only where there is any."""
    ed, icu, ward = (row[i] for i in _FORECAST_COLUMNS)
    return (
        _decoded(ed, _points) if ed else (),
        _decoded(icu, _summed_forecasts) if icu else (),
        _decoded(ward, _summed_forecasts) if ward else (),
    )


def tune_transaction(cursor: Any) -> None:
    """For the rest of the transaction (an evaluation, or the census read on its second
    connection): JIT compiling its statements costs more than it saves, and the aggregate of
    a national region's unit forecasts would spill to disk in the default 4 MB of work
    memory."""
    cursor.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)")


def region_states(region: Region, now: datetime) -> list[HospitalState]:
    """Every active hospital's live state as the pure rules read it (one query; the same
    states as ``region_states_live``)."""
    return states_from_rows(census_rows(region, now), now)


class CensusRows(NamedTuple):
    """What ``census_rows`` read: a row per active hospital, and the forecast points of each
    by hospital id."""

    rows: list[tuple[Any, ...]]
    forecasts: Mapping[int, tuple[tuple[ForecastPoint, ...], ...]]


def census_rows(region: Region, now: datetime) -> CensusRows:
    """The census read itself (the server's part of ``region_states``, on the calling
    thread's connection)."""
    limit = timedelta(seconds=conf.stale_after_seconds())
    params: dict[str, Any] = {
        "region": region.pk,
        "audience": DEFAULT_AUDIENCE,
        "fresh_after": now - limit,
        "icu": sorted(ICU_TYPES),
        "ward": sorted(WARD_TYPES),
        "ed": UnitType.EMERGENCY.value,
    }
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        tune_transaction(cursor)
        cursor.execute(_HASHED_SQL, params)
        rows = cursor.fetchall()
        known = _FORECASTS.setdefault((str(connection.settings_dict.get("NAME")), region.pk), {})
        missing = [
            row[33] for row in rows if (got := known.get(row[33])) is None or got[0] != _hashes(row)
        ]
        if missing:
            cursor.execute(_FORECASTS_SQL, {**params, "only": missing})
            hashes = {row[33]: _hashes(row) for row in rows}
            for full in cursor.fetchall():
                # Kept under the hashes just read: if a forecast changed in between (each
                # statement sees the latest commits), the next minute reads it again.
                known[full[33]] = (hashes[full[33]], _forecast_points(full))
    return CensusRows(rows, {row[33]: known[row[33]][1] for row in rows})


def states_from_rows(read: CensusRows, now: datetime) -> list[HospitalState]:
    """The hospitals' states from the rows ``census_rows`` read."""
    limit = timedelta(seconds=conf.stale_after_seconds())
    rows, forecasts = read
    never = datetime.min.replace(tzinfo=now.tzinfo)
    caps: dict[tuple[Any, ...], Capabilities] = {}
    out = []
    for row in rows:
        (code, name, trauma, stroke, stemi, paeds, burns, psych, maternity) = row[:9]
        (ed_unit, baseline, has_state, flagged, observed, staffed, surge, occupied,
         in_treatment, waiting, boarding, longest, offload) = row[9:22]  # fmt: skip
        key = (trauma, stroke, stemi, paeds, burns, psych, maternity)
        cap = caps.get(key)
        if cap is None:
            cap = caps[key] = _capabilities(*key)
        capacity = occupied_now = 0
        as_of = None
        stale = True
        if ed_unit is not None:
            capacity = (staffed or baseline) + (surge or 0)
            occupied_now = occupied or 0
            if occupied is None and in_treatment is not None:
                occupied_now = (in_treatment or 0) + (boarding or 0)
            if has_state:
                as_of = observed
                stale = bool(flagged) or now - observed > limit
        icu_cap, icu_occ = _kind_beds(*row[23:27])
        ward_cap, ward_occ = _kind_beds(*row[28:32])
        ed_points, icu_points, ward_points = forecasts[row[33]]
        forecast = None
        if ed_points or icu_points or ward_points:
            forecast = Forecast(as_of=as_of or now, ed=ed_points, icu=icu_points, ward=ward_points)
        out.append(
            HospitalState(
                code=code,
                name=name,
                capabilities=cap,
                as_of=as_of or never,
                feed_stale=stale,
                ed_capacity=capacity,
                ed_occupied=occupied_now,
                ed_waiting=waiting,
                ed_boarding=boarding,
                longest_boarding_minutes=longest,
                offload_p90_minutes=offload,
                offload_as_of=as_of,
                icu_capacity=icu_cap,
                icu_occupied=icu_occ,
                ward_capacity=ward_cap,
                ward_occupied=ward_occ,
                forecast=forecast,
            )
        )
    return out


def travel_times(region: Region) -> TravelTimes:
    out: dict[str, dict[str, float]] = {}
    rows = TravelTime.objects.filter(
        origin__region=region, destination__region=region, origin__active=True
    ).values_list("origin__site_code", "destination__site_code", "minutes")
    for origin, destination, minutes in rows:
        out.setdefault(origin, {})[destination] = float(minutes)
    return out


_UNVERSIONED = itertools.count()

_TRAVEL_VERSION_SQL = """
SELECT version, current_setting('coordination.travel_touched', true)
FROM coordination_travel_version WHERE id = 1
"""


def travel_version(region: Region) -> tuple[int, str]:
    """Changes whenever a travel time is added, changed or removed (any region's: they
    change rarely). One row read: the counter that triggers on the travel-time table bump at
    each changing commit, with the count of this transaction's own uncommitted changing
    statements (migration ``0003_travel_version``)."""
    with connection.cursor() as cursor:
        cursor.execute(_TRAVEL_VERSION_SQL)
        row = cursor.fetchone()
    if row is None:  # no counter: a version never seen before, so always read afresh
        return -1, str(next(_UNVERSIONED))
    return int(row[0]), str(row[1] or "")


def priors(
    region: Region,
    *,
    statuses: tuple[Mapping[int, Sequence[Any]], Mapping[str, int]] | None = None,
    state: m.RegionState | None = None,
) -> Priors:
    """What the last evaluation left: statuses, levels, the region's mode and level.

    ``statuses``: the status rows the last evaluation stored (by hospital id, the fields of
    ``services._STATUS_FIELDS``) with the region's hospitals (site code: id), when the
    caller has them (``kept``); else they are read. ``state``: the region's state row, if
    the caller has it locked."""
    diversion: dict[str, PriorStatus] = {}
    surge: dict[str, PriorLevel] = {}
    rows: Iterable[tuple[Any, ...]]
    if statuses is None:
        rows = (
            m.HospitalStatus.objects.filter(hospital__region=region)
            .order_by()
            .values_list(
                "hospital__site_code",
                "diversion_status",
                "status_since",
                "expires_at",
                "destinations",
                "surge_level",
                "level_since",
            )
        )
    else:
        by_id, hospitals = statuses
        rows = (
            (code, r[0], r[1], r[2], r[3], r[6], r[7])
            for code, hid in hospitals.items()
            if (r := by_id.get(hid)) is not None
        )
    statuses_by_value = {s.value: s for s in Status}
    classes = {c.value: c for c in AmbulanceClass}
    for code, status, since, expires_at, destinations, level, level_since in rows:
        diversion[code] = PriorStatus(
            status=statuses_by_value.get(status) or Status(status),
            since=since,
            expires_at=expires_at,
            destinations={
                classes.get(k) or AmbulanceClass(k): v for k, v in (destinations or {}).items()
            },
        )
        if level is not None:
            surge[code] = PriorLevel(level=level, since=level_since)
    if state is None:
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
