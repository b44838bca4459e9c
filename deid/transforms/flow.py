"""Patient flow events -> FlowRecord dicts for one audience (before k-anonymity).

Nothing is copied from the raw event by default: the output is built field by field from an
allow-list, so every one of the 18 identifier categories of 45 CFR 164.514(b)(2)(i) stays
behind (names, geography below ZIP3, dates other than as the policy generalises them, phone,
fax, e-mail, SSN, MRN, plan and account numbers, licence, vehicle and device ids, URLs, IPs,
biometrics, photos, any other unique code) and so does any free text. From the decrypted PHI
only three things are derived: the age band, administrative sex and ZIP3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple

from deid.contracts.raw import PatientPHI, PlainFlowEvent, RawFlowEvent
from deid.contracts.regional import FlowRecord
from deid.contracts.vocabulary import Audience, DateGranularity, FlowEventType, Sex
from deid.policy import AGE_TOP_CODE, AudienceRule
from deid.transforms.census import _NAMESPACE_BYTES, _VARIANT
from deid.transforms.generalise import generalise_timestamp
from deid.zip3 import zip3 as zip3_of

_SEXES = {s.value: s for s in Sex}
# Events whose time minus the decision to admit is a boarding or wait time.
_WAIT_EVENTS = frozenset({FlowEventType.ADMIT, FlowEventType.TRANSFER, FlowEventType.CLASS_CHANGE})


class Demographics(NamedTuple):
    """The only things a release derives from a patient's PHI."""

    birth_date: date | None
    sex: Sex | None
    zip3: str | None


NO_DEMOGRAPHICS = Demographics(None, None, None)


def demographics(phi: dict[str, Any] | PatientPHI | None) -> Demographics:
    """Derive the demographics from decrypted PHI (a dict as stored, or PatientPHI).
    Malformed values become None rather than failing the record."""
    if phi is None:
        return NO_DEMOGRAPHICS
    if isinstance(phi, PatientPHI):
        return Demographics(phi.birth_date, phi.sex, zip3_of(phi.zip))
    birth: date | None = None
    raw_birth = phi.get("birth_date")
    if isinstance(raw_birth, str):
        try:
            birth = date.fromisoformat(raw_birth[:10])
        except ValueError:
            birth = None
    raw_zip = phi.get("zip")
    raw_sex = phi.get("sex")
    return Demographics(
        birth,
        _SEXES.get(raw_sex) if isinstance(raw_sex, str) else None,
        zip3_of(raw_zip) if isinstance(raw_zip, str) else None,
    )


class EventFacts(NamedTuple):
    """What every audience's record of one event is built from, computed once per event."""

    iso: str  # occurred_at.isoformat() (UTC)
    event_day: date
    age: int | None
    wait: int | None
    born_that_day: bool
    id_seed: bytes = b""  # the namespace and source event id that derived event ids hash


