"""The launcher for real: granian with two workers, the merged metrics on METRICS_PORT, a
killed worker replaced and forgotten, SIGTERM ending it cleanly."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow
T = TypeVar("T")

_PROCESSES = re.compile(r"^hub_web_processes ([0-9.]+)$", re.MULTILINE)
_HEALTHZ = re.compile(
    r'^hub_http_requests_total\{method="GET",status="200",view="healthz"\} ([0-9.]+)$',
    re.MULTILINE,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        # granian sends header names in lower case.
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, response.read().decode(), headers


def _until(what: str, probe: Callable[[], T | None], seconds: float) -> T:
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = probe()
        except OSError:
            value = None
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.2)


def _sample(pattern: re.Pattern[str], metrics_url: str) -> float | None:
    match = pattern.search(_get(metrics_url)[1])
    return float(match.group(1)) if match else None


def _worker_pids(directory: Path, launcher: int) -> set[int]:
    """Children of the launcher that have written their live gauge (their app is loaded)."""
    pids = {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("gauge_livesum_*.db")}
    return {pid for pid in pids if _parent(pid) == launcher}


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _requests_between_closes(port: int, requests: int) -> list[int]:
    """Requests on one kept-alive connection until the server closed it, for each connection
    ``requests`` used (the last, still open, left out)."""
    runs, n = [], 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for _ in range(requests):
            conn.request("GET", "/healthz")
            # http.client closes its own socket on "Connection: close": a copy shows the server's.
            assert conn.sock is not None
            with conn.sock.dup() as raw:
                response = conn.getresponse()
                response.read()
                n += 1
                if response.getheader("connection") == "close":
                    # hyper closes its side after this response: the copy reads the end.
                    raw.settimeout(5)
                    assert raw.recv(1) == b""
                    runs.append(n)
                    n = 0
    finally:
        conn.close()
    return runs


def test_the_launcher_serves_merged_metrics_replaces_a_killed_worker_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    # A previous run's file (a container restart keeps its emptyDir): cleared at start.
    (multiproc / "counter_999999.db").write_bytes(b"left over")
    web, metrics = _free_port(), _free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "METRICS_PORT": str(metrics),
        "METRICS_HOST": "127.0.0.1",
        "LOG_FORMAT": "json",
        # No collected static manifest in a test checkout: DEBUG skips the manifest lookup.
        "DJANGO_DEBUG": "true",
    }
    # Its lines go to a file: a pipe nobody reads while it runs fills up, and a worker
    # blocked writing its log would not stop on SIGTERM.
    log_path = tmp_path / "launcher.log"
    log_file = log_path.open("wb")
    launcher = subprocess.Popen(
        # A short kill timeout: a SIGTERM that reaches a replacement worker still loading
        # the app is lost (granian 2.8.7), and that worker is killed at the timeout.
        [
            sys.executable,
            "-m",
            "hub.serve",
            "--port",
            str(web),
            "--workers",
            "2",
            "--workers-kill-timeout",
            "3",
            "--keepalive-requests",
            "3",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers stop with it in the finally below
    )
    healthz = f"http://127.0.0.1:{web}/healthz"
    metrics_url = f"http://127.0.0.1:{metrics}/metrics"
    try:
        _until("healthz answers", lambda: _get(healthz)[0] == 200, 90)
        # Each worker counts itself once its app is loaded: 2 is the sum of both files.
        _until("both workers counted", lambda: _sample(_PROCESSES, metrics_url) == 2.0, 60)
        assert not (multiproc / "counter_999999.db").exists()
        workers = _worker_pids(multiproc, launcher.pid)
        assert len(workers) == 2

        before = _sample(_HEALTHZ, metrics_url) or 0.0
        for n in range(20):
            status, _, headers = _get(healthz, {"X-Request-ID": f"serve-test-{n:04d}"})
            assert status == 200
            assert headers["x-request-id"] == f"serve-test-{n:04d}"
        assert _sample(_HEALTHZ, metrics_url) == before + 20
        # Each worker closes a connection at every third request it serves (its count
        # goes on from the requests above): never more than three on one connection.
        runs = _requests_between_closes(web, 9)
        assert len(runs) >= 3, runs
        assert max(runs) <= 3, runs

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        # granian respawns it; the reaper drops the dead one's live gauge file.
        replacement = _until(
            "a replacement worker",
            lambda: (_worker_pids(multiproc, launcher.pid) - workers) or None,
            60,
        )
        assert len(replacement) == 1
        _until(
            "the dead worker's live gauge reaped",
            lambda: not (multiproc / f"gauge_livesum_{victim}.db").exists(),
            30,
        )
        assert _sample(_PROCESSES, metrics_url) == 2.0
        assert _get(healthz)[0] == 200

        started = time.monotonic()
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait(10)
        log_file.close()
    output = log_path.read_text()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "hub.access"]
    assert {"serve-test-0000", "serve-test-0019"} <= {line.get("request_id") for line in access}
    assert any(
        line["logger"] == "hub.observability.launcher"
        and f"worker {victim} gone" in line["message"]
        for line in lines
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_launchers_statement_timeout_cancels_a_stuck_request_with_a_503(
    tmp_path: Path,
) -> None:
    from django.db import connection

    from governance.transient import TIMED_OUT
    from tests.hub.support import enrolled_site
    from tests.pglock import table_locked

    _, _, credential = enrolled_site()
    db = connection.settings_dict
    web = _free_port()
    env = {
        **os.environ,
        # The test database, where the agent above is committed.
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        # Meant for the other processes: the launcher's own option wins for its workers.
        "DATABASE_STATEMENT_TIMEOUT": "600",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "METRICS_PORT": str(_free_port()),
        "DJANGO_DEBUG": "true",
    }
    log_path = tmp_path / "launcher.log"
    with log_path.open("wb") as log_file:
        launcher = subprocess.Popen(
            [
                *(sys.executable, "-m", "hub.serve", "--port", str(web), "--workers", "1"),
                *("--workers-kill-timeout", "3", "--statement-timeout", "1"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    beat = json.dumps({"agent_version": "t", "feeds": [], "policy_version": 1}).encode()

    def heartbeat() -> tuple[int, dict[str, str], bytes, float]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{web}/api/v1/site/heartbeat/",
            data=beat,
            headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json"},
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
                status, headers, body = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, headers, body = error.code, dict(error.headers), error.read()
        return status, {k.lower(): v for k, v in headers.items()}, body, time.monotonic() - started

    try:
        _until("healthz answers", lambda: _get(f"http://127.0.0.1:{web}/healthz")[0] == 200, 90)
        assert heartbeat()[0] == 200
        # The heartbeat's UPDATE waits behind a lock another session holds (a migration, a
        # maintenance job): PostgreSQL cancels it after the launcher's second.
        with table_locked("registry_siteagent", "EXCLUSIVE"):
            status, headers, body, waited = heartbeat()
        assert status == 503, body
        assert json.loads(body) == {"detail": TIMED_OUT}
        assert headers["retry-after"] == "5"
        assert 1 <= waited < 10
        assert heartbeat()[0] == 200  # the worker and its connection carry on
    finally:
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait(10)
    assert "statement timeout 1 s" in log_path.read_text()
