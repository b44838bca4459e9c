"""The MLLP listener: asyncio protocol objects, one per connection, feeding the ingest writer.

Per connection: frames are decoded incrementally; each message gets a slot in a FIFO so the
ACKs go back in the order the messages came, even though they are produced in batches on the
writer thread (MLLP senders match an ACK to the oldest unanswered message). A connection with
too many unanswered messages stops being read until the writer catches up (back-pressure), an
idle connection is closed after ``idle_timeout_seconds``, and a connection over
``max_connections`` is closed at once. Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any, cast

from site_agent.config import MllpConfig
from site_agent.hl7.mllp import END_BLOCK, START_BLOCK, FrameKind, MllpDecoder, MllpFrame
from site_agent.ingest import Hl7Item, IngestWriter

__all__ = ["MllpServer"]

log = logging.getLogger("site_agent.mllp")


class _Slot:
    __slots__ = ("ack", "done", "t0")

    def __init__(self, t0: float) -> None:
        self.ack: bytes | None = None
        self.done = False
        self.t0 = t0  # loop time when the frame was complete (for the ACK latency metric)


class MllpProtocol(asyncio.Protocol):
    def __init__(self, server: MllpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.decoder = MllpDecoder(server.config.max_message_bytes)
        self.pending: deque[_Slot] = deque()
        self.peer = ""
        self.last_activity = 0.0
        self.paused = False
        self.closing = False

    # asyncio callbacks -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP server: a stream transport (uvloop's do not inherit from asyncio.Transport).
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.last_activity = self.server.loop.time()
        srv = self.server
        if len(srv.connections) >= srv.config.max_connections or srv.stopping:
            log.warning("refusing %s: %d connections open", self.peer, len(srv.connections))
            self.closing = True
            transport.abort()
            return
        srv.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.server.loop.time()
        frames = self.decoder.feed(data)
        if frames:
            self._submit(frames)

    def eof_received(self) -> bool | None:
        # The sender half-closed: answer what is pending, then close (return False).
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        leftovers = self.decoder.close()
        if leftovers:
            self._submit(leftovers, answer=False)

    def pause_writing(self) -> None:  # the peer does not read its ACKs: stop reading from it
        if self.transport is not None and not self.paused:
            self.transport.pause_reading()
            self.paused = True

    def resume_writing(self) -> None:
        self._maybe_resume()

    # ------------------------------------------------------------------------------------------

    def _submit(self, frames: list[MllpFrame], answer: bool = True) -> None:
        srv = self.server
        now = datetime.now(UTC)
        t0 = srv.loop.time()
        for f in frames:
            reply = None
            if answer and f.kind in (FrameKind.MESSAGE, FrameKind.OVERSIZE):
                slot = _Slot(t0)
                self.pending.append(slot)
                reply = _Reply(self, slot)
            srv.writer.submit(
                Hl7Item(
                    payload=f.payload,
                    kind=f.kind,
                    size=f.size,
                    peer=self.peer,
                    received_at=now,
                    reply=reply,
                )
            )
        if (
            len(self.pending) >= srv.config.max_in_flight
            and self.transport is not None
            and not self.paused
        ):
            self.transport.pause_reading()
            self.paused = True

    def answered(self, slot: _Slot, ack: bytes | None) -> None:
        slot.ack = ack
        slot.done = True
        transport = self.transport
        pending = self.pending
        out: list[bytes] = []
        metrics = self.server.writer.metrics
        now = self.server.loop.time()
        while pending and pending[0].done:
            s = pending.popleft()
            if metrics is not None:
                metrics.ack_latency.observe(now - s.t0)
            if s.ack is None:
                # The store failed: no ACK may be sent. Close so the sender re-sends.
                out.clear()
                if transport is not None:
                    transport.close()
                return
            out.append(START_BLOCK + s.ack + END_BLOCK)
        if out and transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        self._maybe_resume()

    def _maybe_resume(self) -> None:
        if (
            self.paused
            and self.transport is not None
            and not self.transport.is_closing()
            and len(self.pending) < self.server.config.max_in_flight // 2 + 1
        ):
            self.paused = False
            self.transport.resume_reading()


class _Reply:
    """Callable handed to the writer; runs on the event loop with the ACK bytes."""

    __slots__ = ("proto", "slot")

    def __init__(self, proto: MllpProtocol, slot: _Slot) -> None:
        self.proto = proto
        self.slot = slot

    def __call__(self, ack: Any) -> None:
        if ack == b"":
            ack = None
        self.proto.answered(self.slot, ack)


class MllpServer:
    def __init__(self, config: MllpConfig, writer: IngestWriter) -> None:
        self.config = config
        self.writer = writer
        self.connections: set[MllpProtocol] = set()
        self.loop = asyncio.get_running_loop()
        self.server: asyncio.Server | None = None
        self.stopping = False
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self.server is not None  # noqa: S101
        sock = self.server.sockets[0]
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        self.server = await self.loop.create_server(
            lambda: MllpProtocol(self),
            self.config.host,
            self.config.port,
            backlog=1024,
            reuse_address=True,
        )
        self._sweeper = asyncio.create_task(self._sweep_idle(), name="mllp-idle-sweeper")
        log.info("MLLP listening on %s:%d", self.config.host, self.port)

    async def _sweep_idle(self) -> None:
        # One timer for all connections instead of one per connection per message.
        timeout = self.config.idle_timeout_seconds
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = self.loop.time()
            for conn in list(self.connections):
                if now - conn.last_activity > timeout and conn.transport is not None:
                    log.info("closing idle connection %s", conn.peer)
                    conn.transport.close()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, wait for in-flight ACKs, then close every connection."""
        self.stopping = True
        if self.server is not None:
            self.server.close()
        deadline = self.loop.time() + grace
        while any(c.pending for c in self.connections) and self.loop.time() < deadline:
            await asyncio.sleep(0.02)
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.server is not None:
            await self.server.wait_closed()
