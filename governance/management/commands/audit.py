"""``manage.py audit link|verify|checkpoint|check-checkpoint``: the audit hash chain."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance import chain


class Command(BaseCommand):
    help = "Link, verify and checkpoint the tamper-evident audit chain."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="what", required=True)
        sub.add_parser("link", help="link rows not yet in the chain (what Celery beat does)")
        verify = sub.add_parser("verify", help="walk the chain; exit 1 naming the first bad row")
        verify.add_argument("--no-link", action="store_true", help="do not link pending rows first")
        sub.add_parser("checkpoint", help="sign the chain head now (also runs daily)")
        external = sub.add_parser(
            "check-checkpoint", help="check checkpoint lines kept outside the database"
        )
        external.add_argument("file", help="a .jsonl file of checkpoints ('-' for stdin)")
        external.add_argument("--public-key", help="base64 governance public key")

    def handle(self, *args: Any, **options: Any) -> None:
        what = options["what"]
        if what == "link":
            self.stdout.write(f"linked {chain.link_all()} rows")
        elif what == "verify":
            self._verify(link=not options["no_link"])
        elif what == "checkpoint":
            checkpoint = chain.write_checkpoint()
            if checkpoint is None:
                self.stdout.write("the chain is empty: nothing to sign")
            else:
                self.stdout.write(checkpoint.statement)
        else:
            self._external(options["file"], options.get("public_key"))

    def _verify(self, *, link: bool) -> None:
        if link:
            chain.link_all()
        report = chain.verify()
        self.stdout.write(f"checked {report.checked} linked rows")
        if report.unlinked_ids:
            # Not tampering: rows written since the last link. Listed apart on purpose.
            ids = report.unlinked_ids
            self.stdout.write(
                f"{len(ids)} rows not linked yet (ids {ids[0]}..{ids[-1]}); not an error"
            )
        self.stdout.write(f"{report.checkpoints_checked} signed checkpoints checked")
        if report.ok:
            self.stdout.write(self.style.SUCCESS("audit chain OK"))
            return
        if report.first_bad_id is not None:
            self.stderr.write(
                f"FIRST ALTERED ROW: id {report.first_bad_id} "
                f"(chain_seq {report.first_bad_seq}): {report.problem}"
            )
        for problem in report.checkpoint_problems:
            self.stderr.write(f"CHECKPOINT: {problem}")
        raise CommandError("audit chain verification failed", returncode=1)

    def _external(self, file: str, public_key: str | None) -> None:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        bad = 0
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            problem = chain.verify_external_checkpoint(line, public_key=public_key)
            if problem:
                bad += 1
                self.stderr.write(f"line {n}: {problem}")
        if bad:
            raise CommandError(f"{bad} checkpoints do not match the chain", returncode=1)
        self.stdout.write(self.style.SUCCESS("every checkpoint matches the chain"))
