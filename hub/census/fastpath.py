"""The ingestion fast path: verified JSON records straight to rows, without dataclasses.

``envelope_into_batch`` tries this first. It verifies the envelope's signature with
``deid.contracts.envelope.open_envelope_signed`` (msgspec decodes the header and leaves each
record as its JSON text), then msgspec decodes each census or flow record straight into a
typed struct (``_Census``, ``_Flow``: the types, the count ranges, record_type and version
checked in C), the record's hash is checked over the struct's encoding, which is its
canonical JSON, and the rest is checked field by field: every check the contract's decoder
makes (required fields, types, vocabularies, the site code and event id formats, ISO
timestamps with an offset) and every check of the reference path in ``ingest.py``
(registered unit, count ranges, timestamps not in the future, versions in range). The rows
it builds are the reference path's rows, value for value.

A record msgspec does not take cleanly is parsed to a dict (orjson) and checked as before
(``_census_row``/``_flow_row``), and an envelope with an escape anywhere in its JSON is
parsed wholly that way (``open_envelope_raw``). It handles only the clean case. Anything
else, a refused envelope, a record that fails any check, a heartbeat, a nested forecast that
does not decode, debug tracing, returns ``None`` and the caller runs the reference path
(``open_envelope`` and the dataclass records) on the whole envelope, which gives the exact
rejection reasons for the dead-letter topic. So both paths accept exactly the same records;
``tests/hub/census/test_fastpath.py`` holds them to it. Decoding each record into a
dataclass cost ~20 µs; the dict checks cost a few; the typed decoding less again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from hashlib import sha256
from operator import attrgetter, itemgetter
from typing import Annotated, Any, Literal

import msgspec

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
from deid.contracts.envelope import _canonical_bytes, open_envelope_raw, open_envelope_signed
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
_parse_generalised = parse_generalised
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


# -- Typed records: msgspec decodes each record straight into these, in C -------------------
#
# Their fields are the contracts' fields in sorted order, every one required, no unknown ones,
# so msgspec's encoding of a decoded record is its canonical JSON (keys sorted, no spaces,
# the same number and string forms as ``canonical_json``), and the record's hash is checked
# over that: the very check ``open_envelope`` makes (SHA-256 of the canonical JSON of the
# record as parsed), without building a dict. A record these do not take cleanly (a missing
# or unknown field, a wrong type, a count out of range, a forecast whose JSON is not
# canonical, a hash that does not match) goes to the dict checks above, record by record, and
# anything those do not accept sends the whole envelope to the reference path, which decides
# and words the refusal. msgspec's own error messages are never shown.

_Count = Annotated[int, msgspec.Meta(ge=0, le=_MAX_COUNT)] | None


class _Census(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    as_of: str | None
    audience: str
    available_beds: _Count
    blocked_beds: _Count
    boarding_p50_minutes: _Count
    boarding_p90_minutes: _Count
    ed_boarding: _Count
    ed_in_treatment: _Count
    ed_waiting: _Count
    event_id: str
    forecast: msgspec.Raw  # floats: checked with the reference codec (_typed_forecast)
    last_message_at: str | None
    licensed_beds: _Count
    longest_boarding_minutes: _Count
    occupied_beds: _Count
    offload_count: _Count
    offload_p50_minutes: _Count
    offload_p90_minutes: _Count
    pending_admissions: _Count
    pending_discharges: _Count
    policy_version: int
    produced_at: str
    record_type: Literal["regional.census"]
    schema_version: Literal[1]
    site_code: str
    source: str | None
    source_event_id: str
    staffed_beds: _Count
    stale: bool | None
    suppressed: list[str]
    surge_beds: _Count
    unit_code: str | None
    unit_type: str | None


class _Flow(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    acuity: Annotated[int, msgspec.Meta(ge=1, le=5)] | None
    age_band: str | None
    arrival_mode: str | None
    audience: str
    date_granularity: str | None
    event_id: str
    event_type: str
    generalised: list[str]
    occurred: str | None
    patient_class: str | None
    policy_version: int
    prior_unit_code: str | None
    prior_unit_type: str | None
    produced_at: str
    record_type: Literal["regional.flow"]
    schema_version: Literal[1]
    sex: str | None
    site_code: str
    source_event_id: str
    surrogate_id: str | None
    unit_code: str | None
    unit_type: str | None
    wait_minutes: _Count
    window_id: str | None
    zip3: str | None


_Decoders = tuple[msgspec.json.Decoder[Any], msgspec.json.Decoder[Any]]
_DECODERS: _Decoders = (msgspec.json.Decoder(_Census), msgspec.json.Decoder(_Flow))
# msgspec refuses text that is not UTF-8 with UnicodeDecodeError, not with its DecodeError.
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)
_encode = msgspec.json.Encoder().encode
_sha256 = sha256
_typed_counts = attrgetter(*COUNT_FIELDS)
_EMPTY_LIST = msgspec.Raw(b"[]")


def _typed_forecast(raw: msgspec.Raw) -> bytes:
    """The forecast column. Its JSON is kept as it came (msgspec.Raw) and must already be
    canonical, so that the record's encoding is its canonical JSON (floats are written by
    the reference codec, not by msgspec)."""
    if raw == _EMPTY_LIST:
        return EMPTY_JSONB
    text = bytes(raw)
    try:
        points = json_loads(text)
    except ValueError:
        raise _NotClean from None
    if _canonical_bytes(points) != text:
        raise _NotClean
    return _forecast(points)


def _typed_census_row(r: _Census, ctx: _Context) -> tuple[Any, ...]:
    """``_census_row`` for a typed record (types, counts' range, record_type and version
    already checked by msgspec; site, policy version and hash by the caller)."""
    event_id = r.event_id
    unit_type = r.unit_type
    if (
        not _UUID_RE.match(event_id)
        or r.audience not in _AUDIENCES
        or (unit_type is not None and unit_type not in _UNIT_TYPES)
    ):
        raise _NotClean
    unit_code = r.unit_code or ""
    as_of = r.as_of
    # _produced_at and _observed, inlined: once per record
    try:
        produced_at = _fromiso(r.produced_at)
        observed = produced_at if as_of is None else _parse_generalised(as_of)[0]
    except ValueError:  # GeneralisedTimeError is one
        raise _NotClean from None
    tz = produced_at.tzinfo
    if tz is not UTC:
        if tz is None:
            raise _NotClean
        produced_at = produced_at.astimezone(UTC)
        if as_of is None:
            observed = produced_at
    if observed > ctx.latest:
        raise _NotClean
    unit_id = ctx.entry.units_by_code.get(unit_code) if unit_code else None
    if unit_id is None:
        ctx.entry, unit_id = _unit(
            ctx.directory, ctx.entry, ctx.site_code, unit_code, unit_type or ""
        )
    suppressed = r.suppressed
    forecast = r.forecast
    return (
        _fromhex(event_id.replace("-", "")),
        observed,
        as_of or "",
        ctx.hospital_id,
        unit_id,
        ctx.site_code,
        unit_code,
        unit_type or "",
        r.audience,
        r.policy_version,
        r.source_event_id,
        *_typed_counts(r),
        r.source or "",
        r.last_message_at or "",
        r.stale,
        EMPTY_JSONB if forecast == _EMPTY_LIST else _typed_forecast(forecast),
        jsonb(_json(suppressed)) if suppressed else EMPTY_JSONB,
        produced_at,
        ctx.received_at,
        ctx.key_id,
        ctx.via,
    )


def _enum_or_none(value: str | None, members: frozenset[str]) -> str:
    if value is None:
        return ""
    if value not in members:
        raise _NotClean
    return value


def _typed_flow_row(r: _Flow, ctx: _Context) -> tuple[Any, ...]:
    """``_flow_row`` for a typed record."""
    event_id = r.event_id
    event_type = r.event_type
    if (
        not _UUID_RE.match(event_id)
        or r.audience not in _AUDIENCES
        or event_type not in _EVENT_TYPES
    ):
        raise _NotClean
    unit_code = r.unit_code or ""
    occurred = r.occurred
    produced_at = _produced_at(r.produced_at)
    observed = _observed(occurred, produced_at, ctx.latest)
    unit_id: int | None = None
    if unit_code:
        ctx.entry, unit_id = _unit(ctx.directory, ctx.entry, ctx.site_code, unit_code, "")
    generalised = r.generalised
    return (
        _fromhex(event_id.replace("-", "")),
        observed,
        occurred or "",
        _enum_or_none(r.date_granularity, _GRANULARITIES),
        ctx.hospital_id,
        unit_id,
        ctx.site_code,
        r.audience,
        r.policy_version,
        r.source_event_id,
        r.window_id or "",
        r.surrogate_id or "",
        event_type,
        unit_code,
        _enum_or_none(r.unit_type, _UNIT_TYPES),
        r.prior_unit_code or "",
        _enum_or_none(r.prior_unit_type, _UNIT_TYPES),
        _enum_or_none(r.patient_class, _PATIENT_CLASSES),
        r.acuity,
        _enum_or_none(r.arrival_mode, _ARRIVAL_MODES),
        r.age_band or "",
        _enum_or_none(r.sex, _SEXES),
        r.zip3 or "",
        r.wait_minutes,
        jsonb(_json(generalised)) if generalised else EMPTY_JSONB,
        produced_at,
        ctx.received_at,
        ctx.key_id,
        ctx.via,
    )


def _dict_record(
    raw: msgspec.Raw,
    expected: str,
    ctx: _Context,
    policy: int,
    census: list[tuple[Any, ...]],
    flow: list[tuple[Any, ...]],
) -> None:
    """A record the typed decoders did not take: parsed to a dict and checked as
    ``open_envelope_raw`` checks each record (hash of its canonical JSON, site, policy
    version), then as before (``_census_row``/``_flow_row``); raises _NotClean."""
    try:
        r = json_loads(bytes(raw))
    except ValueError:
        raise _NotClean from None
    if type(r) is not dict or _sha256(_canonical_bytes(r)).hexdigest() != expected:
        raise _NotClean
    version = r.get("policy_version")
    if r.get("site_code") != ctx.site_code or type(version) is not int or version != policy:
        raise _NotClean  # a heartbeat is not for the fast path either
    record_type = r.get("record_type")
    if record_type == CENSUS_TYPE:
        census.append(_census_row(r, ctx))
    elif record_type == FLOW_TYPE:
        flow.append(_flow_row(r, ctx))
    else:
        raise _NotClean


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
    ctx = _Context(directory, entry, site_code, key_id, received_at, via)
    if b"\\" in value:
        # An escape in a string (\n, \u00e9, a lone surrogate) is where JSON codecs can differ
        # in what they accept and how they write it back; such an envelope is parsed by the
        # reference codec (orjson) as a whole. The sites write none: canonical JSON keeps
        # non-ASCII text as is, and no field carries control characters or quotes.
        return _dict_envelope_rows(value, key, ctx)
    envelope = open_envelope_signed(value, key, site_code=site_code)
    if envelope is None:
        return None
    policy = envelope.policy_version
    if policy is None or not 0 <= policy <= _MAX_INT:
        return None  # no census or flow record can match it
    census: list[tuple[Any, ...]] = []
    flow: list[tuple[Any, ...]] = []
    decoders: _Decoders = _DECODERS
    record: Any
    try:
        for raw, expected in zip(envelope.records, envelope.record_hashes, strict=True):
            # The decoder of the previous record first: envelopes are mostly of one kind,
            # and the other kind fails at its first key.
            try:
                record = decoders[0].decode(raw)
            except _DECODE_ERRORS:
                try:
                    record = decoders[1].decode(raw)
                    decoders = decoders[::-1]
                except _DECODE_ERRORS:
                    record = None
            if record is None or _sha256(_encode(record)).hexdigest() != expected:
                _dict_record(raw, expected, ctx, policy, census, flow)
            elif record.site_code != site_code or record.policy_version != policy:
                return None
            elif type(record) is _Census:
                census.append(_typed_census_row(record, ctx))
            else:
                flow.append(_typed_flow_row(record, ctx))
    except _NotClean:
        return None
    return envelope.batch_id, census, flow


def _dict_envelope_rows(
    value: bytes, key: Any, ctx: _Context
) -> tuple[str, list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
    """The envelope parsed and verified by ``open_envelope_raw`` (orjson, the hash of each
    record's canonical JSON), its records checked as dicts: the fast path before msgspec."""
    try:
        envelope = open_envelope_raw(value, key, site_code=ctx.site_code)
    except EnvelopeError:
        return None
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
