"""The live census twin: units, beds and patients, changed by typed events. Pure and in memory.

The twin knows nothing of SQLite, Kafka or sockets. Each ``apply_*`` call either raises
:class:`ApplyError` *before* changing anything (the message is then quarantined and answered
``AE``), or changes the state and records what changed in :attr:`Twin.changes` so the caller can
persist exactly those rows and write the matching outbox records in the same transaction.

Authority (issue 3): the EHR is authoritative for where a patient is, the bed-status feed for the
state of a bed. ``location_source`` / ``bed_status_source`` name which of our inputs ("hl7" or
"fhir") plays which role; a disagreement is applied the authority's way and logged with both
sides as a :class:`Conflict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deid.contracts.vocabulary import ArrivalMode, FlowEventType, PatientClass
from site_agent.config import UnitConfig
from site_agent.hl7.ack import ErrorCode
from site_agent.hl7.adt import AdtEvent, Identity, Location, Visit
from site_agent.vocabulary import arrival_mode_from_hl7, is_ed, patient_class_from_hl7

__all__ = [
    "ACTIVE",
    "BLOCKING_STATUSES",
    "DISCHARGED",
    "PREADMIT",
    "ApplyError",
    "Bed",
    "Changes",
    "Conflict",
    "Flow",
    "Patient",
    "Twin",
    "Unit",
]

# HL7 table 0116: C closed, H housekeeping, I isolated, K contaminated take a free bed out of use.
BLOCKING_STATUSES = frozenset("CHIK")
ACTIVE = "active"
PREADMIT = "preadmit"
DISCHARGED = "discharged"
# How long ambulance offload times stay in the snapshot's "recent" list.
OFFLOAD_WINDOW = timedelta(hours=1)
OFFLOAD_KEEP = 200


class ApplyError(Exception):
    """Well-formed but cannot be applied (answered AE, stored in quarantine with the reason)."""

    def __init__(self, error: ErrorCode, text: str) -> None:
        super().__init__(text)
        self.error = error
        self.text = text


@dataclass(slots=True)
class Bed:
    unit_code: str
    room: str
    bed: str
    licensed: bool = True
    staffed: bool = True
    surge: bool = False
    adhoc: bool = False  # created because a feed used it (hallway, overflow), not configured
    status: str = "U"  # HL7 table 0116
    status_source: str = ""
    status_at: datetime | None = None
    occupant: str | None = None  # patient key (MRN)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.unit_code, self.room, self.bed)

    @property
    def occupied(self) -> bool:
        return self.occupant is not None or self.status == "O"

    @property
    def blocked(self) -> bool:
        return self.occupant is None and self.status in BLOCKING_STATUSES


@dataclass(slots=True)
class Unit:
    code: str
    unit_type: str
    name: str
    aliases: tuple[str, ...] = ()
    beds: dict[tuple[str, str], Bed] = field(default_factory=dict)
    origin: str = "config"  # or "fhir" for units learnt from Location resources
    last_source: str = ""  # feed behind the latest change (provenance of the figures)
    last_message_at: datetime | None = None
    offloads: list[tuple[datetime, int]] = field(default_factory=list)  # (at, minutes)

    @property
    def is_ed(self) -> bool:
        return is_ed(self.unit_type)


@dataclass(slots=True)
class Patient:
    mrn: str
    status: str = ACTIVE
    patient_class: str = ""  # PatientClass value
    unit_code: str | None = None
    room: str = ""
    bed: str = ""
    arrival_at: datetime | None = None
    admit_at: datetime | None = None
    acuity: int | None = None
    arrival_mode: str | None = None  # ArrivalMode value
    decision_to_admit_at: datetime | None = None
    ed_bed_at: datetime | None = None
    pending_unit: str | None = None
    pending_kind: str | None = None  # "admit" | "transfer"
    expected_admit_at: datetime | None = None
    pending_discharge: bool = False
    on_leave: bool = False
    location_source: str = ""
    visit_number: str = ""
    encounter_id: str = ""
    updated_at: datetime | None = None
    discharged_at: datetime | None = None
    # The state before the latest admit/transfer/discharge, so A11/A12/A13 can undo it.
    prev: dict[str, Any] | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "mrn": self.mrn,
            "status": self.status,
            "patient_class": self.patient_class,
            "unit_code": self.unit_code,
            "room": self.room,
            "bed": self.bed,
            "arrival_at": _iso(self.arrival_at),
            "admit_at": _iso(self.admit_at),
            "acuity": self.acuity,
            "arrival_mode": self.arrival_mode,
            "decision_to_admit_at": _iso(self.decision_to_admit_at),
            "ed_bed_at": _iso(self.ed_bed_at),
            "pending_unit": self.pending_unit,
            "pending_kind": self.pending_kind,
            "expected_admit_at": _iso(self.expected_admit_at),
            "pending_discharge": self.pending_discharge,
            "on_leave": self.on_leave,
            "location_source": self.location_source,
            "visit_number": self.visit_number,
            "encounter_id": self.encounter_id,
            "updated_at": _iso(self.updated_at),
            "discharged_at": _iso(self.discharged_at),
            "prev": self.prev,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Patient:
        p = cls(mrn=row["mrn"])
        for k, v in row.items():
            if k.endswith("_at") and v is not None:
                v = datetime.fromisoformat(v)
            setattr(p, k, v)
        return p

    def location_state(self) -> dict[str, Any]:
        """The part of the state that A11/A12/A13 restore."""
        return {
            "status": self.status,
            "patient_class": self.patient_class,
            "unit_code": self.unit_code,
            "room": self.room,
            "bed": self.bed,
            "decision_to_admit_at": _iso(self.decision_to_admit_at),
            "pending_discharge": self.pending_discharge,
        }


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


@dataclass(frozen=True, slots=True)
class Flow:
    """A patient movement to publish as a RawFlowEvent (PHI attached by the publisher)."""

    event_type: FlowEventType
    mrn: str
    occurred_at: datetime
    source: str
    unit_code: str | None = None
    prior_unit_code: str | None = None
    patient_class: str | None = None
    acuity: int | None = None
    arrival_mode: str | None = None
    decision_to_admit_at: datetime | None = None
    identity: Identity | None = None
    merged_mrn: str | None = None


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: str
    subject: str
    authoritative: dict[str, Any]
    other: dict[str, Any]
    resolution: str


@dataclass(slots=True)
class Changes:
    """What one message changed: the rows to persist and the records to write to the outbox."""

    patients: set[str] = field(default_factory=set)
    removed_patients: set[str] = field(default_factory=set)
    beds: set[tuple[str, str, str]] = field(default_factory=set)
    units: set[str] = field(default_factory=set)  # census changed
    unit_rows: set[str] = field(default_factory=set)  # unit definition/state to persist
    flows: list[Flow] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Twin:
    """Units, beds and patients of one site."""

    def __init__(
        self,
        units: Iterable[UnitConfig],
        *,
        location_source: str = "hl7",
        bed_status_source: str = "hl7",
    ) -> None:
        self.units: dict[str, Unit] = {}
        self._poc: dict[str, str] = {}
        self.patients: dict[str, Patient] = {}
        self._by_unit: dict[str, set[str]] = {}
        self._pending_by_unit: dict[str, set[str]] = {}
        self.location_source = location_source
        self.bed_status_source = bed_status_source
        self.changes = Changes()
        # When the current input reached the agent: the "when" of the figures' provenance.
        self.received_at: datetime | None = None
        for u in units:
            unit = Unit(code=u.code, unit_type=u.unit_type, name=u.name, aliases=u.aliases)
            for b in u.beds:
                unit.beds[(b.room, b.bed)] = Bed(
                    u.code, b.room, b.bed, licensed=b.licensed, staffed=b.staffed, surge=b.surge
                )
            self.add_unit(unit)

    # --- structure -------------------------------------------------------------------------

    def add_unit(self, unit: Unit) -> None:
        self.units[unit.code] = unit
        self._by_unit.setdefault(unit.code, set())
        self._pending_by_unit.setdefault(unit.code, set())
        for name in (unit.code, *unit.aliases):
            self._poc.setdefault(name.strip().upper(), unit.code)

    def unit_for(self, point_of_care: str) -> Unit | None:
        code = self._poc.get(point_of_care.strip().upper())
        return None if code is None else self.units[code]

    def take_changes(self) -> Changes:
        out = self.changes
        self.changes = Changes()
        return out

    def patients_in(self, unit_code: str) -> Iterator[Patient]:
        for mrn in self._by_unit.get(unit_code, ()):
            yield self.patients[mrn]

    def pending_for(self, unit_code: str) -> Iterator[Patient]:
        for mrn in self._pending_by_unit.get(unit_code, ()):
            yield self.patients[mrn]

    # --- low-level mutations (keep the indexes right) ---------------------------------------

    def _touch_unit(self, code: str | None, source: str, at: datetime) -> None:
        if code is None or code not in self.units:
            return
        unit = self.units[code]
        unit.last_source = source
        unit.last_message_at = self.received_at or at
        self.changes.units.add(code)

    def _bed(self, unit: Unit, room: str, bed: str, source: str) -> Bed | None:
        if not room and not bed:
            return None
        key = (room, bed)
        b = unit.beds.get(key)
        if b is None:
            # A feed placed a patient in a space we were not told about (hallway bed, overflow
            # chair): track it as an unlicensed, unstaffed surge space rather than refuse it.
            b = Bed(unit.code, room, bed, licensed=False, staffed=False, surge=True, adhoc=True)
            unit.beds[key] = b
            self.changes.notes.append(f"{source}: new space {unit.code}/{room}/{bed} (ad hoc)")
            self.changes.unit_rows.add(unit.code)
        return b

    def _vacate(self, p: Patient) -> None:
        if p.unit_code is not None:
            unit = self.units.get(p.unit_code)
            if unit is not None:
                b = unit.beds.get((p.room, p.bed))
                if b is not None and b.occupant == p.mrn:
                    b.occupant = None
                    self.changes.beds.add(b.key)
            self._by_unit.get(p.unit_code, set()).discard(p.mrn)
        p.unit_code = None
        p.room = ""
        p.bed = ""

    def _place(
        self, p: Patient, unit: Unit, room: str, bed: str, source: str, at: datetime
    ) -> None:
        """Move ``p`` to unit/room/bed, keeping bed occupancy consistent."""
        if p.unit_code == unit.code and p.room == room and p.bed == bed:
            return
        self._touch_unit(p.unit_code, source, at)
        self._vacate(p)
        b = self._bed(unit, room, bed, source)
        if b is not None:
            if b.occupant is not None and b.occupant != p.mrn:
                # Two patients in one bed: the newer message wins (it is the EHR's latest word),
                # the displaced patient stays on the unit without a bed until the EHR says more.
                other = self.patients.get(b.occupant)
                self.changes.conflicts.append(
                    Conflict(
                        kind="bed_double_booked",
                        subject=f"{unit.code}/{room}/{bed}",
                        authoritative={"patient": p.mrn, "source": source},
                        other={"patient": b.occupant},
                        resolution="newest placement kept; previous occupant left without a bed",
                    )
                )
                if other is not None:
                    other.room = ""
                    other.bed = ""
                    self.changes.patients.add(other.mrn)
            elif b.status in ("C", "K"):
                self.changes.conflicts.append(
                    Conflict(
                        kind="placed_in_closed_bed",
                        subject=f"{unit.code}/{room}/{bed}",
                        authoritative={"patient": p.mrn, "source": source},
                        other={"bed_status": b.status, "source": b.status_source},
                        resolution="patient location applied (EHR is authoritative for location)",
                    )
                )
            b.occupant = p.mrn
            self.changes.beds.add(b.key)
            if unit.is_ed and p.ed_bed_at is None:
                p.ed_bed_at = at
                if p.arrival_mode == ArrivalMode.AMBULANCE.value and p.arrival_at is not None:
                    # Ambulance patient offload time: arrival until the ED takes the patient
                    # into a treatment space (transfer of care).
                    minutes = max(0, int((at - p.arrival_at).total_seconds() // 60))
                    # Kept by receipt time: "recent" is judged on our clock, not the sender's.
                    unit.offloads.append((self.received_at or at, minutes))
                    del unit.offloads[:-OFFLOAD_KEEP]
                    self.changes.unit_rows.add(unit.code)
        p.unit_code = unit.code
        p.room = b.room if b is not None else ""
        p.bed = b.bed if b is not None else ""
        self._by_unit[unit.code].add(p.mrn)
        self._touch_unit(unit.code, source, at)

    def _set_pending(self, p: Patient, unit: Unit | None, kind: str | None) -> None:
        if p.pending_unit is not None:
            self._pending_by_unit.get(p.pending_unit, set()).discard(p.mrn)
            self.changes.units.add(p.pending_unit)
        p.pending_unit = unit.code if unit is not None else None
        p.pending_kind = kind if unit is not None else None
        if unit is not None:
            self._pending_by_unit[unit.code].add(p.mrn)
            self.changes.units.add(unit.code)

    def _drop(self, p: Patient) -> None:
        """Forget a patient entirely (cancelled registration, cancelled pre-admission)."""
        self._vacate(p)
        self._set_pending(p, None, None)
        del self.patients[p.mrn]
        self.changes.removed_patients.add(p.mrn)
        self.changes.patients.discard(p.mrn)

    def _save(self, p: Patient, at: datetime) -> None:
        p.updated_at = at
        self.changes.patients.add(p.mrn)
        self.changes.removed_patients.discard(p.mrn)

    def _flow(
        self,
        event_type: FlowEventType,
        p: Patient,
        at: datetime,
        source: str,
        identity: Identity | None,
        prior_unit: str | None = None,
        merged: str | None = None,
    ) -> None:
        self.changes.flows.append(
            Flow(
                event_type=event_type,
                mrn=p.mrn,
                occurred_at=at,
                source=source,
                unit_code=p.unit_code,
                prior_unit_code=prior_unit,
                patient_class=p.patient_class or None,
                acuity=p.acuity,
                arrival_mode=p.arrival_mode,
                decision_to_admit_at=p.decision_to_admit_at,
                identity=identity,
                merged_mrn=merged,
            )
        )

    # --- authority checks --------------------------------------------------------------------

    def _location_allowed(self, p: Patient, source_kind: str, target: str, feed: str) -> bool:
        if source_kind == self.location_source or p.location_source != self.location_source:
            return True
        current = f"{p.unit_code}/{p.room}/{p.bed}"
        if current == target:
            return True
        self.changes.conflicts.append(
            Conflict(
                kind="patient_location",
                subject=p.mrn,
                authoritative={"source": p.location_source, "location": current},
                other={"source": source_kind, "feed": feed, "location": target},
                resolution=f"kept the {self.location_source} location (authoritative)",
            )
        )
        return False

    # --- HL7 v2 ADT ---------------------------------------------------------------------------

    def _resolve(self, loc: Location, what: str, required: bool) -> Unit | None:
        if not loc.unit:
            if required:
                raise ApplyError(ErrorCode.REQUIRED_FIELD_MISSING, f"{what}: point of care missing")
            return None
        unit = self.unit_for(loc.unit)
        if unit is None:
            raise ApplyError(
                ErrorCode.TABLE_VALUE_NOT_FOUND,
                f"{what}: unknown point of care {loc.unit[:20]!r} (not in the site configuration)",
            )
        return unit

    def _known(self, mrn: str, *statuses: str) -> Patient:
        p = self.patients.get(mrn)
        if p is None or (statuses and p.status not in statuses):
            state = "unknown" if p is None else f"in state {p.status}"
            raise ApplyError(ErrorCode.UNKNOWN_KEY, f"patient {state}")
        return p

    def apply_adt(self, ev: AdtEvent, source_kind: str = "hl7") -> None:
        """Apply one ADT event. Raises ApplyError before changing anything if it cannot."""
        handler = _HANDLERS[ev.trigger]
        handler(self, ev, source_kind)

    def _class(self, v: Visit, default: PatientClass | None) -> str:
        pc = patient_class_from_hl7(v.patient_class, v.patient_type) or default
        return pc.value if pc is not None else ""

    def _update_common(self, p: Patient, v: Visit) -> None:
        if v.acuity is not None:
            p.acuity = v.acuity
        mode = arrival_mode_from_hl7(v.arrival_mode)
        if mode is not None:
            p.arrival_mode = mode.value
        if v.visit_number:
            p.visit_number = v.visit_number

    def _a01_admit(self, ev: AdtEvent, src: str) -> None:
        v = ev.visit or Visit()
        ident = _ident(ev)
        unit = self._resolve(v.location, "PV1-3", required=True)
        assert unit is not None  # noqa: S101 - required=True raises otherwise
        at = ev.occurred_at
        p = self.patients.get(ident.mrn)
        target = f"{unit.code}/{v.location.room}/{v.location.bed}"
        if p is not None and not self._location_allowed(p, src, target, ev.feed):
            return
        prior_unit = None
        if p is None or p.status != ACTIVE:
            p = p or Patient(mrn=ident.mrn)
            p.prev = None if p.status == PREADMIT else p.location_state()
            p.status = ACTIVE
            p.arrival_at = v.admit_at or at
            p.discharged_at = None
            self.patients[p.mrn] = p
        else:
            prior_unit = p.unit_code
            p.prev = p.location_state()
        was_ed = prior_unit is not None and self.units[prior_unit].is_ed
        p.patient_class = self._class(v, PatientClass.INPATIENT)
        p.admit_at = v.admit_at or at
        self._update_common(p, v)
        if (was_ed or unit.is_ed) and p.decision_to_admit_at is None:
            # Admitted from the ED: the admit is the decision to admit if no A14 came first.
            p.decision_to_admit_at = at
        if p.pending_unit is not None and (
            p.pending_kind == "admit" or p.pending_unit == unit.code
        ):
            self._set_pending(p, None, None)
        p.location_source = src
        self._place(p, unit, v.location.room, v.location.bed, ev.feed, at)
        self._save(p, at)
        self._flow(FlowEventType.ADMIT, p, at, ev.feed, ident, prior_unit)

    def _a02_transfer(self, ev: AdtEvent, src: str) -> None:
        v = ev.visit or Visit()
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        unit = self._resolve(v.location, "PV1-3", required=True)
        assert unit is not None  # noqa: S101
        if not self._location_allowed(
            p, src, f"{unit.code}/{v.location.room}/{v.location.bed}", ev.feed
        ):
            return
        at = ev.occurred_at
        prior = p.unit_code
        p.prev = p.location_state()
        self._update_common(p, v)
        cls = self._class(v, None)
        if cls:
            p.patient_class = cls
        if p.pending_unit == unit.code:
            self._set_pending(p, None, None)
        p.location_source = src
        self._place(p, unit, v.location.room, v.location.bed, ev.feed, at)
        self._save(p, at)
        self._flow(FlowEventType.TRANSFER, p, at, ev.feed, ident, prior)

    def _a03_discharge(self, ev: AdtEvent, src: str) -> None:
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        at = (ev.visit.discharge_at if ev.visit else None) or ev.occurred_at
        self._discharge(p, at, ev.feed, ident, src)

    def _discharge(
        self, p: Patient, at: datetime, feed: str, ident: Identity | None, src: str
    ) -> None:
        prior = p.unit_code
        p.prev = p.location_state()
        self._touch_unit(prior, feed, at)
        self._vacate(p)
        self._set_pending(p, None, None)
        p.status = DISCHARGED
        p.discharged_at = at
        p.pending_discharge = False
        p.on_leave = False
        p.location_source = src
        self._save(p, at)
        self._flow(FlowEventType.DISCHARGE, p, at, feed, ident, prior)

    def _a04_register(self, ev: AdtEvent, src: str) -> None:
        v = ev.visit or Visit()
        ident = _ident(ev)
        pc = patient_class_from_hl7(v.patient_class, v.patient_type)
        unit = self._resolve_or_ignore(v.location, pc)
        if unit is None:
            return
        at = ev.occurred_at
        p = self.patients.get(ident.mrn)
        if p is not None and p.status == ACTIVE:
            if not self._location_allowed(
                p, src, f"{unit.code}/{v.location.room}/{v.location.bed}", ev.feed
            ):
                return
            self.changes.notes.append(f"{ev.feed}: A04 for an active patient treated as update")
            prior: str | None = p.unit_code
        else:
            p = Patient(mrn=ident.mrn, arrival_at=v.admit_at or at)
            self.patients[p.mrn] = p
            prior = None
        default = PatientClass.EMERGENCY if unit.is_ed else PatientClass.OUTPATIENT
        p.patient_class = (pc or default).value
        self._update_common(p, v)
        p.location_source = src
        self._place(p, unit, v.location.room, v.location.bed, ev.feed, at)
        self._save(p, at)
        self._flow(FlowEventType.REGISTER, p, at, ev.feed, ident, prior)

    def _resolve_or_ignore(self, loc: Location, pc: PatientClass | None) -> Unit | None:
        """Registrations at clinics outside the twin are normal: ignore outpatient ones."""
        try:
            return self._resolve(loc, "PV1-3", required=True)
        except ApplyError:
            if pc is PatientClass.OUTPATIENT:
                self.changes.notes.append(f"outpatient registration at {loc.unit!r} ignored")
                return None
            raise

    def _a05_preadmit(self, ev: AdtEvent, src: str) -> None:
        v = ev.visit or Visit()
        ident = _ident(ev)
        unit = self._resolve(v.pending_location or v.location, "PV1-3", required=False)
        p = self.patients.get(ident.mrn)
        if p is not None and p.status == ACTIVE:
            raise ApplyError(
                ErrorCode.DUPLICATE_KEY, "pre-admission for a patient already in house"
            )
        at = ev.occurred_at
        p = p or Patient(mrn=ident.mrn)
        p.status = PREADMIT
        p.patient_class = PatientClass.PREADMIT.value
        p.expected_admit_at = v.expected_admit_at or v.admit_at
        self._update_common(p, v)
        self.patients[p.mrn] = p
        self._set_pending(p, unit, "admit")
        self._save(p, at)
        self._flow(FlowEventType.PREADMIT, p, at, ev.feed, ident)

    def _a06_to_inpatient(self, ev: AdtEvent, src: str) -> None:
        self._class_change(ev, src, PatientClass.INPATIENT)

    def _a07_to_outpatient(self, ev: AdtEvent, src: str) -> None:
        self._class_change(ev, src, PatientClass.OUTPATIENT)

    def _class_change(self, ev: AdtEvent, src: str, default: PatientClass) -> None:
        v = ev.visit or Visit()
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        unit = self._resolve(v.location, "PV1-3", required=False)
        at = ev.occurred_at
        prior = p.unit_code
        p.patient_class = self._class(v, default)
        in_ed = p.unit_code is not None and self.units[p.unit_code].is_ed
        if (
            p.patient_class == PatientClass.INPATIENT.value
            and in_ed
            and p.decision_to_admit_at is None
        ):
            p.decision_to_admit_at = at
        elif p.patient_class != PatientClass.INPATIENT.value and in_ed:
            p.decision_to_admit_at = None
        self._update_common(p, v)
        self._touch_unit(prior, ev.feed, at)
        if unit is not None and self._location_allowed(
            p, src, f"{unit.code}/{v.location.room}/{v.location.bed}", ev.feed
        ):
            p.location_source = src
            self._place(p, unit, v.location.room, v.location.bed, ev.feed, at)
        self._save(p, at)
        self._flow(FlowEventType.CLASS_CHANGE, p, at, ev.feed, ident, prior)

    def _a08_update(self, ev: AdtEvent, src: str) -> None:
        v = ev.visit or Visit()
        ident = _ident(ev)
        p = self.patients.get(ident.mrn)
        at = ev.occurred_at
        if p is None or p.status == DISCHARGED:
            # An update for someone the twin does not hold: nothing to apply unless it places
            # an emergency/inpatient encounter on one of our units (a late join).
            pc = patient_class_from_hl7(v.patient_class, v.patient_type)
            if (
                not v.location
                or pc is None
                or pc in (PatientClass.OUTPATIENT, PatientClass.PREADMIT)
            ):
                self.changes.notes.append("A08 for a patient not in house: stored, nothing to do")
                return
            unit = self._resolve(v.location, "PV1-3", required=True)
            assert unit is not None  # noqa: S101
            p = Patient(mrn=ident.mrn, arrival_at=v.admit_at or at, patient_class=pc.value)
            self.patients[p.mrn] = p
        else:
            unit = self._resolve(v.location, "PV1-3", required=False) if v.location else None
        prior = p.unit_code
        cls = self._class(v, None)
        if cls and p.status == ACTIVE:
            p.patient_class = cls
        self._update_common(p, v)
        if p.unit_code is not None:
            self.changes.units.add(p.unit_code)
        if unit is not None and p.status == ACTIVE:
            target = f"{unit.code}/{v.location.room}/{v.location.bed}"
            if self._location_allowed(p, src, target, ev.feed):
                p.location_source = src
                self._place(p, unit, v.location.room, v.location.bed, ev.feed, at)
        self._save(p, at)
        self._flow(FlowEventType.UPDATE, p, at, ev.feed, ident, prior)

    def _restore(self, p: Patient, state: dict[str, Any], feed: str, at: datetime) -> None:
        p.status = state["status"]
        p.patient_class = state["patient_class"]
        dta = state.get("decision_to_admit_at")
        p.decision_to_admit_at = datetime.fromisoformat(dta) if dta else None
        p.pending_discharge = bool(state.get("pending_discharge"))
        code = state.get("unit_code")
        unit = self.units.get(code) if code else None
        if unit is None or p.status != ACTIVE:
            self._touch_unit(p.unit_code, feed, at)
            self._vacate(p)
            return
        room, bed = state.get("room", ""), state.get("bed", "")
        b = unit.beds.get((room, bed))
        if b is not None and b.occupant not in (None, p.mrn):
            # The bed went to someone else meanwhile: back to the unit, without a bed.
            self.changes.notes.append(f"{unit.code}/{room}/{bed} taken; restored without a bed")
            room, bed = "", ""
        self._place(p, unit, room, bed, feed, at)

    def _a11_cancel_admit(self, ev: AdtEvent, src: str) -> None:
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        at = ev.occurred_at
        prior = p.unit_code
        if p.prev is not None and p.prev.get("status") == ACTIVE:
            # Cancelling an admission from the ED puts the patient back where they were.
            self._restore(p, p.prev, ev.feed, at)
            p.prev = None
            self._save(p, at)
        else:
            # Cancelling a registration or a direct admission: the visit never happened.
            self._touch_unit(p.unit_code, ev.feed, at)
            self._drop(p)
        self._flow(FlowEventType.CANCEL_ADMIT, p, at, ev.feed, ident, prior)

    def _a12_cancel_transfer(self, ev: AdtEvent, src: str) -> None:
        v = ev.visit or Visit()
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        at = ev.occurred_at
        prior = p.unit_code
        # A12 carries the location to return to in PV1-3 (v2.5 §3.3.12); else undo our record.
        unit = self._resolve(v.location, "PV1-3", required=False) if v.location else None
        if unit is not None:
            self._place(p, unit, v.location.room, v.location.bed, ev.feed, at)
        elif p.prev is not None:
            self._restore(p, p.prev, ev.feed, at)
        else:
            raise ApplyError(ErrorCode.UNKNOWN_KEY, "no transfer to cancel for this patient")
        p.prev = None
        p.location_source = src
        self._save(p, at)
        self._flow(FlowEventType.CANCEL_TRANSFER, p, at, ev.feed, ident, prior)

    def _a13_cancel_discharge(self, ev: AdtEvent, src: str) -> None:
        v = ev.visit or Visit()
        ident = _ident(ev)
        p = self._known(ident.mrn, DISCHARGED)
        at = ev.occurred_at
        unit = self._resolve(v.location, "PV1-3", required=False) if v.location else None
        if unit is not None:
            p.status = ACTIVE
            self._place(p, unit, v.location.room, v.location.bed, ev.feed, at)
        elif p.prev is not None:
            self._restore(p, p.prev, ev.feed, at)
        else:
            raise ApplyError(ErrorCode.UNKNOWN_KEY, "no discharge to cancel for this patient")
        p.status = ACTIVE
        p.discharged_at = None
        p.prev = None
        p.location_source = src
        self._save(p, at)
        self._flow(FlowEventType.CANCEL_DISCHARGE, p, at, ev.feed, ident)

    def _a14_pending_admit(self, ev: AdtEvent, src: str) -> None:
        v = ev.visit or Visit()
        ident = _ident(ev)
        unit = self._resolve(v.pending_location or v.location, "PV1-42/PV1-3", required=False)
        at = ev.occurred_at
        p = self.patients.get(ident.mrn)
        if p is None or p.status == DISCHARGED:
            p = p or Patient(mrn=ident.mrn)
            p.status = PREADMIT
            p.patient_class = PatientClass.PREADMIT.value
            self.patients[p.mrn] = p
        p.expected_admit_at = v.expected_admit_at or p.expected_admit_at
        in_ed = p.status == ACTIVE and p.unit_code is not None and self.units[p.unit_code].is_ed
        if in_ed and p.decision_to_admit_at is None:
            # The bed request from the ED is the decision to admit: boarding starts now.
            p.decision_to_admit_at = at
            self._touch_unit(p.unit_code, ev.feed, at)
        self._update_common(p, v)
        self._set_pending(p, unit, "admit")
        self._save(p, at)
        self._flow(FlowEventType.PENDING_ADMIT, p, at, ev.feed, ident)

    def _a15_pending_transfer(self, ev: AdtEvent, src: str) -> None:
        v = ev.visit or Visit()
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        unit = self._resolve(v.pending_location or v.location, "PV1-42", required=True)
        at = ev.occurred_at
        self._set_pending(p, unit, "transfer")
        self._save(p, at)
        self._flow(FlowEventType.PENDING_TRANSFER, p, at, ev.feed, ident)

    def _a16_pending_discharge(self, ev: AdtEvent, src: str) -> None:
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        at = ev.occurred_at
        p.pending_discharge = True
        self._touch_unit(p.unit_code, ev.feed, at)
        self._save(p, at)
        self._flow(FlowEventType.PENDING_DISCHARGE, p, at, ev.feed, ident)

    def _a17_swap(self, ev: AdtEvent, src: str) -> None:
        ident = _ident(ev)
        other_ident = ev.other_identity
        if other_ident is None:
            raise ApplyError(ErrorCode.SEGMENT_SEQUENCE, "A17 needs two patients")
        a = self._known(ident.mrn, ACTIVE)
        b = self._known(other_ident.mrn, ACTIVE)
        if a.unit_code is None or b.unit_code is None:
            raise ApplyError(ErrorCode.UNKNOWN_KEY, "A17: both patients must have a location")
        at = ev.occurred_at
        loc_a = (self.units[a.unit_code], a.room, a.bed)
        loc_b = (self.units[b.unit_code], b.room, b.bed)
        self._vacate(a)
        self._vacate(b)
        self._place(a, *loc_b, ev.feed, at)
        self._place(b, *loc_a, ev.feed, at)
        for p, who, prior in ((a, ident, loc_a[0].code), (b, other_ident, loc_b[0].code)):
            p.location_source = src
            self._save(p, at)
            self._flow(FlowEventType.BED_SWAP, p, at, ev.feed, who, prior)

    def _a20_bed_status(self, ev: AdtEvent, src: str) -> None:
        loc = ev.bed_location or Location()
        unit = self._resolve(loc, "NPU-1", required=True)
        assert unit is not None  # noqa: S101
        if not loc.room and not loc.bed:
            raise ApplyError(ErrorCode.REQUIRED_FIELD_MISSING, "NPU-1: room/bed missing")
        at = ev.occurred_at
        self.set_bed_status(unit, loc.room, loc.bed, ev.bed_status, src, ev.feed, at)

    def set_bed_status(
        self, unit: Unit, room: str, bed: str, status: str, src: str, feed: str, at: datetime
    ) -> None:
        b = self._bed(unit, room, bed, feed)
        assert b is not None  # noqa: S101 - room/bed checked by the callers
        subject = f"{unit.code}/{room}/{bed}"
        if src != self.bed_status_source and b.status_source == self.bed_status_source:
            if b.status != status:
                self.changes.conflicts.append(
                    Conflict(
                        kind="bed_status",
                        subject=subject,
                        authoritative={"source": b.status_source, "status": b.status},
                        other={"source": src, "feed": feed, "status": status},
                        resolution=f"kept the {self.bed_status_source} bed status (authoritative)",
                    )
                )
            return
        if b.occupant is not None and status != "O" and status != "I":
            self.changes.conflicts.append(
                Conflict(
                    kind="bed_status_vs_location",
                    subject=subject,
                    authoritative={"source": src, "feed": feed, "status": status},
                    other={"source": "location", "patient": b.occupant},
                    resolution="bed status stored; the patient stays (EHR owns location)",
                )
            )
        elif b.occupant is None and status == "O":
            self.changes.conflicts.append(
                Conflict(
                    kind="bed_status_vs_location",
                    subject=subject,
                    authoritative={"source": src, "feed": feed, "status": status},
                    other={"source": "location", "patient": None},
                    resolution="bed counted occupied (bed feed owns bed state)",
                )
            )
        b.status = status
        b.status_source = src
        b.status_at = at
        self.changes.beds.add(b.key)
        self._touch_unit(unit.code, feed, at)

    def _a21_leave_out(self, ev: AdtEvent, src: str) -> None:
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        at = ev.occurred_at
        p.on_leave = True
        self._touch_unit(p.unit_code, ev.feed, at)
        self._save(p, at)
        self._flow(FlowEventType.LEAVE_OF_ABSENCE, p, at, ev.feed, ident)

    def _a22_leave_return(self, ev: AdtEvent, src: str) -> None:
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        at = ev.occurred_at
        p.on_leave = False
        self._touch_unit(p.unit_code, ev.feed, at)
        self._save(p, at)
        self._flow(FlowEventType.RETURN_FROM_LOA, p, at, ev.feed, ident)

    def _a25_cancel_pending_discharge(self, ev: AdtEvent, src: str) -> None:
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        at = ev.occurred_at
        p.pending_discharge = False
        self._touch_unit(p.unit_code, ev.feed, at)
        self._save(p, at)
        self._flow(FlowEventType.CANCEL_PENDING_DISCHARGE, p, at, ev.feed, ident)

    def _a26_cancel_pending_transfer(self, ev: AdtEvent, src: str) -> None:
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE)
        at = ev.occurred_at
        self._set_pending(p, None, None)
        self._save(p, at)
        self._flow(FlowEventType.CANCEL_PENDING_TRANSFER, p, at, ev.feed, ident)

    def _a27_cancel_pending_admit(self, ev: AdtEvent, src: str) -> None:
        ident = _ident(ev)
        p = self._known(ident.mrn, ACTIVE, PREADMIT)
        at = ev.occurred_at
        if p.status == PREADMIT:
            self._drop(p)
        else:
            self._set_pending(p, None, None)
            if p.patient_class != PatientClass.INPATIENT.value:
                p.decision_to_admit_at = None
            self._touch_unit(p.unit_code, ev.feed, at)
            self._save(p, at)
        self._flow(FlowEventType.CANCEL_PENDING_ADMIT, p, at, ev.feed, ident)

    def _a40_merge(self, ev: AdtEvent, src: str) -> None:
        ident = _ident(ev)
        old = self._known(ev.prior_mrn)
        at = ev.occurred_at
        keep = self.patients.get(ident.mrn)
        if keep is None:
            # Re-key the prior record under the surviving MRN.
            unit = self.units.get(old.unit_code) if old.unit_code else None
            room, bed, pending, kind = old.room, old.bed, old.pending_unit, old.pending_kind
            self._drop(old)
            old.mrn = ident.mrn
            old.unit_code, old.room, old.bed = None, "", ""
            old.pending_unit = None
            self.patients[old.mrn] = old
            if unit is not None:
                self._place(old, unit, room, bed, ev.feed, at)
            if pending is not None:
                self._set_pending(old, self.units.get(pending), kind)
            keep = old
        else:
            # Both exist: the survivor keeps its own state; if it has no location it takes the
            # merged record's.
            if keep.unit_code is None and old.unit_code is not None and old.status == ACTIVE:
                unit = self.units[old.unit_code]
                room, bed = old.room, old.bed
                self._vacate(old)
                keep.status = ACTIVE
                self._place(keep, unit, room, bed, ev.feed, at)
            self._drop(old)
        self._save(keep, at)
        self._flow(FlowEventType.MERGE, keep, at, ev.feed, ident, merged=ev.prior_mrn)

    # --- FHIR and housekeeping ---------------------------------------------------------------

    def apply_encounter(
        self,
        *,
        mrn: str,
        status: str,
        patient_class: PatientClass | None,
        location: tuple[Unit, str, str] | None,
        planned: Unit | None,
        start: datetime | None,
        end: datetime | None,
        encounter_id: str,
        feed: str,
        at: datetime,
        source_kind: str = "fhir",
    ) -> None:
        """Bring one patient to the state a FHIR R5 Encounter describes, emitting the same
        flow events an ADT feed would have. ``status`` is Encounter.status (R5 value set)."""
        ident = Identity(mrn=mrn)
        p = self.patients.get(mrn)
        if status in ("cancelled", "entered-in-error"):
            if p is None or p.status == DISCHARGED:
                return
            prior = p.unit_code
            self._touch_unit(prior, feed, at)
            self._drop(p)
            self._flow(FlowEventType.CANCEL_ADMIT, p, at, feed, ident, prior)
            return
        if status == "planned":
            if p is not None and p.status == ACTIVE:
                if planned is not None and p.pending_unit != planned.code:
                    self._set_pending(p, planned, "transfer")
                    self._save(p, at)
                    self._flow(FlowEventType.PENDING_TRANSFER, p, at, feed, ident)
                return
            new = p is None or p.status != PREADMIT
            p = p or Patient(mrn=mrn)
            p.status = PREADMIT
            p.patient_class = PatientClass.PREADMIT.value
            p.expected_admit_at = start
            p.encounter_id = encounter_id
            self.patients[mrn] = p
            self._set_pending(p, planned, "admit")
            self._save(p, at)
            if new:
                self._flow(FlowEventType.PREADMIT, p, at, feed, ident)
            return
        if status in ("discharged", "completed", "discontinued"):
            if p is None or p.status != ACTIVE:
                return  # nothing in house to discharge (or already done)
            self._discharge(p, end or at, feed, ident, source_kind)
            return
        if status not in ("in-progress", "on-hold"):
            return  # "unknown": nothing we can act on
        target = None if location is None else f"{location[0].code}/{location[1]}/{location[2]}"
        if p is None or p.status != ACTIVE:
            if location is None:
                raise ApplyError(
                    ErrorCode.REQUIRED_FIELD_MISSING,
                    "Encounter.location: an in-progress encounter needs an active location",
                )
            unit = location[0]
            p = p or Patient(mrn=mrn)
            p.status = ACTIVE
            p.arrival_at = start or at
            p.discharged_at = None
            default = PatientClass.EMERGENCY if unit.is_ed else PatientClass.INPATIENT
            p.patient_class = (patient_class or default).value
            p.encounter_id = encounter_id
            self.patients[mrn] = p
            if p.patient_class != PatientClass.EMERGENCY.value:
                p.admit_at = start or at
            self._set_pending(p, None, None)
            p.location_source = source_kind
            self._place(p, unit, location[1], location[2], feed, at)
            p.on_leave = status == "on-hold"
            self._save(p, at)
            kind = FlowEventType.REGISTER if unit.is_ed else FlowEventType.ADMIT
            self._flow(kind, p, at, feed, ident)
            return
        prior = p.unit_code
        changed = False
        if patient_class is not None and patient_class.value != p.patient_class:
            p.patient_class = patient_class.value
            in_ed = prior is not None and self.units[prior].is_ed
            if patient_class is PatientClass.INPATIENT and in_ed and p.decision_to_admit_at is None:
                p.decision_to_admit_at = at
            self._touch_unit(prior, feed, at)
            self._save(p, at)
            self._flow(FlowEventType.CLASS_CHANGE, p, at, feed, ident, prior)
            changed = True
        if (
            location is not None
            and target != f"{p.unit_code}/{p.room}/{p.bed}"
            and self._location_allowed(p, source_kind, target or "", feed)
        ):
            p.prev = p.location_state()
            p.location_source = source_kind
            self._place(p, location[0], location[1], location[2], feed, at)
            self._save(p, at)
            self._flow(FlowEventType.TRANSFER, p, at, feed, ident, prior)
            changed = True
        on_hold = status == "on-hold"
        if on_hold != p.on_leave:
            p.on_leave = on_hold
            self._touch_unit(p.unit_code, feed, at)
            self._save(p, at)
            kind = FlowEventType.LEAVE_OF_ABSENCE if on_hold else FlowEventType.RETURN_FROM_LOA
            self._flow(kind, p, at, feed, ident)
            changed = True
        if planned is not None and planned.code != p.pending_unit and planned.code != p.unit_code:
            self._set_pending(p, planned, "transfer")
            self._save(p, at)
            self._flow(FlowEventType.PENDING_TRANSFER, p, at, feed, ident)
            changed = True
        if not changed:
            self.changes.notes.append(f"{feed}: Encounter {encounter_id} changes nothing")

    def purge_discharged(self, before: datetime) -> int:
        """Forget discharged patients older than ``before`` (A13 can no longer reach them)."""
        old = [
            p
            for p in self.patients.values()
            if p.status == DISCHARGED and p.discharged_at is not None and p.discharged_at < before
        ]
        for p in old:
            self._drop(p)
        return len(old)

    def relink(self) -> None:
        """Rebuild the indexes and bed occupancy from the patients (after a restore)."""
        for s in self._by_unit.values():
            s.clear()
        for s in self._pending_by_unit.values():
            s.clear()
        for p in self.patients.values():
            if p.unit_code is not None and p.unit_code in self.units:
                self._by_unit[p.unit_code].add(p.mrn)
            if p.pending_unit is not None and p.pending_unit in self.units:
                self._pending_by_unit[p.pending_unit].add(p.mrn)


def _ident(ev: AdtEvent) -> Identity:
    if ev.identity is None:  # the parser guarantees a PID for patient events
        raise ApplyError(ErrorCode.SEGMENT_SEQUENCE, "PID segment missing")
    return ev.identity


_HANDLERS = {
    "A01": Twin._a01_admit,
    "A02": Twin._a02_transfer,
    "A03": Twin._a03_discharge,
    "A04": Twin._a04_register,
    "A05": Twin._a05_preadmit,
    "A06": Twin._a06_to_inpatient,
    "A07": Twin._a07_to_outpatient,
    "A08": Twin._a08_update,
    "A11": Twin._a11_cancel_admit,
    "A12": Twin._a12_cancel_transfer,
    "A13": Twin._a13_cancel_discharge,
    "A14": Twin._a14_pending_admit,
    "A15": Twin._a15_pending_transfer,
    "A16": Twin._a16_pending_discharge,
    "A17": Twin._a17_swap,
    "A20": Twin._a20_bed_status,
    "A21": Twin._a21_leave_out,
    "A22": Twin._a22_leave_return,
    "A25": Twin._a25_cancel_pending_discharge,
    "A26": Twin._a26_cancel_pending_transfer,
    "A27": Twin._a27_cancel_pending_admit,
    "A40": Twin._a40_merge,
}
