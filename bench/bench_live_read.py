"""CPU per region read (``GET /api/v1/live/``), in-process: cold, one hospital changed, none.

    python bench/bench_live_read.py --hospitals 50
    python bench/bench_live_read.py --hospitals 50 --profile changed

Seeds the region of bench_load.py (idempotent; a few minutes of history, so every unit has a
fresh state), then drives the region read through Django's test client in one thread and
reports ``time.process_time`` per request (best round's mean) and the statements sent:

* ``cold``: every shared answer dropped first: a full build (what every poll cost while the
  ingest ran, before per-hospital parts);
* ``changed``: one hospital's own version bumped first (``state_changed("census", ...)``, as
  the ingest does for each batch): that hospital's part rebuilt, the others served again;
* ``warm``: nothing moved: parts served again, ages computed at serve time;
* ``full build (functions)``: ``live_region`` + ``region_live_data`` without the view.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import hubrun


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", type=int, default=60, help="requests of each kind")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hospitals", type=int, default=50)
    ap.add_argument("--hours", type=float, default=0.1)
    ap.add_argument("--prefix", default="LRD")
    ap.add_argument("--tag", default="live-read")
    ap.add_argument("--profile", metavar="KIND", help="cProfile this kind (top 25)")
    ap.add_argument("--sort", default="tottime", help="the profile's order (pstats key)")
    args = ap.parse_args()
    hubrun.django_setup()

    from django.conf import settings
    from django.core.signals import request_started
    from django.db import connection, reset_queries
    from django.test import Client
    from django.utils import timezone

    from bench.bench_load import seed
    from governance import access, versions
    from hub.api import authentication, live_cache
    from hub.api.live_output import region_live_data
    from hub.census import selectors
    from hub.registry.models import Hospital, Unit

    settings.ALLOWED_HOSTS = ["*"]
    request_started.disconnect(reset_queries)
    fixture = seed(args)
    ops = Client()
    ops.cookies["sessionid"] = str(fixture["session"])
    pks = list(Hospital.objects.filter(site_code__in=fixture["sites"]).values_list("pk", flat=True))
    turn = iter(range(10**9))

    def region() -> Any:
        response = ops.get("/api/v1/live/")
        assert response.status_code == 200, response.content[:200]
        return response

    def cold() -> Any:
        live_cache.answers.clear()
        for memo in (access._memos, authentication._agents, authentication._users):
            memo.clear()
        return region()

    def changed() -> Any:
        try:
            versions.state_changed("census", hospitals=[pks[next(turn) % len(pks)]])
        except TypeError:  # before per-hospital versions: the ingest bumped ``live``
            versions.state_changed("live")
        return region()

    def functions() -> Any:
        return region_live_data(
            selectors.live_region(hospitals=Hospital.objects.all(), units=Unit.objects.all())
        )

    kinds: dict[str, Callable[[], Any]] = {
        "cold": cold,
        "changed": changed,
        "warm": region,
        "full build (functions)": functions,
    }
    body = region().json()
    print(
        f"region: {len(body['hospitals'])} hospitals, "
        f"{sum(len(h['units']) for h in body['hospitals'])} units, {len(region().content):,} bytes"
    )
    statements: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    print(f"{'kind':<24} {'CPU/request':>12} {'queries':>8}")
    try:
        for name, call in kinds.items():
            call()
            statements.clear()
            with connection.execute_wrapper(count):
                call()
            per_round = max(1, args.n // args.rounds)
            best = float("inf")
            for _ in range(args.rounds):
                t0 = time.process_time()
                for _ in range(per_round):
                    call()
                best = min(best, (time.process_time() - t0) / per_round)
            if args.profile and args.profile in name:
                import cProfile
                import pstats

                prof = cProfile.Profile(time.process_time)
                for _ in range(args.n):
                    prof.runcall(call)
                pstats.Stats(prof).sort_stats(args.sort).print_stats(25)
            print(f"{name:<24} {best * 1000:9.2f} ms {len(statements):8d}")
    finally:
        hubrun.region_retire(hubrun.sites_plan(args.prefix, args.hospitals, 6, 40))
    print(f"at {timezone.now():%H:%M:%S}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
