"""Property tests (hypothesis): whatever the input, no identifier comes out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deid.contracts import (
    ArrivalMode,
    Audience,
    FlowEventType,
    PatientClass,
    PatientPHI,
    PlainFlowEvent,
    Sex,
    UnitType,
)
from deid.policy import default_policy_document, parse_policy
from deid.transforms import demographics, transform_flow, transform_window
from deid.transforms.generalise import age_at
from deid.zip3 import RESTRICTED_ZIP3

POLICY = parse_policy(default_policy_document())
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Fields holding random or derived ids: an identifier's digits can occur in them by chance.
RANDOM_ID_FIELDS = {"event_id", "source_event_id", "window_id", "surrogate_id"}

word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10).map(str.capitalize)
digits = lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)  # noqa: E731
zips = st.one_of(
    digits(5),
    st.tuples(st.sampled_from(sorted(RESTRICTED_ZIP3)), digits(2)).map("".join),
)


@st.composite
def patient(draw: st.DrawFn) -> PatientPHI:
    first, last = draw(word), draw(word)
    return PatientPHI(
        mrn="MR" + draw(digits(8)),
        name=f"{first} {last}",
        birth_date=draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31))),
        sex=draw(st.sampled_from(list(Sex))),
        address=f"{draw(st.integers(1, 99999))} {draw(word)} St",
        city=draw(word),
        state="MA",
        zip=draw(zips),
        phone=f"({draw(digits(3))}) {draw(digits(3))}-{draw(digits(4))}",
        email=f"{first.lower()}.{last.lower()}@{draw(word).lower()}.org",
        ssn=f"{draw(digits(3))}-{draw(digits(2))}-{draw(digits(4))}",
        free_text=f"{first} {last} says hello",
    )


@st.composite
def flow_event(draw: st.DrawFn) -> PlainFlowEvent:
    phi = draw(patient())
    assert phi.birth_date is not None
    # Events from the day of birth on (newborns included) up to the end of 2025.
    start = max(
        datetime(2025, 1, 1, tzinfo=UTC), datetime.combine(phi.birth_date, datetime.min.time(), UTC)
    )
    latest = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
    # hypothesis takes naive bounds and adds the zone itself.
    occurred = draw(
        st.datetimes(min_value=start.replace(tzinfo=None), max_value=latest.replace(tzinfo=None))
    )
    occurred = occurred.replace(tzinfo=UTC)
    return PlainFlowEvent(
        site_code="NGH",
        event_type=draw(st.sampled_from(list(FlowEventType))),
        occurred_at=occurred,
        unit_code=draw(st.sampled_from(["ED", "4W", "ICU1"])),
        unit_type=draw(st.sampled_from(list(UnitType))),
        patient_class=draw(st.sampled_from(list(PatientClass))),
        acuity=draw(st.none() | st.integers(1, 5)),
        arrival_mode=draw(st.none() | st.sampled_from(list(ArrivalMode))),
        decision_to_admit_at=occurred - timedelta(minutes=draw(st.integers(0, 2000))),
        surrogate_id="sg-"
        + draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=24, max_size=24)),
        phi=phi,
    )


def identifiers(phi: PatientPHI) -> list[str]:
    assert phi.birth_date is not None
    return [
        v
        for v in (
            phi.mrn,
            phi.name,
            phi.address,
            phi.phone,
            phi.email,
            phi.ssn,
            phi.zip,
            phi.birth_date.isoformat(),
            phi.free_text,
            phi.city,
        )
        if v
    ]


def leaks(output: dict[str, Any], phi: PatientPHI) -> list[str]:
    values = [json.dumps(v) for k, v in output.items() if k not in RANDOM_ID_FIELDS]
    text = "\n".join(values)
    found = [i for i in identifiers(phi) if i in text]
    # First and last names on their own, too.
    assert phi.name is not None
    found += [part for part in phi.name.split() if part in text]
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=flow_event(), audience=st.sampled_from(list(Audience)))
def test_no_identifier_leaves_a_flow_event(event: PlainFlowEvent, audience: Audience) -> None:
    rule = POLICY.rules_for("flow")[audience]
    out = transform_flow(
        event,
        demographics(event.phi),
        rule,
        audience=audience,
        policy_version=1,
        produced_at="2026-01-01T00:00:00Z",
        window_id="w",
    )
    assert leaks(out, event.phi) == []
    assert event.phi.birth_date is not None
    age = age_at(event.phi.birth_date, event.occurred_at.date())
    if age >= 90 and "age_band" in rule.fields:
        assert out["age_band"] == "90+"
    if event.phi.zip and event.phi.zip[:3] in RESTRICTED_ZIP3 and "zip3" in rule.fields:
        assert out["zip3"] == "000"
    assert out["occurred"] != event.phi.birth_date.isoformat()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(flow_event(), min_size=1, max_size=40))
def test_no_identifier_leaves_a_window(events: list[PlainFlowEvent]) -> None:
    result = transform_window(events, POLICY, demographics_of=None, window_id="w", produced_at=NOW)
    outputs = [json.loads(t) for t in result.released]
    outputs += [json.loads(t) for h in result.held for t in h.records]
    by_source = {e.event_id: e for e in events}
    for out in outputs:
        event = by_source[out["source_event_id"]]
        assert leaks(out, event.phi) == []
        assert event.phi.birth_date is not None
        if age_at(event.phi.birth_date, event.occurred_at.date()) >= 90:
            assert out["age_band"] in ("90+", None)
        if event.phi.zip and event.phi.zip[:3] in RESTRICTED_ZIP3:
            assert out["zip3"] in ("000", None)
