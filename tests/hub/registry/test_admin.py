"""The registry in the admin: pages render, an agent added there gets a one-time token."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from hub.registry.models import SiteAgent
from tests.hub.support import hospital_with_units

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def admin_browser() -> Client:
    user = get_user_model().objects.create_superuser(username="root-test", password="x" * 16)
    client = Client()
    client.force_login(user)
    return client


def test_registry_pages_render(admin_browser: Client) -> None:
    hospital = hospital_with_units()
    for path in (
        "/admin/registry/hospital/",
        f"/admin/registry/hospital/{hospital.pk}/change/",
        "/admin/registry/unit/",
        "/admin/registry/siteagent/",
        "/admin/registry/traveltime/",
        "/admin/registry/directive/",
        "/admin/registry/region/",
    ):
        assert admin_browser.get(path).status_code == 200, path


def test_adding_an_agent_in_the_admin_shows_its_enrolment_token(admin_browser: Client) -> None:
    hospital = hospital_with_units()
    response = admin_browser.post(
        "/admin/registry/siteagent/add/",
        {"hospital": hospital.pk, "name": "deid-2", "component": "deid_worker"},
        follow=True,
    )
    assert response.status_code == 200
    agent = SiteAgent.objects.get(hospital=hospital, name="deid-2")
    assert agent.status == "pending"
    assert agent.enrolment_token_hash
    assert b"One-time enrolment token" in response.content
