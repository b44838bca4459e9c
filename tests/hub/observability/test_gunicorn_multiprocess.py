"""The web's metrics under real gunicorn: workers write, the master serves the merged figures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        return response.status, response.read().decode(), dict(response.headers)


def _healthz_count(metrics_url: str) -> float:
    prefix = 'hub_http_requests_total{method="GET",status="200",view="healthz"} '
    _, body, _ = _get(metrics_url)
    lines = [line for line in body.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def _wait(url: str, deadline: float) -> None:
    while True:
        try:
            _get(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_gunicorn_master_serves_the_sum_of_every_worker(tmp_path: Path) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    # A previous run's file (a container restart keeps its emptyDir): cleared at start, else
    # the collector would fail on it or add a dead process's counts.
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
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [
            str(gunicorn),
            "hub.wsgi",
            "--bind",
            f"127.0.0.1:{web}",
            "--workers",
            "3",
            "--config",
            "python:hub.observability.gunicorn",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        _wait(f"http://127.0.0.1:{web}/healthz", deadline)
        _wait(f"http://127.0.0.1:{metrics}/metrics", deadline)
        before = _healthz_count(f"http://127.0.0.1:{metrics}/metrics")
        for n in range(30):
            status, _, headers = _get(
                f"http://127.0.0.1:{web}/healthz", {"X-Request-ID": f"mp-test-{n:04d}"}
            )
            assert status == 200
            assert headers["X-Request-ID"] == f"mp-test-{n:04d}"
        assert not (multiproc / "counter_999999.db").exists()
        # Counted whichever of the three workers served them.
        assert _healthz_count(f"http://127.0.0.1:{metrics}/metrics") == before + 30
        assert len(list(multiproc.glob("counter_*.db"))) >= 1
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode()
    # gunicorn's access lines are JSON with the request id the middleware returned.
    assert '"logger": "gunicorn.access"' in output
    assert "request_id=mp-test-0029" in output
