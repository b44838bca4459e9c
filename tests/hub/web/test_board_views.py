"""The regional board through the test client: who sees which hospitals, sorting and
filtering by GET parameters, the polled fragment, freshness badges, the audit trail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client

from governance.models import AuditEvent
from governance.roles import Role
from hub.web.board_data import sort_tiles, tiles_for
from tests.hub.web.board_fixtures import Seeded, make_user, seed_region, set_status

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def seeded() -> Seeded:
    s = seed_region(
        4,
        hours=3,
        pressure={0: 0.98, 1: 0.75, 2: 0.85},
        silent_for={3: timedelta(minutes=9)},
    )
    set_status(s.hospitals[0], diversion="closed", surge=4)
    set_status(s.hospitals[1], diversion="open", surge=1)
    set_status(s.hospitals[2], diversion="open", surge=2)
    return s


def html_of(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined]


def without_tokens(html: str) -> str:
    return re.sub(r'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+', r"\1", html)


def tile_order(html: str) -> list[str]:
    return re.findall(r'<article class="tile[^"]*" data-site="([^"]+)"', html)


def as_user(client: Client, user: object) -> Client:
    client.force_login(user)  # type: ignore[arg-type]
    return client


def test_anonymous_visitors_are_sent_to_sign_in(client: Client) -> None:
    for url in ("/board/", "/board/tiles/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.GOVERNANCE_BOARD, None])
def test_roles_without_read_hospitals_are_refused_the_board(
    client: Client, seeded: Seeded, role: Role | None
) -> None:
    as_user(client, make_user("someone", role))
    for url in ("/board/", "/board/tiles/", f"/hospitals/{seeded.a.site_code}/"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert seeded.a.name not in html_of(response)


def test_an_operator_sees_every_hospital_with_its_status_words(
    client: Client, seeded: Seeded
) -> None:
    html = html_of(as_user(client, make_user("ops", Role.REGIONAL_OPERATOR)).get("/board/"))
    for hospital in seeded.hospitals:
        assert hospital.name in html
        assert f'href="/hospitals/{hospital.site_code}/"' in html
    assert "Advice: close" in html  # hospital 0: the evaluation says closed, nothing in force
    assert "OPEL 4" in html
    assert 'hx-trigger="every 15s"' in html
    assert "data-mute-toggle" in html
    assert 'data-chart="spark-' in html


def test_ed_staff_of_one_hospital_never_see_another(client: Client, seeded: Seeded) -> None:
    a, b = seeded.a, seeded.b
    as_user(client, make_user("ed-a", Role.ED_STAFF, hospital=a))
    for url in ("/board/", "/board/tiles/", "/board/tiles/?q=Hospital"):
        html = html_of(client.get(url))
        assert a.name in html
        assert b.name not in html
        assert b.site_code not in html
    assert client.get(f"/hospitals/{a.site_code}/").status_code == 200
    hidden = client.get(f"/hospitals/{b.site_code}/")
    missing = client.get("/hospitals/NO-SUCH-SITE/")
    assert hidden.status_code == missing.status_code == 404
    assert b.name not in html_of(hidden)
    # The same answer whether the hospital exists or not: nothing to learn from it (the
    # CSRF token aside, which is masked afresh on every response).
    assert without_tokens(html_of(hidden)) == without_tokens(html_of(missing))


def test_a_ward_nurse_sees_their_hospital_through_their_ward_only(
    client: Client, seeded: Seeded
) -> None:
    ward = seeded.ward_of(seeded.a)
    as_user(client, make_user("nurse", Role.WARD_NURSE, unit=ward))
    html = html_of(client.get("/board/"))
    assert tile_order(html) == [seeded.a.site_code]
    assert f"Your units only: {ward.name}" in html
    assert "Adult ICU" not in html  # another unit's figures do not reach the tile


def test_an_executive_sees_their_hospitals_totals(client: Client, seeded: Seeded) -> None:
    as_user(client, make_user("exec", Role.EXECUTIVE, hospital=seeded.a))
    html = html_of(client.get("/board/"))
    assert tile_order(html) == [seeded.a.site_code]
    assert "Your units only" not in html
    assert "Med-surg" in html
    assert "OPEL 4" in html


@pytest.mark.parametrize("key", ["occupancy", "free", "ed", "surge"])
def test_sorting_by_get_parameter(client: Client, seeded: Seeded, key: str) -> None:
    ops = make_user("ops", Role.REGIONAL_OPERATOR)
    as_user(client, ops)
    order = tile_order(html_of(client.get(f"/board/tiles/?sort={key}")))
    assert order == [t.site_code for t in sort_tiles(tiles_for(ops), key)]
    if key in ("occupancy", "free"):
        # The silent hospital has no fresh figure: last, not first or in between.
        assert order[-1] == seeded.hospitals[3].site_code
    if key == "surge":
        assert order[0] == seeded.a.site_code  # OPEL 4


def test_sorting_by_name_is_the_default_and_bad_values_fall_back_to_it(
    client: Client, seeded: Seeded
) -> None:
    as_user(client, make_user("ops", Role.REGIONAL_OPERATOR))
    by_name = [h.site_code for h in sorted(seeded.hospitals, key=lambda h: h.name.casefold())]
    assert tile_order(html_of(client.get("/board/tiles/"))) == by_name
    assert tile_order(html_of(client.get("/board/tiles/?sort=drop+table&status=x"))) == by_name


def test_filtering_by_status_and_by_name(client: Client, seeded: Seeded) -> None:
    as_user(client, make_user("ops", Role.REGIONAL_OPERATOR))
    stale = tile_order(html_of(client.get("/board/tiles/?status=feed")))
    assert stale == [seeded.hospitals[3].site_code]
    closed = html_of(client.get("/board/tiles/?status=closed"))
    assert "No hospital matches this search or filter." in closed
    target = seeded.b
    found = tile_order(html_of(client.get(f"/board/tiles/?q={target.cms_ccn}")))
    assert found == [target.site_code]
    assert tile_order(html_of(client.get(f"/board/?q={target.site_code.lower()}"))) == [
        target.site_code
    ]


def test_a_stale_feed_carries_a_stale_badge_and_a_hatched_tile(
    client: Client, seeded: Seeded
) -> None:
    as_user(client, make_user("ops", Role.REGIONAL_OPERATOR))
    html = html_of(client.get("/board/"))
    silent = seeded.hospitals[3].site_code
    article = re.search(
        rf'<article class="([^"]*)" data-site="{silent}".*?</article>', html, flags=re.S
    )
    assert article is not None
    assert "fresh-stale" in article.group(1)
    assert re.search(
        r'class="badge fresh-badge stale"[^>]*><span class="fresh-word">Stale', article.group(0)
    )
    assert "ED Unknown" in article.group(0)
    assert "1</strong> with stale or offline feeds" in html


def test_an_hour_of_silence_is_offline(client: Client) -> None:
    seeded = seed_region(2, hours=3, silent_for={1: timedelta(hours=1)})
    as_user(client, make_user("ops", Role.REGIONAL_OPERATOR))
    html = html_of(client.get("/board/tiles/?status=feed"))
    assert tile_order(html) == [seeded.b.site_code]
    assert "fresh-offline" in html
    assert '<span class="fresh-word">Offline</span> · 1 h' in html


def test_the_fragment_polls_with_the_same_sort_and_filter(client: Client, seeded: Seeded) -> None:
    as_user(client, make_user("ops", Role.REGIONAL_OPERATOR))
    html = html_of(client.get("/board/tiles/?sort=surge&status=open&q=Hospital"))
    assert html.lstrip().startswith('<section id="board-tiles"')
    assert 'hx-get="/board/tiles/?sort=surge&amp;status=open&amp;q=Hospital"' in html
    assert "<html" not in html


def test_a_new_filter_from_the_form_updates_the_address_bar_but_a_poll_does_not(
    client: Client, seeded: Seeded
) -> None:
    as_user(client, make_user("ops", Role.REGIONAL_OPERATOR))
    by_form = client.get(
        "/board/tiles/?sort=occupancy&status=&q=",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER="board-filters",
    )
    assert by_form["HX-Replace-Url"] == "/board/?sort=occupancy"
    by_poll = client.get(
        "/board/tiles/?sort=occupancy", HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="board-tiles"
    )
    assert "HX-Replace-Url" not in by_poll


def test_the_poll_interval_comes_from_settings(
    client: Client, seeded: Seeded, settings: object
) -> None:
    settings.HUB_BOARD_POLL_SECONDS = 2  # type: ignore[attr-defined]
    as_user(client, make_user("ops", Role.REGIONAL_OPERATOR))
    assert 'hx-trigger="every 2s"' in html_of(client.get("/board/"))


def test_every_board_read_is_audited_with_the_hospitals_shown(
    client: Client, seeded: Seeded
) -> None:
    ed_staff = make_user("ed-a", Role.ED_STAFF, hospital=seeded.a)
    as_user(client, ed_staff)
    client.get("/board/tiles/")
    event = AuditEvent.objects.filter(actor_id=ed_staff.pk).latest("id")
    assert event.action == "read_hospitals"
    assert event.hospital_ids == [seeded.a.pk]
    assert event.path == "/board/tiles/"
