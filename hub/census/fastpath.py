"""The ingestion fast path: verified JSON records straight to rows, without dataclasses.

``envelope_into_batch`` tries this first. It verifies the envelope with
``deid.contracts.open_envelope_raw`` (signature, each record's hash, site and policy version)
and then validates each census or flow record from its JSON object, field by field: every
check the contract's decoder makes (required fields, types, vocabularies, the site code and
event id formats, ISO timestamps with an offset) and every check of the reference path in
``ingest.py`` (registered unit, count ranges, timestamps not in the future, versions in
range). The rows it builds are the reference path's rows, value for value.

It handles only the clean case. Anything else, a refused envelope, a record that fails any
check, a heartbeat, a nested forecast that does not decode, debug tracing, returns ``None``
and the caller runs the reference path (``open_envelope`` and the dataclass records) on the
whole envelope, which gives the exact rejection reasons for the dead-letter topic. So both
paths accept exactly the same records; ``tests/hub/census/test_fastpath.py`` holds them to it.
Decoding each record into a dataclass cost ~20 µs; this costs a few.
"""

from __future__ import annotations

from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from deid.contracts import (
    ArrivalMode,
    Audience,
    CensusRecord,
    DateGranularity,
    DecodeError,
    EnvelopeError,
    FlowEventType,
    FlowRecord,
    PatientClass,
    RegionalForecastPoint,
    Sex,
    UnitType,
)
from deid.contracts._base import _UUID_RE
from deid.contracts._codec import json_loads
from deid.contracts.envelope import open_envelope_raw
from deid.contracts.topics import SITE_CODE_RE
from hub.census.ingest import (
    _MAX_COUNT,
    _MAX_INT,
    COUNT_FIELDS,
    EMPTY_JSONB,
    MAX_CLOCK_SKEW,
    RecordRejected,
    SiteDirectory,
    SiteEntry,
    _json,
    _resolve_unit,
    jsonb,
)
from hub.census.timefmt import GeneralisedTimeError, parse_generalised

CENSUS_TYPE = CensusRecord.record_type
FLOW_TYPE = FlowRecord.record_type

_AUDIENCES = frozenset(a.value for a in Audience)
_UNIT_TYPES = frozenset(u.value for u in UnitType)
_EVENT_TYPES = frozenset(e.value for e in FlowEventType)
_GRANULARITIES = frozenset(g.value for g in DateGranularity)
_PATIENT_CLASSES = frozenset(p.value for p in PatientClass)
_ARRIVAL_MODES = frozenset(a.value for a in ArrivalMode)
_SEXES = frozenset(s.value for s in Sex)

# Every field of the contracts that this module checks; a test compares them with the
# dataclasses, so a field added to a contract cannot slip past the fast path unchecked.
CENSUS_FIELDS = frozenset(
    {
        "site_code",
        "event_id",
        "produced_at",
        "policy_version",
        "audience",
        "source_event_id",
        "unit_code",
        "unit_type",
        "as_of",
        *COUNT_FIELDS,
        "source",
        "last_message_at",
        "stale",
        "forecast",
        "suppressed",
    }
)
FLOW_FIELDS = frozenset(
    {
        "site_code",
        "event_id",
        "produced_at",
        "policy_version",
        "audience",
        "source_event_id",
        "window_id",
        "surrogate_id",
        "event_type",
        "occurred",
        "date_granularity",
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
    }
)

_counts = itemgetter(*COUNT_FIELDS)
_fromiso = datetime.fromisoformat
_fromhex = bytes.fromhex  # ingest.uuid_bytes, inlined: once per record


class _NotClean(Exception):
    """The record needs the reference path (it may be fine: that path decides)."""


def _opt_str(value: Any) -> str:
    """A ``str | None`` field as stored ("" for None)."""
    if value is None:
        return ""
    if type(value) is not str:
        raise _NotClean
    return value


def _opt_enum(value: Any, members: frozenset[str]) -> str:
    if value is None:
        return ""
    if type(value) is not str or value not in members:
        raise _NotClean
    return value


def _str_list(value: Any) -> bytes:
    """A ``tuple[str, ...]`` field (absent: empty), stored as its JSON array (jsonb)."""
    if type(value) is not list:
        raise _NotClean  # null is not an array either: the decoder refuses it
    if not value:
        return EMPTY_JSONB
    for item in value:
        if type(item) is not str:
            raise _NotClean
    return jsonb(_json(value))


def _produced_at(value: Any) -> datetime:
    if type(value) is not str:
        raise _NotClean
    try:
        parsed = _fromiso(value)
    except ValueError:
        raise _NotClean from None
    tz = parsed.tzinfo
    if tz is None:
        raise _NotClean
    return parsed if tz is UTC else parsed.astimezone(UTC)


