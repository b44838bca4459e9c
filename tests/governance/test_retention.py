"""Retention with a frozen clock: whole monthly partitions dropped, the rest deleted row by
row, per-hospital policy months honoured, a dry run changing nothing, a report each run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from governance import audit, chain, policies, retention, services
from governance.models import AuditEvent, PolicyStatus, RetentionRun, SharingPolicy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TABLE = "gov_test_series"
AS_OF = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)  # the frozen clock


@pytest.fixture
def series(settings: Any) -> None:
    """A monthly-partitioned table like the hub's census tables (Jan-Jun 2025 + default),
    with one row per hospital on the 10th of each month and a stray old row in default."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {TABLE} (id bigserial, hospital_id bigint NOT NULL, "
            "observed_at timestamptz NOT NULL, PRIMARY KEY (id, observed_at)) "
            "PARTITION BY RANGE (observed_at)"
        )
        for month in range(1, 7):
            lo, hi = f"2025-{month:02d}-01", f"2025-{month + 1:02d}-01"
            cursor.execute(
                f"CREATE TABLE {TABLE}_p2025{month:02d} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ('{lo} 00:00+00') TO ('{hi} 00:00+00')"
            )
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        for hospital in (1, 2):
            for month in range(1, 7):
                cursor.execute(
                    f"INSERT INTO {TABLE} (hospital_id, observed_at) VALUES (%s, %s)",  # noqa: S608
                    [hospital, datetime(2025, month, 10, tzinfo=UTC)],
                )
        stray = "(1, '2024-03-01 00:00+00')"  # old row in the default partition
        cursor.execute(f"INSERT INTO {TABLE} (hospital_id, observed_at) VALUES {stray}")  # noqa: S608
    settings.GOVERNANCE_RETENTION_CLASSES = {
        "test_metrics": {
            "tables": [TABLE],
            "time_column": "observed_at",
            "months": 3,
            "hospital_column": "hospital_id",
            "policy_key": "flow_records_months",
        },
    }


def rows(where: str = "TRUE") -> list[tuple[int, datetime]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT hospital_id, observed_at FROM {TABLE} WHERE {where} ORDER BY 1, 2"  # noqa: S608
        )
        return list(cursor.fetchall())


def partitions() -> set[str]:
    return {p.name for p in retention.partitions(TABLE) or []}


def test_months_before_clamps_to_the_end_of_month() -> None:
    assert retention.months_before(datetime(2025, 3, 31, tzinfo=UTC), 1) == datetime(
        2025, 2, 28, tzinfo=UTC
    )
    assert retention.months_before(datetime(2025, 1, 15, tzinfo=UTC), 13).year == 2023


@pytest.mark.usefixtures("series")
def test_a_dry_run_reports_and_changes_nothing() -> None:
    before = rows()
    run = services.retention_run(as_of=AS_OF, dry_run=True)
    assert rows() == before
    (report,) = [c for c in run.report["classes"] if c["name"] == "test_metrics"]
    (table,) = report["tables"]
    assert table["partitions_dropped"] == [f"{TABLE}_p202501", f"{TABLE}_p202502"]
    assert table["rows_in_dropped_partitions"] == 4
    assert table["rows_deleted"] == 3  # March 10th x2 (cutoff March 15th) + the stray row
    assert RetentionRun.objects.filter(pk=run.pk, dry_run=True).exists()
    assert AuditEvent.objects.filter(action="retention.dry_run", object_ids=[str(run.pk)]).exists()


@pytest.mark.usefixtures("series")
def test_enforcement_drops_old_partitions_and_deletes_the_rest() -> None:
    services.retention_run(as_of=AS_OF)
    assert f"{TABLE}_p202501" not in partitions()
    assert f"{TABLE}_p202502" not in partitions()
    assert f"{TABLE}_p202503" in partitions()  # holds rows after the cutoff's day: kept
    cutoff = datetime(2025, 3, 15, 12, tzinfo=UTC)
    assert all(observed >= cutoff for _, observed in rows())
    assert len(rows()) == 6  # April-June, two hospitals
    # Run again: nothing more to do (idempotent).
    again = services.retention_run(as_of=AS_OF)
    (report,) = [c for c in again.report["classes"] if c["name"] == "test_metrics"]
    assert report["tables"][0]["rows_deleted"] == 0


@pytest.mark.usefixtures("series", "governance_keys")
def test_a_hospitals_published_policy_sets_its_record_level_retention() -> None:
    document = policies.template()
    document["retention"] = {"flow_records_months": 1}
    SharingPolicy.objects.create(
        hospital_id=1,
        site_code="SITE-R",
        version=1,
        document=document,
        status=PolicyStatus.PUBLISHED,
    )
    services.retention_run(as_of=AS_OF)
    assert [m.month for _, m in rows("hospital_id = 1")] == [6]  # keeps one month
    assert [m.month for _, m in rows("hospital_id = 2")] == [4, 5, 6]  # the default 3


@pytest.mark.usefixtures("series")
def test_the_retention_command_has_a_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    before = rows()
    call_command("retention", "--dry-run")
    assert rows() == before
    assert '"dry_run": true' in capsys.readouterr().out


def test_audit_events_older_than_seven_years_go_as_a_chain_prefix() -> None:
    # Start from an empty chain in this test's transaction (rolled back afterwards).
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE governance_auditevent DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM governance_auditevent")
        cursor.execute("ALTER TABLE governance_auditevent ENABLE TRIGGER USER")
    old = datetime.now(UTC) - timedelta(days=8 * 366)
    for _ in range(3):
        AuditEvent(action="ancient", occurred_at=old).save(force_insert=True)
    recent = audit.record(actor=None, action="recent")
    chain.link_all()
    run = services.retention_run()
    assert not AuditEvent.objects.filter(action="ancient").exists()
    assert AuditEvent.objects.filter(pk=recent.pk).exists()
    assert run.audit_anchor_seq == 3
    report = chain.verify(check_checkpoints=False)
    assert report.ok, report.problem
