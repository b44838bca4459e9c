"""Which database errors mean "try again": the server could not answer for now.

A statement cancelled by the statement timeout or by an operator, a lock wait that gave up,
a server that is restarting or refusing connections, a connection lost, a transaction that
lost a serialisation conflict or a deadlock. Django raises each as its ``OperationalError``
(or ``InterfaceError`` for a connection already gone), with psycopg's error as the cause;
which ones count is decided by the cause's SQLSTATE (``TRANSIENT``), since psycopg also
raises a wrong password, a statement too complex or a full disk as ``OperationalError``,
and those are not the client's to retry. Used by the audit middleware and by the hub's
answers (``hub.database_unavailable``).
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from psycopg import errors

RETRY_AFTER_SECONDS = 5
TIMED_OUT = "The database did not answer in time; try again shortly."
UNAVAILABLE = "The database is unavailable; try again shortly."
CONFLICTED = "The request met a conflicting change in the database; try again."

# SQLSTATE of the causes that mean "try again", by the message the client gets: class 08
# (connection exception) and 57P (the server shutting down, starting, or crashed), as
# their class or code; the rest by code.
TRANSIENT = {
    "08": UNAVAILABLE,
    "57P": UNAVAILABLE,
    "53300": UNAVAILABLE,  # too many connections
    "57014": TIMED_OUT,  # statement cancelled: the statement timeout, or an operator
    "55P03": TIMED_OUT,  # lock not available (lock_timeout, NOWAIT)
    "40001": CONFLICTED,  # serialisation failure
    "40P01": CONFLICTED,  # deadlock detected
}


# In those classes but not worth a retry: a protocol violation (a client bug), a dropped
# database.
NOT_TRANSIENT = frozenset({"08P01", "57P04"})


def unavailable_message(exc: BaseException) -> str | None:
    """What to tell the client when ``exc`` means the database could not answer for now;
    None when it means something else (a bug, a misconfiguration: a 500)."""
    if isinstance(exc, InterfaceError):
        # The connection is gone (Django's "connection already closed", psycopg's "the
        # connection is closed"); a closed cursor is a bug.
        return UNAVAILABLE if "connection" in str(exc) else None
    if not isinstance(exc, OperationalError):
        return None
    cause = exc.__cause__
    if not isinstance(cause, errors.Error):
        return None
    code = cause.sqlstate
    if code is None:
        # No SQLSTATE: no answer from a server at all. Connecting failed (the server down,
        # or refusing this client: a wrong password or pg_hba.conf, which psycopg reports
        # the same way; ``without_sqlstate`` tells the log) or the connection broke.
        return UNAVAILABLE if isinstance(cause, errors.OperationalError) else None
    if code in NOT_TRANSIENT:
        return None
    return TRANSIENT.get(code) or TRANSIENT.get(code[:3]) or TRANSIENT.get(code[:2])


def without_sqlstate(exc: BaseException) -> bool:
    """Whether a transient ``exc`` came with no SQLSTATE (a connection that could not be
    made or broke): possibly a misconfiguration, to be logged with its traceback."""
    cause = exc.__cause__
    return isinstance(cause, errors.Error) and cause.sqlstate is None


def unavailable_response(message: str) -> HttpResponse:
    """The plain-text 503 a page (or a read whose audit event cannot be written) answers."""
    response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
