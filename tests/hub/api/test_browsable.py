"""The browsable API and OPTIONS on every router endpoint, for every role: a page or a 4xx,
never a 500 (the browsable renderer and the metadata class check permissions for the forms
they would show, with the method they would use)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as DjangoClient

from governance.access import assign_role, grant_hospital
from governance.api.urls import router as governance_router
from governance.roles import REGION_WIDE, Role
from hub.api.urls import router as hub_router
from hub.coordination.urls import router as coordination_router
from tests.hub.support import enrolled_site

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

LIST_URLS = [
    f"{mount}{prefix}/"
    for mount, router in (
        ("/api/v1/", hub_router),
        ("/api/v1/coordination/", coordination_router),
        ("/api/v1/governance/", governance_router),
    )
    for prefix, _viewset, _basename in router.registry
]


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.SITE_AGENT])
def test_every_list_endpoint_answers_the_browsable_api_and_options(role: Role) -> None:
    hospital, _key, _ = enrolled_site()
    user = get_user_model().objects.create_user(username=f"browse-{role.value}")
    assign_role(user, role)
    if role not in REGION_WIDE and role is not Role.WARD_NURSE:  # a nurse: no ward, no rows
        grant_hospital(user, hospital, role)
    client = DjangoClient()
    client.force_login(user)
    answers = {}
    for url in LIST_URLS:
        page = client.get(url, HTTP_ACCEPT="text/html")
        options = client.options(url)
        answers[url] = (page.status_code, options.status_code)
    assert {u: a for u, a in answers.items() if max(a) >= 500} == {}
    # Something is actually shown: a regional operator sees the hospital directory page.
    if role is Role.REGIONAL_OPERATOR:
        assert answers["/api/v1/hospitals/"] == (200, 200)
