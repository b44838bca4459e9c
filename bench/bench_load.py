"""HTTP load: 500 requests/s of mixed live-state and site API traffic against the hub.

    python bench/bench_load.py                        # 10 minutes at 500 requests/s
    python bench/bench_load.py --duration 60          # a shorter look
    python bench/bench_load.py --rps 250 --hospitals 20

Goal (issue #5): 500 requests/s for 10 minutes, p99 under 250 ms and no errors.

What runs: the hub as the demo runs it (``python -m hub.serve``: granian serving hub.wsgi;
real PostgreSQL and Redis; ``--server gunicorn`` for comparison) on a free port in
18700-18799 (``--ports``), and vegeta v12.13.0 (``bench/vegeta.py``; installed on demand
into ``.local/go/bin`` with the Go toolchain) as the load generator: native, open-model, a
constant rate whatever the answers take (no coordinated omission). Before that,
in this database: ``--hospitals`` synthetic hospitals (the demo's 6 by default; an ED and six
wards each; site codes ``LOD001``..; deactivated again at the end), ``--hours`` of one-minute
census snapshots for every unit signed and ingested through the real ingest path
(``hub.demo.history``), an enrolled site agent per hospital (its bearer credential), and a
regional operator with a session (its cookie on every operations request).

The mix (shares of requests): operations center 60 % — the region's hospital list
(``?region=``) 10 %, one hospital's live state 30 %, the region's live state 10 %, one hour
of a hospital's census history 10 %;
site agents 40 % — heartbeat 20 %, current policy 10 %, directives poll 10 %. The fallback
batch push is left out: it carries signed DE-ID envelopes and is only used while Kafka is
unreachable.

Pacing: vegeta sends ``--rps`` requests a second at evenly spaced moments for the whole run
(a 10 s warm-up at a fifth of the rate comes first, not measured); a request is timed from
its scheduled send, and one that gets no answer within 30 s counts as an error. The achieved
rate printed counts the 2xx answers.

Server CPU per request (``bench/servercpu.py``): the web server's process group, the PostgreSQL
backends of this database and the Redis server, from /proc and Redis ``INFO cpu``.

Baseline (same run, same rate, before the mix): ``GET /healthz`` — the same server, middleware
and network path with no view work; the ratio says what the API itself costs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import hubrun, servercpu, vegeta

PORTS = (18700, 18799)
GOAL_P99_MS = 250.0


def seed(args: argparse.Namespace) -> dict[str, object]:
    """The region, its history, credentials and the operator session (idempotent)."""
    from django.db import connection
    from django.utils import timezone

    from hub.census.models import CensusSnapshot
    from hub.demo.history import census_history_seed
    from hub.registry.models import Hospital

    specs = hubrun.sites_plan(args.prefix, args.hospitals, 6, 40)
    hubrun.region_seed(f"{args.tag}-region", specs)
    codes = [s.code for s in specs]
    hospitals = list(Hospital.objects.filter(site_code__in=codes).order_by("site_code"))
    now = timezone.now()
    have = CensusSnapshot.objects.filter(
        site_code__in=codes, observed_at__gte=now - timedelta(hours=args.hours)
    ).count()
    wanted = len(codes) * 7 * int(args.hours * 60)
    if have < wanted * 0.9:
        t0 = time.perf_counter()
        result = census_history_seed(
            hospitals=hospitals, hours=args.hours, interval=timedelta(minutes=1), forecast=False
        )
        print(
            f"{'history ingested':<26} {result.records:,} records in "
            f"{time.perf_counter() - t0:.0f} s (rejected {len(result.rejected)})"
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    else:
        print(f"{'history present':<26} {have:,} snapshots")
    from deid.signing import generate_signing_key, public_key_b64

    credentials = {
        code: hubrun.site_credential(code, "load-agent", public_key_b64(generate_signing_key()))
        for code in codes
    }
    return {
        "session": hubrun.ops_session(f"{args.tag}-ops"),
        "sites": codes,
        "region": f"{args.tag}-region",
        "credentials": credentials,
        "history_start": (now - timedelta(hours=args.hours)).timestamp(),
        "history_hours": max(1, int(args.hours) - 1),
    }


def targets(host: str, fx: dict[str, Any], mix: str) -> list[vegeta.Target]:
    """The mix (or the baseline) as vegeta targets: each operations request with the operator's
    session cookie, each site request with its agent's bearer credential."""
    if mix == "baseline":
        return [vegeta.Target("healthz", "GET", f"{host}/healthz")]
    ops = {"Cookie": [f"sessionid={fx['session']}"], "Accept": ["application/json"]}
    sites: list[str] = fx["sites"]
    api = f"{host}/api/v1"

    def site(name: str, method: str, path: str, body: bytes = b"") -> list[vegeta.Target]:
        out = []
        for credential in fx["credentials"].values():
            headers = {"Authorization": [f"Bearer {credential}"], "Accept": ["application/json"]}
            if body:
                headers["Content-Type"] = ["application/json"]
            out.append(vegeta.Target(name, method, f"{api}{path}", headers, body))
        return out

    def history(code: str, hour: int) -> vegeta.Target:
        since = fx["history_start"] + hour * 3600
        query = urlencode(
            {"site_code": code, "since": _iso(since), "until": _iso(since + 3600), "limit": 100}
        )
        return vegeta.Target("history census (1 h)", "GET", f"{api}/history/census/?{query}", ops)

    beat = json.dumps(
        {"agent_version": "bench-load", "feeds": [], "policy_version": 1, "outbox_backlog": 0}
    ).encode()
    region = urlencode({"region": fx["region"]})
    shares: list[tuple[float, list[vegeta.Target]]] = [
        (0.10, [vegeta.Target("hospitals", "GET", f"{api}/hospitals/?{region}", ops)]),
        (0.30, [vegeta.Target("live hospital", "GET", f"{api}/live/hospitals/{c}/", ops)
                for c in sites]),
        (0.10, [vegeta.Target("live region", "GET", f"{api}/live/", ops)]),
        (0.10, [history(c, h) for c in sites for h in range(fx["history_hours"])]),
        (0.20, site("site heartbeat", "POST", "/site/heartbeat/", beat)),
        (0.10, site("site policy", "GET", "/site/policy/")),
        (0.10, site("site directives", "GET", "/site/directives/")),
    ]  # fmt: skip
    return vegeta.mixed(shares, 2000)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def line(name: str, ep: vegeta.Endpoint, seconds: float) -> str:
    lat = sorted(ep.latencies_ms)
    ok = len(lat) - ep.failed

    def p(q: float) -> str:
        return f"{hubrun.percentile(lat, q):6.0f}"

    return (
        f"{name:<26} {ok / seconds:6.1f} req/s  p50 {p(50)} ms  p95 {p(95)} ms  "
        f"p99 {p(99)} ms  max {p(100)} ms  errors {ep.failed}"
    )


