"""The exports through the API: EDXL-HAVE 2.0 keeps the checked HAVE 2.0 structure, value lists
and staleness rules; MeasureReports parse as FHIR R5."""

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
from hub.registry.models import Directive
from tests.hub.exports.have2_structure import NS, check_have_document
from tests.hub.fixtures import Client
from tests.hub.support import census, enrolled_site, seal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


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


def by_site(root: ET.Element) -> dict[str | None, ET.Element]:
    return {
        f.findtext("have:facilityInformation/have:facilityID", namespaces=NS): f
        for f in root.iterfind("have:facility", NS)
    }


def services(facility: ET.Element) -> dict[str | None, ET.Element]:
    return {
        i.findtext("have:serviceTaxonomyKeyValue", namespaces=NS): i
        for i in facility.iterfind("have:serviceList/have:serviceListItem", NS)
    }


TRAFFIC = "have:facilityInformation/have:emergencyDepartmentStatus/have:emsTraffic"


def test_edxl_have_of_the_region(client_for: Client) -> None:
    fresh, key, _ = enrolled_site(name="Fresh & <General> (synthetic)")
    stale, stale_key, _ = enrolled_site()
    report(fresh.site_code, key, datetime.now(UTC))
    report(stale.site_code, stale_key, datetime.now(UTC) - timedelta(hours=1))
    response = client_for(Role.REGIONAL_OPERATOR).get("/api/v1/exports/edxl-have/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)  # noqa: S314 - the hub's own export
    check_have_document(root)
    facilities = by_site(root)
    mine = facilities[fresh.site_code]
    assert mine.findtext("have:facilityInformation/have:facilityName", namespaces=NS) == (
        "Fresh & <General> (synthetic)"
    )
    beds = services(mine)
    assert (
        beds["AdultICU"].findtext("have:serviceBedCapacity/have:availableCount", namespaces=NS)
        == "3"
    )
    assert (
        beds["AdultICU"].findtext("have:serviceBedCapacity/have:baselineCount", namespaces=NS)
        == "12"
    )
    assert beds["MedicalSurgical"].findtext(
        "have:serviceStatus/have:isAvailable", namespaces=NS
    ) == ("false")
    assert (
        beds["EmergencyDepartment"].findtext(
            "have:serviceBedCapacity/have:availableCount", namespaces=NS
        )
        == "6"
    )
    ambulance = "have:facilityInformation/have:emergencyDepartmentStatus/have:emsAmbulanceStatus"
    assert mine.findtext(f"{ambulance}/have:emsOffloadMinutes", namespaces=NS) == "18"
    assert mine.findtext(f"{TRAFFIC}/have:emsTrafficStatus", namespaces=NS) in {
        "Normal",
        "Advisory",
    }
    assert mine.find("have:facilityColourStatus", NS) is not None
    old = facilities[stale.site_code]
    assert old.find(f"{TRAFFIC}/have:emsTrafficStatus", NS) is None
    assert "stale" in (old.findtext(f"{TRAFFIC}/have:emsTrafficReason", namespaces=NS) or "")
    assert old.find("have:facilityColourStatus", NS) is None
    assert old.find(".//have:availableCount", NS) is None


def test_an_accepted_diversion_shows_as_closed(client_for: Client) -> None:
    hospital, key, _ = enrolled_site()
    report(hospital.site_code, key, datetime.now(UTC))
    Directive.objects.create(
        hospital=hospital,
        kind=Directive.Kind.DIVERSION,
        payload={"ems_traffic": "Closed", "reason": "regional diversion decision"},
        expires_at=timezone.now() + timedelta(minutes=30),
    )
    root = ET.fromstring(  # noqa: S314 - the hub's own export
        client_for(Role.REGIONAL_OPERATOR)
        .get(f"/api/v1/exports/edxl-have/{hospital.site_code}/")
        .content
    )
    check_have_document(root)
    mine = by_site(root)[hospital.site_code]
    assert mine.findtext(f"{TRAFFIC}/have:emsTrafficStatus", namespaces=NS) == "Closed"
    assert mine.findtext(f"{TRAFFIC}/have:emsTrafficReason", namespaces=NS) == (
        "regional diversion decision"
    )
    colour = "have:facilityColourStatus/have:colourCodeDefault/edxl-ct:value"
    assert mine.findtext(colour, namespaces=NS) == "red"


def test_edxl_have_of_one_hospital_and_of_an_unknown_one(client_for: Client) -> None:
    hospital, key, _ = enrolled_site()
    report(hospital.site_code, key, datetime.now(UTC))
    operator = client_for(Role.REGIONAL_OPERATOR)
    one = operator.get(f"/api/v1/exports/edxl-have/{hospital.site_code}/")
    assert one.status_code == 200
    root = ET.fromstring(one.content)  # noqa: S314 - the hub's own export
    check_have_document(root)
    assert list(by_site(root)) == [hospital.site_code]
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
    assert list(by_site(root)) == [mine.site_code]
    assert executive.get(f"/api/v1/exports/measure-report/{other.site_code}/").status_code == 404
