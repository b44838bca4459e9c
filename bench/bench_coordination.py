"""Benchmark: re-evaluate diversion, surge and alerts for a 6,000-hospital region.

Goal (issue 6): the whole region in under 1 second on this machine. Synthetic data only: a
national network of hospitals scattered over a 1,000 × 1,000 km square, ambulances at 1 km a
minute, travel times to every hospital within 60 minutes. Four scenarios:

- ``normal``: ED occupancy around 82% (a few percent of EDs over capacity);
- ``winter``: around 93% (a bad winter week: many advisories and closures);
- ``saturated``: around 105% (most EDs over capacity; a quarter of the region diverts);
- ``collapse``: around 125% (most hospitals at closing pressure: the region load-balances,
  every hospital gets a shared-routing recommendation).

Each scenario is timed cold (no prior statuses: every hospital's first level is a change)
and steady (the next minute, with the previous minute's statuses and levels and figures
moved by a little noise: what the every-minute Celery task does). The baseline, measured in
the same run, is one plain pass over the hospitals reading every figure once: the least any
Python evaluation of the region has to do.

What is timed is what the task computes before it writes (``evaluate_and_word``): the rules,
the words of everything it stores (every recommendation's explanation, figures and route
texts, every surge change's explanation), with the collector paused as the task pauses it,
and the young collection the pause deferred. Figures are wall-clock (best and median of the
repeats) and CPU time, because the machine is shared; "rules alone" is the evaluation
without the words. The verdict is the worst median against the goal.

    .venv/bin/python bench/bench_coordination.py [--hospitals 6000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.coordination.config import RegionConfig
from hub.coordination.diversion import Neighbourhood, neighbourhood
from hub.coordination.gcpause import paused_gc
from hub.coordination.region import (
    NO_PRIORS,
    Priors,
    RegionEvaluation,
    carry_forward,
    evaluate_region,
)
from hub.coordination.state import (
    Capabilities,
    Forecast,
    ForecastPoint,
    HospitalState,
    StrokeLevel,
    TravelTimes,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SCENARIOS = {"normal": 0.82, "winter": 0.93, "saturated": 1.05, "collapse": 1.25}


def make_region(n: int, mean_occupancy: float, seed: int) -> list[HospitalState]:
    rng = random.Random(seed)
    states = []
    for i in range(n):
        cap = rng.randint(12, 90)
        occupancy = max(0.2, rng.gauss(mean_occupancy, 0.10))
        occ = round(cap * occupancy)
        pressure = max(0.0, occupancy - 0.8)
        boarding = round(cap * pressure * rng.uniform(0.5, 1.5) * 0.5)
        free_now = cap - occ
        icu_cap = rng.randint(6, 40)
        icu_occ = min(icu_cap + 1, round(icu_cap * rng.uniform(0.6, 0.95 + pressure)))
        icu_free = icu_cap - icu_occ
        icu_trend = rng.uniform(-0.6, 0.4)
        forecast = None
        if rng.random() < 0.85:  # 15% of sites have no forecast yet: "no forecast"
            trend = rng.uniform(-1.5, 1.0)
            forecast = Forecast(
                as_of=NOW - timedelta(minutes=rng.uniform(0, 60)),
                ed=tuple(
                    ForecastPoint(
                        horizon_hours=h,
                        p50=free_now + trend * h,
                        p10=free_now + trend * h - 2 - h,
                        p90=free_now + trend * h + 2 + h,
                    )
                    for h in range(1, 7)
                ),
                icu=tuple(
                    ForecastPoint(horizon_hours=h, p50=icu_free + icu_trend * h)
                    for h in range(1, 7)
                ),
            )
        ward_cap = rng.randint(80, 700)
        states.append(
            HospitalState(
                code=f"S{i:05d}",
                name=f"Synthetic hospital {i}",
                as_of=NOW - timedelta(minutes=rng.uniform(0, 3) if rng.random() > 0.01 else 30),
                capabilities=Capabilities(
                    trauma_level=rng.choice([None, None, None, 1, 2, 3, 4]),
                    stroke=rng.choice(list(StrokeLevel)),
                    stemi_pci=rng.random() < 0.35,
                    paediatrics=rng.random() < 0.5,
                    burns=rng.random() < 0.05,
                    psychiatry=rng.random() < 0.4,
                    maternity=rng.random() < 0.6,
                ),
                ed_capacity=cap,
                ed_occupied=occ,
                ed_waiting=round(cap * pressure * rng.uniform(0, 1)),
                ed_boarding=boarding,
                longest_boarding_minutes=rng.uniform(30, 200) + 1500 * pressure * rng.random(),
                over_4h_share=min(1.0, pressure * rng.uniform(0.5, 2.0)),
                ambulance_arrivals_per_hour=cap / 12,
                offload_p90_minutes=rng.uniform(10, 30) + 250 * pressure * rng.random(),
                handovers_over_30_min=round(20 * pressure * rng.random()),
                offload_as_of=NOW - timedelta(minutes=rng.uniform(0, 10)),
                icu_capacity=icu_cap,
                icu_occupied=icu_occ,
                ward_capacity=ward_cap,
                ward_occupied=round(ward_cap * min(1.05, rng.gauss(0.86 + pressure / 2, 0.05))),
                staffing_gap_share=rng.uniform(0, 0.15),
                forecast=forecast,
            )
        )
    return states


def make_travel(states: list[HospitalState], seed: int, within: float = 60.0) -> TravelTimes:
    """Minutes to every hospital within ``within`` minutes, by 1 km a minute as the crow
    flies times a road factor of 1.3."""
    rng = np.random.default_rng(seed)
    n = len(states)
    xy = rng.uniform(0, 1000, size=(n, 2))
    codes = [s.code for s in states]
    travel: dict[str, dict[str, float]] = {}
    for i in range(n):
        d = np.hypot(*(xy - xy[i]).T) * 1.3
        near = np.flatnonzero(d <= within)
        travel[codes[i]] = {codes[j]: round(float(d[j]), 1) for j in near.tolist() if j != i}
    return travel


def next_minute(states: list[HospitalState], seed: int) -> list[HospitalState]:
    """A minute later: every census one minute newer, figures moved by a little noise."""
    rng = random.Random(seed)
    out = []
    for s in states:
        change = rng.choice((-1, 0, 0, 1))
        out.append(
            dataclasses.replace(
                s,
                as_of=s.as_of + timedelta(minutes=1),
                ed_occupied=max(0, s.ed_occupied + change),
                offload_as_of=(s.offload_as_of or s.as_of) + timedelta(minutes=1),
            )
        )
    return out


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(best wall, median wall, median CPU) in seconds."""
    walls, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), statistics.median(walls), statistics.median(cpus)


