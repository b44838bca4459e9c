"""Signed envelopes: one Kafka message on the regional topic carries many regional records.

Signing each record would cost more than the whole transform (Ed25519 signs about 21,000 and
verifies about 6,800 messages a second here), so a site signs once per batch: the envelope
lists the SHA-256 of each record's canonical JSON and one Ed25519 signature covers that list
together with the site, batch, policy and key fields.

Wire format (JSON object):
    envelope_version  1
    record_type       "regional.envelope"
    site_code, policy_version (null: heartbeats only), batch_id (UUID), key_id, created_at
    records           [regional record objects]
    record_hashes     [hex SHA-256 of canonical_json(record), same order]
    signature         base64 Ed25519 over SIGNING_DOMAIN + canonical_json(header + hashes)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid.contracts._base import Record, record_from_dict, utcnow
from deid.contracts._codec import DecodeError, canonical_json, format_utc, json_loads, parse_utc
from deid.contracts.regional import (
    REGIONAL_RECORD_TYPES,
    CensusRecord,
    FlowRecord,
    HeartbeatRecord,
    RegionalRecord,
)
from deid.signing import KeyFormatError, PublicKeys, key_id_for, public_keys_by_id

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; canonical_json is the spec
    orjson = None  # type: ignore[assignment]

ENVELOPE_VERSION = 1
ENVELOPE_RECORD_TYPE = "regional.envelope"
SIGNING_DOMAIN = b"regional-twin-hub/envelope/v1\n"


class EnvelopeError(ValueError):
    """An envelope failed verification: bad signature, hash mismatch, unknown key or a
    payload that does not decode. The message says which; the envelope must be rejected."""


@dataclass(frozen=True, slots=True)
class VerifiedEnvelope:
    site_code: str
    policy_version: int | None
    batch_id: str
    key_id: str
    created_at: datetime
    records: list[RegionalRecord]


@dataclass(frozen=True, slots=True)
class VerifiedRawEnvelope:
    """An envelope whose signature and record hashes are verified, with its records still as
    the JSON objects they arrived as: authentic, but NOT decoded or validated."""

    site_code: str
    policy_version: int | None
    batch_id: str
    key_id: str
    created_at: datetime
    records: list[dict[str, Any]]


def record_hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical_bytes(obj: Any) -> bytes:
    """canonical_json(obj).encode(), without the str round trip when orjson is there."""
    if orjson is not None:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    return canonical_json(obj).encode()


def _signed_bytes(header: dict[str, Any], hashes: Sequence[str]) -> bytes:
    return SIGNING_DOMAIN + canonical_json({**header, "record_hashes": list(hashes)}).encode()


def seal_envelope(
    canonical_records: Sequence[str],
    signing_key: Ed25519PrivateKey,
    *,
    site_code: str,
    policy_version: int | None,
    batch_id: str | None = None,
    created_at: datetime | None = None,
    hashes: Sequence[str] | None = None,
) -> bytes:
    """Build a signed envelope from records already in canonical JSON (the worker's fast
    path: each record is serialised once, and that text is both hashed and embedded).
    `hashes`, when given, are the records' hex SHA-256 already computed (the native core
    hashes the texts it writes); they must be exactly those digests."""
    if hashes is None:
        hashes = [hashlib.sha256(c.encode()).hexdigest() for c in canonical_records]
    elif len(hashes) != len(canonical_records):
        raise ValueError("one hash per record")
    hashes = list(hashes)
    header = {
        "envelope_version": ENVELOPE_VERSION,
        "site_code": site_code,
        "policy_version": policy_version,
        "batch_id": batch_id or str(uuid.uuid4()),
        "key_id": key_id_for(signing_key),
        "created_at": format_utc(created_at or utcnow()),
    }
    signature = base64.b64encode(signing_key.sign(_signed_bytes(header, hashes))).decode()
    # Assembled as text so the records are not serialised a second time.
    head = json.dumps({"record_type": ENVELOPE_RECORD_TYPE, **header}, separators=(",", ":"))
    tail = json.dumps({"record_hashes": hashes, "signature": signature}, separators=(",", ":"))
    return f'{head[:-1]},"records":[{",".join(canonical_records)}],{tail[1:]}'.encode()


def sign_envelope(
    records: Iterable[Record],
    signing_key: Ed25519PrivateKey,
    *,
    site_code: str,
    policy_version: int | None,
    batch_id: str | None = None,
    created_at: datetime | None = None,
) -> bytes:
    """Serialise and sign regional records into one envelope (bytes for one Kafka message)."""
    canonical = []
    for record in records:
        if not isinstance(record, REGIONAL_RECORD_TYPES):
            raise TypeError(f"only regional records travel in envelopes, not {type(record)}")
        if record.site_code != site_code:
            raise ValueError("every record in an envelope belongs to the envelope's site")
        canonical.append(canonical_json(record.to_dict()))
    return seal_envelope(
        canonical,
        signing_key,
        site_code=site_code,
        policy_version=policy_version,
        batch_id=batch_id,
        created_at=created_at,
    )


def open_envelope(
    data: bytes | str, public_keys: PublicKeys, *, site_code: str | None = None
) -> VerifiedEnvelope:
    """Verify and decode an envelope. `public_keys` is the site's key, or several (rotation);
    `site_code`, if given, must match the envelope's. Raises EnvelopeError."""
    env, header = _verified_parts(data, public_keys, site_code)
    site = header["site_code"]
    out: list[RegionalRecord] = []
    for n, (raw, expected) in enumerate(zip(env["records"], env["record_hashes"], strict=True)):
        if record_hash(canonical_json(raw)) != expected:
            raise EnvelopeError(f"record {n}: hash mismatch")
        try:
            record = record_from_dict(raw)
        except DecodeError as exc:
            raise EnvelopeError(f"record {n}: {exc}") from None
        if not isinstance(record, CensusRecord | FlowRecord | HeartbeatRecord):
            raise EnvelopeError(f"record {n}: not a regional record type")
        if record.site_code != site:
            raise EnvelopeError(f"record {n}: site_code differs from the envelope's")
        if (
            not isinstance(record, HeartbeatRecord)
            and record.policy_version != header["policy_version"]
        ):
            raise EnvelopeError(f"record {n}: policy_version differs from the envelope's")
        out.append(record)
    created_at, policy_version = _header_values(header)
    return VerifiedEnvelope(
        site_code=site,
        policy_version=policy_version,
        batch_id=header["batch_id"],
        key_id=header["key_id"],
        created_at=created_at,
        records=out,
    )


