"""The patient-flow engine: reproducibility, streams, and the behaviour of the flows."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from simulation import Dist, ReplicationResult, run_replication, run_scenario
from simulation.arrivals import ArrivalProfile, replication_seed, stream
from simulation.changes import apply_changes
from simulation.params import (
    LosRule,
    PatientClass,
    Route,
    RunSettings,
    Scenario,
    UnitParams,
)
from tests.simulation.conftest import hospital


def tiny_network(**run: float) -> Scenario:
    return Scenario(
        name="tiny",
        units=(UnitParams("a", 5, discharge_profile=False), UnitParams("b", 3)),
        los=(LosRule("a", Dist.exponential(2.0)), LosRule("b", Dist.lognormal(10.0, 6.0))),
        classes=(PatientClass("p", "a", ArrivalProfile.constant(1.5)),),
        routes=(Route("a", (("b", 0.5), ("exit", 0.5))),),
        run=RunSettings(days=run.get("days", 20), warmup_days=run.get("warmup_days", 2)),
        discharge_hours=tuple([0.0] * 10 + [1.0] * 8 + [0.0] * 6),
    )


def test_same_seed_reproduces_a_run_bit_for_bit(short_hospital: Scenario) -> None:
    a = run_replication(short_hospital, 2, seed=9)
    b = run_replication(short_hospital, 2, seed=9)
    assert a.metrics == b.metrics or all(
        (math.isnan(v) and math.isnan(b.metrics[k])) or v == b.metrics[k]
        for k, v in a.metrics.items()
    )
    assert a.series == b.series


def test_different_replications_and_seeds_differ(short_hospital: Scenario) -> None:
    a = run_replication(short_hospital, 0, seed=1).metrics["ed.wait_mean_h"]
    b = run_replication(short_hospital, 1, seed=1).metrics["ed.wait_mean_h"]
    c = run_replication(short_hospital, 0, seed=2).metrics["ed.wait_mean_h"]
    assert len({a, b, c}) == 3


def test_replication_seed_is_the_spawned_child() -> None:
    children = np.random.SeedSequence(42).spawn(5)
    for i, child in enumerate(children):
        assert (replication_seed(42, i).generate_state(4) == child.generate_state(4)).all()


def test_named_streams_are_independent_of_other_streams() -> None:
    seed = replication_seed(1, 0)
    first = stream(seed, "los:ward:x:exit").random(3)
    stream(seed, "something else").random(1000)
    assert (stream(seed, "los:ward:x:exit").random(3) == first).all()
    assert not (stream(seed, "los:ward:x:icu").random(3) == first).all()


def test_one_replication_equals_the_same_replication_of_a_parallel_run() -> None:
    sc = tiny_network()
    parallel = run_scenario(sc, replications=3, seed=5, processes=2, progress=False)
    single = run_replication(sc, 2, seed=5)
    assert parallel.runs[2].metrics == single.metrics
    serial = run_scenario(sc, replications=3, seed=5, processes=1, progress=False)
    pd.testing.assert_frame_equal(parallel.table, serial.table)


def test_changing_one_unit_leaves_other_units_random_numbers_alone() -> None:
    # Common random numbers: arrivals into "a" are drawn from their own stream, so
    # adding beds to "b" cannot change them.
    sc = tiny_network()
    base = run_replication(sc, 0, seed=1)
    more = run_replication(apply_changes(sc, {"staffed_beds": {"b": 5}}), 0, seed=1)
    assert base.metrics["unit.a.arrivals_per_day"] == more.metrics["unit.a.arrivals_per_day"]


def test_arrivals_follow_the_hour_of_week_profile() -> None:
    rates = np.zeros(168)
    rates[[9, 33, 57]] = 30.0  # only at 09:00 on Monday to Wednesday
    profile = ArrivalProfile(tuple(rates))
    times = profile.times(np.random.default_rng(1), 0.0, 168 * 50)
    hours = np.floor(times).astype(int) % 168
    assert set(hours.tolist()) == {9, 33, 57}
    assert len(times) / 50 == pytest.approx(90, rel=0.05)
    assert profile.expected(0, 168 * 50) == pytest.approx(90 * 50)


def test_full_unit_makes_transfers_wait_holding_their_old_bed() -> None:
    # "b" has 3 beds for far more demand: patients finishing in "a" wait there.
    res = run_replication(tiny_network(days=30), 0, seed=1, keep_tables=True)
    m = res.metrics
    assert m["unit.b.utilisation"] > 0.95
    assert m["unit.b.p_wait"] > 0.5
    stays = res.tables["stays"]
    waited = stays[(stays["unit"] == "a") & (stays["next"] == "b")]
    assert (waited["t_release"] - waited["t_ready"]).mean() > 1.0


def test_block_policy_turns_patients_away_instead_of_queueing() -> None:
    sc = tiny_network()
    blocked = replace(sc, units=(sc.units[0], replace(sc.units[1], on_full="block")))
    m = run_replication(blocked, 0, seed=1).metrics
    assert m["unit.b.blocked_share"] > 0.3
    assert m["unit.b.p_wait"] == 0.0


def test_discharges_home_happen_in_the_discharge_hours() -> None:
    res = run_replication(tiny_network(), 0, seed=2, keep_tables=True)
    stays = res.tables["stays"]
    home_from_b = stays[(stays["unit"] == "b") & (stays["next"] == "exit")]
    hours = np.floor(home_from_b["t_release"] % 24)
    assert len(hours) > 20
    assert hours.between(10, 17).all()
    # Unit "a" has no discharge profile: its exits happen around the clock.
    home_from_a = stays[(stays["unit"] == "a") & (stays["next"] == "exit")]
    assert (np.floor(home_from_a["t_release"] % 24) < 10).any()


def test_sicker_ed_patients_are_seen_sooner(hospital_run: ReplicationResult) -> None:
    visits = hospital_run.tables["visits"]
    wait = (visits["t_seen"] - visits["t_arrival"]).groupby(visits["acuity"]).mean()
    assert wait[1] < wait[3] < wait[5]


def test_ed_admissions_board_until_a_bed_is_free(hospital_run: ReplicationResult) -> None:
    visits = hospital_run.tables["visits"]
    admitted = visits[visits["destination"].isin(["ward_a", "ward_b", "ward_surg", "icu"])]
    assert 0.2 < len(admitted) / len(visits) < 0.4
    boarding = admitted["t_departure"] - admitted["t_decision"]
    assert (boarding >= 0).all()
    home = visits[visits["destination"] == ""]
    assert (home["t_departure"] == home["t_decision"]).all()


def test_ambulance_offload_waits_for_a_cubicle() -> None:
    sc = apply_changes(_hospital(), {"ed_beds": -30})
    m = run_replication(sc, 0, seed=1).metrics
    base = run_replication(_hospital(), 0, seed=1).metrics
    assert m["ed.offload_mean_min"] > base["ed.offload_mean_min"] + 10


def test_fewer_clinicians_lengthen_the_wait_to_be_seen() -> None:
    base = run_replication(_hospital(), 0, seed=1).metrics
    fewer = run_replication(apply_changes(_hospital(), {"ed_clinicians": -3}), 0, seed=1).metrics
    assert fewer["ed.wait_mean_h"] > base["ed.wait_mean_h"]
    assert fewer["ed.clinician_utilisation"] > base["ed.clinician_utilisation"]


def test_electives_are_cancelled_when_no_post_op_bed_is_free() -> None:
    base = run_replication(_hospital(), 0, seed=1).metrics
    tight = run_replication(
        apply_changes(_hospital(), {"staffed_beds": {"ward_surg": -25}}), 0, seed=1
    ).metrics
    assert tight["or.cancelled_no_bed_per_day"] > base["or.cancelled_no_bed_per_day"]
    assert tight["or.cases_done_per_day"] < base["or.cases_done_per_day"]
    assert 0.3 < base["or.utilisation"] < 1.0


def test_initial_occupancy_starts_units_near_their_typical_census() -> None:
    res = run_replication(_hospital(), 0, seed=1)
    first_hour = res.series["ward_b"][0]
    assert first_hour == pytest.approx(228, abs=25)


def _hospital() -> Scenario:
    return hospital(days=7, warmup_days=2)
