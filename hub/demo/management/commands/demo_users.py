"""``manage.py demo_users``: the demo's users, one per role (run after ``seed_region``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hub.demo.services import demo_users_ensure
from hub.registry.models import Hospital


class Command(BaseCommand):
    help = (
        "Create (idempotently) one demo user per role: ops, board, auditor, and exec1, ed1, "
        "nurse1 at the first seeded hospital. Generated passwords go to "
        ".local/secrets/demo_users (0600), never to the output."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--hospital",
            default=None,
            help="site code for exec1/ed1/nurse1 (default: first seeded)",
        )

    def handle(self, *args: Any, hospital: str | None, **options: Any) -> None:
        chosen = None
        if hospital is not None:
            chosen = Hospital.objects.filter(site_code=hospital, active=True).first()
            if chosen is None:
                raise CommandError(f"no active hospital with site code {hospital!r}")
        result = demo_users_ensure(
            password_file=settings.LOCAL_DIR / "secrets" / "demo_users", hospital=chosen
        )
        for user in result.users:
            state = "created" if user.created else ("new password" if user.password_set else "ok")
            self.stdout.write(f"  {user.username:8} {user.role.value:18} {user.grant:20} {state}")
        if result.skipped:
            self.stderr.write(
                f"no hospital seeded yet: {', '.join(result.skipped)} left out "
                "(run seed_region, then this command again)"
            )
        self.stdout.write(f"demo users' passwords: {result.password_file} (username password role)")
