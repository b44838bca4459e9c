"""The audit log paged without counting all of it: the screen counts up to a cap, the API
pages by cursor."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from governance import audit, paging
from governance.models import AuditEvent
from governance.roles import Role
from tests.governance.conftest import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _events(n: int, action: str = "test.paging") -> None:
    for i in range(n):
        audit.record(actor=None, action=action, target=f"row-{i}")


def test_the_count_stops_at_the_cap_in_one_bounded_query() -> None:
    _events(8)
    qs = AuditEvent.objects.filter(action="test.paging").order_by("-id")
    with CaptureQueriesContext(connection) as q:
        capped = paging.CappedPaginator(qs, 2, cap=5)
        assert (capped.count, capped.capped, capped.num_pages) == (5, True, 3)
    (sql,) = [x["sql"] for x in q.captured_queries]
    assert "LIMIT 6" in sql
    whole = paging.CappedPaginator(qs, 2, cap=8)
    assert (whole.count, whole.capped, whole.num_pages) == (8, False, 4)


def test_the_screen_says_more_than_the_cap_and_how_to_see_older_events(
    client: Client, make_user: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "AUDIT_COUNT_CAP", 1000)
    _events(1002)
    client.force_login(make_user(Role.AUDITOR))
    page = client.get(reverse("govweb:audit"), {"action": "test.paging"}).content.decode()
    assert "More than 1,000 events" in page
    assert "Page 1 of 20+" in page
    last = client.get(reverse("govweb:audit"), {"action": "test.paging", "page": "20"})
    assert "set “To (UTC)” to see older ones" in last.content.decode()


def test_the_api_pages_the_log_by_cursor_newest_first(
    make_user: UserFactory,
) -> None:
    _events(5)
    client = APIClient()
    client.force_authenticate(make_user(Role.AUDITOR))
    first = client.get("/api/v1/governance/audit-events/", {"action": "test.paging", "limit": "2"})
    assert first.status_code == 200
    body = first.json()
    assert "count" not in body  # nothing counted
    assert [e["target"] for e in body["results"]] == ["row-4", "row-3"]
    second = client.get(body["next"]).json()
    assert [e["target"] for e in second["results"]] == ["row-2", "row-1"]


def test_the_screens_action_picker_reads_only_the_newest_events(
    make_user: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from governance.web import selectors as screens

    monkeypatch.setattr(screens, "ACTION_NAMES_FROM", 3)
    _events(3, action="test.old")
    _events(3, action="test.new")
    with CaptureQueriesContext(connection) as q:
        names = screens.audit_action_names(user=make_user(Role.AUDITOR))
    assert names == ["test.new"]
    (sql,) = [x["sql"] for x in q.captured_queries if "DISTINCT" in x["sql"]]
    assert "LIMIT 3" in sql


def test_the_admin_lists_the_log_without_counting_it(
    client: Client, django_user_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "AUDIT_COUNT_CAP", 5)
    _events(8)
    admin = django_user_model.objects.create_superuser("audit-admin", password=None)
    client.force_login(admin)
    with CaptureQueriesContext(connection) as q:
        response = client.get("/admin/governance/auditevent/")
    assert response.status_code == 200
    counts = [x["sql"] for x in q.captured_queries if "COUNT(" in x["sql"].upper()]
    assert counts
    assert all("LIMIT 6" in sql for sql in counts if "governance_auditevent" in sql), counts
