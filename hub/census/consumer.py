"""The hub consumer: regional topic → verified, validated rows → PostgreSQL, at least once.

The loop is poll → verify and convert → one database transaction → dead letters → commit
offsets. Offsets are committed only after the database commit, so a crash anywhere replays
the batch, and the primary key on event_id makes the replay harmless: nothing is lost and
nothing is counted twice. Several consumers in one group share the topic's partitions;
records are keyed by site, so one site's records stay in order on one partition.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from hub.census.ingest import IngestBatch, Rejection, SiteDirectory, envelope_into_batch
from hub.census.services import IngestCounts, census_ingest_batch, partitions_ensure

log = logging.getLogger(__name__)

# Commit errors that mean the group moved on (a rebalance during the batch), not a failure.
_LOST_GENERATION = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.UNKNOWN_MEMBER_ID,
    }
)


@dataclass
class ConsumerStats:
    batches: int = 0
    envelopes: int = 0
    census: int = 0
    flow: int = 0
    heartbeats: int = 0
    duplicates: int = 0
    rejected: int = 0
    # Wall-clock times (time.time()), comparable across processes: benchmarks use them.
    first_message_at: float | None = None
    last_commit_at: float | None = None
    # The last batch alone, for metrics: poll-to-commit seconds and each rejection's reason.
    last_batch_seconds: float = 0.0
    last_rejection_reasons: tuple[str, ...] = ()

    def add(self, counts: IngestCounts, envelopes: int) -> None:
        self.batches += 1
        self.envelopes += envelopes
        self.census += counts.census_inserted
        self.flow += counts.flow_inserted
        self.heartbeats += counts.heartbeats
        self.duplicates += counts.duplicates
        self.rejected += counts.rejected


def consumer_config(
    *, bootstrap: str, group: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        # Offsets are committed by hand after the database commit, never in the background.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        # Cooperative rebalancing: adding a consumer does not stop the others' partitions.
        "partition.assignment.strategy": "cooperative-sticky",
        # A member that died (kill -9, lost node) gives its partitions up after 10 s rather than
        # librdkafka's default 45 s; heartbeats every 3 s keep live members well inside it.
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 3_000,
        "fetch.min.bytes": 1,
        "max.partition.fetch.bytes": 8 * 1024 * 1024,
        **settings.KAFKA_CLIENT_CONFIG,
        **(extra or {}),
    }


def producer_config(*, bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        **settings.KAFKA_CLIENT_CONFIG,
    }


def dead_letter(
    producer: Producer,
    topic: str,
    rejection: Rejection,
    *,
    source: Message | None = None,
) -> None:
    """Send a refused envelope or record to the regional dead-letter topic with the reason.

    The payload is de-identified (it came from the regional topic), so it may travel as is.
    """
    headers: list[tuple[str, str | bytes | None]] = [
        ("reason", rejection.reason.encode()),
        ("site_code", rejection.site_code.encode()),
        ("event_id", rejection.event_id.encode()),
        ("rejected_by", b"hub.consume"),
    ]
    if source is not None:
        headers += [
            ("source_topic", (source.topic() or "").encode()),
            ("source_partition", str(source.partition()).encode()),
            ("source_offset", str(source.offset()).encode()),
        ]
    key = rejection.site_code.encode() or None
    producer.produce(topic, value=rejection.payload, key=key, headers=headers)
    log.info(
        "dead letter to %s: %s",
        topic,
        rejection.reason,
        extra={"event_id": rejection.event_id, "site": rejection.site_code},
    )


@dataclass
class _Prepared:
    """A polled batch, verified and converted, not yet stored."""

    messages: list[Message]
    batch: IngestBatch
    sources: dict[int, Message]  # rejection index → its message, for the headers
    started: float  # perf_counter() at the poll


class _Pending:
    """A batch and its write: a future of the writer thread, or an already-known result."""

    def __init__(self, prepared: _Prepared, write: Future[IngestCounts] | IngestCounts) -> None:
        self.prepared = prepared
        self._write = write

    def result(self) -> IngestCounts:
        write = self._write
        return write.result() if isinstance(write, Future) else write


def _partition_list(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)


def _close_connection() -> None:
    connection.close()


class _Writer:
    """The one thread that writes batches to PostgreSQL, on its own Django connection."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-ingest-writer")

    def submit(
        self, write: Callable[[IngestBatch], IngestCounts], batch: IngestBatch
    ) -> Future[IngestCounts]:
        return self._pool.submit(write, batch)

    def close(self, *, wait: bool) -> None:
        if wait:
            # The thread's connection is closed by the thread that opened it (``connection``
            # is looked up there, not here: Django keeps one per thread).
            self._pool.submit(_close_connection).result()
        self._pool.shutdown(wait=wait, cancel_futures=True)


