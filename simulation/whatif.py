"""What-if: a base scenario plus changes → a table of deltas with 95% CIs; and the
inverse question, the smallest staffing level that meets a target."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from simulation.changes import CHANGE_KEYS, apply_changes, describe
from simulation.params import Scenario
from simulation.results import ReplicationResult, confidence_interval
from simulation.runner import ScenarioLike, Task, run_tasks
from simulation.scenario import load_scenario

# The headline outputs a what-if table shows unless asked for others.
DEFAULT_METRICS = (
    "ed.wait_mean_h",
    "ed.wait_p95_h",
    "ed.los_mean_h",
    "ed.los_p95_h",
    "ed.within_4h",
    "ed.boarding_hours_per_day",
    "ed.offload_mean_min",
    "or.utilisation",
    "or.cases_done_per_day",
    "or.cancelled_no_bed_per_day",
    "or.overtime_h_per_session",
)

Changes = Mapping[str, Any]


def _variants(changes: Changes | Sequence[Changes] | Mapping[str, Changes]) -> dict[str, Changes]:
    if isinstance(changes, Mapping):
        if set(changes) <= set(CHANGE_KEYS):
            return {describe(changes): changes}
        return {str(k): v for k, v in changes.items()}
    return {describe(c): c for c in changes}


def whatif(
    base: ScenarioLike,
    changes: Changes | Sequence[Changes] | Mapping[str, Changes],
    replications: int = 30,
    seed: int = 1,
    *,
    processes: int | None = None,
    metrics: Sequence[str] | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run the base and each variant with the same seeds and tabulate the differences.

    ``changes`` is one mapping (e.g. ``{"or_rooms": 1}``), a list of them, or a mapping
    of label → changes. Base and variant replication *i* share their random streams, so
    the delta's interval comes from paired differences and is much tighter than the
    difference of two independent intervals would be.

    Returns one row per (variant, metric): base and variant means, the delta with its
    95% CI, and whether the interval excludes zero.
    """
    scenario = load_scenario(base)
    if not isinstance(scenario, Scenario):
        raise TypeError("what-if works on hospital scenarios; use regional.compare_policies")
    variants = _variants(changes)
    scenarios = {"base": scenario} | {
        label: apply_changes(scenario, ch) for label, ch in variants.items()
    }
    tasks: list[Task] = [
        (sc, i, seed, None) for sc in scenarios.values() for i in range(replications)
    ]
    results = run_tasks(tasks, processes, progress=progress)
    by_label: dict[str, list[ReplicationResult]] = {
        label: results[k * replications : (k + 1) * replications]
        for k, label in enumerate(scenarios)
    }
    base_runs = by_label["base"]
    available = set(base_runs[0].metrics)
    wanted = [m for m in (metrics or DEFAULT_METRICS) if m in available]
    if metrics is None:
        wanted += sorted(
            m
            for m in available
            if m.startswith("unit.") and m.endswith(("occupancy_mean", "wait_mean_h"))
        )
    rows = []
    for label in variants:
        runs = by_label[label]
        for m in wanted:
            b = [r.metrics.get(m, math.nan) for r in base_runs]
            v = [r.metrics.get(m, math.nan) for r in runs]
            d = [y - x for x, y in zip(b, v, strict=True)]
            delta, _sd, lo, hi = confidence_interval(d)
            rows.append(
                {
                    "variant": label,
                    "metric": m,
                    "base": confidence_interval(b)[0],
                    "variant_mean": confidence_interval(v)[0],
                    "delta": delta,
                    "ci_low": lo,
                    "ci_high": hi,
                    "significant": bool(lo > 0 or hi < 0),
                }
            )
    return pd.DataFrame(rows)


@dataclass
class StaffingResult:
    """The smallest level meeting the target (None if even ``high`` fails), and every
    level evaluated with its metric mean and 95% CI."""

    level: int | None
    metric: str
    threshold: float
    evaluated: pd.DataFrame


def smallest_staffing(
    base: ScenarioLike,
    *,
    metric: str = "ed.wait_p95_h",
    threshold: float = 4.0,
    lever: str = "ed_clinicians_per_shift",
    low: int = 1,
    high: int = 30,
    replications: int = 10,
    seed: int = 1,
    processes: int | None = None,
    confident: bool = True,
) -> StaffingResult:
    """Smallest ``lever`` level in [low, high] with ``metric`` below ``threshold``.

    With ``confident`` the upper end of the 95% CI must be below the threshold, not
    only the mean: a rota should meet the target in a bad month too. Assumes the
    metric falls as the level rises, and bisects, so about log2(high - low) levels run.
    """
    scenario = load_scenario(base)
    if not isinstance(scenario, Scenario):
        raise TypeError("smallest_staffing works on hospital scenarios")
    seen: dict[int, tuple[float, float, float]] = {}

    def evaluate(level: int) -> bool:
        if level not in seen:
            sc = apply_changes(scenario, {lever: level})
            tasks: list[Task] = [(sc, i, seed, None) for i in range(replications)]
            values = [r.metrics.get(metric, math.nan) for r in run_tasks(tasks, processes)]
            mean, _sd, lo, hi = confidence_interval(values)
            seen[level] = (mean, lo, hi)
        mean, _lo, hi = seen[level]
        value = hi if confident and not math.isnan(hi) else mean
        return value < threshold

    found: int | None = None
    if evaluate(high):
        lo_fail, hi_ok = low - 1, high
        if evaluate(low):
            hi_ok = low
        else:
            lo_fail = low
        while hi_ok - lo_fail > 1:
            mid = (lo_fail + hi_ok) // 2
            if evaluate(mid):
                hi_ok = mid
            else:
                lo_fail = mid
        found = hi_ok
    table = pd.DataFrame(
        [
            {"level": k, "mean": v[0], "ci_low": v[1], "ci_high": v[2]}
            for k, v in sorted(seen.items())
        ]
    )
    table["meets_target"] = (
        table["ci_high"].where(table["ci_high"].notna(), table["mean"]) < threshold
        if confident
        else table["mean"] < threshold
    )
    return StaffingResult(found, metric, threshold, table)
