"""Group commit on the event loop: the next batch gathers the senders the last one answered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from site_agent import ingest
from site_agent.config import AgentConfig
from site_agent.hl7.mllp import FrameKind
from site_agent.ingest import Hl7Item, IngestWriter
from site_agent.publish import Publisher
from site_agent.store import Store

from .hl7msg import adt, msa


def _item(peer: str, control: str, replies: dict[str, asyncio.Future[Any]]) -> Hl7Item:
    payload = adt("A04", f"P{control}", cls="E", loc="ED", control=control).encode()
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    replies[control] = fut
    return Hl7Item(
        payload, FrameKind.MESSAGE, len(payload), peer, datetime.now(UTC), fut.set_result
    )


async def _writer(config: AgentConfig) -> IngestWriter:
    writer = IngestWriter(config, Store(config.database_path), Publisher(config.site_code))
    writer.start(asyncio.get_running_loop())
    return writer


async def _first_round(writer: IngestWriter, replies: dict[str, asyncio.Future[Any]]) -> None:
    for peer in ("a", "b", "c"):
        writer.submit(_item(peer, f"{peer}1", replies))
    await asyncio.gather(*replies.values())
    assert writer.stats.batches == 1


def test_the_next_batch_waits_for_every_sender_just_answered(
    config: AgentConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wait far longer than the test: only the arrival of the third message can end it.
    monkeypatch.setattr(ingest, "GATHER_WAIT", 60.0)

    async def body() -> list[tuple[str, str]]:
        writer = await _writer(config)
        replies: dict[str, asyncio.Future[Any]] = {}
        try:
            await _first_round(writer, replies)
            a2 = _item("a", "a2", replies)
            writer.submit(a2)
            for _ in range(20):
                await asyncio.sleep(0)
            assert writer.stats.batches == 1  # waiting for b and c, nothing committed yet
            assert not replies["a2"].done()
            assert a2.parsed is not None  # parsed while waiting
            b2 = _item("b", "b2", replies)
            writer.submit(b2)
            assert b2.parsed is not None
            writer.submit(_item("c", "c2", replies))
            acks = await asyncio.gather(*(replies[c] for c in ("a2", "b2", "c2")))
            assert writer.stats.batches == 2
            assert writer.stats.largest_batch == 3
            return [msa(a) for a in acks]
        finally:
            await writer.stop()
            writer.store.close()

    assert asyncio.run(body()) == [("AA", "a2"), ("AA", "b2"), ("AA", "c2")]


def test_a_sender_that_stays_silent_only_delays_the_batch(
    config: AgentConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "GATHER_WAIT", 0.05)

    async def body() -> tuple[str, str]:
        writer = await _writer(config)
        replies: dict[str, asyncio.Future[Any]] = {}
        try:
            await _first_round(writer, replies)
            writer.submit(_item("a", "a2", replies))  # b and c have nothing more to say
            ack = await replies["a2"]
            assert writer.stats.batches == 2
            return msa(ack)
        finally:
            await writer.stop()
            writer.store.close()

    assert asyncio.run(body()) == ("AA", "a2")


def test_stored_as_received_and_applied_once_when_resent_in_one_gathered_batch(
    config: AgentConfig,
) -> None:
    async def body() -> dict[str, int]:
        writer = await _writer(config)
        replies: dict[str, asyncio.Future[Any]] = {}
        try:
            await _first_round(writer, replies)
            again: dict[str, asyncio.Future[Any]] = {}
            for peer in ("a", "b", "c"):
                writer.submit(_item(peer, f"{peer}1", again))  # re-sent: same MSH-10
            acks = await asyncio.gather(*again.values())
            assert [msa(a)[0] for a in acks] == ["AA", "AA", "AA"]
            rows = writer.store.conn.execute(
                "SELECT status, count(*) FROM messages GROUP BY status"
            ).fetchall()
            return dict(rows)
        finally:
            await writer.stop()
            writer.store.close()

    assert asyncio.run(body()) == {"applied": 3, "duplicate": 3}
