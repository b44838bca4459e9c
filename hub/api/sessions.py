"""Django's database sessions, read with one plain statement instead of the ORM.

The same table, rows, expiry and signing as ``django.contrib.sessions.backends.db`` (writes
are Django's own): deleting a session row signs its holder out on the very next request, as
before. Only the read on every request — ``load()`` — skips building an ORM query, which
cost about as much CPU as the rest of a cached live answer.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.db import connections, router
from django.utils import timezone


class SessionStore(DBStore):
    def load(self) -> dict[str, Any]:
        model = self.model
        table = model._meta.db_table
        with connections[router.db_for_read(model)].cursor() as cursor:
            cursor.execute(
                f"SELECT session_data FROM {table} WHERE session_key = %s AND expire_date > %s",  # noqa: S608  # nosec B608
                [self.session_key, timezone.now()],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return {}
        data: dict[str, Any] = self.decode(row[0])
        return data
