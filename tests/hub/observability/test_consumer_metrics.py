"""Metrics of the hub consumer: ingest by kind, dead letters, batch duration, lag."""

from __future__ import annotations

import json

from prometheus_client import generate_latest

from hub.census.consumer import ConsumerStats
from hub.census.services import IngestCounts
from hub.observability.consumer import ConsumerMetrics, reason_label


def _value(metrics: ConsumerMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


def test_a_batch_counts_records_by_kind_envelopes_dead_letters_and_duration() -> None:
    metrics = ConsumerMetrics()
    stats = ConsumerStats(envelopes=3)
    stats.last_batch_seconds = 0.042
    stats.last_rejection_reasons = (
        "envelope: signature does not verify (key k-1)",
        "envelope: unknown or inactive site",
        "outbox_backlog: out of range",
    )
    counts = IngestCounts(
        census_inserted=10, flow_inserted=5, duplicates=2, heartbeats=1, rejected=3
    )
    metrics.observe(counts, stats)
    stats.envelopes = 4  # cumulative: one more envelope in the next batch
    stats.last_rejection_reasons = ()
    metrics.observe(IngestCounts(0, 1, 0, 0, 0), stats)

    assert _value(metrics, "hub_consumer_records_total", {"kind": "census"}) == 10
    assert _value(metrics, "hub_consumer_records_total", {"kind": "flow"}) == 6
    assert _value(metrics, "hub_consumer_records_total", {"kind": "duplicate"}) == 2
    assert _value(metrics, "hub_consumer_records_total", {"kind": "heartbeat"}) == 1
    assert _value(metrics, "hub_consumer_envelopes_total") == 4
    assert _value(metrics, "hub_consumer_dead_letters_total", {"reason": "envelope"}) == 2
    assert _value(metrics, "hub_consumer_dead_letters_total", {"reason": "outbox_backlog"}) == 1
    assert _value(metrics, "hub_consumer_batch_duration_seconds_count") == 2
    assert _value(metrics, "hub_consumer_batch_duration_seconds_bucket", {"le": "0.05"}) == 2


def test_reason_labels_are_bounded() -> None:
    assert reason_label("envelope: signed with a key not registered for this site") == "envelope"
    assert reason_label("") == "unknown"
    assert len(reason_label("x" * 500)) == 40


def _stats(partitions: dict[str, int]) -> str:
    return json.dumps(
        {
            "topics": {
                "regional.deid.v1": {
                    "partitions": {
                        p: {"partition": int(p), "consumer_lag": lag}
                        for p, lag in partitions.items()
                    }
                }
            }
        }
    )


def test_lag_comes_from_librdkafka_statistics_and_follows_the_assignment() -> None:
    metrics = ConsumerMetrics()
    metrics.on_stats(_stats({"0": 120, "1": 0, "2": -1, "-1": 5}))
    lag = {"topic": "regional.deid.v1"}
    assert _value(metrics, "hub_consumer_lag", {**lag, "partition": "0"}) == 120
    assert metrics.registry.get_sample_value("hub_consumer_lag", {**lag, "partition": "1"}) == 0
    # Not assigned (-1) and the internal "-1" partition: no series at all.
    assert metrics.registry.get_sample_value("hub_consumer_lag", {**lag, "partition": "2"}) is None
    assert metrics.registry.get_sample_value("hub_consumer_lag", {**lag, "partition": "-1"}) is None
    # A rebalance took partition 0 away: its series goes.
    metrics.on_stats(_stats({"0": -1, "1": 7}))
    assert metrics.registry.get_sample_value("hub_consumer_lag", {**lag, "partition": "0"}) is None
    assert _value(metrics, "hub_consumer_lag", {**lag, "partition": "1"}) == 7


def test_unreadable_statistics_are_ignored() -> None:
    metrics = ConsumerMetrics()
    metrics.on_stats("{not json")
    assert b"hub_consumer_lag{" not in generate_latest(metrics.registry)


def test_the_statistics_callback_is_wired_into_the_consumer_settings() -> None:
    metrics = ConsumerMetrics()
    conf = metrics.consumer_config()
    assert conf["stats_cb"] == metrics.on_stats
    assert conf["statistics.interval.ms"] > 0
