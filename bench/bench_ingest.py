"""Ingestion benchmark: records/s from the regional topic into PostgreSQL, against a plain
COPY of the same rows in the same run.

    python bench/bench_ingest.py [--records 200000] [--consumers 2] [--envelope 500]

It seeds throw-away sites (site codes BENCH-*), produces signed envelopes of census records
to a fresh topic, lets ``--consumers`` hub consumer processes (the code of ``manage.py
consume``) drain it, then COPYs the same rows into a scratch table with the same columns and
indexes. Everything it created is removed at the end. Goal (issue 5): at least 50,000
records/s on a 2-core machine and at least 25% of COPY.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")


def _setup() -> None:
    import django

    django.setup()


def _consume(
    topic: str,
    group: str,
    bootstrap: str,
    batch: int,
    stop: threading.Event,
    out: mp.Queue,
) -> None:
    _setup()
    from hub.census.consumer import RegionalConsumer

    consumer = RegionalConsumer(
        bootstrap=bootstrap,
        topic=topic,
        group=group,
        deadletter_topic=f"{topic}.dlq",
        batch_size=batch,
    )
    stats = consumer.run(stop)
    out.put(
        (stats.census, stats.rejected, stats.first_message_at, stats.last_commit_at, stats.batches)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--envelope", type=int, default=500, help="records per envelope")
    parser.add_argument("--batch", type=int, default=50, help="envelopes per transaction")
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()

    _setup()
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from deid.contracts import Audience, CensusRecord, UnitType, canonical_json, seal_envelope
    from deid.signing import generate_signing_key, public_key_b64
    from hub.census.ingest import CENSUS_COLUMNS, IngestBatch, SiteDirectory, envelope_into_batch
    from hub.registry import services
    from hub.registry.models import Hospital, Region

    bootstrap = settings.KAFKA_BOOTSTRAP_SERVERS
    run = uuid.uuid4().hex[:8]
    topic = f"bench.ingest.{run}"
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
    envelopes: list[bytes] = []
    made = 0
    while made < args.records:
        site, key = sites[len(envelopes) % len(sites)]
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
        envelopes.append(envelope)
        producer.produce(topic, key=site.encode(), value=envelope)
        producer.poll(0)
        made += count
    assert producer.flush(60) == 0

    print(f"consuming with {args.consumers} hub consumer process(es) ...")
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    stop = ctx.Event()
    group = f"{topic}.hub"
    procs = [
        ctx.Process(target=_consume, args=(topic, group, bootstrap, args.batch, stop, out))
        for _ in range(args.consumers)
    ]
    for p in procs:
        p.start()
    # The parent watches the table and stops the consumers once every record is stored.
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM census_censussnapshot WHERE site_code LIKE %s",
                [f"BENCH-{run}-%"],
            )
            if cursor.fetchone()[0] >= args.records:
                break
        time.sleep(0.5)
    stop.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    stored = sum(r[0] for r in results)
    rejected = sum(r[1] for r in results)
    first = min(r[2] for r in results if r[2])
    last = max(r[3] for r in results if r[3])
    ingest_rate = stored / (last - first)

    print("COPY baseline: the same rows into a table with the same columns and indexes ...")
    batch = IngestBatch()
    directory = SiteDirectory()
    received = timezone.now()
    for envelope in envelopes:
        envelope_into_batch(
            envelope, directory=directory, batch=batch, received_at=received, via="kafka"
        )
    cols = ", ".join(CENSUS_COLUMNS)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute(
            f"CREATE TABLE bench_copy_{run} (LIKE census_censussnapshot "
            "INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY bench_copy_{run} ({cols}) FROM STDIN") as copy:
            for row in batch.census:
                copy.write_row(row)
    copy_rate = len(batch.census) / (time.perf_counter() - started)

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
    AdminClient({"bootstrap.servers": bootstrap}).delete_topics([topic])

    print("")
    print(f"records stored          {stored:>12,}   (rejected {rejected})")
    print(
        f"hub ingestion           {ingest_rate:>12,.0f} records/s  "
        f"({args.consumers} consumer process(es), envelopes of {args.envelope}, "
        f"{args.batch} envelopes per transaction)"
    )
    print(f"plain COPY, same rows   {copy_rate:>12,.0f} records/s")
    print(f"ratio                   {ingest_rate / copy_rate:>12.0%}")
    print(
        f"goal                    50,000 records/s and 25% of COPY: "
        f"{'met' if ingest_rate >= 50_000 and ingest_rate >= 0.25 * copy_rate else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
