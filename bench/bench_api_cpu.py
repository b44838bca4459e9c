"""CPU and queries per request of each endpoint in bench/bench_load.py's mix, in-process.

    python bench/bench_api_cpu.py               # 200 warm requests of each kind
    python bench/bench_api_cpu.py -n 50 --cold  # every shared answer rebuilt each time

Seeds the same region as bench_load.py (idempotent), then drives each request through
Django's test client in one thread and reports ``time.process_time`` per request (this
process only: no HTTP server, no load generator) and the statements it sent to PostgreSQL.
``--cold`` clears the shared answers (hub/api/live_cache.py) and the per-process memos
(governance/versions.py) before every request: the cost of a miss. The weighted average uses
the mix's shares. CPU time is far steadier than wall time on a shared machine, so this is the
figure to compare before and after a change; bench_load.py says what a server does with it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import hubrun

# name -> share of the mix (bench/locust_hub.py)
MIX = {
    "hospitals": 0.10,
    "live hospital": 0.30,
    "live region": 0.10,
    "history census (1 h)": 0.10,
    "site heartbeat": 0.20,
    "site policy": 0.10,
    "site directives": 0.10,
}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def requests(fixture: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    from django.test import Client

    ops = Client()
    ops.cookies["sessionid"] = fixture["session"]
    code, credential = next(iter(fixture["credentials"].items()))
    site = Client(HTTP_AUTHORIZATION=f"Bearer {credential}")
    since = fixture["history_start"] + 3600
    beat = {"agent_version": "bench", "feeds": [], "policy_version": 1, "outbox_backlog": 0}
    history = {"site_code": code, "since": _iso(since), "until": _iso(since + 3600), "limit": 100}
    return {
        "healthz": lambda: ops.get("/healthz"),
        "hospitals": lambda: ops.get("/api/v1/hospitals/", {"region": fixture["region"]}),
        "live hospital": lambda: ops.get(f"/api/v1/live/hospitals/{code}/"),
        "live region": lambda: ops.get("/api/v1/live/"),
        "history census (1 h)": lambda: ops.get("/api/v1/history/census/", history),
        "site heartbeat": lambda: site.post(
            "/api/v1/site/heartbeat/", beat, content_type="application/json"
        ),
        "site policy": lambda: site.get("/api/v1/site/policy/"),
        "site directives": lambda: site.get("/api/v1/site/directives/"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", type=int, default=200, help="requests of each kind")
    ap.add_argument("--rounds", type=int, default=5, help="the best round's mean is shown")
    ap.add_argument("--cold", action="store_true", help="no shared answer or memo survives")
    ap.add_argument("--hospitals", type=int, default=6)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--prefix", default="LOD")
    ap.add_argument("--tag", default="h6-load")
    ap.add_argument("--profile", metavar="NAME", help="cProfile this request kind (top 30)")
    args = ap.parse_args()
    hubrun.django_setup()

    from django.conf import settings
    from django.core.signals import request_started
    from django.db import connection, reset_queries

    from bench.bench_load import seed
    from governance import access
    from hub.api import authentication, live_cache

    settings.ALLOWED_HOSTS = ["*"]
    request_started.disconnect(reset_queries)
    fixture = seed(args)
    calls = requests(fixture)

    def clear() -> None:
        live_cache.answers.clear()
        for memo in (access._memos, authentication._agents, authentication._users):
            memo.clear()

    print(
        f"{'request':<22} {'CPU/request':>12} {'queries':>8} {'PostgreSQL':>12}   "
        f"({args.n} each; PostgreSQL: this connection's backend, /proc, all rounds)"
    )
    weighted = weighted_pg = 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])

    def backend_cpu() -> float:
        from bench.servercpu import pg_backends

        return pg_backends(str(settings.DATABASES["default"]["NAME"])).get(backend, 0.0)

    statements: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    try:
        for name, call in calls.items():
            response = call()
            if response.status_code >= 300:
                raise SystemExit(f"{name}: {response.status_code} {response.content[:200]!r}")
            statements.clear()
            if args.cold:
                clear()
            with connection.execute_wrapper(count):
                call()
            # The best of ``--rounds`` rounds: CPU time per request still grows when other
            # processes share the cores (caches, SMT); the least disturbed round is the figure
            # to compare.
            per_round = max(1, args.n // args.rounds)
            best = float("inf")
            pg0 = backend_cpu()
            for _ in range(args.rounds):
                spent = 0.0
                for _ in range(per_round):
                    if args.cold:
                        clear()
                    t0 = time.process_time()
                    call()
                    spent += time.process_time() - t0
                best = min(best, spent / per_round)
            pg_ms = (backend_cpu() - pg0) / (per_round * args.rounds) * 1000
            if args.profile == name:
                import cProfile
                import pstats

                prof = cProfile.Profile(time.process_time)
                for _ in range(args.n):
                    prof.runcall(call)
                pstats.Stats(prof).sort_stats("tottime").print_stats(30)
            ms = best * 1000
            weighted += MIX.get(name, 0.0) * ms
            weighted_pg += MIX.get(name, 0.0) * pg_ms
            print(f"{name:<22} {ms:9.2f} ms {len(statements):8d} {pg_ms:9.2f} ms")
    finally:
        hubrun.region_retire(hubrun.sites_plan(args.prefix, args.hospitals, 6, 40))
    print(f"{'weighted by the mix':<22} {weighted:9.2f} ms {'':8} {weighted_pg:9.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
