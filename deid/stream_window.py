"""One window of raw Kafka message values -> what the stream worker releases, holds and
dead-letters: through the native core where it reproduces the reference exactly, otherwise
through the Python reference (decode_raw + transform_window). Both give the same output;
tests/deid/test_native_core.py holds them equal."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from deid import native
from deid.contracts._base import RECORD_TYPES, Record, loads
from deid.contracts._codec import DecodeError, canonical_json, format_utc, json_loads
from deid.contracts.fastdecode import fast_flow_event
from deid.contracts.raw import PlainFlowEvent, RawCensusSnapshot, RawFlowEvent, RawHeartbeat
from deid.contracts.vocabulary import Audience
from deid.keystore import PatientKeyStore
from deid.policy import Policy
from deid.transforms.flow import Demographics, demographics
from deid.transforms.verify import verify_slice
from deid.transforms.window import DemographicsLookup, HeldSlice, WindowResult, transform_window
from deid.zip3 import RESTRICTED_ZIP3

log = logging.getLogger("deid.worker")

RAW_TYPES = (RawCensusSnapshot, RawFlowEvent, RawHeartbeat)
_RESTRICTED = sorted(RESTRICTED_ZIP3)


def decode_raw(data: bytes | None) -> Record:
    """Decode one raw-topic message; refuses anything but the three raw record types."""
    if data is None:
        raise DecodeError("empty message")
    event = fast_flow_event(data)
    if event is not None:
        return event
    payload = loads(data)
    if type(payload) is not dict:
        raise DecodeError("record: expected a JSON object")
    record_type = payload.get("record_type")
    cls = RECORD_TYPES.get(record_type) if type(record_type) is str else None
    if cls is PlainFlowEvent:
        raise DecodeError("record_type: plaintext PHI is refused on a Kafka topic")
    if cls is None or not issubclass(cls, RAW_TYPES):
        raise DecodeError("record_type: not a raw site record")
    return cls.from_dict(payload)


def decode_site_record(data: bytes | None, site_code: str) -> Record:
    """decode_raw, and the record must be this worker's site's. Raises DecodeError."""
    record = decode_raw(data)
    if record.site_code != site_code:
        raise DecodeError("site_code: not this worker's site")
    return record


@dataclass
class WindowOutcome:
    result: WindowResult
    dead: list[tuple[int, str]]  # (index of the message in the window, reason)
    hashes: list[str] | None = None  # SHA-256 hex of each result.released text, if known
    native: bool = False


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def demographics_lookup(store: PatientKeyStore | None) -> DemographicsLookup | None:
    if store is None:
        return None

    def lookup(event: RawFlowEvent) -> Demographics:
        return store.decrypt_phi_as(
            event.surrogate_id, event.key_id, event.phi_ciphertext, demographics
        )

    return lookup


def reference_window(
    values: Sequence[bytes | None],
    *,
    site_code: str,
    policy: Policy | None,
    keystore: PatientKeyStore | None,
    window_id: str,
    produced_at: datetime,
) -> WindowOutcome:
    """The Python reference: decode every message, then transform_window."""
    records: list[Record] = []
    sources: list[int] = []
    dead: list[tuple[int, str]] = []
    for index, value in enumerate(values):
        try:
            record = decode_site_record(value, site_code)
        except DecodeError as exc:
            dead.append((index, str(exc)))
            continue
        records.append(record)
        sources.append(index)
    if keystore is not None:
        keystore.preload(r.key_id for r in records if isinstance(r, RawFlowEvent))
    result = transform_window(
        records,  # type: ignore[arg-type]
        policy,
        demographics_of=demographics_lookup(keystore),
        window_id=window_id,
        produced_at=produced_at,
    )
    dead.extend((sources[i], reason) for i, reason in result.rejected)
    return WindowOutcome(result, dead)


def native_window(
    values: Sequence[bytes | None],
    *,
    site_code: str,
    policy: Policy | None,
    keystore: PatientKeyStore | None,
    window_id: str,
    produced_at: datetime,
) -> WindowOutcome | None:
    """The same outcome as reference_window, with the flow events done by the native core;
    None when the core declines the window (then run reference_window)."""
    core = native.core
    if core is None or policy is None or keystore is None or not policy.rules_for("flow"):
        return None
    rules = native.flow_rules(policy)
    if rules is None:
        return None
    try:
        declined, others, n_flows, erased, slices = core.transform_flow_window(
            list(values),
            site_code,
            keystore.data_keys_for,
            rules,
            _RESTRICTED,
            policy.version,
            window_id,
            format_utc(produced_at),
        )
    except ValueError:  # rules outside what the core takes (e.g. labels needing escapes)
        return None
    except BaseException as exc:
        # A panic in the core (pyo3's PanicException derives from BaseException) is a bug in
        # it, not in the data: say so and let the reference do the window.
        if type(exc).__name__ != "PanicException":
            raise
        log.error("native core failed (%s): this window goes through the Python path", exc)
        return None
    if declined is not None:
        return None
    # The messages the core did not decode: the reference decoder takes them (and words
    # the dead-letter reasons); a flow event among them sends the window to the reference.
    rest: list[Record] = []
    dead: list[tuple[int, str]] = []
    for index in others:
        try:
            record = decode_site_record(values[index], site_code)
        except DecodeError as exc:
            dead.append((index, str(exc)))
            continue
        if isinstance(record, RawFlowEvent):
            return None
        rest.append(record)
    # Heartbeats and census snapshots: the reference transform (no flow events in `rest`).
    result = transform_window(
        rest,  # type: ignore[arg-type]
        policy,
        demographics_of=None,
        window_id=window_id,
        produced_at=produced_at,
    )
    result.processed += n_flows
    result.erased += erased
    hashes = [sha256_hex(t) for t in result.released]
    flow_rules = policy.rules_for("flow")
    for audience, status, texts, digests, suppressed, n_out in slices:
        rule = flow_rules[Audience(audience)]
        if status == 2:
            reason = (
                f"k-anonymity (k={rule.k}) would suppress {suppressed} of {n_out} "
                f"records, more than max_suppression={rule.max_suppression}"
            )
            result.held.append(HeldSlice("flow", audience, [reason], texts))
            result.held_records += len(texts)
            continue
        result.suppressed_records += suppressed
        if not texts:
            continue
        if status == 1:
            # The core's verifier was not sure: the Python verifier decides and words it.
            problems = verify_slice(
                "flow",
                [json_loads(t) for t in texts],
                rule,
                policy_version=policy.version,
                audience=audience,
                text="\n".join(texts),
            )
            if problems:
                result.held.append(HeldSlice("flow", audience, problems, texts))
                result.held_records += len(texts)
                continue
        result.released.extend(texts)
        hashes.extend(digests)
    return WindowOutcome(result, dead, hashes, native=True)


def identity_window(
    values: Sequence[bytes | None], *, site_code: str, use_native: bool
) -> WindowOutcome:
    """The benchmark's identity worker: decode and re-encode every record, no transform.
    With the native core, flow events are decoded and re-encoded (and hashed) natively, as
    the real worker decodes them; the rest goes through the reference decoder."""
    encoded = (
        native.core.reencode_flow_events(list(values), site_code)
        if use_native and native.core is not None
        else [None] * len(values)
    )
    released: list[str] = []
    hashes: list[str] = []
    dead: list[tuple[int, str]] = []
    for index, value in enumerate(values):
        done = encoded[index]
        if done is not None:
            released.append(done[0])
            hashes.append(done[1])
            continue
        try:
            record = decode_site_record(value, site_code)
        except DecodeError as exc:
            dead.append((index, str(exc)))
            continue
        text = canonical_json(record.to_dict())
        released.append(text)
        hashes.append(sha256_hex(text))
    return WindowOutcome(
        WindowResult(released=released, processed=len(released)), dead, hashes, native=use_native
    )


def process_window(
    values: Sequence[bytes | None],
    *,
    site_code: str,
    policy: Policy | None,
    keystore: PatientKeyStore | None,
    window_id: str,
    produced_at: datetime,
    use_native: bool,
) -> WindowOutcome:
    """The worker's window: native where the core takes it, else the reference."""
    if use_native:
        outcome = native_window(
            values,
            site_code=site_code,
            policy=policy,
            keystore=keystore,
            window_id=window_id,
            produced_at=produced_at,
        )
        if outcome is not None:
            return outcome
    return reference_window(
        values,
        site_code=site_code,
        policy=policy,
        keystore=keystore,
        window_id=window_id,
        produced_at=produced_at,
    )
