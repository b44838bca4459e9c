"""The surge page: each hospital's OPEL level, the parameters and thresholds behind it, the
region's level, and each level's checklist (read-only)."""

from __future__ import annotations

import pytest
from django.test import Client

from governance.roles import Role
from tests.hub.web.coordination_world import CoordWorld, coord_world, person

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def world() -> CoordWorld:
    return coord_world()


def test_levels_parameters_thresholds_and_checklists_are_shown(
    client: Client, world: CoordWorld
) -> None:
    client.force_login(person("operator", Role.REGIONAL_OPERATOR))
    html = client.get("/surge/").content.decode()
    assert world.region.name in html
    for h in world.hospitals:
        assert h.name in html
    assert "OPEL 4" in html  # the saturated hospital
    # The ED occupancy parameter: now 103%, thresholds 85% / 95% / 105%.
    assert "ED occupancy" in html
    assert "103%" in html
    assert all(t in html for t in ("85%", "95%", "105%"))
    assert "Executive on call leads" in html  # level 4's checklist
    assert "not reported" in html  # the census has no staffing gap figure
    assert "ticking items is not recorded" in html


def test_ed_staff_cannot_see_surge_levels(client: Client, world: CoordWorld) -> None:
    client.force_login(person("ed", Role.ED_STAFF, world.pressed))
    assert client.get("/surge/").status_code == 403
