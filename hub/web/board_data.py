"""View-models of the regional board: one tile per hospital the user may see.

Reads only, through the selectors the API uses (``hub.census.selectors.live_hospitals`` for
live figures with freshness) and ``governance.access`` for what each person may see:

* the hospitals are ``restrict(Hospital, user, "read_hospitals")``;
* a tile's figures come from the units the user may read unit by unit (``read_census``)
  or as hospital totals (``read_aggregates``): everything for an operator, the hospital's
  totals for an executive, the ED alone for ED staff, one ward for a ward nurse (the tile
  then says so, rather than pass a ward's occupancy off as the hospital's);
* forecasts need ``read_forecast``; the regional advice and OPEL level come from
  ``hub.coordination`` and need ``read_coordination``.

A board of any size costs a fixed number of queries: the six of ``live_hospitals``, one for
the coordination statuses, one for the 24-hour history of every unit at once (``history``,
which keeps the hours already past for a few minutes), plus governance's per-request
lookups. ``bench/bench_web_board.py`` measures it for 50 hospitals.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from deid.contracts.vocabulary import UnitType
from governance.access import Scope, restrict, scope_for
from hub.census import conf as census_conf
from hub.census.selectors import DEFAULT_AUDIENCE, HospitalLive, UnitLive, live_hospitals
from hub.coordination import models as coordination
from hub.env import env_int
from hub.registry.models import Hospital, Unit

BOARD_ACTION = "read_hospitals"
READ_CENSUS = "read_census"
READ_AGGREGATES = "read_aggregates"
READ_FORECAST = "read_forecast"
READ_COORDINATION = "read_coordination"

EMERGENCY = UnitType.EMERGENCY.value
DIVERTING = ("advisory", "closed")

# A site silent for three staleness limits (15 minutes by default: fifteen missed minute
# snapshots and no heartbeat) is not merely late: the board calls it offline.
OFFLINE_FACTOR = 3

ED_STATUS_LABELS = {
    "open": "Open",
    "advisory": "Advisory",
    "closed": "Closed to ambulances",
    "unknown": "Unknown",
    "none": "No ED figures",
}
ADVICE_LABELS = {"open": "reopen", "advisory": "advisory", "closed": "close"}
# EDXL-HAVE EMS traffic status (what hub.census reports) → the board's words.
_FROM_EMS_TRAFFIC = {
    "Normal": "open",
    "Advisory": "advisory",
    "Closed": "closed",
    "Unknown": "unknown",
    "NotApplicable": "none",
}
# Worst first: the order of "sort by ED status".
ED_STATUS_RANK = {"closed": 0, "advisory": 1, "unknown": 2, "open": 3, "none": 4}

FRESHNESS_LABELS = {"fresh": "Fresh", "stale": "Stale", "offline": "Offline", "no_data": "No data"}
FRESHNESS_RANK = {"no_data": 0, "offline": 1, "stale": 2, "fresh": 3}

BED_TYPE_LABELS = {
    "adult_icu": "Adult ICU",
    "pediatric_icu": "Paediatric ICU",
    "neonatal_icu": "Neonatal ICU",
    "medical_surgical": "Med-surg",
    "pediatrics": "Paediatrics",
    "psychiatric": "Psychiatry",
    "burn": "Burns",
    "isolation": "Isolation",
    "obstetrics": "Obstetrics",
    "emergency": "ED",
    "operating_room": "Theatres",
    "step_down": "Step-down",
    "observation": "Observation",
    "rehabilitation": "Rehab",
    "other": "Other",
}


def bed_type_label(unit_type: str) -> str:
    return BED_TYPE_LABELS.get(unit_type, unit_type.replace("_", " "))


def age_text(seconds: int | None) -> str:
    """How old a figure is, in the fewest words a wall screen needs."""
    if seconds is None:
        return "never"
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes and hours < 6 else f"{hours} h"
    return f"{hours // 24} d"


# --- who may see what -------------------------------------------------------------------------


def _reaches(scope: Scope, hospital_id: int, unit_id: int | None = None) -> bool:
    """Does ``scope`` reach this unit (or, with no unit, this hospital as a whole)?"""
    if scope.all or hospital_id in scope.hospital_ids:
        return True
    return unit_id is not None and unit_id in scope.unit_ids


@dataclass(frozen=True)
class Access:
    """One user's reach on the board and the hospital pages, computed once per request."""

    user: Any
    census: Scope
    aggregates: Scope
    forecast: Scope
    coordination: Scope

    def hospitals(self) -> QuerySet[Hospital]:
        return restrict(Hospital.objects.all(), self.user, BOARD_ACTION)

    def units(self) -> QuerySet[Unit]:
        """Units whose figures the user may see, in detail or as hospital totals."""
        if self.census.all or self.aggregates.all:
            return Unit.objects.all()
        return restrict(Unit.objects.all(), self.user, READ_CENSUS) | restrict(
            Unit.objects.all(), self.user, READ_AGGREGATES
        )

    def whole_hospital(self, hospital_id: int) -> bool:
        """Are the tile's totals the whole hospital's (not just the user's own units)?"""
        return _reaches(self.census, hospital_id) or _reaches(self.aggregates, hospital_id)

    def unit_detail(self, hospital_id: int, unit_id: int) -> bool:
        return _reaches(self.census, hospital_id, unit_id)

    def forecasts(self, hospital_id: int, unit_id: int) -> bool:
        return _reaches(self.forecast, hospital_id, unit_id)

    def coordination_of(self, hospital_id: int) -> bool:
        return _reaches(self.coordination, hospital_id)


