"""The worker's msgspec fast path decodes exactly what the reference decoder decodes, and
leaves every refusal (and its wording) to the reference decoder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from deid.contracts import DecodeError
from deid.contracts._base import decode_record
from deid.contracts.fastdecode import fast_flow_event
from deid.contracts.raw import RawFlowEvent
from deid.contracts.vocabulary import ArrivalMode, FlowEventType, PatientClass, UnitType
from deid.worker import decode_raw

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def flow_dict(**overrides: Any) -> dict[str, Any]:
    event = RawFlowEvent(
        site_code="NGH",
        event_type=FlowEventType.ADMIT,
        occurred_at=NOW,
        decision_to_admit_at=datetime(2026, 3, 1, 9, 5, 30, 250000, tzinfo=UTC),
        unit_code="4W",
        unit_type=UnitType.ADULT_ICU,
        patient_class=PatientClass.INPATIENT,
        acuity=2,
        arrival_mode=ArrivalMode.AMBULANCE,
        surrogate_id="sg-abc",
        key_id="dk-1",
        phi_ciphertext="AAAA",
        source="hl7-adt",
    )
    data = event.to_dict()
    data.update(overrides)
    return data


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"occurred_at": "2026-03-01T14:30:00+02:00"},  # converted to UTC as the reference does
        {"occurred_at": "2026-03-01T12:30:00+00:00", "decision_to_admit_at": None},
        {"unknown_future_field": [1, 2, 3]},
        {"acuity": None, "unit_type": None, "merged_surrogate_id": "sg-old"},
    ],
)
def test_fast_path_equals_the_reference_decoder(overrides: dict[str, Any]) -> None:
    data = encode(flow_dict(**overrides))
    fast = fast_flow_event(data)
    assert fast is not None
    reference = decode_record(data)
    assert fast == reference
    assert fast.occurred_at.tzinfo is UTC
    assert fast.encode() == reference.encode()
    assert decode_raw(data) == reference


@pytest.mark.parametrize(
    ("overrides", "field_name"),
    [
        ({"occurred_at": "2026-03-01T12:30:00"}, "occurred_at"),  # naive
        ({"produced_at": "2026-03-01T12:30:00"}, "produced_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"acuity": True}, "acuity"),
        ({"acuity": 2.0}, "acuity"),
        ({"acuity": 9}, "acuity"),
        ({"event_type": "teleport"}, "event_type"),
        ({"event_id": "NOT-A-UUID"}, "event_id"),
        ({"site_code": "no spaces allowed"}, "site_code"),
        ({"key_id": ""}, "key_id"),
        ({"schema_version": 99}, "schema_version"),
    ],
)
def test_refusals_go_to_the_reference_decoder(overrides: dict[str, Any], field_name: str) -> None:
    data = encode(flow_dict(**overrides))
    assert fast_flow_event(data) is None
    with pytest.raises(DecodeError, match=field_name):
        decode_raw(data)


def test_missing_required_field_is_named_by_the_reference_decoder() -> None:
    data = flow_dict()
    del data["surrogate_id"]
    assert fast_flow_event(encode(data)) is None
    with pytest.raises(DecodeError, match="surrogate_id: required field missing"):
        decode_raw(encode(data))


def test_a_wrong_value_is_never_echoed() -> None:
    data = encode(flow_dict(acuity="John Smith 123-45-6789"))
    with pytest.raises(DecodeError) as info:
        decode_raw(data)
    assert "Smith" not in str(info.value)
    assert "6789" not in str(info.value)


def test_other_record_types_and_versions_are_not_taken_by_the_fast_path() -> None:
    assert fast_flow_event(encode(flow_dict(record_type="raw.heartbeat"))) is None
    assert fast_flow_event(encode(flow_dict(schema_version=0))) is None
    assert fast_flow_event(b"\xff not json") is None
    assert fast_flow_event(b"[1, 2]") is None


@pytest.mark.parametrize("field_name", ["occurred_at", "decision_to_admit_at", "produced_at"])
def test_a_timestamp_outside_the_utc_range_is_a_dead_letter_not_a_crash(field_name: str) -> None:
    # 00:30 on 1 January of year 1 at +01:00 is in year 0 in UTC, which datetime cannot hold.
    data = encode(flow_dict(**{field_name: "0001-01-01T00:30:00+01:00"}))
    assert fast_flow_event(data) is None
    with pytest.raises(DecodeError, match=f"^{field_name}: timestamp out of range in UTC$"):
        decode_raw(data)
