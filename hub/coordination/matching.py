"""Resource sharing between hospitals: the request workflow and suggested matches.

A request (staff by role and shift, beds by bed type for patient transfers, OR time, or
equipment such as ventilators and infusion pumps) moves

    requested → offered → accepted → fulfilled
        └──────────┴──────────┴────→ cancelled

and every step is recorded by the service that applies it. Suggested matches come from live
availability: the census for beds, what hospitals declare spare for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.coordination import explain
from hub.coordination.config import SharingConfig
from hub.coordination.state import TravelTimes


class ResourceKind(StrEnum):
    STAFF = "staff"  # item: role, e.g. "icu_nurse"; shift: e.g. "2026-11-24 night"
    BED = "bed"  # item: unit type (deid vocabulary), e.g. "adult_icu"; quantity: patients
    OR_TIME = "or_time"  # item: theatre kind, e.g. "general"; quantity: minutes; shift: session
    EQUIPMENT = "equipment"  # item: e.g. "ventilator", "infusion_pump"


class RequestStatus(StrEnum):
    REQUESTED = "requested"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.REQUESTED: frozenset({RequestStatus.OFFERED, RequestStatus.CANCELLED}),
    # More offers may arrive while the request is "offered".
    RequestStatus.OFFERED: frozenset(
        {RequestStatus.OFFERED, RequestStatus.ACCEPTED, RequestStatus.CANCELLED}
    ),
    RequestStatus.ACCEPTED: frozenset({RequestStatus.FULFILLED, RequestStatus.CANCELLED}),
    RequestStatus.FULFILLED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
}


class InvalidTransition(ValueError):
    pass


def check_transition(current: RequestStatus, target: RequestStatus) -> RequestStatus:
    """``target`` if the workflow allows it from ``current``; raises InvalidTransition."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"a {current.value} request cannot become {target.value}")
    return target


@dataclass(frozen=True, slots=True, kw_only=True)
class Need:
    requester: str
    kind: ResourceKind
    item: str
    quantity: float
    shift: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Availability:
    hospital: str
    kind: ResourceKind
    item: str
    quantity: float  # free or declared spare, before the donor's reserve
    as_of: datetime
    shift: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Donor:
    hospital: str
    surge_level: int | None = None
    fresh: bool = True  # the hospital's census feed is current


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    hospital: str
    offerable: float  # what it can give after its reserve
    covers: float  # of what is still needed after the better matches before it
    travel_minutes: float | None
    explanation: str


UNITS = {
    ResourceKind.STAFF: ("staff member", "staff"),
    ResourceKind.BED: ("bed", "beds"),
    ResourceKind.OR_TIME: ("OR minute", "OR minutes"),
    ResourceKind.EQUIPMENT: ("unit", "units"),
}


def _travel(travel: TravelTimes, a: str, b: str) -> float | None:
    m = travel.get(a, {}).get(b)
    return m if m is not None else travel.get(b, {}).get(a)


def refusal(
    need: Need,
    a: Availability,
    donor: Donor | None,
    travel_minutes: float | None,
    now: datetime,
    cfg: SharingConfig,
) -> str | None:
    """Why this availability is not a match for the need; None if it is."""
    if a.hospital == need.requester:
        return "the requester itself"
    if a.kind is not need.kind or a.item != need.item:
        return "a different resource"
    if need.shift is not None and a.shift != need.shift:
        return "a different shift"
    age = (now - a.as_of).total_seconds() / 60
    if age > cfg.max_age_minutes.get(a.kind.value, 60.0):
        return f"availability {round(age)} min old"
    if donor is not None and not donor.fresh and a.kind is ResourceKind.BED:
        return "feed stale"
    level = donor.surge_level if donor is not None else None
    if level is not None and level > cfg.max_donor_level:
        return f"itself at OPEL {level}"
    if a.quantity - cfg.reserve.get(a.kind.value, 0.0) <= 0:
        return "nothing beyond its reserve"
    if travel_minutes is None and a.kind is ResourceKind.BED:
        return "no travel time known for a patient transfer"
    if travel_minutes is not None and travel_minutes > cfg.max_travel_minutes:
        return "too far"
    return None


def suggest_matches(
    need: Need,
    availability: Sequence[Availability],
    travel: TravelTimes,
    donors: Mapping[str, Donor],
    now: datetime,
    cfg: SharingConfig,
) -> tuple[Match, ...]:
    """Donors that can give, best first: those that cover the whole need, then nearest, then
    least pressed (lower surge level), then most to give. ``covers`` fills the need in that
    order, so the first few suggestions together show whether it can be met."""
    reserve = cfg.reserve.get(need.kind.value, 0.0)
    found: list[tuple[tuple[float, float, float, float], Availability, float, float | None]] = []
    for a in availability:
        donor = donors.get(a.hospital)
        minutes = _travel(travel, need.requester, a.hospital)
        if refusal(need, a, donor, minutes, now, cfg) is not None:
            continue
        offerable = a.quantity - reserve
        level = donor.surge_level if donor is not None and donor.surge_level is not None else 0
        key = (
            0.0 if offerable >= need.quantity else 1.0,
            minutes if minutes is not None else float("inf"),
            float(level),
            -offerable,
        )
        found.append((key, a, offerable, minutes))
    found.sort(key=lambda t: (t[0], t[1].hospital))
    out: list[Match] = []
    still = need.quantity
    one, many = UNITS[need.kind]
    for _, a, offerable, minutes in found[: cfg.max_suggestions]:
        covers = min(offerable, max(still, 0.0))
        still -= covers
        donor = donors.get(a.hospital)
        item = need.item.replace("_", " ")
        parts = [
            f"{a.hospital}: {explain.count(a.quantity)} {item} "
            f"{many if a.quantity != 1 else one} available"
        ]
        if reserve:
            parts[0] += f" ({explain.count(reserve)} kept in reserve)"
        if donor is not None and donor.surge_level is not None:
            parts.append(f"OPEL {donor.surge_level}")
        parts.append(
            f"{round(minutes)} minutes away" if minutes is not None else "travel time unknown"
        )
        parts.append(f"covers {explain.count(covers)} of {explain.count(need.quantity)}")
        out.append(
            Match(
                hospital=a.hospital,
                offerable=offerable,
                covers=covers,
                travel_minutes=minutes,
                explanation=", ".join(parts),
            )
        )
    return tuple(out)
