"""Diversion recommendations: live state in, recommended ED status per hospital out.

Pure: plain dataclasses in (``hub.coordination.state``), plain dataclasses out; no ORM, no
clock (``now`` is an argument), no randomness. One call evaluates a whole region:

1. **Pressure** per hospital, 0-1: each figure mapped onto 0-1 by its band (ED occupancy,
   waiting, boarding, longest boarding, ambulance offload p90, ICU and ward occupancy, the
   forecast's least free ED places over the next 2-6 hours), then the weighted mean of the
   figures that are present and fresh. A missing figure is left out rather than guessed, so
   a hospital without a forecast is still scored, and flagged "no forecast".
2. **Status** per hospital (open / advisory / closed) from the pressure, with hysteresis
   (enter above one threshold, leave below a lower one), a minimum duration, and expiry
   (``rules``).
3. **Routes**: each diverting hospital H, most pressed first, gets for each class of
   ambulance patient it takes the nearest hospital G that may receive them
   (``rules.destination_refusal``: fresh, open, not saturated, free places, capable, close
   enough). G's free places are reduced by the load already sent to it, so two diversions
   do not both count on the same beds. H without a destination for general ambulances stays
   open: a diversion with nowhere to go is no diversion.
4. **Region**: when a large share of the region would close, or hospitals need to divert and
   no hospital can receive, nobody closes: the region load-balances, each hospital's
   ambulances shared between it and its nearest neighbours in proportion to free places.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from hub.coordination import explain, rules
from hub.coordination.arrays import (
    PRESSURE_FIGURES,
    STATE_COLUMNS,
    F,
    RegionArrays,
    pressure_scores,
    region_arrays,
)
from hub.coordination.config import DiversionConfig
from hub.coordination.state import (
    TIME_CRITICAL,
    AmbulanceClass,
    Capabilities,
    ForecastPoint,
    HospitalState,
    TravelTimes,
)


class Status(StrEnum):
    OPEN = "open"
    ADVISORY = "advisory"
    CLOSED = "closed"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Status.OPEN: 0, Status.ADVISORY: 1, Status.CLOSED: 2}


class Mode(StrEnum):
    NORMAL = "normal"
    LOAD_BALANCING = "load_balancing"


CLASS_LABEL: dict[AmbulanceClass, str] = {
    AmbulanceClass.GENERAL: "general",
    AmbulanceClass.MAJOR_TRAUMA: "major trauma",
    AmbulanceClass.STROKE: "stroke",
    AmbulanceClass.STROKE_THROMBECTOMY: "thrombectomy stroke",
    AmbulanceClass.STEMI: "STEMI",
    AmbulanceClass.PAEDIATRIC: "paediatric",
    AmbulanceClass.BURNS: "burns",
    AmbulanceClass.MATERNITY: "maternity",
    AmbulanceClass.PSYCHIATRIC: "psychiatric",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorStatus:
    """What held before this evaluation (the latest recommendation or decision in force)."""

    status: Status
    since: datetime | None  # None: unknown or long ago (no minimum duration applies)
    expires_at: datetime | None = None
    destinations: Mapping[AmbulanceClass, str] = field(default_factory=dict)


class Component(NamedTuple):
    """One figure's part in the pressure: its value as banded, its 0-1 score, its weight."""

    name: str
    value: float
    score: float
    weight: float


@dataclass(frozen=True, slots=True)
class Pressure:
    score: float | None  # None: no ED figures (cannot be judged)
    components: tuple[Component, ...]
    has_forecast: bool
    unused: tuple[str, ...] = ()  # figures present but too old to use


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    code: str
    fresh: bool
    stale_reasons: tuple[str, ...]
    pressure: Pressure
    raw_status: Status  # what the pressure alone says, before hysteresis and rules
    status: Status  # what is recommended now
    since: datetime | None
    expires_at: datetime | None
    reason: str


def _no_text() -> str:
    return ""


def _no_inputs() -> Hashable | None:
    return None


class _Once:
    """A deferred builder that builds once: the explanation of a recommendation is read by
    its alert, by the service that stores it and by the API, and is the same each time."""

    __slots__ = ("_build", "_value")

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._value: Any = _Once

    def __call__(self) -> Any:
        if self._value is _Once:
            self._value = self._build()
        return self._value

    def known(self, value: Any) -> None:
        """The value, known already (words stored from equal inputs): not built."""
        if self._value is _Once:
            self._value = value


class Route(NamedTuple):
    """One class of H's ambulances and where to send them (a named tuple: a load-balancing
    national region makes some 30,000 a minute)."""

    ambulance_class: AmbulanceClass
    destination: str
    travel_minutes: float
    share: float = 1.0  # load-balancing: the share of H's ambulances for this destination
    alternates: tuple[str, ...] = ()
    text: Callable[[], str] = _no_text

    @property
    def explanation(self) -> str:
        """'G: 5 ED beds free, forecast 3 free in 2 h (80% interval 1–6), 12 minutes away'."""
        return self.text()


