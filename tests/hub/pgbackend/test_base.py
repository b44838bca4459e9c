"""The per-request health check: no statement for a quiet idle connection, Django's
``SELECT 1`` otherwise, and a connection the server ended is found unusable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from hub.pgbackend.base import DatabaseWrapper

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def own() -> Iterator[Any]:
    """A connection of its own (outside the test's transaction), closed afterwards."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def test_the_hub_uses_its_backend(own: Any) -> None:
    assert isinstance(own, DatabaseWrapper)
    assert own.vendor == "postgresql"


def test_a_quiet_idle_connection_is_usable_without_a_statement(own: Any) -> None:
    sent: list[str] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append(sql)
        return execute(sql, params, many, context)

    calls: list[str] = []
    real = own.connection.execute

    def raw(query: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(query))
        return real(query, *args, **kwargs)

    own.connection.execute = raw
    with own.execute_wrapper(spy):
        assert own.is_usable()
    assert sent == []
    assert calls == []


def test_a_connection_the_server_ended_is_not_usable(own: Any) -> None:
    with own.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    killer = connections.create_connection("default")
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        killer.close()
    deadline = time.monotonic() + 5
    while own.is_usable() and time.monotonic() < deadline:  # the FATAL message is on its way
        time.sleep(0.05)
    assert not own.is_usable()
