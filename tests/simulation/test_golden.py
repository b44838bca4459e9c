"""Seeded golden results: a refactor that changes any result must fail here.

If a change to the results is intended, regenerate with
``UPDATE_GOLDEN=1 pytest tests/simulation/test_golden.py -p no:django`` and commit the
JSON files with a note saying why the numbers moved.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from simulation import (
    Case,
    Dist,
    SurgeryDay,
    backtest,
    load_scenario,
    run_replication,
    sequence_day,
    synthetic_arrivals,
)
from simulation.params import RegionalScenario, Scenario

GOLDEN = Path(__file__).parent / "golden"


def _days(name: str, days: float) -> Scenario | RegionalScenario:
    sc = load_scenario(name)
    run = replace(sc.run, days=days)
    if isinstance(sc, RegionalScenario):
        hospitals = tuple(replace(h, scenario=replace(h.scenario, run=run)) for h in sc.hospitals)
        return replace(sc, run=run, hospitals=hospitals)
    return replace(sc, run=run)


def _metrics(name: str, days: float, seed: int) -> dict[str, Any]:
    return run_replication(_days(name, days), 0, seed).metrics


def _sequencing() -> dict[str, Any]:
    cases = tuple(
        Case(f"c{i}", Dist.lognormal(m, 0.3 * m)) for i, m in enumerate([60, 90, 150, 120, 45, 100])
    )
    res = sequence_day(SurgeryDay(cases, 2), candidates=2000, n_scenarios=200, seed=4)
    return {"rooms": [list(r) for r in res.best.rooms], **res.best_score.__dict__}


def _backtest() -> dict[str, Any]:
    table = backtest(synthetic_arrivals(weeks=60, seed=2), 3).table
    return {
        f"{r['method']}.{k}": r[k] for r in table.to_dict("records") for k in ("mae", "coverage80")
    }


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "mmc_check": lambda: _metrics("mmc_check", 30, 1),
    "general_hospital": lambda: _metrics("general_hospital", 7, 1),
    "unit_network": lambda: _metrics("unit_network", 60, 1),
    "small_region": lambda: _metrics("small_region", 4, 1),
    "or_sequencing": _sequencing,
    "backtest": _backtest,
}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        # Bit for bit in practice; the tiny tolerance only absorbs libm differences
        # between platforms in the last digit.
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("name", sorted(CASES))
def test_seeded_results_match_the_checked_in_golden_file(name: str) -> None:
    got = _clean(CASES[name]())
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(path.read_text())
    assert sorted(got) == sorted(want)
    moved = {k: (want[k], got[k]) for k in want if not _same(want[k], got[k])}
    assert not moved, f"results moved (golden, now): {moved}"
