"""When the database cannot answer a request: a 503 with a message and ``Retry-After``.

A statement cancelled by the statement timeout (hub/pgbackend/timeouts.py) or by an operator,
a lock wait that gave up, a server that is restarting, full or refusing connections: none is
the client's fault or a bug, and the client can try again. Django raises each as its
``OperationalError`` (or ``InterfaceError`` for a connection already gone), with psycopg's
error as the cause. DRF views answer through ``hub.api.exceptions``; every other view (the
ops-center pages, the admin) through ``DatabaseUnavailableMiddleware``. Anything else stays
what it is: a bug is still a 500 and still reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from psycopg import errors

logger = logging.getLogger("hub.database")

RETRY_AFTER_SECONDS = 5
TIMED_OUT = "The database did not answer in time; try again shortly."
UNAVAILABLE = "The database is unavailable; try again shortly."


def unavailable_message(exc: BaseException) -> str | None:
    """What to tell the client when ``exc`` means the database could not answer; None when
    it means something else."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    cause = exc.__cause__
    if isinstance(cause, errors.QueryCanceled | errors.LockNotAvailable):
        return TIMED_OUT
    return UNAVAILABLE


def log_unavailable(request: HttpRequest, exc: BaseException) -> None:
    logger.warning(
        "database could not answer %s %s: %s",
        request.method,
        request.path,
        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
    )


class DatabaseUnavailableMiddleware:
    """Last in ``MIDDLEWARE``, so that its ``process_exception`` sees a view's exception
    first and the audit event records the 503 it answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        message = unavailable_message(exc)
        if message is None:
            return None
        log_unavailable(request, exc)
        response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
