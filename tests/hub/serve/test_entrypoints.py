"""The demo and the benches start the web through the launcher, as the image and chart do."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from bench import hubrun

ROOT = Path(__file__).resolve().parents[3]


def _demo_starts() -> list[str]:
    """scripts/demo's ``start_bg demo-…`` commands, each on one line (continuations joined)."""
    demo = (ROOT / "scripts" / "demo").read_text(encoding="utf-8").replace("\\\n", " ")
    return [line for line in demo.splitlines() if line.startswith("start_bg demo-")]


def test_the_demo_starts_the_web_with_the_launcher() -> None:
    (line,) = [line for line in _demo_starts() if line.startswith("start_bg demo-web ")]
    assert re.search(r"\bpython -m hub\.serve\b", line)
    assert "granian" not in line  # no second set of server flags to drift from the chart's
    # Its merged metrics: a multiprocess directory of its own and a port.
    assert "PROMETHEUS_MULTIPROC_DIR=$DEMO/metrics/web" in line
    assert '"METRICS_PORT=$METRICS"' in line


def test_each_forking_demo_process_merges_its_metrics_from_a_directory_of_its_own() -> None:
    starts = _demo_starts()
    directories = [
        m.group(1)
        for line in starts
        for m in [re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", line)]
        if m
    ]
    ports = [
        m.group(1) for line in starts for m in [re.search(r'"METRICS_PORT=([^"]+)"', line)] if m
    ]
    # Each launcher empties its directory when it starts: a shared one would lose the others'.
    assert len(directories) == len(set(directories)) == 3
    assert len(ports) == len(set(ports)) == 4


def test_the_benches_start_the_launcher_and_gunicorn_only_when_asked() -> None:
    command = hubrun.web_command(18701)
    assert command[:3] == [sys.executable, "-m", "hub.serve"]
    assert command[command.index("--workers") + 1] == str(hubrun.WEB_WORKERS)
    gunicorn = hubrun.web_command(18701, server="gunicorn")
    assert Path(gunicorn[0]).name == "gunicorn"


def test_every_demo_port_is_checked_before_its_process_starts() -> None:
    demo = (ROOT / "scripts" / "demo").read_text(encoding="utf-8").replace("\\\n", " ")
    checked = {
        (m.group(1), m.group(2))
        for m in re.finditer(r'^port_free_for (\S+) "([^"]+)" ', demo, re.MULTILINE)
    }
    started = {
        (m.group(1), m.group(2))
        for line in _demo_starts()
        for m in [re.search(r'^start_bg (\S+) .*"METRICS_PORT=([^"]+)"', line)]
        if m
    }
    assert started <= checked
    assert len(started) == 4
    assert ("demo-web", "$PORT") in checked


def _port_free_for(tmp_path: Path, port: int, *, running: bool = False) -> tuple[int, str]:
    pids = tmp_path / "pids"
    pids.mkdir(exist_ok=True)
    if running:  # a pid that is alive: this test's own process
        (pids / "demo-x.pid").write_text(str(os.getpid()))
    script = f'source "{ROOT}/scripts/lib.sh"; port_free_for demo-x {port} DEMO_X_PORT'
    result = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "TWINHUB_LOCAL_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, result.stderr


def test_a_port_another_program_holds_stops_the_demo_with_the_setting_to_change(
    tmp_path: Path,
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        code, message = _port_free_for(tmp_path, port)
        assert code != 0
        assert f"port {port}" in message
        assert "DEMO_X_PORT" in message
        # The demo's own process, still running from the last start, holds it: fine.
        assert _port_free_for(tmp_path, port, running=True)[0] == 0
    assert _port_free_for(tmp_path, port)[0] == 0  # released
