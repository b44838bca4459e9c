"""Live-state answers shared between requests: built once per state of the data and second.

The live board is polled by every operations screen; rebuilding it for each poll (six
queries and a few hundred objects for a small region) cost most of the API's CPU. An answer
is kept in this process under:

* the **state version** of its kind (``governance.versions.state_version``): a counter in
  Redis that every writer of the tables the answer reads bumps — unit and feed states,
  directives, hospitals, units, regions, the site agents' key names (``live``); hospitals,
  units, regions (``registry``); directives and hospitals (``directives``); sharing policies
  (``policy``). Model saves and deletes bump it through signals (``hub/api/apps.py``), the
  ingest's raw upserts by a call in ``hub.census.services``; when the write is made and
  again when its transaction commits, so an answer is never older than the last committed
  ingest batch, directive, policy or registry change, whichever path wrote it. It is read
  with the grants version in the request's one Redis ``MGET``: no query (the table scan it
  replaces cost PostgreSQL ~0.8 ms a request for the live kind). Without Redis nothing is
  shared;
* the **second** it was built in: ages (``age_seconds``) and staleness are computed when the
  answer is built, so they are at most one second behind the moment it is served (the
  region's ``generated_at`` says when; a directive that expires, or a unit that turns
  stale with time alone, shows within that second);
* the caller's **scope** (``governance.access.scope_for``) and the audience, so one role's
  answer is never served to another; the governed checks run before, for every request;
* this thread's **uncommitted change**, if any (``state_token``): an answer that may show it
  is this thread's own.

No answer is kept longer than ``MAX_AGE_SECONDS``, whatever the versions say.

The live board itself (the region and one hospital) is not kept here whole but as
per-hospital parts (``hub/api/live_parts.py``, stored in the same ``answers``): the ingest
bumps its own kind, ``census``, and a counter per hospital it touched, and a poll rebuilds
only the hospitals whose counter moved; ages are computed when the answer is served. The
``live`` kind's version for ``live_answer`` is the pair (``live``, ``census``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from time import monotonic  # not through ``time``: tests pin the clock
from typing import Any

from django.utils import timezone

from governance import versions

_MAX_ENTRIES = 512
MAX_AGE_SECONDS = 60.0


def state_key(kind: str) -> tuple[Hashable, int] | None:
    """What an answer of ``kind`` is valid for: (state version, uncommitted-change token);
    None when it may not be shared. A ``live`` answer reads what the ingest writes too: its
    version is the pair (``live``, ``census``)."""
    version = versions.state_version(kind)
    if version is None:
        return None
    if kind == "live":
        return (version, versions.state_version("census")), versions.state_token()
    return version, versions.state_token()


class _Answers:
    def __init__(self) -> None:
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        now = monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and now - hit[0] < MAX_AGE_SECONDS:
                self._data.move_to_end(key)
                return hit[1]
        value = build()
        with self._lock:
            self._data[key] = (now, value)
            self._data.move_to_end(key)
            while len(self._data) > _MAX_ENTRIES:
                self._data.popitem(last=False)
        return value

    def get(self, key: Hashable) -> Any:
        """The value stored under ``key`` (``put``) if younger than ``MAX_AGE_SECONDS``."""
        with self._lock:
            hit = self._data.get(key)
            if hit is None or monotonic() - hit[0] >= MAX_AGE_SECONDS:
                return None
            self._data.move_to_end(key)
            return hit[1]

    def put(self, key: Hashable, value: Any, built: float | None = None) -> None:
        with self._lock:
            self._data[key] = (monotonic() if built is None else built, value)
            self._data.move_to_end(key)
            while len(self._data) > _MAX_ENTRIES:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


answers = _Answers()


def live_answer(key: Hashable, build: Callable[[], Any], kind: str = "live") -> Any:
    """``build()``'s value for ``key`` (scope, audience, what), shared while the state
    version of ``kind`` and the second are the same. ``build`` must return a value its
    callers only read (DRF only reads the data it renders)."""
    state = state_key(kind)
    if state is None:
        return build()
    return answers.get_or_build((kind, state, int(time.time()), key), build)


def state_answer(key: Hashable, build: Callable[[], tuple[Any, datetime | None]], kind: str) -> Any:
    """The value of ``build()`` (which returns it with the moment it would change by the clock
    alone, or None) for ``key``, shared while the state version of ``kind`` is the same and
    that moment has not come. For answers that do not depend on the clock, or only at known
    moments (a site's pending directives; its policy, whose effective time may be ahead),
    where ``live_answer``'s once-a-second rebuild would be wasted work."""
    state = state_key(kind)
    if state is None:
        return build()[0]
    full = (kind, state, "until", key)
    hit: tuple[Any, datetime | None] | None = answers.get(full)
    if hit is not None and (hit[1] is None or timezone.now() < hit[1]):
        return hit[0]
    built = build()
    answers.put(full, built)
    return built[0]


def registry_answer(request: Any, key: Hashable, build: Callable[[], Any]) -> Any:
    """``build()``'s response data for a directory read (hospitals and units), shared while
    the registry's state version is the same. What ``build`` adds to the request's audit event
    (object ids, hospitals, row count) is kept with the answer and added again on every hit,
    so each request's audit event is the same as without the cache."""
    django_request = getattr(request, "_request", request)
    real = getattr(django_request, "audit_context", None)

    def capture() -> tuple[Any, dict[str, Any]]:
        from governance.audit import AuditContext

        scratch = AuditContext()
        django_request.audit_context = scratch
        try:
            data = build()
        finally:
            if real is not None:
                django_request.audit_context = real
            else:
                del django_request.audit_context
        return data, dict(scratch)

    state = state_key("registry")
    if state is None:
        data, audit = capture()
    else:
        data, audit = answers.get_or_build(("registry", state, key), capture)
    if real is not None:
        real.update(audit)
    return data
