"""Which database errors mean "try again": by the SQLSTATE of psycopg's error under
Django's."""

from __future__ import annotations

import psycopg
import pytest
from django.db import Error as DjangoError
from django.db import IntegrityError, InterfaceError, OperationalError
from psycopg import errors

from governance.transient import CONFLICTED, TIMED_OUT, UNAVAILABLE, unavailable_message


def _from(cause: Exception, wrapper: type[DjangoError] = OperationalError) -> DjangoError:
    """As Django raises it: its own class, psycopg's error as the cause."""
    try:
        raise wrapper(str(cause)) from cause
    except DjangoError as exc:
        return exc


def test_a_cancelled_statement_or_a_lock_wait_given_up_is_a_timeout() -> None:
    cancelled = errors.QueryCanceled("canceling statement due to statement timeout")
    assert unavailable_message(_from(cancelled)) == TIMED_OUT
    lock = errors.LockNotAvailable("could not obtain lock")
    assert unavailable_message(_from(lock)) == TIMED_OUT


def test_a_server_gone_or_refusing_is_unavailable() -> None:
    assert unavailable_message(_from(psycopg.OperationalError("connection refused"))) == (
        UNAVAILABLE
    )
    assert unavailable_message(_from(errors.AdminShutdown("terminating"))) == UNAVAILABLE
    closed = psycopg.InterfaceError("the connection is closed")
    assert unavailable_message(_from(closed, InterfaceError)) == UNAVAILABLE
    cursor = psycopg.InterfaceError("the cursor is closed")  # a bug, not an outage
    assert unavailable_message(_from(cursor, InterfaceError)) is None


def test_anything_else_keeps_its_own_answer() -> None:
    unique = errors.UniqueViolation("duplicate key")
    assert unavailable_message(_from(unique, IntegrityError)) is None
    assert unavailable_message(ValueError("a bug")) is None


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("08006", UNAVAILABLE),  # connection failure
        ("57P01", UNAVAILABLE),  # the server shutting down
        ("57P03", UNAVAILABLE),  # the server starting
        ("53300", UNAVAILABLE),  # too many connections
        ("57014", TIMED_OUT),
        ("55P03", TIMED_OUT),
        ("40001", CONFLICTED),
        ("40P01", CONFLICTED),
        # OperationalError in psycopg, but not for the client to retry: still 500s.
        ("28P01", None),  # wrong password
        ("54001", None),  # statement too complex
        ("53100", None),  # disk full
        ("55000", None),  # object not in prerequisite state
        ("08P01", None),  # protocol violation: a client bug
        ("57P04", None),  # the database dropped
    ],
)
def test_by_sqlstate(sqlstate: str, message: str | None) -> None:
    cause = errors.lookup(sqlstate)("from the server")
    assert isinstance(cause, psycopg.OperationalError)
    assert unavailable_message(_from(cause)) == message
