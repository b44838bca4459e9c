"""A database that cannot answer for now is a 503 with a message and Retry-After, not a 500:
the API through its exception handler, the pages through the middleware, and the audit
event records it; a change whose audit event cannot be written is a 500 (not to be
retried)."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from governance.models import AuditEvent
from governance.roles import Role
from governance.transient import TIMED_OUT
from tests.hub.support import enrolled_site
from tests.hub.web.board_fixtures import make_user, seed_region
from tests.pglock import statement_timeout, table_locked

BEAT = {"agent_version": "t", "feeds": [], "policy_version": 1, "outbox_backlog": 0}


def _site_agent() -> tuple[APIClient, dict[str, object]]:
    """An enrolled site agent's API client, and a heartbeat for it to send."""
    _, _, credential = enrolled_site()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    return client, dict(BEAT)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_api_statement_that_times_out_is_a_503_with_retry_after_and_is_audited() -> None:
    client, beat = _site_agent()
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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_change_whose_audit_event_cannot_be_written_is_a_500_not_an_invitation_to_retry() -> None:
    client, beat = _site_agent()
    # The heartbeat is stored; its event waits behind the lock until the timeout.
    with table_locked("governance_auditevent", "EXCLUSIVE"), statement_timeout(300):
        response = client.post("/api/v1/site/heartbeat/", beat, format="json")
    assert response.status_code == 500
    assert "Retry-After" not in response