def run(
    binary: Path,
    host: str,
    fx: dict[str, Any],
    mix: str,
    rate: float,
    seconds: int,
    tmp: Path,
    meter: servercpu.Meter,
) -> tuple[dict[str, vegeta.Endpoint], float]:
    """One constant-rate run; its results per endpoint and the server CPU it cost."""
    names = vegeta.write_targets(tmp / f"{mix}.targets", targets(host, fx, mix))
    meter.start()
    before = _children_cpu()
    results = vegeta.attack(binary, tmp / f"{mix}.targets", rate, seconds, tmp / mix)
    meter.generator = _children_cpu() - before  # vegeta, waited for by attack()
    meter.stop()
    by, _ = vegeta.read(binary, results, names)
    return by, meter.total


def _children_cpu() -> float:
    """CPU seconds of this process's waited-for children (the load generator's share of the
    same cores: it is not the server's, but it is not free either)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=int, default=600, help="seconds of the mixed run")
    ap.add_argument("--baseline-duration", type=int, help="default: min(duration, 60) s")
    ap.add_argument("--rps", type=float, default=500.0, help="offered requests/s")
    ap.add_argument("--hospitals", type=int, default=6, help="the demo's 6 by default")
    ap.add_argument("--hours", type=float, default=24.0, help="census history to seed")
    ap.add_argument("--prefix", default="LOD")
    ap.add_argument("--tag", default="h6-load")
    ap.add_argument("--workers", type=int, default=hubrun.WEB_WORKERS)
    ap.add_argument("--threads", type=int, default=hubrun.WEB_THREADS)
    ap.add_argument(
        "--server",
        choices=("granian", "gunicorn"),
        default=hubrun.WEB_SERVER,
        help="the web server (the demo's is granian; gunicorn for comparison)",
    )
    ap.add_argument("--no-baseline", action="store_true", help="skip the /healthz run")
    ap.add_argument(
        "--keep-results",
        action="store_true",
        help="keep vegeta's results files (*.bin, ≈ 25 MB a minute, in memory when in"
        " /dev/shm) for a per-second look (`vegeta encode --to csv`); removed by default",
    )
    ap.add_argument(
        "--ports", default=f"{PORTS[0]}-{PORTS[1]}", help="TCP port range the hub may use"
    )
    args = ap.parse_args()
    base_seconds = 0 if args.no_baseline else args.baseline_duration or min(args.duration, 60)

    hubrun.install_cleanup()
    hubrun.django_setup()
    binary = vegeta.ensure()
    # vegeta's results (≈ 25 MB a minute at 500 req/s) go to memory where there is a tmpfs: its
    # writer blocking on a busy disk would stall its attackers and be timed as the server's
    # latency (a 5.2 s /healthz maximum while another process loaded the disk, 2026-11-24).
    shm = Path("/dev/shm")  # noqa: S108 (mkdtemp makes a private 0700 directory in it)
    scratch = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-", dir=scratch))
    print(
        f"{args.rps:.0f} requests/s offered for {args.duration} s (vegeta {vegeta.VERSION}, "
        f"constant rate); baseline {base_seconds} s; {args.hospitals} hospitals; web "
        f"{args.server}, {args.workers} workers x {args.threads} threads; {os.cpu_count()} CPUs; "
        f"files in {tmp}"
    )
    from django.conf import settings
    from django.db import connection

    database = str(settings.DATABASES["default"]["NAME"])
    try:
        fx = seed(args)
        connection.close()  # the bench's own backend stays out of the server's CPU
        low, _, high = args.ports.partition("-")
        port = hubrun.free_port(int(low), int(high or low))
        hubrun.start_web(port, tmp, workers=args.workers, threads=args.threads, server=args.server)
        host = f"http://127.0.0.1:{port}"
        web = next(pid for pid, name in hubrun.children().items() if name == "web")
        meter = servercpu.Meter(web, database)
        load0 = os.getloadavg()[0]
        # Warm-up, not measured: every web process imports its views, opens its database
        # connections and builds its memos at a fifth of the rate (locust ramped its users up).
        vegeta.write_targets(tmp / "warmup.targets", targets(host, fx, "mix"))
        vegeta.attack(binary, tmp / "warmup.targets", args.rps / 5, 10, tmp / "warmup")
        base: dict[str, vegeta.Endpoint] = {}
        base_cpu = 0.0
        if base_seconds:
            base, base_cpu = run(binary, host, fx, "baseline", args.rps, base_seconds, tmp, meter)
        rows, cpu = run(binary, host, fx, "mix", args.rps, args.duration, tmp, meter)
        parts = (meter.web, meter.pg, meter.redis)
        generator = meter.generator
        load1 = os.getloadavg()[0]
    finally:
        hubrun.stop_all()
        hubrun.region_retire(hubrun.sites_plan(args.prefix, args.hospitals, 6, 40))
    agg = vegeta.total(rows)
    if base:
        agg_base = vegeta.total(base)
        print(line("baseline: GET /healthz", agg_base, base_seconds))
    for name, ep in sorted(rows.items()):
        print(line(f"  {name}", ep, args.duration))
    print(line("mixed API traffic", agg, args.duration))
    n = len(agg.latencies_ms)
    cpu_ms = cpu / max(n, 1) * 1000
    base_text = (
        f" (baseline {base_cpu / max(len(vegeta.total(base).latencies_ms), 1) * 1000:.2f} ms)"
        if base
        else ""
    )
    web_ms, pg_ms, redis_ms = (x / max(n, 1) * 1e3 for x in parts)
    print(
        f"{'server CPU per request':<26} {cpu_ms:.2f} ms{base_text}: web {web_ms:.2f}"
        f" + PostgreSQL {pg_ms:.2f} + Redis {redis_ms:.2f} ms;"
        f" {cpu / args.duration:.2f} cores at this rate; load average {load0:.1f} -> {load1:.1f}"
    )
    print(
        f"{'load generator CPU':<26} {generator / max(n, 1) * 1e3:.2f} ms a request (vegeta;"
        f" {generator / args.duration:.2f} cores, on the same machine)"
    )
    errors = agg.failed
    if errors:
        print(f"{'errors by status':<26} " + ", ".join(
            f"{code or 'no answer'}: {k}" for code, k in sorted(agg.statuses.items())
            if not code.startswith("2")
        ))  # fmt: skip
        for text, k in sorted(agg.errors.items(), key=lambda kv: -kv[1])[:10]:
            print(f"  {k:6d} x {text}")
    achieved = (n - errors) / args.duration
    p99 = hubrun.percentile(sorted(agg.latencies_ms), 99)
    met = p99 < GOAL_P99_MS and errors == 0 and achieved >= args.rps * 0.98
    print(
        f"{'goal':<26} {args.rps:.0f} req/s, p99 < {GOAL_P99_MS:.0f} ms, no errors: "
        + ("met" if met else f"NOT met (achieved {achieved:.0f} req/s, p99 {p99:.0f} ms, "
           f"{errors} errors)")
    )  # fmt: skip
    if not args.keep_results:  # a full run leaves ≈ 300 MB, in memory where it is /dev/shm
        for results in tmp.glob("*.bin"):
            results.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
