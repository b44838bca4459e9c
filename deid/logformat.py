"""Log lines for every process: plain text for a person at a terminal (the default), or one
JSON object per line (``LOG_FORMAT=json``) for a log pipeline.

A record is followed from the site to the hub by its ids: the raw ``event_id`` fixed by the
site agent's outbox, which the DE-ID worker keeps as the regional record's
``source_event_id``; the envelope's ``batch_id``; the site code. Code passes them as
``extra={"event_id": ...}`` on a log call, or binds them for a stretch of work with
:func:`log_context` (the hub binds the request id of each web request). The JSON formatter
writes whichever are present, so one search for an event id finds the agent's, the DE-ID
worker's and the hub consumer's lines.

It lives in ``deid`` because every other package may import ``deid`` and none of them
imports the others; it needs nothing but the standard library.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "CONTEXT_FIELDS",
    "PLAIN_FORMAT",
    "JsonFormatter",
    "configure_logging",
    "current_context",
    "log_context",
    "log_format",
    "pop_context",
    "push_context",
]

# The ids a line may carry, in the order they are written.
CONTEXT_FIELDS = (
    "request_id",
    "event_id",
    "source_event_id",
    "batch_id",
    "site",
    "task",
    "task_id",
)
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
    "twinhub_log_context",
    default={},  # noqa: B039 - never mutated: log_context copies it
)


def current_context() -> dict[str, str]:
    """The ids bound by the enclosing :func:`log_context` blocks (a copy)."""
    return dict(_context.get())


def push_context(**fields: str | None) -> contextvars.Token[dict[str, str]]:
    """Bind ids until :func:`pop_context` with the returned token (for hooks that start and
    end a unit of work in two calls, like Celery's task signals); prefer :func:`log_context`."""
    return _context.set({**_context.get(), **{k: str(v) for k, v in fields.items() if v}})


def pop_context(token: contextvars.Token[dict[str, str]]) -> None:
    _context.reset(token)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Bind ids (``request_id=…``, ``batch_id=…``) to every log line written inside the
    block, in this thread or task only (a context variable). Nested blocks add to the outer."""
    token = push_context(**fields)
    try:
        yield
    finally:
        pop_context(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the ids of
    :data:`CONTEXT_FIELDS` that the call or the context gives, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _context.get()
        # Django logs a 4xx/5xx response ("django.request") after the middleware returned,
        # outside the request's log context, but passes the request: take its id from there.
        request_id = getattr(getattr(record, "request", None), "request_id", None)
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or bound.get(name)
            if name == "request_id" and not value:
                value = request_id
            if value:
                line[name] = str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_format() -> str:
    """``json`` or ``plain``, from ``LOG_FORMAT`` (anything else is plain)."""
    return "json" if os.environ.get("LOG_FORMAT", "").strip().lower() == "json" else "plain"


def configure_logging(
    level: str | int = "INFO",
    *,
    fmt: str | None = None,
    plain_format: str = PLAIN_FORMAT,
    stream: TextIO | None = None,
) -> None:
    """Root logging for a command-line process (the DE-ID worker, the site agent).
    ``fmt`` defaults to ``LOG_FORMAT``; the Django hub configures the same through LOGGING."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if (fmt or log_format()) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(plain_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(
        level if isinstance(level, int) else getattr(logging, level.upper(), logging.INFO)
    )
