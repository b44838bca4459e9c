"""Erasure requests: the state machine, deadlines, and the end-to-end proof on real Kafka and
PostgreSQL that afterwards no table, no export and no replay yields the patient."""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from django.db import connection
from rest_framework.test import APIClient

from deid.contracts._base import decode_record
from deid.keystore import KeyDestroyed, PatientKeyStore
from deid.policy import default_policy_document, parse_policy
from deid.testing.synthetic import SyntheticSite
from deid.transforms import demographics, transform_window
from governance import control, keys, services
from governance.erasure import (
    erased_among,
    is_erased,
    register_eraser,
    surrogate_digest,
    unregister_eraser,
)
from governance.models import AuditEvent, ErasedSurrogate, ErasureRequest, ErasureStatus
from governance.roles import Role
from tests.governance.conftest import Region, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("governance_keys")]


@pytest.fixture
def counting_eraser() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def eraser(*, site_code: str, surrogate_ids: list[str]) -> dict[str, int]:
        calls.append({"site_code": site_code, "surrogate_ids": surrogate_ids})
        return {"synthetic_table": 7}

    register_eraser("test.counting", eraser)
    yield calls
    unregister_eraser("test.counting")


@pytest.mark.django_db
def test_received_approved_executed_closed(
    region: Region, make_user: UserFactory, counting_eraser: list[dict[str, Any]]
):
    board = make_user(Role.GOVERNANCE_BOARD)
    agent = make_user(Role.SITE_AGENT, hospital=region.a)
    erasure = services.erasure_request_create(
        actor=agent, hospital_id=region.a.pk, surrogate_id="sg-unit-0001", origin="site"
    )
    assert erasure.status == ErasureStatus.RECEIVED
    assert erasure.due_at - erasure.received_at == timedelta(days=30)
    again = services.erasure_request_create(
        actor=agent, hospital_id=region.a.pk, surrogate_id="sg-unit-0001", origin="site"
    )
    assert again.pk == erasure.pk  # a retrying site does not open a second request
    with pytest.raises(services.Conflict):
        services.erasure_request_execute(actor=board, erasure=erasure)
    erasure = services.erasure_request_approve(actor=board, erasure=erasure)
    erasure = services.erasure_request_execute(actor=board, erasure=erasure)
    assert counting_eraser == [{"site_code": region.a.site_code, "surrogate_ids": ["sg-unit-0001"]}]
    assert erasure.deleted_counts["test.counting:synthetic_table"] == 7
    assert is_erased("sg-unit-0001")
    assert erased_among(["sg-unit-0001", "sg-unit-0002"]) == {"sg-unit-0001"}
    with pytest.raises(services.ServiceError, match="crypto-shredding"):
        services.erasure_request_confirm(actor=agent, erasure=erasure, evidence={})
    with pytest.raises(services.ServiceError, match="another surrogate"):
        services.erasure_request_confirm(
            actor=agent,
            erasure=erasure,
            evidence={"method": "crypto-shredding", "erased_at": "x", "surrogate_id": "sg-x"},
        )
    erasure = services.erasure_request_confirm(
        actor=agent,
        erasure=erasure,
        evidence={
            "method": "crypto-shredding",
            "erased_at": "2026-11-23T00:00:00Z",
            "surrogate_id": "sg-unit-0001",
            "evidence_sha256": "ab" * 32,
        },
    )
    assert erasure.status == ErasureStatus.CLOSED
    assert "surrogate_id" not in erasure.site_evidence
    actions = set(
        AuditEvent.objects.filter(object_ids__contains=[str(erasure.pk)]).values_list(
            "action", flat=True
        )
    )
    assert {"erasure.receive", "erasure.approve", "erasure.execute", "erasure.confirm"} <= actions
    assert not AuditEvent.objects.filter(detail__icontains="sg-unit-0001").exists()


@pytest.mark.django_db
def test_a_directive_is_queued_for_the_site_api_even_when_kafka_is_unreachable(
    region: Region,
    make_user: UserFactory,
    counting_eraser: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
):
    from hub.registry.models import Directive

    def unreachable(**_: Any) -> None:
        raise control.PublishError("broker down")

    monkeypatch.setattr(control, "publish", unreachable)
    board = make_user(Role.GOVERNANCE_BOARD)
    erasure = services.erasure_request_create(
        actor=None, hospital_id=region.a.pk, surrogate_id="sg-offline-1", origin="board"
    )
    erasure = services.erasure_request_approve(actor=board, erasure=erasure)
    erasure = services.erasure_request_execute(actor=board, erasure=erasure)
    with pytest.raises(control.PublishError):
        services.erasure_directive_resend(erasure=erasure)
    queued = Directive.objects.get(hospital_id=region.a.pk, kind=Directive.Kind.ERASURE)
    assert queued.payload["directive_id"] == str(erasure.directive_id)
    assert queued.acknowledged_at is None
    with pytest.raises(control.PublishError):  # a second attempt does not queue it twice
        services.erasure_directive_resend(erasure=erasure)
    assert Directive.objects.filter(hospital_id=region.a.pk).count() == 1


