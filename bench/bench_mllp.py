"""MLLP ingest benchmark: ACK-after-durable-store vs a trivial echo server, plus the outbox relay.

    python bench/bench_mllp.py                  # 20 connections, 20 s per run, Kafka if reachable
    python bench/bench_mllp.py --seconds 60 --connections 20
    python bench/bench_mllp.py --no-kafka       # ingest only (the relay is not started)

What runs (all on loopback, all bounded in time):
1. Baseline: a trivial MLLP server (a subprocess of this script) that answers every frame with
   an AA built from MSH-10, storing nothing.
2. The site agent (``python -m site_agent run`` as a subprocess) with a large synthetic
   hospital: ACK only after the message, its twin changes and its outbox records are committed
   to SQLite (WAL, synchronous=FULL, group commit).
Senders: ``--connections`` MLLP connections, each sending its next message only after the ACK
of the previous one (as MLLP senders do). Each connection plays its own patients through
A04 → A08 → A14 → A01 → A08 → A16 → A03 → A20 H → A20 U, so every message applies (AA).
Printed: messages/s, ACK latency p50/p99/max, the agent/baseline ratio, the relay's
throughput to Kafka during the run and how long the backlog took to drain after it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hubrun import wait_tcp  # noqa: E402
from site_agent.eventloop import EVENT_LOOPS, loop_factory  # noqa: E402
from site_agent.hl7.mllp import END_BLOCK, START_BLOCK  # noqa: E402

PATIENTS_PER_CONNECTION = 20
T = TypeVar("T")
WARD_BEDS = PATIENTS_PER_CONNECTION


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_config(
    site: str, data_dir: Path, port: int, connections: int, kafka: str, event_loop: str = "auto"
) -> str:
    units = [
        f'[[units]]\ncode = "ED"\ntype = "emergency"\nname = "ED"\n'
        f"licensed_beds = {connections * PATIENTS_PER_CONNECTION}\n"
    ]
    units += [
        f'[[units]]\ncode = "W{i}"\ntype = "medical_surgical"\nname = "Ward {i}"\n'
        f"licensed_beds = {WARD_BEDS}\nroom_start = 1\n"
        for i in range(connections)
    ]
    return (
        f'[site]\ncode = "{site}"\ntimezone = "UTC"\n'
        f'[agent]\ndata_dir = "{data_dir}"\nevent_loop = "{event_loop}"\n'
        f'[mllp]\nhost = "127.0.0.1"\nport = {port}\n'
        f"[fhir]\nenabled = false\n"
        f'[kafka]\nbootstrap_servers = "{kafka}"\n' + "\n".join(units)
    )


def lifecycle(conn: int, serial: int, slot: int, step: int, control: str) -> bytes:
    """The ``step``-th message of patient ``serial`` on connection ``conn``."""
    mrn = f"BENCH{conn:02d}{serial:08d}"
    ts = "20250101120000"
    trig, cls, loc, extra = [
        ("A04", "E", "ED", ""),
        ("A08", "E", f"ED^{conn * PATIENTS_PER_CONNECTION + slot + 1}^1", ""),
        ("A14", "E", f"ED^{conn * PATIENTS_PER_CONNECTION + slot + 1}^1", f"W{conn}"),
        ("A01", "I", f"W{conn}^{slot + 1}^1", ""),
        ("A08", "I", f"W{conn}^{slot + 1}^1", ""),
        ("A16", "I", f"W{conn}^{slot + 1}^1", ""),
        ("A03", "I", f"W{conn}^{slot + 1}^1", ""),
        ("A20", "", f"W{conn}^{slot + 1}^1", "H"),
        ("A20", "", f"W{conn}^{slot + 1}^1", "U"),
    ][step]
    msh = f"MSH|^~\\&|BENCH{conn}|BENCHFAC|AGENT|BENCHFAC|{ts}||ADT^{trig}^ADT_A01|{control}|P|2.5"
    if trig == "A20":
        body = f"EVN|A20|{ts}\rNPU|{loc}|{extra}"
    else:
        pv1 = ["PV1", "1", cls, loc] + [""] * 39
        if extra:
            pv1[42] = extra
        body = (
            f"EVN|{trig}|{ts}\r"
            f"PID|1||{mrn}^^^BENCHFAC^MR||Family{serial}^Given||19700101|F|||"
            f"{serial} Bench St^^Town^NY^12345||(555) 0100|||||ACC{serial}|"
            f"900-00-{serial % 10000:04d}\r" + "|".join(pv1).rstrip("|")
        )
    return START_BLOCK + (msh + "\r" + body + "\r").encode() + END_BLOCK


class Sender(asyncio.Protocol):
    def __init__(
        self, conn: int, deadline: float, latencies: list[float], done: asyncio.Future[None]
    ):
        self.conn = conn
        self.deadline = deadline
        self.latencies = latencies
        self.done = done
        self.buf = b""
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.serial = 0
        # Each slot is one patient somewhere in its life cycle; round-robin over the slots.
        self.steps = [0] * PATIENTS_PER_CONNECTION
        self.serials = list(range(PATIENTS_PER_CONNECTION))
        self.next_serial = PATIENTS_PER_CONNECTION
        self.slot = 0
        self.count = 0
        self.errors = 0
        # MSH-10 is this connection's number, a message counter and a token fixed per run:
        # unique without a uuid4 per message (the sender's CPU is the agent's CPU lost).
        self.token = uuid.uuid4().hex[:6]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not inherit from asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.send_next()

    def send_next(self) -> None:
        if time.perf_counter() >= self.deadline:
            assert self.transport is not None
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        slot = self.slot
        self.slot = (slot + 1) % PATIENTS_PER_CONNECTION
        step = self.steps[slot]
        msg = lifecycle(
            self.conn,
            self.serials[slot],
            slot,
            step,
            f"C{self.conn}-{self.count}-{self.token}",
        )
        if step == 8:
            self.steps[slot] = 0
            self.serials[slot] = self.next_serial
            self.next_serial += 1
        else:
            self.steps[slot] = step + 1
        self.sent_at = time.perf_counter()
        assert self.transport is not None
        self.transport.write(msg)

    def data_received(self, data: bytes) -> None:
        if not self.buf and data.endswith(END_BLOCK) and data.count(END_BLOCK) == 1:
            frame = data  # the usual case: exactly one ACK in one read
        else:
            self.buf += data
            if END_BLOCK not in self.buf:
                return
            frame, _, self.buf = self.buf.partition(END_BLOCK)
        self.latencies.append(time.perf_counter() - self.sent_at)
        self.count += 1
        if b"MSA|AA|" not in frame:
            self.errors += 1
        self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def drive(port: int, connections: int, seconds: float) -> tuple[int, list[float], int, float]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    senders = []
    waits = []
    for i in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        s = Sender(i, deadline, latencies, done)
        await loop.create_connection(partial(_same, s), "127.0.0.1", port)
        senders.append(s)
        waits.append(done)
    await asyncio.gather(*waits)
    elapsed = time.perf_counter() - start
    return sum(s.count for s in senders), latencies, sum(s.errors for s in senders), elapsed


def _same(protocol: Sender) -> Sender:
    return protocol


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run the senders (or the echo server) on uvloop when it is installed: the load
    generator shares the two cores with the agent, so it should cost as little as it can."""
    with asyncio.Runner(loop_factory=loop_factory("auto")[1]) as runner:
        return runner.run(main)


