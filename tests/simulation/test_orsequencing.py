"""OR case sequencing: vectorised evaluation, search, baselines, CP-SAT, ICU timing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simulation import Case, Dist, Plan, SurgeryDay, recommend_icu_timing, sequence_day, solve_cpsat
from simulation.orsequencing import (
    evaluate,
    first_come,
    longest_first,
    random_candidates,
    scenarios,
    score_plan,
    suggest_swaps,
)


def day(means: list[float], rooms: int = 2, **kw: float) -> SurgeryDay:
    cases = tuple(
        Case(f"case{i}", Dist.lognormal(m, 0.3 * m), needs_icu=(i == 0))
        for i, m in enumerate(means)
    )
    return SurgeryDay(cases, rooms, **kw)


def brute_force(d: SurgeryDay, plan: Plan, durations: np.ndarray) -> tuple[float, float, float]:
    """A plain loop over scenarios and rooms: the reference for the vectorised code."""
    util, bad, cancelled = [], [], []
    for row in durations:
        used, over, n_cancelled = 0.0, False, 0
        for room in plan.rooms:
            t, end = 0.0, 0.0
            for i in room:
                if t > d.last_start:
                    n_cancelled += 1
                    continue
                end = t + row[i]
                used += max(0.0, min(end, d.session_minutes) - t)
                t = end + d.turnover_minutes
            over |= end - d.session_minutes > d.overtime_tolerance_minutes
        util.append(used / (d.session_minutes * d.rooms))
        bad.append(over or n_cancelled > 0)
        cancelled.append(n_cancelled)
    return float(np.mean(util)), float(np.mean(bad)), float(np.mean(cancelled))


def test_vectorised_evaluation_matches_a_plain_loop() -> None:
    d = day([60, 90, 150, 200, 45, 120, 180, 75], rooms=3)
    durations = scenarios(d, 300, seed=2)
    order, seg = random_candidates(8, 3, 25, np.random.default_rng(1))
    r = evaluate(d, order, seg, durations)
    for k in range(25):
        plan = Plan.from_arrays(order[k], seg[k], 3)
        u, risk, cancelled = brute_force(d, plan, durations)
        assert r["utilisation"][k] == pytest.approx(u, rel=1e-4)
        assert r["risk"][k] == pytest.approx(risk)
        assert r["expected_cancelled"][k] == pytest.approx(cancelled)


def test_baselines_place_every_case_once() -> None:
    d = day([60, 90, 150, 200, 45, 120])
    for plan in (first_come(d), longest_first(d)):
        assert sorted(i for room in plan.rooms for i in room) == list(range(6))
    lpt = longest_first(d)
    assert lpt.rooms[0][0] == 3  # the 200-minute case goes first


def test_search_is_at_least_as_good_as_both_baselines() -> None:
    d = day([60, 90, 150, 120, 45, 100, 80, 30])
    res = sequence_day(d, candidates=3000, n_scenarios=300, seed=3)
    best = res.best_score.objective(d.max_risk)
    for _plan, score in res.baselines.values():
        assert best >= score.objective(d.max_risk) - 1e-9
    assert not res.overbooked
    assert res.best_score.risk <= d.max_risk
    assert set(res.table()["plan"]) == {"optimised", "first_come", "longest_first"}


def test_an_overbooked_day_is_flagged_with_a_postponement() -> None:
    d = day([200, 180, 150, 160, 120, 140, 90, 100])  # 19 h of cases for 16 h of rooms
    res = sequence_day(d, candidates=2000, n_scenarios=200, seed=1)
    assert res.overbooked
    assert res.suggestions
    assert any("postpone" in s for s in res.suggestions)


def test_cpsat_solves_a_small_day_as_well_as_exhaustive_search() -> None:
    d = day([120, 90, 150, 60, 100, 45])
    durations = scenarios(d, 60, seed=4)
    plan, status = solve_cpsat(d, durations=durations)
    assert status == "OPTIMAL"
    # Exhaustive over room assignments (order within rooms does not change load).
    best_used = -1.0
    for assign in itertools.product(range(2), repeat=6):
        rooms = tuple(tuple(i for i in range(6) if assign[i] == r) for r in range(2))
        loads = np.stack([durations[:, list(room)].sum(1) + 30 * len(room) for room in rooms])
        over = (loads > d.session_minutes + d.overtime_tolerance_minutes + 30).any(axis=0)
        if over.sum() <= int(d.max_risk * 60):
            used = np.minimum(np.rint(loads), d.session_minutes).sum()
            best_used = max(best_used, float(used))
    cp_loads = np.stack(
        [np.rint(durations[:, list(room)]).sum(1) + 30 * len(room) for room in plan.rooms]
    )
    cp_used = float(np.minimum(cp_loads, d.session_minutes).sum())
    assert cp_used >= best_used - 1.0 * len(durations)


def test_suggested_swaps_reduce_the_risk_of_a_bad_plan() -> None:
    d = day([200, 180, 60, 45, 50, 30])
    bad = Plan(((0, 1, 2), (3, 4, 5)))  # the two long cases in one room
    durations = scenarios(d, 300, seed=5)
    before = score_plan(d, bad, durations).risk
    assert before > 0.3
    swaps = suggest_swaps(d, bad, durations)
    assert swaps
    # Best first: "swap case1 (room 1) with case3 (room 2): bad-day risk 45% → 2%".
    after = float(swaps[0].rsplit("→", 1)[1].strip().rstrip("%")) / 100
    assert after < before - 0.2


def test_icu_cases_are_timed_away_from_a_full_icu() -> None:
    # ICU full (0 beds) for the first 30 hours in every replication, then 3 beds free.
    available = np.zeros((50, 49))
    available[:, 30:] = 3
    cases = [Case("big", Dist.lognormal(240, 60), needs_icu=True), Case("small", Dist.fixed(60))]
    table = recommend_icu_timing(cases, available, candidate_starts=[8, 32], max_risk=0.1)
    assert list(table["case"]) == ["big"]
    row = table.iloc[0]
    assert row["start_hours_ahead"] == 32
    assert row["action"] == "schedule"
    assert row["p_icu_full"] == 0.0


def test_icu_case_is_postponed_when_no_start_is_safe() -> None:
    available = np.zeros((20, 49))
    table = recommend_icu_timing(
        [Case("big", Dist.fixed(120), needs_icu=True)], available, candidate_starts=[8, 32]
    )
    assert table.iloc[0]["action"] == "postpone"
