"""What-if runs queued from the web app: store the request, run ``simulation.whatif`` on a
Celery worker, keep the result table. The simulation stays in ``simulation``; this module only
tracks runs (who asked for what, when, and what came out)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance import audit
from hub.coordination import models as m
from simulation.changes import CHANGE_KEYS, apply_changes
from simulation.params import Scenario
from simulation.scenario import load_scenario
from simulation.whatif import whatif

logger = logging.getLogger("hub.coordination.scenarios")

RUN_SCENARIO = "run_scenario"
# Bundled hospital scenarios an operator may start from (simulation/scenarios/*.toml).
SCENARIOS = ("general_hospital",)
MAX_REPLICATIONS = 50


class ScenarioError(ValueError):
    """A what-if request the simulation would refuse."""


def _base(run: m.ScenarioRun) -> Scenario:
    scenario = load_scenario(run.scenario)
    if not isinstance(scenario, Scenario):
        raise ScenarioError(f"{run.scenario} is not a hospital scenario")
    if run.run_days:
        # Base and variant must run equally long: the length is part of the base.
        scenario = apply_changes(scenario, {"run_days": run.run_days})
    return scenario


@transaction.atomic
def scenario_run_queue(
    *,
    scenario: str,
    changes: Mapping[str, Any],
    replications: int,
    user: Any,
    settings: Mapping[str, Any] | None = None,
    run_days: int | None = None,
    seed: int = 1,
) -> m.ScenarioRun:
    """Record a what-if request and start it on a worker after commit."""
    if scenario not in SCENARIOS:
        raise ScenarioError(f"scenario must be one of {SCENARIOS}")
    unknown = set(changes) - set(CHANGE_KEYS)
    if unknown:
        raise ScenarioError(f"unknown changes {sorted(unknown)}")
    if not changes:
        raise ScenarioError("change at least one setting: the base alone has nothing to compare")
    if not 2 <= replications <= MAX_REPLICATIONS:
        raise ScenarioError(f"replications must be between 2 and {MAX_REPLICATIONS}")
    run = m.ScenarioRun.objects.create(
        scenario=scenario,
        changes=dict(changes),
        settings=dict(settings or {}),
        replications=replications,
        seed=seed,
        run_days=run_days,
        requested_by=user if getattr(user, "is_authenticated", False) else None,
        requested_at=timezone.now(),
    )
    try:
        apply_changes(_base(run), changes)  # refuse now what the worker would refuse later
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    audit.record(
        actor=user,
        action=RUN_SCENARIO,
        target=run,
        detail={"scenario": scenario, "changes": dict(changes), "replications": replications},
    )
    run_id = run.pk
    transaction.on_commit(lambda: _start(run_id))
    return run


def _start(run_id: int) -> None:
    from hub.coordination import tasks

    tasks.run_scenario.delay(run_id)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def scenario_run_execute(*, run_id: int) -> m.ScenarioRun:
    """Run the what-if (on a worker): queued → running → done, or failed with the error."""
    claimed = m.ScenarioRun.objects.filter(pk=run_id, state=m.ScenarioRun.State.QUEUED).update(
        state=m.ScenarioRun.State.RUNNING, started_at=timezone.now()
    )
    run = m.ScenarioRun.objects.get(pk=run_id)
    if not claimed:  # another worker has it, or it ran already (acks-late redelivery)
        return run
    try:
        # One process: a Celery prefork worker is daemonic and may not start children.
        table = whatif(
            _base(run), run.changes, replications=run.replications, seed=run.seed, processes=1
        )
        run.result = [
            {str(k): _clean(v) for k, v in row.items()} for row in table.to_dict("records")
        ]
        run.state = m.ScenarioRun.State.DONE
    except Exception as exc:  # the run's error is the user's answer, not a worker crash
        logger.exception("what-if run %s failed", run_id)
        run.state = m.ScenarioRun.State.FAILED
        run.error = str(exc) or type(exc).__name__
    run.finished_at = timezone.now()
    run.save(update_fields=["result", "state", "error", "finished_at"])
    return run
