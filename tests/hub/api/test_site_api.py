"""The site API: enrolment, heartbeat, directives, policy, the HTTPS fallback push."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from deid.signing import generate_signing_key, public_key_b64
from governance.roles import Role
from hub.census.models import CensusSnapshot
from hub.registry import services
from hub.registry.models import SiteAgent
from tests.hub.fixtures import Client
from tests.hub.support import census, enrolled_site, hospital_with_units, seal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

RELAXED = "set_config('synchronous_commit', 'off', true)"

AgentClient = Callable[[str], APIClient]


def test_an_agent_enrols_once_with_its_token_and_public_key() -> None:
    hospital = hospital_with_units()
    ticket = services.agent_enrolment_issue(hospital=hospital, name="deid-1")
    key = generate_signing_key()
    body = {"token": ticket.token, "public_key": public_key_b64(key), "agent_version": "1.0"}
    first = APIClient().post("/api/v1/site/enrol/", body, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["site_code"] == hospital.site_code
    agent = SiteAgent.objects.get(pk=first.json()["agent_id"])
    assert agent.public_key == public_key_b64(key)
    assert agent.status == "enrolled"
    again = APIClient().post("/api/v1/site/enrol/", body, format="json")
    assert again.status_code == 400
    assert "unknown, used or expired" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"token": "nope", "public_key": "AAAA"}, 400),
        ({"token": "x" * 500, "public_key": "AAAA"}, 400),
    ],
)
def test_bad_enrolments_are_4xx_with_a_message(body: dict[str, str], status: int) -> None:
    response = APIClient().post("/api/v1/site/enrol/", body, format="json")
    assert response.status_code == status
    assert response.json()


def test_a_malformed_public_key_is_refused() -> None:
    ticket = services.agent_enrolment_issue(hospital=hospital_with_units(), name="a")
    response = APIClient().post(
        "/api/v1/site/enrol/", {"token": ticket.token, "public_key": "not-a-key"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("public_key:")


def test_heartbeat_directives_and_acknowledgement(agent_client: AgentClient) -> None:
    hospital, _, credential = enrolled_site()
    client = agent_client(credential)
    directive = services.directive_issue(
        hospital=hospital,
        kind="diversion",
        payload={"ems_traffic": "Closed", "reason": "CT down"},
        issued_by=None,
    )
    beat = client.post(
        "/api/v1/site/heartbeat/",
        {"agent_version": "1.2", "feeds": [{"name": "adt", "source": "hl7-adt"}]},
        format="json",
    )
    assert beat.status_code == 200, beat.content
    assert beat.json()["pending_directives"] == 1
    listed = client.get("/api/v1/site/directives/").json()
    assert [d["id"] for d in listed] == [directive.pk]
    ack = client.post(f"/api/v1/site/directives/{directive.pk}/ack/")
    assert ack.status_code == 200
    assert client.get("/api/v1/site/directives/").json() == []


def test_an_agent_cannot_acknowledge_another_sites_directive(agent_client: AgentClient) -> None:
    _, _, credential = enrolled_site()
    other = hospital_with_units()
    directive = services.directive_issue(hospital=other, kind="notice", payload={}, issued_by=None)
    response = agent_client(credential).post(f"/api/v1/site/directives/{directive.pk}/ack/")
    assert response.status_code == 404


def test_no_policy_yet_is_204(agent_client: AgentClient) -> None:
    _, _, credential = enrolled_site()
    response = agent_client(credential).get("/api/v1/site/policy/")
    assert response.status_code == 204


def test_the_https_push_stores_once_like_the_consumer(agent_client: AgentClient) -> None:
    hospital, key, credential = enrolled_site()
    envelope = seal([census(hospital.site_code) for _ in range(5)], key, hospital.site_code)
    client = agent_client(credential)
    first = client.post("/api/v1/site/batches/", envelope, content_type="application/json")
    assert first.status_code == 200, first.content
    assert first.json() == {"accepted": 5, "stored": 5, "duplicates": 0, "rejected": []}
    again = client.post("/api/v1/site/batches/", envelope, content_type="application/json")
    assert again.json()["duplicates"] == 5
    assert CensusSnapshot.objects.filter(site_code=hospital.site_code).count() == 5


def test_the_https_push_refuses_a_bad_signature_with_422(agent_client: AgentClient) -> None:
    hospital, _, credential = enrolled_site()
    forged = seal([census(hospital.site_code)], generate_signing_key(), hospital.site_code)
    response = agent_client(credential).post(
        "/api/v1/site/batches/", forged, content_type="application/json"
    )
    assert response.status_code == 422
    assert "not registered" in response.json()["detail"]


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"record_type": "regional.envelope"}'])
def test_the_https_push_answers_garbage_with_4xx(agent_client: AgentClient, body: bytes) -> None:
    _, _, credential = enrolled_site()
    response = agent_client(credential).post(
        "/api/v1/site/batches/", body, content_type="application/json"
    )
    assert 400 <= response.status_code < 500
    assert response.json()["detail"]


def test_a_site_cannot_push_another_sites_envelope(agent_client: AgentClient) -> None:
    _, _, credential = enrolled_site()
    other, other_key, _ = enrolled_site()
    envelope = seal([census(other.site_code)], other_key, other.site_code)
    response = agent_client(credential).post(
        "/api/v1/site/batches/", envelope, content_type="application/json"
    )
    assert response.status_code == 422


def test_a_revoked_credential_is_401(agent_client: AgentClient) -> None:
    hospital, _, credential = enrolled_site()
    services.agent_revoke(agent=hospital.agents.get())
    response = agent_client(credential).get("/api/v1/site/me/")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_people_cannot_use_the_site_api(client_for: Client) -> None:
    operator = client_for(Role.REGIONAL_OPERATOR)
    assert operator.get("/api/v1/site/me/").status_code in (401, 403)
    assert operator.post("/api/v1/site/heartbeat/", {}, format="json").status_code in (401, 403)


def test_agents_cannot_use_the_operations_api(agent_client: AgentClient) -> None:
    _, _, credential = enrolled_site()
    client = agent_client(credential)
    for path in ("/api/v1/hospitals/", "/api/v1/live/", "/api/v1/history/census/"):
        assert client.get(path).status_code == 403, path


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_and_its_event_commit_without_waiting_for_the_disk(
    agent_client: AgentClient,
) -> None:
    # Liveness the next heartbeat replaces (governance/durability.py): both of its writes are
    # relaxed; everything else the agent changes (an acknowledgement) waits as before.
    hospital, _, credential = enrolled_site()
    client = agent_client(credential)
    with CaptureQueriesContext(connection) as queries:
        beat = client.post(
            "/api/v1/site/heartbeat/", {"agent_version": "1.3", "feeds": []}, format="json"
        )
    assert beat.status_code == 200, beat.content
    writes = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith(("UPDATE", "INSERT"))
    ]
    assert len(writes) == 2, writes
    assert all(RELAXED in sql for sql in writes), writes
    assert SiteAgent.objects.get(hospital=hospital).agent_version == "1.3"
    directive = services.directive_issue(
        hospital=hospital, kind="notice", payload={}, issued_by=None
    )
    with CaptureQueriesContext(connection) as queries:
        assert client.post(f"/api/v1/site/directives/{directive.pk}/ack/").status_code == 200
    events = [q["sql"] for q in queries.captured_queries if "governance_auditevent" in q["sql"]]
    assert events
    assert not any(RELAXED in sql for sql in events)