def access_for(user: Any) -> Access:
    return Access(
        user=user,
        census=scope_for(user, READ_CENSUS),
        aggregates=scope_for(user, READ_AGGREGATES),
        forecast=scope_for(user, READ_FORECAST),
        coordination=scope_for(user, READ_COORDINATION),
    )


# --- history ---------------------------------------------------------------------------------

# Figures the history can add up per group of units, as SQL over the chosen snapshot ``s``.
# Module constants only ever reach the statement text; the request reaches it as parameters.
HISTORY_VALUES = {
    "free": "COALESCE(s.available_beds, GREATEST(0, s.staffed_beds"
    " + COALESCE(s.surge_beds, 0) - s.occupied_beds))",
    "occupied": "s.occupied_beds",
    "capacity": "s.staffed_beds + COALESCE(s.surge_beds, 0)",
    "ed_waiting": "s.ed_waiting",
    "ed_boarding": "s.ed_boarding",
}

# One statement for every unit of some groups at some points in time: for each (unit, t) the
# newest snapshot in (t - step, t], found by a backward scan of the (unit, observed_at) index
# that stops at the first row — a few index pages per point, whatever the snapshot rate —
# and only the monthly partitions the window touches are visited (run-time pruning). A GROUP
# BY over the window instead would read every snapshot of the last day (about 10^6 rows for
# a 50-hospital region at one snapshot per unit per minute). The figures are added up per
# group (a hospital's units, a bed type's) and point in the database, with a count of the
# units that had one, so a sum missing a unit is known as such. Unit ids come from
# restricted querysets.
_HISTORY_SQL = """
SELECT u.grp, g.ti, {columns}
FROM unnest(%s::bigint[], %s::int[]) AS u(id, grp)
CROSS JOIN unnest(%s::timestamptz[], %s::int[]) AS g(t, ti)
CROSS JOIN LATERAL (
    SELECT c.staffed_beds, c.surge_beds, c.occupied_beds, c.available_beds,
           c.ed_waiting, c.ed_boarding
    FROM census_censussnapshot c
    WHERE c.unit_id = u.id AND c.audience = %s
      AND c.observed_at <= g.t AND c.observed_at > g.t - %s::interval
    ORDER BY c.observed_at DESC
    LIMIT 1
) s
GROUP BY u.grp, g.ti
"""

Sums = tuple[float | None, ...]


