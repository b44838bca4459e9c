"""From signed envelopes to rows: verification, validation and conversion, no database writes.

Used by both paths into the hub, the Kafka consumer and the HTTPS fallback push, so both apply
the same signature check, the same validation and (in ``services.census_ingest_batch``) the
same idempotent upsert. Anything refused becomes a ``Rejection`` with its reason, for the
dead-letter topic; nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deid.contracts import (
    CensusRecord,
    EnvelopeError,
    FlowRecord,
    HeartbeatRecord,
    open_envelope,
    peek_envelope,
)
from deid.signing import KeyFormatError, load_public_key
from hub.census.timefmt import GeneralisedTimeError, parse_generalised

log = logging.getLogger("hub.census.ingest")

COUNT_FIELDS = (
    "licensed_beds",
    "staffed_beds",
    "surge_beds",
    "occupied_beds",
    "available_beds",
    "blocked_beds",
    "pending_admissions",
    "pending_discharges",
    "ed_waiting",
    "ed_in_treatment",
    "ed_boarding",
    "longest_boarding_minutes",
    "boarding_p50_minutes",
    "boarding_p90_minutes",
    "offload_count",
    "offload_p50_minutes",
    "offload_p90_minutes",
)

CENSUS_COLUMNS = (
    "event_id",
    "observed_at",
    "as_of",
    "hospital_id",
    "unit_id",
    "site_code",
    "unit_code",
    "unit_type",
    "audience",
    "policy_version",
    "source_event_id",
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

FLOW_COLUMNS = (
    "event_id",
    "observed_at",
    "occurred",
    "date_granularity",
    "hospital_id",
    "unit_id",
    "site_code",
    "audience",
    "policy_version",
    "source_event_id",
    "window_id",
    "surrogate_id",
    "event_type",
    "unit_code",
    "unit_type",
    "prior_unit_code",
    "prior_unit_type",
    "patient_class",
    "acuity",
    "arrival_mode",
    "age_band",
    "sex",
    "zip3",
    "wait_minutes",
    "generalised",
    "produced_at",
    "received_at",
    "key_id",
    "via",
)

# A record dated further ahead than this is refused: clocks at a site are wrong, and a far
# future row would also land in the default partition instead of a monthly one.
MAX_CLOCK_SKEW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused envelope or record, with the reason, for the dead-letter topic."""

    reason: str
    payload: bytes
    site_code: str = ""
    event_id: str = ""


@dataclass(frozen=True, slots=True)
class HeartbeatRow:
    hospital_id: int
    component: str
    event_id: str
    produced_at: datetime
    agent_version: str
    policy_version: int | None
    feeds: str
    outbox_backlog: int | None
    counters: str
    key_id: str


@dataclass(slots=True)
class IngestBatch:
    """Rows of one batch of envelopes, written in one transaction.

    Census and flow rows hold the values of ``CENSUS_COLUMNS`` / ``FLOW_COLUMNS`` ready for
    a binary COPY: Python ints, strings, booleans, aware datetimes, and the event id and the
    JSON columns already in their binary form (``uuid_bytes``, ``jsonb``).
    """

    census: list[tuple[Any, ...]] = field(default_factory=list)
    flow: list[tuple[Any, ...]] = field(default_factory=list)
    heartbeats: list[HeartbeatRow] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    envelopes: int = 0

    @property
    def records(self) -> int:
        return len(self.census) + len(self.flow) + len(self.heartbeats)


@dataclass(slots=True)
class SiteEntry:
    hospital_id: int
    keys: dict[str, Ed25519PublicKey]
    units_by_code: dict[str, int]
    units_by_type: dict[str, int]
    loaded_at: float
    unit_types: frozenset[str] = frozenset()


SiteLoader = Callable[[str], "SiteEntry | None"]


def load_site_from_registry(site_code: str) -> SiteEntry | None:
    """Load a site's verification keys and units from the registry (one query each)."""
    from hub.registry.selectors import site_verification_keys, unit_index

    hospital_id, keys_b64 = site_verification_keys(site_code)
    if hospital_id is None:
        return None
    keys: dict[str, Ed25519PublicKey] = {}
    for key_id, b64 in keys_b64.items():
        try:
            keys[key_id] = load_public_key(b64)
        except KeyFormatError:
            continue  # a malformed stored key verifies nothing; the others still do
    by_code, by_type, types = unit_index(hospital_id)
    return SiteEntry(hospital_id, keys, by_code, by_type, time.monotonic(), types)


