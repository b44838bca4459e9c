"""The HTTP load generator of bench/bench_load.py: vegeta v12.13.0 (Go), at a constant rate.

Why not locust: on a 2-core machine a Python generator takes about as much CPU as the server it
measures (the /healthz baseline barely reached 478 of 500 requests/s). vegeta is native and
open-model: it sends each request at its scheduled moment whether or not earlier answers have
come back (more connections when answers slow), so the offered rate never drops with the
server and latencies are measured from the scheduled send (no coordinated omission).

Installed on demand with the Go toolchain into ``.local/go/bin`` (ignored by git; the Go
module proxy serves it): ``go install github.com/tsenart/vegeta/v12@v12.13.0``. The binary
is looked for first in ``$VEGETA``, then ``.local/go/bin``, then ``PATH``.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import random
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench import hubrun

VERSION = "v12.13.0"
MODULE = "github.com/tsenart/vegeta/v12"
GO_BIN = hubrun.ROOT / ".local" / "go" / "bin"
GO_CANDIDATES = ("/usr/local/go/bin/go", "go")


def ensure() -> Path:
    """The vegeta binary, installed (once, idempotently) if it is not there yet."""
    if os.environ.get("VEGETA"):
        return Path(os.environ["VEGETA"])
    local = GO_BIN / "vegeta"
    if local.exists():
        return local
    found = shutil.which("vegeta")
    if found:
        return Path(found)
    go = next((g for g in GO_CANDIDATES if shutil.which(g) or Path(g).exists()), None)
    if go is None:
        raise SystemExit("vegeta is not installed and there is no Go toolchain to install it")
    GO_BIN.mkdir(parents=True, exist_ok=True)
    work = hubrun.ROOT / ".local" / "go"
    env = dict(
        os.environ,
        GOBIN=str(GO_BIN),
        GOPATH=str(work / "path"),
        GOCACHE=str(work / "cache"),
        GOFLAGS="-modcacherw",
    )
    print(f"installing vegeta {VERSION} into {GO_BIN} ...")
    subprocess.run([go, "install", f"{MODULE}@{VERSION}"], env=env, check=True)
    return local


@dataclass(frozen=True)
class Target:
    name: str  # the endpoint's name in the report
    method: str
    url: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def line(self) -> str:
        doc: dict[str, object] = {"method": self.method, "url": self.url, "header": self.headers}
        if self.body:
            doc["body"] = base64.b64encode(self.body).decode()
        return json.dumps(doc, separators=(",", ":"))


def write_targets(path: Path, targets: Iterable[Target]) -> dict[str, str]:
    """A JSON targets file (vegeta cycles through it in order); URL -> endpoint name."""
    names: dict[str, str] = {}
    with path.open("w") as fh:
        for t in targets:
            fh.write(t.line() + "\n")
            names[f"{t.method} {t.url}"] = t.name
    return names


def mixed(shares: list[tuple[float, list[Target]]], count: int, seed: int = 5) -> list[Target]:
    """``count`` targets, each endpoint at its share (exactly, up to rounding), shuffled; the
    variants of an endpoint (sites, hours) are drawn at random."""
    rng = random.Random(seed)
    out: list[Target] = []
    for share, variants in shares:
        out.extend(rng.choice(variants) for _ in range(round(count * share)))
    rng.shuffle(out)
    return out


@dataclass
class Endpoint:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def failed(self) -> int:
        return sum(n for code, n in self.statuses.items() if not code.startswith("2"))


def attack(
    binary: Path,
    targets: Path,
    rate: float,
    seconds: int,
    out: Path,
    timeout_s: int = 30,
    connections: int = 250,
) -> Path:
    """Run one constant-rate attack; the binary results file."""
    results = out.with_suffix(".bin")
    cmd = [
        str(binary), "attack",
        "-format", "json", "-targets", str(targets),
        "-rate", f"{rate:g}/1s", "-duration", f"{seconds}s",
        "-timeout", f"{timeout_s}s", "-keepalive=true", "-max-body", "300",
        "-workers", "50", "-output", str(results),
        # As many connections as locust had users (250, one each): more answers in flight
        # wait for a free connection, and that wait is in their latency (timed from the
        # scheduled send). Without a cap an overloaded server is sent thousands of new
        # connections, which gunicorn's gthread worker handles at a cost of its own.
        "-connections", str(connections), "-max-connections", str(connections),
    ]  # fmt: skip
    proc = hubrun.start(f"vegeta-{out.name}", cmd, out.parent)
    try:
        proc.wait(seconds + timeout_s + 60)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"vegeta did not finish; see {out.parent}") from None
    if proc.returncode != 0 or not results.exists():
        raise SystemExit(f"vegeta failed ({proc.returncode}); see {out.parent}")
    return results


def read(binary: Path, results: Path, names: dict[str, str]) -> tuple[dict[str, Endpoint], float]:
    """Per endpoint: latencies, statuses and error texts; and the span of the sends (s)."""
    enc = subprocess.run(
        [str(binary), "encode", "-to", "csv", str(results)], capture_output=True, check=True
    )
    by: dict[str, Endpoint] = defaultdict(Endpoint)
    first = last = None
    for row in csv.reader(enc.stdout.decode().splitlines()):
        ts, code, latency_ns, error, method, url = (
            int(row[0]), row[1], int(row[2]), row[5], row[9], row[10]
        )  # fmt: skip
        first = ts if first is None else min(first, ts)
        last = ts if last is None else max(last, ts)
        ep = by[names.get(f"{method} {url}", url)]
        ep.latencies_ms.append(latency_ns / 1e6)
        ep.statuses[code] += 1
        if error:
            ep.errors[f"{code} {error[:120]}"] += 1
    span = ((last or 0) - (first or 0)) / 1e9
    return dict(by), span


def total(endpoints: dict[str, Endpoint]) -> Endpoint:
    all_ = Endpoint()
    for ep in endpoints.values():
        all_.latencies_ms.extend(ep.latencies_ms)
        for code, n in ep.statuses.items():
            all_.statuses[code] += n
        for err, n in ep.errors.items():
            all_.errors[err] += n
    return all_
