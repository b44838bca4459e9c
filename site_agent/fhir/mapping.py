"""FHIR R5 Encounter and Location → the twin.

Validation is ``fhir.resources`` (R5 models, pydantic 2): structure, data types, cardinality.
It does not check required code bindings, so the few codes we act on are checked here against
their R5 value sets (Encounter.status, Encounter.location.status, Location.status,
Location.operationalStatus = HL7 v2 table 0116, Bundle.type).

Mapping (docs/hl7_fhir_mapping.md has the full table):
- Location with form ``wa`` (ward) or a unit type: a unit. Its code is the first identifier
  value (else the name, else the id); one already configured keeps its configuration. A
  Location of form ``ro`` (room) or ``bd`` (bed) hangs off its unit through ``partOf``. A
  bed's ``operationalStatus`` (v2-0116) is its bed status.
- Encounter: ``subject.identifier.value`` is the patient key (the MRN, as PID-3 in HL7), else
  the Patient id from ``subject.reference``. Status planned → pre-admission/pending;
  in-progress → in house at the active ``location``; on-hold → leave of absence;
  discharged/completed → discharge; cancelled/entered-in-error → cancel. ``class`` (v3
  ActCode) → patient class.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fhir.resources.bundle import Bundle
from fhir.resources.encounter import Encounter
from fhir.resources.location import Location
from pydantic import ValidationError

from deid.contracts.vocabulary import PatientClass, UnitType
from site_agent.hl7.ack import ErrorCode
from site_agent.twin.model import ApplyError, Unit

if TYPE_CHECKING:
    from site_agent.ingest import IngestWriter

__all__ = [
    "FhirInvalid",
    "ParsedRequest",
    "apply_request",
    "parse_request",
    "replay_fhir",
]

ENCOUNTER_STATUS = frozenset(
    {
        "planned",
        "in-progress",
        "on-hold",
        "discharged",
        "completed",
        "cancelled",
        "discontinued",
        "entered-in-error",
        "unknown",
    }
)
ENCOUNTER_LOCATION_STATUS = frozenset({"planned", "active", "reserved", "completed"})
LOCATION_STATUS = frozenset({"active", "suspended", "inactive"})
BED_STATUS_0116 = frozenset("CHIKOU")
# v3 ActCode (Encounter.class) → patient class.
ACT_CODE_CLASS = {
    "EMER": PatientClass.EMERGENCY,
    "IMP": PatientClass.INPATIENT,
    "ACUTE": PatientClass.INPATIENT,
    "NONAC": PatientClass.INPATIENT,
    "OBSENC": PatientClass.OBSERVATION,
    "PRENC": PatientClass.PREADMIT,
    "AMB": PatientClass.OUTPATIENT,
    "VR": PatientClass.OUTPATIENT,
    "HH": PatientClass.OUTPATIENT,
    "FLD": PatientClass.OUTPATIENT,
    "SS": PatientClass.OUTPATIENT,
}
# v3 RoleCode service delivery location types (Location.type) → unit type.
ROLE_CODE_UNIT = {
    "ICU": UnitType.ADULT_ICU,
    "CCU": UnitType.ADULT_ICU,
    "SICU": UnitType.ADULT_ICU,
    "PEDICU": UnitType.PEDIATRIC_ICU,
    "PEDNICU": UnitType.NEONATAL_ICU,
    "NICU": UnitType.NEONATAL_ICU,
    "ER": UnitType.EMERGENCY,
    "ETU": UnitType.EMERGENCY,
    "BU": UnitType.BURN,
    "PEDU": UnitType.PEDIATRICS,
    "CHR": UnitType.REHABILITATION,
    "RH": UnitType.REHABILITATION,
    "PSI": UnitType.PSYCHIATRIC,
    "PSYCHF": UnitType.PSYCHIATRIC,
    "INPHOS": UnitType.PSYCHIATRIC,
    "OR": UnitType.OPERATING_ROOM,
    "HU": UnitType.MEDICAL_SURGICAL,
    "MHSP": UnitType.MEDICAL_SURGICAL,
    "PEDHU": UnitType.PEDIATRICS,
    "OB": UnitType.OBSTETRICS,
    "MATER": UnitType.OBSTETRICS,
    "ISO": UnitType.ISOLATION,
    "INFD": UnitType.ISOLATION,
}


class FhirInvalid(ValueError):
    """Input that is not valid R5 for what we accept: answered 400 with an OperationOutcome."""

    def __init__(self, issues: list[str], code: str = "invalid") -> None:
        super().__init__("; ".join(issues))
        self.issues = issues
        self.code = code


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """Validated resources from one request body, in the order they are to be applied."""

    resources: tuple[Encounter | Location, ...]
    bundle_type: str | None  # "batch" / "transaction" / None for a single resource


def _pydantic_issues(exc: ValidationError, prefix: str) -> list[str]:
    out = []
    for err in exc.errors()[:20]:
        where = ".".join(str(x) for x in err.get("loc", ()))
        out.append(f"{prefix}{where}: {err.get('msg', 'invalid')}")
    return out


def _validate_one(data: Any, where: str) -> Encounter | Location:
    if not isinstance(data, dict):
        raise FhirInvalid([f"{where}: expected a JSON object"], "structure")
    kind = data.get("resourceType")
    try:
        if kind == "Encounter":
            enc = Encounter.model_validate(data)
            _check_encounter(enc, where)
            return enc
        if kind == "Location":
            loc = Location.model_validate(data)
            _check_location(loc, where)
            return loc
    except ValidationError as exc:
        raise FhirInvalid(_pydantic_issues(exc, f"{where}{kind}.")) from None
    raise FhirInvalid(
        [f"{where}: resourceType {str(kind)[:40]!r} is not accepted here"], "not-supported"
    )


def _check_encounter(enc: Encounter, where: str) -> None:
    issues = []
    if enc.status not in ENCOUNTER_STATUS:
        issues.append(
            f"{where}Encounter.status: {str(enc.status)[:30]!r} is not in the R5 value set"
        )
    for i, loc in enumerate(enc.location or ()):
        if loc.status is not None and loc.status not in ENCOUNTER_LOCATION_STATUS:
            issues.append(f"{where}Encounter.location[{i}].status: not in the R5 value set")
    if enc.subject is None or not (
        (enc.subject.identifier is not None and enc.subject.identifier.value)
        or (enc.subject.reference or "").startswith("Patient/")
    ):
        issues.append(f"{where}Encounter.subject: a Patient reference or identifier is required")
    if issues:
        raise FhirInvalid(issues)


def _check_location(loc: Location, where: str) -> None:
    issues = []
    if loc.status is not None and loc.status not in LOCATION_STATUS:
        issues.append(f"{where}Location.status: not in the R5 value set")
    if loc.operationalStatus is not None and loc.operationalStatus.code not in BED_STATUS_0116:
        issues.append(f"{where}Location.operationalStatus: not an HL7 v2 table 0116 code")
    if not (loc.id or loc.identifier):
        issues.append(f"{where}Location: an id or an identifier is required")
    if issues:
        raise FhirInvalid(issues)


def parse_request(
    body: bytes, *, expected_type: str | None = None, url_id: str | None = None
) -> ParsedRequest:
    """Validate a request body: one Encounter/Location, or a batch/transaction Bundle of them."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise FhirInvalid(["body is not JSON"], "structure") from None
    if not isinstance(data, dict):
        raise FhirInvalid(["body must be a FHIR resource (a JSON object)"], "structure")
    kind = data.get("resourceType")
    if expected_type is not None and kind != expected_type:
        raise FhirInvalid([f"resourceType must be {expected_type}"], "invalid")
    if url_id is not None and data.get("id") != url_id:
        # FHIR update: the body SHALL carry the id of the URL.
        raise FhirInvalid(["resource id must match the id in the URL"], "invalid")
    if kind != "Bundle":
        return ParsedRequest((_validate_one(data, ""),), None)
    try:
        bundle = Bundle.model_validate(data)
    except ValidationError as exc:
        raise FhirInvalid(_pydantic_issues(exc, "Bundle.")) from None
    if bundle.type not in ("batch", "transaction"):
        raise FhirInvalid(["Bundle.type must be batch or transaction"], "not-supported")
    resources: list[Encounter | Location] = []
    for i, entry in enumerate(data.get("entry") or []):
        request = (entry or {}).get("request") or {}
        if request.get("method") not in ("POST", "PUT"):
            raise FhirInvalid(
                [f"Bundle.entry[{i}].request.method must be POST or PUT"], "not-supported"
            )
        resources.append(_validate_one((entry or {}).get("resource"), f"Bundle.entry[{i}]."))
    # Locations first: an Encounter in the same Bundle may point at a Location it creates.
    ordered: list[Encounter | Location] = [r for r in resources if isinstance(r, Location)]
    ordered += [r for r in resources if isinstance(r, Encounter)]
    return ParsedRequest(tuple(ordered), str(bundle.type))


