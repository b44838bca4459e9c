"""HL7 v2 ADT messages → typed events for the twin. Pure: no I/O, no state.

Fields read (v2.5 positions; v2.3–v2.8 agree on all of them):
- MSH-3/4 sending application/facility, MSH-7 message time, MSH-9 type^trigger, MSH-10 control
  ID, MSH-11 processing ID, MSH-12 version. EVN-1 (trigger, v2.3 style), EVN-2 recorded time,
  EVN-6 event occurred time.
- PID-3 identifiers (the ``MR`` repetition, HL7 table 0203, else the first), PID-5 name, PID-7
  birth date, PID-8 sex, PID-11 address, PID-13/14 phones and e-mail, PID-18 account, PID-19 SSN.
- PV1-2 patient class (table 0004), PV1-3 assigned location (point of care^room^bed^facility),
  PV1-6 prior location, PV1-10 hospital service, PV1-18 patient type, PV1-19 visit number,
  PV1-42 pending location, PV1-44 admit and PV1-45 discharge date/time.
- PV2-8 expected admit time, PV2-9 expected discharge time, PV2-25 visit priority (used for the
  ED triage level 1–5 where the site sends it there), PV2-38 mode of arrival (table 0430).
- NPU-1 bed location and NPU-2 bed status (table 0116) for A20; MRG-1 prior MRN for A40.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any

from site_agent.hl7.ack import AckCode, ErrorCode
from site_agent.hl7.er7 import Message, Segment

__all__ = [
    "SUPPORTED_TRIGGERS",
    "AdtEvent",
    "Identity",
    "Location",
    "MessageRejected",
    "Visit",
    "event_from_message",
    "parse_dtm",
]

# What each supported trigger means (HL7 v2.5 chapter 3). A15/A26 (pending transfer and its
# cancel) ride along with A14/A27 because bed managers send them in the same workflow.
SUPPORTED_TRIGGERS: dict[str, str] = {
    "A01": "admit",
    "A02": "transfer",
    "A03": "discharge",
    "A04": "register",
    "A05": "preadmit",
    "A06": "outpatient_to_inpatient",
    "A07": "inpatient_to_outpatient",
    "A08": "update",
    "A11": "cancel_admit",
    "A12": "cancel_transfer",
    "A13": "cancel_discharge",
    "A14": "pending_admit",
    "A15": "pending_transfer",
    "A16": "pending_discharge",
    "A17": "swap_beds",
    "A20": "bed_status",
    "A21": "leave_of_absence_out",
    "A22": "leave_of_absence_return",
    "A25": "cancel_pending_discharge",
    "A26": "cancel_pending_transfer",
    "A27": "cancel_pending_admit",
    "A40": "merge",
}

# HL7 table 0116 (bed status).
BED_STATUSES = {"C", "H", "I", "K", "O", "U"}


class MessageRejected(Exception):
    """The message cannot be used: answer ``code`` (AR or AE) with the table 0357 error."""

    def __init__(
        self,
        code: AckCode,
        error: ErrorCode,
        text: str,
        segment: str = "",
        field_no: int = 0,
    ) -> None:
        super().__init__(text)
        self.code = code
        self.error = error
        self.text = text
        self.segment = segment
        self.field_no = field_no


@dataclass(frozen=True, slots=True)
class Location:
    """An HL7 PL: point of care (the unit) ^ room ^ bed ^ facility."""

    unit: str = ""
    room: str = ""
    bed: str = ""
    facility: str = ""

    def __bool__(self) -> bool:
        return bool(self.unit or self.room or self.bed)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the patient is. Every field here is PHI and leaves the agent only encrypted."""

    mrn: str
    assigning_authority: str = ""
    family_name: str = ""
    given_name: str = ""
    birth_date: str = ""
    sex: str = ""
    street: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""
    phone: str = ""
    email: str = ""
    ssn: str = ""
    account_number: str = ""

    def phi(self) -> dict[str, str]:
        return {k: v for k, v in _identity_items(self) if v}


