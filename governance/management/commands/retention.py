"""``manage.py retention [--dry-run]``: enforce retention now (Celery beat runs it daily)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from governance import services


class Command(BaseCommand):
    help = "Enforce retention per data class, or show what would go (--dry-run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only report what would go")

    def handle(self, *args: Any, **options: Any) -> None:
        run = services.retention_run(dry_run=options["dry_run"])
        self.stdout.write(
            json.dumps({"run": run.pk, "dry_run": run.dry_run, **run.report}, indent=2, default=str)
        )