@dataclass(frozen=True, slots=True, kw_only=True)
class Kept:
    """A class H keeps taking although it diverts others, and why."""

    ambulance_class: AmbulanceClass
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    """One hospital's recommendation. Its words (``explanation``) and the record of the
    numbers behind it (``figures``) are built when read: a national region decides for
    thousands of hospitals a minute, and only the advice someone reads or stores needs text."""

    hospital: str
    mode: Mode
    status: Status
    score: float | None
    routes: tuple[Route, ...]
    kept: tuple[Kept, ...]
    no_forecast: bool
    expires_at: datetime | None
    text: Callable[[], str] = field(repr=False, compare=False)
    numbers: Callable[[], dict[str, Any]] = field(repr=False, compare=False)
    inputs: Callable[[], Hashable | None] = field(default=_no_inputs, repr=False, compare=False)

    @property
    def explanation(self) -> str:
        return self.text()

    @property
    def inputs_key(self) -> Hashable | None:
        """Every value its words (``explanation``, ``figures``, the routes' texts, the
        score) are made from, but the snapshot time; None when the words also depend on the
        clock (a stale hospital's held advice quotes ages). Two recommendations of one
        region configuration with equal keys have the same words: a renewal whose key is
        the stored one's keeps its words without building them (``services``)."""
        return self.inputs()

    @property
    def figures(self) -> dict[str, Any]:
        """The numbers used, JSON-ready, for the record and the API."""
        return self.numbers()

    def known_route_texts(self, texts: Sequence[str]) -> None:
        """Give the routes their texts, known already: the stored texts of routes whose
        inputs (``routes_inputs``) are equal to these routes' under the same configuration.
        They are not built again, and the explanation quotes them."""
        for route, text in zip(self.routes, texts, strict=True):
            if isinstance(route.text, _Once):
                route.text.known(text)


def routes_inputs(key: Hashable | None) -> Hashable | None:
    """The part of an inputs key (``Recommendation.inputs_key``) that the routes' texts are
    made from: per route its destination, travel minutes, share and the destination's
    figures, and outside load-balancing its class and alternates (``_lb_inputs``,
    ``_inputs``). Two renewals of the same advice under the same configuration with equal
    parts have equal routes and route texts, whatever else changed."""
    return key[2] if isinstance(key, tuple) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChange:
    hospital: str
    from_status: Status
    to_status: Status
    at: datetime
    reason: str


class Next(NamedTuple):
    status: Status
    since: datetime | None
    expires_at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionDiversion:
    """The region's diversion picture. Whole-region figures are arrays (one row per hospital,
    in ``codes`` order); per-hospital objects are built on demand (``assessment``), because a
    national region has thousands of hospitals of which a few dozen need words."""

    mode: Mode
    at: datetime
    recommendations: tuple[Recommendation, ...]
    changes: tuple[StatusChange, ...]
    fresh_count: int
    would_close: int
    explanation: str
    arrays: RegionArrays
    pressure: F  # NaN where stale or unknown
    statuses: Mapping[str, Next]  # every hospital that is not simply open as before
    priors: Mapping[str, PriorStatus]
    states: Sequence[HospitalState]
    cfg: DiversionConfig

    @property
    def codes(self) -> tuple[str, ...]:
        return self.arrays.codes

    @property
    def diverting(self) -> tuple[str, ...]:
        return tuple(c for c, n in self.statuses.items() if n.status is not Status.OPEN)

    def status(self, code: str) -> Status:
        n = self.statuses.get(code)
        return n.status if n is not None else Status.OPEN

    def assessment(self, code: str) -> Assessment:
        i = self.arrays.index[code]
        fresh = bool(self.arrays.fresh[i])
        state = self.states[i]
        p = pressure(state, self.at, self.cfg) if fresh else Pressure(None, (), False)
        n = self.statuses.get(code)
        if n is None:
            prior = self.priors.get(code)
            n = Next(Status.OPEN, prior.since if prior is not None else None, None, "unchanged")
        return Assessment(
            code=code,
            fresh=fresh,
            stale_reasons=() if fresh else rules.stale_reasons(state, self.at, self.cfg),
            pressure=p,
            raw_status=raw_status(p.score, self.cfg),
            status=n.status,
            since=n.since,
            expires_at=n.expires_at,
            reason=n.reason,
        )

    @property
    def assessments(self) -> dict[str, Assessment]:
        """Every hospital's assessment (builds one object per hospital: for tests and
        small regions; the services read ``statuses``, ``pressure`` and the changes)."""
        return {c: self.assessment(c) for c in self.codes}


# --- pressure ---------------------------------------------------------------------------------


def pressure(state: HospitalState, now: datetime, cfg: DiversionConfig) -> Pressure:
    """One hospital's pressure score, with the part each figure played (the region's
    formula, ``arrays.pressure_scores``, on a one-row region)."""
    a = region_arrays([state], now, cfg)
    scores, weights, p = pressure_scores(a.pressure_figures, cfg)
    return _pressure_row(a, scores, weights, p, 0)


