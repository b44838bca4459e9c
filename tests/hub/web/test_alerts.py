"""The alerts inbox: newest first, unacknowledged highlighted, filters, acknowledgement."""

from __future__ import annotations

from html import escape
from typing import Any

import pytest
from django.test import Client

from governance.roles import Role
from hub.coordination import models as m
from hub.coordination.alerts_rules import breach_words
from tests.hub.web.coordination_world import CoordWorld, coord_world, person

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def world() -> CoordWorld:
    return coord_world()


@pytest.fixture
def operator(client: Client) -> Any:
    user = person("operator", Role.REGIONAL_OPERATOR)
    client.force_login(user)
    return user


def test_the_inbox_lists_live_alerts_highlighting_unacknowledged_ones(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    alerts = list(m.Alert.objects.exclude(state="resolved"))
    assert alerts  # the saturated hospital raises several
    html = client.get("/alerts/").content.decode()
    for a in alerts:
        assert f'id="alert-{a.pk}"' in html
    assert html.count("unacked") == len(alerts)
    assert f"{len(alerts)} unacknowledged" in html


def test_filter_by_severity(client: Client, world: CoordWorld, operator: Any) -> None:
    html = client.get("/alerts/", {"severity": "critical"}).content.decode()
    for a in m.Alert.objects.all():
        assert (f'id="alert-{a.pk}"' in html) == (a.severity == "critical")


def test_a_bad_filter_is_an_error_on_the_page_not_a_500(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    response = client.get("/alerts/", {"severity": "apocalyptic", "hospital": "nope"})
    assert response.status_code == 200
    assert 'class="error"' in response.content.decode()


def test_acknowledging_stops_the_highlight_and_keeps_the_note(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    alert = m.Alert.objects.filter(condition=True).first()
    assert alert is not None
    response = client.post(
        f"/alerts/{alert.pk}/acknowledge/", {"note": "bed manager called"}, follow=True
    )
    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.state == "acknowledged"
    assert alert.acknowledged_by == operator
    html = response.content.decode()
    assert "Acknowledged:" in html
    assert "bed manager called" in html
    # Acknowledging twice leaves it acknowledged; an unknown alert is a 404.
    assert client.post(f"/alerts/{alert.pk}/acknowledge/", {}).status_code == 302
    assert client.post("/alerts/999999/acknowledge/", {}).status_code == 404
    assert client.post(f"/alerts/{alert.pk}/acknowledge/", {"note": "x" * 600}).status_code == 302


def test_a_grouped_alert_shows_its_figures_and_what_was_acknowledged(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    alert = m.Alert.objects.filter(kind="threshold").exclude(state="resolved").first()
    assert alert is not None
    figures = [b["figure"] for b in alert.figures["breaches"]]
    assert len(figures) == len(set(figures)) >= 1  # one alert per hospital, each figure once
    client.post(f"/alerts/{alert.pk}/acknowledge/", {"note": "escalated to site"})
    html = client.get("/alerts/").content.decode()
    item = html[html.index(f'id="alert-{alert.pk}"') :]
    end = item.find('<li class="card alert')
    item = item if end < 0 else item[:end]  # this alert's item only
    for breach in alert.figures["breaches"]:  # in words, e.g. "ED occupancy 103% (alert >= 100%)"
        assert escape(breach_words(breach)) in item
    assert "acknowledged by operator (" + ", ".join(figures) in item
    api = client.get(f"/api/v1/coordination/alerts/{alert.pk}/").json()
    assert api["history"][-1]["breaching"] == figures
    assert api["opened_at"] == api["raised_at"]