def _identity_items(i: Identity) -> list[tuple[str, str]]:
    return [
        ("mrn", i.mrn),
        ("assigning_authority", i.assigning_authority),
        ("family_name", i.family_name),
        ("given_name", i.given_name),
        ("birth_date", i.birth_date),
        ("sex", i.sex),
        ("street", i.street),
        ("city", i.city),
        ("state", i.state),
        ("zip", i.zip),
        ("country", i.country),
        ("phone", i.phone),
        ("email", i.email),
        ("ssn", i.ssn),
        ("account_number", i.account_number),
    ]


@dataclass(frozen=True, slots=True)
class Visit:
    patient_class: str = ""  # HL7 table 0004 code as sent (E, I, O, P, B, R ...)
    patient_type: str = ""  # PV1-18, site-defined ("OBS" marks observation at most sites)
    location: Location = field(default_factory=Location)
    prior_location: Location = field(default_factory=Location)
    pending_location: Location = field(default_factory=Location)
    hospital_service: str = ""
    visit_number: str = ""
    admit_at: datetime | None = None
    discharge_at: datetime | None = None
    expected_admit_at: datetime | None = None
    expected_discharge_at: datetime | None = None
    acuity: int | None = None
    arrival_mode: str = ""  # HL7 table 0430 (A ambulance, H helicopter, C car, F on foot ...)


@dataclass(frozen=True, slots=True)
class AdtEvent:
    trigger: str
    control_id: str
    sending_app: str
    sending_facility: str
    message_at: datetime | None
    occurred_at: datetime  # EVN-6, else EVN-2, else MSH-7, else receipt time
    identity: Identity | None = None
    visit: Visit | None = None
    bed_location: Location | None = None  # A20
    bed_status: str = ""  # A20, HL7 table 0116
    prior_mrn: str = ""  # A40
    other_identity: Identity | None = None  # A17: the second patient
    other_visit: Visit | None = None

    @property
    def feed(self) -> str:
        """The feed this message came from: its sending application (MSH-3)."""
        return self.sending_app or "unknown"


def parse_dtm(value: str, tz: tzinfo) -> datetime | None:
    """HL7 DTM/TS → aware UTC datetime, or None (see ``_parse_dtm``)."""
    if not value:
        return None
    return _parse_dtm(value, tz)


@lru_cache(maxsize=16384)
def _parse_dtm(value: str, tz: tzinfo) -> datetime | None:
    """HL7 DTM/TS ``YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]`` → aware UTC datetime.

    Times without an offset are local to the site (HL7 2.5 §2.A.22: the sender's time zone
    applies), hence ``tz``. Returns None for an empty or unreadable value. Cached: within a
    message MSH-7, EVN-2 and EVN-6 are usually the same string.
    """
    value = value.strip()
    offset: timezone | None = None
    for sign in ("+", "-"):
        p = value.find(sign, 4)
        if p != -1:
            zone = value[p + 1 :]
            value = value[:p]
            if len(zone) == 4 and zone.isdigit():
                minutes = int(zone[:2]) * 60 + int(zone[2:])
                offset = timezone(timedelta(minutes=minutes if sign == "+" else -minutes))
            break
    frac = 0
    if "." in value:
        value, f = value.split(".", 1)
        if f.isdigit():
            frac = int((f + "000000")[:6])
    if not value.isdigit() or len(value) < 4 or len(value) > 14 or len(value) % 2:
        return None
    try:
        dt = datetime(
            int(value[0:4]),
            int(value[4:6] or 1),
            int(value[6:8] or 1),
            int(value[8:10] or 0),
            int(value[10:12] or 0),
            int(value[12:14] or 0),
            frac,
            tzinfo=offset or tz,
        )
    except ValueError:
        return None
    return dt.astimezone(UTC)


def _location(seg: Segment, n: int) -> Location:
    c = seg.components(n)
    if not c:
        return Location()
    n_c = len(c)
    return Location(
        unit=c[0].strip(),
        room=c[1].strip() if n_c > 1 else "",
        bed=c[2].strip() if n_c > 2 else "",
        facility=c[3].strip() if n_c > 3 else "",
    )


def _at(c: list[str], i: int) -> str:
    return c[i] if i < len(c) else ""


