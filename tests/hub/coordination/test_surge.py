"""OPEL-style surge levels: parameters → score → level, worked by hand.

Default thresholds (level 2 / 3 / 4) and weights, used below:

    ED occupancy           85% / 95% / 105%   ×2
    boarding               2 / 5 / 10         ×1
    longest boarding       2 / 4 / 12 h       ×1
    patients over 4 h      10% / 20% / 35%    ×1
    handovers > 30 min     1 / 3 / 6          ×2
    bed occupancy          85% / 92% / 97%    ×1.5
    ICU occupancy          80% / 90% / 98%    ×1
    staffing gap           5% / 10% / 20%     ×1

score = 100 · Σ weight·(level − 1) / Σ weight·3; level 2 from 20, 3 from 45, 4 from 70.
"""

from __future__ import annotations

import dataclasses

import pytest

from hub.coordination.config import SurgeConfig
from hub.coordination.surge import (
    PriorLevel,
    evaluate_surge,
    level_for,
    next_level,
    parameters,
    region_parameters,
    score,
)

from .builders import CONFIG, DIVERSION, NOW, hospital, minutes_ago

SURGE = CONFIG.surge

H = hospital(
    "H",
    ed_capacity=30,
    ed_occupied=29,  # 97% → level 3                       2 points × 2   = 4
    ed_boarding=6,  # → level 3                              2 × 1         = 2
    longest_boarding_minutes=310,  # 5 h 10 min → level 3     2 × 1         = 2
    over_4h_share=0.25,  # → level 3                         2 × 1         = 2
    handovers_over_30_min=2,  # → level 2                    1 × 2         = 2
    ward_capacity=100,
    ward_occupied=97,  # 97% → level 4                        3 × 1.5       = 4.5
    icu_capacity=10,
    icu_occupied=10,  # 100% → level 4                        3 × 1         = 3
    staffing_gap_share=0.04,  # → level 1                    0 × 1         = 0
)
# Σ = 19.5 of 3 × (2+1+1+1+2+1.5+1+1) = 31.5 → score 61.9 → level 3
H_SCORE = 100 * 19.5 / 31.5


def test_parameters_score_and_level_by_hand() -> None:
    value, readings = score(parameters(H), SURGE)
    assert value == pytest.approx(H_SCORE)
    assert level_for(value, SURGE) == 3  # type: ignore[arg-type]
    assert {r.name: r.level for r in readings} == {
        "ed_occupancy": 3,
        "ed_boarding": 3,
        "longest_boarding_hours": 3,
        "over_4h_share": 3,
        "handovers_over_30_min": 2,
        "bed_occupancy": 4,
        "icu_occupancy": 4,
        "staffing_gap_share": 1,
    }


def test_a_level_change_records_its_causes_and_carries_its_checklist() -> None:
    result = evaluate_surge(
        [H], {"H": PriorLevel(level=1, since=minutes_ago(300))}, NOW, SURGE, DIVERSION
    )
    [change] = [c for c in result.changes if c.subject == "H"]
    assert (change.from_level, change.to_level) == (1, 3)
    assert change.score == pytest.approx(H_SCORE)
    # Escalation: the causes are the parameters at or above the new level.
    assert [r.name for r in change.causes] == [
        "ed_occupancy",
        "ed_boarding",
        "longest_boarding_hours",
        "over_4h_share",
        "bed_occupancy",
        "icu_occupancy",
    ]
    assert change.explanation == (
        "OPEL 1 → 3 at H: score 62/100; ED occupancy 97% (level 3), boarding 6 (level 3), "
        "longest boarding 5 h 10 min (level 3), patients over 4 h 25% (level 3), "
        "bed occupancy 97% (level 4), ICU occupancy 100% (level 4)"
    )
    assert change.checklist == SURGE.checklists[3]
    assert len(change.readings) == 8
    assert result.assessment("H").checklist == SURGE.checklists[3]


def test_too_few_parameters_give_no_level() -> None:
    value, readings = score({"ed_occupancy": 0.99, "ed_boarding": 4}, SURGE)
    assert value is None
    assert len(readings) == 2


