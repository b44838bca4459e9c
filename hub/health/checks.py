"""Readiness checks of the real services the hub needs.

Each check answers within a bounded time, and the checks run concurrently, so a dead
dependency makes /readyz answer 503 quickly instead of hanging the probe.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import redis
from confluent_kafka.admin import AdminClient
from django.conf import settings
from django.db import connection

CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def check_postgres() -> CheckResult:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not ready"; the detail says which
        return CheckResult("postgres", False, f"{type(exc).__name__}: {exc}".strip())
    return CheckResult("postgres", True, "ok")


def check_redis() -> CheckResult:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=2
        )
        client.ping()
    except Exception as exc:
        return CheckResult("redis", False, f"{type(exc).__name__}: {exc}")
    return CheckResult("redis", True, "ok")


def check_kafka() -> CheckResult:
    try:
        admin = AdminClient(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "socket.timeout.ms": int(CHECK_TIMEOUT_SECONDS * 1000),
                "socket.connection.setup.timeout.ms": 2000,
                "log_level": 0,  # a broker that is down is reported by the probe, not logged
                **settings.KAFKA_CLIENT_CONFIG,
            }
        )
        metadata = admin.list_topics(timeout=CHECK_TIMEOUT_SECONDS)
        if not metadata.brokers:
            return CheckResult("kafka", False, "no broker in the cluster metadata")
    except Exception as exc:
        return CheckResult("kafka", False, f"{type(exc).__name__}: {exc}")
    return CheckResult("kafka", True, f"{len(metadata.brokers)} broker(s)")


CHECKS: dict[str, Callable[[], CheckResult]] = {
    "postgres": check_postgres,
    "redis": check_redis,
    "kafka": check_kafka,
}


def run_checks() -> list[CheckResult]:
    def run_in_thread(check: Callable[[], CheckResult]) -> CheckResult:
        # Django connections are per thread: close this thread's one when done.
        try:
            return check()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        return list(pool.map(run_in_thread, CHECKS.values()))