class SiteDirectory:
    """Per-process cache of each site's keys and units.

    Reloaded after ``ttl`` seconds (so a revoked key stops verifying within that time) and on
    a miss (a new key or unit), but at most once per ``miss_interval`` per site, so a flood
    of records for an unknown unit does not turn into a flood of queries.
    """

    def __init__(
        self,
        loader: SiteLoader = load_site_from_registry,
        *,
        ttl: float = 60.0,
        miss_interval: float = 5.0,
    ) -> None:
        self._loader = loader
        self._ttl = ttl
        self._miss_interval = miss_interval
        self._entries: dict[str, SiteEntry | None] = {}
        self._loaded: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, site_code: str) -> SiteEntry | None:
        now = time.monotonic()
        with self._lock:
            if site_code in self._entries and now - self._loaded[site_code] < self._ttl:
                return self._entries[site_code]
        return self._load(site_code)

    def refresh_on_miss(self, site_code: str) -> SiteEntry | None:
        now = time.monotonic()
        with self._lock:
            if now - self._loaded.get(site_code, 0.0) < self._miss_interval:
                return self._entries.get(site_code)
        return self._load(site_code)

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()
            self._loaded.clear()

    def _load(self, site_code: str) -> SiteEntry | None:
        entry = self._loader(site_code)
        with self._lock:
            self._entries[site_code] = entry
            self._loaded[site_code] = time.monotonic()
        return entry


class RecordRejected(ValueError):
    pass


# PostgreSQL integer columns: a value outside them would fail the whole batch's transaction,
# so it is refused here, record by record. No unit has a million beds or minutes of wait.
_MAX_COUNT = 1_000_000
_MAX_INT = 2**31 - 1


def _json(value: object) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise RecordRejected("numbers: NaN or infinity") from None


def uuid_bytes(event_id: str) -> bytes:
    """A record's event id (a lower-case UUID string, checked by the contract) as the 16
    bytes of PostgreSQL's binary uuid."""
    return bytes.fromhex(event_id.replace("-", ""))


def jsonb(text: str) -> bytes:
    """JSON text in PostgreSQL's binary jsonb form: a version byte (1), then the text."""
    return b"\x01" + text.encode()


EMPTY_JSONB = jsonb("[]")


def _version(value: int | None) -> None:
    if value is not None and not 0 <= value <= _MAX_INT:
        raise RecordRejected("policy_version: out of range")


def _resolve_unit(
    directory: SiteDirectory,
    entry: SiteEntry,
    site_code: str,
    unit_code: str | None,
    unit_type: str | None,
) -> tuple[SiteEntry, int | None]:
    """The registry unit of a record. A released unit code must be a registered unit (else
    the record is refused: the registry is missing a unit). Without a code, the unit is the
    site's one unit of that type, or None when it has several (stored for the hospital)."""
    for attempt in (0, 1):
        if unit_code:
            unit_id = entry.units_by_code.get(unit_code)
        elif unit_type:
            unit_id = entry.units_by_type.get(unit_type)
            if unit_id is None and unit_type in entry.unit_types:
                return entry, None
        else:
            raise RecordRejected("unit: neither unit_code nor unit_type released")
        if unit_id is not None:
            return entry, unit_id
        if attempt == 0:
            fresh = directory.refresh_on_miss(site_code)
            if fresh is None:
                break
            entry = fresh
    if unit_code:
        raise RecordRejected(f"unit: {unit_code!r} is not a registered unit of {site_code}")
    raise RecordRejected(f"unit: no registered {unit_type} unit at {site_code}")


def _observed(text: str | None, produced_at: datetime, now: datetime) -> datetime:
    if text is None:
        observed = produced_at
    else:
        try:
            observed, _ = parse_generalised(text)
        except GeneralisedTimeError as exc:
            raise RecordRejected(f"timestamp: {exc}") from None
    if observed > now + MAX_CLOCK_SKEW:
        raise RecordRejected("timestamp: more than 10 minutes in the future")
    return observed


