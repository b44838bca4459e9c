"""A task runs on a real Celery worker process, through the real Redis broker."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.health.tasks import ping

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_queue() -> Iterator[str]:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hub",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            queue,
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        yield queue
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_task_runs_on_a_worker_and_its_result_comes_back(worker_queue: str) -> None:
    result = ping.apply_async(args=["ward-7"], queue=worker_queue)
    assert result.get(timeout=60) == "pong:ward-7"
    assert result.successful()
