"""EDXL-HAVE XML keeps the HAVE structure and value lists; MeasureReports parse as FHIR R5."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from django.utils import timezone
from fhir.resources.bundle import Bundle
from fhir.resources.measurereport import MeasureReport

from deid.contracts import UnitType
from governance.roles import Role
from hub.census.ingest import IngestBatch, SiteDirectory, envelope_into_batch
from hub.census.services import census_ingest_batch
from hub.exports import edxl_have
from tests.hub.fixtures import Client
from tests.hub.support import census, enrolled_site, seal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

NS = {"h": edxl_have.HAVE_NS}
# Child order of a HAVE hospital element.
HOSPITAL_ORDER = [
    "Organization",
    "EmergencyDepartmentStatus",
    "HospitalBedCapacityStatus",
    "ServiceCoverageStatus",
    "HospitalFacilityStatus",
    "HospitalResourcesStatus",
    "LastUpdateTime",
]


def report(site: str, key: object, at: datetime) -> None:
    batch = IngestBatch()
    envelope_into_batch(
        seal(
            [
                census(
                    site,
                    "ICU",
                    at=at,
                    unit_type=UnitType.ADULT_ICU,
                    staffed_beds=12,
                    occupied_beds=9,
                    available_beds=3,
                ),
                census(site, "W1", at=at, staffed_beds=30, occupied_beds=30, available_beds=0),
                census(
                    site,
                    "ED",
                    at=at,
                    unit_type=UnitType.EMERGENCY,
                    staffed_beds=20,
                    occupied_beds=14,
                    available_beds=6,
                    offload_p50_minutes=18,
                    offload_p90_minutes=28,
                ),
            ],
            key,  # type: ignore[arg-type]
            site,
        ),
        directory=SiteDirectory(),
        batch=batch,
        received_at=timezone.now(),
        via="kafka",
    )
    census_ingest_batch(batch=batch)


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def check_have_structure(root: ET.Element) -> None:
    """The structure checks a HAVE consumer relies on (no official XSD offline)."""
    assert local(root.tag) == "HospitalStatus"
    assert root.tag.startswith(f"{{{edxl_have.HAVE_NS}}}")
    assert len(root) >= 1
    for hospital in root:
        assert local(hospital.tag) == "Hospital"
        names = [local(c.tag) for c in hospital]
        assert names[0] == "Organization"
        assert names[-1] == "LastUpdateTime"
        assert names == sorted(names, key=HOSPITAL_ORDER.index)
        datetime.fromisoformat(hospital.findtext("h:LastUpdateTime", namespaces=NS) or "")
        for status in hospital.iterfind(
            "h:EmergencyDepartmentStatus/h:EMSTraffic/h:EMSTrafficStatus", NS
        ):
            assert status.text in edxl_have.EMS_TRAFFIC
        for status in hospital.iterfind(
            "h:EmergencyDepartmentStatus/h:EMSAmbulanceStatus/h:EMSOffloadStatus", NS
        ):
            assert status.text in edxl_have.OFFLOAD
        for bed in hospital.iterfind("h:HospitalBedCapacityStatus/h:BedCapacity", NS):
            assert bed.findtext("h:BedType", namespaces=NS) in edxl_have.BED_TYPES
            capacity = bed.find("h:Capacity", NS)
            assert capacity is not None
            for count in ("AvailableCount", "BaselineCount"):
                text = capacity.findtext(f"h:{count}", namespaces=NS)
                assert text is None or int(text) >= 0
        for facility in hospital.iterfind("h:HospitalFacilityStatus/h:FacilityStatus", NS):
            assert facility.text in edxl_have.FACILITY


def test_edxl_have_of_the_region(client_for: Client) -> None:
    fresh, key, _ = enrolled_site(name="Fresh & <General> (synthetic)")
    stale, stale_key, _ = enrolled_site()
    report(fresh.site_code, key, datetime.now(UTC))
    report(stale.site_code, stale_key, datetime.now(UTC) - timedelta(hours=1))
    response = client_for(Role.REGIONAL_OPERATOR).get("/api/v1/exports/edxl-have/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)  # noqa: S314 - the hub's own export
    check_have_structure(root)
    by_id = {
        h.findtext("h:Organization/h:OrganizationInformation/h:OrganizationID", namespaces=NS): h
        for h in root
    }
    mine = by_id[fresh.site_code]
    assert (
        mine.findtext("h:Organization/h:OrganizationInformation/h:OrganizationName", namespaces=NS)
        == "Fresh & <General> (synthetic)"
    )
    beds = {
        b.findtext("h:BedType", namespaces=NS): b
        for b in mine.iterfind("h:HospitalBedCapacityStatus/h:BedCapacity", NS)
    }
    assert beds["AdultICU"].findtext("h:Capacity/h:AvailableCount", namespaces=NS) == "3"
    assert beds["AdultICU"].findtext("h:Capacity/h:BaselineCount", namespaces=NS) == "12"
    assert beds["MedicalSurgical"].findtext("h:Capacity/h:CapacityStatus", namespaces=NS) == (
        "NotAvailable"
    )
    assert (
        mine.findtext(
            "h:EmergencyDepartmentStatus/h:EMSAmbulanceStatus/h:EMSOffloadMinutes", namespaces=NS
        )
        == "18"
    )
    old = by_id[stale.site_code]
    assert old.find("h:EmergencyDepartmentStatus/h:EMSTraffic/h:EMSTrafficStatus", NS) is None
    assert "stale" in (
        old.findtext("h:EmergencyDepartmentStatus/h:EMSTraffic/h:EMSTrafficReason", namespaces=NS)
        or ""
    )
    assert old.find("h:HospitalFacilityStatus", NS) is None
    assert (
        old.find("h:HospitalBedCapacityStatus/h:BedCapacity/h:Capacity/h:AvailableCount", NS)
        is None
    )


def test_edxl_have_of_one_hospital_and_of_an_unknown_one(client_for: Client) -> None:
    hospital, key, _ = enrolled_site()
    report(hospital.site_code, key, datetime.now(UTC))
    operator = client_for(Role.REGIONAL_OPERATOR)
    one = operator.get(f"/api/v1/exports/edxl-have/{hospital.site_code}/")
    assert one.status_code == 200
    assert len(ET.fromstring(one.content)) == 1  # noqa: S314 - the hub's own export
    assert operator.get("/api/v1/exports/edxl-have/NOPE/").status_code == 404


def test_measure_reports_parse_as_fhir_r5(client_for: Client) -> None:
    hospital, key, _ = enrolled_site()
    report(hospital.site_code, key, datetime.now(UTC))
    operator = client_for(Role.REGIONAL_OPERATOR)
    bundle: Any = Bundle.model_validate(operator.get("/api/v1/exports/measure-report/").json())
    reports = [e.resource for e in bundle.entry]
    assert all(isinstance(r, MeasureReport) for r in reports)
    one = operator.get(f"/api/v1/exports/measure-report/{hospital.site_code}/").json()
    parsed: Any = MeasureReport.model_validate(one)
    counts = {p.code.coding[0].code: p.count for p in parsed.group[0].population}
    assert counts == {"numTotBeds": 42, "numBedsOcc": 39, "numICUBeds": 12, "numICUBedsOcc": 9}
    assert parsed.status == "complete"


def test_executives_may_export_their_own_hospital_only(client_for: Client) -> None:
    mine, _key, _ = enrolled_site()
    other, _, _ = enrolled_site()
    executive = client_for(Role.EXECUTIVE, mine)
    root = ET.fromstring(executive.get("/api/v1/exports/edxl-have/").content)  # noqa: S314
    ids = [
        h.findtext("h:Organization/h:OrganizationInformation/h:OrganizationID", namespaces=NS)
        for h in root
    ]
    assert ids == [mine.site_code]
    assert executive.get(f"/api/v1/exports/measure-report/{other.site_code}/").status_code == 404
