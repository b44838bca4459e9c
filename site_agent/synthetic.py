"""A synthetic EHR: ADT v2.5 messages for made-up patients with a realistic day/week rhythm.

Everything here is invented. Identifiers are drawn so that they cannot be real: MRNs carry a
``SYN`` prefix, telephone numbers are in 555-0100…0199 (reserved for fiction in the North
American numbering plan), SSNs start with 9 (never issued as SSNs), e-mail addresses are at
``example.org`` (RFC 2606). They are still *shaped* like real identifiers, so the DE-ID layer
has real work to do.

The model: ED arrivals follow a non-homogeneous Poisson process (hour-of-day and day-of-week
shapes as in the simulation's general hospital scenario, after NHS England A&E patterns);
patients wait for an ED space, are treated, then go home or are admitted (more often the
sicker they are), board in the ED until a ward or ICU bed is free, stay (log-normal length of
stay), get a pending discharge, leave mostly in the afternoon, and their bed goes through
housekeeping (A20 H, then U). Elective admissions arrive on weekday mornings after an A05.
A small share of corrections (A11/A12/A13 cancels, A08 updates, A17 swaps, A21/A22 leave,
A40 merges) makes the stream look like a real interface.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo

from site_agent.config import AgentConfig, UnitConfig
from site_agent.hl7.ack import base36
from site_agent.hl7.er7 import escape

__all__ = ["Hl7Builder", "SynthPatient", "SyntheticHospital", "random_patient"]

# Hour-of-day and day-of-week (Mon..Sun) arrival shapes (general_hospital scenario, ED walk-in).
HOUR_SHAPE = (0.45, 0.35, 0.28, 0.22, 0.20, 0.22, 0.35, 0.60, 1.00, 1.35, 1.50, 1.50,
              1.45, 1.40, 1.38, 1.35, 1.30, 1.30, 1.30, 1.25, 1.15, 1.00, 0.80, 0.60)  # fmt: skip
DAY_SHAPE = (1.12, 1.02, 0.98, 0.97, 0.99, 0.95, 0.97)
# Discharges leave mostly between late morning and early evening.
DISCHARGE_HOURS = (0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3, 0.5, 1.0, 1.6, 2.4,
                   3.4, 4.6, 5.6, 6.0, 6.0, 5.4, 4.2, 3.0, 2.0, 1.2, 0.6, 0.3)  # fmt: skip
# ESI-like triage levels 1..5 and the share of each admitted.
ACUITY_WEIGHTS = (0.02, 0.15, 0.45, 0.30, 0.08)
ADMIT_PROBABILITY = (0.85, 0.60, 0.30, 0.08, 0.02)
WARD_LOS_HOURS = 110.0  # mean ward stay (log-normal, sigma 0.8): about 4.6 days

_GIVEN = ("Avery", "Blake", "Casey", "Dana", "Emery", "Finley", "Gray", "Harper", "Indy",
          "Jordan", "Kai", "Logan", "Morgan", "Noel", "Oakley", "Parker", "Quinn", "Riley",
          "Sage", "Taylor", "Urban", "Vesper", "Wren", "Xen", "Yael", "Zion", "María", "José",
          "Chloé", "Zoë", "Björn", "Siobhán")  # fmt: skip
_FAMILY = ("Ashdown", "Brightwater", "Castellan", "Dunmore", "Eastwick", "Fairweather",
           "Glenholm", "Hartley", "Ivorson", "Juniper", "Kestrel", "Larkspur", "Moorfield",
           "Northcote", "Oakhurst", "Pemberton", "Quarry", "Rainford", "Stonebridge",
           "Thistlewood", "Underhill", "Vantongeren", "Whitlock", "Yarrow", "O'Hara",
           "García-Núñez", "Lindqvist", "Nakamura-Ortiz")  # fmt: skip
_STREETS = ("Maple Ave", "Harbor St", "Mill Rd", "Orchard Ln", "Quarry Hill Rd", "Elm St",
            "Ridge Rd", "Canal St", "Chestnut Ct", "Lakeview Dr")  # fmt: skip
_CITIES = (("Fairport", "NY", "144"), ("Millbrook", "NY", "125"), ("Cold Spring", "NY", "105"),
           ("Riverton", "NJ", "080"), ("Lakewood", "NY", "147"))  # fmt: skip


@dataclass(slots=True)
class SynthPatient:
    mrn: str
    family: str
    given: str
    birth_date: str  # YYYYMMDD
    sex: str
    street: str
    city: str
    state: str
    zip: str
    phone: str
    email: str
    ssn: str
    account: str
    acuity: int = 3
    arrival_mode: str = "C"
    unit: str = ""
    room: str = ""
    bed: str = ""
    patient_class: str = "E"
    arrival_at: datetime | None = None


def random_patient(rng: random.Random, serial: int) -> SynthPatient:
    given = rng.choice(_GIVEN)
    family = rng.choice(_FAMILY)
    city, state, zip3 = rng.choice(_CITIES)
    age_days = int(rng.triangular(0, 95 * 365, 62 * 365))
    birth = date(2025, 1, 1) - timedelta(days=age_days)
    return SynthPatient(
        mrn=f"SYN{serial:08d}",
        family=family,
        given=given,
        birth_date=birth.strftime("%Y%m%d"),
        sex=rng.choice("FM"),
        street=f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}",
        city=city,
        state=state,
        zip=f"{zip3}{rng.randint(0, 99):02d}",
        phone=f"(555) 01{rng.randint(0, 99):02d}",
        email=f"{given.lower()}.{family.lower().replace(' ', '')}@example.org",
        ssn=f"9{rng.randint(0, 99):02d}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        account=f"ACC{serial:09d}",
    )


class Hl7Builder:
    """Builds ADT v2.5 messages. ``tz`` is the site's zone (HL7 times carry their offset)."""

    def __init__(self, sending_app: str, facility: str, tz: tzinfo, *, prefix: str = "") -> None:
        self.app = sending_app
        self.facility = facility
        self.tz = tz
        self._ids = itertools.count(1)
        self.prefix = prefix

    def _ts(self, at: datetime) -> str:
        return at.astimezone(self.tz).strftime("%Y%m%d%H%M%S%z")

    def control_id(self) -> str:
        return f"{self.prefix}{next(self._ids)}"

    def pid(self, p: SynthPatient) -> str:
        e = escape
        return (
            f"PID|1||{e(p.mrn)}^^^{e(self.facility)}^MR~{e(p.ssn)}^^^SSA^SS||"
            f"{e(p.family)}^{e(p.given)}||{p.birth_date}|{p.sex}|||"
            f"{e(p.street)}^^{e(p.city)}^{p.state}^{p.zip}^USA||"
            f"{e(p.phone)}^PRN^PH~^NET^Internet^{e(p.email)}|||||{p.account}|{p.ssn}"
        )

    def pv1(
        self,
        p: SynthPatient,
        *,
        prior: tuple[str, str, str] = ("", "", ""),
        pending: str = "",
        admit_at: datetime | None = None,
        discharge_at: datetime | None = None,
    ) -> str:
        e = escape
        loc = f"{e(p.unit)}^{e(p.room)}^{e(p.bed)}^{e(self.facility)}" if p.unit else ""
        prior_loc = f"{e(prior[0])}^{e(prior[1])}^{e(prior[2])}" if prior[0] else ""
        pending = e(pending)
        fields = ["PV1", "1", p.patient_class, loc, "", "", prior_loc]
        fields += [""] * 12  # PV1-7 .. PV1-18
        fields.append(f"V{p.account[3:]}")  # PV1-19 visit number
        fields += [""] * 22  # PV1-20 .. PV1-41
        fields.append(pending)  # PV1-42 pending location
        fields.append("")  # PV1-43
        fields.append(self._ts(admit_at) if admit_at else "")  # PV1-44
        fields.append(self._ts(discharge_at) if discharge_at else "")  # PV1-45
        return "|".join(fields).rstrip("|")

    def pv2(self, p: SynthPatient) -> str:
        fields = ["PV2"] + [""] * 38
        fields[25] = str(p.acuity)  # PV2-25 visit priority, used for the triage level
        fields[38] = p.arrival_mode  # PV2-38 mode of arrival (HL7 table 0430)
        return "|".join(fields)

    def adt(
        self,
        trigger: str,
        at: datetime,
        p: SynthPatient,
        *,
        prior: tuple[str, str, str] = ("", "", ""),
        pending: str = "",
        admit_at: datetime | None = None,
        discharge_at: datetime | None = None,
        extra: tuple[str, ...] = (),
        structure: str = "ADT_A01",
    ) -> str:
        ts = self._ts(at)
        segs = [
            f"MSH|^~\\&|{self.app}|{self.facility}|SITE_AGENT|{self.facility}|{ts}||"
            f"ADT^{trigger}^{structure}|{self.control_id()}|P|2.5|||AL|NE||UNICODE UTF-8",
            f"EVN|{trigger}|{ts}||||{ts}",
            self.pid(p),
            self.pv1(p, prior=prior, pending=pending, admit_at=admit_at, discharge_at=discharge_at),
            self.pv2(p),
            *extra,
        ]
        return "\r".join(segs) + "\r"

    def a17(self, at: datetime, a: SynthPatient, b: SynthPatient) -> str:
        ts = self._ts(at)
        return (
            "\r".join(
                [
                    f"MSH|^~\\&|{self.app}|{self.facility}|SITE_AGENT|{self.facility}|{ts}||"
                    f"ADT^A17^ADT_A17|{self.control_id()}|P|2.5",
                    f"EVN|A17|{ts}",
                    self.pid(a),
                    self.pv1(a),
                    self.pid(b),
                    self.pv1(b),
                ]
            )
            + "\r"
        )

    def a20(self, at: datetime, unit: str, room: str, bed: str, status: str) -> str:
        ts = self._ts(at)
        return (
            "\r".join(
                [
                    f"MSH|^~\\&|{self.app}|{self.facility}|SITE_AGENT|{self.facility}|{ts}||"
                    f"ADT^A20^ADT_A20|{self.control_id()}|P|2.5",
                    f"EVN|A20|{ts}",
                    f"NPU|{escape(unit)}^{escape(room)}^{escape(bed)}^{escape(self.facility)}|{status}",
                ]
            )
            + "\r"
        )

    def a40(self, at: datetime, survivor: SynthPatient, prior_mrn: str) -> str:
        ts = self._ts(at)
        return (
            "\r".join(
                [
                    f"MSH|^~\\&|{self.app}|{self.facility}|SITE_AGENT|{self.facility}|{ts}||"
                    f"ADT^A40^ADT_A39|{self.control_id()}|P|2.5",
                    f"EVN|A40|{ts}",
                    self.pid(survivor),
                    f"MRG|{prior_mrn}^^^{self.facility}^MR",
                ]
            )
            + "\r"
        )


