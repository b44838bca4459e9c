"""Fixed vocabularies of the wire contracts.

Each unit type maps to the OASIS EDXL-HAVE bed type a regional board expects and to the US
(HHS / CDC NHSN hospital capacity) reporting group the hub aggregates to. Adding a value is a
backward-compatible change; renaming or removing one is not.
"""

from __future__ import annotations

from enum import StrEnum


class UnitType(StrEnum):
    ADULT_ICU = "adult_icu"
    PEDIATRIC_ICU = "pediatric_icu"
    NEONATAL_ICU = "neonatal_icu"
    MEDICAL_SURGICAL = "medical_surgical"
    PEDIATRICS = "pediatrics"
    PSYCHIATRIC = "psychiatric"
    BURN = "burn"
    ISOLATION = "isolation"
    OBSTETRICS = "obstetrics"
    EMERGENCY = "emergency"
    OPERATING_ROOM = "operating_room"
    STEP_DOWN = "step_down"
    OBSERVATION = "observation"
    REHABILITATION = "rehabilitation"
    OTHER = "other"


# EDXL-HAVE 1.0 BedType values (OASIS standard, 2008, section 3.3.x "BedCapacity").
# HAVE has no obstetric, step-down or observation bed type; None means an exporter sends the
# unit under the "Other" value list of its own (HAVE allows a custom ValueListURN).
EDXL_HAVE_BED_TYPE: dict[UnitType, str | None] = {
    UnitType.ADULT_ICU: "AdultICU",
    UnitType.PEDIATRIC_ICU: "PediatricICU",
    UnitType.NEONATAL_ICU: "NeonatalICU",
    UnitType.MEDICAL_SURGICAL: "MedicalSurgical",
    UnitType.PEDIATRICS: "Pediatrics",
    UnitType.PSYCHIATRIC: "AdultPsychiatric",
    UnitType.BURN: "Burn",
    # Airborne-infection isolation rooms are negative-pressure ("negative flow") rooms.
    UnitType.ISOLATION: "NegativeFlowIsolation",
    UnitType.OBSTETRICS: None,
    UnitType.EMERGENCY: "EmergencyDepartment",
    UnitType.OPERATING_ROOM: "OperatingRooms",
    UnitType.STEP_DOWN: None,
    UnitType.OBSERVATION: None,
    UnitType.REHABILITATION: "RehabLongTermCare",
    UnitType.OTHER: None,
}


class CapacityGroup(StrEnum):
    """US hospital capacity reporting groups (HHS / CDC NHSN hospital respiratory and bed
    capacity reporting): ICU and inpatient beds, adult and pediatric, reported separately."""

    ADULT_ICU = "adult_icu"
    PEDIATRIC_ICU = "pediatric_icu"
    NEONATAL_ICU = "neonatal_icu"
    ADULT_INPATIENT = "adult_inpatient"
    PEDIATRIC_INPATIENT = "pediatric_inpatient"
    EMERGENCY_DEPARTMENT = "emergency_department"
    NOT_REPORTED = "not_reported"


# Observation and operating-room places are not inpatient beds in the HHS/NHSN definitions;
# step-down, burn, isolation, obstetric, psychiatric and rehabilitation beds are staffed
# inpatient beds (adult unless the unit is pediatric).
CAPACITY_GROUP: dict[UnitType, CapacityGroup] = {
    UnitType.ADULT_ICU: CapacityGroup.ADULT_ICU,
    UnitType.PEDIATRIC_ICU: CapacityGroup.PEDIATRIC_ICU,
    UnitType.NEONATAL_ICU: CapacityGroup.NEONATAL_ICU,
    UnitType.MEDICAL_SURGICAL: CapacityGroup.ADULT_INPATIENT,
    UnitType.PEDIATRICS: CapacityGroup.PEDIATRIC_INPATIENT,
    UnitType.PSYCHIATRIC: CapacityGroup.ADULT_INPATIENT,
    UnitType.BURN: CapacityGroup.ADULT_INPATIENT,
    UnitType.ISOLATION: CapacityGroup.ADULT_INPATIENT,
    UnitType.OBSTETRICS: CapacityGroup.ADULT_INPATIENT,
    UnitType.EMERGENCY: CapacityGroup.EMERGENCY_DEPARTMENT,
    UnitType.OPERATING_ROOM: CapacityGroup.NOT_REPORTED,
    UnitType.STEP_DOWN: CapacityGroup.ADULT_INPATIENT,
    UnitType.OBSERVATION: CapacityGroup.NOT_REPORTED,
    UnitType.REHABILITATION: CapacityGroup.ADULT_INPATIENT,
    UnitType.OTHER: CapacityGroup.NOT_REPORTED,
}


class FlowEventType(StrEnum):
    """Patient movements. The HL7 v2.5 ADT trigger each one usually comes from is noted."""

    ADMIT = "admit"  # A01
    TRANSFER = "transfer"  # A02
    DISCHARGE = "discharge"  # A03
    REGISTER = "register"  # A04 (ED / outpatient registration)
    PREADMIT = "preadmit"  # A05
    CLASS_CHANGE = "class_change"  # A06 / A07
    UPDATE = "update"  # A08
    CANCEL_ADMIT = "cancel_admit"  # A11
    CANCEL_TRANSFER = "cancel_transfer"  # A12
    CANCEL_DISCHARGE = "cancel_discharge"  # A13
    PENDING_ADMIT = "pending_admit"  # A14
    PENDING_TRANSFER = "pending_transfer"  # A15
    PENDING_DISCHARGE = "pending_discharge"  # A16
    BED_SWAP = "bed_swap"  # A17
    LEAVE_OF_ABSENCE = "leave_of_absence"  # A21
    RETURN_FROM_LOA = "return_from_loa"  # A22
    MERGE = "merge"  # A34 / A40
    CANCEL_PENDING_ADMIT = "cancel_pending_admit"  # A27
    CANCEL_PENDING_DISCHARGE = "cancel_pending_discharge"  # A25
    CANCEL_PENDING_TRANSFER = "cancel_pending_transfer"  # A26


class PatientClass(StrEnum):
    """PV1-2 patient class, as in FHIR Encounter.class (v3 ActCode)."""

    EMERGENCY = "emergency"
    INPATIENT = "inpatient"
    OBSERVATION = "observation"
    OUTPATIENT = "outpatient"
    PREADMIT = "preadmit"


class ArrivalMode(StrEnum):
    AMBULANCE = "ambulance"
    WALK_IN = "walk_in"


class Sex(StrEnum):
    """Administrative sex (HL7 table 0001 reduced to what a release may carry)."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class Audience(StrEnum):
    """Who a regional record is released to; the policy has a section for each."""

    REGIONAL_OPERATIONS = "regional_operations"
    PEER_HOSPITALS = "peer_hospitals"
    PUBLIC_BENCHMARKS = "public_benchmarks"


class DateGranularity(StrEnum):
    """How much of a timestamp a release keeps, finest first."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


GRANULARITY_ORDER: tuple[DateGranularity, ...] = tuple(DateGranularity)
