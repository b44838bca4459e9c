"""A bound on how long one statement may run, passed to PostgreSQL at connection.

``DATABASE_STATEMENT_TIMEOUT`` (whole seconds; unset or 0: none) becomes libpq's startup
``options`` (``-c statement_timeout=…``), so it applies to every statement of every
connection the process opens, with no statement of its own. The web launcher sets it for its
workers (``python -m hub.serve --statement-timeout``, 30 s by default): a request stuck
behind a lock or a runaway query is cancelled, and the client gets a 503
(``hub.database_unavailable``) instead of holding a worker. The consumer, Celery and the
coordinator run long statements on purpose and get none unless the variable is set for them.

PgBouncer in transaction mode refuses the ``options`` startup parameter: behind it, set the
timeout on the role (``ALTER ROLE … SET statement_timeout``) and 0 here (docs/deploy.md).
"""

from __future__ import annotations

ENV = "DATABASE_STATEMENT_TIMEOUT"


def timeout_seconds(value: str) -> int:
    """The variable's value as whole seconds (empty: 0); a clear error for anything else."""
    text = value.strip()
    if not text:
        return 0
    try:
        seconds = int(text)
    except ValueError:
        raise ValueError(f"{ENV} must be whole seconds (0: none), not {value!r}") from None
    if seconds < 0:
        raise ValueError(f"{ENV} must be 0 (none) or more seconds, not {seconds}")
    return seconds


def with_statement_timeout(options: str, seconds: int) -> str:
    """libpq's ``options`` with the timeout added to what is there already (a
    ``?options=`` of ``DATABASE_URL``); unchanged for 0."""
    if seconds == 0:
        return options
    setting = f"-c statement_timeout={seconds * 1000}"
    return f"{options} {setting}" if options.strip() else setting
