"""Metrics of the hub consumer (``manage.py consume``), served on ``METRICS_PORT``.

Records ingested by kind, envelopes, dead letters by reason, batch duration (poll to offset
commit) and consumer lag per partition. Lag comes from librdkafka's own statistics
(``statistics.interval.ms``, the ``stats_cb`` callback, served inside ``consume()``), so
measuring it costs no extra broker request. One registry per consumer, so tests can run
several in one process.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hub.census.consumer import ConsumerStats
from hub.census.services import IngestCounts
from hub.observability.exposition import serve_metrics

log = logging.getLogger("hub.observability.consumer")

STATISTICS_INTERVAL_MS = 10_000


def reason_label(reason: str) -> str:
    """The part of a rejection reason before its first colon ("envelope", a field name):
    a bounded label, where the full reason holds details such as key ids."""
    return reason.split(":", 1)[0].strip()[:40] or "unknown"


class ConsumerMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.records = Counter(
            "hub_consumer_records",
            "Records handled, by kind: census, flow, heartbeat inserted; duplicate (event_id "
            "already stored); erased (dropped: patient erased)",
            ["kind"],
            registry=r,
        )
        self.envelopes = Counter("hub_consumer_envelopes", "Signed envelopes consumed", registry=r)
        self.dead_letters = Counter(
            "hub_consumer_dead_letters",
            "Envelopes or records refused and sent to the dead-letter topic, by reason",
            ["reason"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "hub_consumer_batch_duration_seconds",
            "From a polled batch in hand to its offsets committed (verify, upsert, commit)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.lag = Gauge(
            "hub_consumer_lag",
            "Messages between this member's position and the partition's high watermark",
            ["topic", "partition"],
            registry=r,
        )
        self._lag_labels: set[tuple[str, str]] = set()
        self._envelopes_seen = 0

    def serve(self, port: int) -> None:
        serve_metrics(port, self.registry)

    def consumer_config(self) -> dict[str, Any]:
        """librdkafka settings that feed :meth:`on_stats`."""
        return {"statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": self.on_stats}

    def observe(self, counts: IngestCounts, stats: ConsumerStats) -> None:
        """The consumer's ``on_batch`` hook: one committed batch."""
        for kind, value in (
            ("census", counts.census_inserted),
            ("flow", counts.flow_inserted),
            ("heartbeat", counts.heartbeats),
            ("duplicate", counts.duplicates),
            ("erased", counts.erased),
        ):
            if value:
                self.records.labels(kind).inc(value)
        self.envelopes.inc(stats.envelopes - self._envelopes_seen)  # stats are cumulative
        self._envelopes_seen = stats.envelopes
        self.batch_seconds.observe(stats.last_batch_seconds)
        for reason in stats.last_rejection_reasons:
            self.dead_letters.labels(reason_label(reason)).inc()

    def on_stats(self, payload: str) -> None:
        """librdkafka statistics (JSON): ``consumer_lag`` of each assigned partition; -1
        means not assigned to this member (any more), so the series is dropped."""
        try:
            topics = json.loads(payload).get("topics", {})
        except ValueError:
            log.warning("unreadable librdkafka statistics")
            return
        seen: set[tuple[str, str]] = set()
        for topic, data in topics.items():
            for partition, p in data.get("partitions", {}).items():
                lag = p.get("consumer_lag", -1)
                if partition == "-1" or not isinstance(lag, int) or lag < 0:
                    continue
                self.lag.labels(topic, partition).set(lag)
                seen.add((topic, partition))
        for gone in self._lag_labels - seen:
            self.lag.remove(*gone)
        self._lag_labels = seen