def report(name: str, count: int, latencies: list[float], errors: int, elapsed: float) -> float:
    rate = count / elapsed
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
    print(
        f"{name:<22} {count:>9,d} msgs in {elapsed:5.1f} s = {rate:8,.0f} msgs/s   "
        f"ACK p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {lat[-1] * 1000:7.1f} ms"
        + (f"   non-AA: {errors}" if errors else "")
    )
    return rate


# --- the trivial baseline server ---------------------------------------------------------------


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while END_BLOCK in self.buf:
            frame, _, self.buf = self.buf.partition(END_BLOCK)
            msh = frame[frame.find(START_BLOCK) + 1 :].split(b"\r", 1)[0].split(b"|")
            control = msh[9] if len(msh) > 9 else b""
            self.t.write(
                START_BLOCK
                + b"MSH|^~\\&|ECHO||||20250101||ACK|1|P|2.5\rMSA|AA|"
                + control
                + b"\r"
                + END_BLOCK
            )


async def echo_server(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


# --- main --------------------------------------------------------------------------------------


def kafka_up(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except OSError:
        return False


def unpublished(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        total = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        left = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0]
        return int(total), int(left)
    finally:
        conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--no-kafka", action="store_true")
    ap.add_argument(
        "--agent-loop",
        choices=EVENT_LOOPS,
        default="auto",
        help="the agent's [agent] event_loop (default auto: uvloop if installed)",
    )
    ap.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.echo_server:
        run_loop(echo_server(args.echo_server))
        return 0
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    use_kafka = not args.no_kafka and kafka_up(bootstrap)
    print(
        f"{args.connections} connections, each waiting for its ACK; {args.seconds:.0f} s per run; "
        f"{os.cpu_count()} CPUs; Kafka {'at ' + bootstrap if use_kafka else 'not used'}; "
        f"senders on {loop_factory('auto')[0]}, agent event_loop = {args.agent_loop}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    # 1. Baseline.
    port = free_port()
    echo = subprocess.Popen([sys.executable, __file__, "--echo-server", str(port)])
    try:
        wait_tcp(port, 60.0)
        count, lat, errors, elapsed = run_loop(drive(port, args.connections, args.seconds))
    finally:
        echo.send_signal(signal.SIGTERM)
        echo.wait(10)
    base_rate = report("baseline (echo, no store)", count, lat, errors, elapsed)

    # 2. The agent.
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        data = Path(tmp)
        site = f"BENCH{uuid.uuid4().hex[:8]}"
        port = free_port()
        cfg = data / "bench.toml"
        kafka_addr = bootstrap if use_kafka else "127.0.0.1:1"
        cfg.write_text(
            bench_config(site, data / "data", port, args.connections, kafka_addr, args.agent_loop)
        )
        env = dict(os.environ, DEID_MASTER_KEY="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [
            sys.executable,
            "-m",
            "site_agent",
            "run",
            "--config",
            str(cfg),
            "--log-level",
            "WARNING",
        ]
        if not use_kafka:
            cmd.append("--no-relay")
        agent = subprocess.Popen(cmd, env=env, cwd=ROOT)
        try:
            wait_tcp(port, 60.0)
            db = data / "data" / "agent.sqlite3"
            time.sleep(1.0)  # let the relay process start
            relay_pids = children(agent.pid)
            cpu0 = cpu_seconds(agent.pid)
            relay0 = sum(cpu_seconds(p) for p in relay_pids)
            own0 = os.times()
            count, lat, errors, elapsed = run_loop(drive(port, args.connections, args.seconds))
            own1 = os.times()
            cpu = cpu_seconds(agent.pid) - cpu0
            relay_cpu = sum(cpu_seconds(p) for p in relay_pids) - relay0
            rate = report("site agent (durable)", count, lat, errors, elapsed)
            per = 1e6 / max(count, 1)
            print(
                f"{'CPU, agent process':<22} {cpu:9.1f} s = {cpu / elapsed * 100:5.0f} % of a core,"
                f" {cpu * per:5.0f} us per message (listener, parser, twin, SQLite)"
            )
            if relay_pids:
                print(
                    f"{'CPU, relay process':<22} {relay_cpu:9.1f} s = "
                    f"{relay_cpu / elapsed * 100:5.0f} % of a core, {relay_cpu * per:5.0f} us per "
                    "message (sealing PHI, Kafka producer)"
                )
            senders = (own1.user - own0.user) + (own1.system - own0.system)
            print(
                f"{'CPU, senders (bench)':<22} {senders:9.1f} s = {senders / elapsed * 100:5.0f} % "
                f"of a core, {senders * per:5.0f} us per message"
            )
            print(f"{'ratio agent/baseline':<22} {rate / base_rate:9.2f}")
            total, left = unpublished(db)
            if use_kafka:
                published_during = total - left
                print(
                    f"{'outbox relay':<22} {total:>9,d} records written, {published_during:,d} "
                    f"published during the run = {published_during / elapsed:8,.0f} records/s; "
                    f"{left:,d} left at the end"
                )
                t0 = time.perf_counter()
                while left and time.perf_counter() - t0 < 300:
                    time.sleep(0.2)
                    total, left = unpublished(db)
                drain = time.perf_counter() - t0
                print(
                    f"{'relay backlog drained':<22} in {drain:5.1f} s"
                    + ("" if not left else f" (NOT drained: {left} left)")
                )
            else:
                print(f"{'outbox':<22} {total:>9,d} records written (relay not started)")
        finally:
            agent.send_signal(signal.SIGTERM)
            code = agent.wait(60)
        print(f"{'agent exit on SIGTERM':<22} {code}")
        if use_kafka and code == 0:
            relay_drain(db, cmd, env)
    return 0


def relay_drain(db: Path, cmd: list[str], env: dict[str, str]) -> None:
    """3. Outage recovery: the whole outbox as a backlog, drained by a restarted agent."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE outbox SET published_at = NULL")
    conn.close()
    total, left = unpublished(db)
    agent = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        t0 = time.perf_counter()
        while left and time.perf_counter() - t0 < 300:
            time.sleep(0.1)
            _, left = unpublished(db)
        elapsed = time.perf_counter() - t0
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(60)
    print(
        f"{'relay, backlog of':<22} {total:>9,d} records (seal + publish) drained in "
        f"{elapsed:5.1f} s = {total / elapsed:8,.0f} records/s (incl. agent start-up)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
