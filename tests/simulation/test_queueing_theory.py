"""Validation against queueing theory: Erlang C, Erlang B, M/G/∞ and Little's law."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from simulation import Dist, load_scenario, run_replication, run_scenario
from simulation.changes import apply_changes
from simulation.params import LosRule, Scenario


def erlang_b(c: int, a: float) -> float:
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def scenario(name: str) -> Scenario:
    sc = load_scenario(name)
    assert isinstance(sc, Scenario)
    return sc


def test_erlang_formulas_match_textbook_values() -> None:
    # Known values: B(10, 8) = 0.1217, C(10, 8) = 0.4092.
    assert erlang_b(10, 8.0) == pytest.approx(0.12166, abs=1e-4)
    assert erlang_c(10, 8.0) == pytest.approx(0.40918, abs=1e-4)


@pytest.mark.slow
def test_mmc_reproduces_erlang_c_wait_probability_and_mean_wait_within_3_percent() -> None:
    # M/M/10 at utilisation 0.8; about 2.2 million customers over 32 replications, which
    # puts the 95% interval of the mean wait within about ±2.5%.
    sc = apply_changes(scenario("mmc_check"), {"run_days": 365})
    res = run_scenario(sc, replications=32, seed=11, progress=False)
    p_wait = erlang_c(10, 8.0)
    mean_wait = p_wait / (10 * 1.0 - 8.0)
    assert res.mean("unit.servers.utilisation") == pytest.approx(0.8, rel=0.01)
    assert res.mean("unit.servers.p_wait") == pytest.approx(p_wait, rel=0.03)
    assert res.mean("unit.servers.wait_mean_h") == pytest.approx(mean_wait, rel=0.03)
    lo, hi = res.ci("unit.servers.wait_mean_h")
    assert (hi - lo) / 2 < 0.03 * mean_wait
    # Little's law for the queue as well: Lq = λ Wq.
    assert res.mean("unit.servers.queue_mean") == pytest.approx(8.0 * mean_wait, rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize(
    "dist",
    [Dist.exponential(240.0), Dist.lognormal(240.0, 288.0)],
    ids=["exponential", "lognormal"],
)
def test_loss_unit_reproduces_erlang_b_blocking_whatever_the_stay_distribution(
    dist: Dist,
) -> None:
    # 20 beds, 1.6 admissions a day, mean stay 10 days: 16 erlangs offered.
    base = scenario("erlang_b_check")
    run = replace(base.run, days=4000, warmup_days=60, snapshot_hours=24)
    sc = replace(base, los=(LosRule("beds", dist),), run=run)
    res = run_scenario(sc, replications=16, seed=5, progress=False)
    expected = erlang_b(20, 16.0)
    assert res.mean("unit.beds.blocked_share") == pytest.approx(expected, rel=0.06)
    # Carried load = offered × (1 - B): the mean number of occupied beds.
    assert res.mean("unit.beds.occupancy_mean") == pytest.approx(16 * (1 - expected), rel=0.02)


@pytest.mark.slow
def test_uncapacitated_audit_gives_poisson_occupancy_and_p_all_beds_full() -> None:
    # An M/G/∞ unit: occupancy is Poisson with mean λ E[S] whatever the stay shape, so the
    # audit's P(an arrival finds all n beds full) must follow the Poisson tail.
    base = scenario("erlang_b_check")
    units = (replace(base.units[0], beds=None),)
    sc = replace(
        base,
        units=units,
        los=(LosRule("beds", Dist.gamma(240.0, 200.0)),),
        run=replace(base.run, days=25000, warmup_days=60, snapshot_hours=24 * 7),
    )
    # Consecutive arrivals see nearly the same occupancy, so the audit needs many of
    # them: about 320,000 here for a standard error near 0.005.
    results = run_scenario(sc, replications=8, seed=2, progress=False)
    audit = results.audit("beds", max_beds=40)
    offered = 1.6 * 10
    for n in range(8, 30, 3):
        p_find_full = audit["p_arrival_finds_all_full"].to_numpy()[n]
        assert p_find_full == pytest.approx(stats.poisson.sf(n - 1, offered), abs=0.02), n
    mean_occupancy = float((audit["beds"] * audit["p_occupancy"]).sum())
    assert mean_occupancy == pytest.approx(offered, rel=0.03)


def test_audit_probability_of_all_beds_full_falls_as_beds_rise() -> None:
    res = run_scenario("unit_network", replications=2, seed=3, processes=1, progress=False)
    audit = res.audit("rehab")
    p = audit["p_arrival_finds_all_full"].to_numpy()
    assert p[0] == pytest.approx(1.0)
    assert np.all(np.diff(p) <= 1e-12)
    assert p[-1] < 0.05


@pytest.mark.parametrize(
    "name", ["mmc_check", "erlang_b_check", "unit_network", "general_hospital", "small_region"]
)
def test_littles_law_holds_on_every_run(name: str) -> None:
    # Sample-path form over the measurement window (exact up to rounding): the time
    # integral of occupancy equals the in-window time summed over every patient.
    sc = load_scenario(name)
    if isinstance(sc, Scenario) and name in ("mmc_check", "erlang_b_check"):
        sc = replace(sc, run=replace(sc.run, days=40))
    for rep in range(2):
        metrics = run_replication(sc, rep, seed=7).metrics
        errors = {k: v for k, v in metrics.items() if k.endswith("little_identity_error")}
        assert errors
        assert max(errors.values()) < 1e-9, errors


def test_littles_law_holds_statistically_on_a_long_run() -> None:
    # Stays of up to six weeks against 2,000 days: the edge effects (stays cut by the
    # window) are well under the tolerance.
    base = scenario("unit_network")
    sc = replace(base, run=replace(base.run, days=2000, snapshot_hours=24))
    metrics = run_replication(sc, 0, seed=4).metrics
    for unit in ("amu", "medicine", "stroke", "rehab"):
        lam_w = metrics[f"unit.{unit}.little_lambda_W"]
        assert metrics[f"unit.{unit}.little_L"] == pytest.approx(lam_w, rel=0.03), unit
