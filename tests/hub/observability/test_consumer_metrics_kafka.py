"""The consumer's metrics and id-carrying log lines against the real broker and database."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from deid.signing import generate_signing_key
from hub.census.consumer import RegionalConsumer
from hub.observability.consumer import ConsumerMetrics
from tests.hub.census.test_consumer import create_topics, produce
from tests.hub.support import census, enrolled_site, seal

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.django_db]


def test_a_real_run_counts_records_dead_letters_and_reports_lag(
    kafka_bootstrap: str, unique_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    dlq = f"{unique_topic}.dlq"
    create_topics(kafka_bootstrap, unique_topic, dlq, partitions=1)
    hospital, key, _ = enrolled_site()
    site = hospital.site_code
    records = [census(site) for _ in range(30)]
    envelopes = [seal(records[n : n + 10], key, site) for n in (0, 10, 20)]
    forged = seal([census(site)], generate_signing_key(), site)
    produce(kafka_bootstrap, unique_topic, [(site, e) for e in [*envelopes, forged]])

    metrics = ConsumerMetrics()
    consumer = RegionalConsumer(
        bootstrap=kafka_bootstrap,
        topic=unique_topic,
        group=f"{unique_topic}.hub",
        deadletter_topic=dlq,
        batch_size=2,
        on_batch=metrics.observe,
        # Statistics every 0.5 s rather than 10 s, so the lag is reported within the test.
        consumer_extra={**metrics.consumer_config(), "statistics.interval.ms": 500},
    )
    with caplog.at_level(logging.DEBUG, logger="hub.census.ingest"):
        consumer.run(threading.Event(), idle_exit_after=3.0)

    value = metrics.registry.get_sample_value
    assert value("hub_consumer_records_total", {"kind": "census"}) == 30
    assert value("hub_consumer_envelopes_total") == 4
    assert value("hub_consumer_dead_letters_total", {"reason": "envelope"}) == 1
    assert value("hub_consumer_batch_duration_seconds_count") == 2  # 4 messages, batches of 2
    # Everything was consumed and committed: librdkafka reports the partition caught up.
    assert value("hub_consumer_lag", {"topic": unique_topic, "partition": "0"}) == 0

    # The envelope's batch id at info, each record's event ids at debug.
    opened = [r for r in caplog.records if getattr(r, "batch_id", None)]
    batch_ids = {r.batch_id for r in opened if r.levelno == logging.INFO}  # type: ignore[attr-defined]
    assert batch_ids == {json.loads(e)["batch_id"] for e in envelopes}
    traced = {
        (r.event_id, r.source_event_id)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.levelno == logging.DEBUG and getattr(r, "event_id", None)
    }
    assert traced == {(r.event_id, r.source_event_id) for r in records}
