"""Diversion scenarios whose expected recommendation is worked out by hand in the test.

Default bands and weights (``DiversionConfig``), used in the arithmetic below:

    figure                    band (score 0 → 1)        weight
    ED occupancy              80% → 100%                0.25
    waiting per ED space      0 → 0.5                   0.05
    boarding per ED space     0 → 0.25                  0.15
    longest boarding          60 → 360 min              0.10
    offload p90 (APOT-1)      30 → 90 min               0.15
    ICU occupancy             80% → 100%                0.05
    ward occupancy            85% → 100%                0.10
    forecast least free/space 0.10 → 0 (2-6 h window)   0.15

pressure = Σ weight·score / Σ weight over the figures present. Advisory from 0.60, close from
0.80; a destination must be under 0.50 with a free ED place.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.coordination import rules
from hub.coordination.diversion import (
    Mode,
    PriorStatus,
    Status,
    evaluate_diversion,
    next_status,
    pressure,
)
from hub.coordination.state import AmbulanceClass, Capabilities, HospitalState, StrokeLevel

from .builders import DIVERSION, NOW, at_pressure, ed_forecast, hospital, minutes_ago

# H from the example: 30 ED spaces, 29 occupied (97%), 6 boarding, longest 5 h 10 min,
# offload p90 60 min, ICU 10/10, ward 97/100, ED forecast full for the next 3 hours.
H_FIGURES = {
    "ed_capacity": 30,
    "ed_occupied": 29,
    "ed_boarding": 6,
    "longest_boarding_minutes": 310,
    "offload_p90_minutes": 60,
    "offload_as_of": NOW,
    "icu_capacity": 10,
    "icu_occupied": 10,
    "ward_capacity": 100,
    "ward_occupied": 97,
    "forecast": ed_forecast(
        (1, -1, -3, 1), (2, -2, -4, 0), (3, -1, -3, 1), (4, 1, -1, 3), (5, 2, 0, 4), (6, 3, 1, 5)
    ),
}
# By hand:
#   ED occupancy 29/30 = 0.9667 → (0.9667-0.80)/0.20 = 0.8333 × 0.25 = 0.20833
#   boarding 6/30 = 0.20 → 0.20/0.25 = 0.80                      × 0.15 = 0.12
#   longest 310 min → (310-60)/300 = 0.8333                       × 0.10 = 0.08333
#   offload 60 min → (60-30)/60 = 0.50                            × 0.15 = 0.075
#   ICU 100% → 1.0                                                × 0.05 = 0.05
#   ward 97% → (0.97-0.85)/0.15 = 0.80                            × 0.10 = 0.08
#   forecast: least p50 in 2-6 h is -2 → -2/30 → beyond 0 → 1.0  × 0.15 = 0.15
#   no waiting figure: weights sum to 0.95
#   pressure = 0.76667 / 0.95 = 0.80702 → at or above 0.80: close
H_PRESSURE = 0.76667 / 0.95


def g_hospital():
    # G: 25 spaces, 20 occupied (80% → score 0): 5 free; forecast 3 free in 2 h (1-6).
    return hospital(
        "G", ed_capacity=25, ed_occupied=20, forecast=ed_forecast((2, 3, 1, 6), (4, 4, 2, 7))
    )


def test_the_worked_example_closes_h_and_sends_general_ambulances_to_g() -> None:
    h = hospital("H", **H_FIGURES)
    stale = hospital("K", as_of=minutes_ago(40))  # nearer, but its feed is 40 min old
    # nearest, but itself saturated: 91% occupied is pressure 0.55, at or above the 0.50 a
    # destination must stay under (yet under 0.60: not diverting itself)
    full = hospital("L", ed_capacity=100, ed_occupied=91)
    travel = {"H": {"G": 12, "K": 8, "L": 5}, "G": {"H": 12}, "K": {}, "L": {}}

    result = evaluate_diversion([h, g_hospital(), stale, full], travel, {}, NOW, DIVERSION)

    assert result.mode is Mode.NORMAL
    assert pressure(h, NOW, DIVERSION).score == pytest.approx(H_PRESSURE, abs=1e-4)
    [rec] = result.recommendations
    assert rec.hospital == "H"
    assert rec.status is Status.CLOSED
    assert [(r.ambulance_class, r.destination) for r in rec.routes] == [
        (AmbulanceClass.GENERAL, "G")
    ]
    assert rec.explanation == (
        "Close ED to general ambulances at H; send them to G. "
        "H: ED 97% occupied, 6 boarding, longest 5 h 10 min, ambulance offload p90 1 h, "
        "ICU 100% occupied (0 free), ward beds 97% occupied (3 free), "
        "forecast full for the next 3 h (p50), pressure 81/100. "
        "G: 5 ED beds free, forecast 3 free in 2 h (80% interval 1–6), 12 minutes away."
    )
    assert rec.no_forecast is False
    assert rec.expires_at == NOW + timedelta(minutes=DIVERSION.ttl_minutes)
    assert rec.figures["pressure"] == pytest.approx(H_PRESSURE, abs=1e-4)
    assert [c.hospital for c in result.changes] == ["H"]
    assert result.status("K") is Status.OPEN  # a stale hospital is not closed by the rules


def test_without_a_forecast_the_recommendation_still_stands_and_says_so() -> None:
    figures = dict(H_FIGURES, forecast=None, offload_p90_minutes=90)
    h = hospital("H", **figures)
    # By hand, as the worked example without the forecast, offload at 90 min (score 1.0):
    # 0.20833 + 0.12 + 0.08333 + 0.15 + 0.05 + 0.08 = 0.69167 over weights 0.80 = 0.86458
    result = evaluate_diversion([h, g_hospital()], {"H": {"G": 12}}, {}, NOW, DIVERSION)
    [rec] = result.recommendations
    assert rec.score == pytest.approx(0.69167 / 0.80, abs=1e-4)
    assert rec.status is Status.CLOSED
    assert rec.no_forecast is True
    assert "no forecast" in rec.explanation
    assert rec.figures["no_forecast"] is True


def test_an_old_forecast_is_not_used_and_the_explanation_says_so() -> None:
    old = ed_forecast((2, -5, None, None), age_minutes=DIVERSION.forecast_stale_after_minutes + 1)
    h = hospital("H", **dict(H_FIGURES, forecast=old))
    p = pressure(h, NOW, DIVERSION)
    assert p.has_forecast is False
    assert "forecast too old, not used" in p.unused


def test_advisory_diverts_general_ambulances_only() -> None:
    # Pressure 0.70: advisory (0.60-0.80). H is a stroke centre but advisory only asks crews
    # to take general patients elsewhere.
    h = at_pressure("H", 0.70, capabilities=Capabilities(stroke=StrokeLevel.COMPREHENSIVE))
    g = at_pressure("G", 0.10, capabilities=Capabilities(stroke=StrokeLevel.COMPREHENSIVE))
    result = evaluate_diversion([h, g], {"H": {"G": 10}}, {}, NOW, DIVERSION)
    [rec] = result.recommendations
    assert rec.status is Status.ADVISORY
    assert [r.ambulance_class for r in rec.routes] == [AmbulanceClass.GENERAL]
    assert rec.explanation.startswith("Advisory: divert general ambulances at H; send them to G.")


def test_capabilities_route_each_class_to_a_capable_hospital_or_keep_it() -> None:
    # H closes (pressure 0.90). It takes general, stroke (primary centre) and STEMI (PCI).
    # G (10 min): general only. K (15 min): comprehensive stroke centre. P (25 min): PCI,
    # beyond the 20-minute limit for time-critical patients.
    h = at_pressure(
        "H", 0.90, capabilities=Capabilities(stroke=StrokeLevel.PRIMARY, stemi_pci=True)
    )
    g = at_pressure("G", 0.10)
    k = at_pressure("K", 0.10, capabilities=Capabilities(stroke=StrokeLevel.COMPREHENSIVE))
    p = at_pressure("P", 0.10, capabilities=Capabilities(stemi_pci=True))
    travel = {"H": {"G": 10, "K": 15, "P": 25}}
    result = evaluate_diversion([h, g, k, p], travel, {}, NOW, DIVERSION)
    [rec] = result.recommendations
    assert {r.ambulance_class: r.destination for r in rec.routes} == {
        AmbulanceClass.GENERAL: "G",
        AmbulanceClass.STROKE: "K",
    }
    assert [k.ambulance_class for k in rec.kept] == [AmbulanceClass.STEMI]
    assert (
        "H keeps taking STEMI: no STEMI-capable hospital open with free places within 20 min"
        in (rec.explanation)
    )


def test_two_diversions_do_not_count_on_the_same_free_places() -> None:
    # H1 (0.95) and H2 (0.90) both close; G has 2 free places, M 6 free but 30 min away.
    # H1, most pressed, goes first and promises G its 2 places (2 ambulances an hour for the
    # 1-hour horizon); G has none left for H2, so H2's ambulances go to M.
    h1 = at_pressure("H1", 0.95, ambulance_arrivals_per_hour=2.0)
    h2 = at_pressure("H2", 0.90, ambulance_arrivals_per_hour=2.0)
    g = hospital("G", ed_capacity=10, ed_occupied=8)  # 80%: pressure 0
    m = hospital("M", ed_capacity=20, ed_occupied=14)
    travel = {"H1": {"G": 10, "M": 40}, "H2": {"G": 8, "M": 30}}
    result = evaluate_diversion([h1, h2, g, m], travel, {}, NOW, DIVERSION)
    dest = {r.hospital: r.routes[0].destination for r in result.recommendations}
    assert dest == {"H1": "G", "H2": "M"}


def test_with_nowhere_to_send_them_h_stays_open_and_says_why() -> None:
    h1 = at_pressure("H1", 0.95, ambulance_arrivals_per_hour=2.0)
    h2 = at_pressure("H2", 0.90, ambulance_arrivals_per_hour=2.0)
    g = hospital("G", ed_capacity=10, ed_occupied=8)  # 2 free: all promised to H1
    c1, c2 = at_pressure("C1", 0.1), at_pressure("C2", 0.1)  # calm, but far from H2
    travel = {"H1": {"G": 10}, "H2": {"G": 8, "C1": 50}}
    result = evaluate_diversion([h1, h2, g, c1, c2], travel, {}, NOW, DIVERSION)
    assert [r.hospital for r in result.recommendations] == ["H1"]
    a = result.assessment("H2")
    assert a.status is Status.OPEN
    assert a.reason == "no general-capable hospital open with free places within 45 min"


# Three busy EDs 10–20 minutes apart, all at closing pressure: A full, B with 2 free places
# (the least pressed: 0.808), C 3 over capacity.
_BUSY = {
    "ed_boarding": 6,
    "longest_boarding_minutes": 400,
    "offload_p90_minutes": 90,
    "offload_as_of": NOW,
}
_TRIO_TRAVEL = {"A": {"B": 10, "C": 20}, "B": {"A": 10, "C": 15}, "C": {"A": 20, "B": 15}}


def _busy_trio() -> list[HospitalState]:
    return [
        hospital(code, ed_capacity=20, ed_occupied=occupied, **_BUSY)
        for code, occupied in (("A", 20), ("B", 18), ("C", 23))
    ]


def test_a_saturated_region_load_balances_by_free_places() -> None:
    # All three at closing pressure (3 of 3, at least the 60% share): nobody closes. Each hospital's
    # ambulances are shared with its neighbours by free places + 1:
    # A: 0 free → 1, B: 2 free → 3, C: 3 over capacity → 1. For A: 1/5, 3/5, 1/5.
    a, b, c = _busy_trio()
    for s in (a, b, c):
        assert pressure(s, NOW, DIVERSION).score >= DIVERSION.close_enter  # type: ignore[operator]
    travel = _TRIO_TRAVEL
    result = evaluate_diversion([a, b, c], travel, {}, NOW, DIVERSION)
    assert result.mode is Mode.LOAD_BALANCING
    assert result.diverting == ()
    rec_a = next(r for r in result.recommendations if r.hospital == "A")
    assert {r.destination: r.share for r in rec_a.routes} == pytest.approx(
        {"A": 0.2, "B": 0.6, "C": 0.2}
    )
    assert result.explanation == (
        "Region saturated: 3 of 3 fresh hospitals at closing pressure; load-balancing, "
        "no hospital closes"
    )
    assert rec_a.explanation.startswith(
        "Region saturated: load-balancing, no hospital closes. "
        "Share general ambulances for A by free places: "
        "20% to A (0 ED beds free, here); 60% to B (2 ED beds free, 10 minutes away); "
        "20% to C (0 ED beds free, 20 minutes away)."
    )


def test_load_balancing_advice_quotes_its_own_numbers_not_the_regions_counts() -> None:
    # A, B, C as above; D far away. D crossing the closing pressure changes the region's
    # count (3 of 4 → 4 of 4), not a word or figure of A's advice, nor its inputs key. C is
    # 3 over capacity: its free places, in A's figures as in A's words, are 0.
    before, after = (
        evaluate_diversion([*_busy_trio(), at_pressure("D", p)], _TRIO_TRAVEL, {}, NOW, DIVERSION)
        for p in (0.1, 0.9)
    )
    assert (before.mode, after.mode) == (Mode.LOAD_BALANCING, Mode.LOAD_BALANCING)
    assert "3 of 4 fresh hospitals" in before.explanation
    assert "4 of 4 fresh hospitals" in after.explanation
    rec_before, rec_after = (
        next(r for r in ev.recommendations if r.hospital == "A") for ev in (before, after)
    )
    assert rec_after.explanation == rec_before.explanation
    assert rec_after.figures == rec_before.figures
    assert rec_after.inputs_key == rec_before.inputs_key
    assert {d["code"]: d["ed_free"] for d in rec_after.figures["destinations"]} == {
        "A": 0,
        "B": 2,
        "C": 0,
    }


def test_load_balancing_ends_only_below_its_exit_share() -> None:
    # 2 of 5 closing = 40%: under the 60% to enter, but not under the 40% to leave.
    states = [at_pressure(f"X{i}", 0.9 if i < 2 else 0.1) for i in range(5)]
    travel = {f"X{i}": {f"X{j}": 10.0 for j in range(5) if j != i} for i in range(5)}
    assert evaluate_diversion(states, travel, {}, NOW, DIVERSION).mode is Mode.NORMAL
    held = evaluate_diversion(states, travel, {}, NOW, DIVERSION, prior_mode=Mode.LOAD_BALANCING)
    assert held.mode is Mode.LOAD_BALANCING
    states[1] = at_pressure("X1", 0.1)  # 1 of 5 = 20%
    ended = evaluate_diversion(states, travel, {}, NOW, DIVERSION, prior_mode=Mode.LOAD_BALANCING)
    assert ended.mode is Mode.NORMAL


def test_the_current_destination_is_kept_unless_another_is_much_nearer() -> None:
    h = at_pressure("H", 0.9)
    g1, g2 = at_pressure("G1", 0.1), at_pressure("G2", 0.1)
    prior = PriorStatus(
        status=Status.CLOSED,
        since=minutes_ago(5),
        expires_at=NOW + timedelta(minutes=55),
        destinations={AmbulanceClass.GENERAL: "G2"},
    )
    near = evaluate_diversion(
        [h, g1, g2], {"H": {"G1": 10, "G2": 15}}, {"H": prior}, NOW, DIVERSION
    )
    assert near.recommendations[0].routes[0].destination == "G2"  # 5 min more: within 10
    far = evaluate_diversion([h, g1, g2], {"H": {"G1": 10, "G2": 25}}, {"H": prior}, NOW, DIVERSION)
    assert far.recommendations[0].routes[0].destination == "G1"  # 15 min more: switch


def test_a_stale_hospital_keeps_its_diversion_unrenewed_until_it_expires() -> None:
    expires = NOW + timedelta(minutes=20)
    prior = PriorStatus(
        status=Status.CLOSED,
        since=minutes_ago(40),
        expires_at=expires,
        destinations={AmbulanceClass.GENERAL: "G"},
    )
    h = at_pressure("H", 0.95, as_of=minutes_ago(25))  # census 25 min old: stale
    g = at_pressure("G", 0.1)
    result = evaluate_diversion([h, g], {"H": {"G": 10}}, {"H": prior}, NOW, DIVERSION)
    [rec] = result.recommendations
    assert rec.status is Status.CLOSED
    assert rec.expires_at == expires  # not renewed
    assert "status held until 12:20, not renewed" in rec.explanation
    later = NOW + timedelta(minutes=21)
    after = evaluate_diversion([h, g], {"H": {"G": 10}}, {"H": prior}, later, DIVERSION)
    assert after.status("H") is Status.OPEN
    [change] = after.changes
    assert (change.from_status, change.to_status, change.reason) == (
        Status.CLOSED,
        Status.OPEN,
        "expired (not renewed)",
    )


# --- hysteresis, minimum duration, expiry: one hospital, by hand ------------------------------


def _prior(status: Status, held_minutes: float, expires_in: float = 30) -> PriorStatus:
    return PriorStatus(
        status=status,
        since=minutes_ago(held_minutes),
        expires_at=NOW + timedelta(minutes=expires_in),
    )


@pytest.mark.parametrize(
    ("prior", "score", "expected"),
    [
        (None, 0.59, Status.OPEN),  # under advisory_enter
        (None, 0.60, Status.ADVISORY),
        (None, 0.80, Status.CLOSED),
        (_prior(Status.CLOSED, 40), 0.75, Status.CLOSED),  # between close_exit and close_enter
        (_prior(Status.CLOSED, 40), 0.69, Status.ADVISORY),  # under close_exit
        (_prior(Status.CLOSED, 40), 0.49, Status.OPEN),  # under advisory_exit
        (_prior(Status.ADVISORY, 40), 0.55, Status.ADVISORY),  # held by the band
        (_prior(Status.ADVISORY, 40), 0.79, Status.ADVISORY),  # not yet close_enter
        (_prior(Status.OPEN, 40), 0.59, Status.OPEN),
        (_prior(Status.CLOSED, 10), 0.10, Status.CLOSED),  # minimum duration: 30 min
        (_prior(Status.OPEN, 10), 0.95, Status.OPEN),  # reopened 10 min ago: not yet
        (_prior(Status.CLOSED, 10, expires_in=-1), 0.10, Status.OPEN),  # expired
        (_prior(Status.CLOSED, 10, expires_in=-1), 0.85, Status.CLOSED),  # expired, re-closed
    ],
)
def test_status_hysteresis_and_minimum_duration(
    prior: PriorStatus | None, score: float, expected: Status
) -> None:
    assert next_status(prior, score, True, NOW, DIVERSION).status is expected


def test_every_diversion_is_renewed_only_by_an_evaluation_that_confirms_it() -> None:
    prior = _prior(Status.CLOSED, 40, expires_in=5)
    renewed = next_status(prior, 0.85, True, NOW, DIVERSION)
    assert renewed.expires_at == NOW + timedelta(minutes=DIVERSION.ttl_minutes)
    stale = next_status(prior, None, False, NOW, DIVERSION)
    assert (stale.status, stale.expires_at) == (Status.CLOSED, prior.expires_at)
    assert rules.expired(stale.expires_at, NOW + timedelta(minutes=5))
    opened = next_status(prior, 0.2, True, NOW, DIVERSION)
    assert (opened.status, opened.expires_at) == (Status.OPEN, None)


def test_a_hospital_an_operator_closed_receives_no_diverted_ambulances() -> None:
    h = at_pressure("H", 0.9)
    g1, g2 = at_pressure("G1", 0.1), at_pressure("G2", 0.1)
    calm = at_pressure("C", 0.1)
    travel = {"H": {"G1": 10, "G2": 20}}
    result = evaluate_diversion([h, g1, g2, calm], travel, {}, NOW, DIVERSION, closed={"G1"})
    assert result.recommendations[0].routes[0].destination == "G2"
