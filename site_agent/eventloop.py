"""Which asyncio event loop the agent runs on: uvloop when it is there, else the stdlib one.

uvloop (libuv, written in Cython) does the same work as asyncio's selector loop — epoll, the
socket reads and writes of every MLLP connection, timers, callbacks — in C, which takes a
sizeable part of the per-message CPU off the one thread that also parses, applies and commits.
Nothing in the agent depends on which loop runs it. ``[agent] event_loop`` chooses: ``auto``
(the default: uvloop if it can be imported, else asyncio), ``uvloop`` (required: start-up
fails without it) or ``asyncio`` (the stdlib loop, e.g. to rule the loop out when debugging).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable

__all__ = ["EVENT_LOOPS", "loop_factory"]

EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def loop_factory(choice: str = "auto") -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    """(name of the loop used, a factory for it) for an ``[agent] event_loop`` value."""
    if choice not in EVENT_LOOPS:
        raise ValueError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}, got {choice!r}")
    if choice != "asyncio":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            if choice == "uvloop":
                raise RuntimeError("event_loop = 'uvloop' but uvloop is not installed") from None
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return "uvloop", factory
    return "asyncio", asyncio.new_event_loop
