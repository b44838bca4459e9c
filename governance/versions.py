"""The grants version: one shared counter (Redis) that every change to who may do what bumps;
and the state versions, counters that every writer of the live tables bumps (below).

Per-request look-ups that used to cost a query or three — the session's user, a site agent's
credential, a user's roles, grants and scopes — are memoised in each web process under the
version current at the start of the request. Anything that changes them bumps the counter:

* ``governance.access`` role and grant changes (``assign_role``, ``grant_hospital``, ...);
* saves and deletes of users, groups, group memberships, governed-group tags and guardian
  object permissions (signals below, so the admin and raw model code are covered too);
* site agent changes to its credential, revocation, hospital or service account.

The counter is bumped when the change is made *and again when its transaction commits*, so a
process that re-read the old state between the two cannot keep it: a revoked credential or a
removed grant is refused on the very next request after the change returns. When Redis cannot
be read, nothing is memoised (every request reads PostgreSQL, as before); a memo is also never
older than ``MAX_AGE_SECONDS``, which bounds the damage of a bump that Redis lost.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import transaction

logger = logging.getLogger("governance.versions")

T = TypeVar("T")

MAX_AGE_SECONDS = 60.0
_MAX_ENTRIES = 4096

_local = threading.local()
_client_lock = threading.Lock()
_client: Any = None


def _key() -> str:
    name = settings.DATABASES["default"].get("NAME") or "default"
    return f"twinhub:{name}:governance:grants-version"


def _redis() -> Any:
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                import redis

                _client = redis.Redis.from_url(
                    settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5
                )
    return _client


def _state_key(kind: str) -> str:
    name = settings.DATABASES["default"].get("NAME") or "default"
    return f"twinhub:{name}:state:{kind}"


def _read() -> tuple[int, ...] | None:
    """The grants version and the state versions (``STATE_KINDS`` order): one ``MGET``."""
    try:
        values = _redis().mget([_key(), *(_state_key(k) for k in STATE_KINDS)])
    except Exception:
        logger.warning("grants/state versions unreadable (Redis): not memoising", exc_info=True)
        return None
    return tuple(int(v or 0) for v in values)


def _versions() -> tuple[int, ...] | None:
    if getattr(_local, "in_request", False):
        if not hasattr(_local, "version"):
            _local.version = _read()
        cached: tuple[int, ...] | None = _local.version
        return cached
    return _read()


def grants_version() -> int | None:
    """The version in force for this request (read once per request, with the state
    versions), or None when Redis is unreachable (then nothing may be memoised)."""
    versions = _versions()
    return None if versions is None else versions[0]


def _incr(*keys: str, fields: tuple[str, dict[int, None]] | None = None) -> None:
    """INCR ``keys`` (and HINCRBY each of ``fields``' ids in its hash first): one round trip."""
    try:
        if len(keys) == 1 and fields is None:
            _redis().incr(keys[0])
        else:
            pipe = _redis().pipeline(transaction=False)
            if fields is not None:
                for field in fields[1]:
                    pipe.hincrby(fields[0], str(field), 1)
            for key in keys:
                pipe.incr(key)
            pipe.execute()
    except Exception:
        logger.error(
            "version NOT bumped (Redis): %s; memos expire within %ss", keys, MAX_AGE_SECONDS
        )
    _clear_request_version()


def bump_grants() -> None:
    """Invalidate every process's memo of roles, grants, users and credentials: now and when
    the current transaction commits. Until it commits, what this thread memoises is its own
    (the transaction might still roll back)."""
    _incr(_key())
    _local_generation_bump()

    def committed() -> None:
        _local.pending = None
        _incr(_key())

    _local.pending = committed
    _local.token = next(_tokens)
    transaction.on_commit(committed)


_tokens = itertools.count(1)


def _uncommitted_token() -> int:
    """0, or a token of this thread's uncommitted access change (memos made under it are
    seen by no other thread, and by no one once it commits or rolls back)."""
    token = _pending_token("pending", "token")
    if token is None:
        # Rolled back (its commit callback was dropped): forget the change's memos.
        _local_generation_bump()
        return 0
    return token


def _pending_token(pending_attr: str, token_attr: str) -> int | None:
    """The token of this thread's uncommitted change kept in ``_local.<pending_attr>``: 0 when
    there is none, the token while its commit callback is still queued on this connection,
    None (and the change forgotten) when the callback was dropped by a rollback."""
    pending = getattr(_local, pending_attr, None)
    if pending is None:
        return 0
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        entry[1] is pending for entry in connection.run_on_commit
    ):
        token: int = getattr(_local, token_attr)
        return token
    setattr(_local, pending_attr, None)
    return None


def _clear_request_version() -> None:
    if hasattr(_local, "version"):
        del _local.version


def _request_started(**_: Any) -> None:
    _local.in_request = True
    _clear_request_version()


def _request_finished(**_: Any) -> None:
    _local.in_request = False
    _clear_request_version()


request_started.connect(_request_started, dispatch_uid="governance.versions.started")
request_finished.connect(_request_finished, dispatch_uid="governance.versions.finished")


# A process-local generation as well: changes made in this process invalidate at once, even
# inside a transaction that has not committed (tests run in one).
_generation = 0
_generation_lock = threading.Lock()


def _local_generation_bump() -> None:
    global _generation
    with _generation_lock:
        _generation += 1


