"""Ingestion benchmark: records/s from the regional topic into PostgreSQL, against a plain
COPY of the same rows in the same run.

    python bench/bench_ingest.py [--records 200000] [--consumers 2] [--envelope 500]

It seeds throw-away sites (site codes BENCH-*), produces signed envelopes of census records
to a fresh topic, lets ``--consumers`` hub consumer processes (the code of ``manage.py
consume``) drain it, then loads the same rows with a plain COPY into a scratch table with the
same columns and indexes. Everything it created is removed at the end. Goal (issue 5): at
least 50,000 records/s on a 2-core machine and at least 25% of COPY.

The plain COPY is the fastest plain load of those rows: they are read back from the hub's
table as COPY data (text and binary) before the clock starts, and each buffer is COPYed into
an empty table; the faster of the two is the baseline. (Before 2026-11-24 the baseline
formatted each row in Python with psycopg's ``write_row`` inside the timed region, which made
it about four times slower than a plain COPY.)

Besides wall-clock rates it reports CPU time per record: the consumer processes' own CPU
(process_time, librdkafka's threads included) and their PostgreSQL backends' CPU (from
/proc/<pid>/stat, when the server runs on this machine). On a shared machine the wall-clock
rates move with the load; the CPU figures much less.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")


def _setup() -> None:
    import django

    django.setup()


def backend_cpu() -> tuple[int, float] | None:
    """(pid, CPU seconds) of this process's PostgreSQL backend, or None when the server's
    processes cannot be read (another machine, another user)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _consume(
    topic: str,
    group: str,
    bootstrap: str,
    batch: int,
    stop: threading.Event,
    out: mp.Queue,
    progress: Any,
    running: Any,
    ready: Any,
) -> None:
    _setup()
    from hub.census.consumer import ConsumerStats, RegionalConsumer
    from hub.census.services import IngestCounts

    first = [True]

    def on_batch(counts: IngestCounts, _stats: ConsumerStats) -> None:
        with progress.get_lock():
            progress.value += counts.census_inserted
        if first[0]:  # this consumer holds partitions and has stored its first batch
            first[0] = False
            with running.get_lock():
                running.value += 1

    consumer = RegionalConsumer(
        bootstrap=bootstrap,
        topic=topic,
        group=group,
        deadletter_topic=f"{topic}.dlq",
        batch_size=batch,
        on_batch=on_batch,
    )
    # The consumer writes on its writer thread's connection: its backend's CPU is read there,
    # before the first write and after each one.
    backend: dict[str, tuple[int, float] | None] = {}
    write = consumer._write

    writer_cpu = [0.0]

    def measured_write(batch: Any) -> Any:
        if "before" not in backend:
            backend["before"] = backend_cpu()
        started = time.thread_time()
        result = write(batch)
        writer_cpu[0] += time.thread_time() - started
        backend["after"] = backend_cpu()
        return result

    consumer._write = measured_write  # type: ignore[method-assign]
    # Every consumer process has started Django and made its client before any joins the
    # group: they join together and the first assignment already shares the partitions.
    # (Joined one by one, as their start-ups finish, the first member consumes alone and the
    # group rebalances during the measured interval: a start-up cost, not ingestion.)
    ready.wait(120)
    cpu_before = time.process_time()
    main_before = time.thread_time()
    stats = consumer.run(stop)
    main_cpu = time.thread_time() - main_before
    cpu = time.process_time() - cpu_before
    before, after = backend.get("before"), backend.get("after")
    backend_s = None
    if before and after and before[0] == after[0]:
        backend_s = after[1] - before[1]
    out.put(
        (
            stats.census,
            stats.rejected,
            stats.first_message_at,
            stats.last_commit_at,
            stats.batches,
            cpu,
            backend_s,
            main_cpu,
            writer_cpu[0],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--envelope", type=int, default=500, help="records per envelope")
    parser.add_argument("--batch", type=int, default=50, help="envelopes per transaction")
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--prefix", default="", help="prefix of the topic and group names")
    args = parser.parse_args()

    _setup()
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from django.conf import settings
    from django.db import connection

    from deid.contracts import Audience, CensusRecord, UnitType, canonical_json, seal_envelope
    from deid.signing import generate_signing_key, public_key_b64
    from hub.registry import services
    from hub.registry.models import Hospital, Region

    bootstrap = settings.KAFKA_BOOTSTRAP_SERVERS
    run = uuid.uuid4().hex[:8]
    topic = f"{args.prefix}bench.ingest.{run}"
    region = services.region_ensure(code=f"bench-{run}", name="benchmark (throw-away)")
    sites = []
    for n in range(args.sites):
        hospital = services.hospital_upsert(
            region=region, site_code=f"BENCH-{run}-{n}", name=f"bench {n}"
        )
        for code in ("ICU", "W1", "W2", "W3"):
            services.unit_upsert(
                hospital=hospital,
                code=code,
                name=code,
                unit_type="adult_icu" if code == "ICU" else "medical_surgical",
                licensed_beds=30,
                staffed_beds=30,
            )
        key = generate_signing_key()
        services.agent_register(hospital=hospital, name="bench", public_key=public_key_b64(key))
        sites.append((hospital.site_code, key))

    print(f"producing {args.records:,} census records in envelopes of {args.envelope} ...")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=args.partitions, replication_factor=1)])[
        topic
    ].result(30)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 20,
            "compression.type": "lz4",
            "message.max.bytes": 8_000_000,
        }
    )
    now = datetime.now(UTC) - timedelta(minutes=30)  # one record per millisecond from here
    made = envelopes = 0
    while made < args.records:
        site, key = sites[envelopes % len(sites)]
        count = min(args.envelope, args.records - made)
        records = []
        for i in range(count):
            at = now + timedelta(milliseconds=made + i)
            records.append(
                canonical_json(
                    CensusRecord(
                        site_code=site,
                        policy_version=1,
                        audience=Audience.REGIONAL_OPERATIONS,
                        source_event_id=str(uuid.uuid4()),
                        unit_code=("ICU", "W1", "W2", "W3")[i % 4],
                        unit_type=UnitType.ADULT_ICU if i % 4 == 0 else UnitType.MEDICAL_SURGICAL,
                        as_of=at.strftime("%Y-%m-%dT%H:%MZ"),
                        licensed_beds=30,
                        staffed_beds=30,
                        occupied_beds=20 + i % 10,
                        available_beds=10 - i % 10,
                        pending_admissions=i % 3,
                        source="hl7-adt",
                        stale=False,
                        produced_at=at,
                    ).to_dict()
                )
            )
        envelope = seal_envelope(records, key, site_code=site, policy_version=1)
        envelopes += 1
        producer.produce(topic, key=site.encode(), value=envelope)
        producer.poll(0)
        made += count
    assert producer.flush(60) == 0

    print(f"consuming with {args.consumers} hub consumer process(es) ...")
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    stop = ctx.Event()
    progress = ctx.Value("q", 0)
    running = ctx.Value("i", 0)
    ready = ctx.Barrier(args.consumers)
    group = f"{topic}.hub"
    procs = [
        ctx.Process(
            target=_consume,
            args=(topic, group, bootstrap, args.batch, stop, out, progress, running, ready),
        )
        for _ in range(args.consumers)
    ]
    for p in procs:
        p.start()
    # The consumers count what they stored; the parent stops them once every record is in
    # (without querying the table meanwhile: that would compete with them).
    # A replay after a rebalance inserts nothing new, so the table is counted too, rarely.
    # Also timed: from the moment every consumer has stored a batch (the group has formed;
    # joining it is a one-off start-up cost that a short run would otherwise mostly measure)
    # to the last record stored.
    deadline = time.monotonic() + 900
    counted_at = time.monotonic()
    all_running: tuple[float, int] | None = None
    while time.monotonic() < deadline and progress.value < args.records:
        time.sleep(0.02)
        if all_running is None and running.value >= args.consumers:
            all_running = (time.monotonic(), progress.value)
        if time.monotonic() - counted_at > 5:
            counted_at = time.monotonic()
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM census_censussnapshot WHERE site_code LIKE %s",
                    [f"BENCH-{run}-%"],
                )
                if cursor.fetchone()[0] >= args.records:
                    break
    all_done = time.monotonic()
    stop.set()
    results = []
    for _ in procs:
        try:
            results.append(out.get(timeout=120))
        except queue.Empty:
            break
    for p in procs:
        p.join(10)
    if len(results) < len(procs):
        print(f"WARNING: {len(procs) - len(results)} consumer(s) failed; figures incomplete")
    stored = sum(r[0] for r in results)
    rejected = sum(r[1] for r in results)
    first = min(r[2] for r in results if r[2])
    last = max(r[3] for r in results if r[3])
    ingest_rate = stored / (last - first)
    steady_rate = None
    if all_running is not None and args.records - all_running[1] >= args.records // 5:
        steady_rate = (args.records - all_running[1]) / (all_done - all_running[0])
    consumer_cpu = sum(r[5] for r in results)
    backends = [r[6] for r in results]
    backend_cpu_s = None if None in backends else sum(b for b in backends if b is not None)

    print("plain COPY: the same rows into a table with the same columns and indexes ...")
    copy_rate, copy_format, copy_backend = plain_copy(run, stored)

    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute(f"DROP TABLE bench_copy_{run}")
        raw.execute(
            "DELETE FROM census_unitstate WHERE hospital_id IN "
            "(SELECT id FROM registry_hospital WHERE region_id = %s)",
            [region.pk],
        )
        raw.execute("DELETE FROM census_censussnapshot WHERE site_code LIKE %s", [f"BENCH-{run}-%"])
    Hospital.objects.filter(region=region).delete()
    Region.objects.filter(pk=region.pk).delete()
    # The request is asynchronous: wait for it, or the process may exit before it is sent.
    admin.delete_topics([topic])[topic].result(30)

    print("")
    print(f"records stored          {stored:>12,}   (rejected {rejected})")
    print(
        f"hub ingestion           {ingest_rate:>12,.0f} records/s  "
        f"({args.consumers} consumer process(es), envelopes of {args.envelope}, "
        f"{args.batch} envelopes per transaction)"
    )
    print(
        f"plain COPY, same rows   {copy_rate:>12,.0f} records/s  ({copy_format}, prepared buffer)"
    )
    print(f"ratio                   {ingest_rate / copy_rate:>12.0%}")
    if steady_rate is not None and args.consumers > 1:
        print(
            f"  with every consumer running {steady_rate:>8,.0f} records/s  "
            f"({args.records - all_running[1]:,} records after the group formed): "  # type: ignore[index]
            f"{steady_rate / copy_rate:.0%} of COPY"
        )
    per = 1e6 / max(stored, 1)
    print(f"consumer CPU            {consumer_cpu * per:>12.1f} µs/record  ({consumer_cpu:.1f} s)")
    main_cpu = sum(r[7] for r in results) * per
    writer_cpu = sum(r[8] for r in results) * per
    print(
        f"  poll and verify thread {main_cpu:>11.1f} µs/record; writer thread {writer_cpu:.1f} "
        "µs/record (the two overlap: one batch is written while the next is verified)"
    )
    if backend_cpu_s is not None:
        print(
            f"their PostgreSQL CPU    {backend_cpu_s * per:>12.1f} µs/record  "
            f"({backend_cpu_s:.1f} s; plain COPY: {copy_backend * per:.1f} µs/record)"
            if copy_backend is not None
            else f"their PostgreSQL CPU    {backend_cpu_s * per:>12.1f} µs/record"
        )
    if backend_cpu_s is not None:
        # The stages run side by side; on an otherwise idle 2-core machine the slower one
        # bounds one consumer's rate (librdkafka's own threads and the GIL left out).
        slowest = max(main_cpu, writer_cpu + backend_cpu_s * per)
        print(
            f"one consumer's ceiling  {1e6 / slowest:>12,.0f} records/s  (1 / the slower stage's "
            "CPU per record: an estimate for an idle machine)"
        )
    print(f"load average            {'  '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"goal                    50,000 records/s and 25% of COPY: "
        f"{'met' if ingest_rate >= 50_000 and ingest_rate >= 0.25 * copy_rate else 'NOT met'}"
        " (first record consumed to last offset commit)"
    )