@dataclass(frozen=True)
class History:
    """Points in time (oldest first) and, per group and figure, the sum over the group's
    units at each point: None where a unit had no figure (a sum missing a unit would show a
    false dip, so it is not shown at all)."""

    times: list[datetime]
    sums: dict[tuple[Any, str], list[float | None]]

    def series(self, group: Any, value: str) -> list[float | None]:
        return self.sums.get((group, value), [None] * len(self.times))


def history_times(end: datetime, hours: int, step: timedelta) -> list[datetime]:
    """``hours / step`` points ending at ``end``: the last is ``end`` itself, the others sit
    on the step's grid (whole hours), so they are the same instants from one request to the
    next — and, once past, can be kept (``_settled``)."""
    count = int(timedelta(hours=hours) / step)
    epoch = datetime(2000, 1, 1, tzinfo=end.tzinfo)
    grid = end - (end - epoch) % step
    if grid == end:
        grid -= step
    return [grid - (count - 2 - k) * step for k in range(count - 1)] + [end]


class _Settled:
    """Sums at past points, per process, each kept for a while that grows with its age.

    A past hour's snapshots do not change — except when a site's outbox delivers late after
    an outage, which is why points are not kept for ever: a point an hour back for
    ``HUB_BOARD_HISTORY_CACHE_SECONDS`` (default 5 minutes), a point h hours back h times
    as long, since late data lands in the recent hours first. Stored together, the points
    so expire one or two at a time, not all in one slow request. The board is polled every
    15 seconds by every screen showing it; without this each poll would look up every unit
    at every past hour again. Keys hold the unit ids a user may see, so what one person's
    request stored only ever answers a request for exactly the same units. Bounded, least
    recently used out first.
    """

    LIMIT = 20_000  # groups of units
    POINTS = 96  # per group: the 72-hour chart and a day to spare

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[Any, ...], dict[datetime, tuple[float, Sums]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], end: datetime, ttl: float) -> dict[datetime, Sums]:
        now = time.monotonic()
        with self._lock:
            points = self._entries.get(key)
            if points is None:
                return {}
            self._entries.move_to_end(key)
            return {
                t: sums
                for t, (stored, sums) in points.items()
                if now - stored <= ttl * max(1.0, (end - t) / timedelta(hours=1))
            }

    def put(self, key: tuple[Any, ...], points: dict[datetime, Sums]) -> None:
        now = time.monotonic()
        with self._lock:
            kept = self._entries.setdefault(key, {})
            kept.update({t: (now, sums) for t, sums in points.items()})
            for t in sorted(kept)[: max(0, len(kept) - self.POINTS)]:
                del kept[t]  # hours no longer on any chart
            self._entries.move_to_end(key)
            while len(self._entries) > self.LIMIT:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_settled = _Settled()


def history_cache_seconds() -> float:
    value = getattr(settings, "HUB_BOARD_HISTORY_CACHE_SECONDS", None)
    if value is None:
        value = env_int("HUB_BOARD_HISTORY_CACHE_SECONDS", 300)
    return float(value)


