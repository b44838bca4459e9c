"""Locust users for bench/bench_load.py (run by it; not on its own).

The bench writes what the users need to the JSON file named by ``LOAD_BENCH_FIXTURE``: the
operations-center session cookie, each site's bearer credential and the history range.
``LOAD_BENCH_MIX`` is ``mix`` (the issue's traffic) or ``baseline`` (the health check at the
same pacing). Every user keeps a constant rate (``constant_throughput``), so the offered load
is users x rate whatever the answers take, as long as they take less than the interval.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from locust import FastHttpUser, constant_throughput, task

FIXTURE: dict[str, Any] = json.loads(open(os.environ["LOAD_BENCH_FIXTURE"]).read())  # noqa: SIM115
RATE = float(os.environ.get("LOAD_BENCH_USER_RPS", "2"))
MIX = os.environ.get("LOAD_BENCH_MIX", "mix")


class _Base(FastHttpUser):
    abstract = True
    wait_time = constant_throughput(RATE)
    # One connection per user, kept alive, as a browser or an agent would.
    concurrency = 1


if MIX == "baseline":

    class HealthUser(_Base):
        @task
        def health(self) -> None:
            self.client.get("/healthz", name="healthz")

else:

    class OperationsUser(_Base):
        """The operations center and its integrations: live state and history (session)."""

        weight = 6

        def on_start(self) -> None:
            self.headers = {"Cookie": f"sessionid={FIXTURE['session']}"}
            self.sites: list[str] = FIXTURE["sites"]

        @task(1)
        def hospital_list(self) -> None:
            self.client.get(
                "/api/v1/hospitals/",
                params={"region": FIXTURE["region"]},
                headers=self.headers,
                name="hospitals",
            )

        @task(3)
        def live_hospital(self) -> None:
            code = random.choice(self.sites)
            self.client.get(
                f"/api/v1/live/hospitals/{code}/", headers=self.headers, name="live hospital"
            )

        @task(1)
        def live_region(self) -> None:
            self.client.get("/api/v1/live/", headers=self.headers, name="live region")

        @task(1)
        def history(self) -> None:
            code = random.choice(self.sites)
            start = random.randrange(FIXTURE["history_hours"])
            since, until = FIXTURE["history_start"] + start * 3600, None
            until = since + 3600
            self.client.get(
                "/api/v1/history/census/",
                params={
                    "site_code": code,
                    "since": _iso(since),
                    "until": _iso(until),
                    "limit": 100,
                },
                headers=self.headers,
                name="history census (1 h)",
            )

    class SiteUser(_Base):
        """A site agent: heartbeat, current policy, directives poll (bearer credential)."""

        weight = 4

        def on_start(self) -> None:
            code, credential = random.choice(list(FIXTURE["credentials"].items()))
            self.code = code
            self.headers = {"Authorization": f"Bearer {credential}"}

        @task(2)
        def heartbeat(self) -> None:
            self.client.post(
                "/api/v1/site/heartbeat/",
                json={
                    "agent_version": "bench-load",
                    "feeds": [],
                    "policy_version": 1,
                    "outbox_backlog": 0,
                },
                headers=self.headers,
                name="site heartbeat",
            )

        @task(1)
        def policy(self) -> None:
            self.client.get("/api/v1/site/policy/", headers=self.headers, name="site policy")

        @task(1)
        def directives(self) -> None:
            self.client.get(
                "/api/v1/site/directives/", headers=self.headers, name="site directives"
            )


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
