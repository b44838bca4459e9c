"""The web server's settings: command-line arguments over ``WEB_*`` variables over defaults.

The defaults are what scripts/demo ran and every published load figure measured (docs/hub.md,
"API load"): 4 worker processes, each running the WSGI app on one blocking thread with one
Rust runtime thread; threads of one process queue on the GIL, so concurrency comes from
processes. The chart sets the same variables from ``web.server.*``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 4
    blocking_threads: int = 1
    runtime_threads: int = 1
    # Connections the kernel queues before granian accepts them (granian's minimum is 128).
    backlog: int = 1024
    # Connections one worker holds open before it stops accepting new ones (granian's
    # semaphore is taken per connection, and given back when the connection closes); None:
    # backlog ÷ workers, granian's own default.
    backpressure: int | None = None
    # Each worker answers every this many of its requests with ``Connection: close``, so
    # that clients reconnect and the connections spread over the workers
    # (hub/serve/keepalive.py); 0: never. Off by default: spreading the load cost 6-20 % more
    # web CPU a request on a 2-core machine (docs/deploy.md, "The web server").
    keepalive_requests: int = 0
    # On SIGTERM (and a respawn) a worker gets this long to finish its requests, then SIGKILL.
    workers_kill_timeout: int = 20
    # Seconds one database statement of a worker may run before PostgreSQL cancels it and
    # the client gets a 503 (hub/pgbackend/timeouts.py); 0: no limit.
    statement_timeout: int = 30
    # Replace each worker after this many seconds (at least 60); None: never.
    workers_lifetime: int | None = None
    respawn_failed_workers: bool = True
    access_log: bool = True


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {value!r}") from None


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SystemExit(f"{name} must be true or false, not {value!r}")


def options_from_env(
    environ: Mapping[str, str], given: frozenset[str] = frozenset()
) -> ServerOptions:
    """``WEB_HOST``, ``WEB_PORT``, ``WEB_WORKERS``, ``WEB_BLOCKING_THREADS``,
    ``WEB_RUNTIME_THREADS``, ``WEB_BACKLOG``, ``WEB_BACKPRESSURE``, ``WEB_KEEPALIVE_REQUESTS``,
    ``WEB_WORKERS_KILL_TIMEOUT``, ``WEB_STATEMENT_TIMEOUT``, ``WEB_WORKERS_LIFETIME``,
    ``WEB_RESPAWN_FAILED_WORKERS``, ``WEB_ACCESS_LOG``; an unset or empty variable keeps the
    default. The options named in ``given`` (set on the command line) are not read: a
    variable that means something else there (``WEB_PORT=tcp://…`` from a Docker link or a
    Kubernetes service named ``web``) cannot stop the launcher."""
    base = ServerOptions()

    def get(name: str) -> str | None:
        if name.lower() in given:
            return None
        value = environ.get(f"WEB_{name}", "").strip()
        return value or None

    def number(name: str, default: int) -> int:
        value = get(name)
        return default if value is None else _int(value, f"WEB_{name}")

    def optional(name: str) -> int | None:
        value = get(name)
        return None if value is None else _int(value, f"WEB_{name}")

    def flag(name: str, default: bool) -> bool:
        value = get(name)
        return default if value is None else _bool(value, f"WEB_{name}")

    return ServerOptions(
        host=get("HOST") or base.host,
        port=number("PORT", base.port),
        workers=number("WORKERS", base.workers),
        blocking_threads=number("BLOCKING_THREADS", base.blocking_threads),
        runtime_threads=number("RUNTIME_THREADS", base.runtime_threads),
        backlog=number("BACKLOG", base.backlog),
        backpressure=optional("BACKPRESSURE"),
        keepalive_requests=number("KEEPALIVE_REQUESTS", base.keepalive_requests),
        workers_kill_timeout=number("WORKERS_KILL_TIMEOUT", base.workers_kill_timeout),
        statement_timeout=number("STATEMENT_TIMEOUT", base.statement_timeout),
        workers_lifetime=optional("WORKERS_LIFETIME"),
        respawn_failed_workers=flag("RESPAWN_FAILED_WORKERS", base.respawn_failed_workers),
        access_log=flag("ACCESS_LOG", base.access_log),
    )


def check(options: ServerOptions) -> ServerOptions:
    """Refuse what granian would refuse later, or silently change, with a message now."""
    problems = []
    if not 0 < options.port < 65536:
        problems.append("the port must be 1-65535")
    problems.extend(
        f"{name} must be at least 1"
        for name in ("workers", "blocking_threads", "runtime_threads")
        if getattr(options, name) < 1
    )
    if options.backlog < 128:
        problems.append("the backlog must be at least 128 (granian raises a smaller one)")
    if options.backpressure is not None and options.backpressure < 1:
        problems.append("backpressure must be at least 1")
    if options.keepalive_requests < 0:
        problems.append("keepalive requests must be 0 (never close) or more")
    if options.workers_kill_timeout < 1:
        # granian's "no timeout" would wait for a stuck worker for ever, past the pod's grace.
        problems.append("the workers' kill timeout must be at least 1 second")
    if options.statement_timeout < 0:
        problems.append("the statement timeout must be 0 (none) or more seconds")
    if options.workers_lifetime is not None and options.workers_lifetime < 60:
        problems.append("the workers' lifetime must be at least 60 seconds (granian's minimum)")
    if problems:
        raise SystemExit("hub.serve: " + "; ".join(problems))
    return options


def parse_options(argv: Sequence[str], environ: Mapping[str, str]) -> ServerOptions:
    """Arguments win over the environment, which wins over the defaults."""
    parser = argparse.ArgumentParser(
        prog="python -m hub.serve",
        description="Serve hub.wsgi with granian (docs/deploy.md, 'The web server').",
        # Only what the command line gives; the rest comes from the environment below.
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--blocking-threads", type=int)
    parser.add_argument("--runtime-threads", type=int)
    parser.add_argument("--backlog", type=int)
    parser.add_argument("--backpressure", type=int)
    parser.add_argument("--keepalive-requests", type=int)
    parser.add_argument("--workers-kill-timeout", type=int)
    parser.add_argument("--statement-timeout", type=int)
    parser.add_argument("--workers-lifetime", type=int)
    parser.add_argument("--respawn-failed-workers", action=argparse.BooleanOptionalAction)
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction)
    given = vars(parser.parse_args(list(argv)))
    return check(replace(options_from_env(environ, frozenset(given)), **given))
