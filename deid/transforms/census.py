"""Census snapshots -> CensusRecord dicts for one audience, with small-cell suppression.

Operational capacity figures go to regional operations exactly (the default policy gives that
audience no threshold), because diversion depends on them. Audiences with a threshold get
counts 1..threshold withheld (zero is shown: it discloses no one), plus complementary
suppression so that a withheld cell cannot be recomputed from a published total and the other
published parts.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deid.contracts.raw import RawCensusSnapshot, RawHeartbeat
from deid.contracts.regional import CensusRecord, HeartbeatRecord
from deid.contracts.vocabulary import Audience, DateGranularity
from deid.policy import CENSUS_COUNT_FIELDS, AudienceRule
from deid.transforms.generalise import generalise_timestamp

# Released records get ids derived from the raw record's random id, the audience and the
# policy version: a replay yields the same ids, so downstream upserts stay idempotent. The
# input is a random UUID, not patient data (164.514(c) concerns codes derived from PHI).
EVENT_ID_NAMESPACE = uuid.UUID("6f1f0c1e-4a53-4d0b-9a55-2f6c1f7e3b10")


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes
# RFC 4122 variant bits on the 17th hex digit: (nibble & 0x3) | 0x8.
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


def derived_event_id(source_event_id: str, audience: str, policy_version: int | None) -> str:
    """uuid.uuid5(EVENT_ID_NAMESPACE, "source|audience|version"), computed on the hex string
    without UUID objects (this runs for every released record)."""
    h = hashlib.sha1(
        _NAMESPACE_BYTES + f"{source_event_id}|{audience}|{policy_version}".encode(),
        usedforsecurity=False,
    ).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


# Totals and the parts that add up to them. A relation only matters when every member is
# released: then one withheld member could be recomputed from the others.
CENSUS_RELATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("staffed_beds", ("occupied_beds", "available_beds", "blocked_beds")),
)


def suppress_cells(
    cells: Mapping[str, int | None],
    threshold: int,
    relations: Sequence[tuple[str, Sequence[str]]] = CENSUS_RELATIONS,
) -> set[str]:
    """Names of the cells to withhold: primary (1..threshold) and complementary.

    Complementary rule: whenever a relation (total = sum of parts) with all members published
    would have exactly one member withheld, withhold one more member too: the smallest
    positive part, or else the total. Repeat until no relation has a single withheld member.
    """
    if threshold <= 0:
        return set()
    withheld = {name for name, v in cells.items() if v is not None and 1 <= v <= threshold}
    if not withheld:
        return withheld
    changed = True
    while changed:
        changed = False
        for total, parts in relations:
            members = (total, *parts)
            if any(cells.get(m) is None for m in members):
                continue
            hidden = [m for m in members if m in withheld]
            if len(hidden) != 1:
                continue
            open_parts = [p for p in parts if p not in withheld]
            positive = sorted(
                (p for p in open_parts if (cells[p] or 0) > 0), key=lambda p: (cells[p], p)
            )
            pick = positive[0] if positive else (open_parts[0] if open_parts else total)
            if pick == hidden[0]:  # only the total was open and it is the withheld one
                pick = total
            if pick not in withheld:
                withheld.add(pick)
                changed = True
    return withheld


def _percentile(values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile (no interpolation: every output is an observed value)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return ordered[int(rank) - 1]


def transform_census(
    raw: RawCensusSnapshot,
    rule: AudienceRule,
    *,
    audience: Audience,
    policy_version: int,
    produced_at: str,
) -> dict[str, Any]:
    """One CensusRecord (as its to_dict() form) for `audience`."""
    fields = rule.fields
    g = rule.date_granularity
    values: dict[str, Any] = {
        "unit_code": raw.unit_code,
        "unit_type": raw.unit_type,
        "as_of": generalise_timestamp(raw.as_of, g),
        "licensed_beds": raw.licensed_beds,
        "staffed_beds": raw.staffed_beds,
        "surge_beds": raw.surge_beds,
        "occupied_beds": raw.occupied_beds,
        "available_beds": raw.available_beds,
        "blocked_beds": raw.blocked_beds,
        "pending_admissions": raw.pending_admissions,
        "pending_discharges": raw.pending_discharges,
        "ed_waiting": raw.ed_waiting,
        "ed_in_treatment": raw.ed_in_treatment,
        "ed_boarding": raw.ed_boarding,
        "longest_boarding_minutes": raw.longest_boarding_minutes,
        "boarding_p50_minutes": _percentile(raw.boarding_minutes, 50),
        "boarding_p90_minutes": _percentile(raw.boarding_minutes, 90),
        "offload_count": len(raw.offload_minutes) if raw.offload_minutes else None,
        "offload_p50_minutes": _percentile(raw.offload_minutes, 50),
        "offload_p90_minutes": _percentile(raw.offload_minutes, 90),
        "source": raw.source,
        "last_message_at": (
            generalise_timestamp(raw.last_message_at, g) if raw.last_message_at else None
        ),
        "stale": raw.stale,
        # Rounded to two decimals: beds to a hundredth is plenty, and it keeps every float
        # in a canonical form that all JSON libraries write alike (see canonical_json).
        "forecast": [
            {
                "horizon_hours": p.horizon_hours,
                "p10": round(p.p10, 2),
                "p50": round(p.p50, 2),
                "p90": round(p.p90, 2),
            }
            for p in raw.forecast
        ],
    }
    out: dict[str, Any] = {
        "record_type": CensusRecord.record_type,
        "schema_version": CensusRecord.schema_version,
        "site_code": raw.site_code,
        "event_id": derived_event_id(raw.event_id, audience, policy_version),
        "produced_at": produced_at,
        "policy_version": policy_version,
        "audience": audience,
        "source_event_id": raw.event_id,
    }
    for name, value in values.items():
        out[name] = value if name in fields else ([] if name == "forecast" else None)
    withheld: set[str] = set()
    if rule.small_cell_threshold > 0:
        counts = {n: out[n] for n in CENSUS_COUNT_FIELDS if n in fields}
        withheld = suppress_cells(counts, rule.small_cell_threshold)
        for name in withheld:
            out[name] = None
    out["suppressed"] = sorted(withheld)
    return out


def transform_heartbeat(
    raw: RawHeartbeat,
    rule: AudienceRule,
    *,
    policy_version: int | None,
    produced_at: str,
) -> dict[str, Any]:
    """A site agent heartbeat for regional operations (also sent without a policy)."""
    fields = rule.fields
    return {
        "record_type": HeartbeatRecord.record_type,
        "schema_version": HeartbeatRecord.schema_version,
        "site_code": raw.site_code,
        "event_id": derived_event_id(raw.event_id, Audience.REGIONAL_OPERATIONS, policy_version),
        "produced_at": produced_at,
        "policy_version": policy_version,
        "audience": Audience.REGIONAL_OPERATIONS,
        "source_event_id": raw.event_id,
        "component": "site_agent",
        "agent_version": raw.agent_version if "agent_version" in fields else "",
        "feeds": [
            {
                "name": f.name,
                "source": f.source,
                "last_message_at": (
                    generalise_timestamp(f.last_message_at, DateGranularity.MINUTE)
                    if f.last_message_at
                    else None
                ),
                "stale": f.stale,
            }
            for f in raw.feeds
        ]
        if "feeds" in fields
        else [],
        "outbox_backlog": raw.outbox_backlog if "outbox_backlog" in fields else None,
        "counters": {},
    }


# Used when no valid policy is in force (fail closed): heartbeats only, with these fields.
HEARTBEAT_ONLY_RULE = AudienceRule(
    fields=frozenset({"agent_version", "feeds", "outbox_backlog"}),
    date_granularity=DateGranularity.MINUTE,
)


def relation_leaks(
    record: Mapping[str, Any], relations: Iterable[tuple[str, Sequence[str]]] = CENSUS_RELATIONS
) -> list[str]:
    """Relations in which exactly one member is withheld while all others are published:
    the withheld value could be recomputed. Used by verification."""
    suppressed = set(record.get("suppressed") or ())
    leaks = []
    for total, parts in relations:
        members = (total, *parts)
        hidden = [m for m in members if m in suppressed]
        shown = [m for m in members if record.get(m) is not None]
        if len(hidden) == 1 and len(shown) == len(members) - 1:
            leaks.append(f"{hidden[0]} recoverable from {total} = {' + '.join(parts)}")
    return leaks
