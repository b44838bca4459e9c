"""The region evaluations go to a queue of their own, taken by one process that keeps what
each evaluation stored for the next (hub/settings.py, hub/coordination/kept.py)."""

from __future__ import annotations

from django.conf import settings

from hub.celery import app


def _queue(task: str) -> str:
    return str(app.amqp.router.route({}, task)["queue"].name)


def test_the_evaluations_go_to_the_coordination_queue_and_the_rest_to_the_default() -> None:
    for name in ("evaluate_all", "evaluate_changed", "evaluate_region"):
        assert _queue(f"coordination.{name}") == settings.COORDINATION_QUEUE
    for task in (
        "coordination.deliver_alert",
        "coordination.publish_directive",
        "governance.audit.link",
    ):
        assert _queue(task) == "celery"


def test_a_worker_started_without_queues_takes_both() -> None:
    assert {q.name for q in app.conf.task_queues} == {"celery", settings.COORDINATION_QUEUE}
