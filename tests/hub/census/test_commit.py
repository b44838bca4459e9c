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


def test_an_asynchronous_commit_refused_after_a_rebalance_is_only_logged() -> None:
    consumer, _ = member(KafkaError.REBALANCE_IN_PROGRESS)
    consumer._on_commit(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), [])
    assert consumer._commit_error is None


def test_any_other_asynchronous_commit_failure_is_kept_to_stop_the_member() -> None:
    consumer, _ = member(KafkaError._MSG_TIMED_OUT)
    consumer._on_commit(KafkaError(KafkaError._MSG_TIMED_OUT), [])
    assert consumer._commit_error is not None
    assert consumer._commit_error.args[0].code() == KafkaError._MSG_TIMED_OUT


def test_offsets_sent_asynchronously_are_committed_again_and_waited_for_at_the_end() -> None:
    consumer, refusing = member(KafkaError.ILLEGAL_GENERATION)
    sent: list[Any] = []
    refusing.commit = lambda **kwargs: sent.append(kwargs)  # type: ignore[method-assign]
    consumer._commit([Message(4), Message(9)], asynchronous=True)  # type: ignore[list-item]
    consumer._commit_sent()
    assert [(c["asynchronous"], [o.offset for o in c["offsets"]]) for c in sent] == [
        (True, [10]),
        (False, [10]),
    ]
    consumer._commit_sent()  # nothing new: nothing sent again
    assert len(sent) == 2
