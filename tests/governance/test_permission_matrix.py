"""The permission matrix: every endpoint of the URL configuration × every role × own/other
hospital. Generated from the URLconf, so a new endpoint joins it (and fails it until it
declares a governed action and, for detail routes, has a matrix factory)."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework.views import APIView

import tests
from governance import testing
from governance.actions import all_actions
from governance.roles import Role
from tests.governance.conftest import Region, UserFactory, user_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _load_factories() -> None:
    """Import every tests/**/matrix_factories.py (each package registers its models)."""
    root = Path(tests.__file__).parent
    for info in pkgutil.walk_packages([str(root)], prefix="tests."):
        if info.name.endswith(".matrix_factories"):
            importlib.import_module(info.name)


_load_factories()
ENDPOINTS = testing.endpoints()
GOVERNED = [e for e in ENDPOINTS if e.governed_action]
ROLES: list[Role | None] = [None, *Role]


def test_every_endpoint_declares_a_governed_action() -> None:
    missing = testing.undeclared(ENDPOINTS)
    assert not missing, "endpoints without a governance action:\n" + "\n".join(map(str, missing))


def test_every_declared_action_is_registered() -> None:
    known = all_actions()
    unknown = [f"{e}: {e.governed_action}" for e in GOVERNED if e.governed_action not in known]
    assert not unknown, "\n".join(unknown)


def test_every_detail_endpoint_has_a_matrix_factory() -> None:
    missing = sorted(
        {
            f"{e.model._meta.label}  (for {e})"
            for e in GOVERNED
            if e.detail and e.model is not None and testing.factory_for(e.model) is None
        }
    )
    assert not missing, "register a factory in a tests/**/matrix_factories.py for:\n" + "\n".join(
        missing
    )


def test_the_matrix_covers_governance_endpoints() -> None:
    routes = {e.route for e in GOVERNED}
    for route in ("audit-events", "policies", "erasure-requests", "retention-runs"):
        assert any(route in r for r in routes), route


_CLIENT = APIClient()  # one client: building a handler loads every middleware again


def _request(endpoint: testing.Endpoint, user: Any, token: Any, url: str) -> Any:
    client = _CLIENT
    client.force_authenticate(user=user, token=token)
    drf = isinstance(endpoint.view, type) and issubclass(endpoint.view, APIView)
    if not drf:  # plain Django pages authenticate by session
        client.logout()
        if user is not None:
            client.force_login(user)
    method = getattr(client, endpoint.method)
    if endpoint.method in ("post", "put", "patch"):
        return method(url, data={}, format="json")
    return method(url)


def _ids(response: Any) -> set[str]:
    """Every "id" in a JSON response (a page of results or one object)."""
    try:
        body = json.loads(
            b"".join(response.streaming_content) if response.streaming else response.content
        )
    except ValueError:
        return set()
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "id" in node:
                found.add(str(node["id"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return found


def _unit_for(role: Role | None, region: Region, own: bool) -> Any:
    if role is Role.WARD_NURSE:
        return region.a_ward if own else region.b_ward
    return region.a_ed if own else region.b_ed


@pytest.mark.usefixtures("governance_keys")
def test_permission_matrix(region: Region, make_user: UserFactory) -> None:
    """One pass over every governed endpoint (users are created once: the matrix is about
    requests, and creating 8 users per endpoint would triple its run time)."""
    users = {role: user_for(make_user, role, region) for role in Role}
    failures: list[str] = []
    for endpoint in GOVERNED:
        failures.extend(f"{endpoint}: {f}" for f in _check_endpoint(endpoint, users, region))
    assert not failures, f"{len(failures)} matrix failures:\n" + "\n".join(failures)


def _check_endpoint(
    endpoint: testing.Endpoint, users: dict[Role, Any], region: Region
) -> list[str]:
    failures: list[str] = []
    model = endpoint.model
    factory = testing.factory_for(model) if model is not None else None
    if endpoint.detail and model is not None and factory is None:
        return []  # reported by test_every_detail_endpoint_has_a_matrix_factory
    for role in ROLES:
        user = users[role] if role is not None else None
        token = testing.token_for(role, user, region.a)
        for own in (True, False):
            if not endpoint.detail and not own:
                break  # a list does not depend on own/other: checked for leaks below
            obj: Any = None
            if endpoint.detail:
                hospital, unit = (
                    (region.a, _unit_for(role, region, own))
                    if own
                    else (region.b, _unit_for(role, region, own))
                )
                obj = factory(hospital, unit) if factory is not None else hospital
            try:
                url = "/" + _resolve(endpoint, obj)
            except LookupError as exc:
                return [str(exc)]
            response = _request(endpoint, user, token, url)
            status = response.status_code
            who = f"{role or 'anonymous'} {'own' if own else 'other'}"
            if status >= 500:
                failures.append(f"{who}: {status}")
                continue
            if testing.public(endpoint):
                continue
            allowed = testing.expect_allowed(endpoint, role, own)
            if allowed and status in testing.DENIED:
                failures.append(f"{who}: expected access, got {status}")
            if not allowed:
                denied = testing.DENIED | ({302} if user is None else set())
                if status not in denied:
                    failures.append(f"{who}: expected 401/403/404, got {status}")
                if obj is not None and str(obj.pk) in _ids(response):
                    failures.append(f"{who}: response carries the object's data")
            if (
                endpoint.method == "get"
                and not endpoint.detail
                and role is not None
                and allowed
                and role not in testing.REGION_WIDE
            ):
                failures.extend(_list_leaks(endpoint, user, token, region, role, who))
    return failures


def _list_leaks(
    endpoint: testing.Endpoint, user: Any, token: Any, region: Region, role: Role, who: str
) -> list[str]:
    """A scoped role's list must not show another hospital's object."""
    model = endpoint.model
    factory = testing.factory_for(model) if model is not None else None
    if factory is None:
        return []
    other = factory(region.b, _unit_for(role, region, own=False))
    response = _request(endpoint, user, token, "/" + _resolve(endpoint, None))
    if str(other.pk) in _ids(response):
        return [f"{who}: list shows another hospital's object {other.pk}"]
    return []


def _resolve(endpoint: testing.Endpoint, obj: Any) -> str:
    from django.urls import reverse

    kwargs = testing.url_kwargs(endpoint, obj) if endpoint.detail else {}
    return reverse(endpoint.name, kwargs=kwargs).lstrip("/")
