"""The travel-time version (``inputs.travel_version``, migration ``0003_travel_version``): one
row read instead of a scan of every travel time, and still moved by every change, so the
neighbour lists kept per worker (``services._neighbourhood``) are rebuilt the next minute."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from hub.coordination import inputs, services
from hub.registry import services as registry
from hub.registry.models import TravelTime

from .db import World, world

pytestmark = [pytest.mark.postgres]


def _committed() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version FROM coordination_travel_version WHERE id = 1")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db
def test_a_change_in_this_transaction_moves_the_version() -> None:
    w = world()
    before = inputs.travel_version(w.region)
    assert inputs.travel_version(w.region) == before  # reading does not move it
    registry.travel_time_set(origin=w.h.hospital, destination=w.g.hospital, minutes=40)
    after_update = inputs.travel_version(w.region)
    assert after_update != before
    TravelTime.objects.filter(origin=w.h.hospital, destination=w.g.hospital).delete()
    assert inputs.travel_version(w.region) not in (before, after_update)


@pytest.mark.django_db
def test_the_kept_neighbour_lists_follow_a_changed_travel_time() -> None:
    w = world()
    config = services.region_config(w.region)
    h, g = w.h.hospital.site_code, w.g.hospital.site_code
    first = services._neighbourhood(w.region, config)
    assert (12.0, g) in first.of(h)
    assert services._neighbourhood(w.region, config) is first  # kept while unchanged
    registry.travel_time_set(origin=w.h.hospital, destination=w.g.hospital, minutes=31)
    again = services._neighbourhood(w.region, config)
    assert again is not first
    assert (31.0, g) in again.of(h)
    assert (12.0, g) not in again.of(h)


@pytest.mark.django_db(transaction=True)
def test_each_committed_change_bumps_the_counter_once() -> None:
    with transaction.atomic():
        w: World = world()  # several travel times in one transaction
    start = _committed()
    with transaction.atomic():
        registry.travel_time_set(origin=w.h.hospital, destination=w.g.hospital, minutes=20)
        registry.travel_time_set(origin=w.h.hospital, destination=w.g.hospital, minutes=21)
        assert _committed() == start  # bumped at commit, not before
    assert _committed() == start + 1
    TravelTime.objects.filter(origin=w.h.hospital).delete()  # autocommit: its own transaction
    assert _committed() == start + 2
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE registry_traveltime")
    assert _committed() == start + 3
    with transaction.atomic():
        TravelTime.objects.filter(pk=-1).update(minutes=1)  # no row changed: no bump
    assert _committed() == start + 3
