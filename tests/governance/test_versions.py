"""The grants version (governance/versions.py): bumped by every access change, now and at
commit; nothing memoised while a change is uncommitted or when Redis cannot be read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from governance import versions
from governance.access import assign_role, roles_of
from governance.roles import Role

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_an_access_change_bumps_the_version_now_and_when_it_commits(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    user = get_user_model().objects.create_user(username="v1")
    before = versions.grants_version()
    assert before is not None
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assign_role(user, Role.AUDITOR)
        during = versions.grants_version()
        assert during is not None
        assert during > before
    assert callbacks  # the bump at commit is queued...
    for callback in callbacks:
        callback()
    after = versions.grants_version()
    assert after is not None
    assert after > during  # ...and moves the version again


def test_what_is_memoised_under_an_uncommitted_change_is_not_shared_and_not_kept(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    memo = versions.VersionedMemo()
    calls: list[int] = []
    clean = versions.current_stamp()
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump_grants()
        during = versions.current_stamp()
        assert during is not None
        assert clean is not None
        assert during[2] != 0  # this thread's own token: no other thread matches it
        memo.get_or_compute("k", lambda: calls.append(1))
        memo.get_or_compute("k", lambda: calls.append(1))
        assert len(calls) == 1  # the thread reuses it within its transaction...
    after = versions.current_stamp()
    assert after is not None
    assert after[2] == 0
    memo.get_or_compute("k", lambda: calls.append(1))
    assert len(calls) == 2  # ...but once committed it is computed again


def test_a_rolled_back_change_leaves_no_memo_behind() -> None:
    from django.db import transaction

    memo = versions.VersionedMemo()
    calls: list[int] = []
    try:
        with transaction.atomic():
            versions.bump_grants()
            memo.get_or_compute("k", lambda: calls.append(1))
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    memo.get_or_compute("k", lambda: calls.append(1))
    assert len(calls) == 2


def test_without_redis_nothing_is_memoised(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable() -> Any:
        raise ConnectionError("redis down")

    monkeypatch.setattr(versions, "_redis", unreachable)
    assert versions.grants_version() is None
    memo = versions.VersionedMemo()
    calls: list[int] = []
    for _ in range(2):
        memo.get_or_compute("k", lambda: calls.append(1))
    assert len(calls) == 2
    # Access decisions are still made, from PostgreSQL.
    user = get_user_model().objects.create_user(username="v2")
    assign_role(user, Role.REGIONAL_OPERATOR)
    assert roles_of(user) == {Role.REGIONAL_OPERATOR}
