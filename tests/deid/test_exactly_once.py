"""Exactly once under faults, on the real broker: kill -9 the worker mid-stream and restart
it; restart the broker mid-stream. Every input record is reflected exactly once in the
output (compared by event id), and SIGTERM ends the worker cleanly with exit code 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deid.contracts import raw_topic
from deid.testing.synthetic import EVENT_START, SyntheticSite
from tests.deid.conftest import ROOT, k1_policy_doc
from tests.deid.kafka_helpers import consume_all, create_topics, produce, produce_as_relay

pytestmark = pytest.mark.kafka

EVENTS = 40_000


def start_worker(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "deid", "run", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def released_flows(bootstrap: str, topic: str, kind: str = "regional.flow") -> list[str]:
    """source_event_id of every committed regional record of `kind` (read_committed)."""
    ids: list[str] = []
    for m in consume_all(bootstrap, topic):
        records = json.loads(m.value())["records"]
        ids.extend(r["source_event_id"] for r in records if r["record_type"] == kind)
    return ids


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def count_envelopes(bootstrap: str, topic: str) -> int:
    return len(consume_all(bootstrap, topic))


@pytest.fixture
def stream(
    kafka_bootstrap: str,
    site_code: str,
    synthetic: SyntheticSite,
    keystore: Any,
    write_signed_policy: Callable[[dict[str, Any]], Path],
    tmp_path: Path,
) -> tuple[list[str], list[str], set[str]]:
    """Raw events on the site's topic and the worker's command-line arguments."""
    patients = synthetic.patients(2000)
    events = synthetic.flow_events(patients, EVENTS)
    create_topics(kafka_bootstrap, [raw_topic(site_code)])
    produce(kafka_bootstrap, raw_topic(site_code), site_code.encode(), [e.encode() for e in events])
    output = f"test.{site_code}.regional"
    args = [
        "--site", site_code,
        "--policy", str(write_signed_policy(k1_policy_doc())),
        "--keystore", str(keystore.path),
        "--output-topic", output,
        "--control-topic", f"test.{site_code}.control",
        "--regional-deadletter-topic", f"test.{site_code}.deadletter",
        "--batch", "1000",
        "--window-seconds", "1",
        "--stats-interval", "2",
        # About 10 s of stream: time to interrupt it in the middle whatever the machine's speed.
        "--throttle", "4000",
    ]  # fmt: skip
    return args, [output], {e.event_id for e in events}


def assert_exactly_once(bootstrap: str, output: str, expected: set[str]) -> None:
    ids = released_flows(bootstrap, output)
    counts = Counter(ids)
    duplicates = [i for i, n in counts.items() if n > 1]
    assert duplicates == [], f"{len(duplicates)} records released twice"
    assert set(ids) == expected


def stop(worker: subprocess.Popen[bytes]) -> int:
    worker.send_signal(signal.SIGTERM)
    return worker.wait(timeout=60)


def test_kill_9_mid_stream_then_restart(
    kafka_bootstrap: str,
    stream: tuple[list[str], list[str], set[str]],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    args, (output,), expected = stream
    log = tmp_path / "worker.log"
    first = start_worker(args, worker_env, log)
    try:
        wait_for(lambda: count_envelopes(kafka_bootstrap, output) > 0, 90, "a first commit")
    finally:
        first.kill()  # SIGKILL: no chance to finish the window or commit
        first.wait(timeout=30)
    done_before = len(released_flows(kafka_bootstrap, output))
    assert 0 < done_before < len(expected), "the kill did not land mid-stream"

    second = start_worker(args, worker_env, log)
    try:
        wait_for(
            lambda: len(released_flows(kafka_bootstrap, output)) >= len(expected),
            180,
            "the restarted worker to finish",
        )
    finally:
        assert stop(second) == 0, log.read_text()[-3000:]
    assert_exactly_once(kafka_bootstrap, output, expected)
    assert "stats" in log.read_text()


def test_kill_9_with_census_released_apart_from_flow_windows(
    kafka_bootstrap: str,
    site_code: str,
    synthetic: SyntheticSite,
    keystore: Any,
    write_signed_policy: Callable[[dict[str, Any]], Path],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """The relay's layout (census on the capacity partition, flow events on the flow
    partition, record_type headers): census snapshots go out ahead of the flow windows that
    hold back the other partition. A kill -9 in the middle still loses and repeats nothing,
    of either kind."""
    topic = raw_topic(site_code)
    create_topics(kafka_bootstrap, [topic], partitions=3)
    patients = synthetic.patients(500)
    flows = synthetic.flow_events(patients, 8_000)
    census = [c for i in range(200) for c in synthetic.census(EVENT_START + timedelta(minutes=i))]
    produce_as_relay(kafka_bootstrap, topic, site_code.encode(), [*census, *flows])
    output = f"test.{site_code}.regional"
    args = [
        "--site", site_code,
        "--policy", str(write_signed_policy(k1_policy_doc())),
        "--keystore", str(keystore.path),
        "--output-topic", output,
        "--control-topic", f"test.{site_code}.control",
        "--regional-deadletter-topic", f"test.{site_code}.deadletter",
        "--batch", "500",
        "--window-seconds", "2",
        "--stats-interval", "2",
        "--throttle", "1000",
    ]  # fmt: skip
    log = tmp_path / "worker.log"
    first = start_worker(args, worker_env, log)
    try:
        wait_for(lambda: len(released_flows(kafka_bootstrap, output)) > 0, 90, "a flow window")
    finally:
        first.kill()
        first.wait(timeout=30)
    assert 0 < len(released_flows(kafka_bootstrap, output)) < len(flows), "not mid-stream"

    second = start_worker(args, worker_env, log)
    try:
        wait_for(
            lambda: len(released_flows(kafka_bootstrap, output)) >= len(flows)
            and len(released_flows(kafka_bootstrap, output, "regional.census")) >= len(census),
            180,
            "the restarted worker to finish",
        )
    finally:
        assert stop(second) == 0, log.read_text()[-3000:]
    assert_exactly_once(kafka_bootstrap, output, {e.event_id for e in flows})
    census_ids = released_flows(kafka_bootstrap, output, "regional.census")
    # This policy sends census to regional operations only: each snapshot exactly once.
    assert Counter(Counter(census_ids).values()) == {1: len(census)}


@pytest.mark.slow
def test_broker_restart_mid_stream(
    kafka_bootstrap: str,
    stream: tuple[list[str], list[str], set[str]],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    if kafka_bootstrap not in ("127.0.0.1:9092", "localhost:9092"):
        pytest.skip("restarts only the project's local broker")
    args, (output,), expected = stream
    services = ["bash", str(ROOT / "scripts" / "services")]
    # The service script leaves a broker named by KAFKA_BOOTSTRAP_SERVERS alone: unset it.
    script_env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    log = tmp_path / "worker.log"
    workers = [start_worker(args, worker_env, log)]

    def supervised_progress() -> bool:
        # Like a supervisor (Kubernetes restarts the pod): a worker that gave up during the
        # outage (exit 75, "restart me") is started again; it resumes from committed offsets.
        code = workers[-1].poll()
        if code is not None:
            assert code == 75, log.read_text()[-3000:]
            workers.append(start_worker(args, worker_env, log))
        return len(released_flows(kafka_bootstrap, output)) >= len(expected)

    try:
        wait_for(lambda: count_envelopes(kafka_bootstrap, output) > 0, 90, "a first commit")
        try:
            subprocess.run([*services, "down", "kafka"], env=script_env, check=True, timeout=120)
        finally:
            # Whatever happens, leave the shared broker running for everyone else.
            subprocess.run([*services, "up", "kafka"], env=script_env, check=True, timeout=180)
        wait_for(supervised_progress, 300, "the worker to finish after the broker restart")
    finally:
        code = stop(workers[-1])
    assert code == 0, log.read_text()[-3000:]
    assert_exactly_once(kafka_bootstrap, output, expected)
