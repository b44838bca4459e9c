"""granian's multi-process server around hub.wsgi, with the launcher's metrics hooks.

granian (2.8.7) forks the workers from this process after its ``on_startup`` hooks and stops
them after SIGTERM or SIGINT: each worker stops accepting, finishes what it holds for up to
``workers_kill_timeout`` seconds, then is killed; ``on_shutdown`` hooks run after that and
``serve()`` returns. A worker that dies is replaced (``respawn_failed_workers``), unless the
same worker died again within 5.5 s of its last replacement: granian then stops the whole
server ("Worker crash loop detected", exit 1), and Kubernetes restarts the container.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from functools import partial
from typing import Any

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.mp import MPServer

from deid.logformat import PLAIN_FORMAT, log_format
from hub.observability.launcher import LauncherMetrics
from hub.pgbackend import timeouts
from hub.serve.access import WSGIApp, with_access_log
from hub.serve.keepalive import with_connection_recycling
from hub.serve.options import ServerOptions

log = logging.getLogger("hub.serve")

TARGET = "hub.wsgi:application"


def log_config() -> dict[str, Any]:
    """granian applies this in the launcher and again in each worker, before Django's
    LOGGING: granian's own lines go to the root logger, formatted as the hub's
    (``LOG_FORMAT``), and in a worker Django's LOGGING then replaces the root's handler
    with the same one."""
    return {
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
            }
        },
        "root": {"handlers": ["console"], "level": "INFO"},
        "loggers": {
            "_granian": {"handlers": [], "propagate": True},
            "granian.access": {"handlers": [], "propagate": True},
        },
    }


def load_application(*, access_log: bool, keepalive_requests: int = 0) -> WSGIApp:
    """In each worker (granian calls it after the fork): hub.wsgi's application, which sets
    Django up and imports the URLconf before the worker accepts anything."""
    from hub.wsgi import application

    app: WSGIApp = application
    if keepalive_requests:
        app = with_connection_recycling(app, keepalive_requests)
    return with_access_log(app) if access_log else app


def build_server(options: ServerOptions) -> MPServer:
    # The process server, named: ``granian.Granian`` is the thread server on a free-threaded
    # Python, where the multiprocess metrics and the reaper would not apply.
    return MPServer(
        TARGET,
        address=options.host,
        port=options.port,
        interface=Interfaces.WSGI,
        workers=options.workers,
        blocking_threads=options.blocking_threads,
        runtime_threads=options.runtime_threads,
        backlog=options.backlog,
        backpressure=options.backpressure,
        websockets=False,
        # granian's own access line cannot carry the id the hub made (hub.serve.access).
        log_access=False,
        log_level=LogLevels.info,
        log_dictconfig=log_config(),
        respawn_failed_workers=options.respawn_failed_workers,
        workers_kill_timeout=options.workers_kill_timeout,
        workers_lifetime=options.workers_lifetime,
    )


def export_statement_timeout(options: ServerOptions, environ: MutableMapping[str, str]) -> None:
    """The workers' statement timeout, for hub.settings in each worker: they inherit the
    launcher's environment. The launcher's option wins over a ``DATABASE_STATEMENT_TIMEOUT``
    meant for the other processes."""
    environ[timeouts.ENV] = str(options.statement_timeout)


def run(options: ServerOptions) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a clean stop (granian exits 1 itself when it gave
    up on a worker)."""
    export_statement_timeout(options, os.environ)
    server = build_server(options)
    metrics = LauncherMetrics()
    server.on_startup(metrics.before_workers)
    server.on_shutdown(metrics.after_workers)
    log.info(
        "hub.wsgi on %s:%d: %d workers x %d blocking thread(s), kill timeout %d s, "
        "statement timeout %s, %s",
        options.host,
        options.port,
        options.workers,
        options.blocking_threads,
        options.workers_kill_timeout,
        f"{options.statement_timeout} s" if options.statement_timeout else "none",
        (
            f"a worker closes a connection every {options.keepalive_requests} requests"
            if options.keepalive_requests
            else "connections kept open"
        ),
    )
    server.serve(
        target_loader=partial(
            load_application,
            access_log=options.access_log,
            keepalive_requests=options.keepalive_requests,
        ),
        wrap_loader=False,
    )
    return 0