@dataclasses.dataclass
class Timing:
    best: float
    median: float
    cpu: float
    rules_median: float
    last: RegionEvaluation

    def figures(self) -> str:
        return (
            f"best {self.best * 1000:6.0f} ms  median {self.median * 1000:6.0f} ms  "
            f"cpu {self.cpu * 1000:6.0f} ms  | rules alone {self.rules_median * 1000:5.0f} ms"
        )


def render_words(ev: RegionEvaluation) -> int:
    """What the service layer reads besides the decisions (``services._store_*``): every
    recommendation's explanation, figures and route rows' explanations, every surge
    change's explanation (events and stale-feed alerts carry theirs; a grouped threshold or
    forecast alert's words are made by the service only when it is raised or changes, so a
    cold case pays them in the database bench, not here)."""
    n = 0
    for rec in ev.diversion.recommendations:
        n += len(rec.explanation) + len(rec.figures)
        for route in rec.routes:
            n += len(route.explanation)
    for change in ev.surge.changes:
        n += len(change.explanation)
    return n


def evaluate_and_word(
    states: list[HospitalState],
    travel: Neighbourhood,
    priors: Priors,
    now: datetime,
    cfg: RegionConfig,
) -> int:
    """What the every-minute task computes around its writes: the evaluation, the words of
    everything it stores, with the collector paused as ``services.region_evaluate`` pauses
    it; then the evaluation dropped (the task is done with it once stored) and the young
    collection the pause deferred."""
    with paused_gc():
        ev = evaluate_region(states, travel, priors, now, cfg)
        n = render_words(ev)
        del ev
    gc.collect(1)
    return n


