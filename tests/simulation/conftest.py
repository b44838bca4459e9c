"""Shared, cached simulation runs: several tests read the same replications."""

from __future__ import annotations

from dataclasses import replace

import pytest

from simulation import ReplicationResult, load_scenario, run_replication
from simulation.params import Scenario


def hospital(days: float = 14, warmup_days: float = 3) -> Scenario:
    sc = load_scenario("general_hospital")
    assert isinstance(sc, Scenario)
    return replace(sc, run=replace(sc.run, days=days, warmup_days=warmup_days))


@pytest.fixture(scope="session")
def short_hospital() -> Scenario:
    return hospital()


@pytest.fixture(scope="session")
def hospital_run(short_hospital: Scenario) -> ReplicationResult:
    return run_replication(short_hospital, 0, seed=3, keep_tables=True)
