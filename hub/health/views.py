"""/healthz answers while the process can serve; /readyz only when its dependencies answer."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from hub.health.checks import run_checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    down = [r.name for r in results if not r.ok]
    body = {
        "status": "ready" if not down else "unavailable",
        "down": down,
        "checks": {r.name: {"ok": r.ok, "detail": r.detail} for r in results},
    }
    return JsonResponse(body, status=200 if not down else 503)
