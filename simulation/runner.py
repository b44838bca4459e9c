"""Running replications: one at a time (for a Celery task) or many across processes."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from simulation.arrivals import replication_seed
from simulation.engine import Environment, Model
from simulation.params import RegionalScenario, Scenario
from simulation.regional import DiversionPolicy, run_regional_replication
from simulation.results import ReplicationResult, Results, collect, summarise
from simulation.scenario import AnyScenario, Data, load_scenario

ScenarioLike = str | Path | Data | AnyScenario


def build_model(scenario: Scenario, replication: int = 0, seed: int = 1) -> Model:
    """A ready-to-run model in its own environment (for callers that drive it)."""
    env = Environment(initial_time=scenario.run.start_hour)
    return Model(env, scenario, replication_seed(seed, replication))


# Objects allocated between young-generation passes of the cyclic garbage collector while
# a replication runs (Python's default is 700). See `fewer_gc_passes`.
GC_YOUNG_THRESHOLD = 50_000


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Run the cyclic garbage collector less often inside the block.

    A replication allocates a container for nearly every event (heap entries, records,
    callback lists); nearly all die by reference counting, yet at the default threshold
    the collector makes a pass every 700 allocations and moves the survivors through the
    generations: a fifth of a hospital-month's CPU time. Passes every 50,000 allocations
    cost a few MB of memory. Results do not depend on it: nothing in a model runs at
    collection time. The previous thresholds come back on leaving the block.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_YOUNG_THRESHOLD), old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def run_replication(
    scenario: ScenarioLike,
    replication: int = 0,
    seed: int = 1,
    *,
    keep_tables: bool = False,
    policy: DiversionPolicy | None = None,
) -> ReplicationResult:
    """Run ONE replication. Its random streams come from
    ``SeedSequence(seed).spawn(n)[replication]``, so replications can run anywhere
    (processes here, a Celery group in the hub) and combine with :func:`summarise`."""
    sc = load_scenario(scenario)
    with fewer_gc_passes():
        if isinstance(sc, RegionalScenario):
            return run_regional_replication(sc, replication, seed, policy=policy)
        model = build_model(sc, replication, seed)
        model.env.run(until=sc.run.end)
        return collect(
            model, scenario=sc.name, replication=replication, seed=seed, keep_tables=keep_tables
        )


Task = tuple[AnyScenario, int, int, DiversionPolicy | None]


def _run_task(task: Task) -> ReplicationResult:
    scenario, replication, seed, policy = task
    return run_replication(scenario, replication, seed, policy=policy)


def _worker_start() -> None:
    """In a fresh pool worker: move everything inherited from the parent (numpy, pandas,
    the scenario ...) out of the collector's reach, so its full passes walk only what the
    replications allocate and do not touch (and copy) the pages shared with the parent."""
    gc.freeze()


def default_processes() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_tasks(
    tasks: Sequence[Task], processes: int | None = None, *, progress: bool | None = None
) -> list[ReplicationResult]:
    """Run many (scenario, replication, seed, policy) tasks, in parallel when asked."""
    n = default_processes() if processes is None else processes
    show = sys.stderr.isatty() if progress is None else progress
    bar: Any = tqdm(total=len(tasks), disable=not show, unit="rep", leave=False)
    try:
        # A daemonic process (a Celery prefork worker) may not start children: run
        # serially there; the hub fans replications out as tasks instead.
        if n <= 1 or len(tasks) <= 1 or multiprocessing.current_process().daemon:
            out = []
            for t in tasks:
                out.append(_run_task(t))
                bar.update(1)
            return out
        # fork starts workers in milliseconds; spawn would re-import numpy, pandas and
        # scipy in each (about a second apiece), a large share of a what-if's budget.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        with ProcessPoolExecutor(
            max_workers=min(n, len(tasks)), mp_context=ctx, initializer=_worker_start
        ) as pool:
            out = []
            for r in pool.map(_run_task, tasks, chunksize=1):
                out.append(r)
                bar.update(1)
            return out
    finally:
        bar.close()


def run_scenario(
    scenario: ScenarioLike,
    replications: int = 30,
    seed: int = 1,
    processes: int | None = None,
    *,
    policy: DiversionPolicy | None = None,
    progress: bool | None = None,
) -> Results:
    """Run ``replications`` independent replications and summarise them (means, 95% CIs).

    ``processes=None`` uses every available core; ``1`` runs in this process.
    """
    sc = load_scenario(scenario)
    tasks: list[Task] = [(sc, i, seed, policy) for i in range(replications)]
    return summarise(run_tasks(tasks, processes, progress=progress))
