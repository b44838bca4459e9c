"""The regional model: ambulances by zone, travel, and pluggable diversion policies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import pytest

from simulation import (
    HospitalStatus,
    NoDiversion,
    ThresholdDiversion,
    compare_policies,
    load_scenario,
    run_replication,
)
from simulation.params import RegionalScenario


def region(days: float = 10) -> RegionalScenario:
    sc = load_scenario("small_region")
    assert isinstance(sc, RegionalScenario)
    run = replace(sc.run, days=days)
    return replace(
        sc,
        run=run,
        hospitals=tuple(replace(h, scenario=replace(h.scenario, run=run)) for h in sc.hospitals),
    )


def status(name: str, occupied: int, waiting: int, diverted: bool = False) -> HospitalStatus:
    return HospitalStatus(name, 20, occupied, waiting, 0, (), diverted)


def test_threshold_policy_has_hysteresis() -> None:
    policy = ThresholdDiversion(on_pressure=1.2, off_pressure=0.9)
    calm = {"a": status("a", 19, 0), "b": status("b", 10, 0)}
    assert policy(calm) == frozenset()
    busy = {"a": status("a", 20, 5), "b": status("b", 10, 0)}
    assert policy(busy) == {"a"}
    # Still above the off threshold: stays on diversion.
    easing = {"a": status("a", 19, 0, diverted=True), "b": status("b", 10, 0)}
    assert policy(easing) == {"a"}
    recovered = {"a": status("a", 15, 0, diverted=True), "b": status("b", 10, 0)}
    assert policy(recovered) == frozenset()


def test_threshold_policy_never_closes_the_whole_region() -> None:
    policy = ThresholdDiversion()
    all_busy = {n: status(n, 20, w) for n, w in (("a", 10), ("b", 20), ("c", 30))}
    assert policy(all_busy) == {"b", "c"}


def test_no_diversion_sends_every_ambulance_to_the_nearest_hospital() -> None:
    m = run_replication(region(), 0, seed=2, policy=NoDiversion()).metrics
    assert m["region.diverted_share"] == 0.0
    assert m["central.diversion_share"] == 0.0
    assert m["region.incidents_per_day"] == pytest.approx(130, rel=0.1)


@dataclass(frozen=True)
class AlwaysDivert:
    """A plugged-in rule: keep one hospital closed to ambulances."""

    hospital: str

    def __call__(self, status: Mapping[str, HospitalStatus]) -> frozenset[str]:
        return frozenset({self.hospital})


def test_a_custom_policy_plugs_in_and_moves_ambulances() -> None:
    base = run_replication(region(), 0, seed=2, policy=NoDiversion()).metrics
    closed = run_replication(region(), 0, seed=2, policy=AlwaysDivert("central")).metrics
    assert closed["central.ambulances_per_day"] < 0.5 * base["central.ambulances_per_day"]
    assert closed["region.travel_mean_min"] > base["region.travel_mean_min"]
    assert closed["central.diversion_share"] == pytest.approx(1.0)


@pytest.mark.slow
def test_compare_policies_shows_what_diversion_does_before_anyone_applies_it() -> None:
    table = compare_policies(
        region(days=10),
        {"none": NoDiversion(), "threshold": ThresholdDiversion(1.2, 0.9)},
        replications=4,
        seed=3,
        processes=2,
    )
    rows = {(r["policy"], r["metric"]): r for r in table.to_dict("records")}
    # Diversion sends some ambulances past the nearest hospital, which costs travel time.
    assert rows[("threshold", "region.diverted_share")]["mean"] > 0
    assert rows[("threshold", "region.travel_mean_min")]["delta_vs_none"] > 0
    assert rows[("none", "region.offload_mean_min")]["delta_vs_none"] == 0.0
