"""The agent's view of the shared vocabulary (owned by ``deid.contracts``) plus HL7 mappings."""

from __future__ import annotations

from deid.contracts.vocabulary import ArrivalMode, PatientClass, UnitType

__all__ = [
    "UNIT_TYPES",
    "arrival_mode_from_hl7",
    "is_ed",
    "patient_class_from_hl7",
]

UNIT_TYPES: frozenset[str] = frozenset(t.value for t in UnitType)


def is_ed(unit_type: str) -> bool:
    return unit_type == UnitType.EMERGENCY.value


def patient_class_from_hl7(pv1_2: str, pv1_18: str = "") -> PatientClass | None:
    """PV1-2 (HL7 table 0004) → the contract's patient class.

    Table 0004 has no observation code; sites mark observation with PV1-18 patient type "OBS"
    (or send a local "OBS" class), so both are honoured. B (obstetrics) is an inpatient stay,
    R (recurring) and C (commercial account) are outpatient encounters.
    """
    code = pv1_2.strip().upper()
    ptype = pv1_18.strip().upper()
    if code in ("OBS", "OBSENC") or ptype in ("OBS", "OBV", "OBSERVATION"):
        return PatientClass.OBSERVATION
    return {
        "E": PatientClass.EMERGENCY,
        "I": PatientClass.INPATIENT,
        "B": PatientClass.INPATIENT,
        "O": PatientClass.OUTPATIENT,
        "R": PatientClass.OUTPATIENT,
        "C": PatientClass.OUTPATIENT,
        "P": PatientClass.PREADMIT,
    }.get(code)


def arrival_mode_from_hl7(pv2_38: str) -> ArrivalMode | None:
    """PV2-38 mode of arrival (HL7 table 0430): A ambulance and H helicopter are EMS arrivals;
    C car, F on foot and P public transport walk in; O other / U unknown say nothing."""
    code = pv2_38.strip().upper()[:1]
    if code in ("A", "H"):
        return ArrivalMode.AMBULANCE
    if code in ("C", "F", "P"):
        return ArrivalMode.WALK_IN
    return None
