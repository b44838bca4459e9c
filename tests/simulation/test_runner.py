"""Running replications: the garbage-collector setting and the scheduling helper they use."""

from __future__ import annotations

import gc

import pytest
import simpy

from simulation.engine import Environment, call_later
from simulation.runner import GC_YOUNG_THRESHOLD, fewer_gc_passes


def test_fewer_gc_passes_raises_the_threshold_and_restores_it() -> None:
    before = gc.get_threshold()
    with fewer_gc_passes():
        inside = gc.get_threshold()
    assert inside[0] == max(before[0], GC_YOUNG_THRESHOLD)
    assert inside[1:] == before[1:]
    assert gc.get_threshold() == before


def test_fewer_gc_passes_restores_the_threshold_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_gc_passes():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before


@pytest.mark.parametrize("env_class", [Environment, simpy.Environment])
def test_call_later_runs_in_the_order_timeouts_would(env_class: type[simpy.Environment]) -> None:
    env = env_class()
    seen: list[tuple[str, float]] = []
    env.timeout(2.0).callbacks.append(lambda _e: seen.append(("timeout 2", env.now)))
    call_later(env, 2.0, lambda _e: seen.append(("later 2", env.now)))
    call_later(env, 1.0, lambda _e: seen.append(("later 1", env.now)))
    env.timeout(1.0).callbacks.append(lambda _e: seen.append(("timeout 1", env.now)))
    call_later(env, 0, lambda _e: seen.append(("urgent 0", env.now)), simpy.events.URGENT)
    env.run(until=5)
    assert seen == [
        ("urgent 0", 0.0),
        ("later 1", 1.0),
        ("timeout 1", 1.0),
        ("timeout 2", 2.0),
        ("later 2", 2.0),
    ]


def test_call_later_refuses_a_negative_delay() -> None:
    with pytest.raises(ValueError, match="Negative delay"):
        call_later(Environment(), -0.5, lambda _e: None)
