"""Signing in, in a real browser."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tests.hub.web.conftest import Shot

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_wrong_password_is_refused_with_a_message(page: Any, shot: Shot) -> None:
    get_user_model()._default_manager.create_user(username="operator", password="right-one")
    page.goto("/")
    assert "/login/" in page.url
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("wrong-one")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("Your username and password")
    shot(page, "login-refused")


@pytest.mark.parametrize(("path", "heading"), [("/admin/", "Site administration")])
def test_the_admin_works_under_the_content_security_policy(
    page: Any, shot: Shot, path: str, heading: str
) -> None:
    get_user_model()._default_manager.create_superuser(username="root", password="pw-root-1")
    page.goto(f"/admin/login/?next={path}")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("pw-root-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")
    assert heading in page.content()
    shot(page, "admin-index")  # the page fixture fails the test on any CSP violation


def test_the_api_docs_load_offline_under_the_content_security_policy(page: Any, shot: Shot) -> None:
    get_user_model()._default_manager.create_superuser(username="root", password="pw-root-1")
    page.goto("/admin/login/?next=/api/docs/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("pw-root-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector(".swagger-ui .info", timeout=15_000)
    assert "Regional Twin Hub API" in page.inner_text(".swagger-ui .info")
    shot(page, "api-docs")
