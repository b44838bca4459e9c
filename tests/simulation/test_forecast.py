"""Forecasts from the live census: warm start, quantiles, ICU demand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from simulation import (
    Census,
    CensusPatient,
    Dist,
    UnitCensus,
    forecast_from_census,
    steady_census,
)
from simulation.arrivals import ArrivalProfile
from simulation.params import LosRule, PatientClass, RunSettings, Scenario, UnitParams
from tests.simulation.conftest import hospital

MONDAY_9AM = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def closed_ward(elapsed: float, mean: float = 48.0, sd: float = 48.0) -> tuple[Scenario, Census]:
    """A 10-bed ward with no new arrivals: only discharges change the census."""
    sc = Scenario(
        name="closed",
        units=(UnitParams("ward", 10, discharge_profile=False),),
        los=(LosRule("ward", Dist.lognormal(mean, sd)),),
        classes=(PatientClass("emergency", "ward", ArrivalProfile.constant(0.0)),),
        run=RunSettings(),
    )
    census = Census(
        time=MONDAY_9AM,
        units={"ward": UnitCensus(10, tuple(CensusPatient(elapsed) for _ in range(10)))},
    )
    return sc, census


def test_beds_free_up_as_census_patients_leave() -> None:
    sc, census = closed_ward(elapsed=24.0)
    f = forecast_from_census(census, sc, horizon_hours=12, replications=200, seed=1)
    beds = f.beds
    by_hour = {r["hours_ahead"]: r for r in beds.to_dict("records")}
    assert by_hour[1]["p50"] <= by_hour[6]["p50"] <= by_hour[12]["p50"]
    assert (beds["p10"] <= beds["p50"]).all()
    assert (beds["p50"] <= beds["p90"]).all()
    assert (beds["p90"] <= 10).all()
    assert by_hour[1]["p_full"] > by_hour[12]["p_full"]


def test_remaining_stay_depends_on_the_stay_so_far() -> None:
    # Stays of 24 ± 12 h: an hour after admission hardly anyone is due to leave within
    # 12 hours, while patients ten days in are deep in the tail and leave at a steady
    # rate. Drawing remaining stays from scratch would treat both groups the same.
    sc, fresh = closed_ward(elapsed=1.0, mean=24.0, sd=12.0)
    _, old = closed_ward(elapsed=240.0, mean=24.0, sd=12.0)
    f_fresh = forecast_from_census(fresh, sc, horizon_hours=12, replications=100, seed=2)
    f_old = forecast_from_census(old, sc, horizon_hours=12, replications=100, seed=2)
    fresh_free = f_fresh.beds["mean"].to_numpy()[11]  # 12 hours ahead
    old_free = f_old.beds["mean"].to_numpy()[11]
    assert old_free > fresh_free + 1.5


def test_hospital_forecast_gives_hourly_quantiles_and_icu_demand_24_to_48_hours() -> None:
    sc = hospital()
    census = steady_census(
        sc, {"ward_a": 185, "ward_b": 235, "ward_surg": 90, "icu": 17}, MONDAY_9AM, seed=3
    )
    census = replace(census, ed_waiting=12, ed_in_treatment=25, ed_boarding={"ward_a": 4})
    f = forecast_from_census(census, sc, horizon_hours=6, replications=40, seed=3)
    assert set(f.beds["unit"]) == {"ward_a", "ward_b", "ward_surg", "icu"}
    assert sorted(set(f.beds["hours_ahead"])) == [1, 2, 3, 4, 5, 6]
    icu = f.icu_demand
    assert icu["hours_ahead"].min() == 24
    assert icu["hours_ahead"].max() == 48
    assert ((icu["p10"] <= icu["p50"]) & (icu["p50"] <= icu["p90"])).all()
    assert 5 < icu["p50"].mean() < 35
    assert f.available["icu"].shape == (40, 49)
    assert f.to_dict()["beds"]


def test_steady_census_fills_units_with_the_requested_patients() -> None:
    sc = hospital()
    census = steady_census(sc, {"ward_a": 50}, MONDAY_9AM, seed=1)
    patients = census.units["ward_a"].patients
    assert len(patients) == 50
    elapsed = np.array([p.elapsed_hours for p in patients])
    assert (elapsed >= 0).all()
    assert census.hour_of_week == pytest.approx(9.0)


def test_census_with_ed_patients_needs_an_ed() -> None:
    sc, census = closed_ward(elapsed=5.0)
    with pytest.raises(ValueError, match="no ED"):
        forecast_from_census(replace(census, ed_waiting=3), sc, replications=2)


def test_census_unit_missing_from_the_scenario_is_a_clear_error() -> None:
    sc, census = closed_ward(elapsed=5.0)
    stray = replace(census, units={**census.units, "ward_z": UnitCensus(4)})
    with pytest.raises(ValueError, match="ward_z"):
        forecast_from_census(stray, sc, replications=2)
