"""Celery task metrics and log context, from Celery's signals (connected in hub/celery.py).

Task duration and outcome by task name, failures by exception class; the worker's main
process serves them on ``METRICS_PORT``. With the prefork pool the tasks run in child
processes, so the chart sets ``PROMETHEUS_MULTIPROC_DIR`` and the main process serves the
merged files. Each task's log lines carry its name and id (``LOG_FORMAT=json``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from contextvars import Token
from typing import Any

from celery import signals
from prometheus_client import Counter, Histogram

from deid.logformat import pop_context, push_context
from hub.observability.exposition import (
    clear_multiprocess_dir,
    metrics_port,
    multiprocess_dir,
    serve_metrics,
)

log = logging.getLogger("hub.observability.celery")

TASK_DURATION = Histogram(
    "hub_celery_task_duration_seconds",
    "Run time of Celery tasks, by task name and final state",
    ["task", "state"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0),
)
TASKS = Counter(
    "hub_celery_tasks", "Celery tasks finished, by task name and state", ["task", "state"]
)
TASK_FAILURES = Counter(
    "hub_celery_task_failures",
    "Celery tasks that raised, by task name and exception class",
    ["task", "exception"],
)

# task id -> (start, log-context token). One entry per task running in this process.
_running: dict[str, tuple[float, Token[dict[str, str]]]] = {}


def _name(task: Any) -> str:
    return str(getattr(task, "name", None) or "unknown")


def task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None:
        return
    token = push_context(task=_name(task), task_id=task_id)
    _running[task_id] = (time.perf_counter(), token)


def task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    entry = _running.pop(task_id, None) if task_id is not None else None
    if entry is None:
        return
    started, token = entry
    label = state or "UNKNOWN"
    TASK_DURATION.labels(_name(task), label).observe(time.perf_counter() - started)
    TASKS.labels(_name(task), label).inc()
    # ValueError: finished in another context than it started (eager calls in tests).
    with contextlib.suppress(ValueError):
        pop_context(token)


def task_failed(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    TASK_FAILURES.labels(_name(sender), type(exception).__name__).inc()


def worker_starting(**_: Any) -> None:
    """Main worker process, before the pool forks: forget the previous run's samples."""
    clear_multiprocess_dir()


def worker_ready(**_: Any) -> None:
    """Main worker process, pool running: serve the (merged) metrics."""
    port = metrics_port()
    if port is not None:
        serve_metrics(port)
        log.info("metrics on port %d", port)


def worker_child_exit(pid: int | None = None, **_: Any) -> None:
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


def connect() -> None:
    """Connect the handlers (weak=False: they are module functions, kept alive anyway)."""
    signals.task_prerun.connect(task_started, weak=False)
    signals.task_postrun.connect(task_finished, weak=False)
    signals.task_failure.connect(task_failed, weak=False)
    signals.worker_init.connect(worker_starting, weak=False)
    signals.worker_ready.connect(worker_ready, weak=False)
    signals.worker_process_shutdown.connect(worker_child_exit, weak=False)