@pytest.mark.django_db
def test_deadlines_alert_before_they_pass_and_once_a_day(
    region: Region, make_user: UserFactory, caplog: pytest.LogCaptureFixture
):
    received = datetime(2026, 1, 1, tzinfo=UTC)
    erasure = services.erasure_request_create(
        actor=None,
        hospital_id=region.a.pk,
        surrogate_id="sg-late-1",
        origin="board",
        now=received,
    )
    assert services.erasure_deadlines_check(now=received + timedelta(days=10)) == []
    day_25 = received + timedelta(days=25)
    assert [e.pk for e in services.erasure_deadlines_check(now=day_25)] == [erasure.pk]
    assert services.erasure_deadlines_check(now=day_25 + timedelta(hours=2)) == []
    overdue = services.erasure_deadlines_check(now=received + timedelta(days=31))
    assert [e.pk for e in overdue] == [erasure.pk]
    assert "OVERDUE" in caplog.text
    assert AuditEvent.objects.filter(action="erasure.deadline_alert").count() == 2


def test_a_forged_or_altered_erasure_directive_is_refused(signing_key_b64: str) -> None:
    from deid import signing

    key = signing.load_private_key(signing_key_b64)
    directive = control.sign_directive(
        control.erasure_directive(
            directive_id="d1",
            erasure_id="e1",
            site_code="SITE1",
            surrogate_id="sg-1",
            due_at="2026-12-01T00:00:00+00:00",
        ),
        key,
    )
    assert control.verify_directive(directive, key.public_key())["surrogate_id"] == "sg-1"
    altered = {**directive, "surrogate_id": "sg-2"}
    with pytest.raises(control.DirectiveError, match="bad signature"):
        control.verify_directive(altered, key.public_key())
    other = signing.generate_signing_key()
    with pytest.raises(control.DirectiveError, match="not trusted"):
        control.verify_directive(control.sign_directive(directive, other), key.public_key())


# --- End to end on real Kafka and PostgreSQL -----------------------------------------------


HUB_TABLE = "gov_e2e_flow"


def consume_all(bootstrap: str, topic: str, group: str, *, expect: int) -> list[Any]:
    """Read a topic from the beginning (assigned partitions: no group rebalance to wait for)
    until the ``expect`` messages we know were produced have arrived. A slow, shared broker
    may take seconds before the first fetch, hence a deadline rather than an idle limit."""
    import time

    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    out: list[Any] = []
    deadline = time.monotonic() + 90
    try:
        while len(out) < expect and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=1.0)
            out.extend(m for m in batch if m.error() is None)
    finally:
        consumer.close()
    assert len(out) >= expect, f"{topic}: {len(out)} of {expect} messages within 90 s"
    return out


def produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for key, value in items:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def site_deid(records: list[Any], keystore: PatientKeyStore) -> Any:
    """What the site's DE-ID worker does with a window of raw records (pure transform)."""
    policy = parse_policy(default_policy_document())

    def lookup(event: Any) -> Any:
        return demographics(
            keystore.decrypt_patient(event.surrogate_id, event.key_id, event.phi_ciphertext)
        )

    return transform_window(
        records, policy, demographics_of=lookup, window_id="e2e", produced_at=datetime.now(UTC)
    )


def hub_ingest(messages: list[Any]) -> int:
    """The hub consumer's rule for replays: skip erased surrogates, upsert on event_id."""
    records = [json.loads(m.value()) for m in messages]
    erased = erased_among(r.get("surrogate_id") or "" for r in records)
    rows = [
        [r["event_id"], r["site_code"], r.get("surrogate_id") or "", json.dumps(r)]
        for r in records
        if r.get("surrogate_id") not in erased
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {HUB_TABLE} (event_id, site_code, surrogate_id, payload) "  # noqa: S608
            "VALUES (%s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
            rows,
        )
    return len(rows)


def hub_export() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT event_id, surrogate_id, payload FROM {HUB_TABLE}")  # noqa: S608
        writer.writerows(cursor.fetchall())
    return out.getvalue()


