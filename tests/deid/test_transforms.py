"""The pure transforms: generalisation, suppression, k-anonymity, verification, windows."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from deid.contracts import (
    Audience,
    CensusRecord,
    DateGranularity,
    FlowEventType,
    FlowRecord,
    HeartbeatRecord,
    PatientPHI,
    PlainFlowEvent,
    RawCensusSnapshot,
    RawRecord,
    Sex,
    UnitType,
    canonical_json,
    record_from_dict,
)
from deid.keystore import KeyDestroyed, PatientKeyStore
from deid.policy import Policy, parse_policy
from deid.testing.synthetic import SyntheticSite
from deid.transforms import (
    demographics,
    derived_event_id,
    enforce_k,
    generalise_timestamp,
    scan_text,
    suppress_cells,
    transform_census,
    transform_flow,
    transform_window,
    verify_slice,
)
from deid.transforms.census import relation_leaks
from deid.zip3 import RESTRICTED_ZIP3, zip3

WHEN = datetime(2025, 11, 23, 19, 10, 42, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("granularity", "expected"),
    [
        (DateGranularity.MINUTE, "2025-11-23T19:10Z"),
        (DateGranularity.HOUR, "2025-11-23T19Z"),
        (DateGranularity.DAY, "2025-11-23"),
        (DateGranularity.WEEK, "2025-W47"),
        (DateGranularity.MONTH, "2025-11"),
        (DateGranularity.YEAR, "2025"),
    ],
)
def test_timestamps_generalise(granularity: DateGranularity, expected: str) -> None:
    assert generalise_timestamp(WHEN, granularity) == expected


def test_zip3_rules() -> None:
    assert zip3("02139") == "021"
    assert zip3("02139-4307") == "021"
    assert zip3(" 021394307 ") == "021"
    for restricted in RESTRICTED_ZIP3:
        assert zip3(restricted + "42") == "000"
    assert len(RESTRICTED_ZIP3) == 17
    for bad in (None, "", "ABCDE", "1234", "123456"):
        assert zip3(bad) is None


def test_small_cells_and_complementary_suppression() -> None:
    # occupied 4 is a small cell; staffed = occupied + available + blocked would give it back,
    # so the smallest positive other part (blocked 2... also small) and more are withheld.
    cells = {"staffed_beds": 30, "occupied_beds": 4, "available_beds": 24, "blocked_beds": 2}
    withheld = suppress_cells(cells, 10)
    assert {"occupied_beds", "blocked_beds"} <= withheld
    record = {**cells, **dict.fromkeys(withheld), "suppressed": sorted(withheld)}
    assert relation_leaks(record) == []
    # One small cell alone gets a complement.
    cells = {"staffed_beds": 30, "occupied_beds": 15, "available_beds": 0, "blocked_beds": 15}
    cells["occupied_beds"], cells["blocked_beds"] = 25, 5
    withheld = suppress_cells(cells, 10)
    assert withheld == {"blocked_beds", "occupied_beds"}
    # Zero is shown; nothing to protect.
    assert suppress_cells({"staffed_beds": 20, "occupied_beds": 0}, 10) == set()
    assert suppress_cells({"occupied_beds": 3}, 0) == set()


def test_relation_leak_is_detected() -> None:
    leaky = {
        "staffed_beds": 30,
        "occupied_beds": None,
        "available_beds": 24,
        "blocked_beds": 2,
        "suppressed": ["occupied_beds"],
    }
    assert relation_leaks(leaky)


def _census(**kw: Any) -> RawCensusSnapshot:
    values: dict[str, Any] = {
        "site_code": "NGH",
        "unit_code": "ICU1",
        "unit_type": UnitType.ADULT_ICU,
        "as_of": WHEN,
        "licensed_beds": 12,
        "staffed_beds": 12,
        "occupied_beds": 9,
        "available_beds": 2,
        "blocked_beds": 1,
        "ed_boarding": 3,
        "boarding_minutes": (30, 400, 90),
        "offload_minutes": (20,),
    }
    values.update(kw)
    return RawCensusSnapshot(**values)


def test_regional_operations_get_exact_capacity(policy: Policy) -> None:
    rule = policy.rules_for("census")[Audience.REGIONAL_OPERATIONS]
    out = transform_census(
        _census(), rule, audience=Audience.REGIONAL_OPERATIONS, policy_version=1, produced_at="x"
    )
    assert (out["occupied_beds"], out["available_beds"], out["blocked_beds"]) == (9, 2, 1)
    assert out["as_of"] == "2025-11-23T19:10Z"
    assert out["boarding_p50_minutes"] == 90
    assert out["suppressed"] == []


def test_peer_census_is_thresholded(policy: Policy) -> None:
    rule = policy.rules_for("census")[Audience.PEER_HOSPITALS]
    out = transform_census(
        _census(), rule, audience=Audience.PEER_HOSPITALS, policy_version=1, produced_at="x"
    )
    assert out["available_beds"] is None
    assert out["blocked_beds"] is None
    assert out["unit_code"] is None  # not in the peer fields
    assert out["as_of"] == "2025-11-23T19Z"
    assert verify_slice("census", [out], rule, policy_version=1, audience="peer_hospitals") == []


def _plain(site: SyntheticSite, phi: PatientPHI, when: datetime = WHEN) -> PlainFlowEvent:
    return PlainFlowEvent(
        site_code=site.site_code,
        event_type=FlowEventType.ADMIT,
        occurred_at=when,
        unit_code="4W",
        unit_type=UnitType.MEDICAL_SURGICAL,
        surrogate_id="sg-test",
        phi=phi,
        decision_to_admit_at=when - timedelta(minutes=95),
    )


def test_flow_record_fields(policy: Policy) -> None:
    site = SyntheticSite("NGH", seed=1)
    phi = PatientPHI(
        mrn="MR1", name="A B", birth_date=date(1930, 1, 1), sex=Sex.FEMALE, zip="03601"
    )
    event = _plain(site, phi)
    rule = policy.rules_for("flow")[Audience.REGIONAL_OPERATIONS]
    out = transform_flow(
        event,
        demographics(phi),
        rule,
        audience=Audience.REGIONAL_OPERATIONS,
        policy_version=1,
        produced_at="2026-01-01T00:00:00Z",
        window_id="w",
    )
    assert out["age_band"] == "90+"
    assert out["zip3"] == "000"
    assert out["occurred"] == "2025-11-23"
    assert out["wait_minutes"] == 95
    assert out["surrogate_id"] == "sg-test"
    assert out["event_id"] == derived_event_id(event.event_id, "regional_operations", 1)
    # The dict is exactly FlowRecord's wire form.
    assert record_from_dict(out).to_dict() == record_from_dict(out).to_dict()
    assert isinstance(record_from_dict(out), FlowRecord)
    public = policy.rules_for("flow")[Audience.PUBLIC_BENCHMARKS]
    out = transform_flow(
        event,
        demographics(phi),
        public,
        audience=Audience.PUBLIC_BENCHMARKS,
        policy_version=1,
        produced_at="2026-01-01T00:00:00Z",
        window_id="w",
    )
    assert out["occurred"] == "2025"
    assert out["surrogate_id"] is None
    assert out["zip3"] is None


def test_a_newborns_admission_day_is_not_released(policy: Policy) -> None:
    phi = PatientPHI(mrn="MR2", birth_date=WHEN.date(), sex=Sex.MALE)
    rule = policy.rules_for("flow")[Audience.REGIONAL_OPERATIONS]
    out = transform_flow(
        _plain(SyntheticSite("NGH"), phi),
        demographics(phi),
        rule,
        audience=Audience.REGIONAL_OPERATIONS,
        policy_version=1,
        produced_at="x",
        window_id="w",
    )
    assert out["occurred"] == "2025-11"
    assert "occurred" in out["generalised"]


def _flows(policy: Policy, n: int, seed: int = 3) -> tuple[list[dict[str, Any]], list[datetime]]:
    site = SyntheticSite("NGH", seed=seed)
    patients = site.patients(n)
    events = site.plain_flow_events(patients, n)
    rule = policy.rules_for("flow")[Audience.REGIONAL_OPERATIONS]
    return [
        transform_flow(
            e,
            demographics(e.phi),
            rule,
            audience=Audience.REGIONAL_OPERATIONS,
            policy_version=1,
            produced_at="x",
            window_id="w",
        )
        for e in events
    ], [e.occurred_at for e in events]


def test_k_anonymity_generalises_then_suppresses(policy: Policy) -> None:
    rule = policy.rules_for("flow")[Audience.REGIONAL_OPERATIONS]
    records, times = _flows(policy, 400)
    result = enforce_k(records, times, rule)
    kept = [records[i] for i in result.kept]
    assert len(kept) + len(result.suppressed) == 400
    assert len(result.suppressed) <= rule.max_suppression * 400
    assert verify_slice("flow", kept, rule, policy_version=1, audience="regional_operations") == []
    # Random ZIPs all over the country cannot stay: ZIP3 is generalised away.
    assert result.levels["zip3"] > 0
    assert all(r["zip3"] is None and "zip3" in r["generalised"] for r in kept)


def test_l_diversity(policy_doc: dict[str, Any]) -> None:
    ops = policy_doc["records"]["flow"]["regional_operations"]
    ops["l_diversity"] = {"attribute": "acuity", "l": 2}
    policy = parse_policy(policy_doc)
    rule = policy.rules_for("flow")[Audience.REGIONAL_OPERATIONS]
    records, times = _flows(policy, 300)
    for r in records:
        r["acuity"] = 3 if r["sex"] == "female" else r["acuity"]
    result = enforce_k(records, times, rule)
    kept = [records[i] for i in result.kept]
    assert verify_slice("flow", kept, rule, policy_version=1, audience="regional_operations") == []


def test_verify_catches_planted_problems(policy: Policy) -> None:
    rule = policy.rules_for("flow")[Audience.PEER_HOSPITALS]
    records, _ = _flows(policy, 50)
    for r in records:
        r["audience"] = "peer_hospitals"
    bad = copy.deepcopy(records)
    bad[0]["surrogate_id"] = "sg-x"  # not a peer field
    bad[1]["age_band"] = "85-94"  # crosses the 90+ top-code
    bad[2]["zip3"] = "036"  # restricted area
    bad[3]["occurred"] = "2025-11-23T19Z"  # finer than the day
    problems = verify_slice("flow", bad, rule, policy_version=1, audience="peer_hospitals")
    text = " ".join(problems)
    for expected in ("surrogate_id", "age_band", "zip3", "occurred", "smaller than k"):
        assert expected in text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('{"x":"123-45-6789"}', "ssn"),
        ('{"x":"a.b@example.org"}', "email"),
        ('{"x":"(617) 555-0142"}', "phone"),
        ('{"x":"617-555-0142"}', "phone"),
        ('{"x":"4821 Maple Ave"}', "street address"),
    ],
)
def test_identifier_scan(text: str, kind: str) -> None:
    assert kind in scan_text(text)


def test_identifier_scan_ignores_ids_and_dates() -> None:
    clean = canonical_json(
        {
            "event_id": str(uuid.uuid4()),
            "d": "2025-11-23",
            "t": "2025-11-23T19:10:00.123456Z",
            "n": 1234567890,
            "h": "0123456789abcdef" * 4,
        }
    )
    for _ in range(200):
        clean += canonical_json({"id": "12345678-1234-5123-9123-123456789012"})
    assert scan_text(clean) == []


def test_window_fails_closed_without_policy(synthetic: SyntheticSite) -> None:
    patients = synthetic.patients(5)
    records: list[RawRecord] = [
        *synthetic.census(),
        *synthetic.plain_flow_events(patients, 5),
        synthetic.heartbeat(),
    ]
    result = transform_window(records, None, demographics_of=None, window_id="w", produced_at=NOW)
    decoded = [record_from_dict(json.loads(t)) for t in result.released]
    assert decoded
    assert all(isinstance(r, HeartbeatRecord) and r.policy_version is None for r in decoded)
    assert result.suppressed_records == len(records) - 1


def test_window_outputs_decode_as_contracts(
    synthetic: SyntheticSite, keystore: PatientKeyStore, policy: Policy
) -> None:
    patients = synthetic.patients(300)
    records: list[RawRecord] = [
        *synthetic.census(),
        *synthetic.flow_events(patients, 1500),
        synthetic.heartbeat(),
    ]

    def lookup(e: Any) -> Any:
        return demographics(keystore.decrypt_phi(e.surrogate_id, e.key_id, e.phi_ciphertext))

    result = transform_window(
        records, policy, demographics_of=lookup, window_id="w", produced_at=NOW
    )
    assert result.held == []
    assert result.rejected == []
    types = set()
    for text in result.released:
        record = record_from_dict(json.loads(text))
        assert canonical_json(record.to_dict()) == text  # dicts are exactly the wire form
        types.add(type(record))
    assert types == {CensusRecord, FlowRecord, HeartbeatRecord}


def test_erased_patients_are_not_released(
    synthetic: SyntheticSite, keystore: PatientKeyStore, policy: Policy
) -> None:
    patients = synthetic.patients(50)
    events = synthetic.flow_events(patients, 200)
    erased = patients[0].surrogate_id
    keystore.erase(erased)

    def lookup(e: Any) -> Any:
        return demographics(keystore.decrypt_phi(e.surrogate_id, e.key_id, e.phi_ciphertext))

    result = transform_window(
        events, policy, demographics_of=lookup, window_id="w", produced_at=NOW
    )
    expected = sum(1 for e in events if e.surrogate_id == erased)
    assert result.erased == expected > 0
    assert erased not in "".join(result.released)
    with pytest.raises(KeyDestroyed):
        lookup(next(e for e in events if e.surrogate_id == erased))


def test_small_window_is_held_not_released(synthetic: SyntheticSite, policy: Policy) -> None:
    patients = synthetic.patients(3)
    events = synthetic.plain_flow_events(patients, 3)  # 3 records cannot be 5-anonymous
    result = transform_window(events, policy, demographics_of=None, window_id="w", produced_at=NOW)
    assert {h.audience for h in result.held} == {a.value for a in Audience}
    assert all("k-anonymity" in h.reasons[0] for h in result.held)
    assert result.released == []


def test_k_anonymity_takes_event_times_as_datetimes_or_their_isoformat(policy: Policy) -> None:
    rule = policy.rules_for("flow")[Audience.PEER_HOSPITALS]
    records, times = _flows(policy, 300)
    copies = [{**r, "generalised": list(r["generalised"])} for r in records]
    by_datetime = enforce_k(records, times, rule)
    by_text = enforce_k(copies, [t.isoformat() for t in times], rule)
    assert by_datetime == by_text
    assert records == copies
