"""Management commands: audit link/verify/checkpoint, governance keygen / ensure-roles."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from governance import audit, chain
from governance.models import AuditCheckpoint
from governance.roles import Role
from tests.governance.conftest import UserFactory
from tests.governance.test_audit import tamper

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_audit_verify_passes_then_names_the_first_altered_row() -> None:
    events = [audit.record(actor=None, action="cmd.test", row_count=i) for i in range(5)]
    out, _ = run("audit", "verify")
    assert "audit chain OK" in out
    tamper("UPDATE governance_auditevent SET actor_label = 'mallory' WHERE id = %s", [events[2].pk])
    err = io.StringIO()
    with pytest.raises(CommandError, match="verification failed"):
        call_command("audit", "verify", stdout=io.StringIO(), stderr=err)
    assert f"FIRST ALTERED ROW: id {events[2].pk} " in err.getvalue()


def test_audit_verify_lists_unlinked_rows_apart_without_failing() -> None:
    chain.link_all()
    audit.record(actor=None, action="cmd.pending")
    out, _ = run("audit", "verify", "--no-link")
    assert "not linked yet" in out
    assert "audit chain OK" in out


@pytest.mark.usefixtures("governance_keys")
def test_audit_checkpoint_and_external_check(tmp_path: Path, settings: Any) -> None:
    settings.GOVERNANCE_AUDIT_CHECKPOINT_DIR = str(tmp_path)
    audit.record(actor=None, action="cmd.checkpoint")
    out, _ = run("audit", "checkpoint")
    assert "twinhub.audit.checkpoint.v1" in out
    assert AuditCheckpoint.objects.exists()
    (file,) = tmp_path.glob("*.jsonl")
    out, _ = run("audit", "check-checkpoint", str(file))
    assert "every checkpoint matches" in out


def test_governance_keygen_prints_fresh_keys_and_ensure_roles_runs() -> None:
    out, _ = run("governance", "keygen")
    assert out.count("GOVERNANCE_") == 2
    out, _ = run("governance", "ensure-roles")
    assert "regional_operator" in out


def test_board_searches_and_exports_the_audit_log(make_user: UserFactory) -> None:
    audit.record(actor=None, action="cmd.searchable", hospital_ids=[4242], row_count=3)
    client = APIClient()
    client.force_authenticate(make_user(Role.GOVERNANCE_BOARD))
    found = client.get("/api/v1/governance/audit-events/", {"hospital_id": 4242})
    assert found.status_code == 200
    assert [e["action"] for e in found.json()["results"]] == ["cmd.searchable"]
    export = client.get("/api/v1/governance/audit-events/export/", {"action": "cmd.searchable"})
    assert export.status_code == 200
    body = b"".join(export.streaming_content).decode()  # type: ignore[attr-defined]
    assert body.splitlines()[0].startswith("id,occurred_at,actor_id")
    assert "cmd.searchable" in body
    verify = client.get("/api/v1/governance/audit/verify/")
    assert verify.status_code == 200
    assert verify.json()["ok"] is True


def test_an_auditor_reads_but_cannot_run_retention(make_user: UserFactory) -> None:
    client = APIClient()
    client.force_authenticate(make_user(Role.AUDITOR))
    assert client.get("/api/v1/governance/audit-events/").status_code == 200
    assert client.post("/api/v1/governance/retention-runs/", {}, format="json").status_code == 403
    assert client.get("/api/v1/governance/policies/").status_code == 403


def test_celery_tasks_are_thin_wrappers_over_services(settings: Any) -> None:
    from governance import tasks

    audit.record(actor=None, action="task.probe")
    assert tasks.audit_link() >= 1
    result = tasks.retention_enforce(dry_run=True)
    assert result["dry_run"] is True
    assert tasks.erasure_deadlines() == []
    assert tasks.policies_publish_due() == []
    beat = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "governance.audit.link",
        "governance.audit.checkpoint",
        "governance.retention.enforce",
    } <= beat
