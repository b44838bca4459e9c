"""Faults against the real services: the hub consumer killed with SIGKILL mid-batch and
restarted, and stopped with SIGTERM. After each, compare by event id: nothing lost, nothing
counted twice. (Broker restarts are not exercised here: the broker is shared; see
docs/hub.md.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.hub.census.test_consumer import create_topics, produce
from tests.hub.support import census, enrolled_site, seal

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

ENVELOPES = 150
PER_ENVELOPE = 100


def stored_ids(site: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id::text FROM census_censussnapshot WHERE site_code = %s", [site]
        )
        return [row[0] for row in cursor.fetchall()]


def consume(topic: str, *extra: str) -> subprocess.Popen[bytes]:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(settings.BASE_DIR) / "manage.py"),
            "consume",
            "--topic",
            topic,
            "--group",
            f"{topic}.hub",
            "--deadletter-topic",
            f"{topic}.dlq",
            "--batch-size",
            "3",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for_rows(site: str, at_least: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(stored_ids(site))
        if count >= at_least:
            return count
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} rows after {timeout} s")


def produce_site(kafka_bootstrap: str, topic: str) -> tuple[str, set[str]]:
    create_topics(kafka_bootstrap, topic, f"{topic}.dlq")
    hospital, key, _ = enrolled_site()
    site = hospital.site_code
    produced: set[str] = set()
    messages = []
    for _ in range(ENVELOPES):
        records = [census(site, ("ICU", "W1", "ED")[n % 3]) for n in range(PER_ENVELOPE)]
        produced.update(r.event_id for r in records)
        messages.append((site, seal(records, key, site)))
    produce(kafka_bootstrap, topic, messages)
    return site, produced


def test_sigkill_mid_batch_then_restart_loses_nothing_and_counts_nothing_twice(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    site, produced = produce_site(kafka_bootstrap, unique_topic)
    first = consume(unique_topic)
    partial = wait_for_rows(site, 1)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert partial < len(produced), "the consumer finished before it could be killed"

    second = consume(unique_topic, "--exit-when-idle", "4")
    output, _ = second.communicate(timeout=180)
    assert second.returncode == 0, output.decode()
    ids = stored_ids(site)
    assert len(ids) == len(set(ids)) == len(produced)
    assert set(ids) == produced


def test_sigterm_finishes_the_batch_commits_and_exits_zero(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    site, produced = produce_site(kafka_bootstrap, unique_topic)
    first = consume(unique_topic)
    wait_for_rows(site, 1)
    first.send_signal(signal.SIGTERM)
    output, _ = first.communicate(timeout=30)
    assert first.returncode == 0, output.decode()
    assert b"stopped:" in output

    second = consume(unique_topic, "--exit-when-idle", "4")
    output, _ = second.communicate(timeout=180)
    assert second.returncode == 0, output.decode()
    # Offsets committed at SIGTERM: the restart did not replay what was stored.
    assert b"duplicates=0" in output
    assert set(stored_ids(site)) == produced