def _observed(text: Any, produced_at: datetime, latest: datetime) -> datetime:
    if text is None:
        observed = produced_at
    else:
        if type(text) is not str:
            raise _NotClean
        try:
            observed = parse_generalised(text)[0]
        except GeneralisedTimeError:
            raise _NotClean from None
    if observed > latest:
        raise _NotClean
    return observed


def _common(r: dict[str, Any], record_type: str) -> tuple[bytes, datetime, int, str, str]:
    """The fields every regional record has: (event_id as uuid bytes, produced_at,
    policy_version, audience, source_event_id). The envelope already matched site_code and
    policy_version."""
    version = r.get("schema_version")
    if r.get("record_type") != record_type or type(version) is not int or version != 1:
        raise _NotClean
    event_id = r.get("event_id")
    if type(event_id) is not str or not _UUID_RE.match(event_id):
        raise _NotClean  # absent: the decoder would invent one; let it
    policy = r.get("policy_version")
    if type(policy) is not int or not 0 <= policy <= _MAX_INT:
        raise _NotClean
    audience = r.get("audience")
    source_event_id = r.get("source_event_id")
    if type(audience) is not str or audience not in _AUDIENCES:
        raise _NotClean
    if type(source_event_id) is not str:
        raise _NotClean
    produced_at = _produced_at(r.get("produced_at"))
    return _fromhex(event_id.replace("-", "")), produced_at, policy, audience, source_event_id


def _unit(
    directory: SiteDirectory,
    entry: SiteEntry,
    site_code: str,
    unit_code: str,
    unit_type: str,
) -> tuple[SiteEntry, int | None]:
    if unit_code:
        unit_id = entry.units_by_code.get(unit_code)
        if unit_id is not None:
            return entry, unit_id
    try:
        return _resolve_unit(directory, entry, site_code, unit_code or None, unit_type or None)
    except RecordRejected:
        raise _NotClean from None


def _forecast(value: Any) -> bytes:
    if type(value) is not list:
        raise _NotClean
    if not value:
        return EMPTY_JSONB
    try:
        points = [RegionalForecastPoint.from_dict(p) for p in value]
        return jsonb(_json([p.to_dict() for p in points]))
    except (DecodeError, TypeError, RecordRejected):
        raise _NotClean from None


# One C call fetches every field of a record (the canonical JSON always carries them all; a
# record without one of them takes the reference path, which applies the defaults).
_census_fields = itemgetter(
    "schema_version",
    "event_id",
    "policy_version",
    "audience",
    "source_event_id",
    "produced_at",
    "unit_code",
    "unit_type",
    "as_of",
    "stale",
    "source",
    "last_message_at",
    "forecast",
    "suppressed",
    *COUNT_FIELDS,
)


def _census_row(r: dict[str, Any], ctx: _Context) -> tuple[Any, ...]:
    try:
        fields = _census_fields(r)
    except KeyError:
        raise _NotClean from None
    (
        version,
        event_id,
        policy,
        audience,
        source_event_id,
        produced,
        unit_code,
        unit_type,
        as_of,
        stale,
        source,
        last_message_at,
        forecast,
        suppressed,
    ) = fields[:14]
    counts = fields[14:]
    if (
        type(version) is not int
        or version != 1
        or type(event_id) is not str
        or not _UUID_RE.match(event_id)
        or type(policy) is not int
        or not 0 <= policy <= _MAX_INT
        or type(audience) is not str
        or audience not in _AUDIENCES
        or type(source_event_id) is not str
        or (stale is not None and type(stale) is not bool)
    ):
        raise _NotClean
    for value in counts:
        if value is not None and (type(value) is not int or not 0 <= value <= _MAX_COUNT):
            raise _NotClean
    unit_code = _opt_str(unit_code)
    unit_type = _opt_enum(unit_type, _UNIT_TYPES)
    produced_at = _produced_at(produced)
    observed = _observed(as_of, produced_at, ctx.latest)
    unit_id = ctx.entry.units_by_code.get(unit_code) if unit_code else None
    if unit_id is None:
        ctx.entry, unit_id = _unit(ctx.directory, ctx.entry, ctx.site_code, unit_code, unit_type)
    return (
        _fromhex(event_id.replace("-", "")),
        observed,
        as_of or "",
        ctx.hospital_id,
        unit_id,
        ctx.site_code,
        unit_code,
        unit_type,
        audience,
        policy,
        source_event_id,
        *counts,
        _opt_str(source),
        _opt_str(last_message_at),
        stale,
        EMPTY_JSONB if forecast == [] else _forecast(forecast),
        EMPTY_JSONB if suppressed == [] else _str_list(suppressed),
        produced_at,
        ctx.received_at,
        ctx.key_id,
        ctx.via,
    )


