"""Request metrics, the request id and the /metrics view of the hub web."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from prometheus_client import REGISTRY

from hub.observability.web import RequestObservabilityMiddleware


def _requests(view: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "hub_http_requests_total", {"view": view, "method": "GET", "status": status}
    )
    return value or 0.0


def test_a_request_is_counted_by_view_name_and_status_and_timed(client: Client) -> None:
    before = _requests("healthz", "200")
    timed_before = REGISTRY.get_sample_value(
        "hub_http_request_duration_seconds_count", {"view": "healthz", "method": "GET"}
    )
    assert client.get("/healthz").status_code == 200
    assert _requests("healthz", "200") == before + 1
    timed_after = REGISTRY.get_sample_value(
        "hub_http_request_duration_seconds_count", {"view": "healthz", "method": "GET"}
    )
    assert timed_after == (timed_before or 0) + 1


def test_the_request_id_from_the_proxy_is_returned(client: Client) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "edge-7f3a9c"})
    assert response["X-Request-ID"] == "edge-7f3a9c"


def test_a_request_without_an_id_gets_a_new_one(client: Client) -> None:
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32
    assert first != second


def test_log_lines_written_during_the_request_carry_its_id() -> None:
    from deid.logformat import current_context

    seen: list[dict[str, str]] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(current_context())
        logging.getLogger("hub.test").info("inside the view")
        return HttpResponse("ok")

    middleware = RequestObservabilityMiddleware(view)
    request = RequestFactory().get("/anything", headers={"X-Request-ID": "req-1234567890"})
    response = middleware(request)
    assert seen == [{"request_id": "req-1234567890"}]
    assert response["X-Request-ID"] == "req-1234567890"
    # The id is bound for the request only.
    assert current_context() == {}


def test_an_unresolved_path_is_one_label_not_one_per_path() -> None:
    def not_found(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=404)

    before = _requests("unresolved", "404")
    middleware = RequestObservabilityMiddleware(not_found)
    for path in ("/nope-1", "/nope-2", "/nope-3"):
        middleware(RequestFactory().get(path))
    assert _requests("unresolved", "404") == before + 3


def test_metrics_view_is_off_unless_enabled(client: Client, settings: Any) -> None:
    settings.METRICS_ENABLED = False
    assert client.get("/metrics").status_code == 404


def test_metrics_view_serves_the_registry_when_enabled(client: Client, settings: Any) -> None:
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = None
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b'hub_http_requests_total{method="GET",status="200",view="healthz"}' in (
        response.content
    )


def test_metrics_view_wants_the_bearer_token_when_one_is_set(client: Client, settings: Any) -> None:
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = "scrape-token-for-tests"
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-for-tests"})
    assert right.status_code == 200
    assert b"hub_http_requests_total" in right.content


def test_metrics_is_not_an_audited_user_action(settings: Any) -> None:
    assert "/metrics" in settings.GOVERNANCE_AUDIT_EXEMPT_PATHS
    assert "metrics" in settings.GOVERNANCE_UNGOVERNED_URLS


def test_the_process_serving_requests_counts_itself_once(client: Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz").status_code == 200
    # set(1), not inc(): a worker is one process however often its middleware is built.
    assert REGISTRY.get_sample_value("hub_web_processes") == 1.0
