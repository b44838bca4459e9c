"""The agent's durable state: one SQLite file in WAL mode in the data folder.

One writer thread owns the write connection (see ``ingest.py``); everything a message changes —
the message as received, its dedup key, quarantine row, twin rows, conflicts and outbox records —
is written in one transaction, and the ACK is sent only after that transaction commits.

Why these settings:
- ``journal_mode=WAL``: readers (the outbox relay, ``status``) never block the writer.
- Durability before every ACK: an ``AA`` promises the sender the message is safe, so the WAL is
  fsynced after each commit and before its ACKs go out. SQLite would do that itself with
  ``synchronous=FULL``, but inside COMMIT, holding up the next batch. Instead COMMIT runs with
  ``synchronous=NORMAL`` (WAL frames handed to the OS; NORMAL still syncs the WAL before every
  checkpoint and the WAL header when it is reused) and ``sync_wal`` fsyncs the WAL file from
  another thread while the next batch is being prepared; the ACKs of a batch are released only
  when an fsync that started after its COMMIT has returned. Same guarantee as FULL — a committed
  transaction is on disk before it is acknowledged — with the fsync off the critical path, and
  several batches' commits covered by one fsync when the disk is slow.
- ``wal_autocheckpoint=0`` on the writer: checkpoints run on the relay's connection instead, so
  their fsyncs do not land on the ACK path.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from site_agent.twin.model import Bed, Conflict, Patient, Twin, Unit

__all__ = [
    "SCHEMA_VERSION",
    "OutboxRow",
    "Store",
    "checkpoint",
    "current_diversion",
    "load_twin",
    "open_readonly",
]

log = logging.getLogger("site_agent.store")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Everything any sender sent, as received, in arrival order.
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    channel TEXT NOT NULL,
    peer TEXT NOT NULL DEFAULT '',
    control_key TEXT,
    trigger_event TEXT,
    status TEXT NOT NULL,
    ack_code TEXT,
    size INTEGER NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_received ON messages (received_at);
-- MSH-3|MSH-4|MSH-10 is unique among applied messages: inserting a re-sent one fails, so it
-- is answered again and applied once. Refused messages are not in the index: re-sent, they
-- are looked at afresh. (One index instead of a separate table: one insert per message.)
CREATE UNIQUE INDEX IF NOT EXISTS messages_applied_key ON messages (control_key)
    WHERE status = 'applied';
DROP TABLE IF EXISTS message_ids;
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    message_seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    ack_code TEXT NOT NULL,
    error_code TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS units (
    code TEXT PRIMARY KEY,
    unit_type TEXT NOT NULL,
    name TEXT NOT NULL,
    aliases TEXT NOT NULL,
    origin TEXT NOT NULL,
    last_source TEXT NOT NULL,
    last_message_at TEXT,
    offloads TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS beds (
    unit_code TEXT NOT NULL,
    room TEXT NOT NULL,
    bed TEXT NOT NULL,
    licensed INTEGER NOT NULL,
    staffed INTEGER NOT NULL,
    surge INTEGER NOT NULL,
    adhoc INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_source TEXT NOT NULL,
    status_at TEXT,
    occupant TEXT,
    PRIMARY KEY (unit_code, room, bed)
) WITHOUT ROWID;
-- Operational state only; identifying data stays in the raw messages and the key store.
-- The state tables are a checkpoint: they reflect every applied message up to
-- meta.state_seq; later applied messages are replayed from `messages` on start.
CREATE TABLE IF NOT EXISTS patients (mrn TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feeds (
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    last_message_at TEXT,
    messages_total INTEGER NOT NULL,
    errors_total INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    authoritative TEXT NOT NULL,
    other TEXT NOT NULL,
    resolution TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fhir_locations (
    id TEXT PRIMARY KEY,
    unit_code TEXT NOT NULL,
    room TEXT NOT NULL,
    bed TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fhir_encounters (id TEXT PRIMARY KEY, mrn TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS poll_state (
    base_url TEXT NOT NULL,
    resource TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    PRIMARY KEY (base_url, resource)
) WITHOUT ROWID;
-- Written in the transaction of the state change it reports; the relay publishes in seq order.
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    -- A random UUIDv4 made once when the row is written: unique by construction. No index:
    -- a unique index on random keys costs one random page write per record.
    event_id TEXT NOT NULL,
    record_type TEXT NOT NULL,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    payload BLOB NOT NULL,
    created_at TEXT NOT NULL,
    -- 0: a flow-event draft with PHI in the clear, sealed by the relay before it leaves.
    sealed INTEGER NOT NULL DEFAULT 1,
    published_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
-- Directives from the hub (site_agent/directives.py), one row per hub directive id: what the
-- agent did with it. "done" rows are never applied again (a directive seen twice, e.g. when
-- the ack was lost, is only acknowledged again). Erasure rows keep no surrogate.
CREATE TABLE IF NOT EXISTS directives (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    payload TEXT NOT NULL,
    handled_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    topic: str
    key: bytes
    payload: bytes
    sealed: bool
    record_type: str = ""


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def open_readonly(path: Path) -> sqlite3.Connection:
    return _connect(path, readonly=True)


class Store:
    """The write side. Not thread-safe: one owner thread (the ingest writer)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._wal_fd: int | None = None
        self.conn = _connect(path)
        c = self.conn
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")  # see sync_wal
        c.execute("PRAGMA wal_autocheckpoint=0")
        c.execute("PRAGMA cache_size=-65536")
        c.execute("PRAGMA temp_store=MEMORY")
        c.executescript(_SCHEMA)
        c.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        self._insert_message_sql = (
            "INSERT INTO messages (received_at, channel, peer, control_key, trigger_event,"
            " status, ack_code, size, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )

    def close(self) -> None:
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        self.conn.close()

    def sync_wal(self) -> None:
        """fsync the WAL: every transaction committed before this call is on disk after it.
        Thread-safe with respect to the connection (it touches only the file)."""
        if self._wal_fd is None:
            wal = Path(f"{self.path}-wal")
            if not wal.exists():
                return  # nothing committed yet
            self._wal_fd = os.open(wal, os.O_RDONLY)
            # The directory entry of a new WAL file must be durable too, once.
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        os.fsync(self._wal_fd)

    def max_outbox_seq(self) -> int:
        row = self.conn.execute("SELECT max(seq) FROM outbox").fetchone()
        return int(row[0] or 0)

    # --- transactions ------------------------------------------------------------------------

    def begin(self) -> None:
        # IMMEDIATE takes the write lock up front, so a long batch never fails half-way on a
        # lock upgrade.
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    # --- messages ----------------------------------------------------------------------------

    def insert_message(
        self,
        *,
        received_at: str,
        channel: str,
        peer: str,
        control_key: str | None,
        trigger: str | None,
        status: str,
        ack_code: str | None,
        size: int,
        raw: bytes,
    ) -> int:
        cur = self.conn.execute(
            self._insert_message_sql,
            (received_at, channel, peer, control_key, trigger, status, ack_code, size, raw),
        )
        seq = cur.lastrowid
        assert seq is not None  # noqa: S101 - an INSERT into a rowid table always has one
        return seq

    def quarantine(
        self, message_seq: int, at: str, ack_code: str, error_code: str, reason: str
    ) -> None:
        self.conn.execute(
            "INSERT INTO quarantine (message_seq, at, ack_code, error_code, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            (message_seq, at, ack_code, error_code, reason),
        )

    # --- twin state --------------------------------------------------------------------------

    def save_unit(self, u: Unit) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO units (code, unit_type, name, aliases, origin, last_source,"
            " last_message_at, offloads) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                u.code,
                u.unit_type,
                u.name,
                json.dumps(list(u.aliases)),
                u.origin,
                u.last_source,
                None if u.last_message_at is None else u.last_message_at.isoformat(),
                json.dumps([[at.isoformat(), m] for at, m in u.offloads]),
            ),
        )

    def save_beds(self, beds: Iterable[Bed]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO beds (unit_code, room, bed, licensed, staffed, surge, adhoc,"
            " status, status_source, status_at, occupant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    b.unit_code,
                    b.room,
                    b.bed,
                    int(b.licensed),
                    int(b.staffed),
                    int(b.surge),
                    int(b.adhoc),
                    b.status,
                    b.status_source,
                    None if b.status_at is None else b.status_at.isoformat(),
                    b.occupant,
                )
                for b in beds
            ],
        )

    def save_patients(self, patients: Iterable[Patient]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO patients (mrn, data) VALUES (?, ?)",
            [(p.mrn, json.dumps(p.to_row(), separators=(",", ":"))) for p in patients],
        )

    def delete_patients(self, mrns: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM patients WHERE mrn = ?", [(m,) for m in mrns])

    def save_conflicts(self, at: str, conflicts: Sequence[Conflict]) -> None:
        self.conn.executemany(
            "INSERT INTO conflicts (at, kind, subject, authoritative, other, resolution)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    at,
                    c.kind,
                    c.subject,
                    json.dumps(c.authoritative, default=str),
                    json.dumps(c.other, default=str),
                    c.resolution,
                )
                for c in conflicts
            ],
        )

    def save_feeds(self, rows: Iterable[tuple[str, str, str | None, int, int]]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO feeds (name, source, last_message_at, messages_total,"
            " errors_total) VALUES (?, ?, ?, ?, ?)",
            list(rows),
        )

    def load_feeds(self) -> list[tuple[str, str, str | None, int, int]]:
        return [
            (str(r[0]), str(r[1]), r[2], int(r[3]), int(r[4]))
            for r in self.conn.execute(
                "SELECT name, source, last_message_at, messages_total, errors_total FROM feeds"
            )
        ]

    def save_twin(self, twin: Twin) -> None:
        """Write the whole twin (first start, or after a structural change)."""
        for u in twin.units.values():
            self.save_unit(u)
            self.save_beds(u.beds.values())
        self.save_patients(twin.patients.values())

    def load_into(self, twin: Twin) -> bool:
        return load_twin(self.conn, twin)

    def state_seq(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'state_seq'").fetchone()
        return int(row[0]) if row else 0

    def set_state_seq(self, seq: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('state_seq', ?)", (str(seq),)
        )

    def last_message_seq(self) -> int:
        row = self.conn.execute("SELECT max(seq) FROM messages").fetchone()
        return int(row[0] or 0)

    def applied_since(self, seq: int) -> list[tuple[int, str, str, bytes]]:
        """Applied messages after ``seq``: (seq, channel, received_at, raw), in order."""
        return [
            (int(r[0]), str(r[1]), str(r[2]), bytes(r[3]))
            for r in self.conn.execute(
                "SELECT seq, channel, received_at, raw FROM messages"
                " WHERE seq > ? AND status = 'applied' ORDER BY seq",
                (seq,),
            )
        ]

    def set_message_status(self, seq: int, status: str, ack_code: str | None = None) -> None:
        if ack_code is None:
            self.conn.execute("UPDATE messages SET status = ? WHERE seq = ?", (status, seq))
        else:
            self.conn.execute(
                "UPDATE messages SET status = ?, ack_code = ? WHERE seq = ?",
                (status, ack_code, seq),
            )

    # --- FHIR bookkeeping --------------------------------------------------------------------

    def fhir_location(self, location_id: str) -> tuple[str, str, str] | None:
        row = self.conn.execute(
            "SELECT unit_code, room, bed FROM fhir_locations WHERE id = ?", (location_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def save_fhir_location(self, location_id: str, unit_code: str, room: str, bed: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO fhir_locations (id, unit_code, room, bed) VALUES (?, ?, ?, ?)",
            (location_id, unit_code, room, bed),
        )

    def save_fhir_encounter(self, encounter_id: str, mrn: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO fhir_encounters (id, mrn) VALUES (?, ?)", (encounter_id, mrn)
        )

    def poll_state(self, base_url: str, resource: str) -> str | None:
        row = self.conn.execute(
            "SELECT last_updated FROM poll_state WHERE base_url = ? AND resource = ?",
            (base_url, resource),
        ).fetchone()
        return None if row is None else str(row[0])

    def save_poll_state(self, base_url: str, resource: str, last_updated: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO poll_state (base_url, resource, last_updated) VALUES (?, ?, ?)",
            (base_url, resource, last_updated),
        )

    # --- directives from the hub --------------------------------------------------------------

    def directive_outcome(self, directive_id: int) -> str | None:
        row = self.conn.execute(
            "SELECT outcome FROM directives WHERE id = ?", (directive_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def record_directive(
        self,
        directive_id: int,
        *,
        kind: str,
        outcome: str,
        payload: dict[str, Any],
        at: str,
        detail: str = "",
    ) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO directives (id, kind, outcome, detail, payload, handled_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (directive_id, kind, outcome, detail, json.dumps(payload, sort_keys=True), at),
        )

    def current_diversion(self) -> dict[str, Any] | None:
        return current_diversion(self.conn)

    # --- outbox ------------------------------------------------------------------------------

    def add_outbox(self, rows: Sequence[tuple[str, str, str, bytes, bytes, str, int]]) -> None:
        """rows: (event_id, record_type, topic, key, payload, created_at, sealed)."""
        if log.isEnabledFor(logging.DEBUG):
            # Where a record's event_id is born: the DE-ID worker and the hub log the same id
            # (as source_event_id) on its way (docs/deploy.md, Observability).
            for row in rows:
                log.debug("outbox %s %s", row[0], row[1], extra={"event_id": row[0]})
        self.conn.executemany(
            "INSERT INTO outbox (event_id, record_type, topic, key, payload, created_at, sealed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def mark_published(self, seqs: Sequence[int], at: str) -> None:
        # The relay delivers in seq order, so the seqs are mostly one run: one ranged UPDATE
        # per run of consecutive seqs instead of one statement per row.
        runs: list[tuple[str, int, int]] = []
        for s in sorted(seqs):
            if runs and s == runs[-1][2] + 1:
                runs[-1] = (at, runs[-1][1], s)
            else:
                runs.append((at, s, s))
        self.conn.executemany("UPDATE outbox SET published_at = ? WHERE seq BETWEEN ? AND ?", runs)

    def oldest_unpublished(self) -> datetime | None:
        row = self.conn.execute(
            "SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT 1"
        ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def outbox_backlog(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
        return int(row[0])

    def purge(self, *, messages_before: str, outbox_before: str) -> tuple[int, int]:
        """Retention: drop old raw messages (and their dedup keys) and old published records."""
        c = self.conn
        last = c.execute(
            "SELECT max(seq) FROM messages WHERE received_at < ?", (messages_before,)
        ).fetchone()[0]
        n_msg = 0
        if last is not None:
            c.execute("DELETE FROM quarantine WHERE message_seq <= ?", (last,))
            n_msg = c.execute("DELETE FROM messages WHERE seq <= ?", (last,)).rowcount
        n_out = c.execute(
            "DELETE FROM outbox WHERE published_at IS NOT NULL AND created_at < ?",
            (outbox_before,),
        ).rowcount
        return n_msg, n_out


def load_twin(c: sqlite3.Connection, twin: Twin) -> bool:
    """Overlay the stored state on a twin built from the configuration.

    Returns False when the store is empty (first start). Units and beds from the configuration
    keep their configured flags; stored dynamic state (status, occupant, provenance, offloads)
    and units or beds learnt from feeds are restored.
    """
    rows = c.execute(
        "SELECT code, unit_type, name, aliases, origin, last_source, last_message_at,"
        " offloads FROM units"
    ).fetchall()
    if not rows:
        return False
    for code, utype, name, aliases, origin, last_source, last_at, offloads in rows:
        unit = twin.units.get(code)
        if unit is None:
            if origin == "config":
                continue  # removed from the configuration since
            unit = Unit(code=code, unit_type=utype, name=name, aliases=tuple(json.loads(aliases)))
            unit.origin = origin
            twin.add_unit(unit)
        unit.last_source = last_source
        unit.last_message_at = None if last_at is None else datetime.fromisoformat(last_at)
        unit.offloads = [(datetime.fromisoformat(a), int(m)) for a, m in json.loads(offloads)]
    for row in c.execute(
        "SELECT unit_code, room, bed, licensed, staffed, surge, adhoc, status, status_source,"
        " status_at, occupant FROM beds"
    ):
        ucode, room, bed, lic, staff, surge, adhoc, status, ssrc, sat, occ = row
        unit = twin.units.get(ucode)
        if unit is None:
            continue
        b = unit.beds.get((room, bed))
        if b is None:
            if not adhoc and unit.origin == "config":
                continue  # removed from the configuration since: forget it
            b = Bed(ucode, room, bed, bool(lic), bool(staff), bool(surge), bool(adhoc))
            unit.beds[(room, bed)] = b
        b.status = status
        b.status_source = ssrc
        b.status_at = None if sat is None else datetime.fromisoformat(sat)
        b.occupant = occ
    twin.patients.clear()
    for (data,) in c.execute("SELECT data FROM patients"):
        p = Patient.from_row(json.loads(data))
        twin.patients[p.mrn] = p
    twin.relink()
    return True


def current_diversion(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The region's latest diversion directive for this site (payload plus the hub's
    directive id and when the agent received it), or None if it never had one."""
    try:
        row = conn.execute(
            "SELECT id, payload, handled_at FROM directives WHERE kind = 'diversion' "
            "AND outcome = 'done' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    except sqlite3.OperationalError:  # a database from before directives (read-only here)
        return None
    if row is None:
        return None
    out: dict[str, Any] = json.loads(row[1])
    return {**out, "directive_id": int(row[0]), "received_at": str(row[2])}


def checkpoint(path: Path) -> None:
    """PASSIVE WAL checkpoint on a short-lived connection: never waits for, nor blocks, the
    writer; whatever it cannot copy now is copied next time."""
    try:
        c = sqlite3.connect(path, isolation_level=None, timeout=0.1)
        try:
            c.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            c.close()
    except sqlite3.Error as exc:
        log.debug("checkpoint skipped: %s", exc)


def fetch_outbox(
    conn: sqlite3.Connection, after_seq: int, limit: int, upto: int | None = None
) -> list[OutboxRow]:
    """Unpublished rows after ``after_seq`` (and not beyond ``upto``: rows not yet fsynced)."""
    if upto is not None:
        return [
            OutboxRow(int(r[0]), str(r[1]), bytes(r[2]), bytes(r[3]), bool(r[4]), str(r[5]))
            for r in conn.execute(
                "SELECT seq, topic, key, payload, sealed, record_type FROM outbox"
                " WHERE seq > ? AND seq <= ? AND published_at IS NULL ORDER BY seq LIMIT ?",
                (after_seq, upto, limit),
            )
        ]
    return [
        OutboxRow(int(r[0]), str(r[1]), bytes(r[2]), bytes(r[3]), bool(r[4]), str(r[5]))
        for r in conn.execute(
            "SELECT seq, topic, key, payload, sealed, record_type FROM outbox"
            " WHERE seq > ? AND published_at IS NULL"
            " ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
    ]


def first_unpublished(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT min(seq) FROM outbox WHERE published_at IS NULL").fetchone()
    if row[0] is not None:
        return int(row[0])
    row = conn.execute("SELECT max(seq) FROM outbox").fetchone()
    return int(row[0] or 0) + 1


def rows(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
) -> Iterator[tuple[Any, ...]]:
    with closing(conn.execute(sql, params)) as cur:
        yield from cur
