"""End-to-end latency: from the site agent's ACK to the change being visible through the hub API.

    python bench/bench_latency.py                    # 50 hospitals, 1 update/s each, 90 s
    python bench/bench_latency.py --hospitals 10 --seconds 60     # a quicker look
    python bench/bench_latency.py --window-seconds 5              # the worker's window, forced

Goal (issue #5): 50 hospitals each sending one ADT update a second, p99 under 1 s.

What runs (everything started here, stopped at the end, also on Ctrl-C or failure):
- the hub web as the demo runs it (``python -m hub.serve``, granian, 4 workers) on a free port
  in 18800-18899 (bench_load uses 18600-18699), and one ``manage.py consume`` on a regional
  topic of this run's own;
- per hospital, the real processes of the pipeline: ``python -m site_agent run`` (with its
  outbox relay child) and ``python -m deid run`` with a policy signed by a governance key
  made for the run. 50 hospitals are 151 processes; that is what a region runs (one agent and
  one worker per site), so the bench runs it, idle CPU and all (printed at the end).
- one MLLP connection per hospital sending one A01 (an admission to one of its wards, in
  turn) a second, the hospitals' send times spread over the second.

What "visible" means: the hub shows what the DE-ID layer releases. An admission's flow event
is released to operations only in a k-anonymous release window (k = 5 over age band, sex and
ZIP3) and is not a live figure; what the operations center watches live is the census, so an
update counts as visible when ``GET /api/v1/live/`` (a regional operator's session) shows its
ward's occupied beds at (or past) the count after that admission. Only admissions are sent,
so occupancy only grows and "at or past" is exact. The poller reads the whole region in a
loop (one request at a time); a change counts as visible when the first response showing it
arrives, so the figures include the read itself and the poll interval (an upper bound).

Baseline (same run): the same API read of already-present records (the poll's own duration):
the floor of any ACK-to-visible time measured through this endpoint.

Stages, from the unit's provenance in the response: ACK -> produced_at (the DE-ID worker
sealed the envelope: the agent's snapshot, relay, raw topic and release window) -> received_at
(the hub consumer stored it: regional topic, verification, PostgreSQL) -> visible (API).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import hubrun
from site_agent.hl7.mllp import END_BLOCK, START_BLOCK

PORTS = (18800, 18899)


@dataclass
class Pending:
    site: str
    unit: str
    expected: int  # occupied beds once this admission shows
    acked_at: float  # wall clock (time.time()), comparable with the provenance timestamps


@dataclass
class Outcome:
    latency: list[float] = field(default_factory=list)
    to_produced: list[float] = field(default_factory=list)
    to_received: list[float] = field(default_factory=list)
    stored_to_seen: list[float] = field(default_factory=list)
    not_seen: int = 0
    nacks: int = 0
    ack_ms: list[float] = field(default_factory=list)


def agent_toml(site: hubrun.SiteSpec, data_dir: Path, port: int, kafka: str) -> str:
    lines = [
        f'[site]\ncode = "{site.code}"\ntimezone = "UTC"',
        f'[agent]\ndata_dir = "{data_dir}"',
        f'[mllp]\nhost = "127.0.0.1"\nport = {port}',
        "[fhir]\nenabled = false",
        f'[kafka]\nbootstrap_servers = "{kafka}"',
    ]
    lines += [
        f'[[units]]\ncode = "{u.code}"\ntype = "{u.unit_type}"\nname = "{u.code}"\n'
        f"licensed_beds = {u.beds}\nroom_start = 1"
        for u in site.units
    ]
    return "\n".join(lines) + "\n"


def admission(site: str, unit: str, bed: int, serial: int) -> bytes:
    ts = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    control = f"{site}-{serial}-{uuid.uuid4().hex[:6]}"
    mrn = f"{site}{serial:07d}"
    pv1 = ["PV1", "1", "I", f"{unit}^{bed}^1"]
    msg = (
        f"MSH|^~\\&|LATBENCH|{site}|AGENT|{site}|{ts}||ADT^A01^ADT_A01|{control}|P|2.5\r"
        f"EVN|A01|{ts}\r"
        f"PID|1||{mrn}^^^{site}^MR||Family{serial}^Given||19700101|F|||"
        f"{serial} Bench St^^Town^NY^12345\r" + "|".join(pv1) + "\r"
    )
    return START_BLOCK + msg.encode() + END_BLOCK


class Site:
    """One hospital's MLLP sender: one admission a second, the wards in turn."""

    def __init__(self, spec: hubrun.SiteSpec, port: int, offset: float) -> None:
        self.spec = spec
        self.port = port
        self.offset = offset
        self.wards = [u for u in spec.units if u.unit_type != "emergency"]
        self.occupied = {u.code: 0 for u in self.wards}
        self.serial = 0

    async def run(self, start: float, seconds: float, pending: list[Pending], out: Outcome) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            n = 0
            while True:
                due = start + self.offset + n
                if due >= start + seconds:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                ward = self.wards[n % len(self.wards)]
                bed = self.occupied[ward.code] + 1
                self.serial += 1
                t0 = time.monotonic()
                writer.write(admission(self.spec.code, ward.code, bed, self.serial))
                await writer.drain()
                frame = await reader.readuntil(END_BLOCK)
                acked = time.time()
                out.ack_ms.append((time.monotonic() - t0) * 1000)
                if b"MSA|AA|" not in frame:
                    out.nacks += 1
                else:
                    self.occupied[ward.code] = bed
                    pending.append(Pending(self.spec.code, ward.code, bed, acked))
                n += 1
        finally:
            writer.close()


