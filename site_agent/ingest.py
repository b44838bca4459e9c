"""The ingest writer: owns the twin and the store, and commits in groups.

Every input — MLLP frames, FHIR requests, timer ticks, "published" receipts from the relay —
is a work item. The writer takes everything that is waiting (up to a limit), processes it in
one SQLite transaction, commits it, fsyncs the WAL, and only then hands out the answers (the
ACKs). That is group commit: under load the batch grows by itself, so the cost of the fsync is
shared by every message that arrived while the previous batch was being written, and an idle
agent still answers each message after a single commit. When the disk is slow the fsync moves
to a thread and overlaps the next batch (see "driving it" below).

Failure isolation, per message: an ``ApplyError`` happens before the twin changes (answer AE,
quarantine); any other exception while applying one message makes the writer reload the twin
from the store — whose transaction holds exactly the messages before it — so the bad message
cannot leave half an update behind; it is quarantined with code 207 and the batch goes on.
If the commit itself fails, nothing is acknowledged: the connections are closed so senders
re-send, as MLLP senders do when no ACK comes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from site_agent.config import AgentConfig
from site_agent.feeds import FeedHealth
from site_agent.hl7.ack import AckCode, AckHeader, ErrorCode, build_ack, header_from_prefix
from site_agent.hl7.adt import AdtEvent, MessageRejected, event_from_message
from site_agent.hl7.er7 import Message, ParseError, parse_bytes
from site_agent.hl7.mllp import FrameKind
from site_agent.metrics import Metrics
from site_agent.publish import OutboxRecord, Publisher
from site_agent.store import Store
from site_agent.twin.census import census_for
from site_agent.twin.model import ApplyError, Changes, Twin

__all__ = [
    "CallItem",
    "FhirItem",
    "Hl7Item",
    "IngestWriter",
    "Reply",
]

log = logging.getLogger("site_agent.ingest")

Reply = Callable[[Any], None]
MAX_BATCH = 512
DISCHARGED_KEEP = timedelta(days=7)
MESSAGE_RETENTION = timedelta(days=30)
OUTBOX_RETENTION = timedelta(days=7)
PURGE_EVERY = timedelta(hours=1)
# The twin's state rows are a checkpoint written at most this often (and on stop); messages
# applied since are replayed on start. Writing every changed row per message would cost
# several random page writes per message on the ACK path.
STATE_FLUSH_SECONDS = 2.0
STATE_FLUSH_ROWS = 20_000
INLINE_FSYNC = 0.002  # seconds: fsyncs faster than this (moving average) run in line
# Group commit, gathering: MLLP senders wait for each ACK before sending the next message, so
# right after a batch is answered its senders are about to send again. The next batch waits
# (at most GATHER_WAIT, parsing what is there meanwhile) until every sender active in the
# last ACTIVE_WINDOW that is not still waiting for an ACK has something queued, so that
# fewer, larger batches share the COMMITs and fsyncs.
# 0.3 ms: long enough for a sender that got its ACK a moment ago; 1 ms measured worse on a
# machine where the senders wait for a core (the loop idles while they do).
GATHER_WAIT = 0.0003  # seconds
ACTIVE_WINDOW = 0.25  # seconds


@dataclass(slots=True)
class Hl7Item:
    """One MLLP frame. ``reply`` gets the ACK bytes, b"" for "no answer due", None on failure."""

    payload: bytes
    kind: FrameKind
    size: int
    peer: str
    received_at: datetime
    reply: Reply | None = None
    channel: str = "mllp"
    # The frame parsed while the writer was waiting for the rest of a batch (see ``submit``).
    parsed: tuple[Any, ...] | None = None


@dataclass(slots=True)
class FhirItem:
    """Validated FHIR resources from one request; ``apply`` runs in the writer's batch."""

    raw: bytes
    feed: str
    peer: str
    received_at: datetime
    apply: Callable[[IngestWriter, datetime], Any]
    reply: Reply | None = None


@dataclass(slots=True)
class CallItem:
    """Run ``fn`` in the writer's batch transaction (status, tests, admin)."""

    fn: Callable[[IngestWriter], Any]
    reply: Reply | None = None


@dataclass(slots=True)
class _Tick:
    pass


@dataclass(slots=True)
class _Published:
    seqs: list[int]


@dataclass(slots=True)
class _Stop:
    pass


