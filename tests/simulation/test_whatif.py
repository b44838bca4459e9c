"""What-if changes, the deltas table and the inverse staffing search."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from simulation import apply_changes, smallest_staffing, whatif
from simulation.changes import before_noon_share, describe
from simulation.params import Scenario
from tests.simulation.conftest import hospital


def test_changes_are_applied_without_touching_the_base() -> None:
    base = hospital()
    assert base.surgery is not None
    assert base.ed is not None
    changed = apply_changes(
        base,
        {
            "or_rooms": 1,
            "arrivals_scale": 1.25,
            "staffed_beds": {"ward_b": -10},
            "ed_clinicians": 2,
        },
    )
    assert changed.surgery is not None
    assert changed.ed is not None
    assert changed.surgery.rooms == base.surgery.rooms + 1
    assert changed.unit("ward_b").beds == base.unit("ward_b").beds - 10  # type: ignore[operator]
    assert changed.ed.walk_in.daily_mean == pytest.approx(base.ed.walk_in.daily_mean * 1.25)
    assert changed.ed.shifts[0].clinicians == base.ed.shifts[0].clinicians + 2
    assert base == hospital()


def test_discharge_before_noon_change_moves_discharges_to_the_morning() -> None:
    base = hospital()
    assert base.discharge_hours is not None
    changed = apply_changes(base, {"discharge_before_noon_share": 0.2})
    assert changed.discharge_hours is not None
    before = before_noon_share(base.discharge_hours)
    assert before_noon_share(changed.discharge_hours) == pytest.approx(before + 0.2)


def test_unknown_change_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown change"):
        apply_changes(hospital(), {"helicopters": 2})


def test_describe_labels_changes_readably() -> None:
    assert describe({"or_rooms": 1, "staffed_beds": {"ward_b": -10}}) == (
        "or_rooms +1, staffed_beds ward_b -10"
    )


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return whatif(
        hospital(days=14),
        [{"or_rooms": 1}, {"staffed_beds": {"ward_a": -25}}, {"arrivals_scale": 1.1}],
        replications=6,
        seed=2,
        processes=2,
    )


def _row(table: pd.DataFrame, variant: str, metric: str) -> dict[str, Any]:
    rows = [r for r in table.to_dict("records") if (r["variant"], r["metric"]) == (variant, metric)]
    assert len(rows) == 1
    return {str(k): v for k, v in rows[0].items()}


def test_an_extra_operating_room_does_more_cases(table: pd.DataFrame) -> None:
    row = _row(table, "or_rooms +1", "or.cases_done_per_day")
    assert row["delta"] > 0
    assert row["significant"]
    assert row["ci_low"] <= row["delta"] <= row["ci_high"]


def test_fewer_ward_beds_lengthen_the_wait_for_a_ward_bed(table: pd.DataFrame) -> None:
    row = _row(table, "staffed_beds ward_a -25", "unit.ward_a.wait_mean_h")
    assert row["delta"] > 0
    assert row["significant"]


def test_more_arrivals_raise_ed_occupancy(table: pd.DataFrame) -> None:
    row = _row(table, "arrivals_scale ×1.1", "ed.los_mean_h")
    assert row["variant_mean"] > row["base"]


def test_smallest_staffing_finds_the_lowest_level_meeting_the_target() -> None:
    sc = hospital(days=7, warmup_days=2)
    res = smallest_staffing(
        sc,
        metric="ed.wait_p95_h",
        threshold=4.0,
        lever="ed_clinicians_per_shift",
        low=4,
        high=16,
        replications=4,
        seed=1,
        processes=2,
    )
    assert res.level is not None
    table = res.evaluated.set_index("level")
    assert bool(table.loc[res.level, "meets_target"])
    # The level below was evaluated by the bisection and fails.
    assert res.level - 1 in table.index
    assert not bool(table.loc[res.level - 1, "meets_target"])


def test_smallest_staffing_reports_none_when_even_the_maximum_fails() -> None:
    sc: Scenario = hospital(days=4, warmup_days=1)
    res = smallest_staffing(
        sc, metric="ed.wait_p95_h", threshold=0.01, low=1, high=3, replications=2, processes=1
    )
    assert res.level is None


def test_labelled_variants_keep_their_labels() -> None:
    table = whatif(
        hospital(days=3, warmup_days=1),
        {"bigger ICU": {"staffed_beds": {"icu": 4}}},
        replications=2,
        seed=1,
        processes=1,
        metrics=["unit.icu.occupancy_mean"],
    )
    assert table["variant"].tolist() == ["bigger ICU"]
