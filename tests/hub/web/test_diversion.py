"""The diversion page: recommendations with readable explanations, accept / override with a
mandatory reason, the decision history; only regional operators may open it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from governance.roles import Role
from hub.coordination import models as m
from tests.hub.web.coordination_world import CoordWorld, coord_world, person

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

COORDINATION_PAGES = ("/diversion/", "/surge/", "/sharing/", "/what-if/", "/alerts/")


@pytest.fixture
def world() -> CoordWorld:
    return coord_world()


@pytest.fixture
def operator(client: Client) -> Any:
    user = person("operator", Role.REGIONAL_OPERATOR)
    client.force_login(user)
    return user


@pytest.mark.parametrize("role", [Role.EXECUTIVE, Role.ED_STAFF])
@pytest.mark.parametrize("url", COORDINATION_PAGES)
def test_executives_and_ed_staff_cannot_open_coordination_pages(
    client: Client, world: CoordWorld, role: Role, url: str
) -> None:
    client.force_login(person(f"u-{role}", role, world.pressed))
    assert client.get(url).status_code == 403


def test_executives_and_ed_staff_cannot_decide_by_posting(
    client: Client, world: CoordWorld
) -> None:
    rec = world.pending()
    client.force_login(person("exec", Role.EXECUTIVE, world.pressed))
    response = client.post(f"/diversion/{rec.pk}/accept/", {})
    assert response.status_code == 403
    assert not m.DiversionDecision.objects.exists()


def test_an_operator_sees_the_recommendation_explained_in_words(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    html = client.get("/diversion/").content.decode()
    assert world.pressed.name in html
    assert "recommend closed to ambulances" in html
    # The explanation is split into readable lines, not a raw dict or one blob.
    assert "<li>Close ED to general ambulances at" in html
    assert "ambulance offload p90 1 h 25 min" in html
    assert "{&#x27;" not in html
    assert "{'" not in html
    # The route table names the destination hospital, not only its site code.
    destination = world.pending().routes[0]["destination"]
    name = next(h.name for h in world.hospitals if h.site_code == destination)
    assert name in html


def test_accepting_records_the_decision_and_shows_it_in_the_history(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    rec = world.pending()
    response = client.post(f"/diversion/{rec.pk}/accept/", {f"a{rec.pk}-reason": ""}, follow=True)
    assert response.status_code == 200
    decision = m.DiversionDecision.objects.get(recommendation=rec)
    assert decision.action == "accept"
    assert decision.decided_by == operator
    html = response.content.decode()
    assert "Accepted:" in html
    assert "accepted the recommendation" in html  # the history row
    # Deciding twice is refused with a message, not a 500.
    again = client.post(f"/diversion/{rec.pk}/accept/", {}, follow=True)
    assert again.status_code == 200
    assert "Not accepted" in again.content.decode()


def test_an_override_without_a_reason_is_refused_next_to_the_field(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    rec = world.pending()
    response = client.post(
        f"/diversion/{rec.pk}/override/", {f"o{rec.pk}-status": "open", f"o{rec.pk}-reason": "  "}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="id_o{rec.pk}-reason-err"' in html
    assert "Say why you override the recommendation." in html
    assert not m.DiversionDecision.objects.exists()


def test_an_override_with_a_reason_is_kept_with_the_reason(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    rec = world.pending()
    response = client.post(
        f"/diversion/{rec.pk}/override/",
        {f"o{rec.pk}-status": "advisory", f"o{rec.pk}-reason": "CT scanner back in service"},
        follow=True,
    )
    assert response.status_code == 200
    decision = m.DiversionDecision.objects.get(recommendation=rec)
    assert (decision.action, decision.status) == ("override", "advisory")
    assert "CT scanner back in service" in response.content.decode()


@pytest.mark.parametrize(
    "data",
    [
        {"status": "sideways", "reason": "x"},
        {"status": "", "reason": ""},
        {},
    ],
)
def test_bad_override_posts_rerender_with_an_error(
    client: Client, world: CoordWorld, operator: Any, data: dict[str, str]
) -> None:
    rec = world.pending()
    posted = {f"o{rec.pk}-{k}": v for k, v in data.items()}
    response = client.post(f"/diversion/{rec.pk}/override/", posted)
    assert response.status_code == 200
    assert 'class="error"' in response.content.decode()


def test_an_unknown_recommendation_is_404_not_500(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    assert client.post("/diversion/999999/accept/", {}).status_code == 404
    assert client.get("/diversion/1/accept/").status_code == 405


def test_a_recommendation_says_since_when_its_figures_are_unchanged(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    rec = world.pending()
    m.DiversionRecommendation.objects.filter(pk=rec.pk).update(
        figures_as_of=rec.created_at.replace(hour=7, minute=5)
    )
    m.RegionState.objects.filter(region=world.region).update(
        evaluated_at=rec.created_at.replace(hour=9, minute=41)
    )
    html = client.get("/diversion/").content.decode()
    assert "figures unchanged since" in html
    assert ">07:05</time> UTC" in html
    assert "region last evaluated" in html
    assert ">09:41</time> UTC" in html
    data = client.get(f"/api/v1/coordination/recommendations/{rec.pk}/").json()
    assert data["figures_as_of"].startswith(rec.created_at.strftime("%Y-%m-%d") + "T07:05")
    assert data["region_evaluated_at"].startswith(rec.created_at.strftime("%Y-%m-%d") + "T09:41")


def test_a_load_balancing_region_shows_its_counts_once_above_the_advice(
    client: Client, world: CoordWorld, operator: Any
) -> None:
    html = client.get("/diversion/").content.decode()
    assert "data-region-balancing" not in html  # the world's region diverts normally
    m.RegionState.objects.filter(region=world.region).update(
        mode=m.Mode.LOAD_BALANCING, would_close=41, fresh=57
    )
    html = client.get("/diversion/").content.decode()
    assert html.count("data-region-balancing") == 1
    assert f"{world.region.name} is load-balancing:</strong> 41 of 57 fresh hospitals" in html
