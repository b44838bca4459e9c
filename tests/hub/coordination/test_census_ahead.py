"""The census read on a second connection while the evaluation reads the rest
(hub/coordination/census_ahead.py): used only when the evaluation's transaction is the
outermost, giving what the evaluation's own connection reads, and never losing an
evaluation when it fails."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from django.utils import timezone

from hub.coordination import census_ahead, inputs, services

from .db import world

pytestmark = [pytest.mark.postgres]


def _spies(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[Any]]:
    """(threads the second-connection read ran in, the states the rules were given)."""
    threads: list[str] = []
    states: list[Any] = []
    read, evaluate = census_ahead._read, services.evaluate_region

    def spy_read(region: Any, now: Any) -> Any:
        threads.append(threading.current_thread().name)
        return read(region, now)

    def spy_evaluate(given: Any, *args: Any, **kwargs: Any) -> Any:
        states.append(given)
        return evaluate(given, *args, **kwargs)

    monkeypatch.setattr(census_ahead, "_read", spy_read)
    monkeypatch.setattr(services, "evaluate_region", spy_evaluate)
    return threads, states


@pytest.mark.django_db(transaction=True)
def test_an_outermost_evaluation_reads_the_census_on_a_second_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    threads, states = _spies(monkeypatch)
    now = timezone.now()
    summary = services.region_evaluate(region=w.region, now=now)
    assert [t.startswith("census-ahead") for t in threads] == [True]
    assert states == [inputs.region_states(w.region, now)]  # what this connection reads
    assert len(states[0]) == 5
    assert summary.recommendations_new == 1  # H diverts to its calm neighbour


@pytest.mark.django_db(transaction=True)
def test_a_failed_second_connection_reads_on_the_evaluations_own(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    w = world()
    _, states = _spies(monkeypatch)

    def broken(region: Any, now: Any) -> Any:
        raise OSError("connection refused")

    monkeypatch.setattr(census_ahead, "_read", broken)
    now = timezone.now()
    with caplog.at_level(logging.WARNING, logger="hub.coordination"):
        summary = services.region_evaluate(region=w.region, now=now)
    assert states == [inputs.region_states(w.region, now)]
    assert summary.recommendations_new == 1
    assert "census read on the second connection failed" in caplog.text


@pytest.mark.django_db
def test_inside_an_enclosing_transaction_the_census_is_read_on_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The test's transaction holds the census uncommitted: another connection would not
    # see it.
    w = world()
    threads, states = _spies(monkeypatch)
    summary = services.region_evaluate(region=w.region, now=timezone.now())
    assert threads == []
    assert len(states[0]) == 5
    assert summary.recommendations_new == 1