def current_stamp() -> tuple[int, int, int] | None:
    """What a memo is valid for: (shared version, local generation, uncommitted-change
    token); None: do not memoise."""
    token = _uncommitted_token()
    version = grants_version()
    if version is None:
        return None
    return version, _generation, token


# --- state versions: what the shared live answers are built from ------------------------------
#
# One counter per kind of shared answer (hub/api/live_cache.py), bumped by every writer of the
# tables that answer reads: ``live`` (unit and feed states written through the ORM, directives,
# hospitals, units, regions, site agents' key names), ``census`` (the ingest's unit and feed
# state upserts, with a counter per hospital touched: ``hospital_versions``), ``registry``
# (hospitals, units, regions), ``directives`` (directives, hospitals), ``policy`` (sharing
# policies), ``sessions`` (session rows: the memo of the hub's session store). Model saves
# and deletes bump through signals (hub/api/state_signals.py); writers that bypass the ORM
# (the ingest's COPY and upserts) call ``state_changed`` themselves. As
# with the grants version, the bump is made at the write and again when its transaction
# commits; an answer built under this thread's uncommitted change is keyed by
# ``state_token()`` and never shared.

STATE_KINDS = ("live", "registry", "directives", "policy", "census", "sessions")


def state_version(kind: str) -> int | None:
    """The version of ``kind`` for this request (the same ``MGET`` as the grants version), or
    None when Redis is unreachable (then no answer may be shared)."""
    versions = _versions()
    return None if versions is None else versions[1 + STATE_KINDS.index(kind)]


def state_changed(*kinds: str, hospitals: Iterable[int] = ()) -> None:
    """Invalidate every process's shared answers of ``kinds``: now and when the current
    transaction commits (call it inside the writing transaction). ``hospitals``: the
    hospitals whose live figures the change touched (the ingest's ``census`` kind); their
    own counters (``hospital_versions``) move too, in the same round trip, before the kinds'.
    """
    keys = [_state_key(k) for k in kinds]
    ids = dict.fromkeys(hospitals)
    fields = (_hospitals_key(), ids) if ids else None
    _incr(*keys, fields=fields)

    def committed() -> None:
        _local.state_pending = None
        _incr(*keys, fields=fields)

    # One token per uncommitted transaction: a second change in the same transaction keeps
    # it (what this thread built under it stays this thread's, and stays comparable).
    token = state_token()
    _local.state_pending = committed
    _local.state_token = token or next(_tokens)
    transaction.on_commit(committed)


def _hospitals_key() -> str:
    return _state_key("census-hospitals")


def hospital_versions(ids: Sequence[int]) -> list[int] | None:
    """Each hospital's own live-figures counter (bumped with ``census`` by the ingest), or
    None when Redis is unreachable. Read it *before* reading the rows it versions."""
    if not ids:
        return []
    try:
        values = _redis().hmget(_hospitals_key(), [str(i) for i in ids])
    except Exception:
        logger.warning("hospital versions unreadable (Redis): not sharing", exc_info=True)
        return None
    return [int(v or 0) for v in values]


def state_token() -> int:
    """0, or a token of this thread's uncommitted state change (an answer built under it may
    show rows no one else can see yet: it is keyed by the token, never shared)."""
    return _pending_token("state_pending", "state_token") or 0


class VersionedMemo:
    """A small LRU of values computed under one stamp (thread-safe, per process): by default
    the grants stamp (``current_stamp``); ``stamp`` names another (None: do not memoise)."""

    def __init__(
        self,
        max_entries: int = _MAX_ENTRIES,
        stamp: Callable[[], Hashable | None] | None = None,
    ) -> None:
        self._data: OrderedDict[Hashable, tuple[Hashable, float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        self._stamp = stamp or current_stamp

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        stamp = self._stamp()
        if stamp is None:
            return compute()
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and hit[0] == stamp and now - hit[1] < MAX_AGE_SECONDS:
                self._data.move_to_end(key)
                value: T = hit[2]
                return value
        value = compute()
        with self._lock:
            self._data[key] = (stamp, now, value)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


# --- what bumps it --------------------------------------------------------------------------


def connect_signals() -> None:
    """Bump on any save/delete of what decides access (called once, from governance.access)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models.signals import m2m_changed, post_delete, post_save
    from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

    from governance.models import GovernedGroup

    def any_change(**_: Any) -> None:
        bump_grants()

    def user_saved(update_fields: Any = None, **_: Any) -> None:
        # A login only stamps last_login: no access decision depends on it.
        if update_fields is not None and set(update_fields) <= {"last_login"}:
            return
        bump_grants()

    user_model = get_user_model()
    post_save.connect(user_saved, sender=user_model, dispatch_uid="gv-user-save", weak=False)
    models_: list[Any] = [
        user_model,
        Group,
        GovernedGroup,
        get_group_obj_perms_model(),
        get_user_obj_perms_model(),
    ]
    for n, model in enumerate(models_):
        if model is not user_model:
            post_save.connect(any_change, sender=model, dispatch_uid=f"gv-save-{n}", weak=False)
        post_delete.connect(any_change, sender=model, dispatch_uid=f"gv-del-{n}", weak=False)
    m2m_changed.connect(
        any_change, sender=user_model.groups.through, dispatch_uid="gv-groups", weak=False
    )
    m2m_changed.connect(
        any_change,
        sender=user_model.user_permissions.through,
        dispatch_uid="gv-user-perms",
        weak=False,
    )
    m2m_changed.connect(
        any_change, sender=Group.permissions.through, dispatch_uid="gv-group-perms", weak=False
    )
