"""The consumer outside a caller's transaction, as ``manage.py consume`` runs it: a writer
thread stores one batch while the next is verified. Every record is stored once, dead
letters go out, and the offsets are committed after the writes."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from deid.signing import generate_signing_key
from hub.census.consumer import ConsumerStats, RegionalConsumer
from hub.census.models import CensusSnapshot
from hub.census.services import IngestCounts
from tests.hub.census.test_consumer import create_topics, produce, read_all
from tests.hub.support import census, enrolled_site, seal


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_batches_written_on_the_writer_thread_are_stored_once_then_committed(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    dlq = f"{unique_topic}.dlq"
    create_topics(kafka_bootstrap, unique_topic, dlq, partitions=2)
    hospital, key, _ = enrolled_site()
    site = hospital.site_code
    envelopes = [seal([census(site) for _ in range(20)], key, site) for _ in range(30)]
    forged = seal([census(site)], generate_signing_key(), site)
    produce(
        kafka_bootstrap,
        unique_topic,
        [(site, e) for e in envelopes] + [(site, envelopes[3]), (site, forged)],
    )
    writer_threads: set[str] = set()
    consumer = RegionalConsumer(
        bootstrap=kafka_bootstrap,
        topic=unique_topic,
        group=f"{unique_topic}.hub",
        deadletter_topic=dlq,
        batch_size=2,  # many small batches: each is written while the next is verified
    )
    write = consumer._write

    def spy(batch: Any) -> IngestCounts:
        writer_threads.add(threading.current_thread().name)
        return write(batch)

    consumer._write = spy  # type: ignore[method-assign]
    seen: list[int] = []

    def on_batch(counts: IngestCounts, stats: ConsumerStats) -> None:
        seen.append(stats.batches)

    consumer.on_batch = on_batch
    stats = consumer.run(threading.Event(), idle_exit_after=3.0)

    assert all(name.startswith("hub-ingest-writer") for name in writer_threads), writer_threads
    assert CensusSnapshot.objects.filter(site_code=site).count() == 600
    assert (stats.duplicates, stats.rejected) == (20, 1)
    assert seen == list(range(1, stats.batches + 1))  # finished one by one, in order
    assert len(read_all(kafka_bootstrap, dlq, 1)) == 1
    again = RegionalConsumer(
        bootstrap=kafka_bootstrap,
        topic=unique_topic,
        group=f"{unique_topic}.hub",
        deadletter_topic=dlq,
    )
    assert again.run(threading.Event(), idle_exit_after=2.0).envelopes == 0


class _Broker:
    """consume() and poll() of a consumer, recorded."""

    def __init__(self, queued: list[str], arriving: str | None) -> None:
        self.queued = queued
        self.arriving = arriving
        self.calls: list[tuple[str, float]] = []

    def consume(self, n: int, timeout: float) -> list[str]:
        self.calls.append(("consume", timeout))
        taken, self.queued = self.queued[:n], self.queued[n:]
        return taken

    def poll(self, timeout: float) -> str | None:
        self.calls.append(("poll", timeout))
        first, self.arriving = self.arriving, None
        if first is not None:
            self.queued = ["late-1", "late-2"]
        return first


def member(broker: _Broker, batch_size: int = 3) -> RegionalConsumer:
    consumer = RegionalConsumer(
        bootstrap="127.0.0.1:1", topic="t", group="g", deadletter_topic="d", batch_size=batch_size
    )
    consumer.consumer.close()
    consumer.consumer = broker  # type: ignore[assignment]
    return consumer


def test_a_backlog_is_taken_without_waiting() -> None:
    broker = _Broker(["a", "b", "c", "d"], arriving=None)
    assert member(broker)._fetch(0.1) == ["a", "b", "c"]
    assert broker.calls == [("consume", 0)]


def test_when_idle_only_the_first_message_is_waited_for() -> None:
    broker = _Broker([], arriving="first")
    assert member(broker)._fetch(0.1) == ["first", "late-1", "late-2"]
    # consume(n, timeout) would wait for n messages or the whole timeout: never asked to.
    assert broker.calls == [("consume", 0), ("poll", 0.1), ("consume", 0)]


def test_with_a_batch_being_written_nothing_is_waited_for() -> None:
    broker = _Broker([], arriving="first")
    assert member(broker)._fetch(0.0) == []
    assert broker.calls == [("consume", 0)]
