"""The audit hash chain: link rows in the background, verify, and sign checkpoints.

Requests insert audit rows without any lock. ``link_pending`` (Celery beat every few seconds,
or ``manage.py audit link``) takes the unlinked rows visible now, in id order, numbers them
``chain_seq`` and sets ``chain_hash = SHA-256(previous hash ‖ canonical row)``. A row whose
transaction commits late (smaller id, committed after a bigger one) is simply linked in the
next round with the next ``chain_seq``: the chain order is ``chain_seq``, never a guess about
ids that may still be in flight. One linker runs at a time (a transaction-level advisory lock).

``verify`` recomputes every hash in ``chain_seq`` order and names the first row whose content
no longer matches; rows not yet linked are reported separately.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from django.db import connection, transaction

from deid import signing
from governance import conf, keys
from governance.models import AuditCheckpoint, AuditEvent, RetentionRun

logger = logging.getLogger("governance.chain")

GENESIS = "0" * 64
# pg_advisory lock key: "gov-audit" as an integer, stable across processes.
LINK_LOCK = int.from_bytes(b"govaudit", "big") & 0x7FFFFFFFFFFFFFFF
HASHED_FIELDS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_label",
    "roles",
    "action",
    "target",
    "method",
    "path",
    "status_code",
    "source_ip",
    "request_id",
    "hospital_ids",
    "object_ids",
    "row_count",
    "detail",
)
# What the audit log shows and exports: the hashed fields and the chain link itself.
EVENT_FIELDS = (*HASHED_FIELDS, "chain_seq", "chain_hash")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str | dict):
        return value
    return str(value)  # inet addresses and anything the driver hands back as an object


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes hashed for one row: its content fields as sorted, compact JSON."""
    content = {name: _plain(row[name]) for name in HASHED_FIELDS}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link_hash(previous: str, chain_seq: int, row: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(previous.encode())
    digest.update(b"\n")
    digest.update(str(chain_seq).encode())
    digest.update(b"\n")
    digest.update(canonical(row))
    return digest.hexdigest()


def _rows(queryset: Any) -> Iterator[dict[str, Any]]:
    yield from queryset.values(*HASHED_FIELDS, "chain_seq", "chain_hash").iterator(chunk_size=2000)


def link_pending(*, batch: int = 5000) -> int:
    """Link up to ``batch`` unlinked rows; returns how many. Safe to run concurrently (a second
    linker finds the lock taken and returns 0)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LINK_LOCK])
            (locked,) = cursor.fetchone()
        if not locked:
            return 0
        head = (
            AuditEvent.objects.filter(chain_seq__isnull=False)
            .order_by("-chain_seq")
            .values_list("chain_seq", "chain_hash")
            .first()
        )
        seq, previous = (int(head[0] or 0), str(head[1])) if head is not None else _anchor()
        pending = list(
            _rows(AuditEvent.objects.filter(chain_seq__isnull=True).order_by("id")[:batch])
        )
        if not pending:
            return 0
        updates = []
        for row in pending:
            seq += 1
            previous = link_hash(previous, seq, row)
            updates.append((row["id"], seq, previous))
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE governance_auditevent SET chain_seq = %s, chain_hash = %s WHERE id = %s",
                [(s, h, i) for i, s, h in updates],
            )
        return len(updates)


def link_all() -> int:
    total = 0
    while linked := link_pending():
        total += linked
    return total


def _anchor() -> tuple[int, str]:
    """Where the chain starts: genesis, or the last link retention removed."""
    run = (
        RetentionRun.objects.filter(dry_run=False, audit_anchor_seq__isnull=False)
        .order_by("-audit_anchor_seq")
        .values_list("audit_anchor_seq", "audit_anchor_hash")
        .first()
    )
    return (int(run[0] or 0), run[1]) if run is not None else (0, GENESIS)


@dataclass
class VerifyReport:
    """The outcome of walking the chain."""

    checked: int = 0
    first_bad_id: int | None = None
    first_bad_seq: int | None = None
    problem: str = ""
    unlinked_ids: list[int] = field(default_factory=list)
    checkpoints_checked: int = 0
    checkpoint_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None and not self.problem and not self.checkpoint_problems


def verify(*, check_checkpoints: bool = True) -> VerifyReport:
    """Walk the whole chain in ``chain_seq`` order and recompute every hash."""
    report = VerifyReport()
    expected_seq, previous = _anchor()
    hashes: dict[int, str] = {}
    for row in _rows(AuditEvent.objects.filter(chain_seq__isnull=False).order_by("chain_seq")):
        expected_seq += 1
        if row["chain_seq"] != expected_seq:
            report.first_bad_id, report.first_bad_seq = row["id"], row["chain_seq"]
            report.problem = (
                f"chain_seq {expected_seq} is missing before row {row['id']} "
                f"(seq {row['chain_seq']}): rows were deleted"
            )
            break
        computed = link_hash(previous, row["chain_seq"], row)
        if computed != row["chain_hash"]:
            report.first_bad_id, report.first_bad_seq = row["id"], row["chain_seq"]
            report.problem = f"row {row['id']} (seq {row['chain_seq']}) does not match its hash"
            break
        previous = row["chain_hash"]
        hashes[row["chain_seq"]] = previous
        report.checked += 1
    report.unlinked_ids = list(
        AuditEvent.objects.filter(chain_seq__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if check_checkpoints and report.first_bad_id is None:
        _verify_checkpoints(report, hashes)
    return report


def checkpoint_statement(*, chain_seq: int, event_id: int, chain_hash: str, at: datetime) -> str:
    return json.dumps(
        {
            "type": "twinhub.audit.checkpoint.v1",
            "chain_seq": chain_seq,
            "event_id": event_id,
            "chain_hash": chain_hash,
            "at": at.astimezone(UTC).isoformat(timespec="seconds"),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _verify_checkpoints(report: VerifyReport, hashes: dict[int, str]) -> None:
    public = keys.signing_key().public_key() if conf.secret(keys.SIGNING_KEY_SETTING) else None
    for cp in AuditCheckpoint.objects.order_by("id"):
        report.checkpoints_checked += 1
        if public is not None and signing.key_id_for(public) == cp.key_id:
            try:
                public.verify(base64.b64decode(cp.signature), cp.statement.encode())
            except (InvalidSignature, ValueError):
                report.checkpoint_problems.append(f"checkpoint {cp.pk}: bad signature")
                continue
        stated = json.loads(cp.statement)
        if stated["chain_seq"] != cp.chain_seq or stated["chain_hash"] != cp.chain_hash:
            report.checkpoint_problems.append(f"checkpoint {cp.pk}: columns differ from statement")
        elif cp.chain_seq in hashes and hashes[cp.chain_seq] != cp.chain_hash:
            report.checkpoint_problems.append(
                f"checkpoint {cp.pk}: chain at seq {cp.chain_seq} differs from the signed head"
            )


def write_checkpoint(*, now: datetime | None = None) -> AuditCheckpoint | None:
    """Sign the current chain head (after linking what is pending) and store it; also log it
    and append it to ``GOVERNANCE_AUDIT_CHECKPOINT_DIR`` when set. None if the chain is empty."""
    link_all()
    head = AuditEvent.objects.filter(chain_seq__isnull=False).order_by("-chain_seq").first()
    if head is None or head.chain_seq is None or head.chain_hash is None:
        return None
    at = now or datetime.now(UTC)
    statement = checkpoint_statement(
        chain_seq=head.chain_seq, event_id=head.pk, chain_hash=head.chain_hash, at=at
    )
    key = keys.signing_key()
    checkpoint = AuditCheckpoint(
        created_at=at,
        chain_seq=head.chain_seq,
        event_id=head.pk,
        chain_hash=head.chain_hash,
        statement=statement,
        key_id=signing.key_id_for(key),
        signature=base64.b64encode(key.sign(statement.encode())).decode(),
    )
    checkpoint.save(force_insert=True)
    line = json.dumps(
        {"statement": statement, "key_id": checkpoint.key_id, "signature": checkpoint.signature}
    )
    logger.info("audit checkpoint %s", line)
    directory = conf.setting("GOVERNANCE_AUDIT_CHECKPOINT_DIR", "")
    if directory:
        path = Path(directory) / f"audit-checkpoints-{at:%Y}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
    return checkpoint


def verify_external_checkpoint(line: str, *, public_key: str | None = None) -> str | None:
    """Check one checkpoint line kept outside the database against the live chain.

    Returns None when it matches, else what is wrong."""
    data = json.loads(line)
    statement = data["statement"]
    key = signing.load_public_key(public_key) if public_key else keys.signing_key().public_key()
    try:
        key.verify(base64.b64decode(data["signature"]), statement.encode())
    except (InvalidSignature, ValueError):
        return "bad signature"
    stated = json.loads(statement)
    row = AuditEvent.objects.filter(chain_seq=stated["chain_seq"]).values("chain_hash").first()
    if row is None:
        return f"seq {stated['chain_seq']} is no longer in the table"
    if row["chain_hash"] != stated["chain_hash"]:
        return f"seq {stated['chain_seq']} hash differs from the checkpoint"
    return None
