import stat
from pathlib import Path

import pytest
from django.contrib.auth import authenticate

from hub.demo.services import demo_admin_ensure

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_admin_is_created_once_with_a_working_generated_password(tmp_path: Path) -> None:
    password_file = tmp_path / "secrets" / "admin_password"
    first = demo_admin_ensure(username="ops-admin", password_file=password_file)
    assert first.password is not None
    assert len(first.password) >= 20
    assert password_file.read_text().strip() == first.password
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    user = authenticate(username="ops-admin", password=first.password)
    assert user is not None
    assert user.is_superuser

    second = demo_admin_ensure(username="ops-admin", password_file=password_file)
    assert second.password is None
    assert authenticate(username="ops-admin", password=first.password) is not None
