"""The cyclic garbage collector paused for one region evaluation.

An evaluation of a national region allocates a few hundred thousand small objects (routes,
readings, alert candidates, explanation parts), nearly all of which live until the outcome
is stored. With the collector running, those allocations trigger hundreds of young
collections and several full ones, and a full collection walks every object the process
holds (the neighbour lists, the hospitals' states, in a worker all of Django): measured on
the 6,000-hospital benchmark that was 40-60% of an evaluation's CPU time. The evaluation
creates no reference cycles of its own, so pausing the collector loses nothing; whatever
cycles other code leaves are collected as usual once it is resumed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause automatic collection for the block; resume it after (nested use is safe: only
    the outermost pause resumes)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