def _pressure_row(a: RegionArrays, scores: F, weights: F, p: F, i: int) -> Pressure:
    values = a.pressure_figures[i].tolist()
    sc = scores[i].tolist()
    ws = weights[i].tolist()
    comps = tuple(
        Component(name, values[j], sc[j], ws[j])
        for j, name in enumerate(PRESSURE_FIGURES)
        if ws[j] > 0
    )
    unused = []
    if a.offload_unusable[i]:
        unused.append("offload figure too old, not used")
    if a.forecast_unusable[i]:
        unused.append("forecast too old, not used")
    score = float(p[i])
    return Pressure(
        None if math.isnan(score) else score, comps, bool(a.forecast_usable[i]), tuple(unused)
    )


def _window(state: HospitalState, cfg: DiversionConfig) -> tuple[ForecastPoint, ...]:
    if state.forecast is None:
        return ()
    lo, hi = cfg.forecast_min_hours, cfg.forecast_max_hours
    return tuple(p for p in state.forecast.ed if lo <= p.horizon_hours <= hi)


def raw_status(score: float | None, cfg: DiversionConfig) -> Status:
    if score is None or math.isnan(score):
        return Status.OPEN
    if score >= cfg.close_enter:
        return Status.CLOSED
    if score >= cfg.advisory_enter:
        return Status.ADVISORY
    return Status.OPEN


# --- status with hysteresis, minimum duration and expiry ----------------------------------------


def next_status(
    prior: PriorStatus | None, score: float | None, fresh: bool, now: datetime, cfg: DiversionConfig
) -> Next:
    """One hospital's status from its prior status and its pressure now (no region rules)."""
    if prior is None:
        prev, since, expires, expired = Status.OPEN, None, None, False
    else:
        prev, since, expires = prior.status, prior.since, prior.expires_at
        expired = prev is not Status.OPEN and rules.expired(expires, now)
        if expired:
            # A lapsed diversion leaves no minimum duration behind: the site is open again and
            # may be closed again at once if the figures say so.
            prev, since, expires = Status.OPEN, None, None
    if not fresh or score is None or math.isnan(score):
        # Nothing current to judge by: what held stays, but is not renewed, so it lapses.
        why = "expired; feed stale" if expired else "feed stale: held, not renewed"
        return Next(prev, since, expires if prev is not Status.OPEN else None, why)
    target = raw_status(score, cfg)
    held = Status.OPEN
    if prev is Status.CLOSED and score >= cfg.close_exit:
        held = Status.CLOSED
    elif prev is not Status.OPEN and score >= cfg.advisory_exit:
        held = Status.ADVISORY
    if held.rank > target.rank:
        target = held
    if target is not prev and not rules.held_long_enough(since, now, cfg.min_status_minutes):
        return Next(prev, since, _renew(prev, now, cfg), "minimum duration not reached")
    if target is prev:
        reason = "expired; unchanged" if expired else "unchanged"
        return Next(prev, since, _renew(prev, now, cfg), reason)
    reason = f"pressure {round(score * 100)}/100"
    return Next(target, now, _renew(target, now, cfg), reason)


def _renew(status: Status, now: datetime, cfg: DiversionConfig) -> datetime | None:
    return None if status is Status.OPEN else now + timedelta(minutes=cfg.ttl_minutes)


# --- the region ------------------------------------------------------------------------------


class _Ctx(NamedTuple):
    """What routing needs, indexed like the arrays (as lists: routing reads single items,
    which numpy answers slower than a list)."""

    states: Sequence[HospitalState]
    where: Mapping[str, int]
    candidate: list[bool]  # may receive (fresh, open, not saturated, free places)
    pressure: list[float]
    remaining: list[float]  # free ED places not yet promised to a diversion
    arrays: RegionArrays
    scores: F
    weights: F
    p: F

    masks: list[int]
    mask_cache: dict[Capabilities, int]
    cfg: DiversionConfig
    rows: dict[int, Pressure]  # pressure_of, once per hospital (its text and its figures)

    def hospital_key(self, i: int) -> tuple[Any, ...]:
        """The values hospital i's pressure and description are made from: its figures
        (``arrays.STATE_COLUMNS``), its forecast points and whether its offload figure and
        forecast are too old to use (the only parts the clock decides)."""
        s = self.states[i]
        f = s.forecast
        a = self.arrays
        # Compared with ==, so 3 and 3.0 are the same key though the words print them
        # differently: each figure comes from a column of one type (integer counts, float
        # minutes and shares), so a value never changes type between two minutes.
        return (
            s.code,
            STATE_COLUMNS(s),
            None if f is None else (f.ed, f.icu, f.ward),
            bool(a.offload_unusable[i]),
            bool(a.forecast_unusable[i]),
        )

    def pressure_of(self, i: int) -> Pressure:
        row = self.rows.get(i)
        if row is None:
            row = self.rows[i] = _pressure_row(self.arrays, self.scores, self.weights, self.p, i)
        return row

    def components(self, i: int) -> dict[str, dict[str, float]]:
        """The figures behind hospital i's pressure, as stored with its recommendation."""
        return {
            c.name: {"value": round(c.value, 4), "score": round(c.score, 4), "weight": c.weight}
            for c in self.pressure_of(i).components
        }

    def class_mask(self, j: int) -> int:
        """The ambulance classes hospital j may take, as bits (``rules.can_take``), computed
        once per distinct set of capabilities."""
        m = self.masks[j]
        if m < 0:
            caps = self.states[j].capabilities
            m = self.mask_cache.get(caps, -1)
            if m < 0:
                m = sum(bit for c, bit in _CLASS_BIT.items() if rules.can_take(caps, c, self.cfg))
                self.mask_cache[caps] = m
            self.masks[j] = m
        return m