def plain_copy(run: str, rows: int) -> tuple[float, str, float | None]:
    """The plain COPY baseline: (records/s, format, backend CPU seconds) of the faster of a
    text and a binary COPY of the rows the hub stored, read back as COPY data beforehand."""
    from django.db import connection

    from hub.census.ingest import CENSUS_COLUMNS

    cols = ", ".join(CENSUS_COLUMNS)
    table = f"bench_copy_{run}"
    pattern = f"BENCH-{run}-%"
    buffers: dict[str, bytes] = {}
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for fmt in ("text", "binary"):
            received = bytearray()
            query = (
                f"COPY (SELECT {cols} FROM census_censussnapshot "  # noqa: S608  # nosec B608
                f"WHERE site_code LIKE {_literal(pattern)}) TO STDOUT (FORMAT {fmt})"
            )
            with raw.copy(query) as copy:
                for chunk in copy:
                    received += chunk
            buffers[fmt] = bytes(received)
        raw.execute(
            f"CREATE TABLE {table} (LIKE census_censussnapshot "
            "INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
    best: tuple[float, str, float | None] = (0.0, "", None)
    for fmt, data in buffers.items():
        with connection.cursor() as cursor:
            cursor.cursor.execute(f"TRUNCATE {table}")
        before = backend_cpu()
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT {fmt})") as copy,
        ):
            chunk = 1 << 20
            view = memoryview(data)
            for at in range(0, len(view), chunk):
                copy.write(view[at : at + chunk])
        rate = rows / (time.perf_counter() - started)  # autocommit: the COPY's commit included
        after = backend_cpu()
        backend = after[1] - before[1] if before and after and before[0] == after[0] else None
        print(f"  plain COPY ({fmt}): {rate:,.0f} records/s")
        if rate > best[0]:
            best = (rate, fmt, backend)
    return best


def _literal(text: str) -> str:
    """A SQL string literal of a benchmark-made name (letters, digits, '-', '%')."""
    assert all(c.isalnum() or c in "-%" for c in text), text
    return f"'{text}'"


if __name__ == "__main__":
    main()