def open_envelope_raw(
    data: bytes | str, public_keys: PublicKeys, *, site_code: str | None = None
) -> VerifiedRawEnvelope:
    """Verify an envelope like `open_envelope` (signature, each record's hash, the records'
    site_code and policy_version against the envelope's), but return the records as the JSON
    objects they arrived as instead of decoding them into dataclasses.

    The hub's ingestion fast path: decoding every field into a dataclass cost more than the
    rest of the ingestion. The records are authentic (hashed, signed) but NOT validated: the
    caller must check every field itself, or decode with `record_from_dict`. Any envelope
    this accepts, `open_envelope` verifies too; it may refuse records `open_envelope` would
    refuse later (e.g. an unknown record type is left to the caller). Raises EnvelopeError."""
    env, header = _verified_parts(data, public_keys, site_code)
    site, policy = header["site_code"], header["policy_version"]
    records: list[dict[str, Any]] = env["records"]
    for n, (raw, expected) in enumerate(zip(records, env["record_hashes"], strict=True)):
        if type(raw) is not dict:
            raise EnvelopeError(f"record {n}: record: expected a JSON object")
        if hashlib.sha256(_canonical_bytes(raw)).hexdigest() != expected:
            raise EnvelopeError(f"record {n}: hash mismatch")
        if raw.get("site_code") != site:
            raise EnvelopeError(f"record {n}: site_code differs from the envelope's")
        if raw.get("record_type") != HeartbeatRecord.record_type and (
            type(raw.get("policy_version")) is not int or raw.get("policy_version") != policy
        ):
            raise EnvelopeError(f"record {n}: policy_version differs from the envelope's")
    created_at, policy_version = _header_values(header)
    return VerifiedRawEnvelope(
        site_code=site,
        policy_version=policy_version,
        batch_id=header["batch_id"],
        key_id=header["key_id"],
        created_at=created_at,
        records=records,
    )


class _WireEnvelope(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An envelope as msgspec decodes it: the header typed, each record left as its JSON text
    (msgspec checks its syntax). No other field: whatever msgspec would skip unread is for
    the reference parser to judge."""

    record_type: str
    envelope_version: int
    site_code: str
    policy_version: int | None
    batch_id: str
    key_id: str
    created_at: str
    records: list[msgspec.Raw]
    record_hashes: list[str]
    signature: str


_WIRE_ENVELOPE = msgspec.json.Decoder(_WireEnvelope)


@dataclass(frozen=True, slots=True)
class SignedRawEnvelope:
    """An envelope whose signature is verified, i.e. its header and its list of record hashes
    are authentic, with each record still as its JSON text. The records themselves are NOT
    verified: the caller must check each one's hash (SHA-256 of its canonical JSON, as
    `open_envelope` does) and its site_code and policy_version against the header's."""

    site_code: str
    policy_version: int | None
    batch_id: str
    key_id: str
    created_at: datetime
    records: list[msgspec.Raw]
    record_hashes: list[str]


