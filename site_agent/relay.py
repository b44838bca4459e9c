"""The outbox relay: a child process that seals and publishes outbox rows in ``seq`` order.

Why a process: sealing a flow event (surrogate look-up, AES-256-GCM, the contract's encoding)
and feeding the Kafka producer cost about as much CPU as ingesting the message did. In the
agent process they would share one GIL with the MLLP listener; in their own process they run
on the other core. The child reads the outbox through its own read-only SQLite connection
and tells the agent which rows were delivered over a pipe; the agent marks them published in
its next batch (one writer for the database, always).

Delivery:
- Idempotent producer (``enable.idempotence=true``, which implies ``acks=all`` and at most 5
  in-flight requests per connection with ordering kept): a retry after a lost response cannot
  duplicate or reorder records on the partition. Every record is keyed by the site code, so a
  site's records stay on one partition, in outbox order.
- ``message.timeout.ms=0`` (never give up): while Kafka is down the producer keeps what it
  holds and retries; the relay stops reading the outbox once ``max_in_flight_records`` wait.
  The agent keeps ingesting and ACKing; the backlog stays in SQLite and drains in order.
- A row counts as published only from its delivery report. If the agent dies between delivery
  and marking, the row is sent again on restart: at-least-once; consumers de-duplicate on
  ``event_id`` (DESIGN.md), which is fixed when the row is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from deid.contracts.topics import RECORD_TYPE_HEADER
from deid.logformat import configure_logging
from deid.windowing import raw_partition
from site_agent.config import KafkaConfig
from site_agent.publish import PhiSealer, seal_flows
from site_agent.store import OutboxRow, fetch_outbox, first_unpublished, open_readonly

__all__ = ["OutboxRelay", "RelaySettings", "producer_config", "seal_rows"]

log = logging.getLogger("site_agent.relay")

FETCH_LIMIT = 2000
STATUS_EVERY = 1.0
IDLE_WAIT = 0.25  # longest idle sleep: the pipe wakes the relay at once when rows are durable


def producer_config(cfg: KafkaConfig, client_id: str) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": cfg.bootstrap_servers,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": 0,
        "linger.ms": 5,
        "compression.type": "lz4",
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": max(100_000, cfg.max_in_flight_records * 2),
        "reconnect.backoff.max.ms": 2000,
        "socket.connection.setup.timeout.ms": 5000,
        "log_level": 3,  # errors only: a broker that is away is reported by error_cb
    }
    conf.update(cfg.extra)
    return conf


def seal_rows(rows: list[OutboxRow], site_code: str, sealer: PhiSealer) -> list[bytes]:
    """The bytes to publish for each row: drafts are sealed (in one key-store commit)."""
    drafts = [r.payload for r in rows if not r.sealed]
    sealed = iter(seal_flows(site_code, sealer, drafts) if drafts else [])
    return [r.payload if r.sealed else next(sealed) for r in rows]


@dataclass(frozen=True)
class RelaySettings:
    """Everything the child needs (picklable: it crosses the process boundary)."""

    db_path: Path
    kafka: KafkaConfig
    keystore_path: Path
    master_key: str
    site_code: str
    client_id: str
    log_level: int = logging.INFO
    extra: dict[str, Any] = field(default_factory=dict)


def _partitions_of(producer: Producer, topic: str) -> int:
    try:
        meta = producer.list_topics(topic, timeout=5).topics.get(topic)
    except KafkaException:
        return 0
    return len(meta.partitions) if meta is not None and meta.error is None else 0


# --- the child process -------------------------------------------------------------------------


class _Pump:
    def __init__(self, settings: RelaySettings, conn: Connection) -> None:
        from deid.keystore import MasterKeyRing, PatientKeyStore

        self.s = settings
        self.conn = conn
        self.keystore = PatientKeyStore(
            settings.keystore_path, MasterKeyRing.parse(settings.master_key)
        )
        self.delivered: list[int] = []
        self.in_flight = 0
        self.failed = False
        self.stopping = False
        self.flush_timeout = 10.0
        self.published_total = 0
        self.partitions: dict[str, tuple[int, float]] = {}  # topic -> (count, when asked)
        self.errors_total = 0
        self.last_error = ""
        self.connected = False
        # Highest outbox seq the agent has fsynced: rows after it may still vanish in an OS
        # crash, so they are not published yet (the agent says so after every fsync).
        self.durable_seq = 0
        self._last_warning = -60.0

    def on_delivery(self, seq: int) -> Callable[[KafkaError | None, Any], None]:
        def callback(err: KafkaError | None, _msg: Any) -> None:
            self.in_flight -= 1
            if err is None:
                self.delivered.append(seq)
                self.connected = True
                return
            if err.code() == KafkaError._PURGE_QUEUE:
                return
            self.errors_total += 1
            self.last_error = str(err)
            self.failed = True
            log.error("outbox record %d not delivered: %s", seq, err)

        return callback

    def on_error(self, err: KafkaError) -> None:
        self.last_error = str(err)
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.connected = False
        if err.fatal():
            self.failed = True
        # librdkafka reports a broker that is away many times a second: say it once a minute.
        now = time.monotonic()
        if err.fatal() or now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning("kafka: %s (records wait in the outbox)", err)

    def control(self) -> None:
        """Read what the agent says (stop), and notice if the agent is gone."""
        try:
            while self.conn.poll():
                msg = self.conn.recv()
                if msg[0] == "durable":
                    self.durable_seq = max(self.durable_seq, int(msg[1]))
                elif msg[0] == "stop":
                    self.stopping = True
                    self.flush_timeout = float(msg[1])
        except (EOFError, OSError):
            self.stopping = True  # the agent died: stop, the outbox keeps what is not sent
            self.flush_timeout = 0.0

    def wait_idle(self, producer: Producer) -> None:
        """Nothing to send and nothing in flight: sleep until the agent reports a newly durable
        row (or says stop) on the pipe, up to ``IDLE_WAIT``. A polling loop here woke 50 times a
        second in every idle agent; the pipe message makes the wake-up immediate instead."""
        with contextlib.suppress(EOFError, OSError):  # control() notices the agent is gone
            self.conn.poll(IDLE_WAIT)
        producer.poll(0)  # serve the producer's own events (errors, connection state)

    def report(self, force: bool = False) -> None:
        try:
            if self.delivered:
                done, self.delivered = self.delivered, []
                self.published_total += len(done)
                self.conn.send(("published", done))
            if force:
                self.conn.send(
                    (
                        "status",
                        {
                            "published_total": self.published_total,
                            "in_flight": self.in_flight,
                            "connected": self.connected,
                            "last_error": self.last_error,
                            "errors_total": self.errors_total,
                        },
                    )
                )
        except (BrokenPipeError, OSError):
            self.stopping = True

    def routing(self, producer: Producer, row: OutboxRow) -> dict[str, Any]:
        """The record-type header and, on a topic with two or more partitions, the partition
        of the record's kind (census and heartbeats apart from flow events, so the DE-ID
        worker releases them without waiting for a flow release window)."""
        out: dict[str, Any] = {"headers": [(RECORD_TYPE_HEADER, row.record_type.encode())]}
        partition = raw_partition(row.record_type, self.partition_count(producer, row.topic))
        if partition is not None:
            out["partition"] = partition
        return out

    def partition_count(self, producer: Producer, topic: str) -> int:
        """Partitions of `topic` from the cluster's metadata. An unknown topic is asked for
        again for up to 5 s (asking makes a broker with auto-creation create it), so that the
        first records already go to their kind's partition; after that, every 30 s while the
        topic is unknown or has one partition."""
        now = time.monotonic()
        known = self.partitions.get(topic)
        if known is not None and (known[0] >= 2 or now - known[1] < 30):
            return known[0]
        deadline = now + (5.0 if known is None else 0.0)
        while True:
            count = _partitions_of(producer, topic)
            if count or time.monotonic() >= deadline or self.stopping:
                break
            time.sleep(0.25)
        self.partitions[topic] = (count, time.monotonic())
        return count

    def run(self) -> None:
        db = open_readonly(self.s.db_path)
        try:
            while not self.stopping:
                self.failed = False
                self.pump(db)
                if self.failed and not self.stopping:
                    time.sleep(1.0)  # then start over from the first unpublished row
        finally:
            db.close()
            self.keystore.close()

    def pump(self, db: sqlite3.Connection) -> None:
        conf = producer_config(self.s.kafka, self.s.client_id)
        conf["error_cb"] = self.on_error
        producer = Producer(conf)
        cursor = first_unpublished(db) - 1
        self.in_flight = 0
        max_in_flight = self.s.kafka.max_in_flight_records
        last_status = time.monotonic()
        try:
            while not self.stopping and not self.failed:
                self.control()
                room = max_in_flight - self.in_flight
                limit = min(FETCH_LIMIT, room)
                ready = room > 0 and self.durable_seq > cursor
                rows = fetch_outbox(db, cursor, limit, upto=self.durable_seq) if ready else []
                if rows:
                    try:
                        values = seal_rows(rows, self.s.site_code, self.keystore)
                    except Exception as exc:
                        # Nothing is skipped: log, and try again from this row later.
                        log.exception("sealing outbox rows from %d failed", rows[0].seq)
                        self.last_error = f"sealing failed: {exc!r}"
                        self.failed = True
                        break
                    for row, value in zip(rows, values, strict=True):
                        routing = self.routing(producer, row)
                        while True:
                            try:
                                producer.produce(
                                    row.topic,
                                    value=value,
                                    key=row.key,
                                    on_delivery=self.on_delivery(row.seq),
                                    **routing,
                                )
                                break
                            except BufferError:
                                producer.poll(0.05)  # local queue full: serve deliveries
                        self.in_flight += 1
                        cursor = row.seq
                    log.debug(
                        "produced %d record(s) to %s, outbox seq %d..%d",
                        len(rows),
                        rows[0].topic,
                        rows[0].seq,
                        rows[-1].seq,
                        extra={"site": self.s.site_code},
                    )
                if len(rows) >= FETCH_LIMIT:
                    producer.poll(0)
                elif self.in_flight or rows:
                    producer.poll(0.02)  # deliveries are due soon
                else:
                    self.wait_idle(producer)
                now = time.monotonic()
                status_due = now - last_status >= STATUS_EVERY
                if status_due:
                    last_status = now
                self.report(force=status_due)
        except KafkaException as exc:
            self.last_error = str(exc)
            log.error("kafka producer failed: %s; starting a new one", exc)
            self.failed = True
        finally:
            self.close(producer)

    def close(self, producer: Producer) -> None:
        # Waiting only helps if a broker is there to deliver to.
        live = self.stopping and not self.failed and self.connected
        timeout = self.flush_timeout if live else 0.0
        remaining = producer.flush(timeout)
        if remaining:
            # Not delivered: take them out of the producer so they cannot go out later, out of
            # order; they are still unpublished in the outbox and go out on the next start.
            producer.purge(in_queue=True, in_flight=True, blocking=False)
            producer.poll(0)
            log.warning("%d records left unpublished in the outbox", remaining)
        self.report(force=True)


def relay_main(conn: Connection, settings: RelaySettings) -> None:
    """Entry point of the relay process."""
    # A spawned process starts with no logging: the same choice as the agent (LOG_FORMAT).
    configure_logging(
        settings.log_level, plain_format="%(asctime)s %(levelname)-7s %(name)s[relay]: %(message)s"
    )
    try:
        _Pump(settings, conn).run()
    finally:
        conn.close()


# --- the agent's side --------------------------------------------------------------------------


class OutboxRelay:
    """Starts and stops the relay process; hands delivery reports to ``on_published``."""

    def __init__(
        self,
        settings: RelaySettings,
        on_published: Callable[[list[int]], None],
    ) -> None:
        self.settings = settings
        self.on_published = on_published
        self._conn: Connection | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published_total = 0
        self.in_flight = 0
        self.connected = False
        self.last_error = ""
        self.errors_total = 0
        self._durable_sent = 0

    def start(self, loop: asyncio.AbstractEventLoop, durable_seq: int) -> None:
        # spawn, not fork: the agent has threads (SQLite commits, librdkafka in tests).
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=relay_main, args=(child, self.settings), name="outbox-relay", daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self._loop = loop
        loop.add_reader(parent.fileno(), self._readable)
        # What is in the outbox at start survived whatever came before: it is durable.
        self.durable(durable_seq)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def started(self) -> bool:
        return self._proc is not None

    def durable(self, outbox_seq: int) -> None:
        """Outbox rows up to ``outbox_seq`` are on disk: the relay may publish them."""
        if self._conn is not None and outbox_seq > self._durable_sent:
            self._durable_sent = outbox_seq
            try:
                self._conn.send(("durable", outbox_seq))
            except (BrokenPipeError, OSError):
                self._detach()

    def _readable(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            while conn.poll():
                self._handle(conn.recv())
        except (EOFError, OSError):
            self._detach()

    def _handle(self, msg: tuple[str, Any]) -> None:
        kind, body = msg
        if kind == "published":
            self.published_total += len(body)
            self.on_published(body)
        elif kind == "status":
            self.in_flight = int(body["in_flight"])
            self.connected = bool(body["connected"])
            self.last_error = str(body["last_error"])
            self.errors_total = int(body["errors_total"])

    def _detach(self) -> None:
        if self._loop is not None and self._conn is not None:
            self._loop.remove_reader(self._conn.fileno())
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    async def stop(self, flush_timeout: float = 10.0) -> None:
        """Let in-flight records be delivered (up to ``flush_timeout``), then end the child."""
        proc, conn = self._proc, self._conn
        if proc is None:
            return
        if conn is not None:
            with contextlib.suppress(BrokenPipeError, OSError):  # already gone: fine
                conn.send(("stop", flush_timeout))
        deadline = time.monotonic() + flush_timeout + 15
        while proc.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if proc.is_alive():
            log.warning("relay process did not stop in time; terminating it")
            proc.terminate()
            proc.join(5)
        # Collect the last delivery reports before letting go of the pipe.
        self._readable()
        self._detach()
        self._proc = None
