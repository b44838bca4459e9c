"""The collector pause around an evaluation: paused inside, restored after, nested safely."""

from __future__ import annotations

import gc

import pytest

from hub.coordination.gcpause import paused_gc


def test_paused_inside_and_resumed_after() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pause_resumes_only_at_the_outermost() -> None:
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_resumed_after_an_exception() -> None:
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("evaluation failed")
    assert gc.isenabled()


def test_left_disabled_when_it_was_disabled_before() -> None:
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