@pytest.mark.parametrize(
    ("prior", "value", "expected"),
    [
        (None, 30.0, 2),  # first assessment: the score's level
        (PriorLevel(level=3, since=minutes_ago(90)), 42.0, 3),  # within 5 of the band: held
        (PriorLevel(level=3, since=minutes_ago(90)), 39.0, 2),  # clear of the margin: down
        (PriorLevel(level=3, since=minutes_ago(30)), 10.0, 3),  # held for 60 min first
        (PriorLevel(level=4, since=minutes_ago(90)), 17.0, 2),  # 17 ≥ 20-5: not to 1
        (PriorLevel(level=4, since=minutes_ago(90)), 14.0, 1),
        (PriorLevel(level=2, since=minutes_ago(1)), 75.0, 4),  # escalation is immediate
        (PriorLevel(level=2, since=minutes_ago(1)), None, 2),  # no data: held
    ],
)
def test_escalate_at_once_and_de_escalate_with_margin_and_hold(
    prior: PriorLevel | None, value: float | None, expected: int
) -> None:
    assert next_level(prior, value, NOW, SURGE)[0] == expected


def test_a_stale_hospital_keeps_its_level_and_is_left_out_of_the_region() -> None:
    stale = hospital("S", as_of=minutes_ago(60), ed_capacity=10, ed_occupied=20)
    calm = hospital(
        "C", ed_capacity=20, ed_occupied=10, ed_boarding=0, ward_capacity=100, ward_occupied=70
    )
    priors = {"S": PriorLevel(level=2, since=minutes_ago(100))}
    result = evaluate_surge([stale, calm], priors, NOW, SURGE, DIVERSION, region_code="R")
    assert result.hospitals == {"S": 2, "C": 1}
    assert result.assessment("S").note == "feed stale: level held"
    assert result.region.note == "1 of 2 hospitals reporting fresh figures"
    assert result.region.level == 1


def test_region_parameters_pool_occupancies_and_average_counts() -> None:
    a = hospital(
        "A", ed_capacity=20, ed_occupied=10, ed_boarding=2, icu_capacity=10, icu_occupied=9
    )
    b = hospital("B", ed_capacity=30, ed_occupied=30, ed_boarding=6)
    values = region_parameters([a, b])
    assert values["ed_occupancy"] == pytest.approx(40 / 50)  # pooled, not (0.5 + 1.0) / 2
    assert values["ed_boarding"] == pytest.approx(4.0)  # mean per hospital
    assert values["icu_occupancy"] == pytest.approx(0.9)  # only A reports ICU
    assert values["staffing_gap_share"] is None


def test_the_region_has_its_own_level_and_change() -> None:
    twin = dataclasses.replace(H, code="H2")
    r = evaluate_surge([H, twin], {}, NOW, SURGE, DIVERSION, region_code="R")
    # Two identical hospitals: the region's pooled parameters equal each one's.
    assert r.region.score == pytest.approx(H_SCORE)
    assert r.region.level == 3
    assert r.region.change is not None
    assert r.region.change.subject == "R"
    assert {c.subject for c in r.changes} == {"H", "H2", "R"}


def test_region_arrays_and_the_one_hospital_formula_agree() -> None:
    others = [
        hospital("A", ed_occupied=19, ed_boarding=3, icu_capacity=8, icu_occupied=8),
        hospital("B", ed_occupied=5, ward_capacity=50, ward_occupied=49, staffing_gap_share=0.3),
    ]
    r = evaluate_surge([H, *others], {}, NOW, SURGE, DIVERSION)
    for s in (H, *others):
        alone, _ = score(parameters(s), SURGE)
        got = r.assessment(s.code).score
        assert (got is None and alone is None) or got == pytest.approx(alone)


def test_custom_region_thresholds_change_the_level() -> None:
    strict = SurgeConfig(score_bands=(10.0, 20.0, 30.0))
    value, _ = score(parameters(H), strict)
    assert level_for(value, strict) == 4  # type: ignore[arg-type]


def test_region_parameters_from_columns_match_the_plain_ones() -> None:
    from hub.coordination.arrays import region_arrays
    from hub.coordination.arrays import region_parameters as from_columns

    states = [
        H,
        hospital(
            "A", ed_capacity=20, ed_occupied=10, ed_boarding=2, icu_capacity=10, icu_occupied=9
        ),
        hospital("B", ed_capacity=30, ed_occupied=30, ed_boarding=6, staffing_gap_share=0.1),
        hospital("S", ed_capacity=30, ed_occupied=30, as_of=minutes_ago(60)),  # stale: left out
    ]
    fresh = [s for s in states if s.code != "S"]
    plain = region_parameters(fresh)
    columns = from_columns(region_arrays(states, NOW, DIVERSION))
    assert plain.keys() == columns.keys()
    for name, value in plain.items():
        assert (value is None and columns[name] is None) or columns[name] == pytest.approx(value)