def _identity(pid: Segment) -> Identity:
    mrn = ""
    authority = ""
    reps = pid.repetitions(3)
    for rep in range(len(reps)):
        c = pid.components(3, rep) if len(reps) > 1 else pid.components(3)
        if not c or not c[0]:
            continue
        is_mr = len(c) > 4 and c[4] == "MR"
        if not mrn or is_mr:
            mrn = c[0]
            authority = _at(c, 3)
            if is_mr:
                break
    if not mrn:
        # v2.3 senders sometimes still fill only PID-2 (external ID, withdrawn in v2.5).
        mrn = pid.get(2)
    if not mrn:
        raise MessageRejected(
            AckCode.AE,
            ErrorCode.REQUIRED_FIELD_MISSING,
            "PID-3 patient identifier missing",
            "PID",
            3,
        )
    name = pid.components(5)
    addr = pid.components(11)
    # PID-13 XTN: v2.3 puts the number in component 1; v2.5+ may use 6/7 (area code, local
    # number) or 12 (unformatted); component 4 is the e-mail address.
    phone = email = ""
    for rep in range(len(pid.repetitions(13))):
        t = pid.components(13, rep)
        if not phone:
            phone = _at(t, 0) or _at(t, 11) or (_at(t, 5) + _at(t, 6))
        if not email:
            email = _at(t, 3)
    return Identity(
        mrn=mrn,
        assigning_authority=authority,
        family_name=_at(name, 0),
        given_name=_at(name, 1),
        birth_date=pid.get(7)[:8],
        sex=pid.get(8),
        street=_at(addr, 0),
        city=_at(addr, 2),
        state=_at(addr, 3),
        zip=_at(addr, 4),
        country=_at(addr, 5),
        phone=phone,
        email=email,
        ssn=pid.get(19),
        account_number=pid.get(18),
    )


def _visit(pv1: Segment | None, pv2: Segment | None, tz: tzinfo) -> Visit:
    if pv1 is None:
        return Visit()
    acuity: int | None = None
    arrival_mode = ""
    expected_admit = expected_discharge = None
    if pv2 is not None:
        prio = pv2.get(25)
        if prio.isdigit() and 1 <= int(prio) <= 5:
            acuity = int(prio)
        arrival_mode = pv2.get(38)
        expected_admit = parse_dtm(pv2.get(8), tz)
        expected_discharge = parse_dtm(pv2.get(9), tz)
    n = len(pv1.fields)
    return Visit(
        patient_class=pv1.get(2).strip().upper(),
        patient_type=pv1.get(18).strip().upper() if n > 18 else "",
        location=_location(pv1, 3),
        prior_location=_location(pv1, 6) if n > 6 else Location(),
        pending_location=_location(pv1, 42) if n > 42 else Location(),
        hospital_service=pv1.get(10) if n > 10 else "",
        visit_number=pv1.get(19) if n > 19 else "",
        admit_at=parse_dtm(pv1.get(44), tz) if n > 44 else None,
        discharge_at=parse_dtm(pv1.get(45), tz) if n > 45 else None,
        expected_admit_at=expected_admit,
        expected_discharge_at=expected_discharge,
        acuity=acuity,
        arrival_mode=arrival_mode,
    )


def _following(msg: Message, start: int, name: str, stop: str) -> Segment | None:
    """The first ``name`` segment after index ``start`` and before the next ``stop`` segment."""
    for s in msg.segments[start + 1 :]:
        if s.name == stop:
            return None
        if s.name == name:
            return s
    return None


