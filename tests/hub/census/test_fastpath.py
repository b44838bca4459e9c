"""The ingestion fast path against the reference path: same rows, or it steps aside.

Every record here is signed properly, so only validation decides. For each (mutated) record
the fast path must either build exactly the rows the reference path (``open_envelope``,
dataclasses, ``ingest._census_row``) builds, or return None, never accept what the reference
path refuses. No database: the site directory is loaded from memory.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deid.contracts import CensusRecord, FlowRecord, UnitType, canonical_json, seal_envelope
from deid.signing import generate_signing_key, key_id_for
from hub.census import fastpath, ingest
from hub.census.ingest import IngestBatch, SiteDirectory, SiteEntry, envelope_into_batch
from tests.hub.support import census, flow, heartbeat

SITE = "FAST1"
KEY = generate_signing_key()
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def directory() -> SiteDirectory:
    def load(site_code: str) -> SiteEntry | None:
        if site_code != SITE:
            return None
        return SiteEntry(
            hospital_id=7,
            keys={key_id_for(KEY): KEY.public_key()},
            units_by_code={"ICU": 1, "W1": 2, "ED": 3},
            units_by_type={"adult_icu": 1, "emergency": 3},
            loaded_at=time.monotonic(),
            unit_types=frozenset({"adult_icu", "medical_surgical", "emergency"}),
        )

    return SiteDirectory(load)


def seal_dicts(records: list[dict[str, Any]], policy_version: int | None = 1) -> bytes:
    return seal_envelope(
        [canonical_json(r) for r in records], KEY, site_code=SITE, policy_version=policy_version
    )


def reference(value: bytes, monkeypatch: pytest.MonkeyPatch) -> IngestBatch:
    batch = IngestBatch()
    with monkeypatch.context() as m:
        m.setattr(ingest, "_fast_path", lambda *a: None)
        envelope_into_batch(value, directory=directory(), batch=batch, received_at=NOW, via="kafka")
    return batch


def fast(value: bytes) -> tuple[list[Any], list[Any]] | None:
    d = directory()
    entry = d.get(SITE)
    assert entry is not None
    rows = fastpath.envelope_rows(
        value,
        directory=d,
        entry=entry,
        site_code=SITE,
        key_id=key_id_for(KEY),
        received_at=NOW,
        via="kafka",
    )
    return None if rows is None else (rows[1], rows[2])


def agree(value: bytes, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Assert the two paths agree; True when the fast path took the envelope."""
    ref = reference(value, monkeypatch)
    got = fast(value)
    if got is None:
        return False
    assert ref.rejections == [], "the fast path accepted what the reference path refuses"
    assert got == (ref.census, ref.flow)
    return True


def census_dict(**changes: Any) -> dict[str, Any]:
    record = census(SITE, "ICU", at=NOW - timedelta(minutes=3), unit_type=UnitType.ADULT_ICU)
    return {**record.to_dict(), **changes}


def flow_dict(**changes: Any) -> dict[str, Any]:
    record = flow(SITE, surrogate="s-1", at=NOW - timedelta(hours=1))
    return {**dataclasses.replace(record, acuity=3, wait_minutes=12).to_dict(), **changes}


def test_clean_census_and_flow_records_take_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = [census_dict(), census_dict(unit_code="W1", unit_type="medical_surgical")]
    records += [
        census_dict(
            forecast=[{"horizon_hours": 4, "p10": 1, "p50": 2.5, "p90": None}],
            suppressed=["ed_waiting"],
            ed_waiting=None,
            stale=True,
        ),
        census_dict(unit_code=None, unit_type="emergency"),  # the site's one ED
        census_dict(unit_code=None, unit_type="medical_surgical"),  # several: no unit
        flow_dict(),
        flow_dict(unit_code=None, generalised=["age_band"], occurred="2026-W47"),
    ]
    value = seal_dicts(records)
    assert agree(value, monkeypatch)
    census_rows, flow_rows = fast(value) or ([], [])
    assert [r[4] for r in census_rows] == [1, 2, 1, 3, None]
    assert census_rows[2][31] == b'\x01[{"horizon_hours":4,"p10":1.0,"p50":2.5,"p90":null}]'
    assert [r[5] for r in flow_rows] == [2, None]


WRONG_VALUES: list[Any] = [None, True, 0, -1, 1.5, "", "x", [], ["x"], {}, {"a": 1}]


def mutations(base: Callable[..., dict[str, Any]], fields: frozenset[str]) -> list[Any]:
    cases: list[Any] = []
    for name in sorted(fields | {"record_type", "schema_version", "extra_field"}):
        cases += [pytest.param(base, name, v, id=f"{name}={v!r}") for v in WRONG_VALUES]
        cases.append(pytest.param(base, name, KeyError, id=f"{name} absent"))
    return cases