_CLASS_BIT = {c: 1 << k for k, c in enumerate(AmbulanceClass)}
_CLASS_VALUE = {c: c.value for c in AmbulanceClass}


def evaluate_diversion(
    states: Sequence[HospitalState],
    travel: TravelTimes | Neighbourhood,
    priors: Mapping[str, PriorStatus],
    now: datetime,
    cfg: DiversionConfig,
    *,
    prior_mode: Mode = Mode.NORMAL,
    closed: Collection[str] = (),
) -> RegionDiversion:
    """Recommend a status (and routes) for every hospital of a region. ``closed`` names
    hospitals an operator's decision keeps on diversion: they receive nobody's ambulances,
    whatever their figures say."""
    near = neighbourhood(travel, cfg)
    a = region_arrays(states, now, cfg)
    scores, weights, p_all = pressure_scores(a.pressure_figures, cfg)
    p = np.where(a.fresh, p_all, np.nan)
    with np.errstate(invalid="ignore"):
        closing = p >= cfg.close_enter
        wants = p >= cfg.advisory_enter
    fresh_count = int(a.fresh.sum())
    would_close = int(closing.sum())

    # Only hospitals whose pressure calls for a status, or that had one, need the status
    # rules; every other hospital is open and stays open.
    todo = set(np.flatnonzero(wants).tolist())
    for code, before in priors.items():
        i = a.index.get(code)
        if i is not None and before.status is not Status.OPEN:
            todo.add(i)
    statuses: dict[str, Next] = {}
    order = sorted(todo)
    rows_p = p[order].tolist()
    rows_fresh = a.fresh[order].tolist()
    for i, score, is_fresh in zip(order, rows_p, rows_fresh, strict=True):
        code = a.codes[i]
        statuses[code] = next_status(priors.get(code), score, is_fresh, now, cfg)

    candidate = a.fresh & (a.ed_free >= cfg.destination_min_ed_free)
    with np.errstate(invalid="ignore"):
        candidate &= p < cfg.destination_max_pressure
    # Diverting hospitals and those an operator keeps on diversion receive nobody.
    not_receiving = [a.index[c] for c, n in statuses.items() if n.status is not Status.OPEN]
    not_receiving += [i for c in closed if (i := a.index.get(c)) is not None]
    candidate[not_receiving] = False
    wanting = [c for c, n in statuses.items() if n.status is not Status.OPEN]
    load_balance = rules.should_load_balance(
        fresh_count=fresh_count,
        would_close=would_close,
        diverting_without_destination=bool(wanting) and not candidate.any(),
        currently_load_balancing=prior_mode is Mode.LOAD_BALANCING,
        cfg=cfg,
    )
    common: dict[str, Any] = {
        "arrays": a,
        "pressure": p,
        "priors": priors,
        "states": states,
        "cfg": cfg,
        "fresh_count": fresh_count,
        "would_close": would_close,
        "at": now,
    }
    ctx = _Ctx(
        states,
        a.index,
        candidate.tolist(),
        np.nan_to_num(p, nan=-1.0).tolist(),
        a.ed_free.tolist(),
        a,
        scores,
        weights,
        p,
        [-1] * len(states),
        {},
        cfg,
        {},
    )
    if load_balance:
        return _load_balance(ctx, near, priors, statuses, now, cfg, common)

    rows = near.indexed(a.codes)
    # Most pressed first: they get the nearest free places. Stale (held) ones last.
    wanting.sort(key=lambda c: (-ctx.pressure[a.index[c]], c))
    recommendations: list[Recommendation] = []
    for code in wanting:
        i = a.index[code]
        s = states[i]
        n = statuses[code]
        prior = priors.get(code)
        prior_dest = prior.destinations if prior is not None else {}
        candidates = ctx.candidate
        neighbours = [(m, j) for m, j in rows[i] if candidates[j]]
        classes = (
            (AmbulanceClass.GENERAL,)
            if n.status is Status.ADVISORY
            else rules.accepted_classes(s.capabilities, cfg)
        )
        routes: list[Route] = []
        kept: list[Kept] = []
        for cls in classes:
            route = _choose(cls, neighbours, ctx, prior_dest.get(cls), cfg)
            if route is None:
                kept.append(Kept(ambulance_class=cls, reason=_no_destination(cls, cfg)))
                if cls is AmbulanceClass.GENERAL:
                    break
                continue
            routes.append(route)
            if cls is AmbulanceClass.GENERAL:
                load = (
                    s.ambulance_arrivals_per_hour
                    if s.ambulance_arrivals_per_hour is not None
                    else cfg.default_ambulances_per_hour
                )
                ctx.remaining[ctx.where[route.destination]] -= load * cfg.diversion_horizon_hours
        if not routes or routes[0].ambulance_class is not AmbulanceClass.GENERAL:
            # Safety beats stability: no one can take H's ambulances, so H stays open, even
            # inside its minimum duration.
            statuses[code] = Next(Status.OPEN, now, None, kept[0].reason if kept else "no route")
            continue
        recommendations.append(_recommendation(s, n, i, routes, kept, ctx, now, cfg))

    changes = _changes(statuses, priors, now)
    explanation = (
        f"{len(recommendations)} of {len(states)} hospitals diverting; "
        f"{would_close} of {fresh_count} fresh hospitals at closing pressure"
    )
    return RegionDiversion(
        mode=Mode.NORMAL,
        recommendations=tuple(recommendations),
        changes=changes,
        explanation=explanation,
        statuses=_settle(statuses, priors, now),
        **common,
    )


