"""Keep-alive connections closed after a number of requests, so the workers share the load.

granian's workers each accept connections from the one listening socket, and a connection
stays with the worker that accepted it for as long as the client keeps it open. Clients that
pool connections reuse the most recently used one first (Go's ``http.Transport``, which the
load generator is; nginx's upstream keep-alive cache, which an ingress is): at a few hundred
requests a second most of the traffic rides two or three connections, and those can belong to
one or two of the four workers while the others idle. A worker runs its requests one at a
time, so its queue grows while the machine has CPU to spare (docs/hub.md, "API load",
2026-11-25 morning).

So each worker answers every ``every``-th request with ``Connection: close``, much as nginx's
``keepalive_requests`` closes a connection after that many requests: the client opens a new
connection, which whichever worker accepts first takes (all four wait on the same socket). hyper,
under granian, closes the connection after that response (a header the WSGI app itself may
not set, PEP 3333, but this wrapper belongs to the server: it runs only under
``python -m hub.serve``). The count is the worker's, not the connection's: granian does not
tell the app which connection a request came on.

Off unless ``--keepalive-requests`` / ``WEB_KEEPALIVE_REQUESTS`` is set: with the load spread
the web's CPU a request was 6-20 % higher (docs/deploy.md, "The web server").
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from hub.serve.access import StartResponse, WSGIApp

_CLOSE = ("Connection", "close")


def with_connection_recycling(app: WSGIApp, every: int) -> WSGIApp:
    """``app``, adding ``Connection: close`` to every ``every``-th HTTP/1 response of this
    worker."""
    if every < 1:
        raise ValueError("every must be at least 1")
    counter = itertools.count(1)  # next() is atomic under the GIL

    def recycling(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # HTTP/2 has no such header (hyper would drop it) and multiplexes its streams anyway.
        if not environ.get("SERVER_PROTOCOL", "").startswith("HTTP/1.") or next(counter) % every:
            return app(environ, start_response)

        def closing_start_response(status: str, headers: list[tuple[str, str]], *exc: Any):
            kept = [(name, value) for name, value in headers if name.lower() != "connection"]
            return start_response(status, [*kept, _CLOSE], *exc)

        return app(environ, closing_start_response)

    return recycling
