"""Twin changes → wire records (``deid.contracts``) → outbox rows.

PHI goes only inside ``RawFlowEvent.phi_ciphertext``, encrypted with the patient's own data key
from the site key store (``deid.keystore``); the surrogate is random and the MRN → surrogate
lookup stays in the key store at the site.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import date, datetime
from typing import Any, Protocol

import orjson

from deid.contracts import (
    FeedStatus,
    ForecastPoint,
    RawCensusSnapshot,
    RawFlowEvent,
    RawHeartbeat,
    Record,
    raw_topic,
    record_key,
)
from deid.contracts.vocabulary import ArrivalMode, FlowEventType, PatientClass, Sex, UnitType
from site_agent import __version__
from site_agent.hl7.adt import Identity
from site_agent.twin.census import UnitCensus
from site_agent.twin.model import Flow, Twin

__all__ = [
    "Forecaster",
    "OutboxRecord",
    "PhiSealer",
    "Publisher",
    "phi_from_identity",
    "seal_flows",
]

# (event_id, record_type, topic, key, payload, created_at, sealed)
OutboxRecord = tuple[str, str, str, bytes, bytes, str, int]
Forecaster = Callable[[UnitCensus], Sequence[ForecastPoint]]


class PhiSealer(Protocol):
    """What the agent needs from ``deid.keystore.PatientKeyStore``."""

    def surrogate_for(self, mrn: str) -> str: ...

    def surrogates_for(self, mrns: Sequence[str]) -> list[str]: ...

    def encrypt_phi(self, surrogate_id: str, phi: dict[str, Any]) -> tuple[str, str]: ...


# HL7 table 0001 administrative sex → the contract's reduced set.
_SEX = {
    "F": Sex.FEMALE,
    "M": Sex.MALE,
    "O": Sex.OTHER,
    "A": Sex.OTHER,
    "X": Sex.OTHER,
    "N": Sex.UNKNOWN,
    "U": Sex.UNKNOWN,
}


def _birth_date(value: str) -> str | None:
    if len(value) >= 8 and value[:8].isdigit():
        try:
            return date(int(value[:4]), int(value[4:6]), int(value[6:8])).isoformat()
        except ValueError:
            return None
    return None


def phi_from_identity(mrn: str, ident: Identity | None) -> dict[str, Any]:
    """The ``PatientPHI`` JSON for one patient (only what the feed carried)."""
    out: dict[str, Any] = {"mrn": mrn}
    if ident is None:
        return out
    name = " ".join(x for x in (ident.given_name, ident.family_name) if x)
    if name:
        out["name"] = name
    bd = _birth_date(ident.birth_date)
    if bd:
        out["birth_date"] = bd
    sex = _SEX.get(ident.sex.strip().upper()[:1]) if ident.sex else None
    if sex is not None:
        out["sex"] = sex.value
    out.update(
        (key, value)
        for key, value in (
            ("address", ident.street),
            ("city", ident.city),
            ("state", ident.state),
            ("zip", ident.zip),
            ("phone", ident.phone),
            ("email", ident.email),
            ("ssn", ident.ssn),
        )
        if value
    )
    extra = {
        k: v
        for k, v in (
            ("account_number", ident.account_number),
            ("assigning_authority", ident.assigning_authority),
            ("country", ident.country),
        )
        if v
    }
    if extra:
        out["extra"] = extra
    return out


_DRAFT_VERSION = 1
_DRAFT_FIELDS = (
    "version",
    "event_id",
    "produced_at",
    "event_type",
    "occurred_at",
    "unit_code",
    "unit_type",
    "prior_unit_code",
    "prior_unit_type",
    "patient_class",
    "acuity",
    "arrival_mode",
    "decision_to_admit_at",
    "source",
    "mrn",
    "merged_mrn",
    "identity",
)


def astuple_identity(ident: Identity) -> tuple[str, ...]:
    """Identity fields in declaration order (``Identity(*fields)`` rebuilds it)."""
    return _identity_values(ident)


_IDENTITY_FIELDS = tuple(f.name for f in fields(Identity))
_identity_values = operator.attrgetter(*_IDENTITY_FIELDS)


def _draft_bytes(draft: list[Any]) -> bytes:
    """Compact JSON of a draft: orjson (C, ~10x the stdlib's speed; the same JSON), the
    stdlib for what orjson refuses (a lone surrogate in a decoded field)."""
    try:
        return orjson.dumps(draft)
    except TypeError:
        return json.dumps(draft, separators=(",", ":")).encode()


def _draft_values(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _uuid4() -> str:
    """A random (version 4) UUID string, without building a ``uuid.UUID`` object."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Publisher:
    """Builds the records of one site and turns them into outbox rows.

    Census snapshots and heartbeats are final records. A flow event is written as a *draft*
    (``sealed = 0``): the record's fields and event id plus the patient's PHI, in the clear, in
    the agent's own database — where the raw HL7 message already is. The relay process seals
    it (random surrogate, AES-256-GCM with the patient's key, the contract's ``encode()``)
    before anything leaves the agent. Sealing is the expensive part of a flow event; doing it
    in the relay process keeps it off the ACK path and puts it on the other core.
    """

    def __init__(self, site_code: str, forecaster: Forecaster | None = None) -> None:
        self.site_code = site_code
        self.topic = raw_topic(site_code)
        self.key = record_key(site_code)
        self.forecaster = forecaster
        self._created_at: datetime | None = None
        self._created = ""

    def _row(self, record: Record, created_at: str) -> OutboxRecord:
        return (
            record.event_id,
            record.record_type,
            self.topic,
            self.key,
            record.encode(),
            created_at,
            1,
        )

    def flow_rows(self, twin: Twin, flows: Sequence[Flow], now: datetime) -> list[OutboxRecord]:
        if not flows:
            return []
        if now is not self._created_at:  # one batch, one ``now``: format it once
            self._created_at = now
            self._created = now.isoformat()
        created = self._created
        out = []
        units = twin.units
        for f in flows:
            unit = units.get(f.unit_code) if f.unit_code else None
            prior = units.get(f.prior_unit_code) if f.prior_unit_code else None
            event_id = _uuid4()
            dta = f.decision_to_admit_at
            # A positional draft (see _DRAFT_FIELDS): this runs once per message on the ACK
            # path, so it is kept as cheap as possible; the relay turns it into the record.
            draft = [
                _DRAFT_VERSION,
                event_id,
                created,
                f.event_type.value,
                f.occurred_at.isoformat(),
                f.unit_code,
                unit.unit_type if unit is not None else None,
                f.prior_unit_code,
                prior.unit_type if prior is not None else None,
                f.patient_class or None,
                f.acuity,
                f.arrival_mode or None,
                dta.isoformat() if dta is not None else None,
                f.source,
                f.mrn,
                f.merged_mrn,
                _identity_values(f.identity) if f.identity is not None else None,
            ]
            out.append(
                (
                    event_id,
                    "raw.flow_event",
                    self.topic,
                    self.key,
                    _draft_bytes(draft),
                    created,
                    0,
                )
            )
        return out

    def snapshot_row(
        self, c: UnitCensus, *, stale: bool, now: datetime, source_kind: str
    ) -> OutboxRecord:
        forecast: tuple[ForecastPoint, ...] = ()
        if self.forecaster is not None:
            forecast = tuple(self.forecaster(c))
        record = RawCensusSnapshot(
            site_code=self.site_code,
            produced_at=now,
            unit_code=c.unit_code,
            unit_type=UnitType(c.unit_type),
            as_of=c.as_of,
            licensed_beds=c.licensed_beds,
            staffed_beds=c.staffed_beds,
            surge_beds=c.surge_beds,
            occupied_beds=c.occupied_beds,
            available_beds=c.available_beds,
            blocked_beds=c.blocked_beds,
            pending_admissions=c.pending_admissions,
            pending_discharges=c.pending_discharges,
            ed_waiting=c.ed_waiting,
            ed_in_treatment=c.ed_in_treatment,
            ed_boarding=c.ed_boarding,
            longest_boarding_minutes=c.longest_boarding_minutes,
            boarding_minutes=c.boarding_minutes,
            offload_minutes=c.offload_minutes,
            source=c.source or source_kind,
            last_message_at=c.last_message_at,
            stale=stale,
            forecast=forecast,
        )
        return self._row(record, now.isoformat())

    def heartbeat_row(
        self, feeds: tuple[FeedStatus, ...], backlog: int, now: datetime
    ) -> OutboxRecord:
        record = RawHeartbeat(
            site_code=self.site_code,
            produced_at=now,
            agent_version=__version__,
            feeds=feeds,
            outbox_backlog=backlog,
        )
        return self._row(record, now.isoformat())


def seal_flows(site_code: str, sealer: PhiSealer, drafts: Sequence[bytes]) -> list[bytes]:
    """Draft flow events → final ``RawFlowEvent`` JSON: random surrogate from the site key
    store (new patients' surrogates and keys in one key-store commit), PHI encrypted with the
    patient's own key, encoded by the contract. Runs in the relay process."""
    parsed = [dict(zip(_DRAFT_FIELDS, _draft_values(d), strict=True)) for d in drafts]
    mrns = list(
        dict.fromkeys(
            [d["mrn"] for d in parsed] + [d["merged_mrn"] for d in parsed if d.get("merged_mrn")]
        )
    )
    surrogates = dict(zip(mrns, sealer.surrogates_for(mrns), strict=True))
    out = []
    for d in parsed:
        surrogate = surrogates[d["mrn"]]
        ident = Identity(*d["identity"]) if d["identity"] is not None else None
        key_id, ciphertext = sealer.encrypt_phi(surrogate, phi_from_identity(d["mrn"], ident))
        dta = d.get("decision_to_admit_at")
        record = RawFlowEvent(
            site_code=site_code,
            event_id=d["event_id"],
            produced_at=datetime.fromisoformat(d["produced_at"]),
            event_type=FlowEventType(d["event_type"]),
            occurred_at=datetime.fromisoformat(d["occurred_at"]),
            unit_code=d.get("unit_code"),
            unit_type=UnitType(d["unit_type"]) if d.get("unit_type") else None,
            prior_unit_code=d.get("prior_unit_code"),
            prior_unit_type=UnitType(d["prior_unit_type"]) if d.get("prior_unit_type") else None,
            patient_class=PatientClass(d["patient_class"]) if d.get("patient_class") else None,
            acuity=d.get("acuity"),
            arrival_mode=ArrivalMode(d["arrival_mode"]) if d.get("arrival_mode") else None,
            decision_to_admit_at=datetime.fromisoformat(dta) if dta else None,
            surrogate_id=surrogate,
            merged_surrogate_id=surrogates[d["merged_mrn"]] if d.get("merged_mrn") else None,
            key_id=key_id,
            phi_ciphertext=ciphertext,
            source=d.get("source") or "unknown",
        )
        out.append(record.encode())
    return out
