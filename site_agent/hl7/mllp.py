"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2, Appendix C of the v2.5 spec).

A message travels as ``<VT> message <FS><CR>`` (0x0B … 0x1C 0x0D). The decoder is incremental,
tolerant and bounded, because interface engines, test harnesses and broken senders all reach the
same port:
- bytes outside a frame (``\\r\\n`` keep-alives are common, random garbage less so) are reported
  as junk, never parsed as a message;
- a frame larger than the configured maximum is cut: its first ``max_bytes`` are kept (so they can
  be stored as received and the MSH-10 of the sender recovered), the rest is discarded up to the
  end block and the frame is reported as oversize;
- a start block inside an open frame means the sender gave up on the frame and began again: the
  partial frame is reported as truncated (and not answered: the sender is waiting for the answer
  to its *new* frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["END_BLOCK", "START_BLOCK", "FrameKind", "MllpDecoder", "MllpFrame", "frame"]

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
_VT = 0x0B
_FS_CR = b"\x1c\x0d"


class FrameKind(Enum):
    MESSAGE = "message"
    OVERSIZE = "oversize"
    TRUNCATED = "truncated"
    JUNK = "junk"


@dataclass(frozen=True, slots=True)
class MllpFrame:
    kind: FrameKind
    payload: bytes
    # For OVERSIZE frames the payload is a prefix: this is how many bytes the sender sent.
    size: int


def frame(payload: bytes) -> bytes:
    return START_BLOCK + payload + END_BLOCK


class MllpDecoder:
    """Incremental decoder. ``feed`` returns the complete frames found so far."""

    __slots__ = ("_buf", "_discarded", "_in_frame", "_max", "_prefix", "_scan", "_tail")

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._buf = bytearray()
        self._in_frame = False
        self._scan = 0  # where to resume looking for the end block
        # While skipping the tail of an oversize frame: bytes of it seen so far, else -1.
        self._discarded = -1
        self._prefix = b""
        self._tail = b""  # a trailing 0x1C that may pair with a 0x0D in the next read

    @property
    def in_frame(self) -> bool:
        return self._in_frame or self._discarded >= 0

    def feed(self, data: bytes) -> list[MllpFrame]:
        # Fast path: one whole frame in one read, nothing buffered (the usual case).
        if (
            not self._buf
            and not self._in_frame
            and self._discarded < 0
            and len(data) >= 3
            and data[:1] == START_BLOCK
            and data.find(_FS_CR) == len(data) - 2
            and data.find(START_BLOCK, 1) == -1
            and len(data) - 3 <= self._max
        ):
            return [MllpFrame(FrameKind.MESSAGE, data[1:-2], len(data) - 3)]
        out: list[MllpFrame] = []
        if self._discarded >= 0:
            data = self._skip_oversize(data, out)
        buf = self._buf
        buf += data
        while buf:
            if not self._in_frame:
                i = buf.find(_VT)
                junk_end = len(buf) if i == -1 else i
                if junk_end:
                    junk = bytes(buf[:junk_end])
                    del buf[:junk_end]
                    # Blank lines between frames are normal keep-alives, not junk worth storing.
                    if junk.strip(b"\r\n\t "):
                        out.append(MllpFrame(FrameKind.JUNK, junk[: self._max], len(junk)))
                if i == -1:
                    break
                del buf[:1]
                self._in_frame = True
                self._scan = 0
                continue
            j = buf.find(_FS_CR, self._scan)
            restart = buf.find(_VT, self._scan, len(buf) if j == -1 else j)
            if restart != -1:
                out.append(
                    MllpFrame(FrameKind.TRUNCATED, bytes(buf[:restart][: self._max]), restart)
                )
                del buf[: restart + 1]
                self._scan = 0
                continue
            if j == -1:
                if len(buf) > self._max + 1:
                    # Too big: keep a prefix to store and to read MSH-10 from, drop the rest.
                    self._prefix = bytes(buf[: self._max])
                    self._discarded = len(buf)
                    self._tail = b"\x1c" if buf.endswith(b"\x1c") else b""
                    self._in_frame = False
                    buf.clear()
                    break
                # The end block may straddle two reads: rescan from its possible first byte.
                self._scan = max(0, len(buf) - 1)
                break
            out.append(MllpFrame(FrameKind.MESSAGE, bytes(buf[:j]), j))
            del buf[: j + 2]
            self._in_frame = False
            self._scan = 0
        return out

    def _skip_oversize(self, data: bytes, out: list[MllpFrame]) -> bytes:
        """Discard bytes of an oversize frame up to its end block; return what follows it."""
        chunk = self._tail + data
        end = chunk.find(_FS_CR)
        if end == -1:
            self._discarded += len(data)
            self._tail = b"\x1c" if data.endswith(b"\x1c") else b""
            return b""
        size = self._discarded + end - len(self._tail)
        out.append(MllpFrame(FrameKind.OVERSIZE, self._prefix, size))
        self._prefix = b""
        self._discarded = -1
        self._tail = b""
        return chunk[end + 2 :]

    def close(self) -> list[MllpFrame]:
        """The connection ended: report what was left unfinished."""
        out: list[MllpFrame] = []
        if self._discarded >= 0:
            out.append(MllpFrame(FrameKind.OVERSIZE, self._prefix, self._discarded))
        elif self._in_frame:
            out.append(
                MllpFrame(FrameKind.TRUNCATED, bytes(self._buf[: self._max]), len(self._buf))
            )
        self._buf.clear()
        self._in_frame = False
        self._discarded = -1
        self._prefix = b""
        self._tail = b""
        return out
