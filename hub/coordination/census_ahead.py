"""The region's census read on a second connection, while the evaluation reads the rest.

The census read (``inputs.region_states``) is the longest statement of an evaluation: for a
national region ≈ 150–200 ms of the server aggregating 60,000 live unit rows, during which
the worker waits. The evaluation's other reads (its priors, the pending advice, the
decisions in force, the live alerts) do not depend on it and take about as long. Read on
a second connection, in a thread of this process, the census arrives while those run.

Only the census goes there: the evaluation never writes it, and ingestion commits it in
its own transactions, so a read on another connection sees what the evaluation's own
connection would (each statement of a READ COMMITTED transaction sees the latest commits).
Hence only when the evaluation's transaction is the outermost one: inside an enclosing
transaction (a test's, or a caller's with its own writes) uncommitted census rows would be
invisible to another connection, and the read stays on the caller's connection. It also
stays there if the second connection fails (the evaluation is never lost to it).

The thread keeps its own Django connection between evaluations (``CONN_MAX_AGE`` and the
health checks apply to it as to any), one per worker process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from django.db import connection, connections

from hub.coordination import inputs
from hub.coordination.state import HospitalState
from hub.registry.models import Region

logger = logging.getLogger("hub.coordination")

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="census-ahead")
    return _POOL


def _read(region: Region, now: datetime) -> inputs.CensusRows:
    conn = connections["default"]  # this thread's own
    conn.close_if_unusable_or_obsolete()
    return inputs.census_rows(region, now)


def start(region: Region, now: datetime) -> Callable[[], list[HospitalState]]:
    """Start reading the region's census; call the result for the states. Called inside the
    evaluation's transaction: on a second connection when that transaction is the
    outermost, else (and whenever the second connection fails) on this one, when called.
    The thread only reads (waiting on the server, the lock on the interpreter free); the
    states are built from its rows on the caller's thread."""
    if connection.savepoint_ids or not connection.in_atomic_block:
        return lambda: inputs.region_states(region, now)
    with connection.cursor() as cursor:
        inputs.tune_transaction(cursor)  # the evaluation's own transaction, as the read would
    future: Future[inputs.CensusRows] = _pool().submit(_read, region, now)

    def result() -> list[HospitalState]:
        try:
            read = future.result()
        except Exception:
            logger.warning(
                "census read on the second connection failed; reading on this one",
                exc_info=True,
            )
            read = inputs.census_rows(region, now)
        return inputs.states_from_rows(read, now)

    return result


def close() -> None:
    """Close the second connection, if open (before a test database is dropped)."""
    if _POOL is not None:
        _POOL.submit(lambda: connections["default"].close()).result()