@dataclass(order=True)
class _Event:
    at: float  # simulated hours since start
    seq: int
    action: Callable[[], None] = field(compare=False)


class SyntheticHospital:
    """Generates (sim_time, message) pairs for the hospital described by an agent config.

    ``next_messages(until)`` advances the simulation clock and returns the messages due by
    then. Time is in the site's wall clock, starting at ``start``; the caller decides how
    fast simulated time runs (``--speedup``).
    """

    def __init__(
        self,
        config: AgentConfig,
        start: datetime,
        *,
        seed: int = 1,
        ed_visits_per_day: float | None = None,
        sending_app: str = "SYNTH_EHR",
        prefill: bool = True,
    ) -> None:
        # Synthetic data, not security: a seeded PRNG makes a feed reproducible.
        self.rng = random.Random(seed)  # noqa: S311
        self.start = start
        # Control ids are unique per run (MSH-10 is at most 20 characters): the agent acknowledges
        # a repeated control id as a duplicate without applying it, so a feed restarted against
        # the same agent must not reuse the previous run's "S1", "S2", ...
        run = base36(int(start.timestamp()))
        self.build = Hl7Builder(sending_app, config.site_code, config.timezone, prefix=f"S{run}-")
        self.units = {u.code: u for u in config.units}
        self.ed = next((u for u in config.units if u.is_ed), None)
        # Critical care takes the sickest ED admissions and steps them down to a ward; every
        # other bedded unit (operating rooms excepted) is a ward for this model.
        self.icu = [
            u for u in config.units if u.unit_type in ("adult_icu", "pediatric_icu", "burn")
        ]
        self.wards = [
            u
            for u in config.units
            if not u.is_ed and u not in self.icu and u.unit_type != "operating_room"
        ]
        self.free: dict[str, list[tuple[str, str]]] = {
            u.code: [(b.room, b.bed) for b in u.beds if b.staffed] for u in config.units
        }
        for beds in self.free.values():
            self.rng.shuffle(beds)
        # Arrivals the inpatient beds can absorb at ~85 % occupancy: discharges per day are
        # beds / mean stay, and about 27 % of ED visits are admitted (ACUITY/ADMIT tables).
        # ICU patients step down to a ward, so the wards are the bottleneck.
        ward_beds = sum(len(self.free[u.code]) for u in self.wards)
        discharges_per_day = 1.1 * ward_beds / (WARD_LOS_HOURS / 24)
        admit_share = sum(w * p for w, p in zip(ACUITY_WEIGHTS, ADMIT_PROBABILITY, strict=True))
        ed_spaces = len(self.free[self.ed.code]) if self.ed else 0
        self.ed_rate = ed_visits_per_day or max(
            6.0, min(ed_spaces * 8.0, discharges_per_day / admit_share)
        )
        self._heap: list[_Event] = []
        self._seq = itertools.count()
        self._serial = itertools.count(int(seed) * 1_000_000 + 1)
        self._out: list[tuple[datetime, str]] = []
        self.now_h = 0.0
        self.ed_queue: list[SynthPatient] = []
        self.boarders: list[tuple[SynthPatient, UnitConfig]] = []
        self.inpatients: dict[str, SynthPatient] = {}
        if prefill:
            self._prefill()
        self._schedule(self._next_arrival_gap(), self._arrival)
        self._schedule(self._hours_until(7.0), self._electives)

    # --- clock helpers -----------------------------------------------------------------------

    def time(self, hours: float | None = None) -> datetime:
        return self.start + timedelta(hours=self.now_h if hours is None else hours)

    def _schedule(self, delay_h: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, _Event(self.now_h + max(0.0, delay_h), next(self._seq), action))

    def _emit(self, message: str) -> None:
        self._out.append((self.time(), message))

    def _hours_until(self, hour_of_day: float) -> float:
        local = self.time().astimezone(self.build.tz)
        h = local.hour + local.minute / 60
        return (hour_of_day - h) % 24 or 24.0

    def _rate_factor(self, at: datetime) -> float:
        local = at.astimezone(self.build.tz)
        return HOUR_SHAPE[local.hour] * DAY_SHAPE[local.weekday()]

    def _next_arrival_gap(self) -> float:
        # Thinning (Lewis & Shedler) for the non-homogeneous Poisson arrivals.
        peak = self.ed_rate / 24 * max(HOUR_SHAPE) * max(DAY_SHAPE)
        t = 0.0
        while True:
            t += self.rng.expovariate(peak)
            factor = self._rate_factor(self.time(self.now_h + t))
            if self.rng.random() * max(HOUR_SHAPE) * max(DAY_SHAPE) <= factor:
                return t

    def _new_patient(self) -> SynthPatient:
        return random_patient(self.rng, next(self._serial))

    # --- the flow ----------------------------------------------------------------------------

    def _prefill(self) -> None:
        """Start from a plausible census: wards ~80 % full with stays begun in the past."""
        now = self.time()
        for unit in (*self.wards, *self.icu):
            free = self.free[unit.code]
            for _ in range(int(len(free) * self.rng.uniform(0.7, 0.9))):
                p = self._new_patient()
                p.room, p.bed = free.pop()
                p.unit = unit.code
                p.patient_class = "I"
                p.acuity = self.rng.choice((1, 2, 3))
                elapsed = self.rng.uniform(2, 24 * 6)
                p.arrival_at = now - timedelta(hours=elapsed)
                self.build_admit(p, admit_at=p.arrival_at)
                self._stay(p, unit, remaining_h=self._los(unit) * self.rng.uniform(0.3, 1.2))
        if self.ed is not None:
            for _ in range(int(len(self.free[self.ed.code]) * 0.5)):
                self._arrival(schedule_next=False)

    def build_admit(self, p: SynthPatient, admit_at: datetime) -> None:
        self._emit(self.build.adt("A01", self.time(), p, admit_at=admit_at))
        self.inpatients[p.mrn] = p

    def _los(self, unit: UnitConfig) -> float:
        mean = 72.0 if unit in self.icu else WARD_LOS_HOURS
        sigma = 0.8
        mu = math.log(mean) - sigma**2 / 2
        return self.rng.lognormvariate(mu, sigma)

    def _arrival(self, schedule_next: bool = True) -> None:
        if schedule_next:
            self._schedule(self._next_arrival_gap(), self._arrival)
        if self.ed is None:
            return
        p = self._new_patient()
        p.acuity = self.rng.choices((1, 2, 3, 4, 5), ACUITY_WEIGHTS)[0]
        p.arrival_mode = self.rng.choices("ACFH", (0.22, 0.6, 0.17, 0.01))[0]
        p.unit, p.room, p.bed = self.ed.code, "", ""
        p.patient_class = "E"
        p.arrival_at = self.time()
        self._emit(self.build.adt("A04", self.time(), p, admit_at=p.arrival_at))
        self.ed_queue.append(p)
        self._schedule(self.rng.expovariate(1 / 0.4), self._place_ed)

    def _place_ed(self) -> None:
        if self.ed is None or not self.ed_queue:
            return
        free = self.free[self.ed.code]
        if not free:
            self._schedule(0.25, self._place_ed)
            return
        # Sicker patients first (triage), then arrival order.
        self.ed_queue.sort(key=lambda q: (q.acuity, q.arrival_at or self.start))
        p = self.ed_queue.pop(0)
        p.room, p.bed = free.pop()
        self._emit(self.build.adt("A08", self.time(), p))
        self._schedule(self.rng.lognormvariate(math.log(2.5), 0.6), lambda: self._ed_decision(p))

    def _ed_decision(self, p: SynthPatient) -> None:
        assert self.ed is not None  # noqa: S101
        if self.rng.random() < ADMIT_PROBABILITY[p.acuity - 1] and (self.wards or self.icu):
            target = self._pick(
                self.icu if self.icu and p.acuity == 1 and self.rng.random() < 0.5 else self.wards
            )
            self._emit(self.build.adt("A14", self.time(), p, pending=target.code))
            self.boarders.append((p, target))
            self._schedule(0.2, self._place_boarders)
        else:
            self._emit(self.build.adt("A03", self.time(), p, discharge_at=self.time()))
            self._free_ed(p)

    def _pick(self, units: list[UnitConfig]) -> UnitConfig:
        """A unit, more often a big one; one with a free bed if there is any (bed managers
        send a patient where there is room)."""
        units = units or self.wards or self.icu
        with_room = [u for u in units if self.free[u.code]]
        pool = with_room or units
        return self.rng.choices(pool, [len(u.beds) for u in pool])[0]

    def _free_ed(self, p: SynthPatient) -> None:
        if self.ed is not None and p.room:
            self.free[self.ed.code].append((p.room, p.bed))

    def _place_boarders(self) -> None:
        waiting = []
        for p, target in self.boarders:
            if not self.free[target.code]:
                group = self.icu if target in self.icu else self.wards
                other = self._pick(group)
                if self.free[other.code]:
                    # Bed assigned elsewhere: the pending location changes (a new A14).
                    target = other
                    self._emit(self.build.adt("A14", self.time(), p, pending=target.code))
                else:
                    waiting.append((p, target))
                    continue
            free = self.free[target.code]
            ed_room = (p.unit, p.room, p.bed)
            p.room, p.bed = free.pop()
            p.unit = target.code
            p.patient_class = "I"
            if self.rng.random() < 0.3:
                # Some EHRs send the class change and the move separately.
                moved = replace(p, unit=ed_room[0], room=ed_room[1], bed=ed_room[2])
                self._emit(self.build.adt("A06", self.time(), moved))
                self._emit(self.build.adt("A02", self.time(), p, prior=ed_room))
            else:
                self._emit(
                    self.build.adt("A01", self.time(), p, prior=ed_room, admit_at=self.time())
                )
            self.inpatients[p.mrn] = p
            if self.ed is not None and ed_room[1]:
                self.free[self.ed.code].append((ed_room[1], ed_room[2]))
            self._stay(p, target, remaining_h=self._los(target))
        self.boarders = waiting
        if waiting:
            self._schedule(0.5, self._place_boarders)

    def _stay(self, p: SynthPatient, unit: UnitConfig, remaining_h: float) -> None:
        # Leave in the afternoon of the day the stay ends (discharge-hour weights).
        end = self.now_h + remaining_h
        day_start = end - (self.time(end).astimezone(self.build.tz).hour)
        hour = self.rng.choices(range(24), DISCHARGE_HOURS)[0] + self.rng.random()
        end = max(self.now_h + 1.0, day_start + hour)
        if self.rng.random() < 0.02:
            self._schedule((end - self.now_h) * 0.3, lambda: self._leave(p))
        if unit in self.icu and self.wards:
            self._schedule(end - self.now_h, lambda: self._step_down(p))
            return
        self._schedule(max(0.5, end - self.now_h - 4.0), lambda: self._pending_discharge(p))
        self._schedule(end - self.now_h, lambda: self._discharge(p))

    def _leave(self, p: SynthPatient) -> None:
        if p.mrn not in self.inpatients:
            return
        self._emit(self.build.adt("A21", self.time(), p))
        self._schedule(self.rng.uniform(2, 8), lambda: self._return(p))

    def _return(self, p: SynthPatient) -> None:
        if p.mrn in self.inpatients:
            self._emit(self.build.adt("A22", self.time(), p))

    def _step_down(self, p: SynthPatient) -> None:
        target = self._pick(self.wards)
        free = self.free[target.code]
        if not free:
            self._schedule(1.0, lambda: self._step_down(p))
            return
        self._emit(self.build.adt("A15", self.time(), p, pending=target.code))
        prior = (p.unit, p.room, p.bed)
        old_unit = self.units[p.unit]
        p.unit = target.code
        p.room, p.bed = free.pop()
        self._emit(self.build.adt("A02", self.time(), p, prior=prior))
        self._bed_cleaning(old_unit.code, prior[1], prior[2])
        self._stay(p, target, remaining_h=self._los(target) * 0.6)

    def _pending_discharge(self, p: SynthPatient) -> None:
        if p.mrn in self.inpatients:
            self._emit(self.build.adt("A16", self.time(), p))

    def _discharge(self, p: SynthPatient) -> None:
        if p.mrn not in self.inpatients:
            return
        self._emit(self.build.adt("A03", self.time(), p, discharge_at=self.time()))
        if self.rng.random() < 0.005:
            # Discharged by mistake: corrected a few minutes later (A13), leaves later on.
            self._emit(self.build.adt("A13", self.time() + timedelta(minutes=5), p))
            self._schedule(6.0, lambda: self._discharge(p))
            return
        del self.inpatients[p.mrn]
        self._bed_cleaning(p.unit, p.room, p.bed)

    def _bed_cleaning(self, unit: str, room: str, bed: str) -> None:
        self._emit(self.build.a20(self.time(), unit, room, bed, "H"))

        def clean() -> None:
            self._emit(self.build.a20(self.time(), unit, room, bed, "U"))
            self.free[unit].append((room, bed))

        self._schedule(self.rng.uniform(0.4, 1.5), clean)

    def _electives(self) -> None:
        """Weekday mornings: pre-admitted surgical patients arrive."""
        self._schedule(24.0, self._electives)
        if self.time().astimezone(self.build.tz).weekday() >= 5 or not self.wards:
            return
        for _ in range(max(1, len(self.wards))):
            target = self._pick(self.wards)
            free = self.free[target.code]
            if not free:
                continue
            p = self._new_patient()
            p.patient_class = "P"
            self._emit(
                self.build.adt("A05", self.time() - timedelta(hours=12), p, pending=target.code)
            )
            p.patient_class = "I"
            p.unit = target.code
            p.room, p.bed = free.pop()
            self._emit(self.build.adt("A01", self.time(), p, admit_at=self.time()))
            self.inpatients[p.mrn] = p
            self._stay(p, target, remaining_h=self._los(target) * 0.5)

    # --- output ------------------------------------------------------------------------------

    def next_messages(self, until: datetime) -> list[tuple[datetime, str]]:
        horizon = (until - self.start).total_seconds() / 3600
        while self._heap and self._heap[0].at <= horizon:
            ev = heapq.heappop(self._heap)
            self.now_h = ev.at
            ev.action()
        self.now_h = max(self.now_h, horizon)
        out, self._out = self._out, []
        return out

    def stream(self, step: timedelta = timedelta(minutes=1)) -> Iterator[tuple[datetime, str]]:
        t = self.start
        while True:
            t += step
            yield from self.next_messages(t)