@dataclass(slots=True)
class WriterStats:
    messages: int = 0
    batches: int = 0
    applied: int = 0
    quarantined: int = 0
    rejected: int = 0
    duplicates: int = 0
    outbox_written: int = 0
    outbox_published: int = 0
    largest_batch: int = 0
    commit_seconds: float = 0.0  # time spent in COMMIT (the fsync), summed
    prepare_seconds: float = 0.0  # time spent processing batches before COMMIT, summed
    last_commit_at: datetime | None = None
    by_code: dict[str, int] = field(default_factory=dict)


class IngestWriter:
    """Owns the twin, the store and the outbox writes. Thread-safe entry points: ``submit*``."""

    def __init__(
        self,
        config: AgentConfig,
        store: Store,
        publisher: Publisher,
        *,
        deliver: Callable[[list[tuple[Reply, Any]]], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.publisher = publisher
        self.tz = config.timezone
        self._pending: list[Any] = []
        self._outbox_buf: list[OutboxRecord] = []
        self.metrics: Metrics | None = None
        self._busy = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._syncer: _Syncer | None = None
        # Gathering (see GATHER_WAIT): MLLP peers -> monotonic time of their last message,
        # replies handed to the syncer and not delivered yet, the wait in progress.
        self._peers: dict[str, float] = {}
        self._unanswered = 0
        self._gather: asyncio.Future[None] | None = None
        self._gather_target = 0
        self._stopping = False
        self._outbox_seq = 0  # highest outbox seq written so far
        # Called on the loop with the highest outbox seq known to be on disk (relay gating).
        self.on_durable: Callable[[int], None] | None = None
        self._now = datetime.now(UTC)
        self._deliver = deliver or _deliver_here
        self._dirty_patients: set[str] = set()
        self._dirty_beds: set[tuple[str, str, str]] = set()
        self._dirty_unit_rows: set[str] = set()
        self._last_seq = 0
        self._last_flush = 0.0
        self.feeds = FeedHealth(config.stale_after, config.expected_feeds)
        self.feeds.restore(store.load_feeds())
        self.twin = self._load_twin()
        self.stats = WriterStats()
        self.backlog = store.outbox_backlog()
        self._dirty_units: set[str] = set()
        self._last_snapshot: dict[str, datetime] = {}
        self._last_full: datetime | None = None
        self._last_heartbeat: datetime | None = None
        self._last_purge: datetime | None = None
        self._ack_ts = ""
        self._iso_at: datetime | None = None
        self._iso_text = ""

    # --- life cycle --------------------------------------------------------------------------

    def _new_twin(self) -> Twin:
        return Twin(
            self.config.units,
            location_source=self.config.location_source,
            bed_status_source=self.config.bed_status_source,
        )

    def _load_twin(self) -> Twin:
        """Checkpointed state + replay of the messages applied after it (restart recovery)."""
        store = self.store
        store.begin()
        try:
            twin = self._new_twin()
            store.load_into(twin)
            self.twin = twin
            replayed = self._replay(store.state_seq())
            if replayed:
                log.info("replayed %d messages applied after the last state checkpoint", replayed)
            self._last_seq = store.last_message_seq()
            # Persist the configured structure (new units or beds, changed flags) and the
            # replayed state as the new checkpoint.
            store.save_twin(twin)
            if self.feeds.dirty:
                store.save_feeds(self.feeds.rows(self.feeds.dirty))
                self.feeds.dirty.clear()
            store.set_state_seq(self._last_seq)
            self._dirty_patients.clear()
            self._dirty_beds.clear()
            self._dirty_unit_rows.clear()
            store.commit()
        except BaseException:
            store.rollback()
            raise
        return twin

    def _replay(self, after_seq: int) -> int:
        """Re-apply applied messages after ``after_seq`` to ``self.twin`` (no outbox, no ACK).

        Applying is deterministic given the state, the message and its receipt time, so this
        rebuilds exactly the twin the messages built the first time.
        """
        count = 0
        for _seq, channel, received, raw in self.store.applied_since(after_seq):
            received_at = datetime.fromisoformat(received)
            self.twin.received_at = received_at
            try:
                if channel == "mllp":
                    ev = event_from_message(parse_bytes(raw), self.tz, received_at)
                    self.twin.apply_adt(ev)
                    self._replayed_feed(ev.feed, received_at)
                else:
                    from site_agent.fhir.mapping import replay_fhir

                    replay_fhir(self, raw, channel, received_at)
            except Exception:
                log.exception("replay of message %d failed; skipped", _seq)
            changes = self.twin.take_changes()
            self._mark_dirty(changes)
            count += 1
        return count

    def _replayed_feed(self, name: str, at: datetime) -> None:
        f = self.feeds.feeds.get(name)
        if f is None or f.last_message_at is None or f.last_message_at < at:
            # Feed health is checkpointed with the state: bring it up to date too.
            self.feeds.spoke(name, at, kind="hl7-adt")

    def _reload_twin(self) -> None:
        """Rebuild the twin from the store inside the open transaction (after a bug)."""
        self.twin = self._new_twin()
        self.store.load_into(self.twin)
        self._replay(self.store.state_seq())
        self._dirty_units.update(self.twin.units)

    def _mark_dirty(self, changes: Changes) -> None:
        self._dirty_patients |= changes.patients
        self._dirty_patients |= changes.removed_patients
        self._dirty_beds |= changes.beds
        self._dirty_unit_rows |= changes.unit_rows
        self._dirty_unit_rows |= changes.units

    def _flush_state(self, *, force: bool = False) -> None:
        """Write the changed twin rows and move the checkpoint to the last message."""
        dirty = (
            len(self._dirty_patients)
            + len(self._dirty_beds)
            + len(self._dirty_unit_rows)
            + len(self.feeds.dirty)
        )
        mono = time.monotonic()
        if not force and (
            not dirty
            or (mono - self._last_flush < STATE_FLUSH_SECONDS and dirty < STATE_FLUSH_ROWS)
        ):
            return
        store = self.store
        twin = self.twin
        patients = twin.patients
        store.save_patients([patients[m] for m in self._dirty_patients if m in patients])
        gone = [m for m in self._dirty_patients if m not in patients]
        if gone:
            store.delete_patients(gone)
        beds = []
        for ucode, room, bed in self._dirty_beds:
            unit = twin.units.get(ucode)
            b = unit.beds.get((room, bed)) if unit is not None else None
            if b is not None:
                beds.append(b)
        store.save_beds(beds)
        for ucode in self._dirty_unit_rows:
            if ucode in twin.units:
                store.save_unit(twin.units[ucode])
        if self.feeds.dirty:
            store.save_feeds(self.feeds.rows(self.feeds.dirty))
            self.feeds.dirty.clear()
        store.set_state_seq(self._last_seq)
        self._dirty_patients.clear()
        self._dirty_beds.clear()
        self._dirty_unit_rows.clear()
        self._last_flush = mono

    # --- driving it --------------------------------------------------------------------------
    #
    # On the event loop (``start``): items are appended to a list; a task turns everything
    # waiting into one batch, processes it (pure Python plus SQLite inserts into its page
    # cache) and COMMITs it (WAL frames to the OS, no fsync), then takes the next batch. The
    # syncer thread fsyncs the WAL and releases the ACKs of every batch committed before that
    # fsync began: the disk flush of batch N overlaps the work on batch N+1, and when the disk
    # is slow one fsync covers several batches. Nothing is acknowledged before it is on disk.
    # Without a loop (tests, tools), ``process`` fsyncs and answers in line.

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._stopping = False
        self._syncer = _Syncer(self.store, loop, self._durable)

    async def stop(self) -> None:
        """Process everything submitted so far, write the state checkpoint, stop."""
        self._stopping = True  # no more gathering: nobody is going to send
        self.submit(_Stop())
        while self._pending or self._busy:
            await asyncio.sleep(0.01)
        if self._syncer is not None:
            await asyncio.to_thread(self._syncer.stop)
            await asyncio.sleep(0)  # run the last deliveries it scheduled
            self._syncer = None
        self._loop = None
        st = self.stats
        log.info(
            "writer stopped: %d HL7 messages in %d batches (largest %d), %.1f s preparing, "
            "%.1f s committing",
            st.messages,
            st.batches,
            st.largest_batch,
            st.prepare_seconds,
            st.commit_seconds,
        )

    def submit(self, item: Any) -> None:
        """Queue one item (on the loop thread)."""
        self._pending.append(item)
        if not self._busy and self._loop is not None:
            self._busy = True
            self._loop.create_task(self._cycle())
        elif self._gather is not None and not self._gather.done():
            if len(self._pending) >= self._gather_target:
                self._gather.set_result(None)
            else:
                self._parse_early((item,))

    def _parse_early(self, items: Sequence[Any]) -> None:
        """While the loop would sit idle waiting for the rest of a batch, parse the frames
        that are here. Parsing depends on nothing but the frame (not on the twin)."""
        for item in items:
            if type(item) is Hl7Item and item.parsed is None:
                try:
                    item.parsed = self._parse(item, self._now)
                except Exception:  # the batch parses it again and decides what happens
                    item.parsed = None

    def tick(self) -> None:
        self.submit(_Tick())

    async def _cycle(self) -> None:
        try:
            while self._pending:
                target = self._expected()
                if len(self._pending) < target and not self._stopping:
                    await self._wait_for(target)
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                self.process(batch)
                # Let the protocols read what arrived meanwhile: it is the next batch.
                await asyncio.sleep(0)
        finally:
            self._busy = False

    def _expected(self) -> int:
        """How many items the next batch should wait for: the MLLP peers active lately that
        are not waiting for an ACK (each is about to send), at most MAX_BATCH."""
        peers = self._peers
        if not peers:
            return 0
        horizon = time.monotonic() - ACTIVE_WINDOW
        for peer in [p for p, t in peers.items() if t < horizon]:
            del peers[peer]
        return min(len(peers) - self._unanswered, MAX_BATCH)

    async def _wait_for(self, target: int) -> None:
        """Wait until ``target`` items are queued, or GATHER_WAIT has passed."""
        loop = self._loop
        if loop is None:
            return
        self._parse_early(self._pending)
        fut: asyncio.Future[None] = loop.create_future()
        self._gather = fut
        self._gather_target = target
        timer = loop.call_later(GATHER_WAIT, _settle, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._gather = None

    def process(self, batch: Sequence[Any]) -> None:
        """One batch: prepare, commit, then answer once it is on disk."""
        t0 = time.perf_counter()
        replies = self._prepare(batch)
        t1 = time.perf_counter()
        ok = self._commit() if replies is not None else False
        self.stats.prepare_seconds += t1 - t0
        self.stats.commit_seconds += time.perf_counter() - t1
        self._finish(batch, replies, ok)

    def _durable(self, replies: list[tuple[Reply, Any]], outbox_seq: int, ok: bool) -> None:
        """On the loop, after the fsync that covers a batch: answer, tell the relay."""
        self._unanswered = max(0, self._unanswered - len(replies))
        if not ok:
            # The disk refused the fsync: durability is unknown, so no ACK; senders re-send
            # and the duplicates are acknowledged without being applied twice.
            replies = [(r, None) for r, _ in replies]
        if replies:
            self._deliver(replies)
        if ok and outbox_seq and self.on_durable is not None:
            self.on_durable(outbox_seq)

    def _prepare(self, batch: Sequence[Any]) -> list[tuple[Reply, Any]] | None:
        """Everything but the COMMIT, in one open transaction. None if it failed."""
        now = datetime.now(UTC)
        self._now = now
        self._ack_ts = _hl7_ts(now.astimezone(self.tz))
        replies: list[tuple[Reply, Any]] = []
        store = self.store
        store.begin()
        try:
            parsed = [
                (i.parsed or self._parse(i, now)) if isinstance(i, Hl7Item) else None for i in batch
            ]
            mono = time.monotonic()
            peers = self._peers
            for item, p in zip(batch, parsed, strict=True):
                if isinstance(item, Hl7Item):
                    ack = self._hl7(item, p, now)
                    if item.reply is not None:
                        replies.append((item.reply, ack))
                        peers[item.peer] = mono
                elif isinstance(item, _Published):
                    store.mark_published(item.seqs, now.isoformat())
                    self.backlog -= len(item.seqs)
                    self.stats.outbox_published += len(item.seqs)
                elif isinstance(item, FhirItem):
                    result = self._fhir(item, now)
                    if item.reply is not None:
                        replies.append((item.reply, result))
                elif isinstance(item, CallItem):
                    result = item.fn(self)
                    if item.reply is not None:
                        replies.append((item.reply, result))
                elif isinstance(item, _Tick):
                    self._tick(now)
            self._snapshots(now, force=False)
            if self._outbox_buf:
                store.add_outbox(self._outbox_buf)
                self._outbox_buf = []
                self._outbox_seq = store.max_outbox_seq()
            self._flush_state(force=any(isinstance(i, _Stop) for i in batch))
        except Exception:
            log.exception("batch of %d items failed; nothing acknowledged", len(batch))
            store.rollback()
            self._outbox_buf = []
            return None
        return replies

    def _commit(self) -> bool:
        """COMMIT: the fsync that makes the batch durable."""
        try:
            self.store.commit()
        except Exception:
            log.exception("commit failed; nothing acknowledged")
            self.store.rollback()
            return False
        return True

    def _finish(
        self, batch: Sequence[Any], replies: list[tuple[Reply, Any]] | None, ok: bool
    ) -> None:
        if ok:
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            self.stats.last_commit_at = self._now
            if self.metrics is not None:
                self.metrics.batch_size.observe(len(batch))
            seq = self._outbox_seq
            syncer = self._syncer
            # A fast disk (fsync well under a millisecond) is cheapest to sync right here; a
            # slow one goes to the syncer thread so the next batch does not wait for it.
            if syncer is not None and not (syncer.idle and syncer.fsync_seconds < INLINE_FSYNC):
                self._unanswered += len(replies or ())
                syncer.submit(replies or [], seq)
                return
            try:
                t = time.perf_counter()
                self.store.sync_wal()
                if syncer is not None:
                    syncer.observe(time.perf_counter() - t)
            except OSError:
                log.exception("fsync of the WAL failed; nothing acknowledged")
                self._durable(replies or [], seq, ok=False)
                return
            self._durable(replies or [], seq, ok=True)
            return
        # The transaction is gone: rebuild memory from what is committed, answer nothing
        # (MLLP senders re-send what was not acknowledged).
        self._dirty_patients.clear()
        self._dirty_beds.clear()
        self._dirty_unit_rows.clear()
        self._last_seq = self.store.last_message_seq()
        self.feeds = FeedHealth(self.config.stale_after, self.config.expected_feeds)
        self.feeds.restore(self.store.load_feeds())
        self._reload_twin()
        self.backlog = self.store.outbox_backlog()
        replies = [(i.reply, None) for i in batch if getattr(i, "reply", None) is not None]
        if replies:
            self._deliver(replies)

    # --- HL7 ---------------------------------------------------------------------------------

    def _parse(self, item: Hl7Item, now: datetime) -> tuple[Any, ...]:
        """(header, event | None, rejection | None, message | None) for one frame."""
        if item.kind is not FrameKind.MESSAGE:
            return (header_from_prefix(item.payload), None, None, None)
        try:
            msg = parse_bytes(item.payload)
        except ParseError as exc:
            rej = MessageRejected(AckCode.AR, ErrorCode.DATA_TYPE, f"cannot parse: {exc}"[:200])
            return (header_from_prefix(item.payload), None, rej, None)
        header = _header(msg)
        try:
            ev = event_from_message(msg, self.tz, item.received_at)
        except MessageRejected as rej:
            return (header, None, rej, msg)
        return (header, ev, None, msg)

    def _hl7(self, item: Hl7Item, parsed: tuple[Any, ...] | None, now: datetime) -> bytes:
        assert parsed is not None  # noqa: S101 - _parse ran for every Hl7Item
        header, ev, rej, _msg = parsed
        store = self.store
        received = self._iso(item.received_at)
        self.stats.messages += 1
        # Frames that are not messages: store them, answer what can be answered.
        if item.kind is not FrameKind.MESSAGE:
            reason = {
                FrameKind.JUNK: f"{item.size} bytes outside an MLLP frame",
                FrameKind.TRUNCATED: f"MLLP frame cut off after {item.size} bytes",
                FrameKind.OVERSIZE: (
                    f"message of {item.size} bytes exceeds the limit of "
                    f"{self.config.mllp.max_message_bytes} (first bytes stored)"
                ),
            }[item.kind]
            code = AckCode.AR if item.kind is FrameKind.OVERSIZE else None
            seq = self._insert_message(
                received_at=received,
                channel=item.channel,
                peer=item.peer,
                control_key=None,
                trigger=header.trigger or None,
                status="rejected",
                ack_code=code.value if code else None,
                size=item.size,
                raw=item.payload,
            )
            store.quarantine(seq, received, code.value if code else "-", "207", reason)
            self.stats.rejected += 1
            log.warning("%s from %s: %s", item.kind.value, item.peer, reason)
            if code is None:
                return b""
            self.feeds.error(_feed_name(header), kind="hl7-adt")
            return self._ack(header, AckCode.AR, now, reason, ErrorCode.INTERNAL_ERROR)
        control_key = (
            f"{header.sending_app}|{header.sending_facility}|{header.control_id}"
            if header.control_id
            else None
        )
        feed = _feed_name(header)
        if rej is not None:
            return self._reject(item, header, control_key, rej, now, feed)
        assert isinstance(ev, AdtEvent)  # noqa: S101
        assert control_key is not None  # noqa: S101 - MSH-10 is required by the parser
        # Stored first, as received, as "applied": the unique index on the control key of
        # applied messages refuses a re-send of one (the rare case), which is then stored as a
        # duplicate. If applying fails below, the status changes and the key is free again.
        try:
            seq = self._insert_message(
                received_at=received,
                channel=item.channel,
                peer=item.peer,
                control_key=control_key,
                trigger=ev.trigger,
                status="applied",
                ack_code="AA",
                size=item.size,
                raw=item.payload,
            )
        except sqlite3.IntegrityError:
            # Applied before: acknowledge again, apply once.
            self._insert_message(
                received_at=received,
                channel=item.channel,
                peer=item.peer,
                control_key=control_key,
                trigger=ev.trigger,
                status="duplicate",
                ack_code="AA",
                size=item.size,
                raw=item.payload,
            )
            self.feeds.spoke(feed, item.received_at, kind="hl7-adt")
            self.stats.duplicates += 1
            return self._ack(header, AckCode.AA, now, "duplicate of an applied message")
        try:
            self.twin.received_at = item.received_at
            self.twin.apply_adt(ev)
            changes = self.twin.take_changes()
            rows = self.publisher.flow_rows(self.twin, changes.flows, now)
        except ApplyError as exc:
            self.twin.take_changes()
            rej = MessageRejected(AckCode.AE, exc.error, exc.text)
            return self._reject(item, header, control_key, rej, now, feed, seq=seq)
        except Exception as exc:
            log.exception("applying %s %s failed; twin reloaded", ev.trigger, header.control_id)
            store.set_message_status(seq, "quarantined")
            self._reload_twin()
            rej = MessageRejected(
                AckCode.AE, ErrorCode.INTERNAL_ERROR, f"internal error: {type(exc).__name__}"
            )
            return self._reject(item, header, control_key, rej, now, feed, seq=seq)
        self.persist(changes, rows, now)
        self.feeds.spoke(feed, item.received_at, kind="hl7-adt")
        self.stats.applied += 1
        return self._ack(header, AckCode.AA, now)

    def persist(self, changes: Changes, rows: list[OutboxRecord], now: datetime) -> None:
        """Record what one message changed: twin rows go to the next state checkpoint,
        conflicts and outbox records are written now, in the open transaction."""
        self._mark_dirty(changes)
        if changes.conflicts:
            self.store.save_conflicts(now.isoformat(), changes.conflicts)
            for c in changes.conflicts:
                log.warning(
                    "conflict %s on %s: authoritative=%s other=%s -> %s",
                    c.kind,
                    c.subject,
                    c.authoritative,
                    c.other,
                    c.resolution,
                )
        if changes.notes and log.isEnabledFor(logging.DEBUG):
            for note in changes.notes:
                log.debug("%s", note)
        if rows:
            self._add_outbox(rows)
        self._dirty_units |= changes.units

    def _add_outbox(self, rows: list[OutboxRecord]) -> None:
        # Buffered and written once per batch (in order): one executemany, not one per message.
        self._outbox_buf.extend(rows)
        self.backlog += len(rows)
        self.stats.outbox_written += len(rows)

    def _iso(self, at: datetime) -> str:
        """``at.isoformat()``, remembered for the last datetime: the frames of one read share
        their receipt time, so most messages of a batch reuse the text."""
        if at is not self._iso_at:
            self._iso_at = at
            self._iso_text = at.isoformat()
        return self._iso_text

    def _insert_message(self, **kw: Any) -> int:
        seq = self.store.insert_message(**kw)
        self._last_seq = seq
        return seq

    def _reject(
        self,
        item: Hl7Item,
        header: AckHeader,
        control_key: str | None,
        rej: MessageRejected,
        now: datetime,
        feed: str,
        *,
        seq: int | None = None,
    ) -> bytes:
        received = item.received_at.isoformat()
        status = "quarantined" if rej.code is AckCode.AE else "rejected"
        if seq is None:
            seq = self._insert_message(
                received_at=received,
                channel=item.channel,
                peer=item.peer,
                control_key=control_key,
                trigger=header.trigger or None,
                status=status,
                ack_code=rej.code.value,
                size=item.size,
                raw=item.payload,
            )
        else:
            self.store.set_message_status(seq, status, rej.code.value)
        self.store.quarantine(seq, received, rej.code.value, rej.error.value, rej.text)
        if rej.code is AckCode.AE:
            self.stats.quarantined += 1
            self.feeds.spoke(feed, item.received_at, error=True, kind="hl7-adt")
        else:
            self.stats.rejected += 1
            self.feeds.error(feed, kind="hl7-adt")
        log.info("%s %s from %s: %s", rej.code.value, header.control_id or "-", item.peer, rej.text)
        return self._ack(header, rej.code, now, rej.text, rej.error, rej.segment, rej.field_no)

    def _ack(
        self,
        header: AckHeader,
        code: AckCode,
        now: datetime,
        text: str = "",
        error: ErrorCode | None = None,
        segment: str = "",
        field_no: int = 0,
    ) -> bytes:
        self.stats.by_code[code.value] = self.stats.by_code.get(code.value, 0) + 1
        if self.metrics is not None:
            self.metrics.hl7.labels(header.trigger or "-", code.value).inc()
        return build_ack(
            header,
            code,
            now=self._ack_ts,
            text=text,
            error=error,
            error_segment=segment,
            error_field=field_no,
            facility=self.config.site_code,
        )

    # --- FHIR --------------------------------------------------------------------------------

    def _fhir(self, item: FhirItem, now: datetime) -> Any:
        received = item.received_at.isoformat()
        seq = self._insert_message(
            received_at=received,
            channel=item.feed,
            peer=item.peer,
            control_key=None,
            trigger=None,
            status="applied",
            ack_code=None,
            size=len(item.raw),
            raw=item.raw,
        )
        try:
            self.twin.received_at = item.received_at
            result = item.apply(self, now)
        except Exception as exc:
            # All or nothing (a transaction Bundle may have applied some entries already):
            # take the request out of the replay and rebuild the twin without it.
            self.twin.take_changes()
            self.store.set_message_status(seq, "quarantined")
            self._reload_twin()
            if isinstance(exc, ApplyError):
                self.store.quarantine(seq, received, "AE", exc.error.value, exc.text)
                self.feeds.spoke(item.feed, item.received_at, error=True, kind=item.feed)
                return exc
            log.exception("applying FHIR input failed; twin reloaded")
            self.store.quarantine(seq, received, "AE", "207", f"internal error: {exc!r}"[:200])
            return ApplyError(ErrorCode.INTERNAL_ERROR, "internal error")
        self.feeds.spoke(item.feed, item.received_at, kind=item.feed)
        return result

    def apply_changes(self, now: datetime) -> None:
        """For FHIR mapping code: persist and publish what the twin recorded so far."""
        changes = self.twin.take_changes()
        rows = self.publisher.flow_rows(self.twin, changes.flows, now)
        self.persist(changes, rows, now)

    # --- timers: snapshots, heartbeats, retention ---------------------------------------------

    def _tick(self, now: datetime) -> None:
        cfg = self.config
        if self.metrics is not None:
            m = self.metrics
            m.backlog.set(self.backlog)
            m.stale_feeds.set(sum(1 for n in self.feeds.feeds if self.feeds.is_stale(n, now)))
            oldest = self.store.oldest_unpublished()
            m.oldest.set((now - oldest).total_seconds() if oldest is not None else 0.0)
        for name in self.feeds.newly_changed(now):
            if self.feeds.is_stale(name, now):
                log.warning("feed %s is stale: nothing for %s", name, cfg.stale_after)
            else:
                log.info("feed %s is fresh again", name)
            self._dirty_units.update(
                u.code for u in self.twin.units.values() if u.last_source in (name, "")
            )
            self.feeds.dirty.add(name)
        if self._last_full is None or now - self._last_full >= cfg.snapshot_interval:
            self._snapshots(now, force=True)
            self._last_full = now
        if self._last_heartbeat is None or now - self._last_heartbeat >= cfg.heartbeat_interval:
            row = self.publisher.heartbeat_row(self.feeds.statuses(now), self.backlog, now)
            self._add_outbox([row])
            self._last_heartbeat = now
        if self._last_purge is None or now - self._last_purge >= PURGE_EVERY:
            self._last_purge = now
            changes_before = len(self.twin.patients)
            n = self.twin.purge_discharged(now - DISCHARGED_KEEP)
            if n:
                self.persist(self.twin.take_changes(), [], now)
            msgs, outbox = self.store.purge(
                messages_before=(now - MESSAGE_RETENTION).isoformat(),
                outbox_before=(now - OUTBOX_RETENTION).isoformat(),
            )
            if n or msgs or outbox:
                log.info(
                    "retention: %d of %d patients, %d messages, %d published records purged",
                    n,
                    changes_before,
                    msgs,
                    outbox,
                )

    def _snapshots(self, now: datetime, *, force: bool) -> None:
        """Census snapshots: all units when forced (the minute timer), else units that changed
        — at most once per ``snapshot_min_interval`` each, so a burst of messages on one unit
        makes one snapshot, not one per message; the rest waits for the next tick."""
        units = self.twin.units
        codes = list(units) if force else list(self._dirty_units)
        if not codes:
            return
        min_gap = self.config.snapshot_min_interval
        rows = []
        for code in codes:
            unit = units.get(code)
            if unit is None:
                self._dirty_units.discard(code)
                continue
            last = self._last_snapshot.get(code)
            if not force and last is not None and now - last < min_gap:
                continue
            census = census_for(self.twin, unit, now)
            stale = (
                self.feeds.is_stale(unit.last_source, now)
                if unit.last_source
                else not self.feeds.any_fresh(now)
            )
            rows.append(
                self.publisher.snapshot_row(census, stale=stale, now=now, source_kind="config")
            )
            self._last_snapshot[code] = now
            self._dirty_units.discard(code)
        if rows:
            self._add_outbox(rows)


class _Syncer:
    """The fsync thread: group commit's second half (see IngestWriter, "driving it")."""

    def __init__(
        self,
        store: Store,
        loop: asyncio.AbstractEventLoop,
        done: Callable[[list[tuple[Reply, Any]], int, bool], None],
    ) -> None:
        self.store = store
        self.loop = loop
        self.done = done
        self._cond = threading.Condition()
        self._pending: list[tuple[list[tuple[Reply, Any]], int]] = []
        self._stopping = False
        self._busy = False
        self.fsync_seconds = 0.0  # moving average of fsync durations
        self._thread = threading.Thread(target=self._run, name="wal-fsync", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        return not self._busy and not self._pending

    def observe(self, seconds: float) -> None:
        self.fsync_seconds = 0.8 * self.fsync_seconds + 0.2 * seconds

    def submit(self, replies: list[tuple[Reply, Any]], outbox_seq: int) -> None:
        with self._cond:
            self._pending.append((replies, outbox_seq))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return
                taken, self._pending = self._pending, []
                self._busy = True
            # Every batch in ``taken`` was committed before this fsync starts.
            try:
                t = time.perf_counter()
                self.store.sync_wal()
                self.observe(time.perf_counter() - t)
                ok = True
            except OSError:
                log.exception("fsync of the WAL failed; nothing acknowledged")
                ok = False
            finally:
                self._busy = False
            replies = [r for rs, _ in taken for r in rs]
            seq = max(s for _, s in taken)
            try:
                self.loop.call_soon_threadsafe(self.done, replies, seq, ok)
            except RuntimeError:  # the loop is closed: nobody left to answer
                return


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def published_item(seqs: list[int]) -> Any:
    """The work item that marks outbox rows published (from the relay's delivery reports)."""
    return _Published(seqs)


def _hl7_ts(dt: datetime) -> str:
    return dt.strftime("%Y%m%d%H%M%S%z")


def _header(msg: Message) -> AckHeader:
    msh = msg.msh
    f = msh.fields
    enc = msg.enc
    plain = "".join(f[3:7]) + "".join(f[10:13]) if len(f) > 12 else ""
    if (
        plain
        and enc.component not in plain
        and enc.repetition not in plain
        and enc.escape not in plain
        and enc.subcomponent not in plain
        and '"' not in plain
    ):
        # The usual case: plain values, no need to split or unescape.
        return AckHeader(
            sending_app=f[3],
            sending_facility=f[4],
            receiving_app=f[5],
            receiving_facility=f[6],
            trigger=msh.get(9, 2),
            control_id=f[10],
            processing_id=f[11] or "P",
            version=f[12] or "2.5",
            encoding=enc,
        )
    return AckHeader(
        sending_app=msh.get(3),
        sending_facility=msh.get(4),
        receiving_app=msh.get(5),
        receiving_facility=msh.get(6),
        trigger=msh.get(9, 2),
        control_id=msh.get(10),
        processing_id=msh.get(11) or "P",
        version=msh.get(12) or "2.5",
        encoding=enc,
    )


def _feed_name(header: AckHeader) -> str:
    return header.sending_app or "unknown"


def _deliver_here(replies: list[tuple[Reply, Any]]) -> None:
    for reply, value in replies:
        reply(value)
