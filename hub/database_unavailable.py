"""When the database cannot answer a request for now: a 503 with a message and
``Retry-After``.

A statement cancelled by the statement timeout (hub/pgbackend/timeouts.py), a lock wait that
gave up, a server restarting or refusing connections, a lost connection, a serialisation
conflict or a deadlock (``governance.transient`` decides, by SQLSTATE): none is the client's
fault or a bug, and the client can try again. Any other database error stays a 500,
reported with its traceback. DRF views answer through ``hub.api.exceptions``; every other
view (the ops-center pages, the admin) through ``DatabaseUnavailableMiddleware``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from governance.transient import unavailable_message, unavailable_response, without_sqlstate

logger = logging.getLogger("hub.database")


def log_unavailable(request: HttpRequest, exc: BaseException) -> None:
    """One line for a timeout or a conflict; a connection that could not be made (a server
    down, or a wrong password: psycopg says which only in its message) with its traceback
    at ERROR, so that a misconfiguration is not mistaken for an outage."""
    if without_sqlstate(exc):
        logger.error(
            "database could not be reached for %s %s", request.method, request.path, exc_info=exc
        )
        return
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
        return unavailable_response(message)
