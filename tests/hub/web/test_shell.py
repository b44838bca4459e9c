"""The web app's shell: sign-in, the per-role landing page and the role-filtered menu."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from governance import access
from governance.roles import Role
from hub.web.navigation import pages_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def user_with(role: Role | None) -> Any:
    user = get_user_model()._default_manager.create_user(username=f"u-{role}", password="pw")
    if role is not None:
        access.assign_role(user, role)
    return user


def test_anonymous_visitors_are_sent_to_the_login_page(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_login_page_renders_a_labelled_form(client: Client) -> None:
    html = client.get("/login/").content.decode()
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html


def test_a_user_without_a_role_is_told_so_not_shown_an_empty_app(client: Client) -> None:
    client.force_login(user_with(None))
    response = client.get("/")
    assert response.status_code == 403
    assert "No pages for your account" in response.content.decode()


def test_the_menu_offers_only_pages_the_role_may_open() -> None:
    board_member = user_with(Role.GOVERNANCE_BOARD)
    auditor = user_with(Role.AUDITOR)
    board_pages = {item.url_name for item in pages_for(board_member)}
    auditor_pages = {item.url_name for item in pages_for(auditor)}
    assert "web:diversion" not in board_pages
    assert not any(name.startswith("web:") for name in auditor_pages)
    assert "govweb:policies" not in auditor_pages
