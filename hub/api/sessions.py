"""Django's database sessions, read with one plain statement, and memoised per process.

The same table, rows, expiry and signing as ``django.contrib.sessions.backends.db`` (writes
are Django's own). The read on every request — ``load()`` — skips building an ORM query,
and its row is memoised in each web process under the ``sessions`` state version
(``governance.versions``): every save or delete of a session row through Django — a login,
a logout, ``cycle_key``, ``clearsessions``, the admin — bumps it when made and again when
its transaction commits (``hub/api/state_signals.py``), so deleting a session signs its
holder out on the very next request, in every process. What is memoised is the row as
stored (its signed text and expiry): the signature is checked and the data decoded for
every request, and a session past its expiry is never served. Without Redis nothing is
memoised (every request reads the row, as before); a row deleted by hand in SQL, which no
signal sees, is served at most ``governance.versions.MAX_AGE_SECONDS`` longer.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.db import connections, router
from django.utils import timezone

from governance import versions


def _stamp() -> Hashable | None:
    version = versions.state_version("sessions")
    if version is None:
        return None
    return version, versions.state_token()


# session key -> (session_data, expire_date) as stored; None (no such row) is not memoised.
_rows = versions.VersionedMemo(stamp=_stamp)


class _Missing(Exception):
    """No live row: nothing to memoise."""


class SessionStore(DBStore):
    def _row(self) -> tuple[str, datetime]:
        model = self.model
        sql = (
            f"SELECT session_data, expire_date FROM {model._meta.db_table}"  # noqa: S608  # nosec B608
            " WHERE session_key = %s AND expire_date > %s"
        )
        with connections[router.db_for_read(model)].cursor() as cursor:
            cursor.execute(sql, [self.session_key, timezone.now()])
            row = cursor.fetchone()
        if row is None:
            raise _Missing
        return str(row[0]), row[1]

    def load(self) -> dict[str, Any]:
        key = self.session_key
        try:
            if key is None:
                raise _Missing
            data, expires = _rows.get_or_compute(("session", key), self._row)
            if expires <= timezone.now():
                raise _Missing
        except _Missing:
            self._session_key = None
            return {}
        decoded: dict[str, Any] = self.decode(data)
        return decoded
