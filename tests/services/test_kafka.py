"""The real broker: idempotent keyed produce, consumer-group read in order, committed offsets."""

from collections import defaultdict

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.kafka

RECORDS = 1_000
KEYS = [f"site-{n}" for n in range(7)]


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
    )
    futures[topic].result(timeout=30)


def consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )


def drain(c: Consumer, want: int, idle_polls: int = 10) -> list[tuple[str, int]]:
    got: list[tuple[str, int]] = []
    idle = 0
    while len(got) < want or idle < 2:
        messages = c.consume(num_messages=500, timeout=1.0)
        if not messages:
            idle += 1
            if idle >= idle_polls:
                break
            continue
        idle = 0
        for m in messages:
            error = m.error()
            assert error is None or error.code() == KafkaError._PARTITION_EOF, error
            key, value = m.key(), m.value()
            if error is None and key is not None and value is not None:
                got.append((key.decode(), int(value)))
    return got


def test_idempotent_keyed_records_come_back_in_order_and_commits_hold(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    create_topic(kafka_bootstrap, unique_topic)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    failures: list[object] = []
    for n in range(RECORDS):
        producer.produce(
            unique_topic,
            key=KEYS[n % len(KEYS)],
            value=str(n).encode(),
            on_delivery=lambda err, _msg: failures.append(err) if err else None,
        )
    assert producer.flush(30) == 0
    assert failures == []

    group = f"{unique_topic}.group"
    first = consumer(kafka_bootstrap, group)
    first.subscribe([unique_topic])
    records = drain(first, RECORDS)
    first.commit(asynchronous=False)
    first.close()

    assert len(records) == RECORDS
    assert sorted(value for _, value in records) == list(range(RECORDS))
    per_key: dict[str, list[int]] = defaultdict(list)
    for key, value in records:
        per_key[key].append(value)
    for key, values in per_key.items():
        assert values == sorted(values), f"records of {key} came out of order"

    second = consumer(kafka_bootstrap, group)
    second.subscribe([unique_topic])
    assert drain(second, 0, idle_polls=5) == []
    second.close()