def tables_containing(text: str) -> list[str]:
    """Every table in the database whose rows, as text, contain ``text``."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) "
            "FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE'"
        )
        names = [row[0] for row in cursor.fetchall()]
        for name in names:
            cursor.execute(
                f"SELECT count(*) FROM {name} t WHERE t::text LIKE %s",  # noqa: S608
                [f"%{text}%"],
            )
            row = cursor.fetchone()
            if row and row[0]:
                found.append(name)
    return found


@pytest.fixture
def hub_table() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {HUB_TABLE} (event_id text PRIMARY KEY, site_code text, "
            "surrogate_id text, payload jsonb)"
        )

    def erase(*, site_code: str, surrogate_ids: list[str]) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {HUB_TABLE} WHERE site_code = %s AND surrogate_id = ANY(%s)",  # noqa: S608
                [site_code, surrogate_ids],
            )
            return int(cursor.rowcount)

    register_eraser("test.e2e.flow", erase)
    yield
    unregister_eraser("test.e2e.flow")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {HUB_TABLE}")


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hub_table")
def test_after_erasure_no_table_export_or_replay_yields_the_patient(
    region: Region, make_user: UserFactory, settings: Any, kafka_bootstrap: str, tmp_path: Path
):
    run = uuid.uuid4().hex[:10]
    raw_topic, regional_topic, control_topic = (f"test.{run}.{t}" for t in ("raw", "reg", "ctl"))
    settings.KAFKA_BOOTSTRAP_SERVERS = kafka_bootstrap
    settings.GOVERNANCE_CONTROL_TOPIC = control_topic
    site_code = region.a.site_code

    # The site: per-patient keys, synthetic patients, encrypted raw flow events on Kafka.
    keystore = PatientKeyStore(tmp_path / "keys.sqlite", os.urandom(32))
    site = SyntheticSite(site_code, seed=11, keystore=keystore)
    patients = site.patients(120)
    raw = site.flow_events(patients, 1500)
    produce(kafka_bootstrap, raw_topic, [(site_code.encode(), r.encode()) for r in raw])

    # The site's DE-ID worker: raw topic -> de-identified records on the regional topic.
    raw_in = [
        decode_record(m.value())
        for m in consume_all(kafka_bootstrap, raw_topic, run, expect=len(raw))
    ]
    released = site_deid(raw_in, keystore).released
    produce(
        kafka_bootstrap, regional_topic, [(site_code.encode(), text.encode()) for text in released]
    )

    # The hub consumer, then pick a patient the hub holds rows for.
    hub_ingest(consume_all(kafka_bootstrap, regional_topic, f"{run}-hub", expect=len(released)))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT surrogate_id, count(*) FROM {HUB_TABLE} WHERE surrogate_id <> '' "  # noqa: S608
            "GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        )
        victim, rows_before = cursor.fetchone()
    assert rows_before > 0
    assert victim in hub_export()
    assert tables_containing(victim) == [f"public.{HUB_TABLE}"]

    # The site asks for erasure; the board approves and executes through the API.
    agent = make_user(Role.SITE_AGENT, hospital=region.a)
    board = make_user(Role.GOVERNANCE_BOARD)
    site_api, board_api = APIClient(), APIClient()
    site_api.force_authenticate(agent)
    board_api.force_authenticate(board)
    opened = site_api.post(
        "/api/v1/governance/site/erasure-requests/", {"surrogate_id": victim}, format="json"
    )
    assert opened.status_code == 201, opened.content
    erasure_id = opened.json()["id"]
    for step in ("approve", "execute"):
        response = board_api.post(f"/api/v1/governance/erasure-requests/{erasure_id}/{step}/")
        assert response.status_code == 200, response.content
    erasure = ErasureRequest.objects.get(pk=erasure_id)
    assert erasure.deleted_counts["test.e2e.flow"] == rows_before

    # The site receives the directive on the control topic and crypto-shreds the patient.
    directives = [
        json.loads(m.value())
        for m in consume_all(kafka_bootstrap, control_topic, f"{run}-site", expect=1)
    ]
    (directive,) = [d for d in directives if d["record_type"] == control.ERASURE_TYPE]
    directive = control.verify_directive(directive, keys.signing_key().public_key())
    assert directive["site_codes"] == [site_code]
    assert directive["erasure_id"] == erasure_id
    evidence = keystore.erase(directive["surrogate_id"])
    confirmed = site_api.post(
        f"/api/v1/governance/site/erasure-requests/{erasure_id}/confirm/",
        {"evidence": evidence},
        format="json",
    )
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["status"] == ErasureStatus.CLOSED

    # No table (not even governance's own), no export.
    assert tables_containing(victim) == []
    assert victim not in hub_export()
    assert ErasedSurrogate.objects.filter(surrogate_digest=surrogate_digest(victim)).exists()

    # No replay: the regional topic re-consumed from the start skips the patient...
    hub_ingest(consume_all(kafka_bootstrap, regional_topic, f"{run}-replay", expect=len(released)))
    assert tables_containing(victim) == []
    # ...and the raw topic re-run through the DE-ID transform releases nothing of them: the
    # patient's keys are gone, so their PHI no longer decrypts anywhere.
    replay = site_deid(
        [
            decode_record(m.value())
            for m in consume_all(kafka_bootstrap, raw_topic, f"{run}-r", expect=len(raw))
        ],
        keystore,
    )
    assert replay.erased > 0
    assert not any(victim in text for text in replay.released)
    victim_events: list[Any] = [r for r in raw_in if getattr(r, "surrogate_id", None) == victim]
    with pytest.raises(KeyDestroyed):
        keystore.decrypt_phi(victim, victim_events[0].key_id, victim_events[0].phi_ciphertext)

    AdminClient({"bootstrap.servers": kafka_bootstrap}).delete_topics(
        [raw_topic, regional_topic, control_topic]
    )
