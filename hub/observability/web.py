"""Request count and latency by view name and status, and the request id, for every request.

The first middleware, so it times the whole stack (redirects and refusals included) and every
log line of the request carries its id. Labels are bounded: the URL pattern's name, never the
path (a 404 is ``unresolved``), and the standard methods.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Gauge, Histogram

from deid.logformat import log_context
from governance.audit import REQUEST_ID_HEADER, request_id

HTTP_REQUESTS = Counter(
    "hub_http_requests",
    "HTTP requests served, by URL name, method and status code",
    ["view", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "hub_http_request_duration_seconds",
    "Time from the request entering the first middleware to its response leaving it",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


@functools.cache
def web_processes() -> Gauge:
    """One per process serving requests; "livesum": a dead worker's share is dropped from the
    sum (the web launcher marks it dead), so it reads as the workers alive right now. Made on
    first use, not at import: a gauge without labels writes its multiprocess file when it is
    made, and ``manage.py`` commands that import this module serve no request."""
    return Gauge(
        "hub_web_processes",
        "Processes serving web requests (each web worker counts 1 while it lives)",
        multiprocess_mode="livesum",
    )


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def view_label(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unresolved"
    return match.view_name or "unnamed"


class RequestObservabilityMiddleware:
    """Times and counts each request, binds its id to the log context and returns it as
    ``X-Request-ID`` (the id comes from governance.audit.request_id, so the audit event of
    the same request carries the same id)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Django builds the middleware once per process, when the WSGI handler loads.
        web_processes().set(1)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        rid = request_id(request)
        with log_context(request_id=rid):
            response = self.get_response(request)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in _METHODS else "other"
        view = view_label(request)
        HTTP_REQUESTS.labels(view, method, str(response.status_code)).inc()
        HTTP_LATENCY.labels(view, method).observe(elapsed)
        response[REQUEST_ID_HEADER] = rid
        return response
