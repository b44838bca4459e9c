"""The demo's users, one per role: created once with generated passwords kept in a 0600 file,
granted through governance, and left alone (or repaired) when the command runs again."""

from __future__ import annotations

import io
import stat
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from governance.access import can, roles_of
from governance.roles import Role
from hub.demo.services import demo_users_ensure
from hub.registry.models import Hospital
from tests.hub.support import hospital_with_units

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

EXPECTED = {
    "ops": "regional_operator",
    "board": "governance_board",
    "auditor": "auditor",
    "exec1": "executive",
    "ed1": "ed_staff",
    "nurse1": "ward_nurse",
}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """PBKDF2 at Django's million iterations costs half a second a password; these tests
    check which passwords work, not how they are hashed."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def lines(path: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for line in path.read_text().splitlines():
        username, password, role = line.split(" ")
        out[username] = (password, role)
    return out


def test_one_user_per_role_with_a_working_generated_password(tmp_path: Path) -> None:
    first = hospital_with_units()
    other = hospital_with_units()
    path = tmp_path / "secrets" / "demo_users"
    result = demo_users_ensure(password_file=path)
    assert {u.username: u.role.value for u in result.users} == EXPECTED
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = lines(path)
    assert {name: role for name, (_, role) in saved.items()} == EXPECTED
    users: dict[str, Any] = {}
    for name, (password, role) in saved.items():
        assert len(password) >= 20
        user = authenticate(username=name, password=password)
        assert user is not None, name
        assert roles_of(user) == {Role(role)}
        users[name] = user
    # Scoped users reach the first seeded hospital only.
    for name in ("exec1", "ed1", "nurse1"):
        assert can(users[name], "read_hospitals", first), name
        assert not can(users[name], "read_hospitals", other), name
    assert can(users["ed1"], "read_census", first.units.get(code="ED"))
    assert not can(users["ed1"], "read_census", first.units.get(code="W1"))
    assert can(users["nurse1"], "read_census", first.units.get(code="W1"))
    assert not can(users["nurse1"], "read_census", first.units.get(code="ICU"))
    assert can(users["exec1"], "read_aggregates", first)
    assert not can(users["exec1"], "read_census", first.units.get(code="W1"))


def test_running_again_changes_nothing_and_a_lost_file_is_rewritten(tmp_path: Path) -> None:
    hospital_with_units()
    path = tmp_path / "demo_users"
    demo_users_ensure(password_file=path)
    before = path.read_text()
    again = demo_users_ensure(password_file=path)
    assert path.read_text() == before
    assert not any(u.created or u.password_set for u in again.users)

    path.unlink()
    repaired = demo_users_ensure(password_file=path)
    assert all(u.password_set and not u.created for u in repaired.users)
    for name, (password, _) in lines(path).items():
        assert authenticate(username=name, password=password) is not None


def test_without_a_seeded_hospital_only_the_region_wide_users_are_made(tmp_path: Path) -> None:
    path = tmp_path / "demo_users"
    result = demo_users_ensure(password_file=path)
    assert [u.username for u in result.users] == ["ops", "board", "auditor"]
    assert result.skipped == ["exec1", "ed1", "nurse1"]
    hospital_with_units()
    later = demo_users_ensure(password_file=path)
    assert set(lines(path)) == set(EXPECTED)
    assert [u.username for u in later.users if u.created] == ["exec1", "ed1", "nurse1"]


def test_the_command_prints_no_password(tmp_path: Path, settings: Any) -> None:
    hospital = hospital_with_units()
    settings.LOCAL_DIR = tmp_path
    out = io.StringIO()
    call_command("demo_users", stdout=out)
    text = out.getvalue()
    path = tmp_path / "secrets" / "demo_users"
    for password, _ in lines(path).values():
        assert password not in text
    assert f"ed1      ed_staff           {hospital.site_code}" in text
    assert str(path) in text


def test_the_command_takes_another_hospital_by_site_code(tmp_path: Path, settings: Any) -> None:
    hospital_with_units()
    second: Hospital = hospital_with_units()
    settings.LOCAL_DIR = tmp_path
    call_command("demo_users", "--hospital", second.site_code, stdout=io.StringIO())
    password = lines(tmp_path / "secrets" / "demo_users")["exec1"][0]
    user = authenticate(username="exec1", password=password)
    assert can(user, "read_hospitals", second)
