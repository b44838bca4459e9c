"""A seeded region for the coordination pages' tests, built with the project's own seeding
and services, not hand-written rows:

* ``hub.registry.seeding.region_seed`` makes four real-sized hospitals (bed counts shaped
  like the HHS file's, labelled synthetic) with units and travel times;
* each hospital's DE-ID worker is enrolled (``registry.services.agent_register``) and its
  census arrives as signed envelopes through the real ingest path
  (``census.ingest.envelope_into_batch`` → ``census.services.census_ingest_batch``);
* ``coordination.services.region_evaluate`` turns that into recommendations, surge levels
  and alerts. The largest hospital is saturated (ED over capacity, boarders, slow handovers,
  ICU full), so the region has at least one pending diversion recommendation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from deid.contracts import UnitType
from deid.signing import generate_signing_key, public_key_b64
from governance.access import assign_role, grant_hospital
from governance.roles import Role
from hub.census.ingest import IngestBatch, SiteDirectory, envelope_into_batch
from hub.census.services import census_ingest_batch
from hub.coordination import models as m
from hub.coordination import services
from hub.registry import services as registry
from hub.registry.hhs import Figure, HospitalCapacity
from hub.registry.models import Hospital, Region
from hub.registry.seeding import region_seed
from tests.hub.support import census, seal

# (CMS id, adult inpatient beds, adult ICU beds): sizes like the Hudson Valley's.
SIZES = (("330100", 620, 48), ("330200", 310, 22), ("330300", 180, 12), ("330400", 120, 8))


@dataclass
class CoordWorld:
    region: Region
    pressed: Hospital  # saturated: the rules recommend diverting its ambulances
    others: list[Hospital]
    keys: dict[str, Any] = field(default_factory=dict)

    @property
    def hospitals(self) -> list[Hospital]:
        return [self.pressed, *self.others]

    def pending(self) -> m.DiversionRecommendation:
        return m.DiversionRecommendation.objects.get(
            hospital=self.pressed, state=m.DiversionRecommendation.State.PENDING
        )


def _capacity(pk: str, inpatient: int, icu: int) -> HospitalCapacity:
    week = "2024-04-26"
    return HospitalCapacity(
        pk,
        "Westchester",
        "36119",
        {
            "total_adult_inpatient_avg": Figure(float(inpatient), week, False),
            "total_staffed_adult_icu_avg": Figure(float(icu), week, False),
        },
    )


def report(hospital: Hospital, key: Any, *, pressed: bool, at: datetime | None = None) -> None:
    """One signed envelope with every unit's census, ingested as the consumer would."""
    at = at or timezone.now()
    records = []
    for unit in hospital.units.all():
        beds = unit.staffed_beds
        if unit.unit_type == "emergency":
            if pressed:
                figures = {
                    "occupied_beds": beds + 2,
                    "available_beds": 0,
                    "ed_waiting": beds // 2,
                    "ed_boarding": max(6, beds // 3),
                    "longest_boarding_minutes": 420,
                    "offload_p90_minutes": 85,
                }
            else:
                figures = {"occupied_beds": beds // 2, "available_beds": beds - beds // 2}
                figures |= {"ed_boarding": 0, "offload_p90_minutes": 20}
            records.append(
                census(
                    hospital.site_code,
                    unit.code,
                    at=at,
                    unit_type=UnitType.EMERGENCY,
                    staffed_beds=beds,
                    **figures,
                )
            )
            continue
        occupied = beds if pressed else int(beds * 0.7)
        records.append(
            census(
                hospital.site_code,
                unit.code,
                at=at,
                unit_type=UnitType(unit.unit_type),
                staffed_beds=beds,
                occupied_beds=occupied,
                available_beds=beds - occupied,
            )
        )
    batch = IngestBatch()
    envelope_into_batch(
        seal(records, key, hospital.site_code),
        directory=SiteDirectory(),
        batch=batch,
        received_at=at,
        via="kafka",
    )
    assert not batch.rejections, batch.rejections
    census_ingest_batch(batch=batch)


def coord_world(code: str = "web-coord") -> CoordWorld:
    seeded = region_seed(
        capacities={pk: _capacity(pk, beds, icu) for pk, beds, icu in SIZES},
        region_code=code,
        region_name="Synthetic coordination region",
        counties=("Westchester",),
        hospitals=len(SIZES),
    )
    hospitals = sorted(seeded.hospitals, key=lambda h: h.site_code)
    world = CoordWorld(region=seeded.region, pressed=hospitals[0], others=hospitals[1:])
    for h in hospitals:
        key = generate_signing_key()
        registry.agent_register(hospital=h, name="deid-worker", public_key=public_key_b64(key))
        world.keys[h.site_code] = key
        report(h, key, pressed=h == world.pressed)
    services.region_evaluate(region=world.region)
    return world


def history(world: CoordWorld, days: int = 5) -> int:
    """Census for the last ``days`` days (pressed and calm days alternating per hospital),
    then the benchmark KPIs per day from them (``benchmarks.services.kpis_refresh``)."""
    from hub.benchmarks.services import kpis_refresh

    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for d in range(days, 0, -1):
        for i, h in enumerate(world.hospitals):
            report(h, world.keys[h.site_code], pressed=(d + i) % 2 == 0, at=now - timedelta(days=d))
    return kpis_refresh(
        hospitals=Hospital.objects.filter(region=world.region),
        period="day",
        since=now - timedelta(days=days + 1),
        until=now,
    )


def person(username: str, role: Role, hospital: Hospital | None = None) -> Any:
    user = get_user_model()._default_manager.create_user(username=username, password=None)
    if hospital is None:
        assign_role(user, role)
    else:
        grant_hospital(user, hospital, role)
    return user


def run_tasks_here(monkeypatch: Any) -> list[int]:
    """For browser tests (real commits): Celery tasks run in-process, as a worker would, and
    directives are recorded instead of published to the shared Kafka broker. Returns the list
    the directive ids are appended to."""
    from hub.celery import app as celery_app
    from hub.coordination import tasks

    published: list[int] = []

    class _Publish:
        @staticmethod
        def delay(directive_id: int) -> None:
            published.append(directive_id)

    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    monkeypatch.setattr(tasks, "publish_directive", _Publish)
    return published
