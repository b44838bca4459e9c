"""The diversion, surge and sharing pages in a real browser: accept a recommendation and see
it in the history with the hospital's ED status changed; override with a reason."""

from __future__ import annotations

import re
from typing import Any

import pytest

from governance.roles import Role
from hub.coordination import models as m
from tests.hub.web.conftest import Login, Shot
from tests.hub.web.coordination_world import coord_world, person, run_tasks_here

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _ed_badge(page: Any, name: str) -> str:
    item = page.locator(".ed-board li", has_text=name)
    return str(item.locator("[data-ed-status]").inner_text())


def test_accept_a_recommendation(
    page: Any, login: Login, shot: Shot, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = run_tasks_here(monkeypatch)
    world = coord_world()
    rec = world.pending()
    login(page, person("operator", Role.REGIONAL_OPERATOR))
    page.goto("/diversion/")
    card = page.locator(f"#rec-{rec.pk}")
    card.wait_for()
    assert world.pressed.name in card.inner_text()
    before = _ed_badge(page, world.pressed.name)
    assert before != "ED Closed"
    shot(page, "diversion-recommendation")

    card.get_by_role("button", name="Accept recommendation").click()
    page.wait_for_load_state("networkidle")
    assert "Accepted:" in page.locator(".messages").inner_text()
    history = page.locator("table.history tbody tr").first
    assert world.pressed.name in history.inner_text()
    assert "accepted the recommendation" in history.inner_text()
    assert "operator" in history.inner_text()
    # The decision became a directive: the census now shows the ED closed.
    assert _ed_badge(page, world.pressed.name) == "ED Closed"
    assert published
    shot(page, "diversion-accepted")
    page.set_viewport_size({"width": 1366, "height": 768})  # a laptop: one column, no overflow
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    shot(page, "diversion-laptop")


def test_override_with_a_reason(
    page: Any, login: Login, shot: Shot, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_tasks_here(monkeypatch)
    world = coord_world()
    rec = world.pending()
    login(page, person("operator", Role.REGIONAL_OPERATOR))
    page.goto("/diversion/")
    card = page.locator(f"#rec-{rec.pk}")
    # Without a reason (blanks pass the browser's own check): the page comes back with the
    # error next to the field.
    card.get_by_label("Status to set instead").select_option("advisory")
    card.get_by_label("Reason (required)").fill("   ")
    card.get_by_role("button", name="Override").click()
    page.wait_for_load_state("networkidle")
    card = page.locator(f"#rec-{rec.pk}")
    assert "Say why you override the recommendation." in card.inner_text()
    shot(page, "diversion-override-error")

    before = _ed_badge(page, world.pressed.name)
    assert before != "ED Normal"
    card.get_by_label("Status to set instead").select_option("open")
    card.get_by_label("Reason (required)").fill("Receiving hospitals' CT scanners are down")
    card.get_by_role("button", name="Override").click()
    page.wait_for_load_state("networkidle")
    row = page.locator("table.history tbody tr").first
    assert "overrode the recommendation" in row.inner_text()
    assert "Receiving hospitals' CT scanners are down" in row.inner_text()
    decision = m.DiversionDecision.objects.get(recommendation=rec)
    assert decision.status == "open"
    # The site is told to stay open: the ED's status follows the decision, not the figures.
    assert _ed_badge(page, world.pressed.name) == "ED Normal"
    shot(page, "diversion-overridden")


def test_a_load_balancing_region_is_named_once_above_the_advice(
    page: Any, login: Login, shot: Shot
) -> None:
    world = coord_world()
    m.RegionState.objects.update_or_create(
        region=world.region,
        defaults={"mode": m.Mode.LOAD_BALANCING, "would_close": 41, "fresh": 57},
    )
    login(page, person("operator", Role.REGIONAL_OPERATOR))
    page.goto("/diversion/")
    banner = page.locator("[data-region-balancing]")
    assert banner.count() == 1
    assert "41 of 57 fresh hospitals at closing pressure" in banner.inner_text()
    assert world.region.name in banner.inner_text()
    # Above the advice, not inside a recommendation card.
    assert page.locator(".rec [data-region-balancing]").count() == 0
    shot(page, "diversion-load-balancing")


def test_surge_and_sharing_pages(
    page: Any, login: Login, shot: Shot, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_tasks_here(monkeypatch)
    world = coord_world()
    login(page, person("operator", Role.REGIONAL_OPERATOR))
    page.goto("/surge/")
    card = page.locator(".surge-card", has_text=world.pressed.name)
    assert "OPEL 4" in card.inner_text()
    assert re.search(r"ED occupancy\s+103%", card.inner_text())
    shot(page, "surge")

    page.goto("/sharing/")
    form = page.locator("form", has_text="New request")
    form.get_by_label("Requesting hospital").select_option(label=world.pressed.name)
    form.get_by_label("Kind").select_option("bed")
    form.get_by_label("Item").fill("adult_icu")
    form.get_by_label("Quantity").fill("2")
    form.get_by_label("Note").fill("two ventilated patients in the ED")
    form.get_by_role("button", name="Send request").click()
    page.wait_for_load_state("networkidle")
    request = page.locator("article.request").first
    assert "Suggested matches" in request.inner_text()
    request.get_by_label("Donor").select_option(label=world.others[0].name)
    request.get_by_label("Quantity").fill("2")
    request.get_by_role("button", name="Make offer").click()
    page.wait_for_load_state("networkidle")
    request = page.locator("article.request").first
    assert request.get_by_role("button", name="Accept this offer").is_visible()
    assert request.get_by_role("button", name="Mark fulfilled").count() == 0
    shot(page, "sharing")
