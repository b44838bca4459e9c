"""The EDXL-HAVE 2.0 builder on hand-made live states (no database): structure, the 1.0 → 2.0
mapping, and staleness that never looks fine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest

from hub.census.selectors import BedTypeLive, EdLive, Freshness, HospitalLive, UnitLive
from hub.exports import edxl_have
from hub.registry.models import Hospital, Region
from tests.hub.exports.have2_structure import NS, check_have_document, problems_in

NOW = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
SEEN = NOW - timedelta(minutes=2)


def fresh(at: datetime = SEEN) -> Freshness:
    return Freshness(at, int((NOW - at).total_seconds()), False, "")


def stale(reason: str = "no snapshot for 1 h") -> Freshness:
    return Freshness(NOW - timedelta(hours=1), 3600, True, reason)


def ed_unit(freshness: Freshness, available: int | None = 4) -> UnitLive:
    return UnitLive(
        unit_id=1,
        code="ED",
        name="Emergency",
        unit_type="emergency",
        edxl_bed_type="EmergencyDepartment",
        capacity_group="emergency",
        baseline_licensed=20,
        baseline_staffed=20,
        baseline_surge=0,
        figures={"available_beds": available},
        suppressed=[],
        forecast=[],
        freshness=freshness,
        provenance=None,
    )


def ed(
    traffic: str,
    freshness: Freshness,
    *,
    reason: str = "",
    offload: int | None = 12,
    offload_status: str = "Normal",
) -> EdLive:
    return EdLive(
        unit_code="ED",
        ems_traffic=traffic,
        ems_traffic_reason=reason,
        offload_status=None if freshness.stale else offload_status,
        waiting=None,
        in_treatment=None,
        boarding=None,
        longest_boarding_minutes=None,
        boarding_p50_minutes=None,
        offload_count=None,
        offload_p50_minutes=offload,
        offload_p90_minutes=None,
        freshness=freshness,
        provenance=None,
    )


def icu(available: int, *, units_fresh: int = 1) -> BedTypeLive:
    return BedTypeLive(
        "adult_icu",
        "AdultICU",
        "adult_icu",
        1,
        units_fresh,
        12,
        12,
        12 - available,
        available,
        SEEN,
    )


def hospital_live(
    *,
    site_code: str = "SYN1",
    status: str = "ok",
    ed_live: EdLive | None = None,
    beds: list[BedTypeLive] | None = None,
    units: list[UnitLive] | None = None,
) -> HospitalLive:
    region = Region(code="r", name="Synthetic Region")
    hospital = Hospital(site_code=site_code, name=f"{site_code} General (synthetic)", region=region)
    freshness = fresh() if status == "ok" else stale()
    return HospitalLive(
        hospital=hospital,
        status=status,
        stale_units=[] if status == "ok" else ["ED"],
        freshness=freshness,
        ed=ed_live,
        beds=beds if beds is not None else [icu(3)],
        units=units or [],
        feeds=[],
    )


def document(*hospitals: HospitalLive) -> ET.Element:
    xml = edxl_have.edxl_have_document(list(hospitals), now=NOW)
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(xml)  # noqa: S314 - the hub's own export


def facility(root: ET.Element) -> ET.Element:
    [only] = root.findall("have:facility", NS)
    return only


def test_a_fresh_hospital_is_a_have_2_0_facility_in_the_lower_case_namespace() -> None:
    root = document(
        hospital_live(ed_live=ed("Normal", fresh()), units=[ed_unit(fresh())]),
        hospital_live(site_code="SYN2", ed_live=ed("Closed", fresh(), reason="regional diversion")),
    )
    check_have_document(root)
    assert root.tag == "{urn:oasis:names:tc:emergency:edxl:have:2.0}HAVE"
    assert root.findtext(
        "have:organizationInformation/xnl:OrganisationName/xnl:NameElement", namespaces=NS
    ) == ("Synthetic Region")
    first, second = root.findall("have:facility", NS)
    assert first.findtext("have:facilityInformation/have:facilityID", namespaces=NS) == "SYN1"
    ed_status = "have:facilityInformation/have:emergencyDepartmentStatus"
    traffic = f"{ed_status}/have:emsTraffic/have:emsTrafficStatus"
    assert first.findtext(traffic, namespaces=NS) == "Normal"
    assert second.findtext(traffic, namespaces=NS) == "Closed"
    colour = "have:facilityColourStatus/have:colourCodeDefault/edxl-ct:value"
    assert first.findtext(colour, namespaces=NS) == "green"
    assert second.findtext(colour, namespaces=NS) == "red"
    offload = "have:facilityInformation/have:emergencyDepartmentStatus/have:emsAmbulanceStatus"
    assert first.findtext(f"{offload}/have:emsOffloadStatus", namespaces=NS) == "Normal"
    assert first.findtext(f"{offload}/have:emsOffloadMinutes", namespaces=NS) == "12"
    period = first.find("have:reportingPeriod", NS)
    assert period is not None
    assert period.findtext("edxl-ct:fromDateTime", namespaces=NS) == "2026-11-24T07:28:00+00:00"
    assert period.findtext("edxl-ct:toDateTime", namespaces=NS) == "2026-11-24T07:30:00+00:00"


def test_bed_types_are_services_with_available_and_baseline_counts() -> None:
    full = BedTypeLive(
        "medical_surgical", "MedicalSurgical", "inpatient", 2, 2, 30, 30, 30, 0, SEEN
    )
    root = document(hospital_live(beds=[icu(3), full], units=[ed_unit(fresh(), available=6)]))
    check_have_document(root)
    services = facility(root).find("have:serviceList", NS)
    assert services is not None
    assert services.findtext("have:taxonomyURI", namespaces=NS) == edxl_have.BED_TAXONOMY_URI
    items = {
        i.findtext("have:serviceTaxonomyKeyValue", namespaces=NS): i
        for i in services.iterfind("have:serviceListItem", NS)
    }
    assert list(items) == ["AdultICU", "MedicalSurgical", "EmergencyDepartment"]
    adult = items["AdultICU"]
    assert adult.findtext("have:serviceBedCapacity/have:availableCount", namespaces=NS) == "3"
    assert adult.findtext("have:serviceBedCapacity/have:baselineCount", namespaces=NS) == "12"
    assert adult.findtext("have:serviceBedCapacity/have:availability", namespaces=NS) == "Open"
    assert adult.findtext("have:serviceStatus/have:isAvailable", namespaces=NS) == "true"
    med = items["MedicalSurgical"]
    assert med.findtext("have:serviceStatus/have:isAvailable", namespaces=NS) == "false"
    assert med.findtext("have:serviceBedCapacity/have:availability", namespaces=NS) == "Full"
    ed_item = items["EmergencyDepartment"]
    assert ed_item.findtext("have:serviceBedCapacity/have:availableCount", namespaces=NS) == "6"
    assert ed_item.findtext("have:serviceBedCapacity/have:baselineCount", namespaces=NS) == "20"


def test_a_stale_hospital_never_looks_fine() -> None:
    root = document(
        hospital_live(
            status="stale",
            ed_live=ed("Unknown", stale(), reason="ED figures stale: no snapshot for 1 h"),
            beds=[icu(3, units_fresh=0)],
            units=[ed_unit(stale())],
        )
    )
    check_have_document(root)
    one = facility(root)
    traffic = one.find(
        "have:facilityInformation/have:emergencyDepartmentStatus/have:emsTraffic", NS
    )
    assert traffic is not None
    assert traffic.find("have:emsTrafficStatus", NS) is None
    assert "stale" in (traffic.findtext("have:emsTrafficReason", namespaces=NS) or "")
    assert one.find(".//have:emsAmbulanceStatus", NS) is None
    assert one.find("have:facilityColourStatus", NS) is None
    assert one.find(".//have:serviceBedCapacity", NS) is None
    assert one.find(".//have:serviceStatus", NS) is None
    comments = [
        c.text for c in one.iterfind("have:serviceList/have:serviceListItem/have:comment", NS)
    ]
    assert comments == [edxl_have.STALE_COMMENT, edxl_have.STALE_COMMENT]


def test_an_open_directive_over_stale_ed_figures_is_withheld_but_a_closure_is_shown() -> None:
    opened = ed("Normal", stale("no snapshot for 1 h"), reason="override: surge team")
    closed = ed("Closed", stale("no snapshot for 1 h"), reason="regional diversion")
    root = document(
        hospital_live(status="stale", ed_live=opened),
        hospital_live(site_code="SYN2", status="stale", ed_live=closed),
    )
    check_have_document(root)
    first, second = root.findall("have:facility", NS)
    traffic = "have:facilityInformation/have:emergencyDepartmentStatus/have:emsTraffic"
    assert first.find(f"{traffic}/have:emsTrafficStatus", NS) is None
    reason = first.findtext(f"{traffic}/have:emsTrafficReason", namespaces=NS) or ""
    assert "override: surge team" in reason
    assert "ED figures stale: no snapshot for 1 h" in reason
    assert second.findtext(f"{traffic}/have:emsTrafficStatus", namespaces=NS) == "Closed"


def test_offload_needs_both_status_and_minutes() -> None:
    # Delayed from the p90 alone: no median minutes, so no offload block (both are required).
    no_median = ed("Normal", fresh(), offload=None, offload_status="Delayed")
    root = document(hospital_live(ed_live=no_median))
    check_have_document(root)
    assert facility(root).find(".//have:emsAmbulanceStatus", NS) is None


def test_a_stale_ward_takes_the_colour_away_but_not_a_fresh_ed_status() -> None:
    root = document(
        hospital_live(status="stale", ed_live=ed("Normal", fresh()), beds=[icu(3, units_fresh=0)])
    )
    check_have_document(root)
    one = facility(root)
    assert one.findtext(".//have:emsTraffic/have:emsTrafficStatus", namespaces=NS) == "Normal"
    assert one.find("have:facilityColourStatus", NS) is None


@pytest.mark.parametrize(
    ("site_code", "expected"), [("SYN1", "SYN1"), ("7AB", "_7AB"), ("_x", "_x")]
)
def test_the_facility_id_is_an_xml_id(site_code: str, expected: str) -> None:
    assert edxl_have.facility_id(site_code) == expected


def test_the_checker_rejects_what_a_have_2_0_reader_would_not_read() -> None:
    # The old 1.0-shaped export: wrong root, upper-case namespace.
    old = ET.fromstring(  # noqa: S314 - literal test input
        '<HospitalStatus xmlns="urn:oasis:names:tc:emergency:EDXL:HAVE:2.0">'
        "<Hospital/></HospitalStatus>"
    )
    assert problems_in(old)
    root = document(hospital_live(ed_live=ed("Normal", fresh())))
    info = facility(root).find("have:facilityInformation", NS)
    assert info is not None
    fid, name = info[0], info[1]
    info[0], info[1] = name, fid  # facilityName before facilityID
    assert any("not allowed here" in p or "needs" in p for p in problems_in(root))
    info[0], info[1] = fid, name
    status = info.find("have:emergencyDepartmentStatus/have:emsTraffic/have:emsTrafficStatus", NS)
    assert status is not None
    status.text = "Diverting"
    assert any("'Diverting' not allowed" in p for p in problems_in(root))
    status.text = "Normal"
    assert problems_in(root) == []
