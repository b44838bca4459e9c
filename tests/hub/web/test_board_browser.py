"""The board and a hospital page in a real browser: what a wall screen shows, the tile grid
refreshing itself, a changed tile flashing and chiming (unless muted). Screenshots go to
``screenshots/`` for a person to look at."""

from __future__ import annotations

from typing import Any

import pytest

from governance.roles import Role
from hub.coordination.models import HospitalStatus
from tests.hub.web.board_fixtures import Seeded, make_user, seed_region, set_status
from tests.hub.web.conftest import SCREENSHOTS, Login, Shot

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Replaces the Web Audio API before any page script runs: the test counts chimes instead of
# hearing them (and a headless machine may have no audio device).
FAKE_AUDIO = """
window.__chimes = 0;
class FakeNode { connect() {} start() {} stop() {}
  get frequency() { return { value: 0 }; }
  get gain() { return { setValueAtTime() {}, exponentialRampToValueAtTime() {} }; } }
window.AudioContext = class { constructor() { window.__chimes += 1; this.currentTime = 0;
  this.destination = {}; } createOscillator() { return new FakeNode(); }
  createGain() { return new FakeNode(); } };
"""


def viewport_shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def open_board(page: Any, login: Login, user: Any, query: str = "") -> None:
    login(page, user)
    page.goto(f"/board/{query}")
    page.wait_for_load_state("networkidle")


def charts_drawn(page: Any) -> tuple[int, int]:
    """(canvases on the page, canvases with a live Chart.js chart)."""
    return page.evaluate(
        """() => { const c = [...document.querySelectorAll('canvas[data-chart]')];
        return [c.length, c.filter(x => window.Chart.getChart(x)).length]; }"""
    )


def test_an_operator_sees_the_region_on_a_wall_screen(page: Any, login: Login, shot: Shot) -> None:
    seeded: Seeded = seed_region(15, hours=24, counties=(), silent_for={4: _minutes(9)})
    set_status(seeded.a, diversion="closed", surge=4)
    open_board(page, login, make_user("ops", Role.REGIONAL_OPERATOR))

    tiles = page.locator("article.tile")
    assert tiles.count() == 15
    for hospital in seeded.hospitals:
        assert page.locator(f'article.tile[data-site="{hospital.site_code}"]').count() == 1
    # At 1920x1080 at least twelve whole tiles are on screen without scrolling.
    whole = page.evaluate(
        """() => [...document.querySelectorAll('article.tile')].filter(t => {
            const r = t.getBoundingClientRect();
            return r.top >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth;
        }).length"""
    )
    assert whole >= 12, f"only {whole} whole tiles fit at 1920x1080"
    # Legible from across the room: the key figures are at least 20 px high.
    size = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('.tile-figures dd')).fontSize)"
    )
    assert size >= 20
    canvases, drawn = charts_drawn(page)
    assert canvases == drawn == 15
    stale = page.locator(f'article.tile[data-site="{seeded.hospitals[4].site_code}"]')
    assert "fresh-stale" in (stale.get_attribute("class") or "")
    assert stale.locator(".fresh-badge").inner_text().startswith("Stale")
    viewport_shot(page, "board-1920x1080")

    page.set_viewport_size({"width": 1366, "height": 768})
    page.wait_for_timeout(300)
    viewport_shot(page, "board-1366x768")
    shot(page, "board-1366x768-full")

    page.locator(f'article.tile[data-site="{seeded.a.site_code}"] .tile-name a').click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/hospitals/{seeded.a.site_code}/")


def _minutes(n: int) -> Any:
    from datetime import timedelta

    return timedelta(minutes=n)


def test_a_hospital_page_with_its_charts(page: Any, login: Login, shot: Shot) -> None:
    seeded = seed_region(3, hours=72, interval=_minutes(60))
    set_status(seeded.b, diversion="advisory", surge=3)
    login(page, make_user("ops", Role.REGIONAL_OPERATOR))
    page.goto(f"/hospitals/{seeded.b.site_code}/")
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Units and beds").is_visible()
    assert page.get_by_role("heading", name="Forecast free beds").is_visible()
    canvases, drawn = charts_drawn(page)
    assert canvases == drawn == 3
    shot(page, "hospital-1920")
    page.get_by_role("link", name="72 h").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Census over the last 72 hours").is_visible()
    viewport_shot(page, "hospital-72h-1920x1080")


