"""Server CPU of a load run, everything counted: the web server's process group, the
PostgreSQL backends serving this bench's database, and the Redis server.

* web: every process in the server's process group (``/proc/<pid>/stat``);
* PostgreSQL: the backends whose process title names the database (``postgres: USER DB
  HOST(PORT) ...``), sampled twice a second so a backend that ends within the run (Django
  reconnects after ``CONN_MAX_AGE``) is counted up to its last sample;
* Redis: ``INFO cpu`` (user + system) of the server. Redis is shared with whatever else runs
  on the machine, so on a busy machine this part over-counts (it is small either way).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from bench import hubrun

_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def pg_backends(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database``."""
    out: dict[int, float] = {}
    marker = f" {database} ".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if not title.startswith(b"postgres:") or marker not in title:
            continue
        fields = _stat(entry.name)
        if fields is not None:
            out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / _TCK
    return out


def redis_cpu() -> float:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    info: dict[str, Any] = client.info("cpu")  # type: ignore[assignment]  # a sync client's dict
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class Meter:
    """CPU seconds used between ``start()`` and ``stop()`` by the web group, the database's
    backends and Redis."""

    def __init__(self, web_pgid: int, database: str) -> None:
        self.web_pgid, self.database = web_pgid, database
        self._stop = threading.Event()
        self._pg_first: dict[int, float] = {}
        self._pg_last: dict[int, float] = {}
        self.web = self.pg = self.redis = 0.0
        self.generator = 0.0  # the load generator's CPU, when the caller measures it

    def _sample(self) -> None:
        for pid, cpu in pg_backends(self.database).items():
            self._pg_first.setdefault(pid, 0.0 if self._started else cpu)
            self._pg_last[pid] = cpu

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def start(self) -> None:
        # A meter is started once per run (the baseline, then the mix): nothing of the
        # previous run may count, and the sampling thread must run again.
        self._stop.clear()
        self._pg_first.clear()
        self._pg_last.clear()
        self._started = False
        self._sample()
        self._started = True
        self._web0 = hubrun.group_cpu_seconds(self.web_pgid)
        self._redis0 = redis_cpu()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.web = hubrun.group_cpu_seconds(self.web_pgid) - self._web0
        self.redis = redis_cpu() - self._redis0
        self.pg = sum(self._pg_last[p] - self._pg_first[p] for p in self._pg_last)

    @property
    def total(self) -> float:
        return self.web + self.pg + self.redis
