"""The erasure registry: how governance deletes a patient's rows without importing the hub.

Each app that stores rows keyed by surrogate registers an eraser at app-ready time::

    from governance.erasure import register_eraser

    def flow_erase_surrogates(*, site_code: str, surrogate_ids: Iterable[str]) -> int: ...
    register_eraser("hub.census.flow", flow_erase_surrogates)

An eraser is called inside the erasure transaction with keyword arguments ``site_code`` and
``surrogate_ids`` and returns the number of rows it deleted (or ``{"table": count}``). The
counts are recorded on the erasure request as evidence.

Consumers call ``is_erased`` / ``erased_among`` before inserting, so replaying a topic never
brings an erased patient back.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Eraser = Callable[..., int | Mapping[str, int]]

_lock = threading.Lock()
_erasers: dict[str, Eraser] = {}


def register_eraser(name: str, eraser: Eraser) -> None:
    """Register (or re-register under the same name) a function that deletes a surrogate's rows."""
    if not callable(eraser):
        raise TypeError("an eraser must be callable")
    with _lock:
        _erasers[name] = eraser


def unregister_eraser(name: str) -> None:
    with _lock:
        _erasers.pop(name, None)


def erasers() -> dict[str, Eraser]:
    with _lock:
        return dict(_erasers)


def run_erasers(*, site_code: str, surrogate_ids: list[str]) -> dict[str, int]:
    """Call every eraser; returns rows deleted per eraser (or per table it names)."""
    counts: dict[str, int] = {}
    for name, eraser in sorted(erasers().items()):
        result: Any = eraser(site_code=site_code, surrogate_ids=list(surrogate_ids))
        if isinstance(result, Mapping):
            for table, n in result.items():
                counts[f"{name}:{table}"] = int(n)
        else:
            counts[name] = int(result)
    return counts


def surrogate_digest(surrogate_id: str) -> str:
    """SHA-256 of a surrogate. Surrogates are random (HIPAA 164.514(c)), not derived from the
    patient's data, so the digest cannot be reversed by guessing; it is what the hub keeps."""
    return hashlib.sha256(surrogate_id.strip().encode("utf-8")).hexdigest()


def erased_among(surrogate_ids: Iterable[str]) -> set[str]:
    """Which of these surrogates were erased (one query for a consumer batch)."""
    from governance.models import ErasedSurrogate

    by_digest = {surrogate_digest(s): s for s in surrogate_ids if s}
    if not by_digest:
        return set()
    found = ErasedSurrogate.objects.filter(surrogate_digest__in=list(by_digest)).values_list(
        "surrogate_digest", flat=True
    )
    return {by_digest[d] for d in found}


def is_erased(surrogate_id: str) -> bool:
    return bool(surrogate_id) and bool(erased_among([surrogate_id]))