def test_the_grid_refreshes_itself_and_a_changed_tile_flashes_and_chimes(
    page: Any, login: Login, shot: Shot, settings: Any
) -> None:
    settings.HUB_BOARD_POLL_SECONDS = 1
    seeded = seed_region(4, hours=6)
    for hospital in seeded.hospitals:
        set_status(hospital, diversion="open", surge=1)
    page.add_init_script(FAKE_AUDIO)
    open_board(page, login, make_user("ops", Role.REGIONAL_OPERATOR), "?sort=name")

    def generated() -> str:
        return page.locator("#board-tiles").get_attribute("data-generated-at") or ""

    first = generated()
    page.wait_for_function(
        f"() => document.getElementById('board-tiles').dataset.generatedAt !== '{first}'",
        timeout=10_000,
    )
    assert page.locator(".tile-changed").count() == 0  # nothing changed: no flash, no chime
    assert page.evaluate("window.__chimes") == 0

    target = seeded.hospitals[2]
    HospitalStatus.objects.filter(hospital=target).update(surge_level=4)
    tile = page.locator(f'article.tile[data-site="{target.site_code}"]')
    tile.locator("xpath=self::*[contains(@class, 'tile-changed')]").wait_for(timeout=10_000)
    assert "OPEL 4" in tile.inner_text()
    assert page.locator(".tile-changed").count() == 1
    assert page.evaluate("window.__chimes") == 1
    viewport_shot(page, "board-tile-flash")

    # Muted: the next change still flashes, silently.
    page.locator("[data-mute-toggle]").click()
    assert page.locator("[data-mute-toggle]").get_attribute("aria-pressed") == "true"
    other = seeded.hospitals[0]
    HospitalStatus.objects.filter(hospital=other).update(diversion_status="closed")
    page.locator(f'article.tile[data-site="{other.site_code}"].tile-changed').wait_for(
        timeout=10_000
    )
    assert page.evaluate("window.__chimes") == 1

    # Several refreshes later every canvas has exactly one chart: old ones were destroyed.
    page.wait_for_timeout(2500)
    live = page.evaluate("Object.keys(window.Chart.instances).length")
    canvases, drawn = charts_drawn(page)
    assert live == canvases == drawn


def test_a_filter_swaps_the_grid_and_the_refresh_keeps_it(page: Any, login: Login) -> None:
    seeded = seed_region(4, hours=3)
    set_status(seeded.a, surge=4)
    open_board(page, login, make_user("ops", Role.REGIONAL_OPERATOR))
    page.get_by_label("Search by name").fill(seeded.b.site_code)
    page.wait_for_function("() => document.querySelectorAll('article.tile').length === 1")
    assert page.locator("article.tile").get_attribute("data-site") == seeded.b.site_code
    page.wait_for_function("() => location.search.includes('q=')")
    assert f"q={seeded.b.site_code}" in page.url
    page.get_by_label("Sort by").select_option("surge")
    page.wait_for_function("() => location.search.includes('sort=surge')")
    assert f"q={seeded.b.site_code}" in page.locator("#board-tiles").get_attribute("hx-get")
    page.reload()
    page.wait_for_load_state("networkidle")
    assert page.locator("article.tile").count() == 1
    assert page.get_by_label("Sort by").input_value() == "surge"


def test_an_expired_session_goes_to_sign_in_instead_of_into_the_grid(
    page: Any, login: Login, settings: Any
) -> None:
    from django.contrib.sessions.models import Session

    settings.HUB_BOARD_POLL_SECONDS = 1
    seed_region(1, hours=2)
    open_board(page, login, make_user("ops", Role.REGIONAL_OPERATOR))
    Session.objects.all().delete()
    page.wait_for_url("**/login/**", timeout=10_000)
    assert page.get_by_role("button", name="Sign in").is_visible()
    assert page.locator("#board-tiles").count() == 0
