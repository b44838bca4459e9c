"""What the latency and load benchmarks share: a synthetic region in the hub's database, an
operations-center session, enrolled site credentials, and child processes that are always
stopped (process groups, SIGTERM then SIGKILL), also on Ctrl-C or an exception.

The benches run against whatever ``DATABASE_URL`` names (their own database, say); they only
add their own region (``--region``), hospitals (site codes from ``--prefix``), users and
agents, and never touch anything else.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The web server as the demo, the image and the chart start it: ``python -m hub.serve``
# (granian, 4 worker processes, each running the WSGI app on one thread). Its HTTP handling is
# native (Rust) and keeps connections alive, where gunicorn's sync workers parse in Python and
# close every connection after one request: /healthz cost 0.69 ms of server CPU a request
# against 1.21 ms (docs/hub.md, "API load"). Threads share a GIL: 2 workers x 4 gthread
# threads served 100 mixed requests/s with p50 4.4 s; one thread a process avoids that.
# Connections stay open (the launcher's default): closing one every 100 requests of a worker
# spreads vegeta's few busy connections over the workers but cost 6-20 % more web CPU a
# request here (docs/hub.md, "API load", 2026-11-25 morning; WEB_KEEPALIVE_REQUESTS=100).
WEB_SERVER = "granian"
WEB_WORKERS = 4
WEB_THREADS = 1

_children: list[subprocess.Popen[bytes]] = []
_names: dict[int, str] = {}


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def start(
    name: str, cmd: Sequence[str], log_dir: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A child in its own process group (so its own children stop with it), logging to a file."""
    log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        list(cmd),
        cwd=ROOT,
        env=env or child_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    _children.append(proc)
    _names[proc.pid] = name
    return proc


def children() -> dict[int, str]:
    """The live children: pid (= process group) -> name."""
    return {p.pid: _names[p.pid] for p in _children if p.poll() is None}


def wait_tcp(port: int, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listening on {port} after {timeout:.0f} s")


def stop_all(timeout: float = 30.0) -> None:
    """SIGTERM every child's process group, wait, then SIGKILL what is left."""
    live = [p for p in _children if p.poll() is None]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    for p in live:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.1, end - time.monotonic()))
    for p in _children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)  # the group: relay children included
        if p.poll() is None:
            p.wait(5)
    _children.clear()


def install_cleanup() -> None:
    """Stop the children at exit and on SIGTERM/SIGINT/SIGHUP (Ctrl-C included)."""
    atexit.register(stop_all)

    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)


def free_port(low: int, high: int, taken: set[int] | None = None) -> int:
    """A free TCP port in [low, high] (the range this bench may use)."""
    for port in range(low, high + 1):
        if taken and port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {low}-{high}")


