"""``manage.py consume``: one member of the hub's consumer group on the regional topic."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from hub.census import conf
from hub.census.consumer import ConsumerStats, RegionalConsumer
from hub.census.services import IngestCounts
from hub.observability.consumer import ConsumerMetrics
from hub.observability.exposition import metrics_port

log = logging.getLogger("hub.consume")


class Command(BaseCommand):
    help = (
        "Consume de-identified envelopes from the regional topic into PostgreSQL. Run several "
        "to share the partitions. SIGTERM/SIGINT: finish the batch, commit, exit 0."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--topic", default=conf.regional_topic())
        parser.add_argument("--group", default=conf.consumer_group())
        parser.add_argument("--deadletter-topic", default=conf.deadletter_topic())
        parser.add_argument("--bootstrap", default=settings.KAFKA_BOOTSTRAP_SERVERS)
        parser.add_argument("--batch-size", type=int, default=conf.consumer_batch())
        parser.add_argument(
            "--exit-when-idle",
            type=float,
            default=None,
            help="Exit after this many seconds without messages (tests, backfills).",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        stop = threading.Event()

        def _stop(signum: int, _frame: Any) -> None:
            log.info("signal %d: finishing the batch in hand, then exiting", signum)
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

        def report(counts: IngestCounts, stats: ConsumerStats) -> None:
            if stats.batches % 100 == 1 or counts.rejected:
                log.info(
                    "batches=%d census=%d flow=%d heartbeats=%d duplicates=%d rejected=%d",
                    stats.batches,
                    stats.census,
                    stats.flow,
                    stats.heartbeats,
                    stats.duplicates,
                    stats.rejected,
                )

        # Prometheus on METRICS_PORT (hub/observability/consumer.py): ingest, dead letters,
        # batch duration, lag.
        metrics = ConsumerMetrics()
        port = metrics_port()
        if port is not None:
            metrics.serve(port)
            log.info("metrics on port %d", port)

        def on_batch(counts: IngestCounts, stats: ConsumerStats) -> None:
            metrics.observe(counts, stats)
            report(counts, stats)

        consumer = RegionalConsumer(
            bootstrap=opts["bootstrap"],
            topic=opts["topic"],
            group=opts["group"],
            deadletter_topic=opts["deadletter_topic"],
            batch_size=opts["batch_size"],
            on_batch=on_batch,
            consumer_extra=metrics.consumer_config() if port is not None else None,
        )
        log.info("consuming %s as group %s", opts["topic"], opts["group"])
        stats = consumer.run(stop, idle_exit_after=opts["exit_when_idle"])
        self.stdout.write(
            f"stopped: batches={stats.batches} census={stats.census} flow={stats.flow} "
            f"heartbeats={stats.heartbeats} duplicates={stats.duplicates} "
            f"rejected={stats.rejected}"
        )