class Neighbourhood:
    """Travel times as each hospital's neighbours, nearest first, within the longest travel
    limit; sorted once per hospital when first asked. Travel times change rarely, so a
    worker may keep one per region across evaluations (``neighbourhood``), and with it the
    same lists as row numbers of the region's arrays (``indexed``)."""

    __slots__ = ("_indexed", "_limit", "_rows", "_sorted")

    def __init__(self, travel: TravelTimes, limit: float) -> None:
        self._rows = travel
        self._limit = limit
        self._sorted: dict[str, list[tuple[float, str]]] = {}
        self._indexed: tuple[tuple[str, ...], list[list[tuple[float, int]]]] | None = None

    def of(self, code: str) -> list[tuple[float, str]]:
        out = self._sorted.get(code)
        if out is None:
            limit = self._limit
            row = self._rows.get(code, {})
            out = sorted((m, g) for g, m in row.items() if m <= limit)
            self._sorted[code] = out
        return out

    def indexed(self, codes: tuple[str, ...]) -> list[list[tuple[float, int]]]:
        """Row i: hospital ``codes[i]``'s neighbours as (minutes, row), in ``of`` order,
        leaving out hospitals not in ``codes``. Kept for the last order of codes asked (the
        census lists a region's hospitals in the same order every minute)."""
        cached = self._indexed
        if cached is not None and (cached[0] is codes or cached[0] == codes):
            return cached[1]
        where = {c: i for i, c in enumerate(codes)}
        rows = [
            [(m, j) for m, g in self.of(code) if (j := where.get(g)) is not None] for code in codes
        ]
        self._indexed = (codes, rows)
        return rows

    def prepare(self, codes: tuple[str, ...] | None = None) -> Neighbourhood:
        """Sort every hospital's neighbours now (to keep across evaluations), and index them
        by the region's order of ``codes`` if given."""
        for code in self._rows:
            self.of(code)
        if codes is not None:
            self.indexed(codes)
        return self


def neighbourhood(travel: TravelTimes | Neighbourhood, cfg: DiversionConfig) -> Neighbourhood:
    if isinstance(travel, Neighbourhood):
        return travel
    return Neighbourhood(travel, max(cfg.max_travel_minutes, cfg.max_travel_minutes_time_critical))


def _choose(
    cls: AmbulanceClass,
    neighbours: list[tuple[float, int]],
    ctx: _Ctx,
    prior_destination: str | None,
    cfg: DiversionConfig,
) -> Route | None:
    """The nearest hospital that may take H's ambulances of class ``cls``, and alternates.
    ``neighbours`` are H's candidate neighbours (fresh, open, not saturated, with free places
    before this evaluation's diversions), nearest first, as rows of the region's arrays."""
    eligible: list[tuple[float, int]] = []
    enough = cfg.max_alternates + 1
    sticky = cfg.sticky_destination_minutes
    limit = rules.travel_limit(cls, cfg)
    bit = _CLASS_BIT[cls]
    min_free = cfg.destination_min_ed_free
    remaining = ctx.remaining
    prior = ctx.where.get(prior_destination, -1) if prior_destination is not None else -1
    for minutes, j in neighbours:
        if minutes > limit:
            break  # neighbours are sorted by travel time: the rest are farther still
        if len(eligible) >= enough and (prior < 0 or minutes > eligible[0][0] + sticky):
            break  # the nearest and its alternates are found; the sticky window is passed
        # Cheap refusals first (the same rules, precomputed); the rule function has the
        # last word on whatever passes them.
        if not ctx.class_mask(j) & bit or remaining[j] < min_free:
            continue
        refusal = rules.destination_refusal(
            fresh=True,  # candidates are fresh and open by construction
            diverting=False,
            pressure=ctx.pressure[j],
            free=remaining[j],
            caps=ctx.states[j].capabilities,
            cls=cls,
            travel_minutes=minutes,
            cfg=cfg,
        )
        if refusal is None:
            eligible.append((minutes, j))
    if not eligible:
        return None
    best_minutes, best = eligible[0]
    if prior >= 0:
        for minutes, j in eligible:
            if j == prior and minutes <= best_minutes + sticky:
                best_minutes, best = minutes, j
                break
    codes = ctx.arrays.codes
    alternates = tuple(codes[j] for _, j in eligible if j != best)[: cfg.max_alternates]
    return Route(
        ambulance_class=cls,
        destination=codes[best],
        travel_minutes=best_minutes,
        alternates=alternates,
    )


