"""Which registry to expose, and serving it on a port of its own.

The web launcher's granian workers and Celery's prefork pool run several processes; each
writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` and the exposition merges them
(prometheus_client's multiprocess mode). The variable must be set before ``prometheus_client``
is first imported, which the chart does in the container's environment. Without it
(runserver, tests) the process's own default registry is exposed.
"""

from __future__ import annotations

import os
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    return Path(value) if value else None


def exposition_registry() -> CollectorRegistry:
    """The merged registry of every process in multiprocess mode, else this process's own."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def clear_multiprocess_dir() -> None:
    """Remove the previous run's sample files. A container restart keeps its ``emptyDir``,
    and stale files would add a dead process's counters to the new ones forever."""
    directory = multiprocess_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def metrics_port() -> int | None:
    """``METRICS_PORT`` when set to a port number, else None (no metrics endpoint)."""
    value = os.environ.get("METRICS_PORT", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def serve_metrics(port: int, registry: CollectorRegistry | None = None) -> WSGIServer:
    """Serve ``registry`` (default: :func:`exposition_registry`) at ``/metrics`` on ``port``,
    in a daemon thread; the server is returned. Every interface: Prometheus scrapes the pod's
    address, and the chart's NetworkPolicy admits only Prometheus to this port."""
    host = os.environ.get("METRICS_HOST", "0.0.0.0")  # noqa: S104  # nosec B104
    server, _ = start_http_server(port, addr=host, registry=registry or exposition_registry())
    return server
