"""Writes of the census app: the idempotent batch upsert, partition upkeep."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.string import BytesBinaryDumper

from governance import erasure, versions
from hub.census.ingest import CENSUS_COLUMNS, COUNT_FIELDS, FLOW_COLUMNS, IngestBatch

# Temporary tables live per connection; ON COMMIT DELETE ROWS empties them at every commit,
# so one batch never sees another's rows and no cleanup statement is needed.
_TEMP_TABLES = (
    "CREATE TEMP TABLE IF NOT EXISTS census_snap_in "
    "(LIKE census_censussnapshot INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS census_flow_in "
    "(LIKE census_flowevent INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
)

_SNAP_COLS = ", ".join(CENSUS_COLUMNS)
_FLOW_COLS = ", ".join(FLOW_COLUMNS)

_STATE_COLUMNS = (
    "hospital_id",
    "unit_id",
    "audience",
    "event_id",
    "observed_at",
    "as_of",
    "policy_version",
    *COUNT_FIELDS,
    "source",
    "last_message_at",
    "stale",
    "forecast",
    "suppressed",
    "produced_at",
    "received_at",
    "key_id",
    "via",
)
_STATE_COLS = ", ".join(_STATE_COLUMNS)
_STATE_UPDATE = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in _STATE_COLUMNS if c not in ("unit_id", "audience")
)

# The live state moves only forward: a snapshot replaces the stored one only when it is newer
# by (observed_at, produced_at, event_id). A redelivered or late, older snapshot is stored in
# the series but leaves the live board alone. DISTINCT ON keeps the newest per unit of the
# batch, because one INSERT may not touch the same row twice.
# S608 below: every name interpolated into these statements is a module constant (the column
# lists of ingest.py), never request or record data; values travel as COPY rows or parameters.
_INSERT_SNAP = (
    f"INSERT INTO census_censussnapshot ({_SNAP_COLS}) "  # noqa: S608  # nosec B608
    f"SELECT {_SNAP_COLS} FROM census_snap_in ON CONFLICT (event_id, observed_at) DO NOTHING"
)
_INSERT_FLOW = (
    f"INSERT INTO census_flowevent ({_FLOW_COLS}) "  # noqa: S608  # nosec B608
    f"SELECT {_FLOW_COLS} FROM census_flow_in ON CONFLICT (event_id, observed_at) DO NOTHING"
)

_UPSERT_STATE = (
    f"INSERT INTO census_unitstate ({_STATE_COLS}) "  # noqa: S608  # nosec B608
    f"SELECT DISTINCT ON (unit_id, audience) {_STATE_COLS} "
    "FROM census_snap_in "
    "WHERE unit_id IS NOT NULL "
    "ORDER BY unit_id, audience, observed_at DESC, produced_at DESC, event_id DESC "
    f"ON CONFLICT (unit_id, audience) DO UPDATE SET {_STATE_UPDATE} "
    "WHERE (EXCLUDED.observed_at, EXCLUDED.produced_at, EXCLUDED.event_id) "
    "> (census_unitstate.observed_at, census_unitstate.produced_at, census_unitstate.event_id)"
)

_UPSERT_FEED = """
INSERT INTO census_feedstate (hospital_id, component, event_id, produced_at, received_at,
    agent_version, policy_version, feeds, outbox_backlog, counters, key_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (hospital_id, component) DO UPDATE SET
    event_id = EXCLUDED.event_id, produced_at = EXCLUDED.produced_at,
    received_at = EXCLUDED.received_at, agent_version = EXCLUDED.agent_version,
    policy_version = EXCLUDED.policy_version, feeds = EXCLUDED.feeds,
    outbox_backlog = EXCLUDED.outbox_backlog, counters = EXCLUDED.counters,
    key_id = EXCLUDED.key_id
WHERE EXCLUDED.produced_at > census_feedstate.produced_at
"""


_SURROGATE = FLOW_COLUMNS.index("surrogate_id")

# Where the unit-state fields sit in a census row (CENSUS_COLUMNS order).
_HOSPITAL = CENSUS_COLUMNS.index("hospital_id")
_UNIT = CENSUS_COLUMNS.index("unit_id")
_AUDIENCE = CENSUS_COLUMNS.index("audience")
_OBSERVED = CENSUS_COLUMNS.index("observed_at")
_PRODUCED = CENSUS_COLUMNS.index("produced_at")
_EVENT = CENSUS_COLUMNS.index("event_id")

Row = tuple[Any, ...]


@dataclass(frozen=True)
class IngestCounts:
    census_inserted: int
    flow_inserted: int
    duplicates: int
    heartbeats: int
    rejected: int
    erased: int = 0


def _drop_erased(rows: list[tuple[object, ...]]) -> tuple[list[tuple[object, ...]], int]:
    """Leave out flow rows of erased patients: replaying a topic (or a late outbox) must
    never bring an erased surrogate back. One query per batch (governance's registry)."""
    surrogates = {str(r[_SURROGATE]) for r in rows if r[_SURROGATE]}
    if not surrogates:
        return rows, 0
    erased = erasure.erased_among(surrogates)
    if not erased:
        return rows, 0
    kept = [r for r in rows if r[_SURROGATE] not in erased]
    return kept, len(rows) - len(kept)


# Binary COPY: no text to format on this side or to parse on the server's. The uuid and
# jsonb columns travel as bytes the rows already hold in those types' binary forms
# (ingest.uuid_bytes, ingest.jsonb), hence "bytea" for psycopg: it sends them as they are.
_WIRE_TYPES = {
    "event_id": "bytea",
    "observed_at": "timestamptz",
    "produced_at": "timestamptz",
    "received_at": "timestamptz",
    "hospital_id": "int8",
    "unit_id": "int8",
    "policy_version": "int4",
    "stale": "bool",
    "acuity": "int2",
    "wait_minutes": "int4",
    "forecast": "bytea",
    "suppressed": "bytea",
    "generalised": "bytea",
    **dict.fromkeys(COUNT_FIELDS, "int4"),
}
_SNAP_TYPES = [_WIRE_TYPES.get(c, "text") for c in CENSUS_COLUMNS]
_FLOW_TYPES = [_WIRE_TYPES.get(c, "text") for c in FLOW_COLUMNS]


def _copy(
    cursor: psycopg.Cursor[Any], table: str, columns: str, types: list[str], rows: Sequence[Row]
) -> None:
    # psycopg's default binary dumper for bytea also unwraps DB-API Binary objects, in Python;
    # the plain one is C.
    cursor.adapters.register_dumper(bytes, BytesBinaryDumper)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        write = copy.write_row
        for row in rows:
            write(row)


# The connections whose temporary tables exist: made once per connection, not once per batch
# (a round trip each). A connection is added only once the transaction that made them has
# committed: a rolled-back CREATE leaves no table behind.
_temp_tables_made: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


def _temp_tables_ensure(cursor: psycopg.Cursor[Any]) -> None:
    conn = cursor.connection
    if conn in _temp_tables_made:
        return
    for statement in _TEMP_TABLES:
        cursor.execute(statement)
    transaction.on_commit(lambda: _temp_tables_made.add(conn))


def _store_series(
    cursor: psycopg.Cursor[Any],
    table: str,
    temp: str,
    columns: str,
    types: list[str],
    insert: str,
    rows: list[Row],
) -> tuple[int, bool]:
    """Store rows in a series: (how many were new, whether they went through ``temp``).

    A batch is nearly always all new: it is COPYed straight into the partitioned table inside
    a savepoint. Only when the primary key refuses a row (a replay after a crash, a producer
    retry) is the COPY rolled back to the savepoint and the batch stored the careful way:
    COPY into the temporary table, then INSERT ... ON CONFLICT DO NOTHING. Either way each
    event id is stored once.
    """
    cursor.execute("SAVEPOINT census_copy")
    try:
        _copy(cursor, table, columns, types, rows)
    except psycopg.errors.UniqueViolation:
        cursor.execute("ROLLBACK TO SAVEPOINT census_copy")
        cursor.execute("RELEASE SAVEPOINT census_copy")
    else:
        cursor.execute("RELEASE SAVEPOINT census_copy")
        return len(rows), False
    _temp_tables_ensure(cursor)
    _copy(cursor, temp, columns, types, rows)
    cursor.execute(insert)
    return max(cursor.rowcount, 0), True


def newest_per_unit(rows: list[Row]) -> list[Row]:
    """The newest census row per (unit, audience) of a batch by (observed_at, produced_at,
    event_id), the order the unit-state upsert uses (the rows' event ids are uuid bytes, which
    compare like PostgreSQL's uuid). One upserted row per unit per batch, not one per record."""
    newest: dict[tuple[int, str], Row] = {}
    for row in rows:
        unit = row[_UNIT]
        if unit is None:
            continue
        key = (unit, row[_AUDIENCE])
        held = newest.get(key)
        if held is None or (row[_OBSERVED], row[_PRODUCED], row[_EVENT]) > (
            held[_OBSERVED],
            held[_PRODUCED],
            held[_EVENT],
        ):
            newest[key] = row
    return list(newest.values())


@transaction.atomic
def census_ingest_batch(*, batch: IngestBatch) -> IngestCounts:
    """Store a batch of verified rows in one transaction; duplicates (same event_id) are
    skipped by the primary key, so replaying a batch after a crash changes nothing.

    Rows go into the series with COPY (``_store_series``: straight into the partitioned
    table, or through a temporary table and ``ON CONFLICT DO NOTHING`` when the batch holds a
    replayed row); the unit states are upserted from the newest snapshot per unit of the
    batch, only when newer than the stored one.
    """
    census_inserted = flow_inserted = 0
    # Shared live answers (hub/api/live_cache.py, hub/api/live_parts.py): the ingest's counter
    # and one per hospital whose unit or feed states the batch may change; now and at commit.
    versions.state_changed(
        "census",
        hospitals=[
            *(row[_HOSPITAL] for row in batch.census),
            *(h.hospital_id for h in batch.heartbeats),
        ],
    )
    flow_rows, erased = _drop_erased(batch.flow)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor, for COPY
        if batch.census:
            census_inserted, staged = _store_series(
                raw,
                "census_censussnapshot",
                "census_snap_in",
                _SNAP_COLS,
                _SNAP_TYPES,
                _INSERT_SNAP,
                batch.census,
            )
            if not staged:
                # The state upsert reads census_snap_in: one row per unit is enough.
                _temp_tables_ensure(raw)
                _copy(raw, "census_snap_in", _SNAP_COLS, _SNAP_TYPES, newest_per_unit(batch.census))
            raw.execute(_UPSERT_STATE)
        if flow_rows:
            flow_inserted, _ = _store_series(
                raw,
                "census_flowevent",
                "census_flow_in",
                _FLOW_COLS,
                _FLOW_TYPES,
                _INSERT_FLOW,
                flow_rows,
            )
        if batch.heartbeats:
            now = timezone.now()
            # Newest first per (hospital, component): the WHERE clause keeps the newest anyway.
            raw.executemany(
                _UPSERT_FEED,
                [
                    (
                        h.hospital_id,
                        h.component,
                        h.event_id,
                        h.produced_at,
                        now,
                        h.agent_version,
                        h.policy_version,
                        h.feeds,
                        h.outbox_backlog,
                        h.counters,
                        h.key_id,
                    )
                    for h in batch.heartbeats
                ],
            )
    duplicates = len(batch.census) - census_inserted + len(flow_rows) - flow_inserted
    return IngestCounts(
        census_inserted=census_inserted,
        flow_inserted=flow_inserted,
        duplicates=duplicates,
        heartbeats=len(batch.heartbeats),
        rejected=len(batch.rejections),
        erased=erased,
    )


@transaction.atomic
def partitions_ensure(*, first_month: date | None = None, months: int = 3) -> int:
    """Create the monthly partitions from ``first_month`` (default: this month) for
    ``months`` months for both series; returns how many were created."""
    start = first_month or timezone.now().date().replace(day=1)
    created = 0
    with connection.cursor() as cursor:
        for table in ("census_censussnapshot", "census_flowevent"):
            cursor.execute("SELECT census_ensure_partitions(%s, %s, %s)", [table, start, months])
            created += cursor.fetchone()[0]
    return created
