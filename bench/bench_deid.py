"""Benchmark of the DE-ID stream worker on the real broker.

Measures, in one run and on the same broker and input topic:
  identity  - the same worker with the same Kafka settings (transactions, read_committed,
              envelopes of the same size, one Ed25519 signature per envelope) that decodes and
              re-encodes every record without de-identifying it: the ceiling for any transform;
  deid      - the real worker with the shipped default policy (three audiences: every flow
              event becomes up to three regional records);
  deid-ops  - the real worker with a policy for regional operations only.
Each worker runs in this process (so start-up, group join and idle time are excluded: the
interval is first record consumed to last window committed) and reads the whole topic with a
consumer group of its own. Prints records/s and the ratio to the identity worker.

    python bench/bench_deid.py [--records 200000] [--rounds 2]

Needs Kafka at $KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from deid.keystore import MasterKeyRing, PatientKeyStore  # noqa: E402
from deid.policy import Policy, default_policy_document, parse_policy  # noqa: E402
from deid.signing import generate_signing_key  # noqa: E402
from deid.testing.synthetic import SyntheticSite  # noqa: E402
from deid.worker import DeidWorker, WorkerConfig  # noqa: E402

GOAL_RATE = 50_000
GOAL_RATIO = 0.5
TOPIC_PREFIX = ""  # --topic-prefix: topics and consumer groups of this run start with it


def produce_input(bootstrap: str, topic: str, site: SyntheticSite, records: int) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    patients = site.patients(max(1, records // 5))
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "compression.type": "lz4",
            "enable.idempotence": True,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    key = site.site_code.encode()
    sent = 0
    chunk = 20_000
    while sent < records:
        n = min(chunk, records - sent)
        batch = site.flow_events(patients, n)
        if sent == 0:
            batch = [*site.census(), *batch[: n - 11], site.heartbeat()]  # type: ignore[list-item]
        for record in batch:
            while True:
                try:
                    producer.produce(topic, key=key, value=record.encode())
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.poll(0)
        sent += len(batch)
    producer.flush(120)
    return sent


def ops_only(policy: Policy) -> Policy:
    doc = copy.deepcopy(dict(policy.document))
    for kind in ("census", "flow"):
        doc["records"][kind] = {"regional_operations": doc["records"][kind]["regional_operations"]}
    return parse_policy(doc)


def run_worker(
    name: str,
    bootstrap: str,
    site_code: str,
    input_topic: str,
    policy: Policy | None,
    keystore: PatientKeyStore | None,
    *,
    passthrough: bool,
    envelope_size: int,
    window: int,
) -> dict[str, Any]:
    tag = f"{name}.{uuid.uuid4().hex[:6]}"
    config = WorkerConfig(
        site_code=site_code,
        bootstrap=bootstrap,
        input_topic=input_topic,
        output_topic=f"{TOPIC_PREFIX}bench.{site_code}.{tag}.out",
        control_topic=f"{TOPIC_PREFIX}bench.{site_code}.control",
        held_topic=f"{TOPIC_PREFIX}bench.{site_code}.{tag}.held",
        deadletter_topic=f"{TOPIC_PREFIX}bench.{site_code}.{tag}.dlq",
        regional_deadletter_topic=f"{TOPIC_PREFIX}bench.{site_code}.{tag}.rdlq",
        group_id=f"{TOPIC_PREFIX}bench.{tag}",
        transactional_id=f"{TOPIC_PREFIX}bench.{tag}",
        envelope_size=envelope_size,
        window_max_records=window,
        window_max_seconds=1.0,
        exit_when_idle=3.0,
        stats_interval=3600,
        heartbeat_interval=3600,
        passthrough=passthrough,
    )
    worker = DeidWorker(
        config, signing_key=generate_signing_key(), keystore=keystore, policy=policy
    )
    cpu = time.process_time()
    worker.run()
    cpu = time.process_time() - cpu
    c = worker.counters
    assert worker.first_record_at is not None
    assert worker.last_commit_at is not None
    seconds = worker.last_commit_at - worker.first_record_at
    return {
        "worker": name,
        "records": c.processed,
        "seconds": round(seconds, 3),
        "records_per_s": round(c.processed / seconds),
        "released": c.released,
        "envelopes": c.envelopes,
        # CPU seconds of this process (worker thread and librdkafka's threads) for the whole
        # run, start-up and idle included: a load-independent cross-check on a shared machine.
        "cpu_seconds": round(cpu, 2),
        "records_per_cpu_s": round(c.processed / cpu),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs; best is kept")
    parser.add_argument("--envelope-size", type=int, default=500)
    parser.add_argument("--window", type=int, default=5000)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument(
        "--topic-prefix",
        default="",
        help="prefix of the bench's topics and consumer groups (several benches on one broker)",
    )
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")

    global TOPIC_PREFIX
    TOPIC_PREFIX = args.topic_prefix
    site_code = "bench" + uuid.uuid4().hex[:8]
    input_topic = f"{TOPIC_PREFIX}bench.{site_code}.raw"
    with tempfile.TemporaryDirectory() as tmp:
        keystore = PatientKeyStore(Path(tmp) / "keys.sqlite", MasterKeyRing.generate_b64())
        site = SyntheticSite(site_code, seed=42, keystore=keystore)
        t0 = time.monotonic()
        sent = produce_input(bootstrap, input_topic, site, args.records)
        print(f"input: {sent} raw records on {input_topic} ({time.monotonic() - t0:.1f} s to make)")
        policy = parse_policy(default_policy_document())
        runs: dict[str, list[dict[str, Any]]] = {"identity": [], "deid": [], "deid-ops": []}
        for _ in range(args.rounds):
            for name in runs:
                result = run_worker(
                    name,
                    bootstrap,
                    site_code,
                    input_topic,
                    None
                    if name == "identity"
                    else (policy if name == "deid" else ops_only(policy)),
                    None if name == "identity" else keystore,
                    passthrough=name == "identity",
                    envelope_size=args.envelope_size,
                    window=args.window,
                )
                runs[name].append(result)
                print(json.dumps(result))
        keystore.close()
    best = {name: max(r, key=lambda x: x["records_per_s"]) for name, r in runs.items()}
    ceiling = best["identity"]["records_per_s"]
    print()
    print(f"{'worker':<10} {'records/s':>10} {'ratio':>7} {'out/s':>9} {'rec/cpu-s':>10}  goal")
    for name, result in best.items():
        rate = result["records_per_s"]
        ratio = rate / ceiling
        out_rate = round(result["released"] / result["seconds"])
        goal = (
            ""
            if name == "identity"
            else (
                f"{'met' if rate >= GOAL_RATE else 'missed'} {GOAL_RATE}/s, "
                f"{'met' if ratio >= GOAL_RATIO else 'missed'} {GOAL_RATIO:.0%} of identity"
            )
        )
        cpu_rate = result["records_per_cpu_s"]
        print(f"{name:<10} {rate:>10} {ratio:>7.2f} {out_rate:>9} {cpu_rate:>10}  {goal}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"best": best, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
