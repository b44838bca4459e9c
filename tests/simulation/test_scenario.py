"""Scenario files: every bundled file loads, round-trips, and bad files are rejected."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from simulation import load_scenario, scenario_from_dict, scenario_to_dict
from simulation.params import RegionalScenario, Scenario
from simulation.scenario import SCENARIO_DIR, ScenarioError, bundled_scenarios


def test_bundled_scenarios_include_the_required_examples() -> None:
    names = set(bundled_scenarios())
    assert {"general_hospital", "mmc_check", "erlang_b_check", "unit_network"} <= names
    assert "small_region" in names


@pytest.mark.parametrize("name", bundled_scenarios())
def test_every_bundled_scenario_loads_and_round_trips(name: str) -> None:
    sc = load_scenario(name)
    again = scenario_from_dict(scenario_to_dict(sc))
    assert again == sc


def test_general_hospital_has_ed_wards_icu_and_theatres() -> None:
    sc = load_scenario("general_hospital")
    assert isinstance(sc, Scenario)
    assert sc.ed is not None
    assert sc.surgery is not None
    assert {u.kind for u in sc.units} >= {"ward", "icu"}
    # The ED volume is the median English type-1 provider: about 281 a day.
    daily = sc.ed.walk_in.daily_mean + sc.ed.ambulance.daily_mean
    assert daily == pytest.approx(281, abs=1)
    assert sum(a.walk_in_share for a in sc.ed.acuity) == pytest.approx(1.0)


def test_regional_scenario_has_travel_for_every_zone_and_hospital() -> None:
    sc = load_scenario("small_region")
    assert isinstance(sc, RegionalScenario)
    assert len(sc.hospitals) == 3
    for z in sc.zones:
        for h in sc.hospitals:
            assert sc.travel(z.name, h.name) > 0


def test_a_path_to_a_toml_file_loads(tmp_path: Path) -> None:
    src = (SCENARIO_DIR / "mmc_check.toml").read_text()
    path = tmp_path / "copy.toml"
    path.write_text(src.replace('name = "mmc_check"', 'name = "copy"'))
    sc = load_scenario(path)
    assert sc.name == "copy"


def _data(name: str) -> dict[str, object]:
    with (SCENARIO_DIR / f"{name}.toml").open("rb") as fh:
        return tomllib.load(fh)


def test_a_misspelt_key_is_an_error_not_a_default() -> None:
    data = _data("mmc_check")
    data["units"][0]["bedz"] = 3  # type: ignore[index]
    with pytest.raises(ScenarioError, match="bedz"):
        scenario_from_dict(data)


def test_routing_to_an_unknown_unit_is_an_error() -> None:
    data = _data("unit_network")
    data["routes"][0]["to"] = {"nowhere": 1.0}  # type: ignore[index]
    with pytest.raises(ScenarioError, match="nowhere"):
        scenario_from_dict(data)


def test_a_unit_without_a_length_of_stay_is_an_error() -> None:
    data = _data("mmc_check")
    data["los"] = []
    with pytest.raises(ScenarioError, match="length of stay"):
        scenario_from_dict(data)


def test_an_unknown_scenario_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError, match="general_hospital"):
        load_scenario("no_such_scenario")


def test_durations_are_converted_to_hours() -> None:
    sc = load_scenario("general_hospital")
    assert isinstance(sc, Scenario)
    assert sc.ed is not None
    assert sc.ed.acuity[0].assessment.mean == pytest.approx(1.5)  # 90 minutes
    ward_a = next(r for r in sc.los if r.unit == "ward_a")
    assert ward_a.dist.mean == pytest.approx(3.5 * 24)  # 3.5 days