def wait_http(url: str, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def web_command(
    port: int,
    workers: int = WEB_WORKERS,
    threads: int = WEB_THREADS,
    server: str = WEB_SERVER,
    host: str = "127.0.0.1",
) -> list[str]:
    """The command that serves hub.wsgi on ``port``: the hub's launcher, granian (the demo's
    and the chart's), or gunicorn (sync workers when ``threads`` is 1, gthread otherwise;
    kept for comparison)."""
    bindir = Path(sys.executable).parent
    if server == "granian":
        return [
            sys.executable, "-m", "hub.serve",
            "--host", host,
            "--port", str(port),
            "--workers", str(workers),
            "--blocking-threads", str(threads),
            # The published figures were measured without an access line (granian's CLI
            # without --access-log); a deployment writes one (~1 log call a request).
            "--no-access-log",
        ]  # fmt: skip
    if server == "gunicorn":
        return [
            str(bindir / "gunicorn"),
            "hub.wsgi",
            "--bind", f"{host}:{port}",
            "--workers", str(workers),
            "--threads", str(threads),
            "--graceful-timeout", "20",
            # Idle keep-alive connections are closed by the client, not the server: with
            # gunicorn's 2 s default a POST sent on a connection the server is closing at
            # that moment fails with a reset, one in a few thousand requests at low rates.
            "--keep-alive", "75",
        ]  # fmt: skip
    raise ValueError(f"unknown web server {server!r} (granian or gunicorn)")


def start_web(
    port: int,
    log_dir: Path,
    workers: int = WEB_WORKERS,
    threads: int = WEB_THREADS,
    server: str = WEB_SERVER,
) -> None:
    """The hub as scripts/demo runs it (``web_command``), once it answers /healthz."""
    start("web", web_command(port, workers, threads, server), log_dir)
    wait_http(f"http://127.0.0.1:{port}/healthz")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its threads and its reaped children (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU of every live process in a process group."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# --- the synthetic region -------------------------------------------------------------------


@dataclass(frozen=True)
class UnitSpec:
    code: str
    unit_type: str
    beds: int


@dataclass(frozen=True)
class SiteSpec:
    code: str
    units: tuple[UnitSpec, ...]


def sites_plan(prefix: str, count: int, units: int, beds: int) -> list[SiteSpec]:
    """``count`` hospitals ``PREFIX001``..: an ED and ``units`` medical-surgical wards each."""
    out = []
    for n in range(1, count + 1):
        wards = tuple(UnitSpec(f"W{i:02d}", "medical_surgical", beds) for i in range(1, units + 1))
        out.append(SiteSpec(f"{prefix}{n:03d}", (UnitSpec("ED", "emergency", 30), *wards)))
    return out


def region_seed(region_code: str, sites: list[SiteSpec]) -> None:
    """Create or update the bench's region, hospitals and units (hub.registry.services)."""
    from hub.registry import services

    region = services.region_ensure(code=region_code, name=f"{region_code} (benchmark)")
    for n, site in enumerate(sites):
        hospital = services.hospital_upsert(
            region=region,
            site_code=site.code,
            name=f"Benchmark hospital {site.code} (synthetic)",
            county="Benchmark",
            state="NY",
            latitude=41.0 + n * 0.01,
            longitude=-74.0 - n * 0.01,
            active=True,
        )
        for unit in site.units:
            services.unit_upsert(
                hospital=hospital,
                code=unit.code,
                name=unit.code,
                unit_type=unit.unit_type,
                licensed_beds=unit.beds,
                staffed_beds=unit.beds,
            )


def region_retire(sites: list[SiteSpec]) -> None:
    """Deactivate the bench's hospitals, so they do not weigh on other runs' live reads
    (their history stays; the next run of the same bench activates them again)."""
    from governance import versions
    from hub.registry.models import Hospital

    Hospital.objects.filter(site_code__in=[s.code for s in sites]).update(active=False)
    versions.state_changed("live", "registry", "directives")  # an update() sends no signal


def site_credential(site_code: str, name: str, public_key: str) -> str:
    """Enrol (again) the site's agent ``name`` with ``public_key``; its bearer credential."""
    from hub.registry import services
    from hub.registry.models import AgentComponent, Hospital, SiteAgent

    hospital = Hospital.objects.get(site_code=site_code)
    enrolled = SiteAgent.objects.filter(hospital=hospital, name=name, revoked_at__isnull=True)
    for agent in enrolled.exclude(enrolled_at=None):
        services.agent_revoke(agent=agent)
    cred = services.agent_register(
        hospital=hospital, name=name, public_key=public_key, component=AgentComponent.DEID_WORKER
    )
    return str(cred.credential)


def ops_session(username: str) -> str:
    """A regional operator (role through governance.access) and a session cookie for it."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from governance import access
    from governance.roles import Role

    user, _ = get_user_model().objects.get_or_create(username=username)
    access.assign_role(user, Role.REGIONAL_OPERATOR)
    client = Client()
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


def kafka_cleanup(bootstrap: str, topics: list[str], groups: list[str]) -> None:
    """Delete the bench's topics and consumer groups (what does not exist is fine)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    doomed = [t for t in topics if t in existing]
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=30).values():
            try:
                future.result(30)
            except Exception as exc:  # best effort, and said so
                print(f"  (topic not deleted: {exc})")
    if groups:
        for future in admin.delete_consumer_groups(groups, request_timeout=30).values():
            with contextlib.suppress(Exception):  # a group that never existed
                future.result(30)


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]
