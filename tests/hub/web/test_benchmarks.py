"""Benchmarks: charts and peer ranking for the hospitals one may see, and a CSV of exactly
that; an executive sees their own hospital only, in the page and in the file."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client

from governance.models import AuditEvent
from governance.roles import Role
from hub.benchmarks.models import HospitalKpi
from tests.hub.web.coordination_world import CoordWorld, coord_world, history, person

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def world() -> CoordWorld:
    w = coord_world()
    assert history(w, days=4) > 0
    return w


def test_an_executive_sees_only_their_own_hospital(client: Client, world: CoordWorld) -> None:
    own, others = world.others[0], [world.pressed, *world.others[1:]]
    client.force_login(person("exec", Role.EXECUTIVE, own))
    response = client.get("/benchmarks/", {"kpi": "bed_occupancy", "period": "day"})
    assert response.status_code == 200
    html = response.content.decode()
    assert own.name in html
    for h in others:
        assert h.name not in html
        assert h.site_code not in html

    export = client.get("/benchmarks/export.csv", {"kpi": "bed_occupancy", "period": "day"})
    assert export.status_code == 200
    assert export["Content-Type"].startswith("text/csv")
    body = export.content.decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows
    assert {r["hospital"] for r in rows} == {own.name}
    for h in others:
        assert h.name not in body
        assert h.site_code not in body


def test_the_csv_is_what_the_page_shows_and_is_audited(client: Client, world: CoordWorld) -> None:
    client.force_login(person("operator", Role.REGIONAL_OPERATOR))
    chosen = world.hospitals[:2]
    params: dict[str, Any] = {
        "kpi": "icu_occupancy",
        "period": "day",
        "hospitals": [h.pk for h in chosen],
    }
    html = client.get("/benchmarks/", params).content.decode()
    assert 'data-chart="bench-chart"' in html
    assert "Peer ranking" in html
    export = client.get("/benchmarks/export.csv", params)
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    expected = HospitalKpi.objects.filter(period="day", hospital__in=chosen)
    assert len(rows) == expected.count()
    assert {r["hospital"] for r in rows} == {h.name for h in chosen}
    assert list(rows[0]) == [
        "hospital",
        "period",
        "period_start",
        "peer_group",
        "icu_occupancy",
        "suppressed",
    ]
    event = AuditEvent.objects.filter(action="read_benchmarks").order_by("-id").first()
    assert event is not None
    assert sorted(event.hospital_ids) == sorted(h.pk for h in chosen)
    assert len(event.object_ids) == len(rows)


def test_bad_filters_show_the_error_not_a_500(client: Client, world: CoordWorld) -> None:
    client.force_login(person("operator", Role.REGIONAL_OPERATOR))
    r = client.get("/benchmarks/", {"kpi": "happiness", "since": "yesterday"})
    assert r.status_code == 200
    assert 'class="error"' in r.content.decode()
    assert client.get("/benchmarks/export.csv", {"kpi": "happiness"}).status_code == 400


def test_ed_staff_cannot_read_benchmarks(client: Client, world: CoordWorld) -> None:
    client.force_login(person("ed", Role.ED_STAFF, world.pressed))
    assert client.get("/benchmarks/").status_code == 403
    assert client.get("/benchmarks/export.csv").status_code == 403