def _ts(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def live_read(url: str, cookie: str) -> tuple[dict[tuple[str, str], tuple[int, dict]], float]:
    """One GET /api/v1/live/: occupied beds and provenance per (site, unit); its duration."""
    req = urllib.request.Request(url, headers={"Cookie": f"sessionid={cookie}"})  # noqa: S310
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback
        body = json.loads(r.read())
    took = time.perf_counter() - t0
    state: dict[tuple[str, str], tuple[int, dict]] = {}
    for h in body.get("hospitals", []):
        for u in h.get("units", []):
            occ = (u.get("figures") or {}).get("occupied_beds")
            if occ is not None:
                state[(h["site_code"], u["code"])] = (int(occ), u.get("provenance") or {})
    return state, took


async def observe(
    url: str,
    cookie: str,
    pending: list[Pending],
    out: Outcome,
    senders_done: asyncio.Event,
    grace: float,
    poll_times: list[float],
) -> None:
    """Poll the region until every acknowledged admission is visible (or ``grace`` passes),
    one request at a time."""
    deadline: float | None = None
    while True:
        if senders_done.is_set() and deadline is None:
            deadline = time.monotonic() + grace
        state, took = await asyncio.to_thread(live_read, url, cookie)
        seen_at = time.time()
        poll_times.append(took)
        left = []
        for p in pending:
            got = state.get((p.site, p.unit))
            if got is not None and got[0] >= p.expected:
                out.latency.append(seen_at - p.acked_at)
                prov = got[1]
                produced, received = _ts(prov.get("produced_at")), _ts(prov.get("received_at"))
                if produced is not None and received is not None:
                    out.to_produced.append(produced - p.acked_at)
                    out.to_received.append(received - p.acked_at)
                    out.stored_to_seen.append(seen_at - received)
            else:
                left.append(p)
        pending[:] = left
        if deadline is not None and (not pending or time.monotonic() > deadline):
            out.not_seen = len(pending)
            return
        await asyncio.sleep(0.02)


async def drive(
    sites: list[Site], seconds: float, url: str, cookie: str, warmup: float
) -> tuple[Outcome, list[float]]:
    out = Outcome()
    pending: list[Pending] = []
    done = asyncio.Event()
    poll_times: list[float] = []
    # Warm-up: every site's first admissions (connections, producers, first windows) are
    # not measured.
    warm = Outcome()
    start = time.monotonic() + 0.5
    await asyncio.gather(*(s.run(start, warmup, [], warm) for s in sites))
    await asyncio.sleep(3.0)
    start = time.monotonic() + 0.2
    watcher = asyncio.create_task(observe(url, cookie, pending, out, done, 30.0, poll_times))
    await asyncio.gather(*(s.run(start, seconds, pending, out) for s in sites))
    out.nacks += warm.nacks
    done.set()
    await watcher
    return out, poll_times


def ms(values: list[float]) -> str:
    v = sorted(values)
    if not v:
        return "n/a"
    return (
        f"p50 {statistics.median(v) * 1000:6.0f} ms  p95 {hubrun.percentile(v, 95) * 1000:6.0f} ms"
        f"  p99 {hubrun.percentile(v, 99) * 1000:6.0f} ms  max {v[-1] * 1000:6.0f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hospitals", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=90.0, help="measured period")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--wards", type=int, default=6, help="medical-surgical wards per hospital")
    ap.add_argument("--prefix", default="LAT", help="site codes PREFIX001..")
    ap.add_argument("--tag", default="h6-lat", help="prefix of this run's topics and groups")
    ap.add_argument("--window-seconds", type=float, default=None, help="override the policy's")
    ap.add_argument("--keep-logs", action="store_true")
    args = ap.parse_args()

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    hubrun.install_cleanup()
    hubrun.django_setup()
    from deid.contracts.topics import held_topic, raw_topic, site_deadletter_topic
    from deid.keystore import MasterKeyRing
    from deid.policy import sign_policy
    from deid.signing import generate_signing_key, private_key_b64, public_key_b64

    per_ward = int((args.seconds + args.warmup) / args.wards) + 20
    specs = hubrun.sites_plan(args.prefix, args.hospitals, args.wards, per_ward)
    regional = f"{args.tag}.regional.deid.v1"
    control = f"{args.tag}.regional.control.v1"
    deadletter = f"{args.tag}.regional.deadletter.v1"
    group = f"{args.tag}.hub"
    topics = [regional, control, deadletter]
    for s in specs:
        topics += [raw_topic(s.code), held_topic(s.code), site_deadletter_topic(s.code)]
    groups = [group] + [f"{args.tag}.deid.{s.code}" for s in specs]
    hubrun.kafka_cleanup(bootstrap, topics, groups)  # leftovers of an interrupted run

    tmp = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    logs = tmp / "logs"
    logs.mkdir()
    print(
        f"{args.hospitals} hospitals x 1 admission/s for {args.seconds:.0f} s (after "
        f"{args.warmup:.0f} s warm-up); {os.cpu_count()} CPUs; Kafka {bootstrap}; logs {logs}"
    )
    try:
        hubrun.region_seed(f"{args.tag}-region", specs)
        governance = generate_signing_key()
        body = json.loads((hubrun.ROOT / "deid/policies/default.json").read_text())
        policy_file = tmp / "policy.signed.json"
        policy_file.write_text(json.dumps(sign_policy(body, governance)))
        gov_pub = public_key_b64(governance)
        master = MasterKeyRing.generate_b64()
        cookie = hubrun.ops_session(f"{args.tag}-ops")
        taken: set[int] = set()
        web_port = hubrun.free_port(*PORTS)
        taken.add(web_port)

        t_setup = time.monotonic()
        hubrun.start_web(web_port, logs)
        py = sys.executable
        hubrun.start(
            "consumer",
            [py, "manage.py", "consume", "--topic", regional, "--group", group,
             "--deadletter-topic", deadletter],
            logs,
        )  # fmt: skip
        senders = []
        env_common = {"DEID_MASTER_KEY": master, "LOG_LEVEL": "WARNING"}
        for n, spec in enumerate(specs):
            site_dir = tmp / spec.code
            site_dir.mkdir()
            key = generate_signing_key()
            (site_dir / "signing_key").write_text(private_key_b64(key))
            hubrun.site_credential(spec.code, "deid-worker", public_key_b64(key))
            port = hubrun.free_port(*PORTS, taken=taken)
            taken.add(port)
            cfg = site_dir / "agent.toml"
            cfg.write_text(agent_toml(spec, site_dir / "data", port, bootstrap))
            env = hubrun.child_env(**env_common)
            hubrun.start(
                f"agent-{spec.code}",
                [py, "-m", "site_agent", "run", "--config", str(cfg), "--log-level", "WARNING"],
                logs,
                env,
            )
            deid_env = hubrun.child_env(
                **env_common, DEID_SITE_SIGNING_KEY_FILE=str(site_dir / "signing_key")
            )
            cmd = [
                py, "-m", "deid", "run", "--site", spec.code, "--policy", str(policy_file),
                "--governance-key", gov_pub, "--keystore", str(site_dir / "data/keystore.sqlite3"),
                "--output-topic", regional, "--control-topic", control,
                "--regional-deadletter-topic", deadletter,
                "--group", f"{args.tag}.deid.{spec.code}",
                "--transactional-id", f"{args.tag}.deid.{spec.code}",
            ]  # fmt: skip
            if args.window_seconds is not None:
                cmd += ["--window-seconds", str(args.window_seconds)]
            hubrun.start(f"deid-{spec.code}", cmd, logs, deid_env)
            senders.append(Site(spec, port, offset=n / max(1, args.hospitals)))
        for sender in senders:
            hubrun.wait_tcp(sender.port)
        print(f"{'started':<24} in {time.monotonic() - t_setup:5.1f} s")

        url = f"http://127.0.0.1:{web_port}/api/v1/live/"
        # Baseline: the same read with nothing changing (the records are already there).
        base = [hubrun_live_duration(url, cookie) for _ in range(20)]
        kids = hubrun.children()
        cpu0 = {pid: hubrun.group_cpu_seconds(pid) for pid in kids}
        t0 = time.monotonic()
        out, polls = asyncio.run(drive(senders, args.seconds, url, cookie, args.warmup))
        wall = time.monotonic() - t0
        cpu: dict[str, float] = {}
        for pid, c in cpu0.items():
            kind = kids[pid].split("-")[0]
            cpu[kind] = cpu.get(kind, 0.0) + hubrun.group_cpu_seconds(pid) - c
        report(args, out, polls, base, cpu, wall)
    finally:
        hubrun.stop_all()
        hubrun.kafka_cleanup(bootstrap, topics, groups)
        hubrun.region_retire(specs)
        if not args.keep_logs:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def hubrun_live_duration(url: str, cookie: str) -> float:
    return live_read(url, cookie)[1]


def report(
    args: argparse.Namespace,
    out: Outcome,
    polls: list[float],
    base: list[float],
    cpu: dict[str, float],
    wall: float,
) -> None:
    sent = len(out.latency) + out.not_seen
    print(f"{'admissions acknowledged':<24} {sent:,d} ({sent / args.seconds:.1f}/s); "
          f"non-AA {out.nacks}; ACK {ms([v / 1000 for v in out.ack_ms])}")  # fmt: skip
    print(f"{'ACK -> visible in API':<24} {ms(out.latency)}"
          + (f"   NOT visible after 30 s: {out.not_seen}" if out.not_seen else ""))  # fmt: skip
    print(f"{'  ACK -> DE-ID sealed':<24} {ms(out.to_produced)}")
    print(f"{'  ACK -> hub stored':<24} {ms(out.to_received)}")
    print(f"{'stage: ACK -> sealed':<24} {ms(out.to_produced)}  (agent, relay, raw topic, "
          "DE-ID release window)")  # fmt: skip
    sealed_to_stored = [r - p for p, r in zip(out.to_produced, out.to_received, strict=True)]
    print(f"{'stage: sealed -> stored':<24} {ms(sealed_to_stored)}  (regional topic, hub "
          "consumer, PostgreSQL commit)")  # fmt: skip
    print(f"{'stage: stored -> seen':<24} {ms(out.stored_to_seen)}  (the read in progress, "
          "the next read)")  # fmt: skip
    print(f"{'baseline: API read':<24} {ms(base)} (idle);  during the run {ms(polls)}")
    lat = sorted(out.latency)
    if lat and base:
        p99 = hubrun.percentile(lat, 99)
        print(
            f"{'ratio p99 / read p50':<24} {p99 / statistics.median(base):8.1f}   goal p99 < 1 s: "
            + ("met" if p99 < 1.0 else "NOT met")
        )
    total = sum(cpu.values())
    print(
        f"{'CPU, all processes':<24} {total:6.1f} s in {wall:.0f} s = "
        f"{total / wall * 100:4.0f} % of a core; per admission {total / max(sent, 1) * 1000:.1f} ms"
    )
    print(
        f"{'  by process kind':<24} "
        + ", ".join(f"{k} {v / wall * 100:.0f} %" for k, v in sorted(cpu.items()))
        + " (agent: with its relay; web: the server and its workers)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
