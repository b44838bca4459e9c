"""What the API shares between requests never outlives the change that makes it wrong.

Users, site credentials and grants are memoised per grants version (governance/versions.py);
live answers, the directory, a site's policy and pending directives per state fingerprint
(hub/api/live_cache.py). Every test warms the memo first, then changes the data, and the
very next request must see the change. Query counts pin what a warm request costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client as DjangoClient
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries
from rest_framework.test import APIClient

from governance import versions
from governance.access import assign_role, grant_hospital, revoke_hospital, revoke_role
from governance.models import AuditEvent, PolicyStatus, SharingPolicy
from governance.roles import Role
from hub.api import live_cache
from hub.api import serializers as s
from hub.api.live_output import (
    CENSUS_HISTORY_FIELDS,
    census_history_rows,
    census_history_values,
)
from hub.census.models import CensusSnapshot
from hub.registry import services
from tests.hub.api.test_live_api import report_all_units
from tests.hub.support import enrolled_site, hospital_with_units

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

AgentClient = Callable[[str], APIClient]


def session_client(role: Role | None = Role.REGIONAL_OPERATOR) -> tuple[DjangoClient, object]:
    """A browser-like client: a real session cookie, the user read through the backend."""
    user = get_user_model().objects.create_user(username=f"u{get_user_model().objects.count()}")
    if role is not None:
        assign_role(user, role)
    client = DjangoClient()
    client.force_login(user)
    return client, user


def test_a_revoked_credential_is_refused_on_the_very_next_request(
    agent_client: AgentClient,
) -> None:
    hospital, _, credential = enrolled_site()
    client = agent_client(credential)
    for _ in range(2):  # the second request is served from the memo
        assert client.get("/api/v1/site/me/").status_code == 200
    services.agent_revoke(agent=hospital.agents.get())
    response = client.get("/api/v1/site/me/")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_revocation_bumps_the_shared_version_and_a_heartbeat_does_not(
    agent_client: AgentClient,
) -> None:
    hospital, _, credential = enrolled_site()
    client = agent_client(credential)
    before = versions.grants_version()
    assert before is not None
    body = {"agent_version": "1", "feeds": [], "policy_version": 1, "outbox_backlog": 0}
    assert client.post("/api/v1/site/heartbeat/", body, format="json").status_code == 200
    # Other processes must not lose their memo to every heartbeat...
    assert versions.grants_version() == before
    services.agent_revoke(agent=hospital.agents.get())
    # ...but must drop it when a credential is revoked.
    after = versions.grants_version()
    assert after is not None
    assert after > before


def test_a_removed_role_is_refused_on_the_very_next_request() -> None:
    client, user = session_client()
    for _ in range(2):
        assert client.get("/api/v1/live/").status_code == 200
    revoke_role(user, Role.REGIONAL_OPERATOR)  # type: ignore[arg-type]
    assert client.get("/api/v1/live/").status_code == 403


def test_a_removed_hospital_grant_is_refused_on_the_very_next_request() -> None:
    hospital = hospital_with_units()
    client, user = session_client(role=None)
    grant_hospital(user, hospital, Role.ED_STAFF)  # type: ignore[arg-type]
    url = f"/api/v1/live/hospitals/{hospital.site_code}/"
    for _ in range(2):
        assert client.get(url).status_code == 200
    revoke_hospital(user, hospital, Role.ED_STAFF)  # type: ignore[arg-type]
    assert client.get(url).status_code in (403, 404)


def test_a_deactivated_user_is_signed_out_on_the_very_next_request() -> None:
    client, user = session_client()
    for _ in range(2):
        assert client.get("/api/v1/live/").status_code == 200
    user.is_active = False  # type: ignore[attr-defined]
    user.save()  # type: ignore[attr-defined]
    assert client.get("/api/v1/live/").status_code in (401, 403)


def test_a_deleted_session_is_signed_out_on_the_very_next_request() -> None:
    client, _ = session_client()
    for _ in range(2):  # the second request reads the memoised session row
        assert client.get("/api/v1/live/").status_code == 200
    Session.objects.filter(session_key=client.cookies["sessionid"].value).delete()
    assert client.get("/api/v1/live/").status_code == 403


def test_a_session_past_its_expiry_is_not_served_from_the_memo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, _ = session_client()
    for _ in range(2):
        assert client.get("/api/v1/live/").status_code == 200
    row = Session.objects.get(session_key=client.cookies["sessionid"].value)
    later = row.expire_date + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)  # no write: only the clock moves
    assert client.get("/api/v1/live/").status_code == 403


def test_a_session_ended_by_logout_in_another_client_is_refused() -> None:
    client, _ = session_client()
    assert client.get("/api/v1/live/").status_code == 200
    other = DjangoClient()
    other.cookies["sessionid"] = client.cookies["sessionid"].value
    assert other.get("/api/v1/live/").status_code == 200  # the same session, memoised
    client.logout()
    assert other.get("/api/v1/live/").status_code == 403


def test_a_live_answer_follows_every_ingested_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    hospital, key, _ = enrolled_site()
    client, _ = session_client()
    url = f"/api/v1/live/hospitals/{hospital.site_code}/"
    now = timezone.now()
    report_all_units(hospital.site_code, key, at=now - timedelta(minutes=2), ed_waiting=3)
    monkeypatch.setattr(timezone, "now", lambda: now)  # equal answers need equal ages
    first = client.get(url).json()
    assert client.get(url).json() == first
    assert first["ed"]["waiting"] == 3
    report_all_units(hospital.site_code, key, at=now - timedelta(minutes=1), ed_waiting=9)
    # Same second, same test transaction: the fingerprint still changes (xmin/cmin).
    assert client.get(url).json()["ed"]["waiting"] == 9


def test_a_directive_shows_in_the_live_answer_and_the_site_poll_at_once(
    agent_client: AgentClient,
) -> None:
    hospital, key, credential = enrolled_site()
    report_all_units(hospital.site_code, key, at=timezone.now() - timedelta(minutes=1))
    client, _ = session_client()
    site = agent_client(credential)
    url = f"/api/v1/live/hospitals/{hospital.site_code}/"
    assert client.get(url).json()["ed"]["ems_traffic"] != "Closed"
    assert site.get("/api/v1/site/directives/").json() == []
    services.directive_issue(
        hospital=hospital,
        kind="diversion",
        payload={"ems_traffic": "Closed", "reason": "test"},
        issued_by=None,
    )
    assert client.get(url).json()["ed"]["ems_traffic"] == "Closed"
    assert len(site.get("/api/v1/site/directives/").json()) == 1
    body = {"agent_version": "1", "feeds": [], "policy_version": 1, "outbox_backlog": 0}
    beat = site.post("/api/v1/site/heartbeat/", body, format="json").json()
    assert beat["pending_directives"] == 1


def test_a_policy_scheduled_ahead_is_served_once_its_time_comes(
    agent_client: AgentClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    hospital, _, credential = enrolled_site()
    site = agent_client(credential)
    start = timezone.now()
    SharingPolicy.objects.create(
        hospital_id=hospital.pk,
        site_code=hospital.site_code,
        version=1,
        document={},
        status=PolicyStatus.PUBLISHED,
        effective_at=start - timedelta(days=1),
        signed=b"v1",
    )
    SharingPolicy.objects.create(
        hospital_id=hospital.pk,
        site_code=hospital.site_code,
        version=2,
        document={},
        status=PolicyStatus.PUBLISHED,
        effective_at=start + timedelta(minutes=5),
        signed=b"v2",
    )
    for _ in range(2):  # the second answer is the shared one
        assert site.get("/api/v1/site/policy/").json()["version"] == 1
    # No write in between: only the clock moves past version 2's effective time.
    later = start + timedelta(minutes=5, seconds=1)
    monkeypatch.setattr(live_cache.timezone, "now", lambda: later)  # django.utils.timezone
    assert site.get("/api/v1/site/policy/").json()["version"] == 2


def test_pending_directives_are_not_rebuilt_as_the_clock_moves(
    agent_client: AgentClient,
    django_assert_num_queries: DjangoAssertNumQueries,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hospital, _, credential = enrolled_site()
    site = agent_client(credential)
    services.directive_issue(hospital=hospital, kind="notice", payload={}, issued_by=None)
    assert len(site.get("/api/v1/site/directives/").json()) == 1
    # A minute on (as long as a shared answer may live): served without a query but the
    # audit insert.
    monkeypatch.setattr(live_cache, "monotonic", lambda: time.monotonic() + 59)
    monkeypatch.setattr(live_cache, "time", SimpleNamespace(time=lambda: time.time() + 59))
    with django_assert_num_queries(1):
        assert len(site.get("/api/v1/site/directives/").json()) == 1


def test_a_live_answer_is_never_served_to_another_scope() -> None:
    hospital, key, _ = enrolled_site()
    report_all_units(hospital.site_code, key, at=timezone.now() - timedelta(minutes=1))
    operator, _ = session_client()
    ed_client, ed_user = session_client(role=None)
    grant_hospital(ed_user, hospital, Role.ED_STAFF)  # type: ignore[arg-type]
    url = f"/api/v1/live/hospitals/{hospital.site_code}/"
    everything = operator.get(url).json()
    assert {u["code"] for u in everything["units"]} == {"ICU", "W1", "ED"}
    ed_only = ed_client.get(url).json()  # same second, same data, another scope
    assert {u["code"] for u in ed_only["units"]} == {"ED"}


def test_a_new_hospital_is_listed_on_the_very_next_request() -> None:
    hospital = hospital_with_units()
    client, _ = session_client()
    url = f"/api/v1/hospitals/?region={hospital.region.code}"
    first = client.get(url).json()
    assert [h["site_code"] for h in first["results"]] == [hospital.site_code]
    services.hospital_upsert(
        region=hospital.region,
        site_code="ZZZ9",
        name="New",
        county="Test",
        state="NY",
        latitude=41.0,
        longitude=-74.0,
        active=True,
    )
    second = client.get(url).json()
    assert sorted(h["site_code"] for h in second["results"]) == sorted([hospital.site_code, "ZZZ9"])


def test_every_request_still_writes_its_audit_event(agent_client: AgentClient) -> None:
    hospital, key, credential = enrolled_site()
    report_all_units(hospital.site_code, key, at=timezone.now() - timedelta(minutes=1))
    client, user = session_client()
    site = agent_client(credential)
    start = AuditEvent.objects.count()
    for _ in range(3):
        assert client.get(f"/api/v1/live/hospitals/{hospital.site_code}/").status_code == 200
        assert client.get(f"/api/v1/hospitals/?region={hospital.region.code}").status_code == 200
        assert site.get("/api/v1/site/directives/").status_code == 200
    events = list(AuditEvent.objects.filter(pk__gt=0).order_by("-id")[:9])
    assert AuditEvent.objects.count() == start + 9
    live = [e for e in events if e.path.startswith("/api/v1/live/")]
    assert len(live) == 3
    # A shared answer is audited as fully as a fresh one: who, which hospital, how many rows.
    assert {(e.actor_id, tuple(e.hospital_ids), e.row_count) for e in live} == {
        (user.pk, (hospital.pk,), 3)  # type: ignore[attr-defined]
    }
    listed = [e for e in events if e.path == "/api/v1/hospitals/"]
    assert {tuple(e.object_ids) for e in listed} == {(str(hospital.pk),)}
    assert {e.action for e in events if e.path == "/api/v1/site/directives/"} == {"site_read"}


def test_history_rows_are_the_serializers_and_audited_by_event_id() -> None:
    hospital, key, _ = enrolled_site()
    now = timezone.now()
    for minutes in (3, 2, 1):
        report_all_units(hospital.site_code, key, at=now - timedelta(minutes=minutes))
    qs = CensusSnapshot.objects.order_by("-observed_at", "-event_id")
    expected = s.CensusSnapshotOutput(list(qs), many=True).data
    assert census_history_rows(list(qs.values(*CENSUS_HISTORY_FIELDS))) == expected
    # The same strings when PostgreSQL writes the event ids and times, with and without
    # microseconds.
    CensusSnapshot.objects.filter(pk=qs[0].pk).update(
        produced_at=now.replace(microsecond=0),
        received_at=now.replace(microsecond=7),
        suppressed=["ed_waiting", "offload_p90_minutes"],
    )
    expected = s.CensusSnapshotOutput(list(qs.all()), many=True).data  # not the cached rows
    fast = list(census_history_values(qs.all()))
    assert isinstance(fast[0]["produced_at_text"], str)
    assert isinstance(fast[0]["suppressed_text"], str)
    assert census_history_rows(fast) == expected
    assert expected[0]["suppressed"] == ["ed_waiting", "offload_p90_minutes"]
    client, _ = session_client()
    body = client.get("/api/v1/history/census/", {"limit": 4}).json()
    assert body["results"] == expected[:4]
    event = AuditEvent.objects.order_by("-id").first()
    assert event is not None
    assert event.row_count == 4
    assert event.object_ids == [r["event_id"] for r in expected[:4]]


def test_warm_requests_cost_the_audit_insert_only(
    agent_client: AgentClient,
    django_assert_num_queries: DjangoAssertNumQueries,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One second for the whole test, so no answer is rebuilt because the clock moved on.
    monkeypatch.setattr(live_cache, "time", SimpleNamespace(time=lambda: 2_000_000_000.0))
    hospital, key, credential = enrolled_site()
    report_all_units(hospital.site_code, key, at=timezone.now() - timedelta(minutes=1))
    client, _ = session_client()
    site = agent_client(credential)
    live = f"/api/v1/live/hospitals/{hospital.site_code}/"
    calls: list[tuple[int, Callable[[], object]]] = [
        # The audit insert (the state versions, the session's among them, come from Redis).
        (1, lambda: client.get(live)),
        (1, lambda: client.get("/api/v1/live/")),
        (1, lambda: client.get(f"/api/v1/hospitals/?region={hospital.region.code}")),
        # A bearer credential: no session; the audit insert.
        (1, lambda: site.get("/api/v1/site/policy/")),
        (1, lambda: site.get("/api/v1/site/directives/")),
    ]
    for queries, call in calls:
        call()  # warm: user, credential, grants, the answer
        # No user, role, grant or credential query; no rebuild.
        with django_assert_num_queries(queries):
            call()
    body = {"agent_version": "1", "feeds": [], "policy_version": 1, "outbox_backlog": 0}
    site.post("/api/v1/site/heartbeat/", body, format="json")
    # + the agent's UPDATE: one statement, no transaction block (no savepoints here, no
    # BEGIN/COMMIT in production).
    with django_assert_num_queries(2):
        site.post("/api/v1/site/heartbeat/", body, format="json")


def test_writers_bump_the_state_versions_and_a_heartbeat_does_not(
    agent_client: AgentClient,
) -> None:
    hospital, key, credential = enrolled_site()
    site = agent_client(credential)

    def state() -> dict[str, int | None]:
        return {k: versions.state_version(k) for k in versions.STATE_KINDS}

    before = state()
    report_all_units(hospital.site_code, key, at=timezone.now() - timedelta(minutes=1))
    after_ingest = state()
    # The ingest's raw upserts bump its own kind (and the hospital's counter:
    # tests/hub/api/test_live_parts.py), not the structural ``live`` one.
    assert after_ingest["census"] != before["census"]
    assert after_ingest["live"] == before["live"]
    assert after_ingest["policy"] == before["policy"]
    body = {"agent_version": "1", "feeds": [], "policy_version": 1, "outbox_backlog": 0}
    assert site.post("/api/v1/site/heartbeat/", body, format="json").status_code == 200
    assert state() == after_ingest  # last heartbeat, version, backlog: not shown live
    hospital.name = "Renamed"
    hospital.save()
    renamed = state()
    for kind in ("live", "registry", "directives"):
        assert renamed[kind] != after_ingest[kind]


def test_without_redis_nothing_is_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    hospital, key, _ = enrolled_site()
    report_all_units(hospital.site_code, key, at=timezone.now() - timedelta(minutes=1))
    client, _ = session_client()
    url = f"/api/v1/live/hospitals/{hospital.site_code}/"
    assert client.get(url).status_code == 200
    monkeypatch.setattr(versions, "_read", lambda: None)
    built: list[object] = []
    real = live_cache.answers.get_or_build

    def spy(key: object, build: Callable[[], object]) -> object:
        built.append(key)
        return real(key, build)

    monkeypatch.setattr(live_cache.answers, "get_or_build", spy)
    for _ in range(2):
        assert client.get(url).status_code == 200
    assert built == []  # built for each request, never stored
