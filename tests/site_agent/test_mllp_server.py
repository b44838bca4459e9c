"""The MLLP listener over real sockets: a standard client, many connections, bad input."""

from __future__ import annotations

import asyncio
import os
import resource
from pathlib import Path

from site_agent.agent import Agent
from site_agent.hl7.mllp import END_BLOCK, START_BLOCK, frame
from site_agent.ingest import IngestWriter
from site_agent.mllp_client import MllpClient, ack_code

from .conftest import MASTER_KEY_B64, make_config, run, with_agent
from .hl7msg import adt, msa


async def count_messages(agent: Agent) -> dict[str, int]:
    def read(w: IngestWriter) -> dict[str, int]:
        return dict(
            w.store.conn.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall()
        )

    return await agent.call(read)


def test_a_standard_client_gets_acks_in_order_on_one_connection(tmp_path: Path) -> None:
    async def body(agent: Agent) -> None:
        assert agent.mllp is not None
        async with MllpClient("127.0.0.1", agent.mllp.port) as c:
            acks = [
                await c.send(adt("A04", f"P{i}", cls="E", loc="ED", control=f"C{i}"))
                for i in range(5)
            ]
        assert [msa(a) for a in acks] == [("AA", f"C{i}") for i in range(5)]

    run(with_agent(make_config(tmp_path / "d"), body))


def test_pipelined_messages_are_answered_in_order(tmp_path: Path) -> None:
    async def body(agent: Agent) -> None:
        assert agent.mllp is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", agent.mllp.port)
        writer.write(
            b"".join(
                frame(adt("A04", f"P{i}", cls="E", loc="ED", control=f"Q{i}").encode())
                for i in range(30)
            )
        )
        await writer.drain()
        ids = []
        for _ in range(30):
            data = await asyncio.wait_for(reader.readuntil(END_BLOCK), 10)
            ids.append(msa(data[1:-2])[1])
        writer.close()
        assert ids == [f"Q{i}" for i in range(30)]

    run(with_agent(make_config(tmp_path / "d"), body))