def _no_destination(cls: AmbulanceClass, cfg: DiversionConfig) -> str:
    limit = rules.travel_limit(cls, cfg)
    label = CLASS_LABEL[cls]
    return f"no {label}-capable hospital open with free places within {limit:g} min"


def _changes(
    statuses: Mapping[str, Next], priors: Mapping[str, PriorStatus], now: datetime
) -> tuple[StatusChange, ...]:
    changes: list[StatusChange] = []
    for code, n in statuses.items():
        prior = priors.get(code)
        before = prior.status if prior is not None else Status.OPEN
        if n.status is before:
            continue
        reason = n.reason
        if (
            before is not Status.OPEN
            and n.status is Status.OPEN
            and prior is not None
            and rules.expired(prior.expires_at, now)
        ):
            reason = "expired (not renewed)"
        changes.append(
            StatusChange(
                hospital=code, from_status=before, to_status=n.status, at=now, reason=reason
            )
        )
    return tuple(changes)


def _settle(
    statuses: Mapping[str, Next], priors: Mapping[str, PriorStatus], now: datetime
) -> dict[str, Next]:
    """A changed status starts now; an open one carries no expiry."""
    out: dict[str, Next] = {}
    for code, n in statuses.items():
        prior = priors.get(code)
        before = prior.status if prior is not None else Status.OPEN
        since = now if n.status is not before else n.since
        out[code] = Next(
            n.status, since, n.expires_at if n.status is not Status.OPEN else None, n.reason
        )
    return out


# --- load-balancing -----------------------------------------------------------------------------


def _load_balance(
    ctx: _Ctx,
    near: Neighbourhood,
    priors: Mapping[str, PriorStatus],
    statuses: Mapping[str, Next],
    now: datetime,
    cfg: DiversionConfig,
    common: dict[str, Any],
) -> RegionDiversion:
    """Everyone open; each fresh hospital's ambulances shared between it and its nearest
    fresh neighbours by headroom (free ED places, plus one so a full ED keeps a share: when
    the whole region is full, the load is shared, not refused)."""
    final = {
        code: Next(Status.OPEN, n.since if n.status is Status.OPEN else now, None, "load-balancing")
        for code, n in statuses.items()
    }
    a, states = ctx.arrays, ctx.states
    # The counts belong to the region (its state row keeps them, the diversion page shows
    # them): quoted in every hospital's advice, one hospital crossing the closing pressure
    # would rewrite thousands of recommendations whose own numbers did not move.
    region_note = (
        f"Region saturated: {common['would_close']} of {common['fresh_count']} fresh hospitals "
        "at closing pressure; load-balancing, no hospital closes"
    )
    advice_note = "Region saturated: load-balancing, no hospital closes"
    free = np.maximum(a.ed_free, 0.0).tolist()
    # A destination's free places as its words say them (``_lb_part``) and its key holds them.
    free_places = [max(s.ed_free, 0) for s in states]
    fresh = a.fresh.tolist()
    rows = near.indexed(a.codes)
    recommendations: list[Recommendation] = []
    expires = now + timedelta(minutes=cfg.ttl_minutes)
    codes, general = a.codes, AmbulanceClass.GENERAL
    farthest, largest = cfg.max_travel_minutes, cfg.max_alternates + 1
    for i in np.flatnonzero(a.fresh).tolist():
        code = a.codes[i]
        group: list[tuple[float, int]] = [(0.0, i)]
        for minutes, j in rows[i]:
            if minutes > farthest:
                break
            if fresh[j]:
                group.append((minutes, j))
            if len(group) > largest:
                break
        weights = [free[j] + 1.0 for _, j in group]
        total = sum(weights)
        # Positional: some 30,000 routes a minute (keywords cost a third more each). Each
        # route's part of the inputs key (``_lb_inputs``) is made with it.
        shares = [w / total for w in weights]
        routes = tuple(
            Route(general, codes[j], minutes, share, (), _LbPart(states[j], minutes, share))
            for (minutes, j), share in zip(group, shares, strict=True)
        )
        parts = tuple(
            (codes[j], minutes, share, free_places[j])
            for (minutes, j), share in zip(group, shares, strict=True)
        )
        score = float(ctx.p[i])
        recommendations.append(
            Recommendation(
                hospital=code,
                mode=Mode.LOAD_BALANCING,
                status=Status.OPEN,
                score=None if math.isnan(score) else score,
                routes=routes,
                kept=(),
                no_forecast=not a.forecast_usable[i],
                expires_at=expires,
                text=_Once(partial(_lb_text, advice_note, i, routes, ctx, cfg)),
                numbers=_Once(partial(_numbers, i, True, routes, ctx)),
                inputs=partial(_lb_inputs, advice_note, i, parts, ctx),
            )
        )
    return RegionDiversion(
        mode=Mode.LOAD_BALANCING,
        recommendations=tuple(recommendations),
        changes=_changes(final, priors, now),
        explanation=region_note,
        statuses=_settle(final, priors, now),
        **common,
    )


