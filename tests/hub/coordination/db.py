"""Registry rows and live census states for the coordination tests that need the database."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.utils import timezone

from hub.census.models import UnitState
from hub.registry import services as registry
from hub.registry.models import Hospital, Region, Unit
from tests.hub.support import HospitalFactory, RegionFactory, UnitFactory

_n = itertools.count(1)


def unit_state(unit: Unit, *, at: datetime | None = None, **figures: Any) -> UnitState:
    """Upsert the unit's live state (what ingestion keeps per unit)."""
    at = at or timezone.now()
    values: dict[str, Any] = {
        "hospital": unit.hospital,
        "event_id": uuid.uuid4(),
        "observed_at": at,
        "policy_version": 1,
        "produced_at": at,
        "received_at": at,
        "key_id": "test",
        "via": "kafka",
        "staffed_beds": unit.staffed_beds,
        **figures,
    }
    state, _ = UnitState.objects.update_or_create(
        unit=unit, audience="regional_operations", defaults=values
    )
    return state


@dataclass
class Site:
    hospital: Hospital
    ed: Unit
    icu: Unit
    ward: Unit


def new_region(code: str) -> Region:
    return cast(Region, RegionFactory(code=code, name=f"Synthetic region {code}"))


def site(region: Region, code: str, **capabilities: Any) -> Site:
    h = cast(
        Hospital,
        HospitalFactory(region=region, site_code=f"{code}{next(_n)}", name=f"Synthetic {code}"),
    )
    for k, v in capabilities.items():
        setattr(h, k, v)
    h.save()

    def unit(code: str, unit_type: str, beds: int) -> Unit:
        return cast(
            Unit, UnitFactory(hospital=h, code=code, unit_type=unit_type, staffed_beds=beds)
        )

    return Site(
        hospital=h,
        ed=unit("ED", "emergency", 20),
        icu=unit("ICU", "adult_icu", 10),
        ward=unit("W1", "medical_surgical", 100),
    )


def calm(s: Site, at: datetime | None = None) -> None:
    unit_state(s.ed, at=at, occupied_beds=10, available_beds=10, ed_boarding=0)
    unit_state(s.icu, at=at, occupied_beds=5, available_beds=5)
    unit_state(s.ward, at=at, occupied_beds=70, available_beds=30)


def saturated(s: Site, at: datetime | None = None) -> None:
    """ED full with boarders and slow handovers: well above the closing pressure."""
    unit_state(
        s.ed,
        at=at,
        occupied_beds=21,
        available_beds=0,
        ed_boarding=6,
        longest_boarding_minutes=400,
        offload_p90_minutes=80,
    )
    unit_state(s.icu, at=at, occupied_beds=10, available_beds=0)
    unit_state(s.ward, at=at, occupied_beds=99, available_beds=1)


@dataclass
class World:
    region: Region
    h: Site  # the pressed hospital
    g: Site  # its nearest calm neighbour
    others: list[Site]


def world() -> World:
    region = new_region(f"coord-{next(_n)}")
    h, g = site(region, "H"), site(region, "G")
    others = [site(region, f"C{i}") for i in range(3)]
    saturated(h)
    for s in (g, *others):
        calm(s)
    registry.travel_time_set(origin=h.hospital, destination=g.hospital, minutes=12)
    for i, o in enumerate(others):
        registry.travel_time_set(origin=h.hospital, destination=o.hospital, minutes=25 + i)
    return World(region=region, h=h, g=g, others=others)
