"""Offsets after a rebalance: a commit the group no longer accepts is not a failure."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from hub.census.consumer import RegionalConsumer


class Message:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def topic(self) -> str:
        return "regional"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class Refusing:
    def __init__(self, code: int) -> None:
        self.code = code
        self.calls: list[Any] = []

    def commit(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        raise KafkaException(KafkaError(self.code))


def member(code: int) -> tuple[RegionalConsumer, Refusing]:
    consumer = RegionalConsumer(
        bootstrap="127.0.0.1:1", topic="regional", group="g", deadletter_topic="dlq"
    )
    consumer.consumer.close()
    refusing = Refusing(code)
    consumer.consumer = refusing  # type: ignore[assignment]
    return consumer, refusing


def test_a_commit_refused_after_a_rebalance_leaves_the_batch_to_be_replayed() -> None:
    consumer, refusing = member(KafkaError.ILLEGAL_GENERATION)
    consumer._commit([Message(4), Message(9)])  # type: ignore[list-item]
    assert [o.offset for o in refusing.calls[0]["offsets"]] == [10]


def test_any_other_commit_failure_stops_the_member() -> None:
    consumer, _ = member(KafkaError._MSG_TIMED_OUT)
    with pytest.raises(KafkaException):
        consumer._commit([Message(1)])  # type: ignore[list-item]
