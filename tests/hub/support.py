"""Factories and helpers shared by the hub's tests: registry rows, signing keys, envelopes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import factory
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid.contracts import (
    Audience,
    CensusRecord,
    FlowEventType,
    FlowRecord,
    HeartbeatRecord,
    UnitType,
    sign_envelope,
)
from deid.signing import generate_signing_key, public_key_b64
from hub.registry import services
from hub.registry.models import Hospital, Region, Unit


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"region-{n}")
    name = factory.Sequence(lambda n: f"Test region {n}")


class HospitalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Hospital

    region = factory.SubFactory(RegionFactory)
    site_code = factory.Sequence(lambda n: f"T{uuid.uuid4().hex[:6]}{n}")
    name = factory.Sequence(lambda n: f"Test Hospital {n} (synthetic)")
    latitude = 41.1
    longitude = -73.8


class UnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Unit

    hospital = factory.SubFactory(HospitalFactory)
    code = factory.Sequence(lambda n: f"U{n}")
    name = factory.LazyAttribute(lambda o: f"Unit {o.code}")
    unit_type = "medical_surgical"
    licensed_beds = 30
    staffed_beds = 28
    surge_beds = 2


def hospital_with_units(**kwargs: Any) -> Hospital:
    """A hospital with an adult ICU (ICU, 12 beds), a ward (W1, 30 beds) and an ED (ED, 20)."""
    hospital = cast(Hospital, HospitalFactory(**kwargs))
    UnitFactory(hospital=hospital, code="ICU", unit_type="adult_icu", staffed_beds=12)
    UnitFactory(hospital=hospital, code="W1", unit_type="medical_surgical", staffed_beds=30)
    UnitFactory(hospital=hospital, code="ED", unit_type="emergency", staffed_beds=20)
    return hospital


def enrolled_site(**kwargs: Any) -> tuple[Hospital, Ed25519PrivateKey, str]:
    """A hospital with units and an enrolled DE-ID worker: (hospital, signing key, credential)."""
    hospital = hospital_with_units(**kwargs)
    key = generate_signing_key()
    credential = services.agent_register(
        hospital=hospital, name="deid-worker", public_key=public_key_b64(key)
    )
    return hospital, key, credential.credential


def minute(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def census(
    site_code: str,
    unit_code: str = "W1",
    *,
    at: datetime | None = None,
    unit_type: UnitType = UnitType.MEDICAL_SURGICAL,
    **counts: Any,
) -> CensusRecord:
    at = at or datetime.now(UTC)
    values = {"staffed_beds": 30, "occupied_beds": 25, "available_beds": 5, **counts}
    return CensusRecord(
        site_code=site_code,
        policy_version=1,
        audience=Audience.REGIONAL_OPERATIONS,
        source_event_id=str(uuid.uuid4()),
        unit_code=unit_code,
        unit_type=unit_type,
        as_of=minute(at),
        produced_at=at,
        source="hl7-adt",
        **values,
    )


def flow(site_code: str, *, surrogate: str | None = None, at: datetime | None = None) -> FlowRecord:
    at = at or datetime.now(UTC)
    return FlowRecord(
        site_code=site_code,
        policy_version=1,
        audience=Audience.REGIONAL_OPERATIONS,
        source_event_id=str(uuid.uuid4()),
        event_type=FlowEventType.ADMIT,
        occurred=at.strftime("%Y-%m-%dT%HZ"),
        unit_code="W1",
        unit_type=UnitType.MEDICAL_SURGICAL,
        surrogate_id=surrogate,
        age_band="45-64",
        produced_at=at,
    )


def heartbeat(site_code: str, *, at: datetime | None = None) -> HeartbeatRecord:
    return HeartbeatRecord(
        site_code=site_code,
        policy_version=1,
        component="deid_worker",
        agent_version="test",
        produced_at=at or datetime.now(UTC),
    )


def seal(records: list[Any], key: Ed25519PrivateKey, site_code: str) -> bytes:
    return sign_envelope(records, key, site_code=site_code, policy_version=1)