def _census_row(
    r: CensusRecord,
    hospital_id: int,
    unit_id: int | None,
    observed_at: datetime,
    received_at: datetime,
    key_id: str,
    via: str,
) -> tuple[Any, ...]:
    counts = (
        r.licensed_beds,
        r.staffed_beds,
        r.surge_beds,
        r.occupied_beds,
        r.available_beds,
        r.blocked_beds,
        r.pending_admissions,
        r.pending_discharges,
        r.ed_waiting,
        r.ed_in_treatment,
        r.ed_boarding,
        r.longest_boarding_minutes,
        r.boarding_p50_minutes,
        r.boarding_p90_minutes,
        r.offload_count,
        r.offload_p50_minutes,
        r.offload_p90_minutes,
    )
    for value in counts:
        if value is not None and not 0 <= value <= _MAX_COUNT:
            raise RecordRejected("counts: negative or implausibly large value")
    _version(r.policy_version)
    forecast = jsonb(_json([p.to_dict() for p in r.forecast])) if r.forecast else EMPTY_JSONB
    return (
        uuid_bytes(r.event_id),
        observed_at,
        r.as_of or "",
        hospital_id,
        unit_id,
        r.site_code,
        r.unit_code or "",
        r.unit_type.value if r.unit_type is not None else "",
        r.audience.value,
        r.policy_version,
        r.source_event_id,
        *counts,
        r.source or "",
        r.last_message_at or "",
        r.stale,
        forecast,
        jsonb(_json(list(r.suppressed))) if r.suppressed else EMPTY_JSONB,
        r.produced_at,
        received_at,
        key_id,
        via,
    )


def _flow_row(
    r: FlowRecord,
    hospital_id: int,
    unit_id: int | None,
    observed_at: datetime,
    received_at: datetime,
    key_id: str,
    via: str,
) -> tuple[Any, ...]:
    if r.acuity is not None and not 1 <= r.acuity <= 5:
        raise RecordRejected("acuity: 1-5")
    if r.wait_minutes is not None and not 0 <= r.wait_minutes <= _MAX_COUNT:
        raise RecordRejected("wait_minutes: negative or implausibly large value")
    _version(r.policy_version)
    return (
        uuid_bytes(r.event_id),
        observed_at,
        r.occurred or "",
        r.date_granularity.value if r.date_granularity is not None else "",
        hospital_id,
        unit_id,
        r.site_code,
        r.audience.value,
        r.policy_version,
        r.source_event_id,
        r.window_id or "",
        r.surrogate_id or "",
        r.event_type.value,
        r.unit_code or "",
        r.unit_type.value if r.unit_type is not None else "",
        r.prior_unit_code or "",
        r.prior_unit_type.value if r.prior_unit_type is not None else "",
        r.patient_class.value if r.patient_class is not None else "",
        r.acuity,
        r.arrival_mode.value if r.arrival_mode is not None else "",
        r.age_band or "",
        r.sex.value if r.sex is not None else "",
        r.zip3 or "",
        r.wait_minutes,
        jsonb(_json(list(r.generalised))) if r.generalised else EMPTY_JSONB,
        r.produced_at,
        received_at,
        key_id,
        via,
    )


