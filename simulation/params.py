"""Model parameters as frozen dataclasses. Times are hours unless a name says otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from simulation.arrivals import ArrivalProfile
from simulation.distributions import Dist

EXIT = "exit"
OnFull = Literal["queue", "block"]
UnitKind = Literal["ward", "icu", "other"]


@dataclass(frozen=True)
class RunSettings:
    """Length of a run; measurement starts after the warm-up."""

    days: float = 28.0
    warmup_days: float = 7.0
    start_hour: float = 0.0  # hour of the week the run starts (0 = Monday 00:00)
    snapshot_hours: float = 1.0  # occupancy time-series interval
    # Patients already in each unit at the start, with equilibrium elapsed stays: a
    # typical census shortens the warm-up that an empty hospital would need.
    initial_occupancy: tuple[tuple[str, int], ...] = ()

    @property
    def warmup(self) -> float:
        return self.start_hour + self.warmup_days * 24

    @property
    def end(self) -> float:
        return self.start_hour + (self.warmup_days + self.days) * 24


@dataclass(frozen=True)
class UnitParams:
    """A bed unit. ``beds=None`` means uncapacitated: every patient gets a bed and the
    unit keeps an occupancy audit instead."""

    name: str
    beds: int | None
    kind: UnitKind = "ward"
    on_full: OnFull = "queue"
    discharge_profile: bool = True  # exits home follow the hospital's discharge hours


@dataclass(frozen=True)
class PatientClass:
    """An external arrival stream of one patient class into one unit."""

    name: str
    unit: str
    arrivals: ArrivalProfile
    priority: int = 3  # lower is served first when a unit queues


@dataclass(frozen=True)
class Route:
    """Where patients go after ``unit``; ``patient_class=None`` applies to every class."""

    unit: str
    to: tuple[tuple[str, float], ...]
    patient_class: str | None = None


@dataclass(frozen=True)
class LosRule:
    """Length of stay in ``unit``; ``None`` fields are wildcards, the most specific rule wins."""

    unit: str
    dist: Dist
    patient_class: str | None = None
    next_unit: str | None = None


@dataclass(frozen=True)
class Shift:
    start_hour: float
    end_hour: float
    clinicians: int


@dataclass(frozen=True)
class Acuity:
    """ESI level parameters: share of arrivals, clinician time, bed-only time, admission."""

    level: int
    walk_in_share: float
    ambulance_share: float
    assessment: Dist  # clinician time
    observation: Dist  # bed time after the clinician, before the disposition
    admit_probability: float
    admit_to: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class EDParams:
    beds: int
    shifts: tuple[Shift, ...]
    walk_in: ArrivalProfile
    ambulance: ArrivalProfile
    acuity: tuple[Acuity, ...]
    admitted_class: str = "emergency"

    def clinicians_by_hour(self) -> tuple[int, ...]:
        """Clinicians on duty in each hour of the day; overlapping shifts add up."""
        hours = [0] * 24
        for s in self.shifts:
            h = s.start_hour
            end = s.end_hour if s.end_hour > s.start_hour else s.end_hour + 24
            while h < end:
                hours[int(h) % 24] += s.clinicians
                h += 1
        return tuple(hours)


@dataclass(frozen=True)
class CaseType:
    name: str
    share: float
    duration: Dist
    destination: tuple[tuple[str, float], ...]  # post-op unit, or "exit" for day cases
    patient_class: str = "elective"


@dataclass(frozen=True)
class SurgeryParams:
    rooms: int
    case_types: tuple[CaseType, ...]
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    session_start: float = 8.0
    session_hours: float = 9.0
    turnover: float = 0.5
    booking_fill: float = 0.85  # booked expected case time / session time
    last_start_before_end: float = 0.0  # no case starts later than end minus this
    cancel_if_no_bed: bool = True


@dataclass(frozen=True)
class Scenario:
    """A hospital or a general unit network: units, arrival classes, routing and stays,
    with an optional emergency department and elective surgery in front."""

    name: str
    units: tuple[UnitParams, ...]
    los: tuple[LosRule, ...]
    run: RunSettings = field(default_factory=RunSettings)
    classes: tuple[PatientClass, ...] = ()
    routes: tuple[Route, ...] = ()
    ed: EDParams | None = None
    surgery: SurgeryParams | None = None
    discharge_hours: tuple[float, ...] | None = None  # 24 weights for the hour of discharge
    description: str = ""

    def unit(self, name: str) -> UnitParams:
        for u in self.units:
            if u.name == name:
                return u
        raise KeyError(f"scenario {self.name!r} has no unit {name!r}")


@dataclass(frozen=True)
class Zone:
    name: str
    incidents: ArrivalProfile
    ambulances: int | None = None  # None: an ambulance is always free
    response: Dist = field(default_factory=lambda: Dist.fixed(0.25))  # dispatch + scene


@dataclass(frozen=True)
class RegionalHospital:
    name: str
    scenario: Scenario


@dataclass(frozen=True)
class ThresholdSettings:
    """The default diversion rule; ED pressure = (occupied cubicles + waiting) / cubicles."""

    on_pressure: float = 1.25
    off_pressure: float = 0.9
    review_hours: float = 0.25
    max_extra_travel_hours: float = 0.5


@dataclass(frozen=True)
class RegionalScenario:
    """Several hospitals, ambulance incidents by zone, travel times and a diversion policy."""

    name: str
    hospitals: tuple[RegionalHospital, ...]
    zones: tuple[Zone, ...]
    travel_hours: tuple[tuple[str, str, float], ...]  # (zone, hospital, hours)
    run: RunSettings = field(default_factory=RunSettings)
    policy: str = "threshold"
    threshold: ThresholdSettings = field(default_factory=ThresholdSettings)
    description: str = ""

    def travel(self, zone: str, hospital: str) -> float:
        for z, h, hours in self.travel_hours:
            if z == zone and h == hospital:
                return hours
        raise KeyError(f"no travel time from zone {zone!r} to {hospital!r}")
