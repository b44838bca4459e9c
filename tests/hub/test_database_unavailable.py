"""A database that cannot answer is a 503 with a message and Retry-After, never a 500: the
API through its exception handler, the pages through the middleware, and the audit event
records it."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import Error as DjangoError
from django.db import IntegrityError, InterfaceError, OperationalError
from django.test import Client
from rest_framework.test import APIClient

from governance.models import AuditEvent
from governance.roles import Role
from hub.database_unavailable import TIMED_OUT, UNAVAILABLE, unavailable_message
from tests.hub.support import enrolled_site
from tests.hub.web.board_fixtures import make_user, seed_region
from tests.pglock import statement_timeout, table_locked


def _from(cause: Exception, wrapper: type[DjangoError] = OperationalError) -> DjangoError:
    """As Django raises it: its own class, psycopg's error as the cause."""
    try:
        raise wrapper(str(cause)) from cause
    except DjangoError as exc:
        return exc


def test_a_cancelled_statement_or_a_lock_wait_given_up_is_a_timeout() -> None:
    cancelled = psycopg.errors.QueryCanceled("canceling statement due to statement timeout")
    assert unavailable_message(_from(cancelled)) == TIMED_OUT
    lock = psycopg.errors.LockNotAvailable("could not obtain lock")
    assert unavailable_message(_from(lock)) == TIMED_OUT


def test_a_server_gone_or_refusing_is_unavailable() -> None:
    assert unavailable_message(_from(psycopg.OperationalError("connection refused"))) == (
        UNAVAILABLE
    )
    assert unavailable_message(_from(psycopg.errors.AdminShutdown("terminating"))) == UNAVAILABLE
    closed = psycopg.InterfaceError("the connection is closed")
    assert unavailable_message(_from(closed, InterfaceError)) == UNAVAILABLE


def test_anything_else_keeps_its_own_answer() -> None:
    unique = psycopg.errors.UniqueViolation("duplicate key")
    assert unavailable_message(_from(unique, IntegrityError)) is None
    assert unavailable_message(ValueError("a bug")) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_api_statement_that_times_out_is_a_503_with_retry_after_and_is_audited() -> None:
    _, _, credential = enrolled_site()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    beat = {"agent_version": "t", "feeds": [], "policy_version": 1, "outbox_backlog": 0}
    # The heartbeat's UPDATE waits behind the lock until the timeout cancels it.
    with table_locked("registry_siteagent", "EXCLUSIVE"), statement_timeout(300):
        started = time.monotonic()
        response = client.post("/api/v1/site/heartbeat/", beat, format="json")
        waited = time.monotonic() - started
    assert response.status_code == 503
    assert response.json() == {"detail": TIMED_OUT}
    assert response["Retry-After"] == "5"
    assert waited < 5
    event = AuditEvent.objects.order_by("-id").first()
    assert event is not None
    assert (event.path, event.status_code) == ("/api/v1/site/heartbeat/", 503)
    # Once the lock is gone the same call goes through.
    assert client.post("/api/v1/site/heartbeat/", beat, format="json").status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_page_whose_statement_times_out_is_a_503_page() -> None:
    seeded = seed_region(1, hours=1)
    client = Client()
    client.force_login(make_user("operator-timeout", Role.REGIONAL_OPERATOR))
    url = f"/hospitals/{seeded.a.site_code}/"
    assert client.get(url).status_code == 200
    with table_locked("census_unitstate"), statement_timeout(300):
        response = client.get(url)
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == TIMED_OUT
    assert response["Retry-After"] == "5"
    event = AuditEvent.objects.order_by("-id").first()
    assert event is not None
    assert (event.path, event.status_code) == (url, 503)
