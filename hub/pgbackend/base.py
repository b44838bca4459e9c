"""Django's PostgreSQL backend, with a cheaper connection health check, and times read by
psycopg's compiled parser (``tzloader``).

With ``CONN_HEALTH_CHECKS`` (on: it is what notices a restarted PostgreSQL), Django checks a
reused connection at its first use in every request with ``SELECT 1``: one more round trip
and statement per request, for an answer that is almost always "fine". Here the check first
asks the kernel, without waiting, whether anything arrived on the connection's socket while
it sat idle between requests. Nothing can arrive unasked on an idle connection except what
ends it — a server shutting down or a terminated backend sends its FATAL error and closes —
or, rarely, a notice or a changed server parameter. So an idle, quiet socket is usable
without a statement, and anything else gets Django's own ``SELECT 1`` check, as before.
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql import base

from hub.pgbackend.tzloader import fast_adapters


def socket_quiet(fileno: int) -> bool:
    """Nothing to read on the socket right now (checked without waiting)."""
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        if params.get("context") is not None:
            # Times parsed by psycopg's compiled loader (``tzloader``).
            params["context"] = fast_adapters(params["context"], self.timezone)
        return params

    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or getattr(conn, "broken", False):
            return False
        try:
            idle = conn.info.transaction_status == conn.info.transaction_status.IDLE
            if idle and socket_quiet(conn.pgconn.socket):
                return True
        except (OSError, ValueError, AttributeError):
            pass  # no socket to look at: ask the server
        usable: bool = super().is_usable()
        return usable
