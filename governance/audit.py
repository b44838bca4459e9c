"""Writing audit events: ``record()`` for governed changes, ``AuditMiddleware`` for requests.

Every API call, page view and export writes one event (who, their roles, when, what action,
which hospitals/objects, how many rows, from where, request id). Views enrich the request's
event through ``request.audit_context``::

    request.audit_context.update(action="export_census", hospital_ids=[3], row_count=120)

Rows are inserted without any lock; ``governance.chain`` links them into the SHA-256 chain in
a background step (see docs/governance.md).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import connections, models, router
from django.http import HttpRequest, HttpResponse

from governance import durability, transient
from governance.models import AuditEvent

logger = logging.getLogger("governance.audit")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def _label(actor: Any) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, ""
    return actor.pk, str(actor.get_username())[:150]


def _roles(actor: Any) -> list[str]:
    from governance.access import roles_of

    if actor is None or not getattr(actor, "is_authenticated", False):
        return []
    roles = sorted(r.value for r in roles_of(actor))
    if getattr(actor, "is_superuser", False):
        roles.append("superuser")
    return roles


def _target(target: Any) -> str:
    if target is None:
        return ""
    if isinstance(target, models.Model):
        return f"{target._meta.label_lower}:{target.pk}"
    if isinstance(target, type) and issubclass(target, models.Model):
        return target._meta.label_lower
    return str(target)[:200]


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address. ``X-Forwarded-For`` is believed only for the number of proxies
    we run in front (``GOVERNANCE_TRUSTED_PROXY_COUNT``): anything further left is the
    client's to forge."""
    remote = request.META.get("REMOTE_ADDR") or None
    hops = int(getattr(settings, "GOVERNANCE_TRUSTED_PROXY_COUNT", 0))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops > 0 and forwarded:
        chain = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(chain) >= hops:
            remote = chain[-hops]
    try:
        return str(ipaddress.ip_address(remote)) if remote else None
    except ValueError:
        return None


