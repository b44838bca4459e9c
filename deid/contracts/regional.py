"""Regional records: de-identified output of the DE-ID worker, read by the hub.

They hold no identifier of the 45 CFR 164.514(b)(2) list: no names, MRNs, contact data,
addresses below ZIP3, full dates of birth; patients appear only as random site surrogates
(where the policy lets them out at all). Generalised timestamps are strings whose precision
says the granularity the policy applied: "2026-11-23T19:10Z" (minute), "2026-11-23T19Z" (hour),
"2026-11-23" (day), "2026-W48" (ISO week), "2026-11" (month), "2026" (year). A value of null
with the field's name in `suppressed` means small-cell suppression withheld it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deid.contracts._base import Record, doc, register
from deid.contracts._codec import WireObject
from deid.contracts.vocabulary import (
    ArrivalMode,
    Audience,
    DateGranularity,
    FlowEventType,
    PatientClass,
    Sex,
    UnitType,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionalForecastPoint(WireObject):
    horizon_hours: int = field(metadata=doc("Hours ahead of as_of."))
    p10: float | None = field(default=None, metadata=doc("10th percentile of available beds."))
    p50: float | None = field(default=None, metadata=doc("Median of available beds."))
    p90: float | None = field(default=None, metadata=doc("90th percentile of available beds."))


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class CensusRecord(Record):
    """A unit's capacity, de-identified for one audience."""

    record_type = "regional.census"
    schema_version = 1

    policy_version: int = field(metadata=doc("Version of the signed policy applied."))
    audience: Audience = field(metadata=doc("Who this record is released to."))
    source_event_id: str = field(metadata=doc("event_id of the raw snapshot."))
    unit_code: str | None = field(default=None, metadata=doc("Site unit code (if released)."))
    unit_type: UnitType | None = field(default=None, metadata=doc("Unit type."))
    as_of: str | None = field(default=None, metadata=doc("Generalised timestamp."))
    licensed_beds: int | None = field(default=None, metadata=doc("Licensed beds."))
    staffed_beds: int | None = field(default=None, metadata=doc("Staffed beds."))
    surge_beds: int | None = field(default=None, metadata=doc("Surge beds open."))
    occupied_beds: int | None = field(default=None, metadata=doc("Occupied beds."))
    available_beds: int | None = field(default=None, metadata=doc("Available beds."))
    blocked_beds: int | None = field(default=None, metadata=doc("Blocked beds."))
    pending_admissions: int | None = field(default=None, metadata=doc("Waiting for a bed."))
    pending_discharges: int | None = field(default=None, metadata=doc("Expected discharges."))
    ed_waiting: int | None = field(default=None, metadata=doc("ED: waiting to be seen."))
    ed_in_treatment: int | None = field(default=None, metadata=doc("ED: being treated."))
    ed_boarding: int | None = field(default=None, metadata=doc("ED: boarding."))
    longest_boarding_minutes: int | None = field(default=None, metadata=doc("ED: longest."))
    boarding_p50_minutes: int | None = field(default=None, metadata=doc("ED: median boarding."))
    boarding_p90_minutes: int | None = field(default=None, metadata=doc("ED: p90 boarding."))
    offload_count: int | None = field(default=None, metadata=doc("Recent ambulance offloads."))
    offload_p50_minutes: int | None = field(default=None, metadata=doc("Median offload time."))
    offload_p90_minutes: int | None = field(default=None, metadata=doc("p90 offload time."))
    source: str | None = field(default=None, metadata=doc("Feed the counts come from."))
    last_message_at: str | None = field(default=None, metadata=doc("Generalised timestamp."))
    stale: bool | None = field(default=None, metadata=doc("True when the feed is overdue."))
    forecast: tuple[RegionalForecastPoint, ...] = field(
        default=(), metadata=doc("Forecast of available beds.")
    )
    suppressed: tuple[str, ...] = field(
        default=(), metadata=doc("Fields withheld by small-cell (or complementary) suppression.")
    )


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class FlowRecord(Record):
    """One patient movement, de-identified for one audience (k-anonymous in its window)."""

    record_type = "regional.flow"
    schema_version = 1

    policy_version: int = field(metadata=doc("Version of the signed policy applied."))
    audience: Audience = field(metadata=doc("Who this record is released to."))
    source_event_id: str = field(metadata=doc("event_id of the raw flow event."))
    window_id: str | None = field(default=None, metadata=doc("Release window (k applies)."))
    surrogate_id: str | None = field(
        default=None, metadata=doc("Random site surrogate (not derived from the MRN), if released.")
    )
    event_type: FlowEventType = field(metadata=doc("What happened."))
    occurred: str | None = field(default=None, metadata=doc("Generalised timestamp."))
    date_granularity: DateGranularity | None = field(
        default=None, metadata=doc("Granularity applied to `occurred`.")
    )
    unit_code: str | None = field(default=None, metadata=doc("Unit after the event."))
    unit_type: UnitType | None = field(default=None, metadata=doc("Type of unit."))
    prior_unit_code: str | None = field(default=None, metadata=doc("Unit before the event."))
    prior_unit_type: UnitType | None = field(default=None, metadata=doc("Type of prior unit."))
    patient_class: PatientClass | None = field(default=None, metadata=doc("Patient class."))
    acuity: int | None = field(default=None, metadata=doc("Triage acuity 1-5."))
    arrival_mode: ArrivalMode | None = field(default=None, metadata=doc("How the patient came."))
    age_band: str | None = field(
        default=None, metadata=doc("Age band at the event, e.g. '45-64'; 90 and over is '90+'.")
    )
    sex: Sex | None = field(default=None, metadata=doc("Administrative sex (null when withheld)."))
    zip3: str | None = field(
        default=None, metadata=doc("First 3 ZIP digits; '000' for areas under 20,000 people.")
    )
    wait_minutes: int | None = field(
        default=None, metadata=doc("Decision-to-admit to this event, whole minutes.")
    )
    generalised: tuple[str, ...] = field(
        default=(), metadata=doc("Quasi-identifiers generalised beyond the policy's first level.")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionalFeedStatus(WireObject):
    name: str = field(metadata=doc("Feed name."))
    source: str = field(metadata=doc("Feed kind."))
    last_message_at: str | None = field(default=None, metadata=doc("Generalised timestamp."))
    stale: bool = field(default=False, metadata=doc("True when overdue."))


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatRecord(Record):
    """A site agent's or DE-ID worker's heartbeat. Sent even without a valid policy."""

    record_type = "regional.heartbeat"
    schema_version = 1

    policy_version: int | None = field(
        default=None, metadata=doc("Policy in force at the worker; null = none (fail closed).")
    )
    audience: Audience = field(
        default=Audience.REGIONAL_OPERATIONS, metadata=doc("Always regional_operations.")
    )
    source_event_id: str | None = field(default=None, metadata=doc("Raw heartbeat event_id."))
    component: str = field(default="site_agent", metadata=doc("'site_agent' or 'deid_worker'."))
    agent_version: str = field(metadata=doc("Version of the component."))
    feeds: tuple[RegionalFeedStatus, ...] = field(default=(), metadata=doc("Feed status."))
    outbox_backlog: int | None = field(default=None, metadata=doc("Site outbox backlog."))
    counters: dict[str, int] = field(
        default_factory=dict, metadata=doc("deid_worker: processed, suppressed, held, ...")
    )


RegionalRecord = CensusRecord | FlowRecord | HeartbeatRecord
REGIONAL_RECORD_TYPES: tuple[type[CensusRecord | FlowRecord | HeartbeatRecord], ...] = (
    CensusRecord,
    FlowRecord,
    HeartbeatRecord,
)
