"""`python -m deid transform` and `python -m deid verify`: the stream's transform and checks,
offline, on JSON Lines files (audits, governance previews of a policy, tests).

transform: reads raw records, one JSON object per line: `raw.census_snapshot`,
`raw.flow_event` (PHI encrypted: needs `--keystore` and the master key in DEID_MASTER_KEY,
as at the site), `raw.heartbeat`, or the offline-only `raw.flow_event.plain` (PHI in the
clear; such files never leave the site). Records are cut into release windows of the
policy's `release_window.max_records`, in file order, and go through exactly the function the
worker uses (`transform_window`). Writes released regional records to --out (one canonical
JSON per line) and held slices, with their reasons, to <out>.held.jsonl. Exit 0 when every
line was transformed, 1 if some lines were rejected or slices held (all are reported), 2 on a
bad policy.

verify: reads regional records (or signed envelopes, one per line, as dumped from the topic)
and checks them against the policy: allowed fields per audience, granularity, age bands and
90+ top-code, ZIP3 rules, small cells and complementary suppression, k and l per release
window, identifier patterns in the text. Exit 0 when it passes, 1 with the reasons when not.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deid.contracts._base import record_from_dict
from deid.contracts._codec import DecodeError
from deid.contracts.envelope import ENVELOPE_RECORD_TYPE, EnvelopeError, open_envelope
from deid.contracts.raw import PlainFlowEvent, RawCensusSnapshot, RawFlowEvent, RawHeartbeat
from deid.contracts.regional import CensusRecord, FlowRecord, HeartbeatRecord
from deid.contracts.vocabulary import Audience
from deid.keystore import PatientKeyStore
from deid.policy import Policy, PolicyError, load_policy_file
from deid.transforms.flow import Demographics, demographics
from deid.transforms.verify import KIND_OF_RECORD_TYPE, scan_text, verify_slice
from deid.transforms.window import transform_window

RawInput = RawCensusSnapshot | RawFlowEvent | RawHeartbeat | PlainFlowEvent


def _load_policy(args: argparse.Namespace) -> Policy:
    from deid.cli import governance_keys

    keys = governance_keys(args.governance_key)
    return load_policy_file(args.policy, keys or None, allow_unsigned=args.allow_unsigned)


def run_transform(args: argparse.Namespace) -> int:
    try:
        policy = _load_policy(args)
    except (PolicyError, OSError, ValueError) as exc:
        print(f"policy refused: {exc}", file=sys.stderr)
        return 2
    store = PatientKeyStore.from_env(args.keystore) if args.keystore else None
    lookup = None
    if store is not None:
        ks = store

        def lookup_fn(event: RawFlowEvent) -> Demographics:
            return ks.decrypt_phi_as(
                event.surrogate_id, event.key_id, event.phi_ciphertext, demographics
            )

        lookup = lookup_fn
    problems: list[str] = []
    records: list[RawInput] = []
    with open(args.input, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = record_from_dict(json.loads(line))
            except (ValueError, DecodeError) as exc:
                problems.append(
                    f"line {line_no}: {exc if isinstance(exc, DecodeError) else 'not JSON'}"
                )
                continue
            if not isinstance(record, RawInput):
                problems.append(f"line {line_no}: not a raw record ({record.record_type})")
                continue
            if isinstance(record, RawFlowEvent) and store is None:
                problems.append(f"line {line_no}: encrypted flow event needs --keystore")
                continue
            records.append(record)
    released = held = suppressed = erased = 0
    held_path = Path(f"{args.out}.held.jsonl")
    now = datetime.now(UTC)
    with open(args.out, "w", encoding="utf-8") as out, held_path.open("w", encoding="utf-8") as hf:
        size = policy.window_max_records
        for start in range(0, len(records), size):
            window_id = str(uuid.uuid4())
            result = transform_window(
                records[start : start + size],
                policy,
                demographics_of=lookup,
                window_id=window_id,
                produced_at=now,
            )
            for text in result.released:
                out.write(text + "\n")
            for h in result.held:
                hf.write(
                    json.dumps(
                        {
                            "window_id": window_id,
                            "kind": h.kind,
                            "audience": h.audience,
                            "reasons": h.reasons,
                            "records": [json.loads(t) for t in h.records],
                        }
                    )
                    + "\n"
                )
                problems.extend(
                    f"window {window_id} {h.kind}/{h.audience} held: {r}" for r in h.reasons
                )
            problems.extend(f"record {start + i + 1}: {reason}" for i, reason in result.rejected)
            released += len(result.released)
            held += result.held_records
            suppressed += result.suppressed_records
            erased += result.erased
    for p in problems:
        print(p, file=sys.stderr)
    print(
        f"policy {policy.policy_id} v{policy.version}: {len(records)} raw records -> "
        f"{released} released, {suppressed} suppressed, {held} held, {erased} erased, "
        f"{len(problems)} problems; wrote {args.out}",
        file=sys.stderr,
    )
    return 1 if problems else 0


def _read_release(path: str, site_keys: list[str]) -> tuple[list[dict[str, Any]], list[str], str]:
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            problems.append(f"line {line_no}: not JSON")
            continue
        if isinstance(obj, dict) and obj.get("record_type") == ENVELOPE_RECORD_TYPE:
            if site_keys:
                try:
                    open_envelope(line, site_keys)
                except EnvelopeError as exc:
                    problems.append(f"line {line_no}: envelope: {exc}")
            items = obj.get("records", [])
        else:
            items = [obj]
        for item in items:
            try:
                record = record_from_dict(item)
            except DecodeError as exc:
                problems.append(f"line {line_no}: {exc}")
                continue
            if not isinstance(record, CensusRecord | FlowRecord | HeartbeatRecord):
                problems.append(f"line {line_no}: not a regional record ({record.record_type})")
                continue
            records.append(item)
    return records, problems, text


def run_verify(args: argparse.Namespace) -> int:
    try:
        policy = _load_policy(args)
    except (PolicyError, OSError, ValueError) as exc:
        print(f"policy refused: {exc}", file=sys.stderr)
        return 2
    site_keys = [args.site_key] if getattr(args, "site_key", None) else []
    records, problems, text = _read_release(args.release, site_keys)
    slices: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        slices[(KIND_OF_RECORD_TYPE[r["record_type"]], str(r.get("audience")))].append(r)
    for (kind, audience_name), members in sorted(slices.items()):
        try:
            audience = Audience(audience_name)
        except ValueError:
            problems.append(f"{kind}: unknown audience")
            continue
        rule = policy.rules_for(kind).get(audience)
        if rule is None:
            if kind == "heartbeat":
                from deid.transforms.census import HEARTBEAT_ONLY_RULE

                rule = HEARTBEAT_ONLY_RULE
            else:
                problems.append(
                    f"{kind}/{audience_name}: the policy releases nothing to this audience"
                )
                continue
        found = verify_slice(
            kind, members, rule, policy_version=policy.version, audience=audience_name
        )
        problems.extend(f"{kind}/{audience_name}: {p}" for p in found)
    problems.extend(f"identifier pattern in file: {kind}" for kind in scan_text(text))
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"FAILED: {len(problems)} problem(s) in {len(records)} records", file=sys.stderr)
        return 1
    print(f"OK: {len(records)} records conform to policy {policy.policy_id} v{policy.version}")
    return 0
