"""A seeded generator of synthetic hospital records with obviously fake identifiers.

Names come from short made-up lists; MRNs are 'MR' + 8 digits; SSNs start with 9 (never issued
by the SSA); phone numbers use the 555-01xx fictional range; e-mail addresses use the reserved
example.org domain. Dates of birth are before 2025 and events happen in 2025, so an event date
can never be mistaken for a date of birth in a leak scan. Some ZIP codes fall in the restricted
three-digit areas and some patients are 90 or older, to exercise those rules.

Lives in the package (not tests/) because the benchmark and the offline demo use it too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from deid.contracts.raw import (
    FeedStatus,
    ForecastPoint,
    PatientPHI,
    PlainFlowEvent,
    RawCensusSnapshot,
    RawFlowEvent,
    RawHeartbeat,
)
from deid.contracts.vocabulary import ArrivalMode, FlowEventType, PatientClass, Sex, UnitType
from deid.keystore import PatientKeyStore
from deid.zip3 import RESTRICTED_ZIP3

FIRST = [
    "Avery",
    "Blake",
    "Carys",
    "Dorian",
    "Elowen",
    "Fenwick",
    "Galen",
    "Harlow",
    "Isolde",
    "Jorah",
    "Kestrel",
    "Linnea",
    "Marlow",
    "Nerys",
    "Oren",
    "Peregrine",
    "Quillon",
    "Rowena",
    "Soren",
    "Tamsin",
    "Ulric",
    "Vesper",
    "Wren",
    "Xanthe",
    "Yarrow",
    "Zephyr",
]
LAST = [
    "Ashdown",
    "Brackenridge",
    "Calloway",
    "Dunmore",
    "Everhart",
    "Fairweather",
    "Greystoke",
    "Hollowell",
    "Ironwood",
    "Juniper",
    "Kettleby",
    "Larkspur",
    "Merriweather",
    "Nightingale",
    "Oakenshield",
    "Pendleton",
    "Quarrington",
    "Ravenscroft",
    "Silverthorne",
    "Thistlewood",
    "Underhill",
    "Vantablack",
    "Whitlock",
    "Yewdale",
    "Zelkova",
]
STREETS = [
    "Maple",
    "Cedar",
    "Willow",
    "Juniper",
    "Alder",
    "Birch",
    "Hawthorn",
    "Sycamore",
    "Linden",
    "Rowan",
]
SUFFIXES = ("St", "Ave", "Rd", "Lane", "Way", "Court")
CITIES = ["Northfield", "Easton", "Westbury", "Southport", "Millbrook", "Ridgeview"]

UNITS: tuple[tuple[str, UnitType], ...] = (
    ("ED", UnitType.EMERGENCY),
    ("ICU1", UnitType.ADULT_ICU),
    ("PICU", UnitType.PEDIATRIC_ICU),
    ("NICU", UnitType.NEONATAL_ICU),
    ("4W", UnitType.MEDICAL_SURGICAL),
    ("5E", UnitType.MEDICAL_SURGICAL),
    ("SDU", UnitType.STEP_DOWN),
    ("PEDS", UnitType.PEDIATRICS),
    ("OB", UnitType.OBSTETRICS),
    ("PSY", UnitType.PSYCHIATRIC),
)
EVENT_START = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SyntheticPatient:
    phi: PatientPHI
    surrogate_id: str

    @property
    def identifiers(self) -> dict[str, str]:
        """Every identifier string of this patient, for leak scans."""
        p = self.phi
        out = {
            "mrn": p.mrn,
            "name": p.name,
            "address": p.address,
            "phone": p.phone,
            "email": p.email,
            "ssn": p.ssn,
            "birth_date": p.birth_date.isoformat() if p.birth_date else None,
            "zip": p.zip,
        }
        return {k: v for k, v in out.items() if v}


class SyntheticSite:
    """Synthetic patients and records for one site. Deterministic for a given seed (apart
    from random surrogates, event ids and ciphertext nonces)."""

    def __init__(self, site_code: str, *, seed: int = 0, keystore: PatientKeyStore | None = None):
        self.site_code = site_code
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
        self.keystore = keystore
        self._mrns: set[str] = set()

    def _mrn(self) -> str:
        while True:
            mrn = f"MR{self.rng.randrange(10**8):08d}"
            if mrn not in self._mrns:
                self._mrns.add(mrn)
                return mrn

    def phi(self) -> PatientPHI:
        r = self.rng
        first, last = r.choice(FIRST), r.choice(LAST)
        # About 4% of patients are 90 or older and 8% are children.
        roll = r.random()
        if roll < 0.04:
            birth = date(1920, 1, 1) + timedelta(days=r.randrange(365 * 14))
        elif roll < 0.12:
            birth = date(2008, 1, 1) + timedelta(days=r.randrange(365 * 17))
        else:
            birth = date(1935, 1, 1) + timedelta(days=r.randrange(365 * 73))
        if r.random() < 0.05:
            zip_code = r.choice(sorted(RESTRICTED_ZIP3)) + f"{r.randrange(100):02d}"
        else:
            zip_code = f"{r.randrange(10, 999):03d}{r.randrange(100):02d}"
        mrn = self._mrn()
        return PatientPHI(
            mrn=mrn,
            name=f"{first} {last}",
            birth_date=birth,
            sex=r.choice((Sex.FEMALE, Sex.MALE, Sex.FEMALE, Sex.MALE, Sex.OTHER)),
            address=f"{r.randrange(1, 99999)} {r.choice(STREETS)} {r.choice(SUFFIXES)}",
            city=r.choice(CITIES),
            state="MA",
            zip=zip_code,
            phone=f"({r.randrange(201, 989)}) 555-01{r.randrange(100):02d}",
            email=f"{first.lower()}.{last.lower()}{r.randrange(10000)}@example.org",
            ssn=f"9{r.randrange(10, 99)}-{r.randrange(10, 99)}-{r.randrange(1000, 9999)}",
            free_text=f"{first} {last} called, call back {r.randrange(201, 989)}-555-0100",
        )

    def patients(self, n: int) -> list[SyntheticPatient]:
        phis = [self.phi() for _ in range(n)]
        if self.keystore is not None:
            surrogates = self.keystore.surrogates_for([p.mrn or "" for p in phis])
        else:
            surrogates = [f"sg-synthetic{n:08d}" for n in range(n)]
        return [SyntheticPatient(p, s) for p, s in zip(phis, surrogates, strict=True)]

    def _event_fields(self, when: datetime) -> dict[str, object]:
        r = self.rng
        unit_code, unit_type = r.choice(UNITS)
        prior_code, prior_type = r.choice(UNITS)
        event_type = r.choice(
            (FlowEventType.ADMIT,) * 4
            + (FlowEventType.TRANSFER,) * 2
            + (FlowEventType.DISCHARGE,) * 3
            + (FlowEventType.REGISTER, FlowEventType.UPDATE, FlowEventType.CANCEL_ADMIT)
        )
        ed = unit_type is UnitType.EMERGENCY
        return {
            "site_code": self.site_code,
            "event_type": event_type,
            "occurred_at": when,
            "unit_code": unit_code,
            "unit_type": unit_type,
            "prior_unit_code": prior_code if event_type is FlowEventType.TRANSFER else None,
            "prior_unit_type": prior_type if event_type is FlowEventType.TRANSFER else None,
            "patient_class": PatientClass.EMERGENCY if ed else PatientClass.INPATIENT,
            "acuity": r.randint(1, 5) if ed else None,
            "arrival_mode": r.choice((ArrivalMode.AMBULANCE, ArrivalMode.WALK_IN)) if ed else None,
            "decision_to_admit_at": (
                when - timedelta(minutes=r.randrange(30, 900))
                if event_type is FlowEventType.ADMIT
                else None
            ),
            "source": "hl7-adt",
        }

    def _times(self, n: int) -> Iterator[datetime]:
        span = 365 * 24 * 3600 - 1
        for _ in range(n):
            yield EVENT_START + timedelta(seconds=self.rng.randrange(span))

    def flow_events(self, patients: list[SyntheticPatient], n: int) -> list[RawFlowEvent]:
        """n encrypted flow events of random patients (needs the key store)."""
        if self.keystore is None:
            raise ValueError("encrypted events need a key store")
        out = []
        for when in self._times(n):
            patient = self.rng.choice(patients)
            key_id, ct = self.keystore.encrypt_phi(patient.surrogate_id, patient.phi)
            out.append(
                RawFlowEvent(
                    **self._event_fields(when),  # type: ignore[arg-type]
                    surrogate_id=patient.surrogate_id,
                    key_id=key_id,
                    phi_ciphertext=ct,
                )
            )
        return out

    def plain_flow_events(self, patients: list[SyntheticPatient], n: int) -> list[PlainFlowEvent]:
        """n flow events with PHI in the clear (the offline, at-the-site variant)."""
        out = []
        for when in self._times(n):
            patient = self.rng.choice(patients)
            out.append(
                PlainFlowEvent(
                    **self._event_fields(when),  # type: ignore[arg-type]
                    surrogate_id=patient.surrogate_id,
                    phi=patient.phi,
                )
            )
        return out

    def census(self, when: datetime | None = None) -> list[RawCensusSnapshot]:
        r = self.rng
        as_of = when or EVENT_START
        out = []
        for unit_code, unit_type in UNITS:
            staffed = r.randrange(8, 40)
            blocked = r.randrange(0, 3)
            occupied = r.randrange(0, staffed - blocked + 1)
            ed = unit_type is UnitType.EMERGENCY
            out.append(
                RawCensusSnapshot(
                    site_code=self.site_code,
                    unit_code=unit_code,
                    unit_type=unit_type,
                    as_of=as_of,
                    licensed_beds=staffed + r.randrange(0, 6),
                    staffed_beds=staffed,
                    surge_beds=r.randrange(0, 3),
                    occupied_beds=occupied,
                    available_beds=staffed - blocked - occupied,
                    blocked_beds=blocked,
                    pending_admissions=r.randrange(0, 6),
                    pending_discharges=r.randrange(0, 6),
                    ed_waiting=r.randrange(0, 30) if ed else None,
                    ed_in_treatment=r.randrange(0, 40) if ed else None,
                    ed_boarding=r.randrange(0, 12) if ed else None,
                    longest_boarding_minutes=r.randrange(0, 1500) if ed else None,
                    boarding_minutes=tuple(r.randrange(0, 900) for _ in range(r.randrange(6)))
                    if ed
                    else (),
                    offload_minutes=tuple(r.randrange(5, 90) for _ in range(r.randrange(8)))
                    if ed
                    else (),
                    source="hl7-adt",
                    last_message_at=as_of - timedelta(seconds=r.randrange(300)),
                    forecast=(ForecastPoint(horizon_hours=4, p10=1.0, p50=3.0, p90=6.0),),
                )
            )
        return out

    def heartbeat(self, when: datetime | None = None) -> RawHeartbeat:
        return RawHeartbeat(
            site_code=self.site_code,
            agent_version="0.1.0",
            feeds=(
                FeedStatus(name="adt-main", source="hl7-adt", last_message_at=when or EVENT_START),
            ),
            outbox_backlog=self.rng.randrange(0, 5),
        )
