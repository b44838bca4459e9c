"""Calibration: fitting synthetic flow records recovers the model that made them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulation import calibrate, load_scenario, run_replication, synthetic_flow_records
from simulation.calibrate import fit_stays
from simulation.params import Scenario


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    sc = load_scenario("unit_network")
    assert isinstance(sc, Scenario)
    return synthetic_flow_records(sc, seed=3)


def test_records_have_the_documented_columns(records: pd.DataFrame) -> None:
    assert {"unit", "patient_class", "arrival", "departure", "source", "next_unit"} <= set(
        records.columns
    )
    assert pd.api.types.is_datetime64_any_dtype(records["arrival"])


def test_arrival_profiles_recover_the_daily_volumes(records: pd.DataFrame) -> None:
    cal = calibrate(records)
    assert cal.profiles[("amu", "medical")].daily_mean == pytest.approx(30, rel=0.05)
    assert cal.profiles[("stroke", "stroke")].daily_mean == pytest.approx(3, rel=0.15)
    # Only arrivals from outside make profiles: no profile for transfers into rehab.
    assert ("rehab", "medical") not in cal.profiles
    # The hour-of-day shape survives: the AMU is busier at 11:00 than at 03:00.
    rates = np.array(cal.profiles[("amu", "medical")].rates).reshape(7, 24).mean(axis=0)
    assert rates[11] > 2 * rates[3]


def test_best_fit_picks_the_generating_family(records: pd.DataFrame) -> None:
    best = calibrate(records).best().set_index(["unit", "patient_class"])
    # Stroke stays are lognormal (6 ± 4 days), uncapacitated by design.
    assert best.loc[("stroke", "stroke"), "distribution"] == "lognormal"
    assert best.loc[("stroke", "stroke"), "mean_h"] == pytest.approx(144, rel=0.1)


def test_fit_report_has_ks_and_aic_for_every_candidate() -> None:
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 10.0, 3000)
    rows = {r["distribution"]: r for r in fit_stays(x)}
    assert set(rows) == {"lognormal", "gamma", "exponential"}
    assert sum(r["best"] for r in rows.values()) == 1
    assert rows["gamma"]["best"]
    assert rows["gamma"]["ks_stat"] < rows["exponential"]["ks_stat"]
    assert rows["gamma"]["ks_pvalue"] > 0.01


def test_routing_probabilities_are_recovered(records: pd.DataFrame) -> None:
    routing = calibrate(records).routing.set_index(["unit", "patient_class", "next_unit"])
    assert routing.loc[("amu", "medical", "medicine"), "probability"] == pytest.approx(
        0.55, abs=0.03
    )
    totals = routing.groupby(level=[0, 1])["probability"].sum()
    assert np.allclose(totals, 1.0)


def test_calibrated_scenario_runs_and_reproduces_the_volume(records: pd.DataFrame) -> None:
    cal = calibrate(records)
    sc = cal.to_scenario("fitted", beds={"amu": 40})
    m = run_replication(sc, 0, seed=1).metrics
    assert m["unit.amu.arrivals_per_day"] == pytest.approx(30, rel=0.1)


def test_missing_columns_are_reported() -> None:
    with pytest.raises(ValueError, match="departure"):
        calibrate(pd.DataFrame({"unit": [], "patient_class": [], "arrival": []}))