@pytest.mark.parametrize(
    ("base", "name", "value"),
    [
        *mutations(census_dict, fastpath.CENSUS_FIELDS),
        *mutations(flow_dict, fastpath.FLOW_FIELDS),
        pytest.param(census_dict, "occupied_beds", 1_000_001, id="count too large"),
        pytest.param(census_dict, "policy_version", 2**31, id="version out of range"),
        pytest.param(census_dict, "unit_code", "NOPE", id="unknown unit"),
        pytest.param(census_dict, "as_of", "2026-11-23T12:30Z", id="in the future"),
        pytest.param(census_dict, "as_of", "2026-02-30", id="not a date"),
        pytest.param(census_dict, "produced_at", "2026-11-23T11:00:00", id="naive time"),
        pytest.param(census_dict, "produced_at", "2026-11-23T13:00:00+02:00", id="offset"),
        pytest.param(census_dict, "event_id", "A" * 36, id="upper-case event id"),
        pytest.param(census_dict, "audience", "peer_hospitals", id="another audience"),
        pytest.param(census_dict, "forecast", [{"p50": 1.0}], id="forecast without horizon"),
        pytest.param(census_dict, "forecast", [{"horizon_hours": 1, "p50": "1"}], id="p50 text"),
        pytest.param(census_dict, "forecast", [{"horizon_hours": 1, "z": 1}], id="extra key"),
        pytest.param(census_dict, "suppressed", [1], id="suppressed number"),
        pytest.param(flow_dict, "acuity", 6, id="acuity 6"),
        pytest.param(flow_dict, "acuity", 0, id="acuity 0"),
        pytest.param(flow_dict, "wait_minutes", 1_000_001, id="wait too long"),
        pytest.param(flow_dict, "event_type", "teleport", id="unknown event type"),
        pytest.param(flow_dict, "sex", "female", id="sex given"),
        pytest.param(flow_dict, "unit_code", "ICU", id="flow into the ICU"),
        pytest.param(flow_dict, "unit_code", "GONE", id="flow into an unknown unit"),
        pytest.param(flow_dict, "occurred", "2026-11", id="monthly"),
    ],
)
def test_a_mutated_record_is_handled_as_the_reference_path_does(
    base: Callable[..., dict[str, Any]],
    name: str,
    value: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = base()
    if value is KeyError:
        record.pop(name, None)
    else:
        record[name] = value
    # A clean neighbour in the same envelope: one refusal sends the whole envelope back.
    agree(seal_dicts([base(), record]), monkeypatch)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["census", "flow"]),
    name=st.sampled_from(sorted(fastpath.CENSUS_FIELDS | fastpath.FLOW_FIELDS)),
    value=JSON,
)
def test_any_json_value_in_any_field_never_gets_past_the_reference_checks(
    kind: str, name: str, value: Any
) -> None:
    record = census_dict() if kind == "census" else flow_dict()
    record[name] = value
    with pytest.MonkeyPatch.context() as monkeypatch:
        agree(seal_dicts([record]), monkeypatch)


@pytest.mark.parametrize(
    ("base", "changes"),
    [
        (census_dict, {"extra_field": [1]}),
        (census_dict, {"audience": "peer_hospitals", "unit_code": None}),
        (census_dict, {"produced_at": "2026-11-23T13:00:00+02:00"}),
        (census_dict, {"as_of": None, "occupied_beds": 0, "stale": None, "source": None}),
        (census_dict, {"as_of": "2026", "schema_version": 1, "suppressed": []}),
        (flow_dict, {"sex": "female", "zip3": None, "acuity": None}),
        (flow_dict, {"unit_code": "ICU", "prior_unit_code": "ED", "prior_unit_type": "emergency"}),
        (flow_dict, {"occurred": "2026-11", "date_granularity": "month", "window_id": "w"}),
    ],
)
def test_valid_variations_take_the_fast_path(
    base: Callable[..., dict[str, Any]], changes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert agree(seal_dicts([base(**changes)]), monkeypatch)


def test_refused_envelopes_and_other_records_are_left_to_the_reference_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at = NOW - timedelta(minutes=1)
    heartbeat_only = seal_envelope(
        [canonical_json(heartbeat(SITE, at=at).to_dict())], KEY, site_code=SITE, policy_version=1
    )
    assert fast(heartbeat_only) is None
    good = seal_dicts([census_dict()])
    assert fast(good.replace(b'"occupied_beds":25', b'"occupied_beds":26')) is None
    assert fast(seal_dicts([census_dict()], policy_version=2)) is None
    other_key = seal_envelope(
        [canonical_json(census_dict())], generate_signing_key(), site_code=SITE, policy_version=1
    )
    assert fast(other_key) is None
    assert reference(other_key, monkeypatch).rejections


def test_the_fast_path_checks_every_field_of_the_contracts() -> None:
    def names(cls: type[Any]) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))

    assert names(CensusRecord) == fastpath.CENSUS_FIELDS
    assert names(FlowRecord) == fastpath.FLOW_FIELDS


def test_the_envelope_head_names_the_site_and_key_without_reading_the_records() -> None:
    value = seal_dicts([census_dict()])
    assert fastpath.envelope_head(value) == (SITE, key_id_for(KEY))
    assert fastpath.envelope_head(b'{"records":[],"site_code":"X"}') is None
    assert fastpath.envelope_head(b"not json") is None
