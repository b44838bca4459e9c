"""What the last committed evaluation of a region stored, kept in this worker process so the
next minute can diff against it instead of reading it back.

A national region's evaluation stores thousands of rows whose values are mostly the same
next minute (every hospital's status, a saturated region's renewed advice, tens of
thousands of still-true alerts). Reading them back each minute (JSON decoded, times
converted) cost more than deciding. What is kept:

- ``statuses``: each hospital's status row (``services._STATUS_FIELDS``) by hospital id,
  a mirror of the region's ``HospitalStatus`` rows (only the evaluation writes them);
- ``advice``: per pending recommendation id, its signature, its words and the key of the
  inputs they were made from (``Recommendation.inputs_key``; only the evaluation writes
  those; decisions change a row's *state*, which is read every minute), with the diversion
  configuration the keys hold for (``diversion``);
- ``alert_words``: per live alert id, its title, message and figures as written, or for a
  grouped alert (threshold, forecast) its members, figure: severity (acknowledgement
  changes an alert's state and history, read when needed, never its words or figures).

**Valid only for the transaction that wrote it.** The kept copy is stamped with the
``xmin`` of the region's ``RegionState`` row (the id of the transaction that last wrote
it: every evaluation does, under the row lock) and the evaluation time. The next
evaluation locks that row and uses the copy only if both still match: if another worker
evaluated the region in between, or the rows were cleared, or the writing transaction
rolled back (the copy is only kept ``on_commit``), it reads the rows as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from hub.coordination import models as m


@dataclass(slots=True)
class Kept:
    stamp: tuple[str, datetime | None]
    statuses: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    advice: dict[int, tuple[tuple[Any, ...], tuple[Any, ...], Any]] = field(default_factory=dict)
    diversion: Any = None  # the DiversionConfig the advice's input keys were made under
    alert_words: dict[int, tuple[Any, ...]] = field(default_factory=dict)


_KEPT: dict[tuple[str, int], Kept] = {}


def _key(region_id: int) -> tuple[str, int]:
    return (str(connection.settings_dict.get("NAME")), region_id)


def stamp(region_id: int) -> tuple[str, datetime | None]:
    """(xmin, evaluated_at) of the region's state row, as it is now in this transaction."""
    table = m.RegionState._meta.db_table
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT xmin::text, evaluated_at FROM {qn(table)} WHERE region_id = %s",  # noqa: S608  # nosec B608
            [region_id],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row is not None else ("", None)


def take(region_id: int, current: tuple[str, datetime | None]) -> Kept | None:
    """The kept copy of the region's stored rows if it is still what the database holds
    (``current``: the state row's stamp, read under its lock); else None. Taken out: a
    failed evaluation leaves nothing behind."""
    kept = _KEPT.pop(_key(region_id), None)
    if kept is None or kept.stamp != current or current[1] is None:
        return None
    return kept


def keep_on_commit(region_id: int, kept: Kept) -> None:
    """Keep ``kept`` (stamped with this transaction's write of the state row) once the
    transaction commits."""
    key = _key(region_id)
    transaction.on_commit(lambda: _KEPT.__setitem__(key, kept))


def forget() -> None:
    """Drop every kept copy (tests)."""
    _KEPT.clear()
