"""The worker's release bookkeeping: capacity records go out at once, flow events wait for their
window, and a partition is never released out of offset order."""

from __future__ import annotations

from deid.contracts.raw import RawCensusSnapshot, RawFlowEvent, RawHeartbeat
from deid.contracts.topics import CAPACITY_PARTITION, FLOW_PARTITION
from deid.windowing import ReleaseBuffer, needs_window, raw_partition


def test_capacity_records_are_released_at_once() -> None:
    buffer: ReleaseBuffer[str] = ReleaseBuffer(max_records=100, max_seconds=0.25)
    buffer.add("p0", "census-1", is_flow=False, now=10.0)
    buffer.add("p0", "heartbeat-1", is_flow=False, now=10.0)
    assert buffer.take(10.0) == ["census-1", "heartbeat-1"]
    assert len(buffer) == 0


def test_flow_events_wait_for_the_window_while_capacity_goes_out() -> None:
    buffer: ReleaseBuffer[str] = ReleaseBuffer(max_records=100, max_seconds=0.25)
    buffer.add("p1", "flow-1", is_flow=True, now=10.0)
    buffer.add("p0", "census-1", is_flow=False, now=10.05)
    assert buffer.take(10.05) == ["census-1"]
    assert buffer.deadline == 10.25
    assert abs(buffer.wait(10.05, cap=0.5) - 0.2) < 1e-9
    buffer.add("p1", "flow-2", is_flow=True, now=10.1)
    assert buffer.take(10.2) == []
    assert buffer.take(10.25) == ["flow-1", "flow-2"]
    assert buffer.deadline is None
    assert buffer.flows == 0


def test_a_partition_with_a_waiting_flow_holds_what_follows_it() -> None:
    # A producer that mixes kinds on one partition: the census after the flow event must not
    # overtake it, or the committed offset would skip the unreleased flow event.
    buffer: ReleaseBuffer[str] = ReleaseBuffer(max_records=100, max_seconds=1.0)
    buffer.add("p0", "flow-1", is_flow=True, now=0.0)
    buffer.add("p0", "census-1", is_flow=False, now=0.1)
    assert buffer.take(0.5) == []
    assert buffer.take(1.0) == ["flow-1", "census-1"]


def test_the_window_closes_at_max_records_before_its_deadline() -> None:
    buffer: ReleaseBuffer[int] = ReleaseBuffer(max_records=3, max_seconds=60.0)
    for i in range(3):
        buffer.add("p1", i, is_flow=True, now=0.0)
    assert buffer.window_due(0.0)
    assert buffer.take(0.0) == [0, 1, 2]


def test_the_window_takes_every_partition_together() -> None:
    buffer: ReleaseBuffer[str] = ReleaseBuffer(max_records=100, max_seconds=0.25)
    buffer.add("a", "flow-a", is_flow=True, now=0.0)
    buffer.add("b", "flow-b", is_flow=True, now=0.2)  # joins the window opened by "a"
    assert buffer.take(0.25) == ["flow-a", "flow-b"]


def test_flush_and_pending_return_everything_buffered() -> None:
    buffer: ReleaseBuffer[str] = ReleaseBuffer(max_records=100, max_seconds=5.0)
    buffer.add("p1", "flow-1", is_flow=True, now=0.0)
    assert buffer.pending() == ["flow-1"]
    assert buffer.take(0.1, flush=True) == ["flow-1"]
    assert buffer.pending() == []
    assert buffer.wait(0.1, cap=0.5) == 0.5


def test_only_census_and_heartbeats_skip_the_window() -> None:
    assert not needs_window(RawCensusSnapshot.record_type)
    assert not needs_window(RawHeartbeat.record_type)
    assert needs_window(RawFlowEvent.record_type)
    assert needs_window("raw.flow_event.plain")
    assert needs_window(None)
    assert needs_window("something.new")


def test_raw_partition_by_kind() -> None:
    assert raw_partition(RawCensusSnapshot.record_type, 3) == CAPACITY_PARTITION
    assert raw_partition(RawHeartbeat.record_type, 3) == CAPACITY_PARTITION
    assert raw_partition(RawFlowEvent.record_type, 3) == FLOW_PARTITION
    assert raw_partition(RawFlowEvent.record_type, 1) is None
    assert raw_partition(RawCensusSnapshot.record_type, 0) is None
