"""One search for a raw event id finds the record in the DE-ID worker's and the hub's logs.

Real broker and database: the site's raw snapshot → the DE-ID worker → a signed envelope →
the hub consumer, with every log line formatted by the JSON formatter the processes use."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer

from deid.contracts import raw_topic
from deid.keystore import MasterKeyRing, PatientKeyStore
from deid.logformat import JsonFormatter
from deid.policy import default_policy_document, load_policy, sign_policy
from deid.signing import generate_signing_key, public_key_b64
from deid.testing.synthetic import UNITS, SyntheticSite
from deid.worker import DeidWorker, WorkerConfig
from hub.census.consumer import RegionalConsumer
from hub.registry import services
from hub.registry.models import Hospital
from tests.hub.census.test_consumer import create_topics
from tests.hub.support import HospitalFactory, UnitFactory

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db]


class JsonLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_a_raw_event_id_is_found_at_the_worker_and_at_the_hub(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    site = "trc" + uuid.uuid4().hex[:8]
    regional = f"test.{site}.regional"
    create_topics(kafka_bootstrap, raw_topic(site), regional, f"{regional}.dlq")
    hospital: Hospital = HospitalFactory(site_code=site)  # type: ignore[assignment]
    for code, unit_type in UNITS:
        UnitFactory(hospital=hospital, code=code, unit_type=unit_type.value)
    site_key = generate_signing_key()
    services.agent_register(hospital=hospital, name="deid", public_key=public_key_b64(site_key))

    keystore = PatientKeyStore(tmp_path / "keys.sqlite", MasterKeyRing.generate_b64())
    twin = SyntheticSite(site, seed=5, keystore=keystore)
    snapshot = twin.census(datetime.now(UTC).replace(second=0, microsecond=0))[0]
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    producer.produce(raw_topic(site), key=site.encode(), value=snapshot.encode())
    assert producer.flush(30) == 0

    governance = generate_signing_key()
    policy = load_policy(
        sign_policy(default_policy_document(), governance), governance.public_key()
    )
    handler = JsonLines()
    loggers = [logging.getLogger(n) for n in ("deid.worker", "hub.census.ingest")]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        worker = DeidWorker(
            WorkerConfig(
                site_code=site,
                bootstrap=kafka_bootstrap,
                output_topic=regional,
                control_topic=f"test.{site}.control",
                regional_deadletter_topic=f"test.{site}.deadletter",
                exit_when_idle=2.0,
                window_max_seconds=1.0,
                stats_interval=60,
            ),
            signing_key=site_key,
            keystore=keystore,
            policy=policy,
            governance_keys=[governance.public_key()],
        )
        assert worker.run() == 0
        hub = RegionalConsumer(
            bootstrap=kafka_bootstrap,
            topic=regional,
            group=f"{regional}.hub",
            deadletter_topic=f"{regional}.dlq",
        )
        hub.run(threading.Event(), idle_exit_after=3.0)
    finally:
        keystore.close()
        for lg, level in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)

    raw_id = snapshot.event_id
    found = [
        line
        for line in handler.lines
        if raw_id in (line.get("event_id"), line.get("source_event_id"))
    ]
    by_logger: dict[str, list[dict[str, str]]] = {}
    for line in found:
        by_logger.setdefault(line["logger"], []).append(line)
    # The worker consumed it, and released it under each audience of the default policy ...
    assert any(line["event_id"] == raw_id for line in by_logger["deid.worker"])
    released = [line for line in by_logger["deid.worker"] if line.get("source_event_id")]
    assert released
    # ... and the hub stored those very records, from the same envelopes.
    stored = by_logger["hub.census.ingest"]
    assert {line["event_id"] for line in stored} == {line["event_id"] for line in released}
    assert {line["batch_id"] for line in stored} == {line["batch_id"] for line in released}
    assert {line["site"] for line in found} == {site}
