"""``/metrics`` on the web port, for deployments that cannot scrape the metrics port.

Off unless ``METRICS_ENABLED``; with ``METRICS_TOKEN`` (or ``METRICS_TOKEN_FILE``) set, only a
request with ``Authorization: Bearer <token>`` gets the figures. The Helm chart does not use
it: the web launcher serves the same registry on ``METRICS_PORT``, a port the ingress never
routes and the NetworkPolicy opens to Prometheus alone (hub/observability/launcher.py).
Not an audited user action: it exposes counters, no hub data (GOVERNANCE_AUDIT_EXEMPT_PATHS).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.observability.exposition import exposition_registry


def _authorised(request: HttpRequest) -> bool:
    token = getattr(settings, "METRICS_TOKEN", None)
    if not token:
        return True
    scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        supplied.strip().encode(), str(token).encode()
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not getattr(settings, "METRICS_ENABLED", False):
        raise Http404
    if not _authorised(request):
        response = HttpResponse("bearer token required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(exposition_registry()), content_type=CONTENT_TYPE_LATEST)