def test_bad_input_is_answered_or_closed_and_others_are_served(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", max_bytes=64 * 1024, idle=1.0)

    async def body(agent: Agent) -> None:
        assert agent.mllp is not None
        port = agent.mllp.port
        good = await MllpClient("127.0.0.1", port).connect()
        # 1. Random bytes in a frame: AR, and the connection keeps working.
        async with MllpClient("127.0.0.1", port) as c:
            assert (
                ack_code(await c.send(os.urandom(300).replace(b"\x1c", b"").replace(b"\x0b", b"")))
                == "AR"
            )
            assert ack_code(await c.send(adt("A04", "OK1", cls="E", loc="ED"))) == "AA"
        # 2. Wrong encoding characters: AR.
        async with MllpClient("127.0.0.1", port) as c:
            bad = adt("A04", "X", cls="E", loc="ED").replace("MSH|^~\\&|", "MSH|^^\\&|", 1)
            assert ack_code(await c.send(bad)) == "AR"

        # 3. A 50 MB message: AR after the frame ends; the same connection goes on, and
        #    another sender is served while the 50 MB arrive.
        async def huge() -> None:
            async with MllpClient("127.0.0.1", port, timeout=60) as c:
                big = (
                    adt("A08", "BIG", cls="E", loc="ED", control="BIG1").encode()
                    + b"ZNT|"
                    + b"x" * (50 * 1024 * 1024)
                    + b"\r"
                )
                await c.send_raw(START_BLOCK + big + END_BLOCK)
                assert msa(await c.read_ack()) == ("AR", "BIG1")
                assert ack_code(await c.send(adt("A04", "OK2", cls="E", loc="ED"))) == "AA"

        big_task = asyncio.create_task(huge())
        for i in range(3):
            assert ack_code(await good.send(adt("A08", f"NOONE{i}", cls="O"))) == "AA"
        await big_task
        # 4. A client that stops mid-frame: closed after the idle timeout, partial frame stored.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(START_BLOCK + b"MSH|^~\\&|HALF|")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the agent
        writer.close()
        # 5. Truncated frame then a good one on the same connection.
        async with MllpClient("127.0.0.1", port) as c:
            await c.send_raw(START_BLOCK + b"MSH|^~\\&|TRUNC")
            assert ack_code(await c.send(adt("A04", "OK3", cls="E", loc="ED"))) == "AA"
        await good.close()
        await asyncio.sleep(0.2)
        stored = await count_messages(agent)
        assert stored["applied"] == 6
        assert stored["rejected"] >= 4  # random bytes, bad MSH-2, 50 MB, half frame, truncation

        def oversize_row(w: IngestWriter) -> tuple[int, int]:
            return w.store.conn.execute(
                "SELECT size, length(raw) FROM messages WHERE size > 50000000"
            ).fetchone()

        size, kept = await agent.call(oversize_row)
        assert size > 50 * 1024 * 1024
        assert kept == 64 * 1024

    run(with_agent(cfg, body))


def test_a_thousand_simultaneous_connections(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

    async def body(agent: Agent) -> None:
        assert agent.mllp is not None
        port = agent.mllp.port
        clients = await asyncio.gather(
            *(MllpClient("127.0.0.1", port).connect() for _ in range(1000))
        )
        acks = await asyncio.gather(
            *(
                c.send(adt("A08", f"NOPE{i}", cls="O", control=f"K{i}"))
                for i, c in enumerate(clients)
            )
        )
        assert all(ack_code(a) == "AA" for a in acks)
        await asyncio.gather(*(c.close() for c in clients))

    run(with_agent(make_config(tmp_path / "d"), body))


def test_metrics_count_acks_and_latency(tmp_path: Path) -> None:
    from site_agent.metrics import Metrics

    metrics = Metrics()

    async def main() -> None:
        agent = Agent(make_config(tmp_path / "d"), master_key=MASTER_KEY_B64, metrics=metrics)
        await agent.start(relay=False)
        try:
            assert agent.mllp is not None
            async with MllpClient("127.0.0.1", agent.mllp.port) as c:
                await c.send(adt("A04", "MET1", cls="E", loc="ED"))
                await c.send(adt("A03", "NOBODY", loc="ED"))
            agent.writer.tick()  # type: ignore[union-attr]
            await asyncio.sleep(0.2)
        finally:
            await agent.stop()

    run(main())
    reg = metrics.registry
    assert (
        reg.get_sample_value("site_agent_hl7_messages_total", {"trigger": "A04", "ack": "AA"}) == 1
    )
    assert (
        reg.get_sample_value("site_agent_hl7_messages_total", {"trigger": "A03", "ack": "AE"}) == 1
    )
    assert reg.get_sample_value("site_agent_ack_latency_seconds_count") == 2
    assert reg.get_sample_value("site_agent_outbox_backlog") is not None


def test_slow_disk_mode_acks_only_after_the_fsync_thread(tmp_path: Path) -> None:
    async def body(agent: Agent) -> None:
        writer = agent.writer
        assert writer is not None
        assert writer._syncer is not None
        syncer = writer._syncer
        syncs = []
        original = writer.store.sync_wal

        def counted() -> None:
            syncs.append(1)
            original()

        writer.store.sync_wal = counted  # type: ignore[method-assign]
        durable: list[int] = []
        writer.on_durable = durable.append
        syncer.fsync_seconds = 1.0  # as if the disk took a second per fsync: use the thread
        assert agent.mllp is not None
        clients = [await MllpClient("127.0.0.1", agent.mllp.port).connect() for _ in range(5)]
        acks = await asyncio.gather(
            *(c.send(adt("A04", f"SLOW{i}", cls="E", loc="ED")) for i, c in enumerate(clients))
        )
        assert all(ack_code(a) == "AA" for a in acks)
        assert syncs  # every ACK waited for an fsync of the WAL
        assert durable
        assert max(durable) == writer.store.max_outbox_seq()
        for c in clients:
            await c.close()

    run(with_agent(make_config(tmp_path / "d"), body))
