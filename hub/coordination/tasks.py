"""Celery tasks: thin interfaces to the services. Beat runs ``evaluate_all`` every minute and
``evaluate_changed`` every few seconds (a region whose census changed since its last
evaluation is re-evaluated at once: the "on every state change" trigger, without a hook in
ingestion). Decisions re-evaluate their region and publish their directive after commit."""

from __future__ import annotations

import logging

from celery import shared_task

from governance.control import PublishError, encode, publish
from hub.coordination import delivery, services
from hub.coordination import models as m
from hub.registry.models import Directive, Region

logger = logging.getLogger("hub.coordination.tasks")

DIVERSION_TYPE = "control.diversion"


@shared_task(name="coordination.evaluate_all")
def evaluate_all() -> int:
    count = 0
    for region in Region.objects.all():
        try:
            services.region_evaluate(region=region)
            count += 1
        except Exception:  # one bad region must not stop the others
            logger.exception("evaluation of region %s failed", region.code)
    return count


@shared_task(name="coordination.evaluate_changed")
def evaluate_changed() -> int:
    regions = services.regions_changed_since_evaluated()
    for region in regions:
        try:
            services.region_evaluate(region=region)
        except Exception:
            logger.exception("evaluation of region %s failed", region.code)
    return len(regions)


@shared_task(name="coordination.evaluate_region")
def evaluate_region(region_id: int) -> str:
    region = Region.objects.get(pk=region_id)
    summary = services.region_evaluate(region=region)
    return f"{summary.region}: {summary.mode}, {summary.rules_ms:.0f} ms"


@shared_task(name="coordination.deliver_alert")
def deliver_alert(alert_id: int, level: int) -> int:
    alert = m.Alert.objects.select_related("hospital").filter(pk=alert_id).first()
    if alert is None:
        return 0
    return len(delivery.deliver(alert, level))


def directive_message(directive: Directive) -> dict[str, object]:
    """The control-topic mirror of a diversion directive; the site API holds the original
    (``/api/v1/site/directives/``), which the agent acknowledges."""
    return {
        "record_type": DIVERSION_TYPE,
        "schema_version": 1,
        "directive_id": directive.pk,
        "site_code": directive.hospital.site_code,
        "kind": directive.kind,
        "payload": directive.payload,
        "issued_at": directive.issued_at.isoformat(),
        "expires_at": directive.expires_at.isoformat() if directive.expires_at else None,
        "fetch": "/api/v1/site/directives/",
    }


@shared_task(
    name="coordination.publish_directive",
    autoretry_for=(PublishError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=10,
)
def publish_directive(directive_id: int) -> bool:
    directive = Directive.objects.select_related("hospital").filter(pk=directive_id).first()
    if directive is None:
        return False
    publish(
        site_code=directive.hospital.site_code,
        value=encode(directive_message(directive)),
        headers={"record_type": DIVERSION_TYPE},
    )
    return True


@shared_task(name="coordination.run_scenario")
def run_scenario(run_id: int) -> str:
    """Run a queued what-if (``scenarios.scenario_run_execute``)."""
    from hub.coordination import scenarios

    run = scenarios.scenario_run_execute(run_id=run_id)
    return f"what-if {run.pk}: {run.state}"
