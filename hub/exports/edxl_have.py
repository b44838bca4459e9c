"""OASIS EDXL-HAVE 2.0 hospital availability XML from the live state, for regional status boards.

What this follows, and how sure we are (details and sources in ``docs/hub.md``, "Exports"):

* Namespace ``urn:oasis:names:tc:emergency:edxl:have:2.0`` (lower case; XML namespaces are
  case-sensitive): stated by the OASIS schema documentation of HAVE 2.0 csd01.
* The element structure follows the HAVE 2.0 working-draft schema (post-WD08, 2013) that a
  HAVE 2.0 editor published with worked examples. The approved CS01/CS02 schemas were not
  readable here; the draft still marks parts of itself ``OBSOLETE``/``TO_BE_DELETED``, so a
  final-schema consumer may differ in details. Only the subset below is emitted, in the
  draft's sequence order.
* Content typed by EDXL Common Types (``edxl-ct``: the colour value key and the reporting
  period) uses the lowerCamelCase names of EDXL-CT 1.0 as published (``valueListURI``,
  ``value``, ``fromDateTime``, ``toDateTime``); the 2013 draft's own example used the draft
  CT's ``ValueListURI``/``Value``. Organisation names use the CIQ xNL profile as in that
  example (``OrganisationName/NameElement``).
* Not emitted, because the sources disagree on their shape: the facility position
  (``facilityGeoLocation``: GML ``Point``/``pos`` in the draft example, the published
  EDXL-GSF profile differs).

Document shape (one ``facility`` per hospital, in the draft's order)::

    HAVE
      organizationInformation/xnl:OrganisationName/xnl:NameElement   the reporting region
      reportComment
      facility+
        facilityInformation
          facilityID            site code (an xs:ID: "_" is put before a leading digit)
          facilityName
          facilityDetails/xnl:OrganisationName/xnl:NameElement
          facilityKind          Hospital
          emergencyDepartmentStatus?
            emsTraffic/emsTrafficStatus? + emsTrafficReason?
            emsAmbulanceStatus?/emsOffloadStatus + emsOffloadMinutes   (median offload)
        reportingPeriod/edxl-ct:fromDateTime + edxl-ct:toDateTime
        serviceList+            one item per HAVE bed type, in the hub's bed-type taxonomy
          taxonomyURI, taxonomyName, serviceListItem+
            serviceTaxonomyKeyValue, serviceName,
            serviceStatus?/isAvailable,
            serviceBedCapacity?/availableCount + baselineCount + availability,
            comment?
        facilityColourStatus?/colourCodeDefault/(edxl-ct:valueListURI, edxl-ct:value)
                                + colourDescription

Mapping from the HAVE 1.0 vocabulary the hub uses internally (``hub.census``):

* ``EMSTrafficStatus`` Normal/Advisory/Closed/NotApplicable, ``EMSTrafficReason``,
  ``EMSOffloadStatus`` Normal/Delayed and ``EMSOffloadMinutes`` keep their values under the
  2.0 names; accepted diversion directives reach ``emsTrafficStatus`` through
  ``hub.census``. In 2.0 offload status and minutes are both required, so the offload block
  is left out unless both are known.
* 1.0 ``BedCapacity``/``BedType`` became 2.0 services: bed types are ``serviceListItem``
  keys in a ``serviceList`` whose taxonomy is the hub's list of HAVE bed types
  (``BED_TAXONOMY_URI``); ``AvailableCount``/``BaselineCount`` → ``availableCount``/
  ``baselineCount``; ``CapacityStatus`` VacantAvailable/NotAvailable → ``isAvailable``
  true/false and ``availability`` Open/Full.
* 1.0 ``FacilityStatus`` (Normal/Compromised/...) is obsolete in the 2.0 draft; the facility's
  overall state is ``facilityColourStatus`` green/yellow/red, which the hub derives from the
  EMS traffic status (Normal or no ED → green, Advisory → yellow, Closed → red).
* 1.0 ``LastUpdateTime`` → the facility's ``reportingPeriod``: from the oldest figure shown to
  the time of the export.

Staleness is never hidden: stale ED figures give no ``emsTrafficStatus`` (only a reason; an
operator's "Normal" directive is not shown over stale figures either, a "Closed"/"Advisory"
one is), stale bed types give no counts and no availability (a ``comment`` says why), and a
hospital with any stale or missing figure gets no ``facilityColourStatus``. Built with
``xml.etree`` (stdlib), so text is escaped by the serializer, never by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from hub.census.selectors import BedTypeLive, EdLive, HospitalLive, RegionLive, UnitLive

HAVE_NS = "urn:oasis:names:tc:emergency:edxl:have:2.0"
CT_NS = "urn:oasis:names:tc:emergency:edxl:ct:1.0"
XNL_NS = "urn:oasis:names:tc:emergency:edxl:ciq:1.0:xnl"
CONTENT_TYPE = "application/xml; charset=utf-8"

# The hub's taxonomy of bed types (the HAVE 1.0 / HAvBED bed-type names, with the ED).
BED_TAXONOMY_URI = "urn:regional-twin-hub:edxl-have:bed-type"
BED_TAXONOMY_NAME = "HAVE bed types (HAvBED names, as in EDXL-HAVE 1.0)"
BED_TYPE_NAMES = {
    "AdultICU": "Adult ICU beds",
    "PediatricICU": "Pediatric ICU beds",
    "NeonatalICU": "Neonatal ICU beds",
    "EmergencyDepartment": "Emergency department places",
    "NurseryBeds": "Nursery beds",
    "MedicalSurgical": "Medical-surgical beds",
    "RehabLongTermCare": "Rehabilitation and long-term care beds",
    "Burn": "Burn beds",
    "Pediatrics": "Pediatric ward beds",
    "AdultPsychiatric": "Adult psychiatric beds",
    "PediatricPsychiatric": "Pediatric psychiatric beds",
    "NegativeFlowIsolation": "Negative airflow isolation beds",
    "OtherIsolation": "Other isolation beds",
    "OperatingRooms": "Operating rooms",
}
BED_TYPES = frozenset(BED_TYPE_NAMES)

# Value lists of the 2.0 draft for the elements emitted.
EMS_TRAFFIC = frozenset({"Normal", "Advisory", "Closed", "NotApplicable"})
OFFLOAD = frozenset({"Normal", "Delayed"})
AVAILABILITY = frozenset({"Open", "Full", "Exceeded", "Inactive"})
COLOUR_LIST_URI = "urn:oasis:names:tc:emergency:EDXL:HAVE:2.0:Defaults:ColourCode"
COLOURS = frozenset({"green", "yellow", "red"})
FACILITY_COLOUR = {
    "Normal": "green",
    "NotApplicable": "green",
    "Advisory": "yellow",
    "Closed": "red",
}

STALE_COMMENT = "current figures stale or missing; not reported"
REPORT_COMMENT = (
    "Regional Twin Hub live hospital availability. Stale or missing figures are withheld, "
    "never shown as current."
)

ET.register_namespace("have", HAVE_NS)
ET.register_namespace("edxl-ct", CT_NS)
ET.register_namespace("xnl", XNL_NS)


def _sub(
    parent: ET.Element, tag: str, text: str | int | None = None, *, ns: str = HAVE_NS
) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ns}}}{tag}")
    if text is not None:
        element.text = str(text)
    return element


def edxl_time(value: datetime) -> str:
    """An EDXL date-time: seconds precision and an explicit offset (EDXL-CT has no ``Z``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def facility_id(site_code: str) -> str:
    """The site code as an ``xs:ID`` (an NCName must not start with a digit or ``-``)."""
    return site_code if site_code[:1].isalpha() or site_code[:1] == "_" else f"_{site_code}"


def _organisation_name(parent: ET.Element, name: str) -> None:
    organisation = _sub(parent, "OrganisationName", ns=XNL_NS)
    _sub(organisation, "NameElement", name, ns=XNL_NS)


def _ed_status(parent: ET.Element, ed: EdLive) -> None:
    status = _sub(parent, "emergencyDepartmentStatus")
    traffic = _sub(status, "emsTraffic")
    reason = ed.ems_traffic_reason
    if ed.ems_traffic == "Normal" and ed.freshness.stale:
        # An operator's "open" over stale figures: the status is withheld, not shown as fine.
        reason = "; ".join(r for r in (reason, f"ED figures stale: {ed.freshness.reason}") if r)
    elif ed.ems_traffic in EMS_TRAFFIC:
        _sub(traffic, "emsTrafficStatus", ed.ems_traffic)
    if reason:
        _sub(traffic, "emsTrafficReason", reason)
    minutes = ed.offload_p50_minutes
    if ed.offload_status in OFFLOAD and minutes is not None and not ed.freshness.stale:
        ambulance = _sub(status, "emsAmbulanceStatus")
        _sub(ambulance, "emsOffloadStatus", ed.offload_status)
        _sub(ambulance, "emsOffloadMinutes", minutes)


def _facility_information(parent: ET.Element, live: HospitalLive) -> None:
    h = live.hospital
    info = _sub(parent, "facilityInformation")
    _sub(info, "facilityID", facility_id(h.site_code))
    _sub(info, "facilityName", h.name)
    _organisation_name(_sub(info, "facilityDetails"), h.name)
    _sub(info, "facilityKind", "Hospital")
    if live.ed is not None:
        _ed_status(info, live.ed)


def _service_item(parent: ET.Element, bed_type: str, available: int | None, baseline: int) -> None:
    """One bed type: counts when ``available`` is current, else only why there are none."""
    item = _sub(parent, "serviceListItem")
    _sub(item, "serviceTaxonomyKeyValue", bed_type)
    _sub(item, "serviceName", BED_TYPE_NAMES[bed_type])
    if available is None:
        _sub(item, "comment", STALE_COMMENT)
        return
    _sub(_sub(item, "serviceStatus"), "isAvailable", "true" if available > 0 else "false")
    capacity = _sub(item, "serviceBedCapacity")
    _sub(capacity, "availableCount", available)
    _sub(capacity, "baselineCount", baseline)
    _sub(capacity, "availability", "Open" if available > 0 else "Full")


def _bed_available(bed: BedTypeLive) -> int | None:
    return bed.available if bed.units and bed.units_fresh == bed.units else None


def _ed_available(unit: UnitLive) -> int | None:
    value = unit.figures.get("available_beds")
    return None if unit.freshness.stale else value


def _service_list(parent: ET.Element, live: HospitalLive) -> None:
    beds = [b for b in live.beds if b.edxl_bed_type in BED_TYPES]
    ed_unit = next((u for u in live.units if u.edxl_bed_type == "EmergencyDepartment"), None)
    if not beds and ed_unit is None:
        return
    services = _sub(parent, "serviceList")
    _sub(services, "taxonomyURI", BED_TAXONOMY_URI)
    _sub(services, "taxonomyName", BED_TAXONOMY_NAME)
    for bed in beds:
        _service_item(services, str(bed.edxl_bed_type), _bed_available(bed), bed.baseline_staffed)
    if ed_unit is not None:
        _service_item(
            services, "EmergencyDepartment", _ed_available(ed_unit), ed_unit.baseline_staffed
        )


def _colour_status(parent: ET.Element, live: HospitalLive) -> None:
    if live.status != "ok":
        return
    traffic = live.ed.ems_traffic if live.ed is not None else "NotApplicable"
    colour = FACILITY_COLOUR.get(traffic)
    if colour is None:
        return
    status = _sub(parent, "facilityColourStatus")
    code = _sub(status, "colourCodeDefault")
    _sub(code, "valueListURI", COLOUR_LIST_URI, ns=CT_NS)
    _sub(code, "value", colour, ns=CT_NS)
    reason = live.ed.ems_traffic_reason if live.ed is not None else ""
    _sub(status, "colourDescription", f"EMS traffic {traffic}" + (f": {reason}" if reason else ""))


def _facility(parent: ET.Element, live: HospitalLive, now: datetime) -> None:
    facility = _sub(parent, "facility")
    _facility_information(facility, live)
    period = _sub(facility, "reportingPeriod")
    _sub(period, "fromDateTime", edxl_time(live.freshness.observed_at or now), ns=CT_NS)
    _sub(period, "toDateTime", edxl_time(now), ns=CT_NS)
    _service_list(facility, live)
    _colour_status(facility, live)


def _reporter(hospitals: Iterable[HospitalLive]) -> str:
    regions = sorted({live.hospital.region.name for live in hospitals})
    return ", ".join(regions) or "Regional Twin Hub"


def edxl_have_document(hospitals: list[HospitalLive], *, now: datetime) -> bytes:
    """The EDXL-HAVE 2.0 XML of these hospitals (UTF-8 bytes with an XML declaration)."""
    root = ET.Element(f"{{{HAVE_NS}}}HAVE")
    _organisation_name(_sub(root, "organizationInformation"), _reporter(hospitals))
    _sub(root, "reportComment", REPORT_COMMENT)
    for live in hospitals:
        _facility(root, live, now)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def edxl_have_region(region: RegionLive) -> bytes:
    """The EDXL-HAVE 2.0 XML of a region's live state, as of its generation time."""
    return edxl_have_document(region.hospitals, now=region.generated_at)