def event_from_message(msg: Message, tz: tzinfo, received_at: datetime) -> AdtEvent:
    """Read one ADT message. Raises :class:`MessageRejected` with the ACK it deserves."""
    msh = msg.msh
    msg_type = msh.get(9, 1).strip().upper()
    trigger = msh.get(9, 2).strip().upper()
    control_id = msh.get(10).strip()
    if not control_id:
        raise MessageRejected(
            AckCode.AR, ErrorCode.REQUIRED_FIELD_MISSING, "MSH-10 control ID missing", "MSH", 10
        )
    if not msg_type:
        raise MessageRejected(
            AckCode.AR, ErrorCode.REQUIRED_FIELD_MISSING, "MSH-9 message type missing", "MSH", 9
        )
    if msg_type != "ADT":
        raise MessageRejected(
            AckCode.AR,
            ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            f"message type {msg_type[:10]} is not supported",
            "MSH",
            9,
        )
    evn = msg.segment("EVN")
    if not trigger and evn is not None:
        trigger = evn.get(1).strip().upper()  # v2.3 senders may put the trigger only in EVN-1
    if trigger not in SUPPORTED_TRIGGERS:
        raise MessageRejected(
            AckCode.AR,
            ErrorCode.UNSUPPORTED_EVENT,
            f"event {trigger[:10] or '(none)'} is not supported",
            "MSH",
            9,
        )
    message_at = parse_dtm(msh.get(7), tz)
    occurred = None
    if evn is not None:
        occurred = parse_dtm(evn.get(6), tz) or parse_dtm(evn.get(2), tz)
    occurred_at = occurred or message_at or received_at
    sending_app = msh.get(3)
    sending_facility = msh.get(4)

    def event(**kw: Any) -> AdtEvent:
        return AdtEvent(
            trigger=trigger,
            control_id=control_id,
            sending_app=sending_app,
            sending_facility=sending_facility,
            message_at=message_at,
            occurred_at=occurred_at,
            **kw,
        )

    if trigger == "A20":
        npu = msg.segment("NPU")
        if npu is None or not npu.get(1):
            raise MessageRejected(
                AckCode.AE, ErrorCode.REQUIRED_FIELD_MISSING, "NPU-1 bed location missing", "NPU", 1
            )
        status = npu.get(2).strip().upper()
        if status not in BED_STATUSES:
            raise MessageRejected(
                AckCode.AE,
                ErrorCode.TABLE_VALUE_NOT_FOUND,
                f"NPU-2 bed status {status[:5]!r} is not in HL7 table 0116",
                "NPU",
                2,
            )
        return event(bed_location=_location(npu, 1), bed_status=status)

    pid_index = next((i for i, s in enumerate(msg.segments) if s.name == "PID"), -1)
    if pid_index == -1:
        raise MessageRejected(
            AckCode.AE, ErrorCode.SEGMENT_SEQUENCE, "PID segment missing", "PID", 0
        )
    pid = msg.segments[pid_index]
    identity = _identity(pid)
    pv1 = _following(msg, pid_index, "PV1", "PID")
    pv2 = _following(msg, pid_index, "PV2", "PID")
    visit = _visit(pv1, pv2, tz)
    if trigger == "A40":
        mrg = _following(msg, pid_index, "MRG", "PID")
        prior = ""
        if mrg is not None:
            prior = mrg.get(1) or mrg.get(4)  # MRG-4 prior patient ID was the v2.3 habit
        if not prior:
            raise MessageRejected(
                AckCode.AE,
                ErrorCode.REQUIRED_FIELD_MISSING,
                "MRG-1 prior patient identifier missing",
                "MRG",
                1,
            )
        return event(identity=identity, visit=visit, prior_mrn=prior)
    if trigger == "A17":
        second = next(
            (i for i, s in enumerate(msg.segments) if s.name == "PID" and i > pid_index), -1
        )
        if second == -1:
            raise MessageRejected(
                AckCode.AE, ErrorCode.SEGMENT_SEQUENCE, "A17 needs two PID/PV1 groups", "PID", 0
            )
        pid2 = msg.segments[second]
        other = _identity(pid2)
        other_visit = _visit(
            _following(msg, second, "PV1", "PID"), _following(msg, second, "PV2", "PID"), tz
        )
        return event(
            identity=identity,
            visit=visit,
            other_identity=other,
            other_visit=other_visit,
        )
    if pv1 is None and trigger not in ("A08", "A11", "A13", "A25", "A27", "A26"):
        raise MessageRejected(
            AckCode.AE, ErrorCode.SEGMENT_SEQUENCE, "PV1 segment missing", "PV1", 0
        )
    return event(identity=identity, visit=visit)
