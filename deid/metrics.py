"""Optional Prometheus endpoint of the worker's counters (`--metrics-port`)."""

from __future__ import annotations

from typing import Any


class PrometheusMetrics:
    def __init__(self, site_code: str, port: int, host: str = "127.0.0.1") -> None:
        from prometheus_client import CollectorRegistry, Gauge, start_http_server

        self.registry = CollectorRegistry()
        self._gauge = Gauge(
            "deid_worker_records",
            "DE-ID worker counters since start (processed, released, suppressed, held, "
            "dead_lettered, erased, envelopes, windows, aborted_transactions) and current lag",
            ["site", "counter"],
            registry=self.registry,
        )
        self.site = site_code
        start_http_server(port, addr=host, registry=self.registry)

    def update(self, counters: Any) -> None:
        for name, value in counters.as_dict().items():
            self._gauge.labels(self.site, name).set(value)
