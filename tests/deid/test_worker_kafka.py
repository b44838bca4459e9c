"""The stream worker on the real broker: signed de-identified output, dead letters, fail
closed, policies from the control topic, crypto-shredding."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid.contracts import (
    DEADLETTER_TOPIC,
    CensusRecord,
    FlowRecord,
    HeartbeatRecord,
    PlainFlowEvent,
    raw_topic,
    site_deadletter_topic,
)
from deid.keystore import KeyDestroyed, PatientKeyStore
from deid.policy import encode_policy_message, load_policy, sign_policy
from deid.signing import generate_signing_key
from deid.testing.synthetic import SyntheticSite
from deid.worker import DeidWorker, WorkerConfig
from tests.deid.conftest import k1_policy_doc
from tests.deid.kafka_helpers import (
    consume_all,
    create_topics,
    headers,
    produce,
    produce_as_relay,
    regional_records,
)

pytestmark = pytest.mark.kafka


def make_worker(
    bootstrap: str,
    site_code: str,
    site_key: Ed25519PrivateKey,
    governance_key: Ed25519PrivateKey,
    *,
    keystore: PatientKeyStore | None,
    policy_doc: dict[str, Any] | None,
) -> DeidWorker:
    config = WorkerConfig(
        site_code=site_code,
        bootstrap=bootstrap,
        output_topic=f"test.{site_code}.regional",
        control_topic=f"test.{site_code}.control",
        regional_deadletter_topic=f"test.{site_code}.deadletter",
        exit_when_idle=2.0,
        window_max_seconds=1.0,
        stats_interval=60,
    )
    policy = None
    if policy_doc is not None:
        policy = load_policy(sign_policy(policy_doc, governance_key), governance_key.public_key())
    return DeidWorker(
        config,
        signing_key=site_key,
        keystore=keystore,
        policy=policy,
        governance_keys=[governance_key.public_key()],
    )


def test_worker_releases_signed_deidentified_envelopes_and_dead_letters(
    kafka_bootstrap: str,
    site_code: str,
    synthetic: SyntheticSite,
    keystore: PatientKeyStore,
    site_key: Ed25519PrivateKey,
    governance_key: Ed25519PrivateKey,
    policy_doc: dict[str, Any],
) -> None:
    patients = synthetic.patients(200)
    events = synthetic.flow_events(patients, 2000)
    plain = synthetic.plain_flow_events(patients[:1], 1)[0]
    other_site = SyntheticSite("elsewhere").census()[0]
    values = [
        *(r.encode() for r in synthetic.census()),
        *(e.encode() for e in events),
        synthetic.heartbeat().encode(),
        b"not json {",
        plain.encode(),  # PHI in the clear never goes through
        other_site.encode(),
    ]
    worker = make_worker(
        kafka_bootstrap,
        site_code,
        site_key,
        governance_key,
        keystore=keystore,
        policy_doc=policy_doc,
    )
    config = worker.config
    create_topics(kafka_bootstrap, [raw_topic(site_code)])
    produce(kafka_bootstrap, raw_topic(site_code), site_code.encode(), values)
    assert worker.run() == 0

    records = regional_records(
        consume_all(kafka_bootstrap, config.output_topic), site_key.public_key()
    )
    kinds = Counter(type(r) for r in records)
    assert kinds[CensusRecord] == 30  # 10 units x 3 audiences
    assert kinds[HeartbeatRecord] >= 1
    assert kinds[FlowRecord] > 5000  # 2000 events x 3 audiences, a few suppressed
    assert all(r.site_code == site_code for r in records)
    counters = worker.counters.as_dict()
    assert counters["processed"] == len(values) - 3
    assert counters["dead_lettered"] == 3
    assert counters["suppressed"] == 3 * 2000 - kinds[FlowRecord]

    dead = consume_all(kafka_bootstrap, site_deadletter_topic(site_code))
    assert len(dead) == 3
    reasons = sorted(headers(m)["reason"] for m in dead)
    assert any("JSON" in r for r in reasons)
    assert any("plaintext PHI" in r for r in reasons)
    assert any("not this worker's site" in r for r in reasons)
    for m in dead:
        h = headers(m)
        assert h["source_topic"] == raw_topic(site_code)
        assert int(h["source_offset"]) >= 0
        assert h["source_partition"] == "0"
    notices = consume_all(kafka_bootstrap, config.regional_deadletter_topic)
    assert len(notices) == 3
    assert all(m.value() is None for m in notices)  # no payload in the regional zone
    assert config.regional_deadletter_topic != DEADLETTER_TOPIC  # the test did not pollute it


def test_fail_closed_until_a_signed_policy_arrives(
    kafka_bootstrap: str,
    site_code: str,
    synthetic: SyntheticSite,
    keystore: PatientKeyStore,
    site_key: Ed25519PrivateKey,
    governance_key: Ed25519PrivateKey,
    policy_doc: dict[str, Any],
) -> None:
    patients = synthetic.patients(50)
    worker = make_worker(
        kafka_bootstrap, site_code, site_key, governance_key, keystore=keystore, policy_doc=None
    )
    control = worker.config.control_topic
    create_topics(kafka_bootstrap, [raw_topic(site_code), control])
    # A policy signed by someone else, and one altered after signing, are ignored.
    rogue = sign_policy(policy_doc, generate_signing_key())
    altered = sign_policy(policy_doc, governance_key)
    altered["policy"]["records"]["flow"]["regional_operations"]["k"] = 1
    produce(
        kafka_bootstrap,
        control,
        b"*",
        [encode_policy_message(rogue), encode_policy_message(altered)],
    )
    first = [*synthetic.census(), *synthetic.flow_events(patients, 100), synthetic.heartbeat()]
    produce(kafka_bootstrap, raw_topic(site_code), site_code.encode(), [r.encode() for r in first])
    assert worker.run() == 0
    out = regional_records(
        consume_all(kafka_bootstrap, worker.config.output_topic), site_key.public_key()
    )
    assert out
    assert all(isinstance(r, HeartbeatRecord) and r.policy_version is None for r in out)

    newer = copy.deepcopy(policy_doc)
    newer["version"] = 2
    produce(
        kafka_bootstrap, control, site_code.encode(),
        [encode_policy_message(sign_policy(newer, governance_key), site_codes=[site_code])],
    )  # fmt: skip
    second = synthetic.flow_events(patients, 300)
    produce(kafka_bootstrap, raw_topic(site_code), site_code.encode(), [e.encode() for e in second])
    worker = make_worker(
        kafka_bootstrap, site_code, site_key, governance_key, keystore=keystore, policy_doc=None
    )
    assert worker.run() == 0
    out = regional_records(
        consume_all(kafka_bootstrap, worker.config.output_topic), site_key.public_key()
    )
    flows = [r for r in out if isinstance(r, FlowRecord)]
    assert flows
    assert {r.policy_version for r in flows} == {2}
    assert {r.source_event_id for r in flows} <= {e.event_id for e in second}


def test_after_erasure_replaying_the_raw_topic_recovers_nothing(
    kafka_bootstrap: str,
    site_code: str,
    synthetic: SyntheticSite,
    keystore: PatientKeyStore,
    site_key: Ed25519PrivateKey,
    governance_key: Ed25519PrivateKey,
    policy_doc: dict[str, Any],
) -> None:
    patients = synthetic.patients(40)
    events = synthetic.flow_events(patients, 400)
    victim = patients[0]
    create_topics(kafka_bootstrap, [raw_topic(site_code)])
    produce(kafka_bootstrap, raw_topic(site_code), site_code.encode(), [e.encode() for e in events])
    evidence = keystore.erase(victim.surrogate_id)
    assert evidence["data_keys_destroyed"]

    # Replay the raw topic with the site's own key store: the victim's PHI is gone.
    raw = consume_all(kafka_bootstrap, raw_topic(site_code))
    assert len(raw) == 400
    recovered = 0
    for m in raw:
        data = json.loads(m.value())
        assert victim.phi.mrn not in m.value().decode()  # never in the clear anyway
        if data["surrogate_id"] == victim.surrogate_id:
            with pytest.raises(KeyDestroyed):
                keystore.decrypt_phi(data["surrogate_id"], data["key_id"], data["phi_ciphertext"])
        else:
            keystore.decrypt_phi(data["surrogate_id"], data["key_id"], data["phi_ciphertext"])
            recovered += 1
    assert recovered == sum(1 for e in events if e.surrogate_id != victim.surrogate_id)

    # And the worker, replaying it, releases nothing of the victim.
    policy_doc["records"]["flow"]["regional_operations"]["k"] = 1
    worker = make_worker(
        kafka_bootstrap,
        site_code,
        site_key,
        governance_key,
        keystore=keystore,
        policy_doc=policy_doc,
    )
    assert worker.run() == 0
    out = regional_records(
        consume_all(kafka_bootstrap, worker.config.output_topic), site_key.public_key()
    )
    victim_events = {e.event_id for e in events if e.surrogate_id == victim.surrogate_id}
    assert victim_events
    assert not [r for r in out if isinstance(r, FlowRecord) and r.source_event_id in victim_events]
    assert worker.counters.erased == len(victim_events)


def test_plain_flow_events_are_never_accepted_from_kafka() -> None:
    from deid.contracts import DecodeError
    from deid.worker import decode_raw

    event = SyntheticSite("NGH").plain_flow_events(SyntheticSite("NGH").patients(1), 1)[0]
    assert isinstance(event, PlainFlowEvent)
    with pytest.raises(DecodeError, match="plaintext"):
        decode_raw(event.encode())


def test_census_is_released_without_waiting_for_the_flow_window(
    kafka_bootstrap: str,
    site_code: str,
    synthetic: SyntheticSite,
    keystore: PatientKeyStore,
    site_key: Ed25519PrivateKey,
    governance_key: Ed25519PrivateKey,
    policy_doc: dict[str, Any],
) -> None:
    """The relay's layout: flow events on the flow partition, census snapshots on the
    capacity partition, each with its record_type header. The census goes out in its own
    transaction at once; the flow events a window (3 s here) later; each exactly once."""
    topic = raw_topic(site_code)
    create_topics(kafka_bootstrap, [topic], partitions=3)
    patients = synthetic.patients(100)
    flows = synthetic.flow_events(patients, 200)
    census = synthetic.census()
    produce_as_relay(kafka_bootstrap, topic, site_code.encode(), [*flows, *census])
    worker = make_worker(
        kafka_bootstrap,
        site_code,
        site_key,
        governance_key,
        keystore=keystore,
        policy_doc=policy_doc,
    )
    worker.config.window_max_seconds = 3.0
    assert worker.run() == 0

    records = regional_records(
        consume_all(kafka_bootstrap, worker.config.output_topic), site_key.public_key()
    )
    census_out = [r for r in records if isinstance(r, CensusRecord)]
    flow_out = [r for r in records if isinstance(r, FlowRecord)]
    assert len(census_out) == 3 * len(census)
    assert len({r.event_id for r in census_out}) == len(census_out)
    assert flow_out
    assert len({r.event_id for r in flow_out}) == len(flow_out)
    census_at = max(r.produced_at for r in census_out)
    flows_at = min(r.produced_at for r in flow_out)
    assert (flows_at - census_at).total_seconds() > 2.0
    assert worker.counters.windows >= 2


class _FailingCommits:
    """The worker's producer, whose commit_transaction fails (abortable, as when the broker
    fences a transaction) on the given calls; everything else goes to the real producer."""

    def __init__(self, producer: Producer, fail_on: set[int]) -> None:
        self._producer = producer
        self._fail_on = fail_on
        self.commits = 0

    def commit_transaction(self, *args: Any) -> None:
        self.commits += 1
        if self.commits in self._fail_on:
            raise KafkaException(
                KafkaError(KafkaError._FENCED, "injected", txn_requires_abort=True)
            )
        self._producer.commit_transaction(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


def test_a_failed_commit_rewinds_the_window_being_transformed_meanwhile(
    kafka_bootstrap: str,
    site_code: str,
    synthetic: SyntheticSite,
    keystore: PatientKeyStore,
    site_key: Ed25519PrivateKey,
    governance_key: Ed25519PrivateKey,
) -> None:
    """Windows are transformed while the previous one commits. When a commit fails, its
    window and the one after it (already consumed and transformed) are read again: every
    flow event and census snapshot comes out exactly once, on both partitions."""
    topic = raw_topic(site_code)
    create_topics(kafka_bootstrap, [topic], partitions=3)
    flows = synthetic.flow_events(synthetic.patients(300), 3000)
    census = synthetic.census()
    produce_as_relay(kafka_bootstrap, topic, site_code.encode(), [*census, *flows])
    worker = make_worker(
        kafka_bootstrap,
        site_code,
        site_key,
        governance_key,
        keystore=keystore,
        policy_doc=k1_policy_doc(),
    )
    worker.config.window_max_records = 200
    failing = _FailingCommits(worker.producer, fail_on={3, 6, 9})
    worker.producer = failing  # type: ignore[assignment]
    assert worker.run() == 0

    records = regional_records(
        consume_all(kafka_bootstrap, worker.config.output_topic), site_key.public_key()
    )
    flow_sources = Counter(r.source_event_id for r in records if isinstance(r, FlowRecord))
    census_out = Counter(r.event_id for r in records if isinstance(r, CensusRecord))
    assert set(flow_sources) == {e.event_id for e in flows}
    assert set(flow_sources.values()) == {1}  # k1 policy: one audience, nothing suppressed
    assert len(census_out) == len(census)
    assert set(census_out.values()) == {1}
    assert worker.counters.aborted_transactions == 3
    assert worker.counters.processed == len(flows) + len(census)
    assert failing.commits > 15  # windows of 200: the failures fell mid-stream