def measure(
    states: list[HospitalState],
    travel: Neighbourhood,
    priors: Priors,
    now: datetime,
    cfg: RegionConfig,
    repeat: int,
) -> Timing:
    best, median, cpu = timed(lambda: evaluate_and_word(states, travel, priors, now, cfg), repeat)
    _, rules_median, _ = timed(lambda: evaluate_region(states, travel, priors, now, cfg), repeat)
    last = evaluate_region(states, travel, priors, now, cfg)  # to describe and carry forward
    return Timing(best, median, cpu, rules_median, last)


def read_every_figure(states: list[HospitalState]) -> float:
    """The baseline: one plain pass over the region touching each figure once."""
    total = 0.0
    for s in states:
        total += s.ed_capacity + s.ed_occupied + (s.ed_waiting or 0) + (s.ed_boarding or 0)
        total += (s.longest_boarding_minutes or 0) + (s.offload_p90_minutes or 0)
        total += (s.icu_occupied or 0) + (s.ward_occupied or 0) + (s.staffing_gap_share or 0)
        total += (s.over_4h_share or 0) + (s.handovers_over_30_min or 0)
        total += (now_minus(s.as_of)) + (1 if s.forecast is not None else 0)
    return total


def now_minus(t: datetime) -> float:
    return (NOW - t).total_seconds()


def describe(ev: RegionEvaluation) -> str:
    d, s = ev.diversion, ev.surge
    levels = np.bincount(s.level, minlength=5)[1:].tolist()
    closed = sum(1 for r in d.recommendations if r.status.value == "closed")
    return (
        f"mode {d.mode.value}; {d.fresh_count} fresh; recommendations {len(d.recommendations)}"
        f" ({closed} close); status changes {len(d.changes)}; OPEL 1-4 {levels}, region "
        f"OPEL {s.region.level}; surge changes {len(s.changes)}; alerts {len(ev.alerts)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hospitals", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    cfg = RegionConfig()
    n = args.hospitals
    print(f"bench_coordination: {n} hospitals, {args.repeat} repeats, goal < 1 s per evaluation")
    t0 = time.perf_counter()
    base_states = make_region(n, SCENARIOS["normal"], args.seed)
    raw_travel = make_travel(base_states, args.seed)
    pairs = sum(len(v) for v in raw_travel.values())
    print(
        f"setup {time.perf_counter() - t0:.1f} s; travel pairs {pairs} "
        f"({pairs / n:.0f} per hospital within 60 min)"
    )
    t0 = time.perf_counter()
    travel = neighbourhood(raw_travel, cfg.diversion).prepare(tuple(s.code for s in base_states))
    print(
        f"neighbour lists sorted once per region (a worker keeps them until travel times "
        f"change): {(time.perf_counter() - t0) * 1000:.0f} ms"
    )
    best_base, _, _ = timed(lambda: read_every_figure(base_states), args.repeat)
    print(f"baseline (one plain pass reading every figure): {best_base * 1000:.1f} ms")
    worst = worst_cpu = 0.0
    for name, mean in SCENARIOS.items():
        states = make_region(n, mean, args.seed)
        cold = measure(states, travel, NO_PRIORS, NOW, cfg, args.repeat)
        print(f"\n[{name}] mean ED occupancy {mean:.0%}")
        print(f"  cold   {cold.figures()}")
        print(f"         {describe(cold.last)}")
        later = next_minute(states, args.seed + 1)
        steady = measure(
            later, travel, carry_forward(cold.last), NOW + timedelta(minutes=1), cfg, args.repeat
        )
        print(f"  steady {steady.figures()}  ({steady.median / best_base:.0f}× the baseline pass)")
        print(f"         {describe(steady.last)}")
        worst = max(worst, cold.median, steady.median)
        worst_cpu = max(worst_cpu, cold.cpu, steady.cpu)
    # The verdict uses each case's median run (rules and the words the task stores). On a
    # shared machine the wall clock also measures the other load: the CPU time is printed
    # beside it.
    verdict = "PASS" if worst < 1.0 else "FAIL"
    print(
        f"\nworst median of {args.repeat}: {worst * 1000:.0f} ms (worst median CPU "
        f"{worst_cpu * 1000:.0f} ms): {verdict} (goal < 1000 ms)"
    )
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
