"""Live state through the API: freshness and provenance of every figure, stale never fine,
and each role's view of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from deid.contracts import UnitType
from governance.roles import Role
from hub.census.ingest import IngestBatch, SiteDirectory, envelope_into_batch
from hub.census.services import census_ingest_batch
from hub.registry import services
from tests.hub.fixtures import Client
from tests.hub.support import census, enrolled_site, flow, seal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def ingest(envelope: bytes) -> None:
    batch = IngestBatch()
    envelope_into_batch(
        envelope, directory=SiteDirectory(), batch=batch, received_at=timezone.now(), via="kafka"
    )
    assert batch.rejections == []
    census_ingest_batch(batch=batch)


def report_all_units(site: str, key: object, *, at: datetime, **ed: int) -> None:
    ingest(
        seal(
            [
                census(
                    site,
                    "ICU",
                    at=at,
                    unit_type=UnitType.ADULT_ICU,
                    staffed_beds=12,
                    occupied_beds=10,
                    available_beds=2,
                ),
                census(site, "W1", at=at, staffed_beds=30, occupied_beds=25, available_beds=5),
                census(
                    site,
                    "ED",
                    at=at,
                    unit_type=UnitType.EMERGENCY,
                    staffed_beds=20,
                    occupied_beds=15,
                    available_beds=5,
                    **ed,
                ),
            ],
            key,  # type: ignore[arg-type]
            site,
        )
    )


def test_fresh_figures_carry_age_and_provenance(client_for: Client) -> None:
    hospital, key, _ = enrolled_site()
    report_all_units(
        hospital.site_code,
        key,
        at=datetime.now(UTC),
        ed_waiting=7,
        offload_p50_minutes=12,
        offload_p90_minutes=25,
    )
    body = client_for(Role.REGIONAL_OPERATOR).get(f"/api/v1/live/hospitals/{hospital.site_code}/")
    assert body.status_code == 200, body.content
    live = body.json()
    assert live["status"] == "ok"
    icu = next(u for u in live["units"] if u["code"] == "ICU")
    assert icu["figures"]["available_beds"] == 2
    assert icu["freshness"]["stale"] is False
    assert icu["freshness"]["age_seconds"] < 120
    assert icu["provenance"]["site_code"] == hospital.site_code
    assert icu["provenance"]["agent"] == "deid-worker"
    assert icu["provenance"]["source"] == "hl7-adt"
    assert live["ed"]["ems_traffic"] == "Normal"
    assert live["ed"]["offload_status"] == "Normal"
    assert live["ed"]["waiting"] == 7
    beds = {b["unit_type"]: b for b in live["beds"]}
    assert beds["adult_icu"]["available"] == 2
    assert beds["adult_icu"]["edxl_bed_type"] == "AdultICU"


def test_a_stale_hospital_is_shown_stale_never_fine(client_for: Client) -> None:
    hospital, key, _ = enrolled_site()
    report_all_units(hospital.site_code, key, at=datetime.now(UTC) - timedelta(minutes=9))
    live = client_for(Role.REGIONAL_OPERATOR).get("/api/v1/live/").json()
    mine = next(h for h in live["hospitals"] if h["site_code"] == hospital.site_code)
    assert mine["status"] == "stale"
    assert sorted(mine["stale_units"]) == ["ED", "ICU", "W1"]
    assert mine["ed"]["ems_traffic"] == "Unknown"
    assert all(b["units_fresh"] == 0 and b["available"] == 0 for b in mine["beds"])
    assert live["hospitals_stale"] >= 1


def test_a_site_that_comes_back_is_fresh_again(client_for: Client) -> None:
    hospital, key, _ = enrolled_site()
    report_all_units(hospital.site_code, key, at=datetime.now(UTC) - timedelta(minutes=30))
    # Back online: its outbox delivers what it held, then a current snapshot.
    report_all_units(hospital.site_code, key, at=datetime.now(UTC) - timedelta(minutes=20))
    report_all_units(hospital.site_code, key, at=datetime.now(UTC))
    live = client_for(Role.REGIONAL_OPERATOR).get(f"/api/v1/live/hospitals/{hospital.site_code}/")
    assert live.json()["status"] == "ok"


def test_a_hospital_that_never_reported_has_no_data(client_for: Client) -> None:
    hospital, _, _ = enrolled_site()
    live = client_for(Role.REGIONAL_OPERATOR).get(f"/api/v1/live/hospitals/{hospital.site_code}/")
    assert live.json()["status"] == "no_data"


def test_a_diversion_directive_closes_ems_traffic(client_for: Client) -> None:
    hospital, key, _ = enrolled_site()
    report_all_units(hospital.site_code, key, at=datetime.now(UTC))
    operator = client_for(Role.REGIONAL_OPERATOR)
    made = operator.post(
        "/api/v1/directives/",
        {
            "hospital": hospital.site_code,
            "kind": "diversion",
            "payload": {"ems_traffic": "Closed", "reason": "CT scanner down"},
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    ed = operator.get(f"/api/v1/live/hospitals/{hospital.site_code}/").json()["ed"]
    assert (ed["ems_traffic"], ed["ems_traffic_reason"]) == ("Closed", "CT scanner down")


def test_long_offloads_make_ems_traffic_advisory(client_for: Client) -> None:
    hospital, key, _ = enrolled_site()
    report_all_units(
        hospital.site_code,
        key,
        at=datetime.now(UTC),
        offload_p50_minutes=40,
        offload_p90_minutes=75,
    )
    ed = (
        client_for(Role.REGIONAL_OPERATOR)
        .get(f"/api/v1/live/hospitals/{hospital.site_code}/")
        .json()["ed"]
    )
    assert ed["ems_traffic"] == "Advisory"
    assert ed["offload_status"] == "Delayed"


def test_ed_staff_see_their_own_ed_only(client_for: Client) -> None:
    mine, key, _ = enrolled_site()
    other, other_key, _ = enrolled_site()
    report_all_units(mine.site_code, key, at=datetime.now(UTC))
    report_all_units(other.site_code, other_key, at=datetime.now(UTC))
    staff = client_for(Role.ED_STAFF, mine)
    live = staff.get("/api/v1/live/").json()
    assert [h["site_code"] for h in live["hospitals"]] == [mine.site_code]
    assert [u["code"] for u in live["hospitals"][0]["units"]] == ["ED"]
    assert staff.get(f"/api/v1/live/hospitals/{other.site_code}/").status_code == 404
    history = staff.get("/api/v1/history/census/").json()["results"]
    assert {r["unit_code"] for r in history} == {"ED"}
    assert {r["site_code"] for r in history} == {mine.site_code}


def test_executives_get_aggregates_only(client_for: Client) -> None:
    mine, key, _ = enrolled_site()
    report_all_units(mine.site_code, key, at=datetime.now(UTC))
    executive = client_for(Role.EXECUTIVE, mine)
    assert executive.get("/api/v1/live/").status_code == 403
    assert executive.get("/api/v1/history/flow/").status_code == 403
    summary = executive.get("/api/v1/live/summary/")
    assert summary.status_code == 200
    assert [h["site_code"] for h in summary.json()["hospitals"]] == [mine.site_code]
    assert "units" not in summary.json()["hospitals"][0]


def test_anonymous_callers_get_nothing() -> None:
    from rest_framework.test import APIClient

    for path in ("/api/v1/live/", "/api/v1/hospitals/", "/api/v1/exports/edxl-have/"):
        assert APIClient().get(path).status_code in (401, 403), path


def test_history_filters_by_time_and_pages_by_cursor(client_for: Client) -> None:
    hospital, key, _ = enrolled_site()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    ingest(
        seal(
            [census(hospital.site_code, "W1", at=now - timedelta(minutes=m)) for m in range(30)],
            key,
            hospital.site_code,
        )
    )
    operator = client_for(Role.REGIONAL_OPERATOR)
    since = (now - timedelta(minutes=9, seconds=30)).isoformat()
    page = operator.get(
        "/api/v1/history/census/",
        {"site_code": hospital.site_code, "since": since, "limit": "4"},
    ).json()
    assert len(page["results"]) == 4
    seen = list(page["results"])
    while page["next"]:
        page = operator.get(page["next"]).json()
        seen += page["results"]
    assert len(seen) == 10
    assert seen == sorted(seen, key=lambda r: r["observed_at"], reverse=True)


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"unit_type": "spaceship"},
        {"audience": "everyone"},
        {"site_code": "bad code!"},
        {"limit": "x"},
    ],
)
def test_bad_history_queries_are_400(client_for: Client, query: dict[str, str]) -> None:
    response = client_for(Role.REGIONAL_OPERATOR).get("/api/v1/history/census/", query)
    assert response.status_code in (400, 200)  # limit=x falls back to the default page size
    if "limit" not in query:
        assert response.status_code == 400
        assert response.json()


def test_flow_history_hides_nothing_from_operators_and_everything_from_ed_staff(
    client_for: Client,
) -> None:
    hospital, key, _ = enrolled_site()
    ingest(seal([flow(hospital.site_code, surrogate="s1")], key, hospital.site_code))
    rows = client_for(Role.REGIONAL_OPERATOR).get("/api/v1/history/flow/").json()["results"]
    assert [r["surrogate_id"] for r in rows if r["site_code"] == hospital.site_code] == ["s1"]


def test_registry_writes_are_for_operators(client_for: Client) -> None:
    hospital, _, _ = enrolled_site()
    operator = client_for(Role.REGIONAL_OPERATOR)
    created = operator.post(
        "/api/v1/units/",
        {
            "hospital": hospital.site_code,
            "code": "W2",
            "name": "Ward 2",
            "unit_type": "medical_surgical",
            "staffed_beds": 24,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    clash = operator.post(
        "/api/v1/units/",
        {"hospital": hospital.site_code, "code": "W2", "name": "x", "unit_type": "burn"},
        format="json",
    )
    assert clash.status_code == 400
    staff = client_for(Role.ED_STAFF, hospital)
    assert staff.post("/api/v1/units/", {}, format="json").status_code == 403
    issued = operator.post(
        "/api/v1/site-agents/", {"hospital": hospital.site_code, "name": "agent-2"}, format="json"
    )
    assert issued.status_code == 201
    assert issued.json()["enrolment_token"]
    assert issued.json()["agent"]["status"] == "pending"
    services.agent_enrolment_issue  # noqa: B018 - the service the view called


def test_erasure_directives_are_neither_listed_nor_issued_by_operators(
    client_for: Client,
) -> None:
    hospital, _, _ = enrolled_site()
    services.directive_issue(
        hospital=hospital, kind="erasure", payload={"surrogate_id": "sg-secret"}, issued_by=None
    )
    operator = client_for(Role.REGIONAL_OPERATOR)
    listed = operator.get("/api/v1/directives/")
    assert listed.status_code == 200
    assert "sg-secret" not in listed.content.decode()
    made = operator.post(
        "/api/v1/directives/",
        {"hospital": hospital.site_code, "kind": "erasure", "payload": {"surrogate_id": "x"}},
        format="json",
    )
    assert made.status_code == 400
