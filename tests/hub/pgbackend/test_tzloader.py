"""Times read through the compiled parser give exactly what Django's own loader gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader  # type: ignore[import-untyped]
from psycopg import DataError

from hub.pgbackend.tzloader import TIMESTAMPTZ_OID, FastTzLoader

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TEXTS = [
    b"2026-11-24 14:39:14.965973+00",
    b"2026-11-24 14:39:14+00",
    b"2026-03-29 01:30:00.000001+02",
    b"1999-12-31 23:59:59.999999-09:30",
    b"0001-01-01 00:00:00+00",
    b"2026-11-24 14:39:14.5+05:45",
]


def _django_loader(tz: timezone | None) -> BaseTzLoader:
    class Loader(BaseTzLoader):
        timezone = tz

    connection.ensure_connection()
    return Loader(TIMESTAMPTZ_OID, connection.connection)


def _fast_loader(tz: timezone | None) -> FastTzLoader:
    class Loader(FastTzLoader):
        timezone = tz

    connection.ensure_connection()
    return Loader(TIMESTAMPTZ_OID, connection.connection)


def test_the_connection_reads_times_with_the_fast_loader() -> None:
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, 0)
    assert issubclass(loader, FastTzLoader)
    # Django compares this with its own time zone before every cursor, and registers its
    # slow loader again (copying the adapters) where they differ.
    assert loader.timezone == connection.timezone
    with connection.cursor() as cursor:
        cursor.execute("SELECT '2026-03-29 01:30:00.25+02'::timestamptz")
        assert cursor.fetchone()[0] == datetime(2026, 3, 28, 23, 30, 0, 250000, tzinfo=UTC)


@pytest.mark.parametrize("tz", [UTC, timezone(timedelta(hours=-5)), None])
def test_the_same_times_as_django_s_loader(tz: timezone | None) -> None:
    django_loader, fast = _django_loader(tz), _fast_loader(tz)
    for text in TEXTS:
        got = fast.load(text)
        assert got == django_loader.load(text)
        assert got.tzinfo is tz


def test_the_same_times_in_another_session_time_zone() -> None:
    """Django sets the session's time zone to its own; if another was in force, both loaders
    would still give the same answer (the parsed time moved to the session's zone, then
    labelled with Django's)."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'America/St_Johns'")
        try:
            django_loader, fast = _django_loader(UTC), _fast_loader(UTC)
            for text in TEXTS:
                assert fast.load(text) == django_loader.load(text)
            # Django's cursors read with the fast loader too.
            loader = cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, 0)
            assert issubclass(loader, FastTzLoader)
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")


def test_a_time_python_cannot_hold_is_refused_by_both() -> None:
    for loader in (_django_loader(UTC), _fast_loader(UTC)):
        with pytest.raises(DataError):
            loader.load(b"infinity")
