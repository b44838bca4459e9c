"""Which consumed raw records the worker may release now, and which wait for their window.

Only patient flow events need a release window: k-anonymity (and l-diversity) are properties
of a set of records, so flow events are gathered for up to the policy's `max_seconds` (or
`max_records`) before they are transformed together. Census snapshots and heartbeats are
transformed one record at a time (exact figures for operations, small-cell and complementary
suppression within a record), so holding them back only makes the live board older.

Exactly-once still needs a partition's records to be released in offset order: the offsets
committed with a transaction say "everything before this was released". So the unit of
holding is the partition: a partition whose buffered records include a flow event waits for
the flow window; a partition holding only capacity records (census, heartbeats) is released
at once. The site agent's relay puts capacity records and flow events on different
partitions of the raw topic (`deid.contracts.topics.raw_partition`), which is what lets the
census skip the window; a producer that mixes them on one partition loses only the latency,
never a record or the order.

Pure bookkeeping, no Kafka: the worker feeds it what it consumed and asks what is ready.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from deid.contracts.raw import RawCensusSnapshot, RawHeartbeat
from deid.contracts.topics import CAPACITY_PARTITION, FLOW_PARTITION

T = TypeVar("T")

CAPACITY_RECORD_TYPES = frozenset({RawCensusSnapshot.record_type, RawHeartbeat.record_type})
"""Raw records transformed one at a time: they never wait for a release window."""


def needs_window(record_type: str | None) -> bool:
    """Whether a raw record of this type (from the relay's `record_type` header) waits for the
    flow release window. Unknown or missing types wait: that costs latency, never privacy."""
    return record_type not in CAPACITY_RECORD_TYPES


def raw_partition(record_type: str, partitions: int) -> int | None:
    """The partition of a site's raw topic for a record of this type, given how many
    partitions the topic has; None (the producer's own choice) on a one-partition topic.
    Capacity records and flow events go to different partitions so that a census snapshot
    never waits behind a flow event's release window."""
    if partitions < 2:
        return None
    return FLOW_PARTITION if needs_window(record_type) else CAPACITY_PARTITION


@dataclass
class _Partition(Generic[T]):
    items: list[T] = field(default_factory=list)
    flows: int = 0


class ReleaseBuffer(Generic[T]):
    """Consumed records by partition, in offset order, until they may be released.

    `max_seconds` after the first flow event arrives (or once `max_records` records are
    buffered) the flow window closes, and every buffered record goes out in one window, so
    all the flow events of a window are k-anonymised together whatever partition they came
    from. Partitions with no flow event waiting go out as soon as `take` is asked."""

    def __init__(self, max_records: int, max_seconds: float) -> None:
        self.max_records = max_records
        self.max_seconds = max_seconds
        self._parts: dict[Hashable, _Partition[T]] = {}
        self._flows = 0
        self._deadline: float | None = None

    def __len__(self) -> int:
        return sum(len(p.items) for p in self._parts.values())

    @property
    def flows(self) -> int:
        """Flow events waiting for their window."""
        return self._flows

    @property
    def deadline(self) -> float | None:
        """When the open flow window closes (monotonic seconds), or None with no flow waiting."""
        return self._deadline

    def add(self, partition: Hashable, item: T, *, is_flow: bool, now: float) -> None:
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = _Partition()
        part.items.append(item)
        if is_flow:
            part.flows += 1
            self._flows += 1
            if self._deadline is None:
                self._deadline = now + self.max_seconds

    def window_due(self, now: float) -> bool:
        return self._flows > 0 and (
            len(self) >= self.max_records or (self._deadline is not None and now >= self._deadline)
        )

    def room(self) -> int:
        """How many more records to consume before the window is full (at least 1)."""
        return max(1, self.max_records - len(self))

    def take(self, now: float, *, flush: bool = False) -> list[T]:
        """The records to release now, partition by partition in offset order: everything
        once the flow window is due (or with `flush`, when the worker stops), otherwise the
        partitions with no flow event waiting. What is returned is forgotten here."""
        if flush or self.window_due(now):
            out = [item for part in self._parts.values() for item in part.items]
            self.clear()
            return out
        ready = [key for key, part in self._parts.items() if part.flows == 0]
        out = []
        for key in ready:
            out.extend(self._parts.pop(key).items)
        return out

    def wait(self, now: float, cap: float) -> float:
        """How long the worker may block waiting for more records before it has something
        to release: until the flow window closes, at most `cap`."""
        if self._deadline is None:
            return cap
        return max(0.0, min(cap, self._deadline - now))

    def pending(self) -> list[T]:
        """Everything buffered, not released (to rewind to on a failed transaction)."""
        return [item for part in self._parts.values() for item in part.items]

    def clear(self) -> None:
        self._parts.clear()
        self._flows = 0
        self._deadline = None
