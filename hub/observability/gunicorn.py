"""Gunicorn configuration hooks for metrics: ``gunicorn --config python:hub.observability.gunicorn``
(the chart's default ``web.gunicorn.config``).

Gunicorn forks its workers, so each worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR``
and the master, which handles no requests, serves the merged registry on ``METRICS_PORT``.
A separate port rather than ``/metrics`` on 8000: the ingress never routes it, Django's
HTTPS redirect and host checks do not apply to Prometheus, and a worker busy with slow
requests does not make the scrape time out. With ``LOG_FORMAT=json`` gunicorn's own error
and access logs are JSON lines too.
"""

from __future__ import annotations

import logging
from typing import Any

from deid.logformat import PLAIN_FORMAT, log_format
from hub.observability.exposition import (
    clear_multiprocess_dir,
    metrics_port,
    multiprocess_dir,
    serve_metrics,
)

log = logging.getLogger("hub.observability.gunicorn")

# Gunicorn's default access line, plus the request id the middleware returned, so an access
# line and the application's lines of one request are found together.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" request_id=%({x-request-id}o)s'
)

logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": PLAIN_FORMAT},
        "json": {"()": "deid.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": log_format(),
            "stream": "ext://sys.stderr",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": log_format(),
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def on_starting(server: Any) -> None:
    """In the master, before any worker exists: forget the previous run's samples."""
    clear_multiprocess_dir()


def when_ready(server: Any) -> None:
    """In the master, once it listens: serve the workers' merged metrics."""
    port = metrics_port()
    if port is None:
        return
    if multiprocess_dir() is None:
        # The master handles no request: without the shared directory it would serve
        # nothing of the workers'. Say so rather than serve an empty page.
        log.warning("METRICS_PORT without PROMETHEUS_MULTIPROC_DIR: web metrics not served")
        return
    serve_metrics(port)
    log.info("metrics on port %d", port)


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended: its live gauges stop counting (counters and histograms stay summed)."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
