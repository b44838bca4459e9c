"""The coordination API: operators act, executives read their own hospitals, nobody else
(the full role × endpoint × hospital matrix is tests/governance/test_permission_matrix.py)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from governance import access
from governance.roles import Role
from hub.coordination import models as m
from hub.coordination import services

from .db import World

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def operator(django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user(username="op", password=None)
    access.assign_role(user, Role.REGIONAL_OPERATOR)
    return user


@pytest.fixture
def executive_of_g(django_user_model: Any, w: World) -> Any:
    user = django_user_model.objects.create_user(username="exec-g", password=None)
    access.grant_hospital(user, w.g.hospital, Role.EXECUTIVE)
    return user


def test_an_operator_evaluates_and_accepts_through_the_api(w: World, operator: Any) -> None:
    client = _client(operator)
    r = client.post(f"/api/v1/coordination/regions/{w.region.code}/evaluate/")
    assert r.status_code == 200, r.content
    assert r.json()["recommendations_new"] == 1
    recs = client.get("/api/v1/coordination/recommendations/?state=pending").json()["results"]
    [rec] = [x for x in recs if x["hospital"] == w.h.hospital.site_code]
    assert rec["explanation"].startswith("Close ED to general ambulances at")
    r = client.post(f"/api/v1/coordination/recommendations/{rec['id']}/accept/", {}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["ems_traffic"] == "Closed"
    again = client.post(
        f"/api/v1/coordination/recommendations/{rec['id']}/accept/", {}, format="json"
    )
    assert again.status_code == 409
    trust = client.get("/api/v1/coordination/decisions/trust/").json()
    assert trust == {"accept": 1, "override": 0}


def test_an_override_without_a_reason_is_a_400(w: World, operator: Any) -> None:
    services.region_evaluate(region=w.region)
    rec = m.DiversionRecommendation.objects.get(hospital=w.h.hospital)
    r = _client(operator).post(
        f"/api/v1/coordination/recommendations/{rec.pk}/override/",
        {"status": "open", "reason": ""},
        format="json",
    )
    assert r.status_code == 400


def test_an_executive_reads_only_their_hospital_and_cannot_decide(
    w: World, executive_of_g: Any
) -> None:
    services.region_evaluate(region=w.region)
    client = _client(executive_of_g)
    statuses = client.get("/api/v1/coordination/statuses/").json()["results"]
    assert [s["hospital"] for s in statuses] == [w.g.hospital.site_code]
    assert client.get("/api/v1/coordination/recommendations/").json()["results"] == []
    rec = m.DiversionRecommendation.objects.get(hospital=w.h.hospital)
    assert client.get(f"/api/v1/coordination/recommendations/{rec.pk}/").status_code == 404
    r = client.post(f"/api/v1/coordination/recommendations/{rec.pk}/accept/", {}, format="json")
    assert r.status_code == 403


def test_a_resource_request_through_the_api(w: World, operator: Any) -> None:
    client = _client(operator)
    r = client.post(
        "/api/v1/coordination/resource-requests/",
        {
            "requester": w.h.hospital.site_code,
            "kind": "bed",
            "item": "adult_icu",
            "quantity": 1,
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    rid = r.json()["id"]
    r = client.post(f"/api/v1/coordination/resource-requests/{rid}/fulfil/", {}, format="json")
    assert r.status_code == 409  # requested → fulfilled skips offered and accepted
    r = client.post(
        f"/api/v1/coordination/resource-requests/{rid}/offer/",
        {"donor": w.g.hospital.site_code, "quantity": 1},
        format="json",
    )
    assert r.status_code == 201
    offer = r.json()["offers"][0]["id"]
    r = client.post(
        f"/api/v1/coordination/resource-requests/{rid}/accept/", {"offer": offer}, format="json"
    )
    assert r.json()["status"] == "accepted"
    assert [e["to_status"] for e in r.json()["events"]] == ["requested", "offered", "accepted"]


def test_region_settings_read_and_write(w: World, operator: Any) -> None:
    client = _client(operator)
    url = f"/api/v1/coordination/regions/{w.region.code}/settings/"
    assert client.get(url).json()["config"] == {}
    r = client.put(url, {"config": {"diversion": {"ttl_minutes": 90}}}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["effective"]["diversion"]["ttl_minutes"] == 90
    bad = client.put(url, {"config": {"diversion": {"ttl_minutes": -1}}}, format="json")
    assert bad.status_code == 400
