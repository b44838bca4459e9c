"""HTTP load: 500 requests/s of mixed live-state and site API traffic against the hub.

    python bench/bench_load.py                        # 10 minutes at 500 requests/s
    python bench/bench_load.py --duration 60          # a shorter look
    python bench/bench_load.py --rps 250 --hospitals 20

Goal (issue #5): 500 requests/s for 10 minutes, p99 under 250 ms and no errors.

What runs: the hub as the demo runs it (gunicorn hub.wsgi, 2 workers x 4 threads, real
PostgreSQL and Redis) on a free port in 18600-18699 (``--ports``), and locust (headless,
FastHttpUser, ``bench/locust_hub.py``) in its own process. Before that, in this database:
``--hospitals`` synthetic hospitals (the demo's 6 by default; an ED and six wards each; site codes
``LOD001``..; deactivated again at the end), ``--hours`` of
one-minute census snapshots for every unit signed and ingested through the real ingest path
(``hub.demo.history``), an enrolled site agent per hospital (its bearer credential), and a
regional operator with a session.

The mix (shares of requests): operations center 60 % — the region's hospital list
(``?region=``) 10 %, one hospital's live state 30 %, the region's live state 10 %, one hour
of a hospital's census history 10 %;
site agents 40 % — heartbeat 20 %, current policy 10 %, directives poll 10 %. The fallback
batch push is left out: it carries signed DE-ID envelopes and is only used while Kafka is
unreachable.

Pacing: every simulated user keeps a constant rate (2 requests/s by default, so 250 users
for 500/s): the offered load does not fall when answers slow down, until an answer takes
longer than a user's interval (then the achieved rate printed drops below the target, which
is reported, not hidden).

Baseline (same run, same pacing and users): ``GET /healthz`` — the same server, middleware
and network path with no view work; the ratio says what the API itself costs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import hubrun

PORTS = (18600, 18699)
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


def locust(
    host: str, fixture: Path, mix: str, rps: float, user_rps: float, seconds: int, out: Path
) -> dict[str, dict[str, str]]:
    """One headless locust run; its stats CSV rows by name."""
    users = max(1, round(rps / user_rps))
    prefix = out / mix
    env = hubrun.child_env(
        LOAD_BENCH_FIXTURE=str(fixture), LOAD_BENCH_MIX=mix, LOAD_BENCH_USER_RPS=str(user_rps)
    )
    cmd = [
        str(Path(sys.executable).with_name("locust")),
        "-f", str(hubrun.ROOT / "bench" / "locust_hub.py"),
        "--headless", "--host", host,
        "--users", str(users), "--spawn-rate", str(max(1, users // 5)),
        "--run-time", f"{seconds}s", "--stop-timeout", "10",
        "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    proc = hubrun.start(f"locust-{mix}", cmd, out, env)
    try:
        proc.wait(seconds + 120)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"locust ({mix}) did not finish; see {out}") from None
    rows: dict[str, dict[str, str]] = {}
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        raise SystemExit(f"locust ({mix}) wrote no statistics; see {out}/locust-{mix}.log")
    with stats.open() as fh:
        for row in csv.DictReader(fh):
            rows[row["Name"]] = row
    return rows


def line(name: str, row: dict[str, str], seconds: float) -> str:
    count = int(row["Request Count"])
    fails = int(row["Failure Count"])
    return (
        f"{name:<26} {count / seconds:7.1f} req/s  p50 {row['50%']:>5} ms  p95 {row['95%']:>5} ms"
        f"  p99 {row['99%']:>5} ms  max {float(row['Max Response Time']):7.0f} ms  "
        f"errors {fails}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=int, default=600, help="seconds of the mixed run")
    ap.add_argument("--baseline-duration", type=int, help="default: min(duration, 60) s")
    ap.add_argument("--rps", type=float, default=500.0)
    ap.add_argument("--user-rps", type=float, default=2.0, help="requests/s of one user")
    ap.add_argument("--hospitals", type=int, default=6, help="the demo's 6 by default")
    ap.add_argument("--hours", type=float, default=24.0, help="census history to seed")
    ap.add_argument("--prefix", default="LOD")
    ap.add_argument("--tag", default="h6-load")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument(
        "--ports", default=f"{PORTS[0]}-{PORTS[1]}", help="TCP port range the hub may use"
    )
    args = ap.parse_args()
    base_seconds = args.baseline_duration or min(args.duration, 60)

    hubrun.install_cleanup()
    hubrun.django_setup()
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    print(
        f"{args.rps:.0f} requests/s for {args.duration} s ({args.rps / args.user_rps:.0f} users "
        f"x {args.user_rps:g}/s); baseline {base_seconds} s; {args.hospitals} hospitals; "
        f"{os.cpu_count()} CPUs; files in {tmp}"
    )
    try:
        fixture = tmp / "fixture.json"
        fixture.write_text(json.dumps(seed(args)))
        low, _, high = args.ports.partition("-")
        port = hubrun.free_port(int(low), int(high or low))
        hubrun.start_web(port, tmp, workers=args.workers, threads=args.threads)
        host = f"http://127.0.0.1:{port}"
        web = next(pid for pid, name in hubrun.children().items() if name == "web")

        def timed(mix: str, seconds: int) -> tuple[dict[str, dict[str, str]], float, float]:
            cpu0, t0 = hubrun.group_cpu_seconds(web), time.monotonic()
            rows = locust(host, fixture, mix, args.rps, args.user_rps, seconds, tmp)
            return rows, hubrun.group_cpu_seconds(web) - cpu0, time.monotonic() - t0

        base, base_cpu, _ = timed("baseline", base_seconds)
        rows, cpu, _ = timed("mix", args.duration)
    finally:
        hubrun.stop_all()
        hubrun.region_retire(hubrun.sites_plan(args.prefix, args.hospitals, 6, 40))
    agg_base = base["Aggregated"]
    agg = rows["Aggregated"]
    print(line("baseline: GET /healthz", agg_base, base_seconds))
    for name, row in sorted(rows.items()):
        if name != "Aggregated":
            print(line(f"  {name}", row, args.duration))
    print(line("mixed API traffic", agg, args.duration))
    n_base, n = int(agg_base["Request Count"]), int(agg["Request Count"])
    p99 = float(agg["99%"])
    print(
        f"{'ratio p99 mix/baseline':<26} {p99 / max(float(agg_base['99%']), 1):7.1f}   "
        f"server CPU per request: {cpu / max(n, 1) * 1000:.2f} ms (baseline "
        f"{base_cpu / max(n_base, 1) * 1000:.2f} ms)"
    )
    errors = int(agg["Failure Count"])
    achieved = n / args.duration
    met = p99 < GOAL_P99_MS and errors == 0 and achieved >= args.rps * 0.98
    print(
        f"{'goal':<26} {args.rps:.0f} req/s, p99 < {GOAL_P99_MS:.0f} ms, no errors: "
        + ("met" if met else f"NOT met (achieved {achieved:.0f} req/s, p99 {p99:.0f} ms, "
           f"{errors} errors)")
    )  # fmt: skip
    failures = Path(f"{tmp}/mix_failures.csv")
    if errors and failures.exists():
        print(failures.read_text()[:2000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