def open_envelope_signed(
    data: bytes, public_keys: PublicKeys, *, site_code: str | None = None
) -> SignedRawEnvelope | None:
    """The hub's ingestion fast path: the checks of `_verified_parts` and `_header_values`
    (shape, envelope version, site, key, signature, created_at), with the envelope decoded by
    msgspec into typed fields and its records left unparsed, so each record is parsed once,
    by the caller, straight into its own types.

    It accepts no envelope `open_envelope` would refuse at these checks; strict JSON types
    make it refuse some that `open_envelope` verifies (e.g. an envelope_version of 1.0). It
    never words a refusal: None means "use `open_envelope`", which does."""
    try:
        env = _WIRE_ENVELOPE.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):  # (msgspec's error for non-UTF-8)
        return None
    if env.record_type != ENVELOPE_RECORD_TYPE or env.envelope_version != ENVELOPE_VERSION:
        return None
    if site_code is not None and env.site_code != site_code:
        return None
    hashes = env.record_hashes
    if len(env.records) != len(hashes):
        return None
    try:
        key = public_keys_by_id(public_keys).get(env.key_id)
    except KeyFormatError:
        return None
    if key is None:
        return None
    header = {
        "envelope_version": env.envelope_version,
        "site_code": env.site_code,
        "policy_version": env.policy_version,
        "batch_id": env.batch_id,
        "key_id": env.key_id,
        "created_at": env.created_at,
    }
    try:
        key.verify(base64.b64decode(env.signature, validate=True), _signed_bytes(header, hashes))
        created_at = parse_utc(env.created_at, "created_at")
    except (InvalidSignature, binascii.Error, ValueError):  # DecodeError is a ValueError
        return None
    return SignedRawEnvelope(
        site_code=env.site_code,
        policy_version=env.policy_version,
        batch_id=env.batch_id,
        key_id=env.key_id,
        created_at=created_at,
        records=env.records,
        record_hashes=hashes,
    )


def _header_values(header: dict[str, Any]) -> tuple[datetime, int | None]:
    try:
        created_at = parse_utc(header["created_at"], "created_at")
    except DecodeError as exc:
        raise EnvelopeError(str(exc)) from None
    policy_version = header["policy_version"]
    if policy_version is not None and type(policy_version) is not int:
        raise EnvelopeError("policy_version must be an integer or null")
    return created_at, policy_version


def _verified_parts(
    data: bytes | str, public_keys: PublicKeys, site_code: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse an envelope and check its shape, key and signature: (envelope, signed header).
    The records' hashes are left to the caller."""
    try:
        env = json_loads(data)
    except (ValueError, UnicodeDecodeError):
        raise EnvelopeError("envelope is not UTF-8 JSON") from None
    if type(env) is not dict or env.get("record_type") != ENVELOPE_RECORD_TYPE:
        raise EnvelopeError("not a regional envelope")
    if env.get("envelope_version") != ENVELOPE_VERSION:
        raise EnvelopeError("unsupported envelope_version")
    header = {
        k: env.get(k)
        for k in (
            "envelope_version",
            "site_code",
            "policy_version",
            "batch_id",
            "key_id",
            "created_at",
        )
    }
    records, hashes, signature = env.get("records"), env.get("record_hashes"), env.get("signature")
    if type(records) is not list or type(hashes) is not list or type(signature) is not str:
        raise EnvelopeError("records, record_hashes and signature are required")
    site, batch_id, key_id = header["site_code"], header["batch_id"], header["key_id"]
    if type(site) is not str or type(batch_id) is not str or type(key_id) is not str:
        raise EnvelopeError("site_code, batch_id and key_id are required")
    if site_code is not None and site != site_code:
        raise EnvelopeError("envelope comes from another site than expected")
    if len(records) != len(hashes):
        raise EnvelopeError("record count differs from hash count")
    try:
        keys = public_keys_by_id(public_keys)
    except KeyFormatError as exc:
        raise EnvelopeError(f"verifier key: {exc}") from None
    key = keys.get(key_id)
    if key is None:
        raise EnvelopeError("envelope signed with a key that is not registered for this site")
    try:
        sig = base64.b64decode(signature, validate=True)
        key.verify(sig, _signed_bytes(header, [str(h) for h in hashes]))
    except (InvalidSignature, binascii.Error, ValueError):
        raise EnvelopeError("bad signature") from None
    return env, header


def verify_envelope(
    data: bytes | str, public_key: PublicKeys, *, site_code: str | None = None
) -> list[RegionalRecord]:
    """Verify an envelope's signature and record hashes and return its records.
    Raises EnvelopeError on a bad signature, a hash mismatch or a decoding problem."""
    return open_envelope(data, public_key, site_code=site_code).records


def peek_envelope(data: bytes | str) -> tuple[str, str]:
    """(site_code, key_id) of an envelope, UNVERIFIED: only to pick the key to verify with."""
    try:
        env = json_loads(data)
        site, key_id = env["site_code"], env["key_id"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise EnvelopeError("not a regional envelope") from None
    if type(site) is not str or type(key_id) is not str:
        raise EnvelopeError("not a regional envelope")
    return site, key_id
