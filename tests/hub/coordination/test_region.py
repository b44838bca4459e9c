"""The whole-region evaluation: the array formula against an independent one, and chained
minutes with the priors carried forward."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import pytest

from hub.coordination.diversion import Status, pressure
from hub.coordination.region import NO_PRIORS, carry_forward, evaluate_region
from hub.coordination.state import HospitalState

from .builders import CONFIG, DIVERSION, NOW, at_pressure, ed_forecast, hospital, minutes_ago


def independent_pressure(s: HospitalState) -> float | None:
    """The pressure written out plainly, one figure at a time (not the module's code)."""
    cfg = DIVERSION
    figures: dict[str, float] = {}
    if s.ed_capacity <= 0:
        return None
    figures["ed_occupancy"] = s.ed_occupied / s.ed_capacity
    if s.ed_waiting is not None:
        figures["ed_waiting"] = s.ed_waiting / s.ed_capacity
    if s.ed_boarding is not None:
        figures["ed_boarding"] = s.ed_boarding / s.ed_capacity
    if s.longest_boarding_minutes is not None:
        figures["longest_boarding_minutes"] = s.longest_boarding_minutes
    if s.offload_p90_minutes is not None:
        age = (NOW - (s.offload_as_of or s.as_of)).total_seconds() / 60
        if age <= cfg.offload_stale_after_minutes:
            figures["offload_p90_minutes"] = s.offload_p90_minutes
    if s.icu_capacity and s.icu_occupied is not None:
        figures["icu_occupancy"] = s.icu_occupied / s.icu_capacity
    if s.ward_capacity and s.ward_occupied is not None:
        figures["ward_occupancy"] = s.ward_occupied / s.ward_capacity
    f = s.forecast
    if f is not None and (NOW - f.as_of).total_seconds() / 60 <= cfg.forecast_stale_after_minutes:
        window = [p.p50 for p in f.ed if 2 <= p.horizon_hours <= 6]
        if window:
            figures["forecast_ed_free"] = min(window) / s.ed_capacity
    num = den = 0.0
    for name, value in figures.items():
        band = cfg.bands[name]
        x = min(1.0, max(0.0, (value - band.lo) / (band.hi - band.lo)))
        num += cfg.weights[name] * x
        den += cfg.weights[name]
    return num / den


STATES = [
    hospital("A"),
    hospital("B", ed_occupied=19, ed_waiting=4, ed_boarding=3, longest_boarding_minutes=200),
    hospital("C", ed_occupied=22, offload_p90_minutes=70, offload_as_of=minutes_ago(5)),
    hospital("D", offload_p90_minutes=70, offload_as_of=minutes_ago(45)),  # too old: unused
    hospital("E", icu_capacity=12, icu_occupied=11, ward_capacity=80, ward_occupied=79),
    hospital("F", forecast=ed_forecast((1, 5, 2, 8), (3, 1, -1, 3), (6, -2, -4, 0))),
    hospital("G", forecast=ed_forecast((3, -4, None, None), age_minutes=100)),  # old
    hospital("H", ed_capacity=0, ed_occupied=0),
]


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.code)
def test_the_array_formula_matches_an_independent_one(state: HospitalState) -> None:
    expected = independent_pressure(state)
    got = pressure(state, NOW, DIVERSION).score
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-12)


def test_region_pressures_match_one_hospital_at_a_time() -> None:
    ev = evaluate_region(STATES, {}, NO_PRIORS, NOW, CONFIG)
    for s in STATES:
        alone = pressure(s, NOW, DIVERSION).score
        bulk = float(ev.diversion.pressure[ev.diversion.arrays.index[s.code]])
        assert (alone is None and math.isnan(bulk)) or bulk == pytest.approx(alone)


def test_minutes_chain_with_the_priors_carried_forward() -> None:
    calm = [at_pressure(f"G{i}", 0.0) for i in range(4)]
    travel = {"H": {"G0": 10.0, "G1": 20.0}}
    priors = NO_PRIORS
    statuses = []
    for minute, p in enumerate([0.9, 0.9, 0.75, 0.65, 0.65, 0.3]):
        now = NOW + timedelta(minutes=15 * minute)
        states = [
            at_pressure("H", p, as_of=now),
            *(dataclasses.replace(c, as_of=now) for c in calm),
        ]
        ev = evaluate_region(states, travel, priors, now, CONFIG)
        statuses.append(ev.diversion.status("H"))
        priors = carry_forward(ev)
    # 0: close; 15: held; 30: 0.75 ≥ close_exit: held; 45: 0.65 < 0.70 → advisory (closed 45
    # min ≥ 30); 60: advisory held 15 min; 75: 0.3 → open (advisory held 30 min).
    assert statuses == [
        Status.CLOSED,
        Status.CLOSED,
        Status.CLOSED,
        Status.ADVISORY,
        Status.ADVISORY,
        Status.OPEN,
    ]
    assert priors.diversion["H"].status is Status.OPEN
