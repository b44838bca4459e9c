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
