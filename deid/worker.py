"""The DE-ID stream worker: `python -m deid run --site CODE`.

    poll the control topic (signed policies)
    -> consume a release window from site.<code>.raw.v1 (read_committed, no auto-commit)
    -> decode; undecodable messages are dead-lettered at the site with the reason in headers
    -> transform_window (pure): de-identify, k-anonymise, verify; failing slices are held
    -> seal envelopes (one Ed25519 signature per envelope of a few hundred records)
    -> one Kafka transaction: envelopes to regional.deid.v1, held slices, dead letters, and
       the consumed offsets (send_offsets_to_transaction) -> commit

The next window is consumed and transformed (on a second thread; the native core releases
the GIL) while one is sealed and committed; windows still commit one at a time, in order.
Everything a window produces and the offsets it consumed commit atomically, so after a crash,
a kill -9 or a broker restart the window is processed again and downstream read_committed
consumers see each input reflected exactly once. SIGTERM/SIGINT finish the current window,
commit and exit 0. Without a valid signed policy only heartbeats are released (fail closed).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid import __version__, native
from deid.contracts._codec import DecodeError, canonical_json
from deid.contracts.envelope import seal_envelope
from deid.contracts.regional import HeartbeatRecord
from deid.contracts.topics import (
    CONTROL_TOPIC,
    DEADLETTER_TOPIC,
    RECORD_TYPE_HEADER,
    REGIONAL_TOPIC,
    check_site_code,
    held_topic,
    raw_topic,
    site_deadletter_topic,
)
from deid.kafka_security import KafkaSecurityError, kafka_security_config
from deid.keystore import PatientKeyStore
from deid.policy import Policy, PolicyError, decode_policy_message, load_policy_file
from deid.signing import PublicKeyLike, site_signing_key_from_env
from deid.stream_window import (
    RAW_TYPES,
    WindowOutcome,
    decode_raw,
    decode_site_record,
    identity_window,
    process_window,
    sha256_hex,
)
from deid.transforms.window import HeldSlice, WindowResult
from deid.windowing import ReleaseBuffer, needs_window

__all__ = ["RAW_TYPES", "DeidWorker", "WorkerConfig", "decode_raw", "run_from_args"]

log = logging.getLogger("deid.worker")

KAFKA_BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# How long a commit is retried while the broker cannot be reached, before the window is
# aborted and re-run (a transaction times out on the broker after 60 s anyway).
COMMIT_PATIENCE = 120.0
GC_THRESHOLD = 200_000
# Seconds past a transactional call's own timeout before the watchdog ends the process.
WATCHDOG_GRACE = 30.0
EXIT_RESTART = 75
# Stay well under the broker's default message.max.bytes (1 MiB).
MAX_ENVELOPE_BYTES = 900_000


@dataclass
class WorkerConfig:
    site_code: str
    bootstrap: str = DEFAULT_BOOTSTRAP
    input_topic: str = ""
    output_topic: str = REGIONAL_TOPIC
    control_topic: str = CONTROL_TOPIC
    held_topic: str = ""
    deadletter_topic: str = ""  # the site's own: raw bytes may hold PHI
    regional_deadletter_topic: str = DEADLETTER_TOPIC  # payload-free notices only
    group_id: str = ""
    transactional_id: str = ""
    envelope_size: int = 500
    window_max_records: int | None = None  # None: the policy's release window
    window_max_seconds: float | None = None
    stats_interval: float = 10.0
    heartbeat_interval: float = 30.0
    exit_when_idle: float | None = None
    metrics_port: int | None = None
    # Loopback for --metrics-port on a workstation; METRICS_PORT (the chart) binds every
    # interface, since Prometheus scrapes the pod's address.
    metrics_host: str = "127.0.0.1"
    passthrough: bool = False
    # Records per second at most (0 = unlimited): replaying a long backlog without flooding
    # the hub, and tests that need a stream still running when they interrupt it.
    throttle: float = 0.0
    create_topics: bool = True
    # The native core (deid_core) where it reproduces the Python transform exactly; False
    # (or DEID_NATIVE=0) runs the Python reference for every window.
    native: bool = field(default_factory=native.enabled)
    kafka_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_site_code(self.site_code)
        self.input_topic = self.input_topic or raw_topic(self.site_code)
        self.held_topic = self.held_topic or held_topic(self.site_code)
        self.deadletter_topic = self.deadletter_topic or site_deadletter_topic(self.site_code)
        self.group_id = self.group_id or f"deid.{self.site_code}"
        self.transactional_id = self.transactional_id or f"deid.{self.site_code}"
        if self.passthrough and self.output_topic == REGIONAL_TOPIC:
            # The identity worker copies raw records (PHI ciphertexts included): never into
            # the regional zone.
            raise ValueError("passthrough (benchmark) output must not be the regional topic")


@dataclass
class Counters:
    processed: int = 0
    released: int = 0
    suppressed: int = 0
    suppressed_cells: int = 0
    held: int = 0
    dead_lettered: int = 0
    erased: int = 0
    envelopes: int = 0
    windows: int = 0
    aborted_transactions: int = 0
    lag: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _may_be_flow(msg: Message) -> bool:
    """Whether a consumed raw record waits for the flow release window (by the relay's
    `record_type` header; a record without one waits)."""
    for header in msg.headers() or ():
        value = header[1]
        if header[0] == RECORD_TYPE_HEADER and isinstance(value, bytes):
            return needs_window(value.decode("ascii", "replace"))
    return True


class DeidWorker:
    def __init__(
        self,
        config: WorkerConfig,
        *,
        signing_key: Ed25519PrivateKey,
        keystore: PatientKeyStore | None = None,
        policy: Policy | None = None,
        governance_keys: Sequence[PublicKeyLike] = (),
    ) -> None:
        self.config = config
        self.signing_key = signing_key
        self.keystore = keystore
        self.policy = policy if policy is None or policy.applies_to(config.site_code) else None
        self.governance_keys = list(governance_keys)
        self.counters = Counters()
        self._stopping = False
        self._last_stats = time.monotonic()
        self._last_heartbeat = 0.0
        self._metrics: Any = None
        common = {"bootstrap.servers": config.bootstrap, **config.kafka_overrides}
        self.consumer = Consumer(
            {
                **common,
                "group.id": config.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                # A worker killed without leaving the group blocks its successor until the
                # session times out: keep that short (the broker's minimum is 6 s).
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 2_000,
                "queued.min.messages": 200_000,
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 16 * 1024 * 1024,
            }
        )
        self.producer = Producer(
            {
                **common,
                "transactional.id": config.transactional_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": 1_000_000,
                "transaction.timeout.ms": 60_000,
            }
        )
        self.control: Consumer | None = None
        self._pending_revoked = False
        self._buffer: ReleaseBuffer[Message] = ReleaseBuffer(5000, 5.0)
        # Windows taken from the buffer and not committed yet, oldest first.
        self._unfinished: list[list[Message]] = []
        # Monotonic times of the first record consumed and the last window committed (the
        # benchmark's measurement interval: start-up and idle time excluded).
        self.first_record_at: float | None = None
        self.last_commit_at: float | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        """Finish the current window, commit it and return from run()."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: finishing the current window", signum)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _ensure_topics(self) -> None:
        c = self.config
        admin = AdminClient({"bootstrap.servers": c.bootstrap, **c.kafka_overrides})
        wanted = [
            c.input_topic,
            c.output_topic,
            c.control_topic,
            c.held_topic,
            c.deadletter_topic,
            c.regional_deadletter_topic,
        ]
        existing = set(admin.list_topics(timeout=10).topics)
        new = [
            NewTopic(t, num_partitions=3, replication_factor=1) for t in wanted if t not in existing
        ]
        if not new:
            return
        for topic, future in admin.create_topics(new, operation_timeout=30).items():
            try:
                future.result(timeout=30)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    log.warning("could not create topic %s: %s", topic, exc)

    def _start_control(self) -> None:
        c = self.config
        self.control = Consumer(
            {
                "bootstrap.servers": c.bootstrap,
                **c.kafka_overrides,
                # No offsets are committed: every start reads the whole control topic again,
                # so the newest valid policy is found whatever happened before.
                "group.id": f"deid.{c.site_code}.control.{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
        md = self.control.list_topics(c.control_topic, timeout=10)
        partitions = md.topics[c.control_topic].partitions if c.control_topic in md.topics else {}
        self.control.assign(
            [TopicPartition(c.control_topic, p, OFFSET_BEGINNING) for p in partitions]
        )
        # Catch up before the first window, so a restart never releases under an older policy.
        pending = set(partitions)
        deadline = time.monotonic() + 15
        while pending and time.monotonic() < deadline:
            for msg in self.control.consume(num_messages=500, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                    continue
                self._apply_control(msg)

    def _poll_control(self) -> None:
        if self.control is None:
            return
        for msg in self.control.consume(num_messages=100, timeout=0):
            if msg.error() is None:
                self._apply_control(msg)

    def _apply_control(self, msg: Message) -> None:
        value = msg.value()
        if not value:
            return
        try:
            policy = decode_policy_message(value, self.config.site_code, self.governance_keys)
        except PolicyError as exc:
            log.warning("control message %s/%s refused: %s", msg.partition(), msg.offset(), exc)
            return
        if policy is None:
            return
        if self.policy is not None and policy.version <= self.policy.version:
            # Versions only move forward: an old signed policy replayed is not a rollback.
            return
        log.info("policy %s version %s in force", policy.policy_id, policy.version)
        self.policy = policy

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> int:
        c = self.config
        if c.create_topics:
            self._ensure_topics()
        if c.metrics_port:
            self._start_metrics(c.metrics_port)
        with _Watchdog("init_transactions", 60 + WATCHDOG_GRACE):
            self.producer.init_transactions(60)
        self._start_control()
        self.consumer.subscribe([c.input_topic], on_revoke=self._on_revoke)
        if self.policy is None and not c.passthrough:
            log.warning("no valid signed policy: heartbeats only until one arrives (fail closed)")
        # A window allocates hundreds of thousands of small dicts and lists, none in reference
        # cycles (reference counting frees them). With the default thresholds the cyclic
        # collector runs every 700 allocations and keeps re-scanning the long-lived key
        # caches: measured 20-30% of the worker's time. Collect rarely, and move what exists
        # after start-up out of the collector's sight.
        thresholds = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 50, 50)
        idle_since = time.monotonic()
        # Two windows overlap: while one is sealed and committed here, the next is
        # transformed on the transformer thread (the native core releases the GIL). Windows
        # still commit one at a time and in order; see _rewind for a failed commit.
        pending: Future[_Transformed] | None = None
        transformer = ThreadPoolExecutor(1, thread_name_prefix="deid-transform")
        try:
            while not self._stopping:
                self._poll_control()
                # With a window in flight, take only what is ready now: it commits as soon
                # as nothing else is there to overlap with (census latency).
                window = self._collect_window(block=pending is None)
                following = self._submit(transformer, window) if window else None
                if pending is not None:
                    try:
                        self._finish(pending.result())
                    except _RetryWindow:
                        following = None  # rewound with it: re-read from the failed window on
                pending = following
                if window:
                    idle_since = time.monotonic()
                    if c.throttle > 0:
                        time.sleep(len(window) / c.throttle)
                elif (
                    c.exit_when_idle is not None
                    and time.monotonic() - idle_since > c.exit_when_idle
                ):
                    log.info("idle for %.1f s: exiting", c.exit_when_idle)
                    break
                if pending is None:
                    # A failed heartbeat transaction has nothing to rewind: the next one goes
                    # later.
                    with contextlib.suppress(_RetryWindow):
                        self._maybe_heartbeat_alone()
                self._maybe_log_stats()
            if pending is not None:  # stopping: the last window commits before exit
                with contextlib.suppress(_RetryWindow):
                    self._finish(pending.result())
        finally:
            transformer.shutdown(wait=True, cancel_futures=True)
            gc.set_threshold(*thresholds)  # as it was, for a caller running us in-process
            gc.unfreeze()
            self._maybe_log_stats(force=True)
            self.consumer.close()
            if self.control is not None:
                self.control.close()
            self.producer.flush(30)
        return 0

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # A window being collected is dropped; the new owner starts at the committed offsets.
        self._pending_revoked = True

    def _window_limits(self) -> tuple[int, float]:
        c = self.config
        records = c.window_max_records or (self.policy.window_max_records if self.policy else 5000)
        seconds = c.window_max_seconds or (self.policy.window_max_seconds if self.policy else 5.0)
        return records, seconds

    def _collect_window(self, *, block: bool = True) -> list[Message]:
        """Consume until something may be released (see `deid.windowing`): capacity records
        as soon as they arrive, flow events when their release window closes. Returns [] when
        idle, or (block=False) when nothing is ready after one look at what has arrived.
        Records of a partition still waiting for the flow window stay buffered across
        calls."""
        max_records, max_seconds = self._window_limits()
        buffer = self._buffer
        buffer.max_records, buffer.max_seconds = max_records, max_seconds
        while not self._stopping:
            now = time.monotonic()
            ready = buffer.take(now)
            if ready:
                return ready
            # poll() returns at the first record (consume() would sit out its whole timeout
            # unless the batch fills), then whatever else has arrived is drained at once.
            first = self.consumer.poll(buffer.wait(now, 0.5) if block else 0)
            batch = [first] if first is not None else []
            if first is not None:
                room = min(buffer.room() - 1, 10_000)
                if room > 0:
                    batch.extend(self.consumer.consume(num_messages=room, timeout=0))
            if self._pending_revoked:
                buffer.clear()
                self._pending_revoked = False
            if not batch and not len(buffer):
                return []  # idle
            if not block and not batch:
                return []
            now = time.monotonic()
            for msg in batch:
                err = msg.error()
                if err is None:
                    buffer.add(
                        (msg.topic(), msg.partition()), msg, is_flow=_may_be_flow(msg), now=now
                    )
                    if self.first_record_at is None:
                        self.first_record_at = now
                elif err.code() != KafkaError._PARTITION_EOF:
                    if err.fatal():
                        raise KafkaException(err)
                    log.warning("consumer: %s", err)
        # Stopping: what is buffered is released now, not dropped (it would be re-read).
        return buffer.take(time.monotonic(), flush=True)

    def _submit(
        self, transformer: ThreadPoolExecutor, window: list[Message]
    ) -> Future[_Transformed]:
        """Start transforming a window on the transformer thread. Until it commits it counts
        as unfinished: a failed commit of an earlier window rewinds it too."""
        self._unfinished.append(window)
        return transformer.submit(self._transform, window, self.policy)

    def _transform(self, window: list[Message], policy: Policy | None) -> _Transformed:
        """The window's output (runs on the transformer thread; touches no Kafka client)."""
        c = self.config
        values = [msg.value() for msg in window]
        window_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        trace = log.isEnabledFor(logging.DEBUG)
        if c.passthrough:
            outcome = identity_window(values, site_code=c.site_code, use_native=c.native)
        else:
            outcome = process_window(
                values,
                site_code=c.site_code,
                policy=policy,
                keystore=self.keystore,
                window_id=window_id,
                produced_at=now,
                use_native=c.native and not trace,
            )
        if trace:
            self._trace_consumed(values)
        policy_version = None if policy is None or c.passthrough else policy.version
        return _Transformed(window, outcome, window_id, now, policy_version)

    def _finish(self, done: _Transformed) -> None:
        """Seal the transformed window and commit it with its offsets (one transaction)."""
        c = self.config
        window, outcome = done.window, done.outcome
        result = outcome.result
        dead = [(window[i], reason) for i, reason in outcome.dead]
        released = result.released
        hashes = outcome.hashes
        if time.monotonic() - self._last_heartbeat >= c.heartbeat_interval:
            heartbeat = self._worker_heartbeat(done.produced_at)
            released = [*released, heartbeat]
            if hashes is not None:
                hashes = [*hashes, sha256_hex(heartbeat)]
        self._commit(window, released, result, dead, done.window_id, hashes, done.policy_version)
        self._unfinished.remove(window)
        counters = self.counters
        counters.windows += 1
        counters.processed += result.processed
        counters.released += len(result.released)
        counters.suppressed += result.suppressed_records
        counters.suppressed_cells += result.suppressed_cells
        counters.held += result.held_records
        counters.dead_lettered += len(dead)
        counters.erased += result.erased
        if self._metrics is not None:
            self._metrics.update(counters)

    def _trace_consumed(self, values: list[bytes | None]) -> None:
        for value in values:
            try:
                record = decode_site_record(value, self.config.site_code)
            except DecodeError:
                continue
            log.debug(
                "consumed %s %s",
                record.event_id,
                record.record_type,
                extra={"event_id": record.event_id, "site": record.site_code},
            )

    def _worker_heartbeat(self, now: datetime) -> str:
        self._last_heartbeat = time.monotonic()
        hb = HeartbeatRecord(
            site_code=self.config.site_code,
            produced_at=now,
            policy_version=self.policy.version if self.policy else None,
            component="deid_worker",
            agent_version=__version__,
            counters=self.counters.as_dict(),
        )
        return canonical_json(hb.to_dict())

    def _maybe_heartbeat_alone(self) -> None:
        if self.config.passthrough:
            return
        if time.monotonic() - self._last_heartbeat < self.config.heartbeat_interval:
            return
        hb = self._worker_heartbeat(datetime.now(UTC))
        self._commit([], [hb], WindowResult(), [], "heartbeat", None, self._policy_version())

    def _policy_version(self) -> int | None:
        return None if self.policy is None or self.config.passthrough else self.policy.version

    def _envelopes(
        self, released: list[str], hashes: list[str] | None, policy_version: int | None
    ) -> list[bytes]:
        """Envelopes of at most envelope_size records and MAX_ENVELOPE_BYTES; `hashes` are
        the records' SHA-256 when already known (the native core computes them)."""
        c = self.config
        out = []
        start = 0
        size = 0
        for n, text in enumerate(released):
            full = n - start >= c.envelope_size or size + len(text) > MAX_ENVELOPE_BYTES
            if n > start and full:
                out.append(self._seal(released[start:n], policy_version, hashes, start))
                start, size = n, 0
            size += len(text) + 80  # + its hash and separators
        if start < len(released):
            out.append(self._seal(released[start:], policy_version, hashes, start))
        return out

    def _seal(
        self,
        chunk: list[str],
        policy_version: int | None,
        hashes: list[str] | None = None,
        start: int = 0,
    ) -> bytes:
        site = self.config.site_code
        batch_id = str(uuid.uuid4())
        # Follow a record from site to hub (docs/deploy.md, Observability): the envelope's
        # batch id at info level; at debug, each record's event id and the raw event id it
        # came from (the agent logs that one when it publishes, the hub when it stores).
        log.info(
            "envelope %s: %d record(s)",
            batch_id,
            len(chunk),
            extra={"batch_id": batch_id, "site": site},
        )
        if log.isEnabledFor(logging.DEBUG):
            for text in chunk:
                record = json.loads(text)
                log.debug(
                    "released %s (source %s) %s",
                    record.get("event_id"),
                    record.get("source_event_id"),
                    record.get("record_type"),
                    extra={
                        "batch_id": batch_id,
                        "site": site,
                        "event_id": record.get("event_id"),
                        "source_event_id": record.get("source_event_id"),
                    },
                )
        return seal_envelope(
            chunk,
            self.signing_key,
            site_code=site,
            policy_version=policy_version,
            batch_id=batch_id,
            hashes=None if hashes is None else hashes[start : start + len(chunk)],
        )

    def _commit(
        self,
        window: list[Message],
        released: list[str],
        result: WindowResult,
        dead: list[tuple[Message, str]],
        window_id: str,
        hashes: list[str] | None,
        policy_version: int | None,
    ) -> None:
        """Produce the window's output and commit it with the consumed offsets, atomically.
        `policy_version` is that of the policy the window was transformed with. Retries
        retriable errors; on an abortable error aborts, rewinds and re-runs."""
        c = self.config
        envelopes = self._envelopes(released, hashes, policy_version)
        key = c.site_code.encode()
        offsets: dict[tuple[str, int], int] = {}
        starts: dict[tuple[str, int], int] = {}
        for msg in window:
            tp = (str(msg.topic()), int(msg.partition() or 0))
            offset = int(msg.offset() or 0)
            offsets[tp] = max(offsets.get(tp, -1), offset + 1)
            starts[tp] = min(starts.get(tp, offset), offset)
        if self._await_broker():
            # The broker was away: the consumer's group membership has likely lapsed, and
            # offsets sent with it would be refused (or hang). Re-run the window after
            # consume() has rejoined the group; no transaction was begun, nothing to abort.
            self._rewind(starts)
            raise _RetryWindow
        try:
            self.producer.begin_transaction()
            for env in envelopes:
                self.producer.produce(c.output_topic, key=key, value=env)
            for held in result.held:
                self._produce_held(held, window_id, key, policy_version)
            for msg, reason in dead:
                self._produce_dead_letter(msg, reason, key)
            if offsets:
                with _Watchdog("send_offsets_to_transaction", 30 + WATCHDOG_GRACE):
                    self.producer.send_offsets_to_transaction(
                        [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                        self.consumer.consumer_group_metadata(),
                        30,
                    )
        except KafkaException as exc:
            self._give_up_window(exc, starts)
        self._commit_transaction(starts)
        self.counters.envelopes += len(envelopes)
        self.last_commit_at = time.monotonic()

    def _produce_held(
        self, held: HeldSlice, window_id: str, key: bytes, policy_version: int | None
    ) -> None:
        c = self.config
        value = json.dumps(
            {
                "record_type": "site.held_slice",
                "site_code": c.site_code,
                "window_id": window_id,
                "policy_version": policy_version,
                "kind": held.kind,
                "audience": held.audience,
                "reasons": held.reasons,
                "records": [json.loads(t) for t in held.records],
            },
            separators=(",", ":"),
        ).encode()
        headers: list[tuple[str, str | bytes | None]] = [
            ("reason", "; ".join(held.reasons)[:1000].encode())
        ]
        self._produce(c.held_topic, key, value, headers)

    def _produce_dead_letter(self, msg: Message, reason: str, key: bytes) -> None:
        c = self.config
        headers: list[tuple[str, str | bytes | None]] = [
            ("reason", reason[:1000].encode()),
            ("source_topic", str(msg.topic()).encode()),
            ("source_partition", str(msg.partition()).encode()),
            ("source_offset", str(msg.offset()).encode()),
            ("site_code", key),
        ]
        # The bytes stay at the site; the region learns only that something failed.
        self._produce(c.deadletter_topic, msg.key(), msg.value(), headers)
        self._produce(c.regional_deadletter_topic, key, None, headers)

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]],
    ) -> None:
        self.producer.produce(topic, key=key, value=value, headers=headers)

    def _commit_transaction(self, starts: dict[tuple[str, int], int]) -> None:
        """Commit; a retriable failure (e.g. the broker is down) is retried by calling commit
        again, which resumes the same commit, for up to COMMIT_PATIENCE seconds."""
        deadline = time.monotonic() + COMMIT_PATIENCE
        while True:
            try:
                with _Watchdog("commit_transaction", 30 + WATCHDOG_GRACE):
                    self.producer.commit_transaction(30)
                return
            except KafkaException as exc:
                err = exc.args[0]
                retriable = err.retriable() and not err.txn_requires_abort()
                if retriable and time.monotonic() < deadline:
                    log.warning("commit: %s; retrying", err)
                    time.sleep(1)
                    continue
                self._give_up_window(exc, starts)

    def _give_up_window(self, exc: KafkaException, starts: dict[tuple[str, int], int]) -> None:
        """Abort the window's transaction and rewind to its first offsets, so it is consumed
        and processed again; nothing of it was committed. Back in the main loop, consume()
        also lets the consumer rejoin its group after an outage."""
        err = exc.args[0]
        if err.fatal():
            # A fenced or otherwise fatal producer cannot go on; the supervisor restarts the
            # worker, which resumes from the committed offsets.
            raise exc
        log.warning("transaction failed (%s): aborting and re-running the window", err)
        self.counters.aborted_transactions += 1
        self._abort()
        self._rewind(starts)
        raise _RetryWindow from None

    def _rewind(self, starts: dict[tuple[str, int], int]) -> None:
        """Seek back to a window's first offsets so that it is consumed again, and so are the
        windows consumed after it and not committed yet (the one being transformed meanwhile
        is dropped) and the partitions still buffered for the flow window."""
        starts = dict(starts)
        unfinished = [msg for window in self._unfinished for msg in window]
        self._unfinished.clear()
        for msg in [*unfinished, *self._buffer.pending()]:
            tp = (str(msg.topic()), int(msg.partition() or 0))
            offset = int(msg.offset() or 0)
            starts[tp] = min(starts.get(tp, offset), offset)
        self._buffer.clear()
        try:
            for (t, p), start in starts.items():
                self.consumer.seek(TopicPartition(t, p, start))
        except KafkaException as seek_error:
            # Not assigned any more (a rebalance): re-subscribing restarts from the committed
            # offsets, which is exactly where this window began.
            log.warning("rewind failed (%s): re-subscribing", seek_error)
            self.consumer.unsubscribe()
            self.consumer.subscribe([self.config.input_topic], on_revoke=self._on_revoke)

    def _await_broker(self) -> bool:
        """Wait (bounded) until the cluster answers, before starting a transaction: with no
        broker at all, librdkafka's transactional calls can outlast their own timeouts.
        Returns True if it had to wait."""
        deadline = time.monotonic() + COMMIT_PATIENCE
        waited = False
        while True:
            try:
                self.producer.list_topics(self.config.output_topic, timeout=5)
                return waited
            except KafkaException as exc:
                waited = True
                if time.monotonic() > deadline:
                    raise
                log.warning("broker unreachable (%s); waiting before the next transaction", exc)
                time.sleep(1)

    def _abort(self) -> None:
        try:
            with _Watchdog("abort_transaction", 60 + WATCHDOG_GRACE):
                self.producer.abort_transaction(60)
        except KafkaException as exc:
            log.warning("abort_transaction: %s", exc)

    # -- observability ------------------------------------------------------------------

    def lag(self) -> int:
        total = 0
        try:
            for tp in self.consumer.assignment():
                _, high = self.consumer.get_watermark_offsets(tp, timeout=1, cached=True)
                position = self.consumer.position([tp])[0].offset
                if high >= 0 and position >= 0:
                    total += max(0, high - position)
        except KafkaException:
            return self.counters.lag
        return total

    def _maybe_log_stats(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_stats < self.config.stats_interval:
            return
        self._last_stats = now
        self.counters.lag = self.lag()
        stats = self.counters.as_dict()
        stats["policy_version"] = self.policy.version if self.policy else -1
        log.info("stats %s", json.dumps(stats, sort_keys=True))
        if self._metrics is not None:
            self._metrics.update(self.counters)

    def _start_metrics(self, port: int) -> None:
        from deid.metrics import PrometheusMetrics

        self._metrics = PrometheusMetrics(self.config.site_code, port, self.config.metrics_host)


class _Watchdog:
    """Ends the process if a transactional call blocks well past its own timeout (seen with
    the broker down mid-call). Exiting is safe: the open transaction is aborted when the
    restarted worker (same transactional.id) initialises, and it resumes from the committed
    offsets, so nothing is lost or released twice. Exit code 75 (EX_TEMPFAIL): restart me."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what = what
        self.seconds = seconds
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        log.error(
            "%s did not return within %.0f s: exiting for a clean restart from the committed "
            "offsets",
            self.what,
            self.seconds,
        )
        logging.shutdown()
        os._exit(EXIT_RESTART)

    def __enter__(self) -> None:
        self._timer.start()

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


@dataclass
class _Transformed:
    """A window and its output, ready to seal and commit."""

    window: list[Message]
    outcome: WindowOutcome
    window_id: str
    produced_at: datetime
    policy_version: int | None


class _RetryWindow(Exception):
    """Internal: the transaction was aborted and the consumer rewound."""


def metrics_port_from_env() -> int | None:
    value = os.environ.get("METRICS_PORT", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of `python -m deid run`."""
    from deid.cli import governance_keys

    bootstrap = args.bootstrap or os.environ.get(KAFKA_BOOTSTRAP_ENV, DEFAULT_BOOTSTRAP)
    try:
        security = kafka_security_config(os.environ)
    except KafkaSecurityError as exc:
        log.error("Kafka security settings: %s", exc)
        return 2
    # In a pod (METRICS_PORT) Prometheus scrapes the pod's address: every interface.
    metrics_host = "127.0.0.1" if args.metrics_port else os.environ.get("METRICS_HOST", "0.0.0.0")  # noqa: S104  # nosec B104
    config = WorkerConfig(
        site_code=args.site,
        bootstrap=bootstrap,
        input_topic=args.input_topic or "",
        output_topic=args.output_topic or REGIONAL_TOPIC,
        control_topic=args.control_topic or CONTROL_TOPIC,
        regional_deadletter_topic=args.regional_deadletter_topic or DEADLETTER_TOPIC,
        group_id=args.group or "",
        transactional_id=args.transactional_id or "",
        envelope_size=args.envelope_size,
        window_max_records=args.batch,
        window_max_seconds=args.window_seconds,
        stats_interval=args.stats_interval,
        exit_when_idle=args.exit_when_idle,
        metrics_port=args.metrics_port or metrics_port_from_env(),
        metrics_host=metrics_host,
        passthrough=args.passthrough,
        throttle=args.throttle,
        kafka_overrides=security,
    )
    keys = governance_keys(args.governance_key)
    policy = None
    if args.policy:
        try:
            policy = load_policy_file(args.policy, keys)
        except (PolicyError, OSError, ValueError) as exc:
            # Fail closed, but say so loudly: a demo with a bad policy file sends heartbeats only.
            log.error("policy file %s refused: %s", args.policy, exc)
    keystore_path = args.keystore or os.environ.get("DEID_KEYSTORE")
    keystore = PatientKeyStore.from_env(Path(keystore_path)) if keystore_path else None
    worker = DeidWorker(
        config,
        signing_key=site_signing_key_from_env(),
        keystore=keystore,
        policy=policy,
        governance_keys=keys,
    )
    worker.install_signal_handlers()
    try:
        return worker.run()
    except KafkaException as exc:
        # Nothing of the current window was committed: a restart resumes exactly there.
        log.error("Kafka error, exiting for a restart: %s", exc)
        return EXIT_RESTART
