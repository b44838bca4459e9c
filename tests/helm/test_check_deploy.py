"""`manage.py check --deploy` is clean with the environment the production values give the web."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.helm.charts import ROOT, Manifests, env_of

LOCAL_DATABASE_URL = "postgres://twinhub@127.0.0.1:55432/twinhub"


def _dummy_secret(name: str) -> str:
    """A throw-away value of the right shape for each secret the chart mounts."""
    if name == "DJANGO_SECRET_KEY":
        return secrets.token_urlsafe(50)
    if name == "DATABASE_URL":
        # check --deploy does not connect; the local server's URL (scripts/services) will do.
        return os.environ.get("DATABASE_URL", LOCAL_DATABASE_URL)
    if name == "REDIS_URL":
        return "redis://127.0.0.1:56379/0"
    if name == "GOVERNANCE_SIGNING_KEY":
        return base64.b64encode(secrets.token_bytes(32)).decode()
    if name == "GOVERNANCE_FIELD_KEYS":
        return "1:" + base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(24)


def test_check_deploy_passes_with_the_production_web_environment(
    hub_production: Manifests, tmp_path: Path
) -> None:
    env = env_of(hub_production.pod("web").containers[0])
    # The files the pod would have mounted, written here with throw-away contents.
    for name, path in list(env.items()):
        if path.startswith("/var/run/secrets/"):
            local = tmp_path / path.lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(_dummy_secret(name.removesuffix("_FILE")) + "\n", encoding="utf-8")
            env[name] = str(local)
        elif path.startswith("/etc/twinhub/"):
            env[name] = str(tmp_path / "ca.crt")  # a CA path: not read by the checks
    # Only what the image and the chart set: nothing from this shell (no .local/env), and no
    # .local fallback for the secret key (the image points TWINHUB_LOCAL_DIR nowhere).
    env |= {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TWINHUB_LOCAL_DIR": str(tmp_path / "no-local-dir"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
