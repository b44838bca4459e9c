"""The native core (deid_core) against the Python reference: same released texts, held
slices and reasons, counts, dead letters, for every policy feature the core implements; and
a clear decline (then the reference) for what it does not reproduce."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deid import native
from deid.contracts.raw import RawFlowEvent
from deid.contracts.vocabulary import (
    ArrivalMode,
    Audience,
    DateGranularity,
    FlowEventType,
    PatientClass,
    Sex,
    UnitType,
)
from deid.keystore import MasterKeyRing, PatientKeyStore
from deid.policy import Policy, default_policy_document, parse_policy
from deid.stream_window import (
    WindowOutcome,
    identity_window,
    native_window,
    process_window,
    reference_window,
)
from deid.testing.synthetic import SyntheticSite

SITE = "siteN"
STAMP = datetime(2026, 11, 24, 7, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> PatientKeyStore:
    path = Path(tmp_path_factory.mktemp("native")) / "keys.sqlite"
    return PatientKeyStore(path, MasterKeyRing.generate_b64())


def default_policy() -> Policy:
    return parse_policy(default_policy_document())


def policy_from(edit: dict[str, dict[str, Any]] | None = None, *, ops_only: bool = False) -> Policy:
    doc = copy.deepcopy(default_policy_document())
    flow = doc["records"]["flow"]
    if ops_only:
        doc["records"]["flow"] = {"regional_operations": flow["regional_operations"]}
        doc["records"]["census"] = {
            "regional_operations": doc["records"]["census"]["regional_operations"]
        }
    for audience, changes in (edit or {}).items():
        doc["records"]["flow"][audience].update(changes)
    return parse_policy(doc)


def with_flow_rule(policy: Policy, audience: Audience, **changes: Any) -> Policy:
    """A policy whose flow rule for `audience` is changed directly (e.g. minute or hour
    granularity, which policy documents refuse for flow records)."""
    rules = {kind: dict(by_audience) for kind, by_audience in policy.rules.items()}
    rules["flow"][audience] = dataclasses.replace(rules["flow"][audience], **changes)
    return dataclasses.replace(policy, rules=rules)


def window(site: SyntheticSite, n: int, patients: int = 50) -> list[bytes | None]:
    people = site.patients(patients)
    records: list[Any] = [*site.census(), *site.flow_events(people, n), site.heartbeat()]
    return [r.encode() for r in records]


def run_both(
    values: Sequence[bytes | None], policy: Policy | None, store: PatientKeyStore
) -> tuple[WindowOutcome, WindowOutcome | None]:
    kw: dict[str, Any] = {
        "site_code": SITE,
        "policy": policy,
        "keystore": store,
        "window_id": "5d3f6a2e-1111-4c4c-8888-000000000001",
        "produced_at": STAMP,
    }
    return reference_window(values, **kw), native_window(values, **kw)


def assert_same(ref: WindowOutcome, nat: WindowOutcome | None) -> WindowOutcome:
    assert nat is not None, "the native core declined the window"
    assert nat.native
    assert nat.result.released == ref.result.released
    assert nat.result.held == ref.result.held
    for name in ("processed", "suppressed_records", "suppressed_cells", "erased", "held_records"):
        assert getattr(nat.result, name) == getattr(ref.result, name), name
    assert nat.dead == ref.dead
    assert nat.hashes == [hashlib.sha256(t.encode()).hexdigest() for t in ref.result.released]
    return nat


def event(
    store: PatientKeyStore,
    phi: dict[str, Any],
    *,
    mrn: str | None = None,
    **fields: Any,
) -> RawFlowEvent:
    surrogate = store.surrogate_for(mrn or f"MRN-{uuid.uuid4().hex[:10]}")
    key_id, ciphertext = store.encrypt_phi(surrogate, phi)
    values: dict[str, Any] = {
        "site_code": SITE,
        "event_type": FlowEventType.ADMIT,
        "occurred_at": datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        "unit_code": "4W",
        "unit_type": UnitType.MEDICAL_SURGICAL,
        "patient_class": PatientClass.INPATIENT,
        "surrogate_id": surrogate,
        "key_id": key_id,
        "phi_ciphertext": ciphertext,
    }
    values.update(fields)
    return RawFlowEvent(**values)


def test_core_is_built() -> None:
    assert native.core is not None, "deid_core is not installed: run scripts/bootstrap"


def test_vocabularies_match_the_contracts() -> None:
    assert native.core is not None
    vocab = native.core.vocabularies()
    for cls in (FlowEventType, UnitType, PatientClass, ArrivalMode, Sex):
        assert vocab[cls.__name__] == [m.value for m in cls]


def test_default_policy_window(store: PatientKeyStore) -> None:
    values = window(SyntheticSite(SITE, seed=1, keystore=store), 600)
    ref, nat = run_both(values, default_policy(), store)
    out = assert_same(ref, nat)
    assert len(out.result.released) > 1000  # three audiences' records, census, heartbeat


def test_ops_only_policy(store: PatientKeyStore) -> None:
    values = window(SyntheticSite(SITE, seed=2, keystore=store), 400)
    assert_same(*run_both(values, policy_from(ops_only=True), store))


@pytest.mark.parametrize("granularity", list(DateGranularity))
def test_every_date_granularity(store: PatientKeyStore, granularity: DateGranularity) -> None:
    policy = with_flow_rule(
        default_policy(), Audience.REGIONAL_OPERATIONS, date_granularity=granularity, k=1
    )
    site = SyntheticSite(SITE, seed=3, keystore=store)
    people = site.patients(30)
    # Newborns admitted on their day of birth: day and week coarsen to the month.
    newborn_day = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    newborn = event(
        store,
        {"birth_date": "2026-05-04", "sex": "female", "zip": "02139"},
        occurred_at=newborn_day,
    )
    values = [r.encode() for r in site.flow_events(people, 200)] + [newborn.encode()]
    nat = assert_same(*run_both(values, policy, store))
    # Minute and hour are finer than a patient-level record may be: the verifier holds them.
    texts = nat.result.released + [t for h in nat.result.held for t in h.records]
    newborn_text = next(t for t in texts if newborn.event_id in t and "regional_op" in t)
    coarsened = '"generalised":["occurred"' in newborn_text
    assert coarsened == (granularity in (DateGranularity.DAY, DateGranularity.WEEK))


@pytest.mark.parametrize(
    "bands", [[0, 5, 10, 30, 60], [0, 90], [0, 18, 45, 65, 75, 90], [0, 1, 2, 3, 89]]
)
def test_age_bands(store: PatientKeyStore, bands: list[int]) -> None:
    policy = policy_from({"regional_operations": {"age_bands": bands}})
    values = window(SyntheticSite(SITE, seed=4, keystore=store), 300)
    assert_same(*run_both(values, policy, store))


@pytest.mark.parametrize("n", [3, 12, 40, 90])
def test_k_anonymity_generalises_and_suppresses(store: PatientKeyStore, n: int) -> None:
    # Small windows: Datafly generalises (age band, time, ...) and suppresses the rest.
    values = window(SyntheticSite(SITE, seed=5 + n, keystore=store), n, patients=n)
    policy = policy_from(
        {
            "regional_operations": {"k": 3, "max_suppression": 1.0},
            "peer_hospitals": {"k": 4, "max_suppression": 0.9},
        }
    )
    nat = assert_same(*run_both(values, policy, store))
    generalised = [t for t in nat.result.released if '"generalised":["' in t]
    assert nat.result.suppressed_records > 0 or nat.result.held or generalised


def test_max_suppression_holds_the_slice(store: PatientKeyStore) -> None:
    values = window(SyntheticSite(SITE, seed=6, keystore=store), 8, patients=8)
    policy = policy_from({"regional_operations": {"k": 15, "max_suppression": 0.1}})
    nat = assert_same(*run_both(values, policy, store))
    assert any("would suppress" in r for h in nat.result.held for r in h.reasons)


@pytest.mark.parametrize(("attribute", "ell"), [("event_type", 2), ("unit_code", 3), ("acuity", 2)])
def test_l_diversity(store: PatientKeyStore, attribute: str, ell: int) -> None:
    policy = policy_from(
        {"regional_operations": {"l_diversity": {"attribute": attribute, "l": ell}}}
    )
    values = window(SyntheticSite(SITE, seed=7, keystore=store), 250)
    assert_same(*run_both(values, policy, store))


def test_erased_patients(store: PatientKeyStore) -> None:
    site = SyntheticSite(SITE, seed=8, keystore=store)
    people = site.patients(20)
    values = [r.encode() for r in site.flow_events(people, 150)]
    store.erase(people[0].surrogate_id)
    store.erase(people[1].surrogate_id)
    nat = assert_same(*run_both(values, default_policy(), store))
    assert nat.result.erased > 0


def test_tampered_ciphertext_is_declined_and_the_reference_words_it(
    store: PatientKeyStore,
) -> None:
    site = SyntheticSite(SITE, seed=9, keystore=store)
    events = site.flow_events(site.patients(10), 30)
    blob = bytearray(base64.b64decode(events[4].phi_ciphertext))
    blob[-1] ^= 1
    events[4] = dataclasses.replace(events[4], phi_ciphertext=base64.b64encode(blob).decode())
    values = [e.encode() for e in events]
    ref, nat = run_both(values, default_policy(), store)
    assert nat is None
    outcome = process_window(
        values,
        site_code=SITE,
        policy=default_policy(),
        keystore=store,
        window_id="5d3f6a2e-1111-4c4c-8888-000000000001",
        produced_at=STAMP,
        use_native=True,
    )
    assert not outcome.native
    assert outcome.result.released == ref.result.released
    assert outcome.dead == ref.dead == [(4, ref.dead[0][1])]
    assert "does not authenticate" in ref.dead[0][1]


def test_undecodable_records_get_the_reference_wording(store: PatientKeyStore) -> None:
    site = SyntheticSite(SITE, seed=10, keystore=store)
    events = site.flow_events(site.patients(10), 40)
    good = [e.encode() for e in events]
    naive = good[0].replace(b'"occurred_at":"2', b'"occurred_at":"X', 1)
    plain = site.plain_flow_events(site.patients(2), 1)[0].encode()
    other_site = dataclasses.replace(events[1], site_code="elsewhere").encode()
    escaped = good[2].replace(b'"unit_code":"', b'"unit_code":"\\u0041', 1)
    values: list[bytes | None] = [
        *good[3:],
        b"not json",
        None,
        naive,
        plain,
        other_site,
        escaped,  # a valid record the core's strict decoder leaves to the reference
        b'{"record_type":"raw.census_snapshot"}',
    ]
    ref, nat = run_both(values, default_policy(), store)
    if nat is None:  # the escaped flow event sends the window to the reference
        values.remove(escaped)
        ref, nat = run_both(values, default_policy(), store)
    out = assert_same(ref, nat)
    reasons = [reason for _, reason in out.dead]
    assert "empty message" in reasons
    assert "payload is not UTF-8 JSON" in reasons
    assert "site_code: not this worker's site" in reasons


def test_a_flow_event_only_the_reference_decodes_sends_the_window_there(
    store: PatientKeyStore,
) -> None:
    site = SyntheticSite(SITE, seed=11, keystore=store)
    values = [e.encode() for e in site.flow_events(site.patients(5), 10)]
    values.append(values[0].replace(b'"unit_code":"', b'"unit_code":"\\u0041', 1))
    assert run_both(values, default_policy(), store)[1] is None


def test_identifier_patterns_are_held_with_the_reference_reasons(
    store: PatientKeyStore,
) -> None:
    phi = {"birth_date": "1970-01-01", "sex": "male", "zip": "02139"}
    events = [
        event(store, phi, unit_code=code, mrn=f"MRN-ident-{n}")
        for n, code in enumerate(["123-45-6789"] * 6 + ["a@b.org"] * 6 + ["4W"] * 6)
    ]
    policy = policy_from({"regional_operations": {"k": 1}}, ops_only=True)
    nat = assert_same(*run_both([e.encode() for e in events], policy, store))
    reasons = {r for h in nat.result.held for r in h.reasons}
    assert "identifier pattern in output: ssn" in reasons
    assert "identifier pattern in output: email" in reasons


def test_odd_but_valid_values(store: PatientKeyStore) -> None:
    """Offsets, fractions of a second, wait times, ages at the edges, ZIPs with spaces and
    dashes, restricted ZIP3s, unknown sex, non-ASCII unit codes, all through the core."""
    occurred = datetime(2026, 1, 1, 0, 30, 0, 500, tzinfo=timezone(timedelta(hours=5)))
    events = []
    for n in range(30):
        phi = {
            "birth_date": f"{1936 + n}-01-0{1 + n % 9}",
            "sex": ["female", "male", "other", "unknown", "x", None][n % 6],
            "zip": [" 02139-1234", "03601", "1234", "12 345", "", "99999"][n % 6],
            "name": "Jane Roe",
        }
        events.append(
            event(
                store,
                phi,
                mrn=f"MRN-odd-{n}",
                occurred_at=occurred + timedelta(days=n * 13, microseconds=n),
                decision_to_admit_at=occurred - timedelta(minutes=n * 7, seconds=n),
                event_type=[FlowEventType.ADMIT, FlowEventType.TRANSFER][n % 2],
                unit_code=["Ünit-Ä", "ICU 2", "4W"][n % 3],
                acuity=1 + n % 5,
                arrival_mode=ArrivalMode.WALK_IN,
            )
        )
    policy = policy_from({"regional_operations": {"k": 1}})
    assert_same(*run_both([e.encode() for e in events], policy, store))


def test_unsupported_policy_is_declined(store: PatientKeyStore) -> None:
    policy = with_flow_rule(
        default_policy(), Audience.REGIONAL_OPERATIONS, quasi_identifiers=("sex", "sex")
    )
    assert native.flow_rules(policy) is None
    values = window(SyntheticSite(SITE, seed=12, keystore=store), 20)
    assert run_both(values, policy, store)[1] is None


def test_identity_worker_native_reencode_equals_python(store: PatientKeyStore) -> None:
    values = window(SyntheticSite(SITE, seed=13, keystore=store), 50)
    values.append(b"garbage")
    python = identity_window(values, site_code=SITE, use_native=False)
    rust = identity_window(values, site_code=SITE, use_native=True)
    assert rust.result.released == python.result.released
    assert rust.hashes == python.hashes
    assert rust.dead == python.dead
    assert rust.result.processed == python.result.processed


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 120),
    patients=st.integers(1, 60),
    k=st.integers(1, 8),
    max_suppression=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    granularity=st.sampled_from(["day", "week", "month", "year"]),
    ops_only=st.booleans(),
    ldiv=st.sampled_from([None, ("event_type", 2), ("unit_code", 2)]),
    bands=st.sampled_from([[0, 18, 45, 65, 75, 90], [0, 10, 20, 40, 80], [0, 90]]),
    erase=st.integers(0, 3),
)
def test_property_native_equals_python(
    store: PatientKeyStore,
    seed: int,
    n: int,
    patients: int,
    k: int,
    max_suppression: float,
    granularity: str,
    ops_only: bool,
    ldiv: tuple[str, int] | None,
    bands: list[int],
    erase: int,
) -> None:
    rule: dict[str, Any] = {
        "k": k,
        "max_suppression": max_suppression,
        "date_granularity": granularity,
        "age_bands": bands,
    }
    if ldiv is not None:
        rule["l_diversity"] = {"attribute": ldiv[0], "l": ldiv[1]}
    policy = policy_from({"regional_operations": rule}, ops_only=ops_only)
    site = SyntheticSite(SITE, seed=seed, keystore=store)
    people = site.patients(patients)
    records: list[Any] = [*site.flow_events(people, n)]
    if seed % 3 == 0:
        records = [*site.census(), *records, site.heartbeat()]
    for person in people[:erase]:
        if not store.is_erased(person.surrogate_id):
            store.erase(person.surrogate_id)
    assert_same(*run_both([r.encode() for r in records], policy, store))


def test_birthday_edges(store: PatientKeyStore) -> None:
    """Ages across a birthday (Feb 29 too) and the 89/90 top-code boundary."""
    when = datetime(2025, 2, 28, 23, 59, tzinfo=UTC)
    births = [date(1935, 2, 28), date(1935, 3, 1), date(1936, 2, 29), date(2025, 3, 1)]
    births += [date(2025, 2, 28), date(1900, 1, 1)]
    events = [
        event(
            store, {"birth_date": b.isoformat(), "sex": "male"}, mrn=f"MRN-bd-{n}", occurred_at=when
        )
        for n, b in enumerate(births)
    ]
    policy = policy_from({"regional_operations": {"k": 1}})
    assert_same(*run_both([e.encode() for e in events], policy, store))


def test_data_keys_for_mirrors_decrypt_phi(store: PatientKeyStore) -> None:
    """The key material the core gets: bytes where decrypt_phi would decrypt, None where it
    would raise KeyDestroyed, False where it would raise another KeyStoreError."""
    site = SyntheticSite(SITE, seed=14, keystore=store)
    kept = site.flow_events(site.patients(2), 2)
    erased = site.flow_events(site.patients(1), 1)[0]
    store.erase(erased.surrogate_id)
    pairs = [
        (kept[0].surrogate_id, kept[0].key_id),
        (erased.surrogate_id, erased.key_id),
        (kept[0].surrogate_id, "dk-0000000000000000"),
        (erased.surrogate_id, kept[0].key_id),  # a key of another patient
    ]
    found = store.data_keys_for(pairs)
    assert isinstance(found[0], bytes)
    assert len(found[0]) == 32
    assert found[1:] == [None, False, False]


def test_worker_uses_the_core_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from deid.worker import WorkerConfig

    assert WorkerConfig(site_code=SITE).native
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert not WorkerConfig(site_code=SITE).native


_MUTATIONS: dict[str, list[Any]] = {
    "occurred_at": [
        "2026-01-01T00:00:00Z",
        "2026-01-01T05:30:00.5+05:30",
        "2026-01-01T00:00:00.1234567Z",
        "2026-01-01 00:00:00Z",
        "2026-01-01T00:00:00-00:00",
        "2026-01-01T00:00:00",
        "2026-02-30T00:00:00Z",
        "0001-01-01T00:30:00+01:00",
        20260101,
        None,
    ],
    "acuity": [None, 1, 5, 0, 6, 3.0, True, "3", -1],
    "schema_version": [1, 2, 0, True, "1", 1.0],
    "record_type": ["raw.flow_event", "raw.flow_event.plain", "raw.heartbeat", None],
    "event_id": ["6f1f0c1e-4a53-4d0b-9a55-2f6c1f7e3b10", "6F1F0C1E-4A53-4D0B-9A55-2F6C1F7E3B10"],
    "unit_type": ["adult_icu", "ADULT_ICU", "spaceship", None, 7],
    "unit_code": ["4W", "", 'a"b', "tab\there", "Ünit", None, ["x"]],
    "surrogate_id": ["", "sg-x", None],
    "source": ["hl7-adt", None, 3],
    "decision_to_admit_at": [None, "2025-12-31T23:00:00Z", "yesterday"],
    "site_code": [SITE, "elsewhere", "bad site!"],
    "unknown_field": [{"nested": [1, 2]}, 1.5, "x"],
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(_MUTATIONS)),
        st.integers(0, 9),
        max_size=4,
    ),
    # (not event_id or produced_at: their defaults are random and "now" on every decode)
    drop=st.lists(st.sampled_from(["source", "acuity", "key_id", "unit_code", "site_code"])),
    spaced=st.booleans(),
)
def test_property_decoder_takes_nothing_the_reference_reads_otherwise(
    changes: dict[str, int], drop: list[str], spaced: bool
) -> None:
    """Mutated raw messages through the identity worker's decode and re-encode: the core's
    decoder either takes a message exactly as the reference decoder reads it, or leaves it
    to the reference (which then decodes it or words the dead letter)."""
    import json

    base = {
        "record_type": "raw.flow_event",
        "schema_version": 1,
        "site_code": SITE,
        "event_id": "b70f23ac-9b24-49cb-a28a-1f0cc2571f06",
        "produced_at": "2026-11-24T06:47:10.082852Z",
        "event_type": "admit",
        "occurred_at": "2025-08-17T04:38:53Z",
        "unit_code": "OB",
        "unit_type": "obstetrics",
        "patient_class": "inpatient",
        "acuity": 2,
        "surrogate_id": "sg-in6fnr2n54zrds3xiz3lenvo",
        "key_id": "dk-5c970677ce398226",
        "phi_ciphertext": "AbKXbAOWLMAWll4MX1xm7goUcVxUb1UQ",
        "source": "hl7-adt",
    }
    for name, pick in changes.items():
        options = _MUTATIONS[name]
        base[name] = options[pick % len(options)]
    for name in drop:
        base.pop(name, None)
    text = json.dumps(base, separators=(", ", ": ") if spaced else (",", ":"))
    values: list[bytes | None] = [text.encode()]
    python = identity_window(values, site_code=SITE, use_native=False)
    rust = identity_window(values, site_code=SITE, use_native=True)
    assert rust.result.released == python.result.released
    assert rust.dead == python.dead


def test_a_panic_in_the_core_sends_the_window_to_the_reference(store: PatientKeyStore) -> None:
    site = SyntheticSite(SITE, seed=15, keystore=store)
    values = [e.encode() for e in site.flow_events(site.patients(5), 20)]

    class Store:
        def data_keys_for(self, pairs: list[tuple[str, str]]) -> list[bytes | None | bool]:
            return []  # fewer keys than pairs: the core indexes past the end and panics

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    kw: dict[str, Any] = {
        "site_code": SITE,
        "policy": default_policy(),
        "window_id": "5d3f6a2e-1111-4c4c-8888-000000000001",
        "produced_at": STAMP,
    }
    assert native_window(values, keystore=Store(), **kw) is None  # type: ignore[arg-type]
    outcome = process_window(values, keystore=Store(), use_native=True, **kw)  # type: ignore[arg-type]
    assert outcome.result.released == reference_window(values, keystore=store, **kw).result.released