def _lb_text(
    advice_note: str, i: int, routes: tuple[Route, ...], ctx: _Ctx, cfg: DiversionConfig
) -> str:
    s = ctx.states[i]
    return (
        f"{advice_note}. Share general ambulances for {s.code} by free places: "
        + "; ".join(r.explanation for r in routes)
        + f". {s.code}: {describe_hospital(s, ctx.pressure_of(i), cfg)}."
    )


def _lb_inputs(
    advice_note: str, i: int, routes: tuple[tuple[Any, ...], ...], ctx: _Ctx
) -> tuple[Any, ...]:
    """What ``_lb_text``, ``_numbers`` and the routes' texts read (``inputs_key``). ``routes``:
    per route its destination, travel minutes, share and, of the destination, only its free
    places (a full ED's are 0, however far over it is), made with the routes."""
    return (advice_note, ctx.hospital_key(i), routes)


def _lb_part(g: HospitalState, minutes: float, share: float) -> str:
    where = "here" if minutes == 0 else f"{round(minutes)} minutes away"
    return f"{explain.percent(share)} to {g.code} ({max(g.ed_free, 0)} ED beds free, {where})"


class _LbPart(_Once):
    """A load-balancing route's text (``_lb_part``), built once when read: one object per
    route instead of a deferred call and its builder (some 30,000 routes a minute)."""

    __slots__ = ("_g", "_minutes", "_share")

    def __init__(self, g: HospitalState, minutes: float, share: float) -> None:
        self._g, self._minutes, self._share = g, minutes, share
        self._value = _Once

    def __call__(self) -> Any:
        if self._value is _Once:
            self._value = _lb_part(self._g, self._minutes, self._share)
        return self._value


# --- explanations --------------------------------------------------------------------------------


def describe_hospital(state: HospitalState, p: Pressure, cfg: DiversionConfig) -> str:
    """'ED 97% occupied, 6 boarding, longest 5 h 10 min, forecast full for the next 3 h
    (p50)': the figures that pushed the score up, as numbers."""
    scores = {c.name: c.score for c in p.components}
    score = scores.get  # a figure's score is checked first: most are 0 and need no words
    parts = [f"ED {explain.percent(state.ed_occupied / state.ed_capacity)} occupied"]
    if score("ed_waiting", 0) > 0 and state.ed_waiting:
        parts.append(f"{state.ed_waiting} waiting")
    if score("ed_boarding", 0) > 0 and state.ed_boarding:
        parts.append(f"{state.ed_boarding} boarding")
    if score("longest_boarding_minutes", 0) and state.longest_boarding_minutes is not None:
        parts.append(f"longest {explain.duration(state.longest_boarding_minutes)}")
    if score("offload_p90_minutes", 0) > 0 and state.offload_p90_minutes is not None:
        parts.append(f"ambulance offload p90 {explain.duration(state.offload_p90_minutes)}")
    if score("icu_occupancy", 0) > 0 and (icu := state.icu_occupancy) is not None:
        parts.append(f"ICU {explain.percent(icu)} occupied ({state.icu_free} free)")
    if score("ward_occupancy", 0) > 0 and (ward := state.ward_occupancy) is not None:
        parts.append(f"ward beds {explain.percent(ward)} occupied ({state.ward_free} free)")
    if p.has_forecast and state.forecast is not None:
        window = _window(state, cfg)
        # "full for the next 3 h" counts from the first point, even one before the window
        full = explain.describe_full(state.forecast.ed, 0.0, cfg.forecast_max_hours, "")
        if not full:
            least = min(window, key=lambda q: (q.p50, q.horizon_hours))
            full = (
                f"forecast {explain.count(max(least.p50, 0.0))} free at worst in the next "
                f"{explain.hours(cfg.forecast_max_hours)} (p50)"
            )
        parts.append(full)
    else:
        parts.append("no forecast")
    parts.extend(p.unused)
    if p.score is not None:
        parts.append(f"pressure {round(p.score * 100)}/100")
    return ", ".join(parts)


def describe_destination(g: HospitalState, minutes: float, cfg: DiversionConfig) -> str:
    """'G: 5 ED beds free, forecast 3 free in 2 h (80% interval 1–6), 12 minutes away'."""
    parts = [f"{g.code}: {explain.plural(max(g.ed_free, 0), 'ED bed')} free"]
    forecast = explain.describe_free_at(g.forecast, cfg.destination_forecast_hours)
    parts.append(forecast or "no forecast")
    parts.append(f"{round(minutes)} minutes away")
    return ", ".join(parts)


