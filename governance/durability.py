"""Writes that commit without waiting for the disk: a read's audit event, a heartbeat.

PostgreSQL answers a commit once its WAL is flushed to disk (``synchronous_commit = on``, the
server default, kept). Every API read writes one row, its audit event, and every heartbeat
writes the agent's liveness columns, so with the default each answer waits for a flush:
0.4 ms on this machine's quiet disk, 14–18 ms a flush while another process loaded the same
disk (``pg_test_fsync``). At 500 requests/s with four web workers that wait is the whole
budget: the load benchmark then answered 62 requests/s, its workers idle on ``WALSync``
(docs/hub.md, "API load").

These two writes may be lost in a crash of the *database server* (not of the web process)
within the WAL writer's delay (``wal_writer_delay``, 200 ms; at most three of them): the
answer went out, its event or heartbeat did not reach the disk. Nothing else is relaxed.
Changes (policies, decisions, grants, erasure, ingestion) and their audit events commit as
before. The WAL is replayed in order, so what a crash keeps is always a prefix of what was
committed: the audit chain (``governance.chain``) links only rows already committed, and a
link is written by a normal commit, which flushes every earlier WAL record with it. The
chain never points at an event the disk does not hold.

``GOVERNANCE_AUDIT_READS_DURABLE = True`` (environment ``GOVERNANCE_AUDIT_READS_DURABLE=1``)
makes a read's event wait for the disk again, where a sharing agreement asks for it.

How: ``UNFLUSHED`` is a condition for the statement's ``WHERE`` clause that sets
``synchronous_commit`` to off for the current transaction only (``set_config(…, true)``).
A statement run in autocommit is its own transaction, so the setting covers that statement
and its commit, and the session's setting is untouched for the next statement (a persistent
connection keeps its default). Inside a transaction it would relax the whole transaction,
so ``relaxable`` says when the condition may be used.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

UNFLUSHED = "set_config('synchronous_commit', 'off', true) IS NOT NULL"


def relaxable(connection: Any) -> bool:
    """The connection's next statement commits on its own (autocommit, no atomic block)."""
    return bool(connection.get_autocommit()) and not connection.in_atomic_block


def reads_durable() -> bool:
    """A read's audit event waits for the disk (``GOVERNANCE_AUDIT_READS_DURABLE``)."""
    return bool(getattr(settings, "GOVERNANCE_AUDIT_READS_DURABLE", False))
