"""Wire contracts: round trips, old versions, refusals, envelopes, schemas in docs/."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest

from deid.contracts import (
    CONTROL_TOPIC,
    DEADLETTER_TOPIC,
    REGIONAL_TOPIC,
    Audience,
    CensusRecord,
    DecodeError,
    EnvelopeError,
    FeedStatus,
    FlowEventType,
    FlowRecord,
    ForecastPoint,
    HeartbeatRecord,
    RawCensusSnapshot,
    RawFlowEvent,
    RawHeartbeat,
    UnitType,
    decode_record,
    held_topic,
    open_envelope,
    raw_topic,
    sign_envelope,
    verify_envelope,
)
from deid.contracts._base import Record
from deid.contracts.vocabulary import CAPACITY_GROUP, EDXL_HAVE_BED_TYPE
from deid.schemas import all_schemas, drift
from deid.signing import generate_signing_key, public_key_b64

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def census(**overrides: Any) -> RawCensusSnapshot:
    values: dict[str, Any] = {
        "site_code": "NGH",
        "unit_code": "4W",
        "unit_type": UnitType.MEDICAL_SURGICAL,
        "as_of": NOW,
        "licensed_beds": 30,
        "staffed_beds": 28,
        "occupied_beds": 25,
        "available_beds": 3,
        "boarding_minutes": (30, 240),
        "forecast": (ForecastPoint(horizon_hours=4, p10=1.0, p50=2.5, p90=4.0),),
    }
    values.update(overrides)
    return RawCensusSnapshot(**values)


def flow(**overrides: Any) -> RawFlowEvent:
    values: dict[str, Any] = {
        "site_code": "NGH",
        "event_type": FlowEventType.ADMIT,
        "occurred_at": NOW,
        "unit_type": UnitType.ADULT_ICU,
        "surrogate_id": "sg-abc",
        "key_id": "dk-1",
        "phi_ciphertext": "AAAA",
    }
    values.update(overrides)
    return RawFlowEvent(**values)


def test_topic_names_are_fixed() -> None:
    assert raw_topic("NGH") == "site.NGH.raw.v1"
    assert held_topic("NGH") == "site.NGH.held.v1"
    assert REGIONAL_TOPIC == "regional.deid.v1"
    assert DEADLETTER_TOPIC == "regional.deadletter.v1"
    assert CONTROL_TOPIC == "regional.control.v1"
    with pytest.raises(ValueError, match="site code"):
        raw_topic("a.b")


def test_every_unit_type_maps_to_have_and_capacity_group() -> None:
    assert set(EDXL_HAVE_BED_TYPE) == set(UnitType)
    assert set(CAPACITY_GROUP) == set(UnitType)


@pytest.mark.parametrize(
    "record",
    [
        census(),
        flow(acuity=2, decision_to_admit_at=NOW),
        RawHeartbeat(
            site_code="NGH",
            agent_version="1.2",
            feeds=(FeedStatus(name="adt", source="hl7-adt", last_message_at=NOW),),
        ),
        HeartbeatRecord(site_code="NGH", agent_version="1", counters={"processed": 3}),
    ],
    ids=lambda r: r.record_type,
)
def test_records_round_trip_through_bytes(record: Record) -> None:
    data = record.encode()
    assert decode_record(data) == record
    assert type(record).decode(data) == record
    wire = json.loads(data)
    assert wire["record_type"] == record.record_type
    assert wire["schema_version"] == record.schema_version
    assert wire["produced_at"].endswith("Z")


def test_event_ids_are_unique_uuids() -> None:
    ids = {census().event_id for _ in range(1000)}
    assert len(ids) == 1000


@pytest.mark.parametrize(
    ("mutate", "field_name"),
    [
        (lambda d: d.pop("unit_code"), "unit_code"),
        (lambda d: d.update(occupied_beds="many"), "occupied_beds"),
        (lambda d: d.update(occupied_beds=True), "occupied_beds"),
        (lambda d: d.update(occupied_beds=-1), "occupied_beds"),
        (lambda d: d.update(unit_type="spaceship"), "unit_type"),
        (lambda d: d.update(as_of="2026-03-01T12:00:00"), "as_of"),
        (lambda d: d.update(event_id="not-a-uuid"), "event_id"),
        (lambda d: d.update(schema_version=99), "schema_version"),
        (lambda d: d.update(record_type="raw.other"), "record_type"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(mutate: Any, field_name: str) -> None:
    data = census().to_dict()
    mutate(data)
    with pytest.raises(DecodeError, match=field_name):
        RawCensusSnapshot.from_dict(data)


def test_decode_errors_never_echo_values() -> None:
    data = flow().to_dict()
    data["acuity"] = "John Smith 123-45-6789"
    with pytest.raises(DecodeError) as info:
        decode_record(json.dumps(data))
    assert "Smith" not in str(info.value)
    assert "6789" not in str(info.value)


def test_garbage_bytes_are_a_decode_error() -> None:
    for garbage in (b"\xff\xfe", b"[1,2]", b"{}", b'{"record_type": 5}'):
        with pytest.raises(DecodeError):
            decode_record(garbage)


def test_unknown_fields_are_ignored() -> None:
    data = census().to_dict()
    data["future_field"] = {"anything": 1}
    assert RawCensusSnapshot.from_dict(data) == census(
        event_id=data["event_id"], produced_at=datetime.fromisoformat(data["produced_at"])
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _CensusV2(RawCensusSnapshot):
    """A future version renames `blocked_beds` to `out_of_service_beds`."""

    record_type = "raw.census_snapshot"
    schema_version: ClassVar[int] = 2
    upgrades: ClassVar[Any] = {
        1: lambda d: {**d, "out_of_service_beds": d.pop("blocked_beds", 0)},
    }
    out_of_service_beds: int = field(default=0)


def test_an_older_schema_version_still_decodes() -> None:
    v1 = census(blocked_beds=2).to_dict()
    assert v1["schema_version"] == 1
    upgraded = _CensusV2.from_dict(v1)
    assert upgraded.out_of_service_beds == 2
    assert upgraded.to_dict()["schema_version"] == 2
    # A payload missing optional fields added later (all additions have defaults) decodes too.
    minimal = {k: v for k, v in v1.items() if k not in {"forecast", "stale", "source"}}
    assert RawCensusSnapshot.from_dict(minimal).forecast == ()


def regional_records() -> list[CensusRecord | FlowRecord | HeartbeatRecord]:
    return [
        CensusRecord(
            site_code="NGH",
            policy_version=3,
            audience=Audience.REGIONAL_OPERATIONS,
            source_event_id=census().event_id,
            unit_type=UnitType.ADULT_ICU,
            occupied_beds=4,
            as_of="2026-03-01T12:30Z",
        ),
        FlowRecord(
            site_code="NGH",
            policy_version=3,
            audience=Audience.PEER_HOSPITALS,
            source_event_id=flow().event_id,
            event_type=FlowEventType.ADMIT,
            age_band="90+",
            zip3="000",
            occurred="2026-03-01",
        ),
        HeartbeatRecord(site_code="NGH", agent_version="1.0", counters={"processed": 1}),
    ]


def test_envelope_round_trip_and_metadata() -> None:
    key = generate_signing_key()
    records = regional_records()
    data = sign_envelope(records, key, site_code="NGH", policy_version=3)
    assert verify_envelope(data, key.public_key()) == records
    assert verify_envelope(data, public_key_b64(key), site_code="NGH") == records
    opened = open_envelope(
        data, {"old": generate_signing_key().public_key(), "new": key.public_key()}
    )
    assert opened.site_code == "NGH"
    assert opened.policy_version == 3


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e["records"][0].update(occupied_beds=5),
        lambda e: e["records"].pop(),
        lambda e: e.update(policy_version=4),
        lambda e: e.update(site_code="OTH"),
        lambda e: e.update(batch_id="x"),
        lambda e: e.update(signature=e["signature"][::-1]),
        lambda e: e["record_hashes"].reverse(),
        lambda e: e.pop("signature"),
    ],
)
def test_a_tampered_envelope_is_rejected(tamper: Any) -> None:
    key = generate_signing_key()
    env = json.loads(sign_envelope(regional_records(), key, site_code="NGH", policy_version=3))
    tamper(env)
    with pytest.raises(EnvelopeError):
        verify_envelope(json.dumps(env).encode(), key.public_key())


def test_envelope_from_another_key_or_site_is_rejected() -> None:
    key = generate_signing_key()
    data = sign_envelope(regional_records(), key, site_code="NGH", policy_version=3)
    with pytest.raises(EnvelopeError, match="not registered"):
        verify_envelope(data, generate_signing_key().public_key())
    with pytest.raises(EnvelopeError, match="another site"):
        verify_envelope(data, key.public_key(), site_code="OTH")
    with pytest.raises(EnvelopeError):
        verify_envelope(b"not json", key.public_key())


def test_raw_records_cannot_travel_in_envelopes() -> None:
    with pytest.raises(TypeError):
        sign_envelope([census()], generate_signing_key(), site_code="NGH", policy_version=1)


def test_schemas_in_docs_match_the_code() -> None:
    stale = drift(ROOT / "docs" / "schemas")
    assert stale == [], f"run `python -m deid schemas docs/schemas`: {stale}"


def test_generated_schemas_accept_real_records() -> None:
    schemas = all_schemas()
    for record in [census(), flow(), *regional_records()]:
        schema = schemas[f"{record.record_type}.schema.json"]
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(json.loads(record.encode()), schema)
    bad = census().to_dict()
    bad["unit_type"] = "spaceship"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schemas["raw.census_snapshot.schema.json"])


def test_generated_builders_and_encoders_match_the_field_specs() -> None:
    """The generated per-class builder and encoder do what the field-spec loop does: same
    instance as cls(**decode_fields(...)), same dict as encoding field by field."""
    from deid.contracts._codec import build, decode_fields, field_specs
    from deid.testing.synthetic import SyntheticSite

    site = SyntheticSite("NGH", seed=3)
    patients = site.patients(5)
    samples: list[Any] = [
        *site.census(),
        site.heartbeat(),
        *site.plain_flow_events(patients, 20),
        census(),
        census(ed_waiting=None, forecast=()),
    ]
    for record in samples:
        cls = type(record)
        data = json.loads(record.encode())
        expected = {"record_type": cls.record_type, "schema_version": cls.schema_version}
        for spec in field_specs(cls):
            value = getattr(record, spec.name)
            expected[spec.name] = value if spec.encode is None else spec.encode(value)
        assert record.to_dict() == expected
        assert build(cls, data, "") == cls(**decode_fields(cls, data, ""))
        assert build(cls, data, "") == record
    # Missing optional fields take their defaults (or factories), as __init__ would.
    minimal = {"site_code": "NGH", "agent_version": "1"}
    built = build(RawHeartbeat, minimal, "")
    assert built.feeds == ()
    assert built.outbox_backlog == 0
    assert built.event_id != build(RawHeartbeat, minimal, "").event_id  # a fresh default id
    # Refusals keep naming the field, never the value.
    with pytest.raises(DecodeError, match="outbox_backlog: expected an integer") as exc:
        build(RawHeartbeat, {**minimal, "outbox_backlog": "SECRET-123"}, "")
    assert "SECRET" not in str(exc.value)