def _codes(concepts: Sequence[Any] | None) -> list[str]:
    return [
        str(coding.code)
        for cc in concepts or ()
        for coding in getattr(cc, "coding", None) or ()
        if coding.code
    ]


def _location_key(loc: Location) -> str:
    if loc.id:
        return str(loc.id)
    assert loc.identifier  # noqa: S101 - _check_location guarantees an id or an identifier
    return str(loc.identifier[0].value)


def _ref_id(reference: str | None) -> str | None:
    if not reference:
        return None
    return reference.rsplit("/", 1)[-1] if "/" in reference else reference


def _apply_location(writer: IngestWriter, loc: Location, feed: str, at: datetime) -> None:
    twin = writer.twin
    store = writer.store
    key = _location_key(loc)
    form = _codes([loc.form]) if loc.form is not None else []
    kind = form[0] if form else ""
    types = _codes(loc.type)
    name = str(loc.name or "")
    label = str((loc.identifier[0].value if loc.identifier else None) or name or key)
    unit_type = next((ROLE_CODE_UNIT[t] for t in types if t in ROLE_CODE_UNIT), None)
    if kind in ("wa", "area") or (kind not in ("ro", "bd") and unit_type is not None):
        unit = twin.unit_for(label) or (twin.unit_for(name) if name else None)
        if unit is None:
            unit = Unit(
                code=label[:32],
                unit_type=(unit_type or UnitType.OTHER).value,
                name=name or label,
                origin="fhir",
            )
            twin.add_unit(unit)
            twin.changes.unit_rows.add(unit.code)
            twin.changes.notes.append(f"{feed}: new unit {unit.code} from Location/{key}")
        store.save_fhir_location(key, unit.code, "", "")
        return
    parent = _ref_id(loc.partOf.reference) if loc.partOf is not None else None
    mapped = store.fhir_location(parent) if parent else None
    if mapped is None:
        raise ApplyError(
            ErrorCode.UNKNOWN_KEY,
            f"Location/{key}: partOf {('Location/' + parent) if parent else '(none)'} is not a "
            "known ward or room",
        )
    unit_code, room, _ = mapped
    unit = twin.units.get(unit_code)
    if unit is None:
        raise ApplyError(ErrorCode.UNKNOWN_KEY, f"Location/{key}: unit {unit_code} is gone")
    if kind == "ro" or (kind != "bd" and not room):
        store.save_fhir_location(key, unit.code, label, "")
        return
    bed = label
    store.save_fhir_location(key, unit.code, room, bed)
    status = None
    if loc.operationalStatus is not None:
        status = str(loc.operationalStatus.code)
    elif loc.status in ("suspended", "inactive"):
        status = "C"  # out of use: closed, in table 0116 terms
    b = unit.beds.get((room, bed))
    if b is None:
        twin.set_bed_status(unit, room, bed, status or "U", "fhir", feed, at)
        b = unit.beds[(room, bed)]
        # Declared by the EHR, not improvised by a placement: a real, staffed bed.
        b.adhoc = False
        b.surge = False
        b.licensed = True
        b.staffed = loc.status in (None, "active")
        twin.changes.beds.add(b.key)
        twin.changes.unit_rows.add(unit.code)
    elif status is not None:
        twin.set_bed_status(unit, room, bed, status, "fhir", feed, at)


