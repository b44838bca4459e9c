"""The consumer against the real broker: batches in, dead letters out, offsets after commit."""

from __future__ import annotations

import threading
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from deid.signing import generate_signing_key
from hub.census.consumer import RegionalConsumer
from hub.census.models import CensusSnapshot, FlowEvent
from tests.hub.support import census, enrolled_site, flow, seal

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.django_db]


def create_topics(bootstrap: str, *topics: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics]
    )
    for future in futures.values():
        future.result(timeout=30)


def produce(bootstrap: str, topic: str, messages: list[tuple[str, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value in messages:
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(30) == 0


def read_all(bootstrap: str, topic: str, want: int) -> list[object]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}.reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list[object] = []
    for _ in range(30):
        got += [m for m in consumer.consume(100, 1.0) if m.error() is None]
        if len(got) >= want:
            break
    consumer.close()
    return got


def test_the_consumer_stores_every_record_once_and_dead_letters_the_rest(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    dlq = f"{unique_topic}.dlq"
    create_topics(kafka_bootstrap, unique_topic, dlq)
    hospital, key, _ = enrolled_site()
    site = hospital.site_code
    envelopes = [
        seal([census(site) for _ in range(40)] + [flow(site)], key, site) for _ in range(5)
    ]
    forged = seal([census(site)], generate_signing_key(), site)
    # The first envelope twice: a producer retry after a lost acknowledgement.
    produce(
        kafka_bootstrap,
        unique_topic,
        [(site, e) for e in envelopes] + [(site, envelopes[0]), (site, forged)],
    )

    consumer = RegionalConsumer(
        bootstrap=kafka_bootstrap,
        topic=unique_topic,
        group=f"{unique_topic}.hub",
        deadletter_topic=dlq,
        batch_size=3,
    )
    stats = consumer.run(threading.Event(), idle_exit_after=3.0)

    assert CensusSnapshot.objects.filter(site_code=site).count() == 200
    assert FlowEvent.objects.filter(site_code=site).count() == 5
    assert stats.duplicates == 41
    assert stats.rejected == 1
    letters = read_all(kafka_bootstrap, dlq, 1)
    assert len(letters) == 1
    headers = dict(letters[0].headers())  # type: ignore[attr-defined]
    assert headers["reason"] == b"envelope: signed with a key not registered for this site"
    assert headers["source_topic"] == unique_topic.encode()

    # Offsets were committed: a restarted member of the group reads nothing again.
    again = RegionalConsumer(
        bootstrap=kafka_bootstrap,
        topic=unique_topic,
        group=f"{unique_topic}.hub",
        deadletter_topic=dlq,
    )
    assert again.run(threading.Event(), idle_exit_after=2.0).envelopes == 0


def test_an_unparseable_message_is_dead_lettered_not_fatal(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    dlq = f"{unique_topic}.dlq"
    create_topics(kafka_bootstrap, unique_topic, dlq, partitions=1)
    hospital, key, _ = enrolled_site()
    good = seal([census(hospital.site_code)], key, hospital.site_code)
    produce(kafka_bootstrap, unique_topic, [("x", b"\xff not json"), (hospital.site_code, good)])
    consumer = RegionalConsumer(
        bootstrap=kafka_bootstrap,
        topic=unique_topic,
        group=f"{uuid.uuid4().hex}.hub",
        deadletter_topic=dlq,
    )
    stats = consumer.run(threading.Event(), idle_exit_after=2.0)
    assert (stats.census, stats.rejected) == (1, 1)
