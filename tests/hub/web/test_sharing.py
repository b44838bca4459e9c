"""Resource sharing: requests, suggestions from live availability, and only the workflow
buttons the request's state allows."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from governance.roles import Role
from hub.coordination import models as m
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


def _request(client: Client, world: CoordWorld) -> m.ResourceRequest:
    response = client.post(
        "/sharing/requests/",
        {
            "rq-requester": world.pressed.pk,
            "rq-kind": "bed",
            "rq-item": "adult_icu",
            "rq-quantity": "2",
            "rq-note": "two ventilated patients waiting in the ED",
        },
    )
    assert response.status_code == 302, response.content.decode()
    return m.ResourceRequest.objects.get()


def test_the_workflow_offers_only_valid_steps(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    req = _request(client, world)
    html = client.get("/sharing/").content.decode()
    assert "two ventilated patients waiting in the ED" in html
    # Free ICU beds of the calm hospitals come from the live census.
    assert req.suggestions
    assert any(h.name in html for h in world.others)
    assert "Make offer" in html
    assert "Cancel request" in html
    assert "Mark fulfilled" not in html
    assert "Accept this offer" not in html

    donor = world.others[0]
    r = client.post(
        f"/sharing/requests/{req.pk}/offer/",
        {f"of{req.pk}-donor": donor.pk, f"of{req.pk}-quantity": "2"},
    )
    assert r.status_code == 302
    html = client.get("/sharing/").content.decode()
    assert "Accept this offer" in html
    assert "Mark fulfilled" not in html

    offer = req.offers.get()
    client.post(f"/sharing/requests/{req.pk}/accept/", {"offer": offer.pk})
    html = client.get("/sharing/").content.decode()
    assert "Mark fulfilled" in html
    assert "Make offer" not in html
    assert "Accept this offer" not in html

    client.post(f"/sharing/requests/{req.pk}/fulfil/", {})
    req.refresh_from_db()
    assert req.status == "fulfilled"
    assert list(req.events.values_list("to_status", flat=True)) == [
        "requested",
        "offered",
        "accepted",
        "fulfilled",
    ]
    html = client.get("/sharing/").content.decode()
    assert "Recently closed" in html
    assert "No open request." in html


def test_bad_posts_rerender_with_errors(client: Client, world: CoordWorld, operator: Any) -> None:
    r = client.post("/sharing/requests/", {"rq-kind": "bed", "rq-quantity": "-1"})
    assert r.status_code == 200
    assert 'class="error"' in r.content.decode()
    req = _request(client, world)
    r = client.post(f"/sharing/requests/{req.pk}/cancel/", {f"c{req.pk}-reason": ""})
    assert r.status_code == 200
    assert "Say why the request is cancelled." in r.content.decode()
    r = client.post(
        f"/sharing/requests/{req.pk}/offer/",
        {f"of{req.pk}-donor": world.pressed.pk, f"of{req.pk}-quantity": "1"},
    )
    assert r.status_code == 200
    assert "cannot offer to itself" in r.content.decode()
    # A step the state does not allow is a message, not a 500.
    r = client.post(f"/sharing/requests/{req.pk}/fulfil/", {}, follow=True)
    assert r.status_code == 200
    assert "cannot become fulfilled" in r.content.decode()
    assert client.post(f"/sharing/requests/{req.pk}/explode/", {}).status_code == 404
    r = client.post("/sharing/availability/", {"av-hospital": world.pressed.pk, "av-kind": "bed"})
    assert r.status_code == 200