def _resolve_location(writer: IngestWriter, reference: Any) -> tuple[Unit, str, str] | None:
    twin = writer.twin
    ref = getattr(reference, "reference", None)
    key = _ref_id(ref)
    mapped = writer.store.fhir_location(key) if key else None
    if mapped is None:
        ident = getattr(reference, "identifier", None)
        value = getattr(ident, "value", None) if ident is not None else None
        display = getattr(reference, "display", None)
        for candidate in (value, display, key):
            if candidate and twin.unit_for(str(candidate)) is not None:
                unit = twin.unit_for(str(candidate))
                assert unit is not None  # noqa: S101
                return (unit, "", "")
        raise ApplyError(
            ErrorCode.UNKNOWN_KEY,
            f"Encounter.location: {str(ref or value)[:60]} is not a known Location",
        )
    unit = twin.units.get(mapped[0])
    if unit is None:
        raise ApplyError(ErrorCode.UNKNOWN_KEY, f"Encounter.location: unit {mapped[0]} is gone")
    return (unit, mapped[1], mapped[2])


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _apply_encounter(writer: IngestWriter, enc: Encounter, feed: str, at: datetime) -> None:
    subject = enc.subject
    assert subject is not None  # noqa: S101 - _check_encounter
    mrn = (
        str(subject.identifier.value)
        if subject.identifier is not None and subject.identifier.value
        else str(_ref_id(subject.reference))
    )
    enc_id = str(enc.id or (enc.identifier[0].value if enc.identifier else "") or "")
    classes = [ACT_CODE_CLASS[c] for c in _codes(enc.class_fhir) if c in ACT_CODE_CLASS]
    active = planned = None
    for entry in enc.location or ():
        if entry.status in (None, "active"):
            active = entry.location
        elif entry.status in ("planned", "reserved"):
            planned = entry.location
    location = _resolve_location(writer, active) if active is not None else None
    planned_loc = _resolve_location(writer, planned) if planned is not None else None
    period = enc.actualPeriod
    start = _dt(period.start) if period is not None else None
    end = _dt(period.end) if period is not None else None
    if enc_id:
        writer.store.save_fhir_encounter(enc_id, mrn)
    writer.twin.apply_encounter(
        mrn=mrn,
        status=str(enc.status),
        patient_class=classes[0] if classes else None,
        location=location,
        planned=planned_loc[0] if planned_loc is not None else None,
        start=start,
        end=end,
        encounter_id=enc_id,
        feed=feed,
        at=end if str(enc.status) in ("discharged", "completed") and end else at,
    )


def apply_request(
    writer: IngestWriter,
    request: ParsedRequest,
    feed: str,
    at: datetime,
    *,
    now: datetime | None = None,
    publish: bool = True,
) -> list[str]:
    """Apply validated resources in order; returns "Type/id" per resource. Runs on the writer,
    inside its transaction. ``at`` is when the request was received (event time when the
    resource gives none); ``publish`` writes outbox records (not when replaying)."""
    out = []
    for resource in request.resources:
        if isinstance(resource, Location):
            _apply_location(writer, resource, feed, at)
            out.append(f"Location/{_location_key(resource)}")
        else:
            _apply_encounter(writer, resource, feed, at)
            out.append(f"Encounter/{resource.id or ''}")
        if publish:
            writer.apply_changes(now or at)
    return out


def replay_fhir(writer: IngestWriter, raw: bytes, channel: str, received_at: datetime) -> None:
    """Re-apply a stored FHIR request to the twin (restart recovery): no outbox records."""
    request = parse_request(raw)
    apply_request(writer, request, channel, received_at, publish=False)
