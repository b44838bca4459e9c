"""``manage.py governance ensure-roles|keygen|public-key|rotate-keys|publish-due|deadlines``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from deid import signing
from governance import access, crypto, keys, services


class Command(BaseCommand):
    help = "Governance housekeeping: roles, keys, key rotation, due policies, deadlines."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="what", required=True)
        sub.add_parser("ensure-roles", help="create the role groups and their permissions")
        keygen = sub.add_parser("keygen", help="print new keys (or write local demo files)")
        keygen.add_argument(
            "--local",
            action="store_true",
            help="write .local/secrets/governance_* (mode 0600) if absent, for the demo only",
        )
        sub.add_parser("public-key", help="the public key DE-ID workers must trust")
        rotate = sub.add_parser("rotate-keys", help="re-encrypt fields under the current key")
        rotate.add_argument("--batch", type=int, default=500)
        sub.add_parser("publish-due", help="publish approved policies whose date has come")
        sub.add_parser("deadlines", help="alert on erasure requests near or past deadline")

    def handle(self, *args: Any, **options: Any) -> None:
        what = options["what"]
        if what == "ensure-roles":
            groups = access.ensure_roles()
            self.stdout.write("roles: " + ", ".join(sorted(str(r) for r in groups)))
        elif what == "keygen":
            self._keygen(local=options["local"])
        elif what == "public-key":
            self.stdout.write(f"{keys.key_id()} {keys.public_key_b64()}")
        elif what == "rotate-keys":
            for label, n in services.field_keys_rotate(batch=options["batch"]).items():
                self.stdout.write(f"{label}: {n} values re-encrypted")
        elif what == "publish-due":
            for policy in services.policies_publish_due():
                self.stdout.write(f"published {policy}")
        else:
            for erasure in services.erasure_deadlines_check():
                self.stdout.write(f"alerted {erasure}")

    def _keygen(self, *, local: bool) -> None:
        signing_key = signing.private_key_b64(signing.generate_signing_key())
        field_keys = f"1:{crypto.new_key_b64()}"
        if not local:
            self.stdout.write(f"GOVERNANCE_SIGNING_KEY={signing_key}")
            self.stdout.write(f"GOVERNANCE_FIELD_KEYS={field_keys}")
            return
        directory = Path(settings.LOCAL_DIR) / "secrets"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, value in (
            ("governance_signing_key", signing_key),
            ("governance_field_keys", field_keys),
        ):
            path = directory / name
            if path.exists():
                self.stdout.write(f"{path} exists; kept")
                continue
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(value + "\n")
            self.stdout.write(f"wrote {path}")
