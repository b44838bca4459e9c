"""End to end on the real broker and database: a site's raw records → the DE-ID worker →
signed envelopes on the regional topic → the hub consumer → PostgreSQL. The hub's census
of the site equals the site's own (the raw snapshots its twin published).

The site agent's own leg (HL7 ADT over MLLP → live twin → raw topic) is tested in
tests/site_agent; here the synthetic site stands in for the twin's output."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer

from deid.contracts import raw_topic
from deid.keystore import MasterKeyRing, PatientKeyStore
from deid.policy import default_policy_document, load_policy, sign_policy
from deid.signing import generate_signing_key, public_key_b64
from deid.testing.synthetic import UNITS, SyntheticSite
from deid.worker import DeidWorker, WorkerConfig
from hub.census.consumer import RegionalConsumer
from hub.census.models import CensusSnapshot, FeedState, FlowEvent, UnitState
from hub.registry import services
from hub.registry.models import Hospital
from tests.hub.census.test_consumer import create_topics
from tests.hub.support import HospitalFactory, UnitFactory

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db]

FIGURES = (
    "licensed_beds",
    "staffed_beds",
    "surge_beds",
    "occupied_beds",
    "available_beds",
    "blocked_beds",
    "pending_admissions",
    "pending_discharges",
    "ed_waiting",
    "ed_in_treatment",
    "ed_boarding",
    "longest_boarding_minutes",
)


def test_the_hubs_census_equals_the_sites(kafka_bootstrap: str, tmp_path: Path) -> None:
    site = "e2e" + uuid.uuid4().hex[:8]
    regional = f"test.{site}.regional"
    create_topics(kafka_bootstrap, raw_topic(site), regional, f"{regional}.dlq")

    # The hub knows the site, its units, and the public key of the site's DE-ID worker.
    hospital: Hospital = HospitalFactory(site_code=site)  # type: ignore[assignment]
    for code, unit_type in UNITS:
        UnitFactory(hospital=hospital, code=code, unit_type=unit_type.value)
    site_key = generate_signing_key()
    services.agent_register(hospital=hospital, name="deid", public_key=public_key_b64(site_key))

    # The site: its twin's census snapshots, a heartbeat and patient flow, on its raw topic.
    keystore = PatientKeyStore(tmp_path / "keys.sqlite", MasterKeyRing.generate_b64())
    twin = SyntheticSite(site, seed=11, keystore=keystore)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    snapshots = twin.census(now)
    flows = twin.flow_events(twin.patients(50), 300)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for record in [*snapshots, twin.heartbeat(now), *flows]:
        producer.produce(raw_topic(site), key=site.encode(), value=record.encode())
    assert producer.flush(30) == 0

    governance = generate_signing_key()
    policy = load_policy(
        sign_policy(default_policy_document(), governance), governance.public_key()
    )
    worker = DeidWorker(
        WorkerConfig(
            site_code=site,
            bootstrap=kafka_bootstrap,
            output_topic=regional,
            control_topic=f"test.{site}.control",
            regional_deadletter_topic=f"test.{site}.deadletter",
            exit_when_idle=2.0,
            window_max_seconds=1.0,
            stats_interval=60,
        ),
        signing_key=site_key,
        keystore=keystore,
        policy=policy,
        governance_keys=[governance.public_key()],
    )
    assert worker.run() == 0
    keystore.close()

    hub = RegionalConsumer(
        bootstrap=kafka_bootstrap,
        topic=regional,
        group=f"{regional}.hub",
        deadletter_topic=f"{regional}.dlq",
    )
    stats = hub.run(threading.Event(), idle_exit_after=3.0)
    assert stats.rejected == 0

    states = {
        s.unit.code: s
        for s in UnitState.objects.filter(hospital=hospital, audience="regional_operations")
    }
    assert set(states) == {code for code, _ in UNITS}
    for raw in snapshots:
        state = states[raw.unit_code]
        for name in FIGURES:
            assert getattr(state, name) == getattr(raw, name), (raw.unit_code, name)
        assert state.observed_at == now
    # Every audience's release is stored once; peer and public ones without a unit code.
    assert CensusSnapshot.objects.filter(hospital=hospital).count() == 3 * len(UNITS)
    assert FlowEvent.objects.filter(hospital=hospital).exists()
    assert FeedState.objects.filter(hospital=hospital).exists()