def new_request_id() -> str:
    """32 hex digits that sort by time: the milliseconds since 1970 (12 digits), then 80
    random bits (as UUIDv7 orders them). The audit log's index on request ids then grows at
    its right-hand end, whose pages stay in memory. With uuid4's random ids every insert
    went to a random leaf of that index, and once the index outgrew the cache each API
    request read a page from disk before it could answer (docs/hub.md, "API load", night)."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def request_id(request: HttpRequest) -> str:
    """The request id from the proxy (``X-Request-ID``) when well-formed, else a new one."""
    existing = getattr(request, "request_id", None)
    if existing:
        return str(existing)
    supplied = request.headers.get(REQUEST_ID_HEADER, "")
    rid = supplied if _REQUEST_ID_RE.match(supplied) else new_request_id()
    request.request_id = rid  # type: ignore[attr-defined]
    return rid


def record(
    *,
    actor: Any,
    action: str,
    target: Any = None,
    hospital_ids: Iterable[Any] = (),
    object_ids: Iterable[Any] = (),
    row_count: int | None = None,
    request: HttpRequest | None = None,
    detail: dict[str, Any] | None = None,
    status_code: int | None = None,
    durable: bool = True,
) -> AuditEvent:
    """Write one audit event now, in the caller's transaction (so it commits or rolls back
    with the change it describes). ``target`` may be a model instance, a model class or text.
    ``durable=False``: outside a transaction, the event commits without waiting for the disk
    (a read's event: ``governance.durability``); inside one it commits with the transaction.
    """
    actor_id, actor_label = _label(actor)
    event = AuditEvent(
        actor_id=actor_id,
        actor_label=actor_label,
        roles=_roles(actor),
        action=action[:64],
        target=_target(target),
        hospital_ids=sorted({int(h) for h in hospital_ids if h is not None}),
        object_ids=[str(o)[:64] for o in object_ids][:1000],
        row_count=row_count,
        detail=detail or {},
        status_code=status_code,
    )
    if request is not None:
        event.method = request.method or ""
        event.path = request.path[:500]
        event.source_ip = client_ip(request)
        event.request_id = request_id(request)
    _insert(event, durable)
    return event


# One prepared-shape INSERT instead of the ORM's save(): the same row, without compiling the
# statement for every API request. The table's trigger and constraints are unchanged.
_COLUMNS = (
    "INSERT INTO governance_auditevent (occurred_at, actor_id, actor_label, roles, action,"
    " target, method, path, status_code, source_ip, request_id, hospital_ids, object_ids,"
    " row_count, detail)"
)
_VALUES = (
    "%s, %s, %s, %s::varchar(32)[], %s, %s, %s, %s, %s,"
    " %s::inet, %s, %s::bigint[], %s::varchar(64)[], %s, %s::jsonb"
)
_INSERT = f"{_COLUMNS} VALUES ({_VALUES}) RETURNING id"
# The same row, committed without waiting for the disk (governance.durability).
_INSERT_UNFLUSHED = f"{_COLUMNS} SELECT {_VALUES} WHERE {durability.UNFLUSHED} RETURNING id"


def text_array(values: Iterable[str]) -> str:
    """``values`` as a PostgreSQL array literal: every element quoted (so none reads as NULL,
    and commas, braces and spaces stay in it), with its quotes and backslashes escaped.
    psycopg's list dumper cost ~1.8 µs an element in Python: 0.18 ms for the 100 object ids
    of a page of census history."""
    items = list(values)
    if not items:
        return "{}"
    every = "".join(items)
    if '"' in every or "\\" in every:  # rare: the ids are uuids and integers
        items = [v.replace("\\", "\\\\").replace('"', '\\"') for v in items]
    return '{"' + '","'.join(items) + '"}'


def _insert(event: AuditEvent, durable: bool) -> None:
    using = router.db_for_write(AuditEvent)
    connection = connections[using]
    relaxed = not durable and durability.relaxable(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_UNFLUSHED if relaxed else _INSERT,
            [
                event.occurred_at,
                event.actor_id,
                event.actor_label,
                list(event.roles),
                event.action,
                event.target,
                event.method,
                event.path,
                event.status_code,
                event.source_ip,
                event.request_id,
                list(event.hospital_ids),
                text_array(event.object_ids),
                event.row_count,
                json.dumps(event.detail),
            ],
        )
        event.pk = cursor.fetchone()[0]
    event._state.adding = False
    event._state.db = using


class AuditContext(dict[str, Any]):
    """What a view adds to its request's audit event: ``action``, ``target``,
    ``hospital_ids``, ``object_ids``, ``row_count``, ``detail``, ``durable`` (see
    ``_durable``); or ``skip=True`` for a view that already wrote a fuller event itself (never
    for data reads)."""

    def add_objects(self, objs: Iterable[models.Model]) -> None:
        from governance.access import hospital_ids_of

        ids = list(self.get("object_ids", []))
        hospitals = set(self.get("hospital_ids", []))
        count = 0
        for obj in objs:
            ids.append(obj.pk)
            hospitals.update(hospital_ids_of(obj))
            count += 1
        self["object_ids"] = ids
        self["hospital_ids"] = sorted(hospitals, key=str)
        self["row_count"] = int(self.get("row_count") or 0) + count


def _exempt(path: str) -> bool:
    prefixes = getattr(
        settings,
        "GOVERNANCE_AUDIT_EXEMPT_PATHS",
        ["/healthz", "/readyz", "/static/", "/favicon.ico"],
    )
    return any(path.startswith(p) for p in prefixes)


class AuditMiddleware:
    """One audit event per request (API call, page view, export), written after the view.

    Placed after ``AuthenticationMiddleware``. DRF authenticates inside the view and sets the
    user back on the Django request, so token-authenticated callers are named too. If the
    event cannot be written the response is replaced: an unaudited read is not served. A
    read the database cannot take the event of for now gets a 503 with ``Retry-After``
    (``governance.transient``); any other failure, and any change (already made by its
    view: a retry would repeat it), a 500.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _exempt(request.path):
            return self.get_response(request)
        rid = request_id(request)
        context = AuditContext()
        request.audit_context = context  # type: ignore[attr-defined]
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = rid
        if context.get("skip"):
            return response
        user = getattr(request, "user", None)
        action = context.get("action") or _default_action(request)
        try:
            record(
                actor=user,
                action=action,
                target=context.get("target"),
                hospital_ids=context.get("hospital_ids", ()),
                object_ids=context.get("object_ids", ()),
                row_count=context.get("row_count"),
                request=request,
                detail=context.get("detail"),
                status_code=response.status_code,
                durable=_durable(request, context),
            )
        except Exception as exc:
            if request.method in _READ_METHODS and transient.unavailable_message(exc):
                # The database cannot take the event for now (restarting, refusing
                # connections, the statement timed out): the read is not served, and the
                # client may ask again. A change has already been made by its view, so it
                # is not invited to repeat it: that stays a 500.
                logger.warning(
                    "audit event not written for %s %s: database unavailable: %s",
                    request.method,
                    request.path,
                    exc,
                )
                unavailable = transient.unavailable_response(
                    "audit unavailable: the request was not served; try again shortly"
                )
                unavailable[REQUEST_ID_HEADER] = rid
                return unavailable
            logger.exception("audit event not written for %s %s", request.method, request.path)
            return HttpResponse("audit unavailable", status=500, content_type="text/plain")
        return response


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _durable(request: HttpRequest, context: AuditContext) -> bool:
    """Whether the request's event waits for the disk: a change's event does; a read's does
    not unless ``GOVERNANCE_AUDIT_READS_DURABLE``; a view that writes only what the next
    request replaces (a heartbeat) says ``durable=False`` in its context
    (``governance.durability``)."""
    if durability.reads_durable():
        return True
    if "durable" in context:
        return bool(context["durable"])
    return request.method not in _READ_METHODS


def _default_action(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    name = match.view_name if match is not None else "unresolved"
    view_action = getattr(getattr(match, "func", None), "governance_action", None)
    if isinstance(view_action, str):
        name = view_action
    return f"{(request.method or 'GET').lower()}:{name}"[:64]
