"""Surge checklists stored once each, content-addressed.

A region's first evaluation records a level change per hospital, each carrying the checklist
of its new level; there are only a few distinct lists (one per level and region settings).
Each is stored once in ``SurgeChecklist`` under the SHA-256 of its canonical JSON (UTF-8,
no whitespace, as ``orjson`` writes a list of strings) and the changes point at it: the row
is immutable, so editing the region's configured checklist later makes a new row and leaves
the history exact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import orjson
from django.db import connection

from hub.coordination import models as m

# canonical JSON → digest, for this worker process (a few entries: the lists are few).
_DIGESTS: dict[tuple[str, ...], str] = {}


def digest(items: Sequence[str]) -> str:
    """The SHA-256 (hex) of the checklist's canonical JSON."""
    key = tuple(items)
    found = _DIGESTS.get(key)
    if found is None:
        found = hashlib.sha256(orjson.dumps(list(key))).hexdigest()
        _DIGESTS[key] = found
    return found


def checklists_store(lists: Iterable[Sequence[str]]) -> dict[tuple[str, ...], str]:
    """Store each distinct list once (kept if already there: same digest, same content) and
    return its digest by content (one statement)."""
    distinct = {tuple(items): digest(items) for items in lists}
    if distinct:
        table = connection.ops.quote_name(m.SurgeChecklist._meta.db_table)
        rows = [(d, orjson.dumps(list(items)).decode()) for items, d in distinct.items()]
        values = ", ".join(["(%s, %s::jsonb)"] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (digest, items) VALUES {values} "  # noqa: S608  # nosec B608
                "ON CONFLICT (digest) DO NOTHING",
                [v for row in rows for v in row],
            )
    return distinct
