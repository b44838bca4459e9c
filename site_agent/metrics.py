"""Prometheus metrics of the agent (``METRICS_PORT`` turns the endpoint on; docs/deploy.md).

HL7 messages by trigger and ACK code, ACK latency (frame received → ACK written), FHIR
requests by status, stale feeds, outbox depth and the age of its oldest row, and records
published. One registry per agent, so tests can run several agents in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.hl7 = Counter(
            "site_agent_hl7_messages",
            "HL7 messages by trigger event and MSA-1 code",
            ["trigger", "ack"],
            registry=r,
        )
        self.ack_latency = Histogram(
            "site_agent_ack_latency_seconds",
            "From the end of an MLLP frame to its ACK being written (stored first)",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.batch_size = Histogram(
            "site_agent_commit_batch_size",
            "Inputs committed together in one SQLite transaction (group commit)",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 512),
            registry=r,
        )
        self.fhir = Counter(
            "site_agent_fhir_requests", "FHIR requests by HTTP status", ["status"], registry=r
        )
        self.stale_feeds = Gauge("site_agent_stale_feeds", "Feeds that are stale", registry=r)
        self.backlog = Gauge(
            "site_agent_outbox_backlog", "Outbox rows not yet published", registry=r
        )
        self.oldest = Gauge(
            "site_agent_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row (0 when empty)",
            registry=r,
        )
        self.published = Counter(
            "site_agent_records_published", "Records delivered to Kafka", registry=r
        )

    def serve(self, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 (in-cluster)  # nosec B104
        start_http_server(port, addr=host, registry=self.registry)
