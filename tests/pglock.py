"""A table locked from another connection, and a short statement timeout on this one: what
a request meets behind a migration or a maintenance job, in a test's time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


def conninfo() -> str:
    """The test database, as this process's connection reaches it."""
    db = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=str(db["PORT"]) if db["PORT"] else None,
    )


@contextmanager
def table_locked(table: str, mode: str = "ACCESS EXCLUSIVE") -> Iterator[None]:
    """``LOCK TABLE`` in a transaction of a second connection, until the block ends. Only
    committed tables can be locked from there: use with ``django_db(transaction=True)``."""
    with psycopg.connect(conninfo()) as other:
        other.execute(f"LOCK TABLE {table} IN {mode} MODE")
        try:
            yield
        finally:
            other.rollback()


@contextmanager
def statement_timeout(milliseconds: int) -> Iterator[None]:
    """This connection's statements cancelled after ``milliseconds``, as
    ``DATABASE_STATEMENT_TIMEOUT`` sets it at connection, until the block ends."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {int(milliseconds)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
