"""Retention per data class: what is kept how long, and the SQL that enforces it.

Data classes come from ``GOVERNANCE_RETENTION_CLASSES`` (settings: table names, never hub
imports) and from ``register_data_class`` calls. Defaults of issue 7: operational metrics 12
months, record-level flow data as the hospital's published sharing policy says
(``retention.flow_records_months``; a default otherwise), audit events 7 years.

Monthly-partitioned tables lose whole partitions (``DETACH`` + ``DROP``: instant, no table
bloat); what is left (the default partition, the boundary month, hospitals whose policy keeps
less) is deleted row by row. The audit table loses only a linked prefix of its chain, and the
last removed link is kept as the new anchor so ``audit verify`` still checks from there.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connection

from governance import conf

AUDIT_CLASS = "audit_events"
AUDIT_MONTHS = 84  # 7 years


@dataclass(frozen=True, slots=True)
class DataClass:
    """One kind of data and how long the hub keeps it."""

    name: str
    tables: tuple[str, ...]
    time_column: str
    months: int
    hospital_column: str | None = None
    # Key in a published policy's "retention" object that overrides ``months`` per hospital.
    policy_key: str | None = None
    description: str = ""


_lock = threading.Lock()
_registered: dict[str, DataClass] = {}


def register_data_class(
    name: str,
    *,
    tables: list[str] | tuple[str, ...],
    time_column: str,
    months: int,
    hospital_column: str | None = None,
    policy_key: str | None = None,
    description: str = "",
) -> DataClass:
    if months < 1:
        raise ValueError("retention is at least one month")
    dc = DataClass(
        name, tuple(tables), time_column, months, hospital_column, policy_key, description
    )
    with _lock:
        _registered[name] = dc
    return dc


def data_classes() -> list[DataClass]:
    configured: dict[str, DataClass] = {}
    for name, spec in (conf.setting("GOVERNANCE_RETENTION_CLASSES", {}) or {}).items():
        configured[name] = DataClass(
            name=name,
            tables=tuple(spec["tables"]),
            time_column=spec["time_column"],
            months=int(spec["months"]),
            hospital_column=spec.get("hospital_column"),
            policy_key=spec.get("policy_key"),
            description=spec.get("description", ""),
        )
    with _lock:
        configured.update(_registered)
    return [configured[n] for n in sorted(configured)]


def months_before(moment: datetime, months: int) -> datetime:
    """The same instant ``months`` calendar months earlier (day clamped to the month's end)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    month += 1
    days = [
        31,
        29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month - 1]
    return moment.replace(year=year, month=month, day=min(moment.day, days))


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    lower: datetime | None
    upper: datetime | None  # None: the DEFAULT partition


_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


def _parse_ts(text: str) -> datetime:
    text = text.strip()
    if re.search(r"[+-]\d\d$", text):
        text += ":00"
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def partitions(table: str) -> list[Partition] | None:
    """The range partitions of ``table``; None when it is not partitioned."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [table]
        )
        if cursor.fetchone() is None:
            return None
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s) "
            "ORDER BY c.relname",
            [table],
        )
        rows = cursor.fetchall()
    out = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match:
            out.append(Partition(name, _parse_ts(match[1]), _parse_ts(match[2])))
        else:
            out.append(Partition(name, None, None))
    return out


def table_exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        row = cursor.fetchone()
    return bool(row and row[0])


@dataclass
class TableReport:
    table: str
    partitions_dropped: list[str] = field(default_factory=list)
    rows_in_dropped_partitions: int = 0
    rows_deleted: int = 0
    error: str = ""


@dataclass
class ClassReport:
    name: str
    months: int
    cutoff: str
    per_hospital_cutoffs: dict[str, str] = field(default_factory=dict)
    tables: list[TableReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _where(
    dc: DataClass, cutoff: datetime, per_hospital: dict[int, datetime]
) -> tuple[str, list[Any]]:
    q = connection.ops.quote_name
    time_col = q(dc.time_column)
    if not per_hospital or dc.hospital_column is None:
        return f"{time_col} < %s", [cutoff]
    hosp = q(dc.hospital_column)
    parts, params = [], []
    for hospital_id, hospital_cutoff in sorted(per_hospital.items()):
        parts.append(f"({hosp} = %s AND {time_col} < %s)")
        params += [hospital_id, hospital_cutoff]
    parts.append(f"(NOT ({hosp} = ANY(%s)) AND {time_col} < %s)")
    params += [sorted(per_hospital), cutoff]
    return " OR ".join(parts), params


def _count(table: str, where: str = "TRUE", params: list[Any] | None = None) -> int:
    with connection.cursor() as cursor:
        # Identifiers are quoted by the backend and come from configuration; values are bound.
        cursor.execute(
            f"SELECT count(*) FROM {connection.ops.quote_name(table)} WHERE {where}",  # noqa: S608  # nosec B608
            params or [],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def enforce_table(
    dc: DataClass,
    table: str,
    *,
    cutoff: datetime,
    per_hospital: dict[int, datetime],
    dry_run: bool,
) -> TableReport:
    """Drop whole partitions older than every hospital's cutoff, then delete what is left
    past each cutoff. ``dry_run`` only counts. Runs in the caller's transaction."""
    report = TableReport(table)
    if not table_exists(table):
        report.error = "table does not exist"
        return report
    q = connection.ops.quote_name
    earliest = min([cutoff, *per_hospital.values()])
    for part in partitions(table) or []:
        if part.upper is not None and part.upper <= earliest:
            report.partitions_dropped.append(part.name)
            report.rows_in_dropped_partitions += _count(part.name)
            if not dry_run:
                with connection.cursor() as cursor:
                    cursor.execute(f"ALTER TABLE {q(table)} DETACH PARTITION {q(part.name)}")
                    cursor.execute(f"DROP TABLE {q(part.name)}")
    where, params = _where(dc, cutoff, per_hospital)
    if dry_run:
        report.rows_deleted = _count(table, where, params) - report.rows_in_dropped_partitions
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {q(table)} WHERE {where}", params)  # noqa: S608  # nosec B608
            report.rows_deleted = max(cursor.rowcount, 0)
    return report


@dataclass
class AuditPrune:
    cutoff: datetime
    rows: int
    anchor_seq: int | None
    anchor_hash: str


def prune_audit(*, as_of: datetime, dry_run: bool) -> AuditPrune:
    """Remove the linked prefix of the audit chain older than 7 years (never a row in the
    middle: the chain stays verifiable from the last removed link)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now() - interval '7 years'")
        row = cursor.fetchone()
        db_horizon: datetime = row[0] if row else as_of
        cutoff = min(months_before(as_of, AUDIT_MONTHS), db_horizon)
        cursor.execute(
            "SELECT min(chain_seq) FROM governance_auditevent "
            "WHERE chain_seq IS NOT NULL AND occurred_at >= %s",
            [cutoff],
        )
        row = cursor.fetchone()
        first_kept = row[0] if row else None
        if first_kept is None:
            cursor.execute("SELECT coalesce(max(chain_seq), 0) + 1 FROM governance_auditevent")
            row = cursor.fetchone()
            first_kept = row[0] if row else 1
        cursor.execute(
            "SELECT count(*), max(chain_seq) FROM governance_auditevent WHERE chain_seq < %s",
            [first_kept],
        )
        row = cursor.fetchone()
        count, last = (int(row[0]), row[1]) if row else (0, None)
        anchor_hash = ""
        if last is not None:
            cursor.execute(
                "SELECT chain_hash FROM governance_auditevent WHERE chain_seq = %s", [last]
            )
            row = cursor.fetchone()
            anchor_hash = row[0] if row else ""
        if not dry_run and count:
            cursor.execute("DELETE FROM governance_auditevent WHERE chain_seq < %s", [first_kept])
    return AuditPrune(cutoff, count, last, anchor_hash)
