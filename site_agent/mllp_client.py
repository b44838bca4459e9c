"""A small asyncio MLLP client: send a message, wait for its ACK (as interface engines do)."""

from __future__ import annotations

import asyncio
import contextlib

from site_agent.hl7.mllp import END_BLOCK, START_BLOCK

__all__ = ["MllpClient", "ack_code"]


def ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK ("AA", "AE", "AR"), or "" if there is none."""
    for seg in ack.replace(b"\n", b"\r").split(b"\r"):
        if seg.startswith(b"MSA"):
            sep = seg[3:4]
            parts = seg.split(sep)
            return parts[1].decode("ascii", "replace") if len(parts) > 1 else ""
    return ""


class MllpClient:
    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> MllpClient:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=2**24), self.timeout
        )
        return self

    async def __aenter__(self) -> MllpClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
            self._writer = None

    async def send_raw(self, data: bytes) -> None:
        assert self._writer is not None  # noqa: S101
        self._writer.write(data)
        await self._writer.drain()

    async def read_ack(self) -> bytes:
        assert self._reader is not None  # noqa: S101
        data = await asyncio.wait_for(self._reader.readuntil(END_BLOCK), self.timeout)
        start = data.find(START_BLOCK)
        return data[start + 1 : -2] if start != -1 else data[:-2]

    async def send(self, message: bytes | str) -> bytes:
        """Send one message and return its ACK (the frame content)."""
        payload = message.encode("utf-8") if isinstance(message, str) else message
        await self.send_raw(START_BLOCK + payload + END_BLOCK)
        return await self.read_ack()
