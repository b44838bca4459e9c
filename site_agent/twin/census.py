"""Per-unit census figures computed from the twin. Pure.

Definitions (documented in docs/site_agent.md):
- licensed / staffed: configured (or FHIR-declared) beds with that flag.
- surge: surge or ad-hoc spaces open now, i.e. staffed or holding a patient.
- occupied: beds holding a patient or marked ``O`` by the bed feed (HL7 table 0116), plus, on
  inpatient units, patients assigned to the unit without a bed (they still need nursing).
- blocked: free beds whose status is C closed, H housekeeping, I isolated or K contaminated.
- available: staffed beds that are free and not blocked.
- pending admissions: A14/A15 bed requests for the unit, and A05 pre-admissions due within a day.
- ED: waiting (no treatment space), in treatment (a space, no decision to admit), boarding
  (decision to admit or inpatient class, still in the ED); boarding time runs from the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from deid.contracts.vocabulary import PatientClass
from site_agent.twin.model import ACTIVE, OFFLOAD_WINDOW, PREADMIT, Twin, Unit

__all__ = ["UnitCensus", "census_all", "census_for"]

PREADMIT_HORIZON = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class UnitCensus:
    unit_code: str
    unit_type: str
    as_of: datetime
    licensed_beds: int
    staffed_beds: int
    surge_beds: int
    occupied_beds: int
    available_beds: int
    blocked_beds: int
    pending_admissions: int
    pending_discharges: int
    ed_waiting: int | None = None
    ed_in_treatment: int | None = None
    ed_boarding: int | None = None
    longest_boarding_minutes: int | None = None
    boarding_minutes: tuple[int, ...] = ()
    offload_minutes: tuple[int, ...] = ()
    source: str = ""
    last_message_at: datetime | None = None


def _minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))


def census_for(twin: Twin, unit: Unit, now: datetime) -> UnitCensus:
    licensed = staffed = surge = occupied = available = blocked = 0
    for b in unit.beds.values():
        if b.licensed and not b.adhoc:
            licensed += 1
        if b.staffed:
            staffed += 1
        occ = b.occupied
        if (b.surge or b.adhoc) and (b.staffed or occ):
            surge += 1
        if occ:
            occupied += 1
        elif b.status in ("C", "H", "I", "K"):
            blocked += 1
        elif b.staffed:
            available += 1
    pending_out = 0
    waiting = treating = 0
    boarding: list[int] = []
    for p in twin.patients_in(unit.code):
        if p.pending_discharge:
            pending_out += 1
        if unit.is_ed:
            if p.decision_to_admit_at is not None or p.patient_class == PatientClass.INPATIENT:
                start = p.decision_to_admit_at or p.admit_at or p.arrival_at or now
                boarding.append(_minutes(now - start))
            elif p.bed:
                treating += 1
            else:
                waiting += 1
        elif not p.bed:
            occupied += 1  # on the unit without a bed (corridor, chair): still an inpatient
    pending_in = 0
    for p in twin.pending_for(unit.code):
        if p.status == ACTIVE or (
            p.status == PREADMIT
            and (p.expected_admit_at is None or p.expected_admit_at <= now + PREADMIT_HORIZON)
        ):
            pending_in += 1
    boarding.sort(reverse=True)
    is_ed = unit.is_ed
    offloads = tuple(m for at, m in unit.offloads if now - at <= OFFLOAD_WINDOW)
    return UnitCensus(
        unit_code=unit.code,
        unit_type=unit.unit_type,
        as_of=now,
        licensed_beds=licensed,
        staffed_beds=staffed,
        surge_beds=surge,
        occupied_beds=occupied,
        available_beds=available,
        blocked_beds=blocked,
        pending_admissions=pending_in,
        pending_discharges=pending_out,
        ed_waiting=waiting if is_ed else None,
        ed_in_treatment=treating if is_ed else None,
        ed_boarding=len(boarding) if is_ed else None,
        longest_boarding_minutes=(boarding[0] if boarding else 0) if is_ed else None,
        boarding_minutes=tuple(boarding),
        offload_minutes=offloads,
        source=unit.last_source,
        last_message_at=unit.last_message_at,
    )


def census_all(twin: Twin, now: datetime) -> list[UnitCensus]:
    return [census_for(twin, u, now) for u in twin.units.values()]
