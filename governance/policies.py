"""Sharing-policy documents: validation, the body that gets signed, diff, preview (pure).

A sharing policy is a DE-ID policy body (``deid.policy``, docs/deid.md): per record kind and
audience (regional operations, peer hospitals, public benchmarks) which fields leave, at what
granularity, small-cell thresholds, k. Governance owns ``policy_id``, ``version``, ``sites``
and ``issued_at``: they are filled in from the database row, so the board edits only what is
shared. An optional ``retention`` object (ignored by the DE-ID worker) says how long the hub
keeps record-level data, e.g. ``{"flow_records_months": 24}``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid import policy as deid_policy
from deid.contracts.raw import RawRecord
from deid.testing.synthetic import SyntheticSite
from deid.transforms import transform_window

PolicyError = deid_policy.PolicyError
GOVERNED_KEYS = ("policy_format", "policy_id", "version", "sites", "issued_at")


def template() -> dict[str, Any]:
    """The shipped DE-ID template, as a starting point for a first draft."""
    doc = deid_policy.default_policy_document()
    for key in ("policy_id", "version", "sites", "issued_at"):
        doc.pop(key, None)
    return doc


def body(
    document: Mapping[str, Any], *, site_code: str, version: int, issued_at: datetime
) -> dict[str, Any]:
    """The policy body as it is validated, signed and sent: the board's document with the
    governed keys set from the row."""
    out = {k: v for k, v in document.items() if k not in GOVERNED_KEYS}
    out.update(
        policy_format=deid_policy.POLICY_FORMAT,
        policy_id=f"sharing-{site_code}",
        version=version,
        sites=[site_code],
        issued_at=issued_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return out


def validate(document: Mapping[str, Any], *, site_code: str, version: int) -> None:
    """Raise ``PolicyError`` when the document is not a valid DE-ID policy."""
    if not isinstance(document, Mapping):
        raise PolicyError("document: expected an object")
    retention = document.get("retention", {})
    if not isinstance(retention, Mapping) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in retention.values()
    ):
        raise PolicyError("retention: an object of positive whole months")
    deid_policy.parse_policy(
        body(document, site_code=site_code, version=version, issued_at=datetime.now(UTC))
    )


def sign(
    document: Mapping[str, Any],
    *,
    site_code: str,
    version: int,
    issued_at: datetime,
    key: Ed25519PrivateKey,
) -> dict[str, Any]:
    """The signed document ``{"policy": …, "signature": …}`` (``deid.policy.sign_policy``)."""
    signed: dict[str, Any] = deid_policy.sign_policy(
        body(document, site_code=site_code, version=version, issued_at=issued_at), key
    )
    return signed


def control_message(signed: Mapping[str, Any], *, site_code: str) -> bytes:
    return deid_policy.encode_policy_message(signed, site_codes=[site_code])


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    kind: str  # "added", "removed", "changed"
    before: Any = None
    after: Any = None


def diff(before: Any, after: Any, path: str = "") -> list[Change]:
    """Every difference between two documents, by JSON path (lists of fields as sets)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        changes: list[Change] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before:
                changes.append(Change(sub, "added", after=after[key]))
            elif key not in after:
                changes.append(Change(sub, "removed", before=before[key]))
            else:
                changes.extend(diff(before[key], after[key], sub))
        return changes
    if isinstance(before, list) and isinstance(after, list) and path.endswith("fields"):
        b, a = set(map(str, before)), set(map(str, after))
        return [Change(f"{path}[{v}]", "removed", before=v) for v in sorted(b - a)] + [
            Change(f"{path}[{v}]", "added", after=v) for v in sorted(a - b)
        ]
    if before != after:
        return [Change(path, "changed", before, after)]
    return []


@dataclass
class Preview:
    """What a draft would release from a synthetic sample (the DE-ID offline transform)."""

    records_in: int
    released: dict[str, int] = field(default_factory=dict)  # "kind/audience" -> count
    held: dict[str, list[str]] = field(default_factory=dict)  # "kind/audience" -> reasons
    suppressed_records: int = 0
    suppressed_cells: int = 0
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def preview(
    document: Mapping[str, Any],
    *,
    site_code: str,
    version: int,
    patients: int = 200,
    events: int = 2000,
    seed: int = 7,
    samples: int = 3,
) -> Preview:
    """Run the DE-ID window transform on synthetic records (seeded, obviously fake
    identifiers) under the draft, and summarise what each audience would receive."""
    now = datetime.now(UTC)
    parsed = deid_policy.parse_policy(
        body(document, site_code=site_code, version=version, issued_at=now)
    )
    site = SyntheticSite(site_code, seed=seed)
    records: list[RawRecord] = [
        *site.census(),
        *site.plain_flow_events(site.patients(patients), events),
    ]
    result = transform_window(
        records, parsed, demographics_of=None, window_id="governance-preview", produced_at=now
    )
    out = Preview(
        records_in=len(records),
        suppressed_records=result.suppressed_records,
        suppressed_cells=result.suppressed_cells,
    )
    counts: Counter[str] = Counter()
    for text in result.released:
        record = json.loads(text)
        kind = str(record.get("record_type", "?")).removeprefix("regional.")
        slot = f"{kind}/{record.get('audience', '?')}"
        counts[slot] += 1
        if len(out.samples.setdefault(slot, [])) < samples:
            out.samples[slot].append(record)
    out.released = dict(sorted(counts.items()))
    for held in result.held:
        out.held[f"{held.kind}/{held.audience}"] = list(held.reasons)[:10]
    return out
