"""A seeded region for the board and hospital page tests: synthetic hospitals sized like the
Hudson Valley's (``hub.registry.seeding``; no data file from outside the repo), hours of
census history through the real ingest path (``hub.demo.history``), coordination statuses,
and a user per role."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from governance import access
from governance.roles import Role
from hub.coordination.models import HospitalStatus
from hub.demo.history import census_history_seed
from hub.registry.hhs import Figure, HospitalCapacity
from hub.registry.models import Hospital, Unit
from hub.registry.seeding import DEFAULT_COUNTIES, region_seed

# (adult inpatient beds, adult ICU beds), biggest first: sizes like the region's hospitals.
_SIZES = (
    *((640, 52), (560, 44), (480, 36), (420, 30), (350, 24), (300, 20), (260, 18), (220, 16)),
    *((190, 12), (170, 12), (150, 10), (130, 10), (110, 8), (100, 8), (90, 6), (80, 6)),
)
_WEEK = "2024-04-26"


@functools.cache
def capacities() -> dict[str, HospitalCapacity]:
    """Synthetic capacity figures in the shape of the HHS file, spread over the counties."""
    out = {}
    for i, (inpatient, icu) in enumerate(_SIZES):
        pk = f"33{i + 1:02d}00"
        out[pk] = HospitalCapacity(
            pk,
            DEFAULT_COUNTIES[i % len(DEFAULT_COUNTIES)],
            f"36{i:03d}",
            {
                "total_adult_inpatient_avg": Figure(float(inpatient), _WEEK, False),
                "total_staffed_adult_icu_avg": Figure(float(icu), _WEEK, False),
            },
        )
    return out


@dataclass
class Seeded:
    hospitals: list[Hospital]
    now: datetime
    users: dict[str, Any] = field(default_factory=dict)

    @property
    def a(self) -> Hospital:
        return self.hospitals[0]

    @property
    def b(self) -> Hospital:
        return self.hospitals[1]

    def ward_of(self, hospital: Hospital) -> Unit:
        return hospital.units.filter(unit_type="medical_surgical").order_by("code").first()  # type: ignore[return-value]


def seed_region(
    n: int = 4,
    *,
    hours: int = 24,
    interval: timedelta = timedelta(hours=1),
    silent_for: dict[int, timedelta] | None = None,
    pressure: dict[int, float] | None = None,
    flagged: tuple[int, ...] = (),
    counties: tuple[str, ...] = DEFAULT_COUNTIES,
    history: bool = True,
    now: datetime | None = None,
) -> Seeded:
    """``n`` hospitals (the biggest first), each reporting every ``interval`` for ``hours``
    up to ``now`` (default: the present); ``silent_for``, ``pressure`` and ``flagged`` (sites
    reporting their own feed overdue) name hospitals by index."""
    result = region_seed(
        capacities=capacities(),
        region_code="board-test",
        region_name="Board test region (synthetic)",
        hospitals=n,
        counties=counties,
    )
    hospitals = result.hospitals
    now = now or timezone.now()
    if not history:
        return Seeded(hospitals=hospitals, now=now)
    census_history_seed(
        hospitals=hospitals,
        hours=hours,
        interval=interval,
        now=now,
        pressure={hospitals[i].site_code: p for i, p in (pressure or {}).items()},
        silent_for={hospitals[i].site_code: s for i, s in (silent_for or {}).items()},
        flagged_stale=[hospitals[i].site_code for i in flagged],
    )
    return Seeded(hospitals=hospitals, now=now)


def set_status(hospital: Hospital, *, diversion: str = "open", surge: int | None = 1) -> None:
    HospitalStatus.objects.update_or_create(
        hospital=hospital,
        defaults={"diversion_status": diversion, "surge_level": surge, "fresh": True},
    )


def make_user(username: str, role: Role | None, *, hospital: Any = None, unit: Any = None) -> Any:
    user = get_user_model()._default_manager.create_user(username=username, password=None)
    if role is None:
        return user
    if role in access.REGION_WIDE:
        access.assign_role(user, role)
    if hospital is not None:
        access.grant_hospital(user, hospital, role)
    if unit is not None:
        access.grant_unit(user, unit, role)
    return user
