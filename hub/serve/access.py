"""The access line of each request, with the request id the hub returned.

granian's own access log (``log_access_format``) can name request headers only
(``%(header{x-request-id})s``), never response headers: an id the hub made for a request that
came without one would be missing. So the launcher wraps the WSGI app and writes the line
itself, after the app returned its response (the time is the app's, without sending the body):

    "GET /api/v1/live/ HTTP/1.1" 200 4.21ms request_id=019ab4…

on the ``hub.access`` logger, with ``request_id`` as a field of its own in JSON lines.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("hub.access")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_REQUEST_ID = "x-request-id"
# WSGI's PATH_INFO is percent-decoded: a "%0A" in a request would start a forged log line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _escaped(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def access_line(environ: dict[str, Any], status: str, elapsed: float, request_id: str) -> str:
    target = environ.get("PATH_INFO", "")
    if environ.get("QUERY_STRING"):
        target = f"{target}?{environ['QUERY_STRING']}"
    target = _escaped(target)
    return (
        f'"{environ.get("REQUEST_METHOD", "-")} {target} {environ.get("SERVER_PROTOCOL", "-")}" '
        f"{status.split(' ', 1)[0]} {elapsed * 1000:.2f}ms request_id={request_id or '-'}"
    )


def with_access_log(app: WSGIApp) -> WSGIApp:
    """``app``, writing one INFO line per request on ``hub.access`` (and ERROR lines are the
    app's own: an exception still propagates to granian, which answers 500)."""

    def logged(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: dict[str, str] = {}

        def recording_start_response(status: str, headers: list[tuple[str, str]], *exc: Any):
            seen["status"] = status
            for name, value in headers:
                if name.lower() == _REQUEST_ID:
                    seen["request_id"] = value
            return start_response(status, headers, *exc)

        result = app(environ, recording_start_response)
        rid = seen.get("request_id", "")
        log.info(
            access_line(environ, seen.get("status", "-"), time.perf_counter() - started, rid),
            extra={"request_id": rid} if rid else None,
        )
        return result

    return logged