class RegionalConsumer:
    """One consumer-group member. ``run`` returns when ``stop`` is set, after finishing and
    committing the batch in hand."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        group: str,
        deadletter_topic: str,
        batch_size: int = 500,
        poll_timeout: float = 0.1,
        directory: SiteDirectory | None = None,
        on_batch: Callable[[IngestCounts, ConsumerStats], None] | None = None,
        consumer_extra: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.deadletter_topic = deadletter_topic
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.directory = directory or SiteDirectory()
        self.stats = ConsumerStats()
        self.on_batch = on_batch
        self.consumer = Consumer(
            consumer_config(
                bootstrap=bootstrap,
                group=group,
                extra={"on_commit": self._on_commit, **(consumer_extra or {})},
            )
        )
        self.producer = Producer(producer_config(bootstrap=bootstrap))
        self._last_partition_check = 0.0
        self._stop = threading.Event()
        # The newest offsets sent asynchronously, committed again synchronously when the member
        # stops or gives partitions up; and a commit failure reported back, which stops it.
        self._sent_offsets: dict[tuple[str, int], int] = {}
        self._async_commits = False  # run() sends them asynchronously; process() waits
        self._last_write = 0.0
        self._commit_error: KafkaException | None = None

    def run(self, stop: threading.Event, *, idle_exit_after: float | None = None) -> ConsumerStats:
        """Consume until ``stop`` is set (or, for benchmarks and tests, until nothing arrived
        for ``idle_exit_after`` seconds).

        Two stages overlap: while one batch is written to PostgreSQL (a writer thread, with
        its own database connection, waiting on the server most of the time), the next is
        polled, verified and converted here. One batch is written at a time, in poll order,
        and each batch's dead letters and offsets go out only after its database commit. Inside
        a caller's transaction (tests) the writes stay on the caller's connection, in turn.
        """
        self._stop = stop
        assigned: list[bool] = []
        # Each batch allocates ~100,000 short-lived containers (parsed records, rows); the
        # cyclic collector would otherwise rescan every long-lived object of the process
        # (Django, the registry cache) many times per batch. Freezing what exists now moves
        # it out of the collector's way; the batches' own garbage is still collected.
        gc.collect()
        gc.freeze()

        def on_assign(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
            if partitions:
                assigned.append(True)
                log.info("assigned %s", _partition_list(partitions))

        writer = None if connection.in_atomic_block else _Writer()
        self._async_commits = True
        pending: _Pending | None = None

        def on_revoke(_consumer: Consumer, _partitions: list[TopicPartition]) -> None:
            # Partitions are leaving (inside a poll): the batch being written is finished and
            # its offsets committed while this member still owns them.
            nonlocal pending
            log.info("revoked %s", _partition_list(_partitions))
            if pending is not None:
                held, pending = pending, None
                self._finish(held)
            self._commit_sent()

        self.consumer.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke)
        idle_since: float | None = None
        try:
            while not stop.is_set():
                # With a batch being written, only take what has already arrived.
                messages = self._fetch(0.0 if pending else self.poll_timeout)
                if self._commit_error is not None:
                    raise self._commit_error
                usable = [m for m in messages if self._usable(m)]
                if not usable:
                    if pending is not None:
                        self._finish(pending)
                        pending = None
                        continue
                    # Idle time counts from the first assignment: joining a group can take
                    # a session timeout while a dead member still holds the partitions.
                    if idle_since is None and assigned:
                        idle_since = time.monotonic()
                    if (
                        idle_exit_after is not None
                        and idle_since is not None
                        and time.monotonic() - idle_since > idle_exit_after
                    ):
                        break
                    continue
                idle_since = time.monotonic()
                prepared = self._prepare(usable)
                if pending is not None:
                    self._finish(pending)
                    pending = None
                if writer is None:
                    self._finish(_Pending(prepared, self._write_step(prepared.batch)))
                else:
                    pending = _Pending(prepared, writer.submit(self._write_step, prepared.batch))
            if pending is not None:
                # Stopping (SIGTERM): the batch in hand is finished and committed first.
                self._finish(pending)
                pending = None
            self._commit_sent()
        finally:
            try:
                if writer is not None:
                    writer.close(wait=pending is None)
            finally:
                self.close()
        return self.stats

    def _fetch(self, timeout: float) -> list[Message]:
        """What has arrived, up to ``batch_size``; when nothing has, wait up to ``timeout``
        for the first message only. (``consume(n, timeout)`` would wait for n messages or
        the whole timeout: at a few records a second that is the timeout on every record.)
        Under load the fetched backlog fills whole batches; when idle a record is taken as
        soon as it arrives."""
        messages = self.consumer.consume(self.batch_size, 0)
        if messages or timeout <= 0:
            return messages
        first = self.consumer.poll(timeout)
        if first is None:
            return []
        return [first, *self.consumer.consume(self.batch_size - 1, 0)]

    def _usable(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.code() == KafkaError._PARTITION_EOF:
            return False
        if error.fatal():
            raise KafkaException(error)
        log.warning("kafka: %s", error)
        return False

    def process(self, messages: list[Message]) -> IngestCounts:
        """Handle one polled batch: verify, store in one transaction, dead-letter, commit."""
        prepared = self._prepare(messages)
        return self._finish(_Pending(prepared, self._write_step(prepared.batch)))

    def _prepare(self, messages: list[Message]) -> _Prepared:
        """Verify and convert one polled batch (no database writes)."""
        started = time.perf_counter()
        if self.stats.first_message_at is None:
            self.stats.first_message_at = time.time()
        batch = IngestBatch()
        sources: list[tuple[int, Message]] = []  # rejection index → message, for headers
        received_at = timezone.now()
        for message in messages:
            value = message.value()
            key = message.key()
            before = len(batch.rejections)
            if value is None:
                batch.rejections.append(Rejection("envelope: empty message", b""))
            else:
                envelope_into_batch(
                    value,
                    directory=self.directory,
                    batch=batch,
                    received_at=received_at,
                    via="kafka",
                    expected_site=key.decode(errors="replace") if key else None,
                )
            sources.extend((n, message) for n in range(before, len(batch.rejections)))
        return _Prepared(messages, batch, dict(sources), started)

    def _finish(self, pending: _Pending) -> IngestCounts:
        """After the batch's database commit: its dead letters, then its offsets."""
        counts = pending.result()
        prepared = pending.prepared
        batch = prepared.batch
        if batch.rejections:
            for n, rejection in enumerate(batch.rejections):
                dead_letter(
                    self.producer, self.deadletter_topic, rejection, source=prepared.sources.get(n)
                )
            # Dead letters are durable before the offsets move past their source records.
            remaining = self.producer.flush(30)
            if remaining:
                raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT))
            log.warning("%d record(s) sent to %s", len(batch.rejections), self.deadletter_topic)

        self._commit(prepared.messages, asynchronous=self._async_commits)
        self.stats.last_commit_at = time.time()
        self.stats.last_batch_seconds = time.perf_counter() - prepared.started
        self.stats.last_rejection_reasons = tuple(r.reason for r in batch.rejections)
        self.stats.add(counts, batch.envelopes)
        if self.on_batch is not None:
            self.on_batch(counts, self.stats)
        return counts

    def _write_step(self, batch: IngestBatch) -> IngestCounts:
        self._maybe_ensure_partitions()
        return self._write(batch)

    def _write(self, batch: IngestBatch) -> IngestCounts:
        """Store the batch, riding out a database that went away (restart, failover): the
        batch is retried on a fresh connection until it commits, and the offsets wait."""
        while True:
            if not connection.in_atomic_block and time.monotonic() - self._last_write > 1.0:
                # After a pause, check the connection (a health check round trip, and the
                # connection's maximum age); batches back to back skip it: a connection that
                # broke meanwhile fails the write, which is retried below on a fresh one.
                close_old_connections()
            try:
                counts = census_ingest_batch(batch=batch)
                self._last_write = time.monotonic()
                return counts
            except (OperationalError, InterfaceError):
                if connection.in_atomic_block:
                    raise  # inside a caller's transaction (tests): nothing to reconnect
                log.exception("database unavailable; retrying the batch in 2 s")
                connection.close()
                if self._stop.wait(2):
                    # Stopping without a commit: the batch is replayed by whoever gets the
                    # partitions next, and the upsert makes that harmless.
                    raise

    def _commit(self, messages: list[Message], *, asynchronous: bool = False) -> None:
        """Commit the offsets after ``messages``. Asynchronously after each batch (the broker's
        round trip would otherwise hold up the next batch: the database commit is what makes
        the records safe, and a lost offset commit only means a harmless replay); once more,
        synchronously, when the member stops or partitions are revoked (``_commit_sent``)."""
        highest: dict[tuple[str, int], int] = {}
        for m in messages:
            tp = (m.topic() or "", m.partition() or 0)
            offset = m.offset() or 0
            if offset >= highest.get(tp, -1):
                highest[tp] = offset
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]
        if asynchronous:
            for (t, p), o in highest.items():
                self._sent_offsets[(t, p)] = o + 1
            self.consumer.commit(offsets=offsets, asynchronous=True)
            return
        self._commit_offsets(offsets)

    def _commit_sent(self) -> None:
        """The offsets sent asynchronously, committed again and waited for."""
        if self._sent_offsets:
            sent, self._sent_offsets = self._sent_offsets, {}
            self._commit_offsets([TopicPartition(t, p, o) for (t, p), o in sent.items()])

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """An asynchronous commit's outcome (served inside poll/consume, on the main thread)."""
        errors = [err] if err is not None else [tp.error for tp in partitions if tp.error]
        for error in errors:
            if error.code() == KafkaError._NO_OFFSET:
                continue
            if error.code() in _LOST_GENERATION:
                log.warning("offsets not committed (%s): the batch will be replayed", error)
            elif self._commit_error is None:
                self._commit_error = KafkaException(error)

    def _commit_offsets(self, offsets: list[TopicPartition]) -> None:
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() not in _LOST_GENERATION:
                raise
            # A rebalance moved partitions while this batch was being stored: the batch is in
            # the database, the offsets stay where they were, and whoever holds the partitions
            # now replays it, which stores nothing twice. The member carries on.
            log.warning("offsets not committed (%s): the batch will be replayed", exc)

    def _maybe_ensure_partitions(self) -> None:
        now = time.monotonic()
        if now - self._last_partition_check < 6 * 3600:
            return
        self._last_partition_check = now
        try:
            created = partitions_ensure(months=3)
            if created:
                log.info("created %d monthly partition(s)", created)
        except Exception:
            # Rows still land in the default partition; the next check tries again.
            log.exception("could not create monthly partitions")

    def close(self) -> None:
        try:
            self.producer.flush(10)
        finally:
            self.consumer.close()