def event_facts(raw: RawFlowEvent | PlainFlowEvent, demo: Demographics) -> EventFacts:
    occurred_at = raw.occurred_at
    event_day = occurred_at.date()
    birth = demo.birth_date
    age = None
    if birth is not None:
        age = (
            event_day.year
            - birth.year
            - ((event_day.month, event_day.day) < (birth.month, birth.day))
        )
        if age < 0:
            age = None
    wait = None
    dta = raw.decision_to_admit_at
    if dta is not None and raw.event_type in _WAIT_EVENTS:
        minutes = int((occurred_at - dta).total_seconds() // 60)
        wait = minutes if minutes >= 0 else None
    return EventFacts(
        occurred_at.isoformat(),
        event_day,
        age,
        wait,
        birth is not None and birth == event_day,
        _NAMESPACE_BYTES + raw.event_id.encode(),
    )


_ISO_CUT = {DateGranularity.DAY: 10, DateGranularity.MONTH: 7, DateGranularity.YEAR: 4}


# Policy-controlled fields of a FlowRecord: an audience gets null where its rule omits one.
_CONTROLLED = (
    "surrogate_id",
    "unit_code",
    "unit_type",
    "prior_unit_code",
    "prior_unit_type",
    "patient_class",
    "acuity",
    "arrival_mode",
    "sex",
    "zip3",
    "wait_minutes",
)


@lru_cache(maxsize=64)
def _plan(rule: AudienceRule) -> tuple[tuple[str, ...], dict[int, str]]:
    """Per rule, once: the controlled fields to null, and the age band of every age < 90."""
    nulls = tuple(f for f in _CONTROLLED if f not in rule.fields)
    bands = {age: rule.band_label(age) for age in range(AGE_TOP_CODE)}
    return nulls, bands


def flow_base(
    raw: RawFlowEvent | PlainFlowEvent,
    demo: Demographics,
    facts: EventFacts,
    *,
    policy_version: int,
    produced_at: str,
    window_id: str,
) -> dict[str, Any]:
    """The fields every audience's record of this event shares (in FlowRecord key order);
    `audience_records` copies it and applies one rule."""
    return {
        "record_type": FlowRecord.record_type,
        "schema_version": FlowRecord.schema_version,
        "site_code": raw.site_code,
        "event_id": None,
        "produced_at": produced_at,
        "policy_version": policy_version,
        "audience": None,
        "source_event_id": raw.event_id,
        "window_id": window_id,
        "surrogate_id": raw.surrogate_id,
        "event_type": raw.event_type,
        "occurred": None,
        "date_granularity": None,
        "unit_code": raw.unit_code,
        "unit_type": raw.unit_type,
        "prior_unit_code": raw.prior_unit_code,
        "prior_unit_type": raw.prior_unit_type,
        "patient_class": raw.patient_class,
        "acuity": raw.acuity,
        "arrival_mode": raw.arrival_mode,
        "age_band": None,
        "sex": demo.sex,
        "zip3": demo.zip3,
        "wait_minutes": facts.wait,
        "generalised": None,
    }


def audience_records(
    bases: Sequence[dict[str, Any]],
    events: Sequence[RawFlowEvent | PlainFlowEvent],
    facts: Sequence[EventFacts],
    rule: AudienceRule,
    audience: Audience,
) -> list[dict[str, Any]]:
    """One FlowRecord (as its to_dict() form) per event for `audience`, before k-anonymity.
    Everything that depends only on the rule is worked out once, outside the loop: this runs
    for every record the worker releases."""
    nulls, bands = _plan(rule)
    null_map = dict.fromkeys(nulls)
    want_occurred = "occurred" in rule.fields
    want_age = "age_band" in rule.fields
    top_band = f"{AGE_TOP_CODE}+"
    granularity = rule.date_granularity
    newborn_coarsens = granularity in (DateGranularity.DAY, DateGranularity.WEEK)
    month = DateGranularity.MONTH
    week = DateGranularity.WEEK
    # isoformat() prefix lengths, looked up once (None: minute, hour and week need more).
    cut: int | None = _ISO_CUT.get(granularity)
    month_cut: int | None = _ISO_CUT[month]
    c: int | None
    # The same text derived_event_id hashes after the source event id.
    suffix = f"|{audience}|{bases[0]['policy_version'] if bases else None}".encode()
    sha1 = hashlib.sha1
    variant = _VARIANT
    week_labels: dict[date, str] = {}
    out: list[dict[str, Any]] = []
    append = out.append
    for base, raw, f in zip(bases, events, facts, strict=True):
        record = base.copy()
        if null_map:
            record.update(null_map)
        if newborn_coarsens and f.born_that_day:
            # A newborn's admission day is their date of birth: never release a full date of
            # birth (164.514(b)(2)(i)(C)), so this record keeps only the month.
            g, c, generalised = month, month_cut, ["occurred"]
        else:
            g, c, generalised = granularity, cut, []
        if want_occurred:
            if c is not None:
                record["occurred"] = f.iso[:c]
            elif g is week:
                label = week_labels.get(f.event_day)
                if label is None:
                    label = week_labels[f.event_day] = generalise_timestamp(raw.occurred_at, g)
                record["occurred"] = label
            else:
                record["occurred"] = generalise_timestamp(raw.occurred_at, g)
            record["date_granularity"] = g
        if want_age:
            age = f.age
            if age is not None:
                record["age_band"] = bands.get(age, top_band)
        seed = f.id_seed or _NAMESPACE_BYTES + raw.event_id.encode()
        h = sha1(seed + suffix, usedforsecurity=False).hexdigest()
        record["event_id"] = f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant[h[16]]}{h[17:20]}-{h[20:32]}"
        record["audience"] = audience
        record["generalised"] = generalised
        append(record)
    return out


def for_audience(
    base: dict[str, Any],
    raw: RawFlowEvent | PlainFlowEvent,
    facts: EventFacts,
    rule: AudienceRule,
    audience: Audience,
) -> dict[str, Any]:
    """One FlowRecord (as its to_dict() form) for `audience`, before k-anonymity."""
    return audience_records([base], [raw], [facts], rule, audience)[0]


def transform_flow(
    raw: RawFlowEvent | PlainFlowEvent,
    demo: Demographics,
    rule: AudienceRule,
    *,
    audience: Audience,
    policy_version: int,
    produced_at: str,
    window_id: str,
    facts: EventFacts | None = None,
) -> dict[str, Any]:
    """One FlowRecord (as its to_dict() form) for `audience`, before k-anonymity."""
    f = facts or event_facts(raw, demo)
    base = flow_base(
        raw, demo, f, policy_version=policy_version, produced_at=produced_at, window_id=window_id
    )
    return for_audience(base, raw, f, rule, audience)
