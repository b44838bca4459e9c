"""OASIS EDXL-HAVE hospital availability XML from the live state, for regional status boards.

One ``HospitalStatus`` document holds one ``Hospital`` element per hospital, in the element
order of the HAVE hospital type: Organization, EmergencyDepartmentStatus (EMS traffic status
Normal/Advisory/Closed with its reason; ground-ambulance offload status Normal/Delayed and
minutes), HospitalBedCapacityStatus (one BedCapacity per bed type with CapacityStatus,
AvailableCount and BaselineCount), HospitalFacilityStatus, LastUpdateTime.

Staleness is never hidden: a hospital whose figures are stale gets no EMS traffic status (its
reason says why), no counts for stale bed types (a comment says why) and no facility status;
its LastUpdateTime is the oldest figure shown. Built with ``xml.etree`` (stdlib), so text is
escaped by the serializer, never by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from hub.census.selectors import HospitalLive, RegionLive

HAVE_NS = "urn:oasis:names:tc:emergency:EDXL:HAVE:2.0"
GML_NS = "http://www.opengis.net/gml/3.2"
CONTENT_TYPE = "application/xml; charset=utf-8"

# Bed types of HAVE 2.0 (its value list adds NeonatalICU, EmergencyDepartment, NurseryBeds,
# AdultPsychiatric, PediatricPsychiatric and RehabLongTermCare to 1.0's); unit types without
# a HAVE bed type are not exported as beds.
BED_TYPES = frozenset(
    {
        "AdultICU",
        "PediatricICU",
        "NeonatalICU",
        "EmergencyDepartment",
        "NurseryBeds",
        "MedicalSurgical",
        "RehabLongTermCare",
        "Burn",
        "Pediatrics",
        "AdultPsychiatric",
        "PediatricPsychiatric",
        "NegativeFlowIsolation",
        "OtherIsolation",
        "OperatingRooms",
    }
)
EMS_TRAFFIC = frozenset({"Normal", "Advisory", "Closed", "NotApplicable"})
OFFLOAD = frozenset({"Normal", "Delayed"})
FACILITY = frozenset({"Normal", "Compromised", "Evacuating", "Closed"})

ET.register_namespace("", HAVE_NS)
ET.register_namespace("gml", GML_NS)


def _q(tag: str) -> str:
    return f"{{{HAVE_NS}}}{tag}"


def _sub(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    element = ET.SubElement(parent, _q(tag))
    if text is not None:
        element.text = str(text)
    return element


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hospital(parent: ET.Element, live: HospitalLive, now: datetime) -> None:
    h = live.hospital
    hospital = _sub(parent, "Hospital")

    organization = _sub(hospital, "Organization")
    info = _sub(organization, "OrganizationInformation")
    _sub(info, "OrganizationName", h.name)
    _sub(info, "OrganizationID", h.site_code)
    if h.latitude is not None and h.longitude is not None:
        geo = _sub(organization, "OrganizationGeoLocation")
        point = ET.SubElement(geo, f"{{{GML_NS}}}Point")
        ET.SubElement(point, f"{{{GML_NS}}}pos").text = f"{h.latitude:.5f} {h.longitude:.5f}"

    ed = live.ed
    if ed is not None:
        ed_status = _sub(hospital, "EmergencyDepartmentStatus")
        traffic = _sub(ed_status, "EMSTraffic")
        if ed.ems_traffic in EMS_TRAFFIC:
            _sub(traffic, "EMSTrafficStatus", ed.ems_traffic)
        if ed.ems_traffic_reason:
            _sub(traffic, "EMSTrafficReason", ed.ems_traffic_reason)
        if ed.offload_status in OFFLOAD:
            ambulance = _sub(ed_status, "EMSAmbulanceStatus")
            _sub(ambulance, "EMSOffloadStatus", ed.offload_status)
            minutes = ed.offload_p50_minutes
            if minutes is not None:
                _sub(ambulance, "EMSOffloadMinutes", minutes)

    exported = [b for b in live.beds if b.edxl_bed_type in BED_TYPES]
    ed_unit = next((u for u in live.units if u.edxl_bed_type == "EmergencyDepartment"), None)
    if exported or ed_unit is not None:
        capacity_status = _sub(hospital, "HospitalBedCapacityStatus")
        for bed in exported:
            capacity = _sub(capacity_status, "BedCapacity")
            _sub(capacity, "BedType", bed.edxl_bed_type)
            c = _sub(capacity, "Capacity")
            if bed.units_fresh == bed.units and bed.units:
                _sub(c, "CapacityStatus", "VacantAvailable" if bed.available else "NotAvailable")
                _sub(c, "AvailableCount", bed.available)
                _sub(c, "BaselineCount", bed.baseline_staffed)
            else:
                _sub(c, "BaselineCount", bed.baseline_staffed)
                _sub(c, "CommentText", "current figures stale or missing; not reported")
        if ed_unit is not None:
            capacity = _sub(capacity_status, "BedCapacity")
            _sub(capacity, "BedType", "EmergencyDepartment")
            c = _sub(capacity, "Capacity")
            available = ed_unit.figures.get("available_beds")
            if not ed_unit.freshness.stale and available is not None:
                _sub(c, "CapacityStatus", "VacantAvailable" if available else "NotAvailable")
                _sub(c, "AvailableCount", available)
                _sub(c, "BaselineCount", ed_unit.baseline_staffed)
            else:
                _sub(c, "BaselineCount", ed_unit.baseline_staffed)
                _sub(c, "CommentText", "current figures stale or missing; not reported")

    if live.status == "ok":
        facility = _sub(hospital, "HospitalFacilityStatus")
        _sub(facility, "FacilityStatus", "Normal")

    _sub(hospital, "LastUpdateTime", _time(live.freshness.observed_at or now))


def edxl_have_document(hospitals: list[HospitalLive], *, now: datetime) -> bytes:
    """The EDXL-HAVE XML of these hospitals (UTF-8 bytes with an XML declaration)."""
    root = ET.Element(_q("HospitalStatus"))
    for live in hospitals:
        _hospital(root, live, now)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def edxl_have_region(region: RegionLive) -> bytes:
    return edxl_have_document(region.hospitals, now=region.generated_at)
