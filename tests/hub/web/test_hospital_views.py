"""One hospital's page: the sections each role may see, 404 for what it may not, and an
operator's diversion decision showing as the status in force."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from governance.roles import Role
from hub.coordination import services as coordination
from hub.coordination.models import DiversionRecommendation
from tests.hub.web.board_fixtures import Seeded, make_user, seed_region, set_status

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SECTIONS = {
    "beds": "Beds by type",
    "ed": "Emergency department",
    "timeline": "Census over the last",
    "units": "Units and beds",
    "forecast": "Forecast free beds",
    "coordination": "Regional coordination",
}


@pytest.fixture
def seeded() -> Seeded:
    s = seed_region(2, hours=6)
    set_status(s.a, diversion="open", surge=2)
    return s


def page(client: Client, user: object, site_code: str, query: str = "") -> tuple[int, str]:
    client.force_login(user)  # type: ignore[arg-type]
    response = client.get(f"/hospitals/{site_code}/{query}")
    return response.status_code, response.content.decode()


def sections(html: str) -> set[str]:
    return {key for key, title in SECTIONS.items() if f">{title}" in html}


def unit_codes(html: str) -> list[str]:
    table = re.search(r'<table class="units">.*?</table>', html, flags=re.S)
    return re.findall(r'<th scope="row">(\S+) <span', table.group(0)) if table else []


def test_an_operator_sees_every_section_and_every_unit(client: Client, seeded: Seeded) -> None:
    status, html = page(client, make_user("ops", Role.REGIONAL_OPERATOR), seeded.a.site_code)
    assert status == 200
    assert sections(html) == set(SECTIONS)
    assert sorted(unit_codes(html)) == sorted(seeded.a.units.values_list("code", flat=True))
    for chart in ("timeline-chart", "ed-chart", "outlook-chart"):
        assert f'data-chart="{chart}"' in html
        assert f'<script id="{chart}" type="application/json">' in html
    assert "OPEL 2" in html
    assert 'href="/board/"' in html


def test_ed_staff_see_their_ed_and_nothing_of_the_wards(client: Client, seeded: Seeded) -> None:
    user = make_user("ed", Role.ED_STAFF, hospital=seeded.a)
    status, html = page(client, user, seeded.a.site_code)
    assert status == 200
    assert unit_codes(html) == ["ED"]
    assert "coordination" not in sections(html)
    assert "Your units only: Emergency department" in html
    assert "MS01" not in html


def test_a_ward_nurse_sees_their_ward_alone(client: Client, seeded: Seeded) -> None:
    ward = seeded.ward_of(seeded.a)
    status, html = page(client, make_user("nurse", Role.WARD_NURSE, unit=ward), seeded.a.site_code)
    assert status == 200
    assert unit_codes(html) == [ward.code]
    assert "ed" not in sections(html)  # the ED is not their unit
    assert "Adult ICU" not in html


def test_an_executive_sees_totals_and_coordination_but_no_unit_or_forecast(
    client: Client, seeded: Seeded
) -> None:
    user = make_user("exec", Role.EXECUTIVE, hospital=seeded.a)
    status, html = page(client, user, seeded.a.site_code)
    assert status == 200
    assert sections(html) == {"beds", "ed", "timeline", "coordination"}
    assert unit_codes(html) == []
    assert "MS01" not in html
    assert "Forecast 80% interval" not in html


@pytest.mark.parametrize("role", [Role.ED_STAFF, Role.WARD_NURSE, Role.EXECUTIVE])
def test_another_hospital_is_not_found_for_scoped_roles(
    client: Client, seeded: Seeded, role: Role
) -> None:
    if role is Role.WARD_NURSE:
        user = make_user(f"u-{role}", role, unit=seeded.ward_of(seeded.a))
    else:
        user = make_user(f"u-{role}", role, hospital=seeded.a)
    status, html = page(client, user, seeded.b.site_code)
    assert status == 404
    assert seeded.b.name not in html


def test_the_time_range_is_24_48_or_72_hours(client: Client, seeded: Seeded) -> None:
    ops = make_user("ops", Role.REGIONAL_OPERATOR)
    _, html = page(client, ops, seeded.a.site_code, "?hours=72")
    assert "Census over the last 72 hours" in html
    assert '<a href="?hours=72" aria-current="true">' in html
    for bad in ("?hours=5000", "?hours=x"):
        _, html = page(client, ops, seeded.a.site_code, bad)
        assert "Census over the last 24 hours" in html


def test_an_accepted_diversion_is_in_force_and_listed_with_who_decided(client: Client) -> None:
    # One county: neighbours within the 45 minutes a diverted ambulance may travel.
    seeded = seed_region(3, hours=2, pressure={0: 1.1, 1: 0.6, 2: 0.6}, counties=("Westchester",))
    coordination.region_evaluate(region=seeded.a.region)
    recommendation = DiversionRecommendation.objects.get(hospital=seeded.a, state="pending")
    ops = make_user("ops", Role.REGIONAL_OPERATOR)
    decision = coordination.diversion_accept(
        recommendation=recommendation, user=ops, reason="board test"
    )
    _, html = page(client, ops, seeded.a.site_code)
    assert "Recent diversion decisions" in html
    assert "board test" in html
    assert ">ops<" in html
    in_force = {"advisory": "ED Advisory", "closed": "ED Closed to ambulances"}[decision.status]
    assert in_force in html
    assert "Surge level changes" in html
    assert "OPEL" in html
