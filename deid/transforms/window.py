"""One release window: raw records in, verified regional records out (pure; no Kafka).

The stream worker and `python -m deid transform` both call `transform_window`, so the offline
preview is exactly what the stream releases. A window is cut into slices (record kind x
audience); each slice is transformed, made k-anonymous where the policy says so, serialised,
and verified on its serialised text. A slice that fails verification is held (with the
reasons), not released; the other slices of the window still go out, so a problem with, say,
peer-hospital flow records never delays the capacity figures regional operations depend on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deid.contracts._codec import canonical_json, format_utc
from deid.contracts.raw import (
    PlainFlowEvent,
    RawCensusSnapshot,
    RawFlowEvent,
    RawHeartbeat,
    RawRecord,
)
from deid.contracts.vocabulary import Audience
from deid.keystore import KeyDestroyed, KeyStoreError
from deid.policy import Policy
from deid.transforms.census import HEARTBEAT_ONLY_RULE, transform_census, transform_heartbeat
from deid.transforms.flow import (
    Demographics,
    audience_records,
    demographics,
    event_facts,
    flow_base,
)
from deid.transforms.kanon import enforce_k
from deid.transforms.verify import verify_slice

# Looks up a flow event's demographics (decrypting its PHI). Raises KeyDestroyed after an
# erasure, or another exception when the PHI cannot be read (the record is then rejected).
DemographicsLookup = Callable[[RawFlowEvent], Demographics]


@dataclass
class HeldSlice:
    kind: str
    audience: str
    reasons: list[str]
    records: list[str]  # canonical JSON, as it would have been released


@dataclass
class WindowResult:
    released: list[str] = field(default_factory=list)  # canonical JSON of regional records
    held: list[HeldSlice] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (input index, reason)
    processed: int = 0
    suppressed_records: int = 0
    suppressed_cells: int = 0
    erased: int = 0
    held_records: int = 0


def _serialise(records: list[dict[str, Any]]) -> list[str]:
    return [canonical_json(r) for r in records]


def _finish_slice(
    result: WindowResult,
    kind: str,
    audience: Audience,
    records: list[dict[str, Any]],
    policy: Policy | None,
    rule: Any,
) -> None:
    if not records:
        return
    texts = _serialise(records)
    problems = verify_slice(
        kind,
        records,
        rule,
        policy_version=policy.version if policy else None,
        audience=audience.value,
        text="\n".join(texts),
    )
    if problems:
        result.held.append(HeldSlice(kind, audience.value, problems, texts))
        result.held_records += len(texts)
    else:
        result.released.extend(texts)


def transform_window(
    records: Sequence[RawRecord],
    policy: Policy | None,
    *,
    demographics_of: DemographicsLookup | None,
    window_id: str,
    produced_at: datetime,
) -> WindowResult:
    """Transform, k-anonymise and verify one window of raw records (already decoded).

    With no policy (fail closed) only heartbeats are released. `demographics_of` decrypts a
    flow event's PHI; None means no key store: flow records then carry no age band, sex or
    ZIP3."""
    result = WindowResult()
    stamp = format_utc(produced_at)
    censuses: list[RawCensusSnapshot] = []
    flows: list[tuple[int, RawFlowEvent | PlainFlowEvent]] = []
    heartbeats: list[RawHeartbeat] = []
    for index, record in enumerate(records):
        if isinstance(record, RawCensusSnapshot):
            censuses.append(record)
        elif isinstance(record, RawFlowEvent | PlainFlowEvent):
            flows.append((index, record))
        elif isinstance(record, RawHeartbeat):
            heartbeats.append(record)
        else:  # pragma: no cover - the decoder only yields raw records
            result.rejected.append((index, "not a raw record type"))
    result.processed = len(records) - len(result.rejected)

    if heartbeats:
        hb_rules = policy.rules_for("heartbeat") if policy else {}
        hb_rule = hb_rules.get(Audience.REGIONAL_OPERATIONS, HEARTBEAT_ONLY_RULE)
        out = [
            transform_heartbeat(
                hb,
                hb_rule,
                policy_version=policy.version if policy else None,
                produced_at=stamp,
            )
            for hb in heartbeats
        ]
        _finish_slice(result, "heartbeat", Audience.REGIONAL_OPERATIONS, out, policy, hb_rule)

    if policy is None:
        # Fail closed: without a valid signed policy nothing but heartbeats leaves the site.
        result.suppressed_records += len(censuses) + len(flows)
        return result

    for audience, rule in policy.rules_for("census").items():
        out = [
            transform_census(
                c, rule, audience=audience, policy_version=policy.version, produced_at=stamp
            )
            for c in censuses
        ]
        result.suppressed_cells += sum(len(r["suppressed"]) for r in out)
        _finish_slice(result, "census", audience, out, policy, rule)

    flow_rules = policy.rules_for("flow")
    if not flows or not flow_rules:
        result.suppressed_records += len(flows) if not flow_rules else 0
        return result
    usable: list[tuple[RawFlowEvent | PlainFlowEvent, Demographics]] = []
    for index, event in flows:
        try:
            if isinstance(event, PlainFlowEvent):
                demo = demographics(event.phi)
            elif demographics_of is None:
                demo = Demographics(None, None, None)
            else:
                demo = demographics_of(event)
        except KeyDestroyed:
            # Crypto-shredded patient: nothing of them is released, not even the event.
            result.erased += 1
            continue
        except KeyStoreError as exc:  # unknown key, tampered or misplaced ciphertext
            result.rejected.append((index, f"phi: {type(exc).__name__}: {exc}"))
            continue
        except Exception as exc:
            # Only the exception type: a message could quote decrypted plaintext.
            result.rejected.append((index, f"phi: {type(exc).__name__}"))
            continue
        usable.append((event, demo))
    result.processed = len(records) - len(result.rejected)
    facts = [event_facts(e, demo) for e, demo in usable]
    occurred = [f.iso for f in facts]  # event times as isoformat() text, for k-anonymity
    bases = [
        flow_base(e, demo, f, policy_version=policy.version, produced_at=stamp, window_id=window_id)
        for (e, demo), f in zip(usable, facts, strict=True)
    ]
    events = [e for e, _ in usable]
    for audience, rule in flow_rules.items():
        out = audience_records(bases, events, facts, rule, audience)
        k = enforce_k(out, occurred, rule)
        result.suppressed_records += len(k.suppressed)
        kept = [out[i] for i in k.kept]
        if out and len(k.suppressed) > rule.max_suppression * len(out):
            reason = (
                f"k-anonymity (k={rule.k}) would suppress {len(k.suppressed)} of {len(out)} "
                f"records, more than max_suppression={rule.max_suppression}"
            )
            texts = _serialise(out)
            result.held.append(HeldSlice("flow", audience.value, [reason], texts))
            result.held_records += len(texts)
            result.suppressed_records -= len(k.suppressed)
            continue
        _finish_slice(result, "flow", audience, kept, policy, rule)
    return result
