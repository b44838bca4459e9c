"""Celery task durations and failures by task name, from Celery's signals."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from hub.celery import app


@app.task(name="tests.observability.ok")
def ok_task() -> int:
    return 1


@app.task(name="tests.observability.broken")
def broken_task() -> None:
    raise ValueError("broken on purpose")


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_task_run_is_timed_and_counted_by_name_and_state() -> None:
    labels = {"task": "tests.observability.ok", "state": "SUCCESS"}
    before = _sample("hub_celery_tasks_total", labels)
    timed = _sample("hub_celery_task_duration_seconds_count", labels)
    assert ok_task.apply().get() == 1
    assert _sample("hub_celery_tasks_total", labels) == before + 1
    assert _sample("hub_celery_task_duration_seconds_count", labels) == timed + 1


def test_a_failing_task_is_counted_with_its_exception_class() -> None:
    failures = {"task": "tests.observability.broken", "exception": "ValueError"}
    before = _sample("hub_celery_task_failures_total", failures)
    result = broken_task.apply()
    with pytest.raises(ValueError, match="broken on purpose"):
        result.get()
    assert _sample("hub_celery_task_failures_total", failures) == before + 1
    state = {"task": "tests.observability.broken", "state": "FAILURE"}
    assert _sample("hub_celery_tasks_total", state) >= 1


def test_log_lines_of_a_task_carry_its_name_and_id() -> None:
    from deid.logformat import current_context

    seen: list[dict[str, str]] = []

    @app.task(name="tests.observability.context")
    def context_task() -> None:
        seen.append(current_context())

    result = context_task.apply()
    assert seen[0]["task"] == "tests.observability.context"
    assert seen[0]["task_id"] == result.id
    assert current_context() == {}
