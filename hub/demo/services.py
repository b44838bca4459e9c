"""Creating the demo's administrator."""

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction


@dataclass(frozen=True)
class AdminAccount:
    username: str
    password: str | None  # only when it was created now; never stored in the database clear
    password_file: Path


@transaction.atomic
def demo_admin_ensure(*, username: str, password_file: Path) -> AdminAccount:
    """Create the superuser with a generated password once; later calls change nothing.

    The password is written to a 0600 file in the git-ignored local folder, so a user who
    missed the first print can still log in.
    """
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        return AdminAccount(username, None, password_file)
    password = secrets.token_urlsafe(18)
    user_model.objects.create_superuser(username=username, email="", password=password)
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.touch(mode=0o600)
    password_file.write_text(password + "\n", encoding="utf-8")
    return AdminAccount(username, password, password_file)
