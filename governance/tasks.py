"""Celery tasks: thin interfaces to services, scheduled by ``CELERY_BEAT_SCHEDULE``."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from governance import services


@shared_task(name="governance.audit.link")
def audit_link() -> int:
    """Link new audit rows into the hash chain (every few seconds)."""
    return services.audit_link()


@shared_task(name="governance.audit.checkpoint")
def audit_checkpoint() -> int | None:
    """Sign the chain head (daily)."""
    checkpoint = services.audit_checkpoint_write()
    return checkpoint.chain_seq if checkpoint is not None else None


@shared_task(name="governance.retention.enforce")
def retention_enforce(dry_run: bool = False) -> dict[str, Any]:
    run = services.retention_run(dry_run=dry_run)
    return {"run": run.pk, "dry_run": run.dry_run}


@shared_task(name="governance.erasure.deadlines")
def erasure_deadlines() -> list[str]:
    return [str(e.pk) for e in services.erasure_deadlines_check()]


@shared_task(name="governance.policies.publish_due")
def policies_publish_due() -> list[int]:
    return [p.pk for p in services.policies_publish_due()]