def envelope_into_batch(
    value: bytes,
    *,
    directory: SiteDirectory,
    batch: IngestBatch,
    received_at: datetime,
    via: str,
    expected_site: str | None = None,
) -> int:
    """Verify one envelope and add its rows (or its rejections) to ``batch``.

    ``expected_site`` is the Kafka message key or the authenticated agent's site: a site may
    only speak for itself. Returns the number of records accepted into the batch.

    A clean envelope of census and flow records takes the fast path (``fastpath.py``: the
    records validated from their JSON objects); anything else, including every envelope or
    record to refuse, takes the reference path below, which gives the reasons.
    """
    batch.envelopes += 1
    if not log.isEnabledFor(logging.DEBUG):
        fast = _fast_path(value, directory, batch, received_at, via, expected_site)
        if fast is not None:
            return fast
    try:
        site_code, key_id = peek_envelope(value)
    except EnvelopeError as exc:
        batch.rejections.append(Rejection(f"envelope: {exc}", value))
        return 0
    if expected_site is not None and site_code != expected_site:
        batch.rejections.append(
            Rejection("envelope: site differs from the message key or agent", value, site_code)
        )
        return 0
    entry = directory.get(site_code)
    if entry is not None and key_id not in entry.keys:
        entry = directory.refresh_on_miss(site_code)
    if entry is None:
        batch.rejections.append(Rejection("envelope: unknown or inactive site", value, site_code))
        return 0
    key = entry.keys.get(key_id)
    if key is None:
        batch.rejections.append(
            Rejection("envelope: signed with a key not registered for this site", value, site_code)
        )
        return 0
    try:
        envelope = open_envelope(value, key, site_code=site_code)
    except EnvelopeError as exc:
        batch.rejections.append(Rejection(f"envelope: {exc}", value, site_code))
        return 0

    accepted = 0
    now = received_at
    hospital_id = entry.hospital_id
    # The ids that follow a record from the site (docs/deploy.md, Observability): the
    # envelope's batch id per envelope, each record's event ids at debug level.
    log.info(
        "envelope %s from %s: %d record(s) via %s",
        envelope.batch_id,
        site_code,
        len(envelope.records),
        via,
        extra={"batch_id": envelope.batch_id, "site": site_code},
    )
    trace = log.isEnabledFor(logging.DEBUG)
    for record in envelope.records:
        if trace:
            log.debug(
                "record %s (source %s) %s",
                record.event_id,
                record.source_event_id,
                record.record_type,
                extra={
                    "batch_id": envelope.batch_id,
                    "site": site_code,
                    "event_id": record.event_id,
                    "source_event_id": record.source_event_id,
                },
            )
        try:
            if isinstance(record, CensusRecord):
                unit_type = record.unit_type.value if record.unit_type is not None else None
                entry, unit_id = _resolve_unit(
                    directory, entry, site_code, record.unit_code, unit_type
                )
                observed = _observed(record.as_of, record.produced_at, now)
                batch.census.append(
                    _census_row(record, hospital_id, unit_id, observed, received_at, key_id, via)
                )
            elif isinstance(record, FlowRecord):
                flow_unit: int | None = None
                if record.unit_code:
                    entry, flow_unit = _resolve_unit(
                        directory, entry, site_code, record.unit_code, None
                    )
                observed = _observed(record.occurred, record.produced_at, now)
                batch.flow.append(
                    _flow_row(record, hospital_id, flow_unit, observed, received_at, key_id, via)
                )
            elif isinstance(record, HeartbeatRecord):
                _version(record.policy_version)
                backlog = record.outbox_backlog
                if backlog is not None and not 0 <= backlog <= _MAX_INT:
                    raise RecordRejected("outbox_backlog: out of range")
                batch.heartbeats.append(
                    HeartbeatRow(
                        hospital_id=hospital_id,
                        component=record.component[:16],
                        event_id=record.event_id,
                        produced_at=record.produced_at,
                        agent_version=record.agent_version[:64],
                        policy_version=record.policy_version,
                        feeds=_json([f.to_dict() for f in record.feeds]),
                        outbox_backlog=record.outbox_backlog,
                        counters=_json(record.counters),
                        key_id=key_id,
                    )
                )
            accepted += 1
        except RecordRejected as exc:
            batch.rejections.append(
                Rejection(str(exc), record.encode(), site_code, record.event_id)
            )
    return accepted


def _fast_path(
    value: bytes,
    directory: SiteDirectory,
    batch: IngestBatch,
    received_at: datetime,
    via: str,
    expected_site: str | None,
) -> int | None:
    from hub.census import fastpath  # imports this module: loaded on first use

    head = fastpath.envelope_head(value)
    if head is None:
        return None
    site_code, key_id = head
    if expected_site is not None and site_code != expected_site:
        return None
    entry = directory.get(site_code)
    if entry is None or key_id not in entry.keys:
        return None
    rows = fastpath.envelope_rows(
        value,
        directory=directory,
        entry=entry,
        site_code=site_code,
        key_id=key_id,
        received_at=received_at,
        via=via,
    )
    if rows is None:
        return None
    batch_id, census, flow = rows
    batch.census += census
    batch.flow += flow
    log.info(
        "envelope %s from %s: %d record(s) via %s",
        batch_id,
        site_code,
        len(census) + len(flow),
        via,
        extra={"batch_id": batch_id, "site": site_code},
    )
    return len(census) + len(flow)


_shared: SiteDirectory | None = None
_shared_lock = threading.Lock()


def shared_directory() -> SiteDirectory:
    """The process-wide directory the web workers use for the HTTPS push."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SiteDirectory()
        return _shared
