"""The command line as a user runs it: help, run + SIGTERM, feed, send, status."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .conftest import SITE_TOML
from .hl7msg import adt

ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e["DEID_MASTER_KEY"] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    return e


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "site_agent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
        cwd=ROOT,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, port: int) -> Path:
    text = SITE_TOML.format(
        code="CLI1",
        data=tmp_path / "data",
        idle=30,
        max_bytes=1048576,
        fhir="false",
        kafka="127.0.0.1:1",
    ).replace("port = 0", f"port = {port}", 1)
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def wait_port(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("agent did not start listening")


def test_help_lists_the_subcommands() -> None:
    out = cli("--help")
    assert out.returncode == 0
    for command in ("run", "feed", "status", "send", "check-config"):
        assert command in out.stdout


def test_example_configs_are_valid() -> None:
    for name in ("small_hospital", "large_hospital"):
        out = cli("check-config", "--config", f"site_agent/examples/{name}.toml")
        assert out.returncode == 0, out.stderr


def test_run_feed_send_status_and_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    agent = subprocess.Popen(
        [sys.executable, "-m", "site_agent", "run", "--config", str(config), "--no-relay"],
        env=env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_port(port)
        fed = cli(
            "feed", "--config", str(config), "--speedup", "3600", "--duration", "3", "--seed", "4"
        )
        assert fed.returncode == 0, fed.stderr
        assert "sent" in fed.stdout
        assert "'AA'" in fed.stdout
        msg = tmp_path / "one.hl7"
        msg.write_text(adt("A04", "CLI77", cls="E", loc="ED").replace("\r", "\n"))
        sent = cli("send", "--to", f"127.0.0.1:{port}", str(msg))
        assert sent.returncode == 0
        assert "MSA|AA|" in sent.stdout
        status = cli("status", "--config", str(config))
        assert status.returncode == 0, status.stderr
        assert "ED" in status.stdout
        assert "SYNTH_EHR" in status.stdout
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(30)
        _, err = agent.communicate()
    assert code == 0, err
    assert "stopped" in err
