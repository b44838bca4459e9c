"""Raw site records: what a site agent writes to its own raw topic, inside the hospital.

Census snapshots and heartbeats hold no patient identifiers. Flow events are patient-level:
their identifying data travels only as `phi_ciphertext`, encrypted with the patient's own data
key (see `deid.keystore`), so destroying that key makes every copy unreadable. Their
operational timestamps are dates related to an individual too (45 CFR 164.514(b)(2)(i)(C)):
they stay on the raw topic and the transform generalises them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Self

from deid.contracts._base import Record, doc, register
from deid.contracts._codec import DecodeError, WireObject, decode_fields, encode_fields
from deid.contracts.vocabulary import ArrivalMode, FlowEventType, PatientClass, Sex, UnitType

_COUNT_FIELDS_CENSUS = (
    "licensed_beds",
    "staffed_beds",
    "surge_beds",
    "occupied_beds",
    "available_beds",
    "blocked_beds",
    "pending_admissions",
    "pending_discharges",
    "ed_waiting",
    "ed_in_treatment",
    "ed_boarding",
    "longest_boarding_minutes",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastPoint(WireObject):
    """Forecast of available beds `horizon_hours` ahead, as quantiles."""

    horizon_hours: int = field(metadata=doc("Hours ahead of as_of."))
    p10: float = field(metadata=doc("10th percentile of available beds."))
    p50: float = field(metadata=doc("Median of available beds."))
    p90: float = field(metadata=doc("90th percentile of available beds."))

    def __post_init__(self) -> None:
        if self.horizon_hours < 0 or not self.p10 <= self.p50 <= self.p90:
            raise DecodeError("forecast: horizon_hours >= 0 and p10 <= p50 <= p90")


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedStatus(WireObject):
    """One EHR feed of a site agent (an HL7 listener, a FHIR poller, ...)."""

    name: str = field(metadata=doc("Feed name configured at the site, e.g. 'adt-main'."))
    source: str = field(metadata=doc("Feed kind: 'hl7-adt', 'fhir', 'rtls', 'synthetic'."))
    last_message_at: datetime | None = field(default=None, metadata=doc("Last message, UTC."))
    stale: bool = field(default=False, metadata=doc("True when the feed is overdue."))
    messages_total: int = field(default=0, metadata=doc("Messages received since start."))
    errors_total: int = field(default=0, metadata=doc("Messages rejected since start."))


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RawCensusSnapshot(Record):
    """The state of one unit at `as_of`: beds, occupancy, ED pressure, feed provenance."""

    record_type = "raw.census_snapshot"
    schema_version = 1

    unit_code: str = field(metadata=doc("The site's unit code, e.g. '4W' or 'ED'."))
    unit_type: UnitType = field(metadata=doc("Unit type from the fixed vocabulary."))
    as_of: datetime = field(metadata=doc("When the counts were true, UTC."))
    licensed_beds: int = field(metadata=doc("Licensed beds."))
    staffed_beds: int = field(metadata=doc("Beds staffed now."))
    surge_beds: int = field(default=0, metadata=doc("Surge beds opened now (beyond staffed)."))
    occupied_beds: int = field(metadata=doc("Occupied beds."))
    available_beds: int = field(metadata=doc("Staffed beds free for a new patient."))
    blocked_beds: int = field(default=0, metadata=doc("Beds out of service or blocked."))
    pending_admissions: int = field(default=0, metadata=doc("Patients waiting for a bed."))
    pending_discharges: int = field(default=0, metadata=doc("Discharges expected soon."))
    ed_waiting: int | None = field(default=None, metadata=doc("ED: waiting to be seen."))
    ed_in_treatment: int | None = field(default=None, metadata=doc("ED: being treated."))
    ed_boarding: int | None = field(
        default=None, metadata=doc("ED: admitted, waiting for an inpatient bed.")
    )
    longest_boarding_minutes: int | None = field(
        default=None, metadata=doc("ED: longest current boarding time.")
    )
    boarding_minutes: tuple[int, ...] = field(
        default=(), metadata=doc("ED: current boarding time of each boarder (minutes).")
    )
    offload_minutes: tuple[int, ...] = field(
        default=(), metadata=doc("Recent ambulance offload times (minutes).")
    )
    source: str = field(default="unknown", metadata=doc("Feed the counts come from."))
    last_message_at: datetime | None = field(
        default=None, metadata=doc("Last feed message behind these counts, UTC.")
    )
    stale: bool = field(default=False, metadata=doc("True when the feed is overdue."))
    forecast: tuple[ForecastPoint, ...] = field(
        default=(), metadata=doc("Forecast of available beds.")
    )

    def __post_init__(self) -> None:
        Record.__post_init__(self)
        for name in _COUNT_FIELDS_CENSUS:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise DecodeError(f"{name}: must not be negative")
        if any(m < 0 for m in self.boarding_minutes) or any(m < 0 for m in self.offload_minutes):
            raise DecodeError("boarding_minutes/offload_minutes: must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientPHI(WireObject):
    """The plaintext inside `RawFlowEvent.phi_ciphertext`. Never on the wire in the clear
    (except the documented offline variant `raw.flow_event.plain`, for files at the site).
    Every field is optional: feeds differ in what they carry."""

    mrn: str | None = field(default=None, metadata=doc("Medical record number."))
    name: str | None = field(default=None, metadata=doc("Full name."))
    birth_date: date | None = field(default=None, metadata=doc("Date of birth."))
    sex: Sex | None = field(default=None, metadata=doc("Administrative sex."))
    address: str | None = field(default=None, metadata=doc("Street address."))
    city: str | None = field(default=None, metadata=doc("City."))
    state: str | None = field(default=None, metadata=doc("State."))
    zip: str | None = field(default=None, metadata=doc("ZIP code (5 or 9 digits)."))
    phone: str | None = field(default=None, metadata=doc("Telephone number."))
    email: str | None = field(default=None, metadata=doc("E-mail address."))
    ssn: str | None = field(default=None, metadata=doc("Social Security number."))
    free_text: str | None = field(default=None, metadata=doc("Any free text (notes, reason)."))
    extra: dict[str, Any] = field(
        default_factory=dict, metadata=doc("Other identifying fields a feed carries.")
    )

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "") -> Self:
        # Unknown keys are kept in `extra`, not dropped: they are still PHI and must stay
        # under the patient's key.
        kwargs = decode_fields(cls, data, path)
        known = set(kwargs) | {"extra"}
        extra = dict(kwargs.pop("extra", {}))
        extra.update({k: v for k, v in data.items() if k not in known and k not in extra})
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        out = encode_fields(self)
        return {k: v for k, v in out.items() if v is not None and v != {}}


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RawFlowEvent(Record):
    """One patient movement. Identifying data only inside `phi_ciphertext`."""

    record_type = "raw.flow_event"
    schema_version = 1

    event_type: FlowEventType = field(metadata=doc("What happened."))
    occurred_at: datetime = field(metadata=doc("When it happened (EVN-6 / PV1 times), UTC."))
    unit_code: str | None = field(default=None, metadata=doc("Unit after the event."))
    unit_type: UnitType | None = field(default=None, metadata=doc("Type of unit_code."))
    prior_unit_code: str | None = field(default=None, metadata=doc("Unit before the event."))
    prior_unit_type: UnitType | None = field(default=None, metadata=doc("Type of prior unit."))
    patient_class: PatientClass | None = field(default=None, metadata=doc("PV1-2 class."))
    acuity: int | None = field(default=None, metadata=doc("Triage acuity 1 (most) to 5."))
    arrival_mode: ArrivalMode | None = field(default=None, metadata=doc("How the patient came."))
    decision_to_admit_at: datetime | None = field(
        default=None, metadata=doc("Decision to admit, UTC (for boarding time).")
    )
    surrogate_id: str = field(
        metadata=doc("Random surrogate from the site registry; never derived from the MRN.")
    )
    merged_surrogate_id: str | None = field(
        default=None, metadata=doc("merge: the surrogate that was merged into this one.")
    )
    key_id: str = field(metadata=doc("The patient's data key that encrypts phi_ciphertext."))
    phi_ciphertext: str = field(
        metadata=doc("base64 AES-256-GCM ciphertext of the PatientPHI JSON (see keystore).")
    )
    source: str = field(default="unknown", metadata=doc("Feed: 'hl7-adt', 'fhir', ..."))

    def __post_init__(self) -> None:
        Record.__post_init__(self)
        if self.acuity is not None and not 1 <= self.acuity <= 5:
            raise DecodeError("acuity: 1 to 5 or null")
        if not self.surrogate_id or not self.key_id or not self.phi_ciphertext:
            raise DecodeError("surrogate_id, key_id, phi_ciphertext: must not be empty")


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class PlainFlowEvent(Record):
    """Offline-only variant of a flow event with the PHI in the clear (`phi`), for files that
    never leave the site: governance previews, audits, tests. The stream worker refuses it
    (dead letter at the site); `python -m deid transform` accepts it."""

    record_type = "raw.flow_event.plain"
    schema_version = 1

    event_type: FlowEventType = field(metadata=doc("What happened."))
    occurred_at: datetime = field(metadata=doc("When it happened, UTC."))
    unit_code: str | None = field(default=None, metadata=doc("Unit after the event."))
    unit_type: UnitType | None = field(default=None, metadata=doc("Type of unit_code."))
    prior_unit_code: str | None = field(default=None, metadata=doc("Unit before the event."))
    prior_unit_type: UnitType | None = field(default=None, metadata=doc("Type of prior unit."))
    patient_class: PatientClass | None = field(default=None, metadata=doc("PV1-2 class."))
    acuity: int | None = field(default=None, metadata=doc("Triage acuity 1 (most) to 5."))
    arrival_mode: ArrivalMode | None = field(default=None, metadata=doc("How the patient came."))
    decision_to_admit_at: datetime | None = field(
        default=None, metadata=doc("Decision to admit, UTC.")
    )
    surrogate_id: str = field(metadata=doc("Random surrogate from the site registry."))
    merged_surrogate_id: str | None = field(default=None, metadata=doc("merge: merged id."))
    phi: PatientPHI = field(metadata=doc("The patient's identifying data, in the clear."))
    source: str = field(default="unknown", metadata=doc("Feed: 'hl7-adt', 'fhir', ..."))

    def __post_init__(self) -> None:
        Record.__post_init__(self)
        if self.acuity is not None and not 1 <= self.acuity <= 5:
            raise DecodeError("acuity: 1 to 5 or null")


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RawHeartbeat(Record):
    """The site agent is alive: its version, its feeds, its outbox backlog."""

    record_type = "raw.heartbeat"
    schema_version = 1

    agent_version: str = field(metadata=doc("Site agent version."))
    feeds: tuple[FeedStatus, ...] = field(default=(), metadata=doc("Status of each feed."))
    outbox_backlog: int = field(default=0, metadata=doc("Records waiting in the outbox."))


RawRecord = RawCensusSnapshot | RawFlowEvent | RawHeartbeat | PlainFlowEvent
