"""Patient flow events -> FlowRecord dicts for one audience (before k-anonymity).

Nothing is copied from the raw event by default: the output is built field by field from an
allow-list, so every one of the 18 identifier categories of 45 CFR 164.514(b)(2)(i) stays
behind (names, geography below ZIP3, dates other than as the policy generalises them, phone,
fax, e-mail, SSN, MRN, plan and account numbers, licence, vehicle and device ids, URLs, IPs,
biometrics, photos, any other unique code) and so does any free text. From the decrypted PHI
only three things are derived: the age band, administrative sex and ZIP3.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple

from deid.contracts.raw import PatientPHI, PlainFlowEvent, RawFlowEvent
from deid.contracts.regional import FlowRecord
from deid.contracts.vocabulary import Audience, DateGranularity, FlowEventType, Sex
from deid.policy import AGE_TOP_CODE, AudienceRule
from deid.transforms.census import derived_event_id
from deid.transforms.generalise import age_at, generalise_timestamp
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


def event_facts(raw: RawFlowEvent | PlainFlowEvent, demo: Demographics) -> EventFacts:
    occurred_at = raw.occurred_at
    event_day = occurred_at.date()
    birth = demo.birth_date
    age = age_at(birth, event_day) if birth is not None else None
    wait = None
    dta = raw.decision_to_admit_at
    if dta is not None and raw.event_type in _WAIT_EVENTS:
        minutes = int((occurred_at - dta).total_seconds() // 60)
        wait = minutes if minutes >= 0 else None
    return EventFacts(
        occurred_at.isoformat(),
        event_day,
        age if age is None or age >= 0 else None,
        wait,
        birth is not None and birth == event_day,
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
    `for_audience` copies it and applies one rule."""
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


def for_audience(
    base: dict[str, Any],
    raw: RawFlowEvent | PlainFlowEvent,
    facts: EventFacts,
    rule: AudienceRule,
    audience: Audience,
) -> dict[str, Any]:
    """One FlowRecord (as its to_dict() form) for `audience`, before k-anonymity."""
    nulls, bands = _plan(rule)
    fields = rule.fields
    out = base.copy()
    for name in nulls:
        out[name] = None
    granularity = rule.date_granularity
    generalised: list[str] = []
    if facts.born_that_day and granularity in (DateGranularity.DAY, DateGranularity.WEEK):
        # A newborn's admission day is their date of birth: never release a full date of
        # birth (164.514(b)(2)(i)(C)), so this record keeps only the month.
        granularity = DateGranularity.MONTH
        generalised.append("occurred")
    if "occurred" in fields:
        cut = _ISO_CUT.get(granularity)
        out["occurred"] = (
            facts.iso[:cut]
            if cut is not None
            else generalise_timestamp(raw.occurred_at, granularity)
        )
        out["date_granularity"] = granularity
    age = facts.age
    if age is not None and "age_band" in fields:
        out["age_band"] = bands.get(age, f"{AGE_TOP_CODE}+")
    out["event_id"] = derived_event_id(raw.event_id, audience, base["policy_version"])
    out["audience"] = audience
    out["generalised"] = generalised
    return out


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
