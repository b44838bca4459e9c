"""Users with each role, and API clients for them (imported by the conftest of each hub test
package that needs them)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from governance.access import assign_role, grant_hospital
from governance.roles import Role
from hub.registry.models import Hospital

Client = Callable[..., APIClient]


@pytest.fixture
def client_for(db: None) -> Client:
    """client_for(role, hospital=None) -> an APIClient logged in as a new user with it."""

    def make(role: Role | None, hospital: Hospital | None = None) -> APIClient:
        user = get_user_model().objects.create_user(
            username=f"{role or 'nobody'}-{get_user_model().objects.count()}"
        )
        if role in (Role.REGIONAL_OPERATOR, Role.GOVERNANCE_BOARD, Role.AUDITOR):
            assign_role(user, role)
        elif role is not None:
            assert hospital is not None
            grant_hospital(user, hospital, role)
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def agent_client() -> Callable[[str], APIClient]:
    def make(credential: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
        return client

    return make
