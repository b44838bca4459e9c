"""The site-wide Content-Security-Policy header is built once and is django-csp's own text;
responses that change the policy (a decorator) still get theirs."""

from __future__ import annotations

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.test import Client, override_settings

from hub.web import csp

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_a_plain_response_carries_django_csps_policy() -> None:
    response = Client().get("/healthz")
    assert response[HEADER] == build_policy()
    assert "script-src 'self'" in response[HEADER]
    assert HEADER_REPORT_ONLY not in response  # no report-only policy is configured


def test_a_decorated_view_keeps_its_own_policy() -> None:
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    assert "'unsafe-inline'" in response[HEADER]  # csp_update on the Swagger page only
    assert "'unsafe-inline'" not in Client().get("/healthz")[HEADER]


def test_changed_settings_are_followed() -> None:
    before = csp.site_policy()
    policy = {"DIRECTIVES": {"default-src": ["'none'"]}}
    with override_settings(CONTENT_SECURITY_POLICY=policy):
        assert Client().get("/healthz")[HEADER] == "default-src 'none'"
    assert csp.site_policy() == before