def _query_sums(
    batches: list[tuple[list[int], list[int], list[int]]],
    times: list[datetime],
    values: Sequence[str],
    audience: str,
    step: timedelta,
) -> list[tuple[int, int, list[Any]]]:
    """Run the history statement once per batch of (unit ids, their group indexes, time
    indexes); rows of (group index, time index, sum and count per value)."""
    columns = ", ".join(f"sum({HISTORY_VALUES[v]}), count({HISTORY_VALUES[v]})" for v in values)
    statement = _HISTORY_SQL.format(columns=columns)
    rows: list[tuple[int, int, list[Any]]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner cannot know that run-time pruning leaves one partition per probe, so
        # it plans Append + Sort: every snapshot of the window read and sorted to keep one
        # (60 at one snapshot a minute). Without sorts it takes the Merge Append of backward
        # index scans and LIMIT 1 stops at the first row: about 4 buffer reads per (unit,
        # time), whatever the snapshot rate. And thousands of one-row probes look costly
        # enough to be compiled with LLVM first, which takes longer (over a second) than
        # running them. SET LOCAL ends with this transaction.
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL jit = off")
        interval = f"{step.total_seconds():g} seconds"
        for ids, grps, tis in batches:
            cursor.execute(statement, [ids, grps, [times[i] for i in tis], tis, audience, interval])
            rows += [(grp, ti, figures) for grp, ti, *figures in cursor.fetchall()]
    return rows


def history(
    groups: Mapping[Any, Sequence[int]],
    values: Sequence[str],
    *,
    end: datetime,
    hours: int,
    step: timedelta = timedelta(hours=1),
    audience: str = DEFAULT_AUDIENCE,
) -> History:
    """Sums of ``values`` (names of ``HISTORY_VALUES``) over each group of units (already
    restricted) at each ``step`` over the last ``hours``, ending at ``end``. One query,
    for the points no earlier request of this process has settled."""
    times = history_times(end, hours, step)
    keys = [k for k, ids in groups.items() if ids]
    sums: dict[tuple[Any, str], list[float | None]] = {
        (k, v): [None] * len(times) for k in keys for v in values
    }
    if not keys or not values:
        return History(times=times, sums=sums)
    ttl = history_cache_seconds()
    # Only points whose hour is over are kept: not ``end`` (it moves), nor any point a
    # caller asked for in the future.
    settled_before = min(end, timezone.now())
    cache_keys = [(audience, step, tuple(values), tuple(sorted(groups[k]))) for k in keys]
    known = [_settled.get(ck, end, ttl) if ttl > 0 else {} for ck in cache_keys]
    # Groups missing the same points go in one batch: all of them on a cold start, only
    # "now" once the past hours are kept — one statement either way.
    batches: dict[tuple[int, ...], tuple[list[int], list[int]]] = {}
    for index, key in enumerate(keys):
        missing = tuple(ti for ti, t in enumerate(times) if t not in known[index])
        if missing:
            ids, grps = batches.setdefault(missing, ([], []))
            ids += groups[key]
            grps += [index] * len(groups[key])
    fresh: list[dict[datetime, Sums]] = [{} for _ in keys]
    for missing, (_, grps) in batches.items():
        for index in set(grps):
            for ti in missing:
                fresh[index][times[ti]] = (None,) * len(values)  # until a unit has a figure
    if batches:
        rows = _query_sums(
            [(ids, grps, list(missing)) for missing, (ids, grps) in batches.items()],
            times,
            values,
            audience,
            step,
        )
        for grp, ti, figures in rows:
            expected = len(groups[keys[grp]])
            fresh[grp][times[ti]] = tuple(
                float(figures[2 * n])
                if figures[2 * n] is not None and figures[2 * n + 1] == expected
                else None
                for n in range(len(values))
            )
    for index, key in enumerate(keys):
        points = {**known[index], **fresh[index]}
        for ti, t in enumerate(times):
            for n, value in enumerate(values):
                sums[(key, value)][ti] = points.get(t, (None,) * len(values))[n]
        if ttl > 0 and fresh[index]:
            past = {t: v for t, v in fresh[index].items() if t < settled_before}
            if past:
                _settled.put(cache_keys[index], past)
    return History(times=times, sums=sums)


# --- tiles -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BedFigure:
    unit_type: str
    label: str
    staffed: int
    occupied: int
    free: int
    occupancy_pct: float | None
    complete: bool  # every unit of the type reported fresh figures
    fresh: bool  # at least one did (else the figures are left out, not shown as zero)


@dataclass(frozen=True, slots=True)
class ForecastBand:
    horizon_hours: float
    p10: float | None
    p50: float
    p90: float | None


@dataclass
class Tile:
    """Everything one hospital's tile shows, already decided (the template only lays out)."""

    hospital_id: int
    site_code: str
    name: str
    url: str
    timezone: str
    ed_status: str  # open | advisory | closed | unknown | none
    ed_status_reason: str
    advice: str | None  # the regional evaluation's recommended status, when it differs
    surge_level: int | None
    freshness: str  # fresh | stale | offline | no_data
    freshness_reason: str
    age_seconds: int | None
    occupancy_pct: float | None
    free_beds: int | None
    staffed_beds: int | None
    beds: list[BedFigure]
    ed_waiting: int | None
    ed_boarding: int | None
    offload_p90: int | None
    whole_hospital: bool
    scope_note: str
    spark_times: list[datetime] = field(default_factory=list)
    spark_free: list[float | None] = field(default_factory=list)
    forecast: list[ForecastBand] = field(default_factory=list)
    forecast_as_of: datetime | None = None

    @property
    def ed_status_label(self) -> str:
        return ED_STATUS_LABELS[self.ed_status]

    @property
    def advice_label(self) -> str:
        return ADVICE_LABELS.get(self.advice or "", "")

    @property
    def freshness_label(self) -> str:
        return FRESHNESS_LABELS[self.freshness]

    @property
    def age_text(self) -> str:
        return age_text(self.age_seconds)

    @property
    def signature(self) -> str:
        """What, when it changes between two refreshes, makes the tile flash and chime."""
        return f"{self.ed_status}|{self.advice or '-'}|{self.surge_level or '-'}"

    @property
    def problem(self) -> bool:
        return self.freshness != "fresh"


def _freshness(live: HospitalLive, now: datetime) -> tuple[str, str, int | None]:
    limit = census_conf.stale_after_seconds()
    seen = [u.freshness.observed_at for u in live.units if u.freshness.observed_at]
    seen += [f.last_seen_at for f in live.feeds]
    if not seen:
        return "no_data", "nothing received from this site yet", None
    newest = max(seen)
    age = max(0, int((now - newest).total_seconds()))
    if age > OFFLINE_FACTOR * limit:
        return "offline", f"nothing received for {age_text(age)}", age
    stale_feeds = [
        str(f.get("name", "feed"))
        for feed in live.feeds
        for f in feed.feeds
        if isinstance(f, dict) and f.get("stale")
    ]
    stale_feeds += [feed.component for feed in live.feeds if feed.stale and not feed.feeds]
    reasons = []
    if live.stale_units:
        names = live.stale_units[:6]
        more = len(live.stale_units) - len(names)
        reasons.append(
            f"stale units: {', '.join(names)}" + (f" and {more} more" if more > 0 else "")
        )
    if stale_feeds:
        reasons.append(f"feeds overdue: {', '.join(sorted(set(stale_feeds)))}")
    oldest_age = live.freshness.age_seconds
    if reasons or live.status != "ok":
        return "stale", "; ".join(reasons) or live.freshness.reason, oldest_age
    return "fresh", "", oldest_age


def spark_units(units: Sequence[UnitLive]) -> list[UnitLive]:
    """The units whose free places the sparkline adds up: the beds, or the ED alone when the
    user sees nothing else (ED staff)."""
    beds = [u for u in units if u.unit_type != EMERGENCY]
    return beds or [u for u in units if u.unit_type == EMERGENCY]


def spark_groups(lives: Iterable[HospitalLive]) -> dict[int, list[int]]:
    """Per hospital, the units its sparkline adds up."""
    return {live.hospital.pk: [u.unit_id for u in spark_units(live.units)] for live in lives}


def summed_forecast(units: Sequence[UnitLive]) -> list[ForecastBand]:
    """Forecast free places of several units added per horizon. A horizon some unit lacks is
    left out (the sum would undercount); p10/p90 are summed too, which widens the band a
    little beyond the true interval of the sum: for a board, the cautious side."""
    if not units:
        return []
    by_h: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for u in units:
        for p in u.forecast:
            try:
                h = float(p["horizon_hours"])
            except (KeyError, TypeError, ValueError):
                continue
            if p.get("p50") is not None:
                by_h[h].append(p)
    out = []
    for h, points in sorted(by_h.items()):
        if len(points) != len(units):
            continue
        p10 = None if any(p.get("p10") is None for p in points) else sum(p["p10"] for p in points)
        p90 = None if any(p.get("p90") is None for p in points) else sum(p["p90"] for p in points)
        out.append(
            ForecastBand(
                h,
                None if p10 is None else round(p10, 1),
                round(float(sum(p["p50"] for p in points)), 1),
                None if p90 is None else round(p90, 1),
            )
        )
    return out


def _scope_note(units: Sequence[UnitLive]) -> str:
    if not units:
        return "No unit of this hospital is shared with your role"
    names = ", ".join(u.name for u in units[:3]) + (" …" if len(units) > 3 else "")
    return f"Your units only: {names}"


def build_tile(
    live: HospitalLive,
    access: Access,
    *,
    now: datetime,
    status: coordination.HospitalStatus | None,
    hist: History | None,
) -> Tile:
    h = live.hospital
    whole = access.whole_hospital(h.pk)
    freshness, reason, age = _freshness(live, now)
    ed = live.ed
    ed_status = "none"
    ed_reason = ""
    if ed is not None:
        ed_status = _FROM_EMS_TRAFFIC.get(ed.ems_traffic, "unknown")
        ed_reason = ed.ems_traffic_reason
    advice = None
    surge = None
    if status is not None:
        surge = status.surge_level
        # The evaluation's advice is news when it would change what is in force: divert an
        # open ED, or reopen a diverting one. "Open" next to an unknown status is noise.
        differs = status.diversion_status != ed_status
        if differs and (status.diversion_status != "open" or ed_status in DIVERTING):
            advice = status.diversion_status
    fresh_ed = ed if ed is not None and not ed.freshness.stale else None
    fresh_beds = [b for b in live.beds if b.units_fresh]
    staffed = sum(b.staffed for b in fresh_beds)
    occupied = sum(b.occupied for b in fresh_beds)
    beds = [
        BedFigure(
            unit_type=b.unit_type,
            label=bed_type_label(b.unit_type),
            staffed=b.staffed,
            occupied=b.occupied,
            free=b.available,
            occupancy_pct=b.occupancy_pct,
            complete=b.units_fresh == b.units,
            fresh=b.units_fresh > 0,
        )
        for b in sorted(live.beds, key=lambda b: -b.baseline_staffed)
    ]
    tile = Tile(
        hospital_id=h.pk,
        site_code=h.site_code,
        name=h.name,
        url=reverse("web:hospital", kwargs={"site_code": h.site_code}),
        timezone=h.region.timezone,
        ed_status=ed_status,
        ed_status_reason=ed_reason,
        advice=advice,
        surge_level=surge,
        freshness=freshness,
        freshness_reason=reason,
        age_seconds=age,
        occupancy_pct=round(100 * occupied / staffed, 1) if staffed else None,
        free_beds=sum(b.available for b in fresh_beds) if fresh_beds else None,
        staffed_beds=staffed or None,
        beds=beds,
        # Stale ED figures are not shown as if current (the badge says why they are missing).
        ed_waiting=fresh_ed.waiting if fresh_ed else None,
        ed_boarding=fresh_ed.boarding if fresh_ed else None,
        offload_p90=fresh_ed.offload_p90_minutes if fresh_ed else None,
        whole_hospital=whole,
        scope_note="" if whole else _scope_note(live.units),
    )
    spark = spark_units(live.units)
    if hist is not None and spark:
        tile.spark_times = hist.times
        tile.spark_free = hist.series(h.pk, "free")
    forecast_units = [u for u in spark if access.forecasts(h.pk, u.unit_id)]
    if forecast_units and len(forecast_units) == len(spark):
        tile.forecast = summed_forecast(forecast_units)
        seen = [u.freshness.observed_at for u in forecast_units if u.freshness.observed_at]
        tile.forecast_as_of = min(seen) if seen else None
    return tile


def statuses_for(access: Access, hospital_ids: Sequence[int]) -> dict[int, Any]:
    """The coordination status rows of those hospitals the user may read coordination of."""
    if access.coordination.empty or not hospital_ids:
        return {}
    rows = restrict(
        coordination.HospitalStatus.objects.filter(hospital_id__in=hospital_ids),
        access.user,
        READ_COORDINATION,
    )
    return {row.hospital_id: row for row in rows}


def live_for(access: Access, hospitals: QuerySet[Hospital], *, now: datetime) -> list[HospitalLive]:
    return live_hospitals(hospitals=hospitals, units=access.units(), now=now)


def tiles_for(
    user: Any,
    *,
    search: str = "",
    now: datetime | None = None,
    spark_hours: int = 24,
    access: Access | None = None,
) -> list[Tile]:
    """A tile per hospital ``user`` may see (optionally only names or site codes containing
    ``search``), unsorted. A fixed number of queries whatever the number of hospitals."""
    now = now or timezone.now()
    access = access or access_for(user)
    hospitals = access.hospitals()
    if search:
        hospitals = hospitals.filter(Q(name__icontains=search) | Q(site_code__icontains=search))
    lives = live_for(access, hospitals, now=now)
    statuses = statuses_for(access, [live.hospital.pk for live in lives])
    hist = history(spark_groups(lives), ("free",), end=now, hours=spark_hours)
    return [
        build_tile(live, access, now=now, status=statuses.get(live.hospital.pk), hist=hist)
        for live in lives
    ]


# --- sorting and filtering --------------------------------------------------------------------

SORTS = {
    "name": "Name",
    "occupancy": "Occupancy (highest first)",
    "free": "Free beds (fewest first)",
    "ed": "ED status (closed first)",
    "surge": "Surge level (highest first)",
}
STATUS_FILTERS = {
    "": "All hospitals",
    "open": "ED open",
    "advisory": "ED on advisory",
    "closed": "ED closed to ambulances",
    "diverting": "ED advisory or closed",
    "feed": "Stale or offline feeds",
}

_LAST = float("inf")


def _by_name(t: Tile) -> tuple[str, str]:
    return (t.name.casefold(), t.site_code)


def sort_tiles(tiles: Iterable[Tile], key: str) -> list[Tile]:
    """Sort for an operator's question; hospitals without the figure go last."""
    by_name = sorted(tiles, key=_by_name)
    if key == "occupancy":
        return sorted(
            by_name, key=lambda t: -t.occupancy_pct if t.occupancy_pct is not None else _LAST
        )
    if key == "free":
        return sorted(by_name, key=lambda t: t.free_beds if t.free_beds is not None else _LAST)
    if key == "ed":
        return sorted(
            by_name,
            key=lambda t: (
                ED_STATUS_RANK[t.ed_status],
                ED_STATUS_RANK.get(t.advice or "", 9),
                FRESHNESS_RANK[t.freshness],
            ),
        )
    if key == "surge":
        return sorted(by_name, key=lambda t: -(t.surge_level or 0))
    return by_name


def filter_tiles(tiles: Iterable[Tile], status: str) -> list[Tile]:
    if status in ("open", "advisory", "closed"):
        return [t for t in tiles if t.ed_status == status]
    if status == "diverting":
        return [t for t in tiles if t.ed_status in ("advisory", "closed")]
    if status == "feed":
        return [t for t in tiles if t.problem]
    return list(tiles)


@dataclass(frozen=True)
class BoardSummary:
    hospitals: int
    closed: int
    advisory: int
    problems: int
    free_beds: int
    generated_at: datetime


def summarise(tiles: Sequence[Tile], now: datetime) -> BoardSummary:
    return BoardSummary(
        hospitals=len(tiles),
        closed=sum(1 for t in tiles if t.ed_status == "closed"),
        advisory=sum(1 for t in tiles if t.ed_status == "advisory"),
        problems=sum(1 for t in tiles if t.problem),
        free_beds=sum(t.free_beds or 0 for t in tiles if t.freshness == "fresh"),
        generated_at=now,
    )


def local_time(at: datetime, tz: str) -> datetime:
    try:
        return at.astimezone(ZoneInfo(tz))
    except (KeyError, ValueError):
        return at
