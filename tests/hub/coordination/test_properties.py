"""Property tests for the region rules, over random regions, priors and noisy figures:

- never send patients to a hospital whose feed is stale, or that is saturated, diverting,
  incapable or too far;
- never let every hospital divert: each diversion has an open destination; a load-balancing
  region closes nobody;
- every diversion expires unless renewed;
- no flapping: statuses and surge levels under noisy input.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from itertools import pairwise

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from hub.coordination import rules
from hub.coordination.diversion import (
    Mode,
    PriorStatus,
    RegionDiversion,
    Status,
    evaluate_diversion,
    pressure,
)
from hub.coordination.state import (
    AmbulanceClass,
    Capabilities,
    Forecast,
    ForecastPoint,
    HospitalState,
    StrokeLevel,
    TravelTimes,
)
from hub.coordination.surge import PriorLevel, evaluate_surge, next_level

from .builders import CONFIG, DIVERSION, NOW, at_pressure

SURGE = CONFIG.surge

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Minute-by-minute runs evaluate a region per minute: fewer, but long enough, sequences.
SEQUENCE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

capabilities = st.builds(
    Capabilities,
    trauma_level=st.one_of(st.none(), st.integers(1, 5)),
    stroke=st.sampled_from(list(StrokeLevel)),
    stemi_pci=st.booleans(),
    paediatrics=st.booleans(),
    burns=st.booleans(),
    psychiatry=st.booleans(),
    maternity=st.booleans(),
)


@st.composite
def hospitals(draw: st.DrawFn, code: str) -> HospitalState:
    cap = draw(st.integers(0, 40))
    forecast = None
    if draw(st.booleans()):
        base = draw(st.integers(-10, 10))
        forecast = Forecast(
            as_of=NOW - timedelta(minutes=draw(st.sampled_from([5, 60, 120]))),
            ed=tuple(
                ForecastPoint(horizon_hours=h, p50=base + draw(st.integers(-3, 3)))
                for h in range(1, 7)
            ),
        )
    return HospitalState(
        code=code,
        capabilities=draw(capabilities),
        as_of=NOW - timedelta(minutes=draw(st.sampled_from([0, 3, 14, 16, 45]))),
        feed_stale=draw(st.booleans().map(lambda b: b and draw(st.booleans()))),
        ed_capacity=cap,
        ed_occupied=draw(st.integers(0, 50)),
        ed_waiting=draw(st.one_of(st.none(), st.integers(0, 20))),
        ed_boarding=draw(st.one_of(st.none(), st.integers(0, 15))),
        longest_boarding_minutes=draw(st.one_of(st.none(), st.floats(0, 900))),
        offload_p90_minutes=draw(st.one_of(st.none(), st.floats(0, 150))),
        offload_as_of=NOW - timedelta(minutes=draw(st.sampled_from([0, 20, 40]))),
        ambulance_arrivals_per_hour=draw(st.one_of(st.none(), st.floats(0, 8))),
        icu_capacity=10,
        icu_occupied=draw(st.one_of(st.none(), st.integers(0, 12))),
        ward_capacity=100,
        ward_occupied=draw(st.one_of(st.none(), st.integers(50, 110))),
        forecast=forecast,
    )


@st.composite
def regions(
    draw: st.DrawFn,
) -> tuple[list[HospitalState], TravelTimes, dict[str, PriorStatus], Mode]:
    n = draw(st.integers(1, 9))
    codes = [f"H{i}" for i in range(n)]
    states = [draw(hospitals(c)) for c in codes]
    travel: dict[str, dict[str, float]] = {}
    for a in codes:
        travel[a] = {}
        for b in codes:
            if a != b and draw(st.booleans()):
                travel[a][b] = float(draw(st.integers(1, 70)))
    priors: dict[str, PriorStatus] = {}
    for c in codes:
        if draw(st.booleans()):
            dest = draw(st.sampled_from(codes))
            priors[c] = PriorStatus(
                status=draw(st.sampled_from(list(Status))),
                since=NOW - timedelta(minutes=draw(st.integers(0, 120))),
                expires_at=NOW + timedelta(minutes=draw(st.integers(-30, 60))),
                destinations={AmbulanceClass.GENERAL: dest},
            )
    mode = draw(st.sampled_from(list(Mode)))
    return states, travel, priors, mode


def _evaluate(
    region: tuple[list[HospitalState], TravelTimes, dict[str, PriorStatus], Mode],
) -> tuple[RegionDiversion, dict[str, HospitalState]]:
    states, travel, priors, mode = region
    result = evaluate_diversion(states, travel, priors, NOW, DIVERSION, prior_mode=mode)
    return result, {s.code: s for s in states}


@PROPERTY
@given(regions())
def test_never_to_a_stale_saturated_diverting_incapable_or_distant_hospital(region) -> None:
    result, by_code = _evaluate(region)
    travel = region[1]
    if result.mode is Mode.LOAD_BALANCING:
        for rec in result.recommendations:
            for route in rec.routes:
                assert rules.is_fresh(by_code[route.destination], NOW, DIVERSION)
        return
    for rec in result.recommendations:
        for route in rec.routes:
            g = by_code[route.destination]
            assert route.destination != rec.hospital
            assert rules.is_fresh(g, NOW, DIVERSION), "sent to a stale hospital"
            assert result.status(g.code) is Status.OPEN, "sent to a diverting hospital"
            score = pressure(g, NOW, DIVERSION).score
            assert score is not None
            assert score < DIVERSION.destination_max_pressure, "sent to a saturated hospital"
            assert rules.can_take(g.capabilities, route.ambulance_class, DIVERSION)
            assert travel[rec.hospital][g.code] == route.travel_minutes
            assert route.travel_minutes <= rules.travel_limit(route.ambulance_class, DIVERSION)


@PROPERTY
@given(regions())
def test_never_every_hospital_diverts(region) -> None:
    result, by_code = _evaluate(region)
    diverting = set(result.diverting)
    assert len(diverting) < len(by_code)
    if result.mode is Mode.LOAD_BALANCING:
        assert diverting == set()
        return
    recs = {r.hospital: r for r in result.recommendations}
    for code in diverting:
        # Each diversion sends general ambulances to an open hospital.
        route = recs[code].routes[0]
        assert route.ambulance_class is AmbulanceClass.GENERAL
        assert route.destination not in diverting


@PROPERTY
@given(regions())
def test_every_diversion_expires_unless_renewed(region) -> None:
    result, by_code = _evaluate(region)
    priors = region[2]
    ttl = timedelta(minutes=DIVERSION.ttl_minutes)
    for code in result.diverting:
        a = result.assessment(code)
        assert a.expires_at is not None
        assert NOW < a.expires_at <= NOW + ttl
        if not rules.is_fresh(by_code[code], NOW, DIVERSION):
            # A stale hospital's diversion is never extended.
            prior = priors[code]
            assert a.expires_at == prior.expires_at
    for code, prior in priors.items():
        lapsed = prior.expires_at is not None and prior.expires_at <= NOW
        if lapsed and not rules.is_fresh(by_code[code], NOW, DIVERSION):
            assert result.status(code) is Status.OPEN


@PROPERTY
@given(regions())
def test_load_balancing_shares_each_hospitals_ambulances_in_full(region) -> None:
    result, _ = _evaluate(region)
    for rec in result.recommendations:
        if rec.mode is Mode.LOAD_BALANCING:
            assert abs(sum(r.share for r in rec.routes) - 1.0) < 1e-9
            assert all(r.share > 0 for r in rec.routes)


# --- no flapping ------------------------------------------------------------------------------


def _run_minutes(
    pressures: list[float], minutes_apart: float = 1.0
) -> list[tuple[float, Status, str]]:
    """H's status minute by minute at the given pressures, with a calm hospital to divert to
    (and three calm bystanders, so the region never load-balances)."""
    calm = [at_pressure(f"G{i}", 0.0) for i in range(4)]
    travel = {"H": {"G0": 10.0}}
    prior: dict[str, PriorStatus] = {}
    out = []
    for k, p in enumerate(pressures):
        now = NOW + timedelta(minutes=k * minutes_apart)
        h = at_pressure("H", p, as_of=now)
        g = [dataclasses.replace(s, as_of=now) for s in calm]
        r = evaluate_diversion([h, *g], travel, prior, now, DIVERSION)
        a = r.assessment("H")
        reason = next((c.reason for c in r.changes if c.hospital == "H"), "")
        out.append((k * minutes_apart, a.status, reason))
        prior = {
            "H": PriorStatus(
                status=a.status,
                since=a.since,
                expires_at=a.expires_at,
                destinations={
                    route.ambulance_class: route.destination
                    for rec in r.recommendations
                    for route in rec.routes
                },
            )
        }
    return out


band = min(
    DIVERSION.advisory_enter - DIVERSION.advisory_exit, DIVERSION.close_enter - DIVERSION.close_exit
)


@SEQUENCE
@given(
    base=st.floats(0.0, 1.0),
    noise=st.lists(st.floats(-0.45, 0.45), min_size=40, max_size=90),
)
def test_small_noise_never_reverses_a_status(base: float, noise: list[float]) -> None:
    # Noise under half the hysteresis band (0.10 / 2; 0.045 with the occupancy's rounding):
    # once a status is entered, the figures cannot fall back out of it.
    amplitude = band / 2 * 0.9
    seq = _run_minutes([min(1.0, max(0.0, base + n * amplitude / 0.45)) for n in noise])
    ranks = [s.rank for _, s, _ in seq]
    assert ranks == sorted(ranks), "status went back under small noise"


@SEQUENCE
@given(st.lists(st.floats(0.0, 1.0), min_size=40, max_size=90))
def test_any_noise_changes_status_at_most_once_per_minimum_duration(pressures: list[float]) -> None:
    seq = _run_minutes(pressures)
    change_times = [t for (_, before, _), (t, s, _) in pairwise(seq) if s is not before]
    gaps = [b - a for a, b in pairwise(change_times)]
    assert all(g >= DIVERSION.min_status_minutes for g in gaps), change_times


@PROPERTY
@given(
    base=st.floats(0.0, 100.0),
    noise=st.lists(st.floats(-1, 1), min_size=30, max_size=120),
)
def test_surge_level_never_reverses_under_noise_within_the_margin(
    base: float, noise: list[float]
) -> None:
    # Scores within half the de-escalation margin of one value: a level, once reached,
    # needs a score more than the margin under its band to leave, which never comes.
    half = SURGE.deescalate_margin / 2 * 0.99
    prior: PriorLevel | None = None
    levels = []
    for k, n in enumerate(noise):
        now = NOW + timedelta(minutes=k)
        level, since, _ = next_level(prior, min(100.0, max(0.0, base + n * half)), now, SURGE)
        assert level is not None
        levels.append(level)
        prior = PriorLevel(level=level, since=since)
    assert levels == sorted(levels)


@PROPERTY
@given(st.lists(st.floats(0.0, 100.0), min_size=30, max_size=150))
def test_surge_de_escalates_only_after_the_minimum_hold(scores: list[float]) -> None:
    prior: PriorLevel | None = None
    last_change = None
    for k, value in enumerate(scores):
        now = NOW + timedelta(minutes=k)
        level, since, _ = next_level(prior, value, now, SURGE)
        assert level is not None
        if prior is not None and level < prior.level and last_change is not None:
            assert now - last_change >= timedelta(minutes=SURGE.min_level_minutes)
        if prior is None or level != prior.level:
            last_change = now
        prior = PriorLevel(level=level, since=since)


@PROPERTY
@given(regions())
def test_surge_levels_are_1_to_4_and_stale_hospitals_keep_theirs(region) -> None:
    states = region[0]
    priors = {s.code: PriorLevel(level=2, since=NOW - timedelta(hours=3)) for s in states}
    r = evaluate_surge(states, priors, NOW, SURGE, DIVERSION)
    for s in states:
        level = r.hospitals.get(s.code)
        assert level in {1, 2, 3, 4}
        if not rules.is_fresh(s, NOW, DIVERSION):
            assert level == 2
