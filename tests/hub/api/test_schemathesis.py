"""Property-based run of the whole API against its own OpenAPI schema (schemathesis): no 5xx,
no response that breaks the schema, as a regional operator and as a site agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from governance.access import assign_role
from governance.roles import Role
from tests.hub.support import enrolled_site

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db]


def _schema() -> dict[str, Any]:
    # Generated in-process (no request, no database): the same document /api/schema/ serves.
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return dict(json.loads(OpenApiJsonRenderer().render(generated)))


schema = schemathesis.openapi.from_dict(_schema())
schema.app = WSGIHandler()
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
HYPOTHESIS = settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    # The WSGI handler closes "old" connections at each request's start and end; inside a
    # test transaction that would close the test's own connection (Django's test client
    # disconnects the same handlers).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def site_credential() -> str:
    _, _, credential = enrolled_site(site_code="NYTEST1")
    return credential


@pytest.fixture
def operator_cookie(site_credential: str) -> str:
    user = get_user_model().objects.create_user(username="schemathesis-operator")
    assign_role(user, Role.REGIONAL_OPERATOR)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


@schema.include(path_regex=r"^/api/v1/(?!site/)").parametrize()
@HYPOTHESIS
def test_the_operations_api_never_answers_5xx(case: Any, operator_cookie: str) -> None:
    case.call_and_validate(headers={"Cookie": operator_cookie}, checks=CHECKS)


@schema.include(path_regex=r"^/api/v1/site/").parametrize()
@HYPOTHESIS
def test_the_site_api_never_answers_5xx(case: Any, site_credential: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {site_credential}"}, checks=CHECKS)