def _opt_int(value: Any, low: int, high: int) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not low <= value <= high:
        raise _NotClean
    return value


def _flow_row(r: dict[str, Any], ctx: _Context) -> tuple[Any, ...]:
    event_id, produced_at, policy, audience, source_event_id = _common(r, FLOW_TYPE)
    event_type = r.get("event_type")
    if type(event_type) is not str or event_type not in _EVENT_TYPES:
        raise _NotClean
    unit_code = _opt_str(r.get("unit_code"))
    occurred = r.get("occurred")
    observed = _observed(occurred, produced_at, ctx.latest)
    unit_id: int | None = None
    if unit_code:
        ctx.entry, unit_id = _unit(ctx.directory, ctx.entry, ctx.site_code, unit_code, "")
    generalised = r.get("generalised", [])
    return (
        event_id,
        observed,
        occurred or "",
        _opt_enum(r.get("date_granularity"), _GRANULARITIES),
        ctx.hospital_id,
        unit_id,
        ctx.site_code,
        audience,
        policy,
        source_event_id,
        _opt_str(r.get("window_id")),
        _opt_str(r.get("surrogate_id")),
        event_type,
        unit_code,
        _opt_enum(r.get("unit_type"), _UNIT_TYPES),
        _opt_str(r.get("prior_unit_code")),
        _opt_enum(r.get("prior_unit_type"), _UNIT_TYPES),
        _opt_enum(r.get("patient_class"), _PATIENT_CLASSES),
        _opt_int(r.get("acuity"), 1, 5),
        _opt_enum(r.get("arrival_mode"), _ARRIVAL_MODES),
        _opt_str(r.get("age_band")),
        _opt_enum(r.get("sex"), _SEXES),
        _opt_str(r.get("zip3")),
        _opt_int(r.get("wait_minutes"), 0, _MAX_COUNT),
        EMPTY_JSONB if generalised == [] else _str_list(generalised),
        produced_at,
        ctx.received_at,
        ctx.key_id,
        ctx.via,
    )


class _Context:
    __slots__ = (
        "directory",
        "entry",
        "hospital_id",
        "key_id",
        "latest",
        "received_at",
        "site_code",
        "via",
    )

    def __init__(
        self,
        directory: SiteDirectory,
        entry: SiteEntry,
        site_code: str,
        key_id: str,
        received_at: datetime,
        via: str,
    ) -> None:
        self.directory = directory
        self.entry = entry
        self.hospital_id = entry.hospital_id
        self.site_code = site_code
        self.key_id = key_id
        self.received_at = received_at
        self.latest = received_at + MAX_CLOCK_SKEW
        self.via = via


_RECORDS = b',"records":['


def envelope_head(value: bytes) -> tuple[str, str] | None:
    """(site_code, key_id) from the header fields before the records, UNVERIFIED, like
    ``peek_envelope`` but without parsing every record (``seal_envelope`` writes the header
    first). Only picks the key to verify with; None when the envelope is laid out otherwise
    (then the reference path peeks)."""
    end = value.find(_RECORDS)
    if end < 0:
        return None
    try:
        head = json_loads(value[:end] + b"}")
    except (ValueError, UnicodeDecodeError):
        return None
    if type(head) is not dict:
        return None
    site, key_id = head.get("site_code"), head.get("key_id")
    if type(site) is not str or type(key_id) is not str:
        return None
    return site, key_id


def envelope_rows(
    value: bytes,
    *,
    directory: SiteDirectory,
    entry: SiteEntry,
    site_code: str,
    key_id: str,
    received_at: datetime,
    via: str,
) -> tuple[str, list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
    """(batch id, census rows, flow rows) of an envelope whose every record is a valid census
    or flow record, or None: then the reference path must handle the whole envelope."""
    key = entry.keys.get(key_id)
    if key is None or not SITE_CODE_RE.match(site_code):
        return None
    try:
        envelope = open_envelope_raw(value, key, site_code=site_code)
    except EnvelopeError:
        return None
    ctx = _Context(directory, entry, site_code, key_id, received_at, via)
    census: list[tuple[Any, ...]] = []
    flow: list[tuple[Any, ...]] = []
    try:
        for r in envelope.records:
            record_type = r.get("record_type")
            if record_type == CENSUS_TYPE:
                census.append(_census_row(r, ctx))
            elif record_type == FLOW_TYPE:
                flow.append(_flow_row(r, ctx))
            else:
                return None
    except _NotClean:
        return None
    return envelope.batch_id, census, flow
