"""Small helpers for the DE-ID tests that run against the real broker."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from deid.contracts import RegionalRecord, verify_envelope
from deid.contracts.raw import RawRecord
from deid.contracts.topics import RECORD_TYPE_HEADER
from deid.signing import PublicKeys
from deid.windowing import raw_partition


def create_topics(bootstrap: str, topics: Iterable[str], partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics]
    for future in admin.create_topics(new, operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception as exc:  # an existing topic is fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def produce(bootstrap: str, topic: str, key: bytes, values: Iterable[bytes | None]) -> int:
    """Produce in batches (idempotent, lz4) and wait for every delivery."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        }
    )
    failures: list[Any] = []
    count = 0
    for value in values:
        while True:
            try:
                producer.produce(
                    topic, key=key, value=value,
                    on_delivery=lambda err, _m: failures.append(err) if err else None,
                )  # fmt: skip
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    assert failures == []
    return count


def produce_as_relay(
    bootstrap: str, topic: str, key: bytes, records: Iterable[RawRecord], partitions: int = 3
) -> None:
    """Produce raw records the way the site agent's relay does: each kind on its partition
    (`raw_partition`), with its `record_type` header."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for record in records:
        partition = raw_partition(record.record_type, partitions)
        assert partition is not None, "a topic of one partition has no separate kinds"
        producer.produce(
            topic,
            key=key,
            value=record.encode(),
            partition=partition,
            headers=[(RECORD_TYPE_HEADER, record.record_type.encode())],
        )
        producer.poll(0)
    assert producer.flush(60) == 0


def consume_all(bootstrap: str, topic: str) -> list[Any]:
    """Every committed message of `topic` (read_committed) up to the end offsets it had when
    called, without a consumer group join. Stops at the snapshot even while a producer keeps
    writing, so tests can poll a live stream."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = list(metadata.topics[topic].partitions) if topic in metadata.topics else []
    ends = {p: _end_offset(consumer, topic, p) for p in partitions}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    out: list[Any] = []
    pending = {p for p in partitions if ends[p] > 0}
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=1000, timeout=0.2):
            err = m.error()
            if err is None:
                out.append(m)
            elif err.code() == KafkaError._PARTITION_EOF:
                pending.discard(m.partition())
            else:
                raise AssertionError(str(err))
        for p in list(pending):
            # The position passes commit markers too: at the snapshot end, this partition
            # has given every record that was committed when we started.
            position = consumer.position([TopicPartition(topic, p)])[0].offset
            if position >= ends[p]:
                pending.discard(p)
    consumer.close()
    return out


def _end_offset(consumer: Consumer, topic: str, partition: int) -> int:
    deadline = time.monotonic() + 60
    while True:
        try:
            return int(
                consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
            )
        except KafkaException:
            # Right after a broker restart the partition may have no leader for a moment.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def regional_records(messages: Iterable[Any], public_key: PublicKeys) -> list[RegionalRecord]:
    records: list[RegionalRecord] = []
    for m in messages:
        records.extend(verify_envelope(m.value(), public_key))
    return records


def headers(message: Any) -> dict[str, str]:
    return {k: (v or b"").decode() for k, v in (message.headers() or [])}
