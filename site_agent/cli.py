"""``python -m site_agent``: run the agent, feed it, look at it, send it messages."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deid.logformat import configure_logging
from site_agent import __version__
from site_agent.config import AgentConfig, ConfigError, load_config

__all__ = ["main"]

log = logging.getLogger("site_agent.cli")


def _setup_logging(level: str) -> None:
    # LOG_FORMAT=json: one JSON object per line with the record's ids (deid/logformat.py).
    configure_logging(
        level, plain_format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )


def _config(path: str) -> AgentConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


# --- run -------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from site_agent.agent import Agent

    config = _config(args.config)
    # On a slow disk the fsync runs in a second thread that shares the GIL with the event loop:
    # a 1 ms switch interval (default 5 ms) bounds how long either waits for the other.
    sys.setswitchinterval(0.001)

    metrics = None
    port = os.environ.get("METRICS_PORT")
    if port:
        from site_agent.metrics import Metrics

        metrics = Metrics()
        metrics.serve(int(port))

    from site_agent.eventloop import loop_factory

    loop_name, new_loop = loop_factory(config.event_loop)

    async def main() -> int:
        log.info("event loop: %s", loop_name)
        agent = Agent(config, metrics=metrics)
        await agent.start(relay=not args.no_relay)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await agent.stop()
        return 0

    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main())


# --- feed ------------------------------------------------------------------------------------


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    return host or "127.0.0.1", int(port)


def cmd_feed(args: argparse.Namespace) -> int:
    from site_agent.mllp_client import MllpClient, ack_code
    from site_agent.synthetic import SyntheticHospital

    config = _config(args.config)
    host, port = args.to or (config.mllp.host, config.mllp.port)
    start = datetime.now(UTC)
    # Send as the site's first expected HL7 feed, so the agent sees the feed it waits for.
    hl7_feeds = [f for f in config.expected_feeds if f not in ("fhir", "fhir-poll")]
    sim = SyntheticHospital(
        config,
        start,
        sending_app=args.sending_app or (hl7_feeds[0] if hl7_feeds else "SYNTH_EHR"),
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10_000),
        ed_visits_per_day=args.ed_visits_per_day,
        prefill=not args.no_prefill,
    )

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        t0 = loop.time()
        sent = 0
        codes: dict[str, int] = {}
        client: MllpClient | None = None
        backlog: list[str] = []
        last_report = t0
        while not stop.is_set():
            elapsed = loop.time() - t0
            if args.duration and elapsed >= args.duration:
                break
            sim_now = start + timedelta(seconds=elapsed * args.speedup)
            backlog.extend(m for _, m in sim.next_messages(sim_now))
            while backlog and not stop.is_set():
                try:
                    if client is None:
                        client = await MllpClient(host, port, timeout=30).connect()
                    ack = await client.send(backlog[0])
                except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                    log.warning("agent at %s:%d not answering (%s); retrying", host, port, exc)
                    if client is not None:
                        await client.close()
                    client = None
                    await asyncio.sleep(2.0)
                    break
                code = ack_code(ack)
                codes[code] = codes.get(code, 0) + 1
                if code != "AA":
                    log.info("%s for %r", code, backlog[0][:60])
                backlog.pop(0)
                sent += 1
                if args.max_messages and sent >= args.max_messages:
                    stop.set()
            if loop.time() - last_report >= 10:
                last_report = loop.time()
                log.info("sent %d messages (ACKs %s); simulated time %s", sent, codes, sim_now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
        if client is not None:
            await client.close()
        print(f"sent {sent} messages; ACKs {codes}")
        return 0

    return asyncio.run(main())


# --- send ------------------------------------------------------------------------------------


def cmd_send(args: argparse.Namespace) -> int:
    """Send HL7 messages from files (one or more per file, blank-line or MSH separated)."""
    from site_agent.mllp_client import MllpClient, ack_code

    host, port = args.to
    messages: list[str] = []
    for name in args.files:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        text = text.replace("\r\n", "\r").replace("\n", "\r")
        parts = text.split("\rMSH")
        for i, part in enumerate(parts):
            part = part.strip("\r")
            if part:
                messages.append(("MSH" + part if i and not part.startswith("MSH") else part) + "\r")

    async def main() -> int:
        worst = 0
        async with MllpClient(host, port) as client:
            for m in messages:
                ack = await client.send(m)
                code = ack_code(ack)
                worst = max(worst, {"AA": 0, "AE": 1}.get(code, 2))
                print(ack.decode("utf-8", "replace").replace("\r", "\n"))
        return worst

    return asyncio.run(main())


# --- status ----------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from site_agent.feeds import FeedHealth
    from site_agent.store import current_diversion, load_twin, open_readonly
    from site_agent.twin.census import census_all
    from site_agent.twin.model import Twin

    config = _config(args.config)
    db = config.database_path
    if not db.exists():
        raise SystemExit(f"no agent database at {db} (has the agent run?)")
    conn = open_readonly(db)
    twin = Twin(config.units)
    load_twin(conn, twin)
    now = datetime.now(UTC)
    feeds = FeedHealth(config.stale_after, config.expected_feeds)
    feeds.restore(
        [
            (str(r[0]), str(r[1]), r[2], int(r[3]), int(r[4]))
            for r in conn.execute(
                "SELECT name, source, last_message_at, messages_total, errors_total FROM feeds"
            )
        ]
    )
    counts = dict(conn.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall())
    backlog = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0]
    published = conn.execute(
        "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"
    ).fetchone()[0]
    quarantine = conn.execute(
        "SELECT at, ack_code, error_code, reason FROM quarantine ORDER BY id DESC LIMIT 5"
    ).fetchall()
    conflicts = conn.execute(
        "SELECT at, kind, subject, resolution FROM conflicts ORDER BY id DESC LIMIT 5"
    ).fetchall()
    census = census_all(twin, now)
    region = current_diversion(conn)
    if args.json:
        out: dict[str, Any] = {
            "site_code": config.site_code,
            "messages": counts,
            "outbox": {"backlog": backlog, "published": published},
            "feeds": [f.to_dict() for f in feeds.statuses(now)],
            "region_diversion": region,
            "units": [
                {k: getattr(c, k) for k in c.__slots__ if k not in ("as_of", "last_message_at")}
                for c in census
            ],
        }
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(f"site {config.site_code} ({config.site_name}) at {now:%Y-%m-%d %H:%M:%S}Z")
    print(f"messages: {counts or 'none'}   outbox: {backlog} waiting, {published} published")
    if region is not None:
        print(
            f"region directs the ED: {region.get('status')} (EMS traffic "
            f"{region.get('ems_traffic', '?')}) until {region.get('expires_at') or '-'}, "
            f"directive {region['directive_id']} received {region['received_at']}"
        )
    for f in feeds.statuses(now):
        last = f.last_message_at.strftime("%H:%M:%S") if f.last_message_at else "never"
        print(
            f"feed {f.name:<24} {'STALE' if f.stale else 'fresh':<5} last {last}  "
            f"messages {f.messages_total} errors {f.errors_total}"
        )
    print(f"{'unit':<8} {'type':<17} {'lic':>4} {'staf':>4} {'occ':>4} {'avail':>5} {'blk':>4} "
          f"{'in':>3} {'out':>3}  ED wait/treat/board (longest min)")  # fmt: skip
    for c in census:
        ed = (
            f"{c.ed_waiting}/{c.ed_in_treatment}/{c.ed_boarding} ({c.longest_boarding_minutes})"
            if c.ed_waiting is not None
            else ""
        )
        print(
            f"{c.unit_code:<8} {c.unit_type:<17} {c.licensed_beds:>4} {c.staffed_beds:>4} "
            f"{c.occupied_beds:>4} {c.available_beds:>5} {c.blocked_beds:>4} "
            f"{c.pending_admissions:>3} {c.pending_discharges:>3}  {ed}"
        )
    for at, code, err, reason in quarantine:
        print(f"quarantine {at[:19]} {code} {err}: {reason}")
    for at, kind, subject, resolution in conflicts:
        print(f"conflict {at[:19]} {kind} {subject}: {resolution}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args.config)
    beds = sum(len(u.beds) for u in config.units)
    print(f"{config.site_code}: {len(config.units)} units, {beds} beds; data in {config.data_dir}")
    return 0


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m site_agent",
        description="Hospital site agent: HL7 v2 ADT over MLLP and FHIR R5 in, a live census "
        "twin, durable publishing to the site's raw Kafka topic.",
    )
    p.add_argument("--version", action="version", version=f"site_agent {__version__}")
    p.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING (default: $LOG_LEVEL, else INFO)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the agent (MLLP, FHIR, twin, outbox relay)")
    run.add_argument("--config", required=True, help="site TOML file")
    run.add_argument(
        "--no-relay", action="store_true", help="do not publish to Kafka (the outbox fills up)"
    )
    run.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)

    feed = sub.add_parser("feed", help="send a synthetic ADT stream over MLLP to an agent")
    feed.add_argument("--config", required=True, help="the site TOML (hospital layout)")
    feed.add_argument("--to", type=_host_port, help="agent HOST:PORT (default: from config)")
    feed.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per second")
    feed.add_argument("--seed", type=int, help="random seed (default: random)")
    feed.add_argument("--duration", type=float, default=0, help="stop after N seconds")
    feed.add_argument("--max-messages", type=int, default=0, help="stop after N messages")
    feed.add_argument("--ed-visits-per-day", type=float, help="ED arrivals per day")
    feed.add_argument("--no-prefill", action="store_true", help="start from an empty hospital")
    feed.add_argument(
        "--sending-app", help="MSH-3 (default: the first of expected_feeds, else SYNTH_EHR)"
    )
    feed.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    feed.set_defaults(func=cmd_feed)

    status = sub.add_parser("status", help="census, feeds and outbox from the agent's store")
    status.add_argument("--config", required=True)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    send = sub.add_parser("send", help="send HL7 message files over MLLP and print the ACKs")
    send.add_argument("--to", type=_host_port, required=True, help="HOST:PORT")
    send.add_argument("files", nargs="+", help="files with ER7 messages ('-' for stdin)")
    send.set_defaults(func=cmd_send)

    check = sub.add_parser("check-config", help="validate a site TOML file")
    check.add_argument("--config", required=True)
    check.set_defaults(func=cmd_check_config)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    result: int = args.func(args)
    return result