def _recommendation(
    s: HospitalState,
    n: Next,
    i: int,
    routes: list[Route],
    kept: list[Kept],
    ctx: _Ctx,
    now: datetime,
    cfg: DiversionConfig,
) -> Recommendation:
    fresh = bool(ctx.arrays.fresh[i])
    final = tuple(
        Route(
            ambulance_class=r.ambulance_class,
            destination=r.destination,
            travel_minutes=r.travel_minutes,
            alternates=r.alternates,
            text=_Once(
                partial(
                    describe_destination,
                    ctx.states[ctx.where[r.destination]],
                    r.travel_minutes,
                    cfg,
                )
            ),
        )
        for r in routes
    )
    score = float(ctx.p[i]) if fresh else math.nan
    return Recommendation(
        hospital=s.code,
        mode=Mode.NORMAL,
        status=n.status,
        score=None if math.isnan(score) else score,
        routes=final,
        kept=tuple(kept),
        no_forecast=not (fresh and ctx.arrays.forecast_usable[i]),
        expires_at=n.expires_at,
        text=_Once(partial(_text, s, n, i, fresh, final, tuple(kept), ctx, now, cfg)),
        numbers=_Once(partial(_numbers, i, fresh, final, ctx)),
        inputs=partial(_inputs, n.status, i, final, tuple(kept), ctx) if fresh else _no_inputs,
    )


def _inputs(
    status: Status, i: int, routes: tuple[Route, ...], kept: tuple[Kept, ...], ctx: _Ctx
) -> tuple[Any, ...]:
    """What a fresh hospital's ``_text``, ``_numbers`` and routes' texts read
    (``inputs_key``); a stale one's words quote ages, so it has none."""
    states, where = ctx.states, ctx.where
    return (
        status,
        ctx.hospital_key(i),
        tuple(
            (
                r.ambulance_class,
                r.destination,
                r.travel_minutes,
                r.share,
                r.alternates,
                g.ed_capacity,
                g.ed_occupied,
                None if g.forecast is None else g.forecast.ed,
            )
            for r in routes
            for g in (states[where[r.destination]],)
        ),
        kept,
    )


def _text(
    s: HospitalState,
    n: Next,
    i: int,
    fresh: bool,
    routes: tuple[Route, ...],
    kept: tuple[Kept, ...],
    ctx: _Ctx,
    now: datetime,
    cfg: DiversionConfig,
) -> str:
    verb = "Close ED to" if n.status is Status.CLOSED else "Advisory: divert"
    actions = "; ".join(
        f"{verb} {CLASS_LABEL[r.ambulance_class]} ambulances at {s.code}; send them to "
        f"{r.destination}"
        for r in routes
    )
    if fresh:
        own = f"{s.code}: {describe_hospital(s, ctx.pressure_of(i), cfg)}"
    else:
        held_until = f" until {n.expires_at:%H:%M}" if n.expires_at is not None else ""
        reasons = "; ".join(rules.stale_reasons(s, now, cfg))
        own = f"{s.code}: {reasons}: status held{held_until}, not renewed"
    seen: set[str] = set()
    dest_texts = []
    for r in routes:
        if r.destination not in seen:
            seen.add(r.destination)
            dest_texts.append(r.explanation)
    text = f"{actions}. {own}. " + ". ".join(dest_texts) + "."
    for k in kept:
        text += f" {s.code} keeps taking {CLASS_LABEL[k.ambulance_class]}: {k.reason}."
    return text


def _numbers(i: int, fresh: bool, routes: tuple[Route, ...], ctx: _Ctx) -> dict[str, Any]:
    if fresh:
        return _figures(
            ctx.states[i], ctx.pressure_of(i), ctx.components(i), routes, ctx.states, ctx.where
        )
    return _figures(ctx.states[i], Pressure(None, (), False), {}, routes, ctx.states, ctx.where)


def _figures(
    s: HospitalState,
    p: Pressure,
    components: dict[str, dict[str, float]],
    routes: Sequence[Route],
    states: Sequence[HospitalState],
    index: Mapping[str, int],
) -> dict[str, Any]:
    """The numbers behind a recommendation, JSON-ready (kept with it for audit and learning)."""
    return {
        "pressure": None if p.score is None else round(p.score, 4),
        "components": components,
        "no_forecast": not p.has_forecast,
        "ed_capacity": s.ed_capacity,
        "ed_occupied": s.ed_occupied,
        "ed_boarding": s.ed_boarding,
        "longest_boarding_minutes": s.longest_boarding_minutes,
        "offload_p90_minutes": s.offload_p90_minutes,
        "as_of": s.as_of.isoformat(),
        "destinations": [
            {
                "class": _CLASS_VALUE[r.ambulance_class],
                "code": r.destination,
                "travel_minutes": r.travel_minutes,
                "share": 1.0 if r.share == 1.0 else round(r.share, 4),
                # The free places the route was chosen or its share weighed by (a full
                # ED has none; how far over it is shows in its own figures).
                "ed_free": max(states[index[r.destination]].ed_free, 0),
                "time_critical": r.ambulance_class in TIME_CRITICAL,
            }
            for r in routes
        ],
    }
