"""Sharing policies: draft → review → quorum → published (signed), preview, diff, control topic."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer
from django.utils import timezone
from rest_framework.test import APIClient

from deid import signing
from deid.policy import PolicyError, decode_policy_message, load_policy
from governance import keys, policies, services
from governance.models import BoardQuorum, PolicyStatus, SharingPolicy
from governance.roles import Role
from tests.governance.conftest import Region, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("governance_keys")]


def approved(region: Region, make_user: UserFactory, quorum: int = 2) -> SharingPolicy:
    author = make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=author, hospital_id=region.a.pk)
    services.policy_submit(actor=author, policy=policy)
    for _ in range(quorum):
        policy = services.policy_decide(
            actor=make_user(Role.GOVERNANCE_BOARD), policy=policy, approve=True
        )
    return policy


@pytest.mark.django_db
def test_a_policy_needs_the_quorum_and_not_its_author(region: Region, make_user: UserFactory):
    author, member = make_user(Role.GOVERNANCE_BOARD), make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=author, hospital_id=region.a.pk)
    assert policy.version == 1
    assert policy.status == PolicyStatus.DRAFT
    with pytest.raises(services.Conflict):
        services.policy_decide(actor=member, policy=policy, approve=True)
    services.policy_submit(actor=author, policy=policy)
    with pytest.raises(services.ServiceError, match="author"):
        services.policy_decide(actor=author, policy=policy, approve=True)
    policy = services.policy_decide(actor=member, policy=policy, approve=True)
    assert policy.status == PolicyStatus.REVIEW  # 1 of 2
    with pytest.raises(services.Conflict, match="already"):
        services.policy_decide(actor=member, policy=policy, approve=True)
    policy = services.policy_decide(
        actor=make_user(Role.GOVERNANCE_BOARD), policy=policy, approve=True
    )
    assert policy.status == PolicyStatus.APPROVED


@pytest.mark.django_db
def test_the_region_sets_the_quorum(region: Region, make_user: UserFactory):
    BoardQuorum.objects.create(region_id=region.a.region_id, quorum=3)
    author = make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=author, hospital_id=region.a.pk)
    services.policy_submit(actor=author, policy=policy)
    for _ in range(2):
        policy = services.policy_decide(
            actor=make_user(Role.GOVERNANCE_BOARD), policy=policy, approve=True
        )
    assert policy.status == PolicyStatus.REVIEW
    policy = services.policy_decide(
        actor=make_user(Role.GOVERNANCE_BOARD), policy=policy, approve=True
    )
    assert policy.status == PolicyStatus.APPROVED


@pytest.mark.django_db
def test_one_rejection_sends_the_policy_back(region: Region, make_user: UserFactory):
    author = make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=author, hospital_id=region.a.pk)
    services.policy_submit(actor=author, policy=policy)
    policy = services.policy_decide(
        actor=make_user(Role.GOVERNANCE_BOARD),
        policy=policy,
        approve=False,
        comment="too fine for peers",
    )
    assert policy.status == PolicyStatus.REJECTED


@pytest.mark.django_db
def test_an_invalid_document_is_refused(region: Region, make_user: UserFactory):
    document = policies.template()
    document["records"]["flow"]["public_benchmarks"]["fields"].append("mrn")
    with pytest.raises(services.ServiceError, match="policy document"):
        services.policy_create_draft(
            actor=make_user(Role.GOVERNANCE_BOARD), hospital_id=region.a.pk, document=document
        )


@pytest.mark.django_db
def test_publishing_signs_the_policy_and_an_altered_copy_is_rejected(
    region: Region, make_user: UserFactory
):
    policy = approved(region, make_user)
    policy = services.policy_publish(actor=make_user(Role.GOVERNANCE_BOARD), policy=policy)
    assert policy.status == PolicyStatus.PUBLISHED
    signed = json.loads(bytes(policy.signed or b""))
    public = keys.signing_key().public_key()
    loaded = load_policy(signed, public)
    assert loaded.version == policy.version
    assert loaded.applies_to(region.a.site_code)
    assert not loaded.applies_to(region.b.site_code)
    tampered = json.loads(json.dumps(signed))
    tampered["policy"]["records"]["census"]["public_benchmarks"]["small_cell_threshold"] = 0
    with pytest.raises(PolicyError, match="signature"):
        load_policy(tampered, public)
    other_key = signing.generate_signing_key().public_key()
    with pytest.raises(PolicyError, match="not trusted"):
        load_policy(signed, other_key)


@pytest.mark.django_db
def test_a_later_version_supersedes_and_a_future_date_waits(region: Region, make_user: UserFactory):
    first = services.policy_publish(actor=None, policy=approved(region, make_user))
    second = approved(region, make_user)
    later = timezone.now() + timedelta(days=3)
    second = services.policy_publish(actor=None, policy=second, effective_at=later)
    assert second.status == PolicyStatus.APPROVED
    assert services.policies_publish_due() == []
    (published,) = services.policies_publish_due(now=later + timedelta(minutes=1))
    assert published.pk == second.pk
    first.refresh_from_db()
    assert first.status == PolicyStatus.SUPERSEDED


def test_diff_names_what_changed() -> None:
    before = policies.template()
    after = json.loads(json.dumps(before))
    after["records"]["census"]["peer_hospitals"]["small_cell_threshold"] = 5
    after["records"]["census"]["peer_hospitals"]["fields"].remove("ed_boarding")
    changes = {(c.path, c.kind) for c in policies.diff(before, after)}
    assert ("records.census.peer_hospitals.small_cell_threshold", "changed") in changes
    assert ("records.census.peer_hospitals.fields[ed_boarding]", "removed") in changes


def test_preview_runs_the_deid_transform_on_synthetic_data() -> None:
    result = policies.preview(
        policies.template(), site_code="SITE9", version=1, patients=60, events=300
    )
    assert result.records_in > 300
    assert result.released["census/regional_operations"] > 0
    flow_sample = result.samples["flow/public_benchmarks"][0]
    assert flow_sample.get("surrogate_id") is None  # the public never gets surrogates


@pytest.mark.django_db
def test_board_works_through_the_api_and_sees_a_diff(region: Region, make_user: UserFactory):
    client = APIClient()
    author = make_user(Role.GOVERNANCE_BOARD)
    client.force_authenticate(author)
    created = client.post(
        "/api/v1/governance/policies/", {"hospital_id": region.a.pk}, format="json"
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    document = created.json()["document"]
    document["records"]["census"]["peer_hospitals"]["small_cell_threshold"] = 11
    edit = client.patch(f"/api/v1/governance/policies/{pk}/", {"document": document}, format="json")
    assert edit.status_code == 200, edit.content
    assert client.post(f"/api/v1/governance/policies/{pk}/submit/").status_code == 200
    assert client.post(f"/api/v1/governance/policies/{pk}/approve/").status_code == 400
    preview = client.post(f"/api/v1/governance/policies/{pk}/preview/")
    assert preview.status_code == 200
    assert preview.json()["released"]
    services.policy_create_draft(actor=author, hospital_id=region.a.pk)
    latest = SharingPolicy.objects.filter(hospital_id=region.a.pk).order_by("-version").first()
    assert latest is not None
    diff = client.get(f"/api/v1/governance/policies/{latest.pk}/diff/")
    assert diff.json()["from_version"] == 1
    assert diff.json()["changes"] == []


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_publishing_sends_the_signed_policy_on_the_control_topic(
    region: Region,
    make_user: UserFactory,
    settings: Any,
    unique_topic: str,
    kafka_bootstrap: str,
):
    settings.GOVERNANCE_CONTROL_TOPIC = unique_topic
    settings.KAFKA_BOOTSTRAP_SERVERS = kafka_bootstrap
    policy = services.policy_publish(actor=None, policy=approved(region, make_user))
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique_topic,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([unique_topic])
    try:
        message = None
        for _ in range(30):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                break
        assert message is not None
        assert message.error() is None
        assert message.key() == region.a.site_code.encode()
        public = keys.signing_key().public_key()
        value = message.value()
        assert value is not None
        received = decode_policy_message(value, region.a.site_code, public)
        assert received is not None
        assert received.version == policy.version
        assert decode_policy_message(value, region.b.site_code, public) is None
    finally:
        consumer.close()
