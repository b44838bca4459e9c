"""Fixtures for the site agent tests: configs, key stores, an in-process agent, HL7 builders."""

from __future__ import annotations

import asyncio
import base64
import os
import tomllib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from deid.keystore import PatientKeyStore
from site_agent.agent import Agent
from site_agent.config import AgentConfig, parse_config
from site_agent.hl7.mllp import FrameKind
from site_agent.ingest import Hl7Item, IngestWriter
from site_agent.publish import Publisher
from site_agent.store import Store

T = TypeVar("T")
MASTER_KEY = bytes(range(32))
MASTER_KEY_B64 = base64.b64encode(MASTER_KEY).decode()

SITE_TOML = """
[site]
code = "{code}"
timezone = "America/New_York"

[agent]
data_dir = "{data}"
stale_after_minutes = 10
snapshot_min_interval_seconds = 0

[mllp]
port = 0
idle_timeout_seconds = {idle}
max_message_bytes = {max_bytes}

[fhir]
enabled = {fhir}
port = 0

[kafka]
bootstrap_servers = "{kafka}"

[[units]]
code = "ED"
type = "emergency"
aliases = ["EMERG"]
licensed_beds = 6
staffed_beds = 5
room_prefix = "ED"

[[units]]
code = "4W"
type = "medical_surgical"
aliases = ["4 WEST"]
licensed_beds = 6
staffed_beds = 4
surge_beds = 2
beds_per_room = 2
room_start = 401

[[units]]
code = "ICU"
type = "adult_icu"
licensed_beds = 4
room_prefix = "ICU"
"""


def make_config(
    data: Path,
    *,
    code: str | None = None,
    fhir: bool = False,
    idle: float = 300,
    max_bytes: int = 1_048_576,
    kafka: str = "127.0.0.1:1",
) -> AgentConfig:
    text = SITE_TOML.format(
        code=code or f"T{uuid.uuid4().hex[:10]}",
        data=data,
        idle=idle,
        max_bytes=max_bytes,
        fhir=str(fhir).lower(),
        kafka=kafka,
    )
    return parse_config(tomllib.loads(text), base_env={})


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    return make_config(tmp_path / "data")


@pytest.fixture
def keystore(tmp_path: Path) -> Iterator[PatientKeyStore]:
    ks = PatientKeyStore(tmp_path / "keystore.sqlite3", MASTER_KEY)
    yield ks
    ks.close()


class SyncWriter:
    """An IngestWriter driven synchronously (no event loop), with ACKs collected."""

    def __init__(self, config: AgentConfig, keystore: PatientKeyStore) -> None:
        self.config = config
        self.keystore = keystore
        self.store = Store(config.database_path)
        self.writer = IngestWriter(config, self.store, Publisher(config.site_code))

    def send(self, *messages: str | bytes, batch: bool = True) -> list[bytes]:
        acks: list[Any] = [None] * len(messages)
        items = []
        now = datetime.now(UTC)
        for i, m in enumerate(messages):
            payload = m.encode() if isinstance(m, str) else m

            def reply(value: Any, i: int = i) -> None:
                acks[i] = value

            items.append(Hl7Item(payload, FrameKind.MESSAGE, len(payload), "test", now, reply))
        if batch:
            self.writer.process(items)
        else:
            for item in items:
                self.writer.process([item])
        return acks

    def sealed_outbox(self) -> list[tuple[str, bytes]]:
        """(record_type, published bytes) of every outbox row, sealed as the relay does."""
        from site_agent.relay import seal_rows
        from site_agent.store import fetch_outbox

        rows = fetch_outbox(self.store.conn, 0, 1_000_000)
        types = dict(self.store.conn.execute("SELECT seq, record_type FROM outbox").fetchall())
        values = seal_rows(rows, self.config.site_code, self.keystore)
        return [(types[r.seq], v) for r, v in zip(rows, values, strict=True)]

    def close(self) -> None:
        self.writer.process([_stop_item()])
        self.store.close()


def _stop_item() -> Any:
    from site_agent.ingest import _Stop

    return _Stop()


@pytest.fixture
def sync_writer(config: AgentConfig, keystore: PatientKeyStore) -> Iterator[SyncWriter]:
    w = SyncWriter(config, keystore)
    yield w
    w.store.close()


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def with_agent(
    config: AgentConfig,
    body: Callable[[Agent], Awaitable[T]],
    *,
    relay: bool = False,
) -> T:
    agent = Agent(config, master_key=MASTER_KEY_B64)
    await agent.start(relay=relay)
    try:
        return await body(agent)
    finally:
        await agent.stop()


def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def with_data_dir(config: AgentConfig, data: Path) -> AgentConfig:
    return replace(config, data_dir=data)
