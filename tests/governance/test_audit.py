"""The audit log: one event per request, append-only in the database, hash chain, checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client

from governance import audit, chain
from governance.models import AuditCheckpoint, AuditEvent
from governance.roles import Role
from tests.governance.conftest import Region, UserFactory
from tests.pglock import statement_timeout, table_locked

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def tamper(sql: str, params: list[Any]) -> None:
    """What an attacker with table-owner rights would do: switch the guard off, edit, switch on.
    (Production takes ownership away from the application role; docs/governance.md.)"""
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE governance_auditevent DISABLE TRIGGER governance_auditevent_append_only"
        )
        cursor.execute(sql, params)
        cursor.execute(
            "ALTER TABLE governance_auditevent ENABLE TRIGGER governance_auditevent_append_only"
        )


def events(n: int, **fields: Any) -> list[AuditEvent]:
    return [
        audit.record(actor=None, action="test.event", detail={"n": i, "x": 0.1}, **fields)
        for i in range(n)
    ]


def test_record_writes_who_what_which_and_how_many(region: Region, make_user: UserFactory):
    user = make_user(Role.REGIONAL_OPERATOR)
    event = audit.record(
        actor=user,
        action="export_census",
        target=region.a,
        hospital_ids=[region.a.pk],
        object_ids=[1, 2],
        row_count=2,
        detail={"format": "csv"},
    )
    event = AuditEvent.objects.get(pk=event.pk)
    assert event.actor_id == user.pk
    assert event.roles == ["regional_operator"]
    assert event.target == f"{region.a._meta.label_lower}:{region.a.pk}"
    assert event.hospital_ids == [region.a.pk]
    assert event.object_ids == ["1", "2"]
    assert event.row_count == 2
    assert event.detail == {"format": "csv"}


@pytest.mark.parametrize(
    "object_ids",
    [
        [],
        [""],
        ["NULL", "null", " padded ", "a,b", "{x}", "{}", '"', '""', "\\", '\\"', "\\\\n"],
        ["é ✓ 😀 \u2028", "line\nbreak\ttab\x01\x7f", "'quote'", "$1 %s %(x)s ?"],
        ["x" * 64, "y" * 65, 12, None, 2.5],  # as text, cut to 64 characters
        [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(120)],
    ],
)
def test_object_ids_are_stored_as_given(object_ids: list[Any]) -> None:
    # They travel as one array literal (governance.audit.text_array), not element by element.
    event = audit.record(actor=None, action="test.event", object_ids=object_ids)
    stored = AuditEvent.objects.get(pk=event.pk).object_ids
    assert stored == [str(o)[:64] for o in object_ids]


def test_update_is_refused_by_the_database() -> None:
    (event,) = events(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="nothing.to.see")
    event.action = "nothing.to.see"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()


def test_delete_is_refused_by_the_database() -> None:
    (event,) = events(1)
    chain.link_all()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_truncate_is_refused_to_the_application_role() -> None:
    events(1)
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE governance_auditevent")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE governance_auditcheckpoint")


def test_linking_sets_the_chain_once_and_only_once() -> None:
    (event,) = events(1)
    chain.link_all()
    linked = AuditEvent.objects.get(pk=event.pk)
    assert linked.chain_seq is not None
    assert linked.chain_hash is not None
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(chain_hash="0" * 64)


def test_inserts_cannot_preset_the_chain() -> None:
    event = AuditEvent(action="forged", chain_seq=999_999, chain_hash="f" * 64)
    event.save(force_insert=True)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.chain_seq is None
    assert stored.chain_hash is None


def test_verify_passes_on_an_untouched_chain_and_reports_unlinked_rows_apart() -> None:
    events(5)
    chain.link_all()
    late = events(2)
    report = chain.verify(check_checkpoints=False)
    assert report.ok
    assert report.checked >= 5
    assert [e.pk for e in late] == report.unlinked_ids[-2:]


def test_tampering_with_one_row_is_detected_at_exactly_that_row() -> None:
    rows = events(6)
    chain.link_all()
    victim = rows[3]
    tamper("UPDATE governance_auditevent SET row_count = 999 WHERE id = %s", [victim.pk])
    report = chain.verify(check_checkpoints=False)
    assert not report.ok
    assert report.first_bad_id == victim.pk


def test_deleting_a_row_in_the_middle_is_detected_at_the_next_row() -> None:
    rows = events(4)
    chain.link_all()
    tamper("DELETE FROM governance_auditevent WHERE id = %s", [rows[1].pk])
    report = chain.verify(check_checkpoints=False)
    assert report.first_bad_id == rows[2].pk
    assert "missing" in report.problem


def test_a_late_commit_with_a_smaller_id_is_linked_next_round() -> None:
    _first, second = events(2)
    # Simulate id order differing from commit order: link only "second" first.
    chain.link_all()
    later = events(1)[0]
    assert chain.link_pending() == 1
    assert (
        AuditEvent.objects.get(pk=later.pk).chain_seq
        == (AuditEvent.objects.get(pk=second.pk).chain_seq or 0) + 1
    )
    assert chain.verify(check_checkpoints=False).ok


@pytest.mark.usefixtures("governance_keys")
def test_a_signed_checkpoint_matches_the_chain_and_detects_rewrites(tmp_path, settings) -> None:
    settings.GOVERNANCE_AUDIT_CHECKPOINT_DIR = str(tmp_path)
    rows = events(3)
    checkpoint = chain.write_checkpoint()
    assert checkpoint is not None
    line = next(tmp_path.glob("*.jsonl")).read_text().splitlines()[-1]
    assert chain.verify_external_checkpoint(line) is None
    assert chain.verify().ok
    # A rewrite that also recomputes every later hash still contradicts the signed head.
    tamper(
        "UPDATE governance_auditevent SET chain_hash = %s WHERE id = %s",
        ["e" * 64, rows[-1].pk],
    )
    assert chain.verify_external_checkpoint(line) is not None
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).delete()


def test_retention_horizon_lets_only_old_linked_rows_go() -> None:
    old = AuditEvent(action="ancient", occurred_at=datetime.now(UTC) - timedelta(days=7 * 366))
    old.save(force_insert=True)
    chain.link_all()
    AuditEvent.objects.filter(pk=old.pk).delete()
    assert not AuditEvent.objects.filter(pk=old.pk).exists()


def test_middleware_writes_one_event_per_request_with_request_id(
    client: Client, make_user: UserFactory
):
    user = make_user(Role.AUDITOR)
    client.force_login(user)
    before = AuditEvent.objects.count()
    response = client.get(
        "/api/v1/governance/audit-events/",
        HTTP_X_REQUEST_ID="req-0123456789",
        REMOTE_ADDR="192.0.2.7",
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-0123456789"
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.order_by("-id").first()
    assert event is not None
    assert (event.actor_id, event.action, event.status_code) == (user.pk, "read_audit", 200)
    assert event.request_id == "req-0123456789"
    assert event.source_ip == "192.0.2.7"
    assert event.roles == ["auditor"]
    assert event.path == "/api/v1/governance/audit-events/"


def test_middleware_skips_health_probes(client: Client) -> None:
    before = AuditEvent.objects.count()
    client.get("/healthz")
    assert AuditEvent.objects.count() == before


def test_forwarded_for_is_believed_only_for_trusted_proxies(rf, settings) -> None:
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.4")
    settings.GOVERNANCE_TRUSTED_PROXY_COUNT = 0
    assert audit.client_ip(request) == "10.0.0.1"
    settings.GOVERNANCE_TRUSTED_PROXY_COUNT = 1
    assert audit.client_ip(request) == "198.51.100.4"


def test_the_audit_log_samples_only_the_columns_its_queries_filter_by() -> None:
    # governance 0003: a 3,000-row ANALYZE sample instead of 30,000, so autovacuum's analyses
    # of a fast-growing log take a tenth of the CPU. Every column is decided (none is left at
    # the server's default, -1): a new column must say whether queries filter by it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, attstattarget FROM pg_attribute"
            " WHERE attrelid = 'governance_auditevent'::regclass AND attnum > 0"
            " AND NOT attisdropped"
        )
        targets = dict(cursor.fetchall())
    filtered = {"id", "occurred_at", "actor_id", "actor_label", "action", "request_id"}
    filtered |= {"hospital_ids", "chain_seq"}
    assert {c for c, t in targets.items() if t == 10} == filtered
    assert {c for c, t in targets.items() if t == 0} == set(targets) - filtered


def test_new_request_ids_sort_by_time_so_the_index_grows_at_its_end(monkeypatch) -> None:
    # Random ids (uuid4) sent every audit insert to a random leaf of governance_audit_request.
    clock = iter([1_795_000_000_000_000_000 + n * 1_000_000 for n in range(50)])
    monkeypatch.setattr(audit.time, "time_ns", lambda: next(clock))
    ids = [audit.new_request_id() for _ in range(50)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert all(audit._REQUEST_ID_RE.match(i) for i in ids)
    assert ids[0].startswith(f"{1_795_000_000_000:012x}")


@pytest.mark.django_db(transaction=True)
def test_an_event_the_database_cannot_take_turns_the_answer_into_a_503(
    client: Client, make_user: UserFactory
) -> None:
    client.force_login(make_user(Role.AUDITOR))
    # A maintenance job holds the audit log: the read is done, its event cannot be written.
    with table_locked("governance_auditevent", "EXCLUSIVE"), statement_timeout(300):
        response = client.get("/api/v1/governance/audit-events/", HTTP_X_REQUEST_ID="req-locked-01")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["X-Request-ID"] == "req-locked-01"
    assert b"audit unavailable" in response.content
    assert not AuditEvent.objects.filter(request_id="req-locked-01").exists()


def test_an_event_that_fails_for_another_reason_is_still_a_500(
    client: Client, make_user: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.force_login(make_user(Role.AUDITOR))

    def broken(event: AuditEvent, durable: bool) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(audit, "_insert", broken)
    response = client.get("/api/v1/governance/audit-events/")
    assert response.status_code == 500
    assert "Retry-After" not in response
