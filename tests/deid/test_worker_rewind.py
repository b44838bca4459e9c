"""Where the worker seeks back to when a window's transaction fails: that window's first
offsets, those of the windows consumed after it and not committed yet (the next one is
transformed while a window commits), and those of the records still waiting for the flow
window. No broker: the consumer's seek is recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from confluent_kafka import Message, TopicPartition

from deid.signing import generate_signing_key
from deid.worker import DeidWorker, WorkerConfig

TOPIC = "site.stm.raw.v1"


@dataclass
class _Msg:
    part: int
    off: int

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.off


def _m(part: int, off: int) -> Message:
    return cast(Message, _Msg(part, off))


class _SeekRecorder:
    def __init__(self) -> None:
        self.seeks: dict[int, int] = {}

    def seek(self, tp: TopicPartition) -> None:
        self.seeks[tp.partition] = tp.offset


def _worker() -> tuple[DeidWorker, _SeekRecorder]:
    # Client objects are created without contacting a broker; nothing here connects.
    worker = DeidWorker(
        WorkerConfig(site_code="STM", bootstrap="127.0.0.1:1"),
        signing_key=generate_signing_key(),
    )
    recorder = _SeekRecorder()
    worker.consumer = recorder  # type: ignore[assignment]
    return worker, recorder


def test_the_window_after_a_failed_one_is_read_again_even_on_another_partition() -> None:
    worker, recorder = _worker()
    failed = [_m(0, 40), _m(0, 41)]  # census snapshots, capacity partition
    following = [_m(1, 500), _m(1, 501), _m(1, 502)]  # flow events, transformed meanwhile
    worker._unfinished = [failed, following]
    worker._buffer.add((TOPIC, 1), _m(1, 503), is_flow=True, now=0.0)

    worker._rewind({(TOPIC, 0): 40})

    assert recorder.seeks == {0: 40, 1: 500}
    assert worker._unfinished == []
    assert len(worker._buffer) == 0


def test_a_rewind_goes_back_to_the_earliest_offset_of_each_partition() -> None:
    worker, recorder = _worker()
    worker._unfinished = [[_m(1, 700), _m(0, 9)], [_m(1, 650)]]

    worker._rewind({(TOPIC, 1): 700, (TOPIC, 0): 9})

    assert recorder.seeks == {0: 9, 1: 650}
