"""Which writes commit without waiting for the disk: a read's audit event and a heartbeat;
a change's event always waits (governance/durability.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.test.utils import CaptureQueriesContext

from governance import audit, durability
from governance.models import AuditEvent

pytestmark = [pytest.mark.postgres]

RELAXED = "set_config('synchronous_commit', 'off', true)"


def setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


def audit_inserts(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "governance_auditevent" in q["sql"]]


def through_middleware(
    rf, method: str, view: Callable[[HttpRequest], HttpResponse] | None = None
) -> list[str]:
    """Run one request through AuditMiddleware; the audit statements it executed."""
    request = rf.generic(method, "/api/v1/anything/")
    request.user = AnonymousUser()
    middleware = audit.AuditMiddleware(view or (lambda r: HttpResponse("ok")))
    with CaptureQueriesContext(connection) as queries:
        assert middleware(request).status_code == 200
    return audit_inserts(queries)


@pytest.mark.django_db(transaction=True)
def test_the_condition_relaxes_its_own_transaction_and_nothing_after() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 WHERE {durability.UNFLUSHED}")
        assert cursor.fetchone() == (1,)
    assert setting() == "on"  # autocommit: the statement was its own transaction
    with transaction.atomic():
        assert durability.relaxable(connection) is False
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 WHERE {durability.UNFLUSHED}")
        assert setting() == "off"  # why it is used only where relaxable() says so
    assert setting() == "on"
    assert durability.relaxable(connection) is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "relaxed"), [("GET", True), ("HEAD", True), ("POST", False), ("DELETE", False)]
)
def test_a_reads_event_commits_unflushed_and_a_changes_event_waits(
    rf, method: str, relaxed: bool
) -> None:
    before = AuditEvent.objects.count()
    statements = through_middleware(rf, method)
    assert len(statements) == 1
    assert (RELAXED in statements[0]) is relaxed
    assert setting() == "on"  # a persistent connection keeps the server's default
    # Committed either way: another connection sees the event.
    dsn = connection.get_connection_params()
    with psycopg.connect(
        **{k: v for k, v in dsn.items() if k in ("host", "port", "user", "password", "dbname")}
    ) as other:
        row = other.execute("SELECT count(*) FROM governance_auditevent").fetchone()
    assert row == (before + 1,)


@pytest.mark.django_db(transaction=True)
def test_reads_wait_for_the_disk_where_the_setting_asks(rf, settings) -> None:
    settings.GOVERNANCE_AUDIT_READS_DURABLE = True
    (statement,) = through_middleware(rf, "GET")
    assert RELAXED not in statement


@pytest.mark.django_db(transaction=True)
def test_a_view_may_say_its_changes_event_need_not_wait(rf) -> None:
    def heartbeat_like(request: HttpRequest) -> HttpResponse:
        request.audit_context["durable"] = False  # type: ignore[attr-defined]
        return HttpResponse("ok")

    (statement,) = through_middleware(rf, "POST", heartbeat_like)
    assert RELAXED in statement


@pytest.mark.django_db
def test_inside_a_transaction_an_event_commits_with_it() -> None:
    # The caller's transaction decides: relaxing it would relax the caller's own writes.
    with CaptureQueriesContext(connection) as queries:
        audit.record(actor=None, action="test.event", durable=False)
    (statement,) = audit_inserts(queries)
    assert RELAXED not in statement
    assert setting() == "on"


def wal_flushes_by(write: Callable[[], object], times: int) -> int:
    """WAL flushes the server counted while ``write`` ran ``times`` times (pg_stat_wal)."""

    def flushes() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(1.1)  # a backend reports its statistics at most once a second
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT wal_sync FROM pg_stat_wal")
            return int(cursor.fetchone()[0])

    before = flushes()
    for _ in range(times):
        write()
    return flushes() - before


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_unflushed_event_does_not_wait_for_a_wal_flush() -> None:
    durable = wal_flushes_by(lambda: audit.record(actor=None, action="test.event"), 40)
    relaxed = wal_flushes_by(
        lambda: audit.record(actor=None, action="test.event", durable=False), 40
    )
    assert durable >= 30  # one flush a commit (fewer only if the WAL writer got there first)
    assert relaxed < durable / 3  # only the WAL writer's own, every 200 ms
