"""Live-state answers shared between requests: built once per state of the data and second.

The live board is polled by every operations screen; rebuilding it for each poll (six
queries and a few hundred objects for a small region) cost most of the API's CPU. An answer
is kept in this process under:

* the **state fingerprint** of every table the answer reads — unit states, feed states,
  directives, hospitals, units, regions (the sum of the row versions, ``xmin``, and the row
  count: any committed insert, update or delete changes it) and the site agents' key names.
  One small query per request reads it, so an answer is never older than the last committed
  ingest batch, directive or registry change, whichever path wrote it (Kafka consumer,
  HTTPS fallback, admin);
* the **second** it was built in: ages (``age_seconds``) and staleness are computed when the
  answer is built, so they are at most one second behind the moment it is served (the
  region's ``generated_at`` says when; a directive that expires, or a unit that turns
  stale with time alone, shows within that second);
* the caller's **scope** (``governance.access.scope_for``) and the audience, so one role's
  answer is never served to another; the governed checks run before, for every request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import cache
from typing import Any

from django.db import connection

_MAX_ENTRIES = 512


def _versions(table: str) -> str:
    # xmin: the writing transaction; cmin: the statement within it (two updates of a row in
    # one transaction differ by it); count: deletes.
    sums = "coalesce(sum(xmin::text::bigint), 0) || '.' || coalesce(sum(cmin::text::bigint), 0)"
    return f"(SELECT {sums} || '.' || count(*) FROM {table})"  # noqa: S608  # nosec B608 - a model table


@cache
def _fingerprint_sql(kind: str) -> str:
    from governance.models import SharingPolicy
    from hub.census.models import FeedState, UnitState
    from hub.registry.models import Directive, Hospital, Region, SiteAgent, Unit

    tables: dict[str, tuple[Any, ...]] = {
        "registry": (Hospital, Unit, Region),
        "live": (UnitState, FeedState, Directive, Hospital, Unit, Region),
        "directives": (Directive, Hospital),
        "policy": (SharingPolicy,),
    }
    parts = [_versions(m._meta.db_table) for m in tables[kind]]
    if kind == "live":
        # Heartbeats rewrite agent rows many times a second; only the key names matter here.
        agents = SiteAgent._meta.db_table
        names = "md5(string_agg(key_id || '|' || name, ',' ORDER BY key_id, name))"
        parts.append(f"(SELECT coalesce({names}, '') FROM {agents} WHERE key_id <> '')")  # noqa: S608  # nosec B608
    return "SELECT " + " || ':' || ".join(parts)


def state_fingerprint(kind: str = "live") -> str:
    """Changes with every committed change of what a live answer (``live``), the hospital
    directory (``registry``: hospitals, units, regions), a site's pending directives
    (``directives``) or its sharing policy (``policy``) shows."""
    with connection.cursor() as cursor:
        cursor.execute(_fingerprint_sql(kind))
        row = cursor.fetchone()
    return str(row[0])


class _Answers:
    def __init__(self) -> None:
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = build()
        with self._lock:
            self._data[key] = value
            while len(self._data) > _MAX_ENTRIES:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


answers = _Answers()


def live_answer(key: Hashable, build: Callable[[], Any], kind: str = "live") -> Any:
    """``build()``'s value for ``key`` (scope, audience, what), shared while the state
    fingerprint of ``kind`` and the second are the same. ``build`` must return a value its
    callers only read (DRF only reads the data it renders)."""
    full_key = (kind, state_fingerprint(kind), int(time.time()), key)
    return answers.get_or_build(full_key, build)


def registry_answer(request: Any, key: Hashable, build: Callable[[], Any]) -> Any:
    """``build()``'s response data for a directory read (hospitals and units), shared while
    the registry's fingerprint is the same. What ``build`` adds to the request's audit event
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

    data, audit = answers.get_or_build(("registry", state_fingerprint("registry"), key), capture)
    if real is not None:
        real.update(audit)
    return data
