from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from hub.demo.services import demo_admin_ensure


class Command(BaseCommand):
    help = "Create the demo administrator with a generated password (printed once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        account = demo_admin_ensure(
            username=username, password_file=settings.LOCAL_DIR / "secrets" / "admin_password"
        )
        if account.password:
            self.stdout.write(
                f"Created the administrator '{account.username}' with password: "
                f"{account.password}\n"
                f"(also saved, readable by root only, in {account.password_file})"
            )
        else:
            self.stdout.write(
                f"Administrator '{account.username}' exists; its generated password is in "
                f"{account.password_file}"
            )
