"""Live answers from per-hospital parts (hub/api/live_parts.py): the same data as a fresh
build at the moment served, only the hospitals whose data moved rebuilt, scopes kept apart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.test import Client as DjangoClient
from django.utils import timezone

from governance import versions
from governance.access import assign_role, grant_hospital
from governance.models import AuditEvent
from governance.roles import Role
from hub.api import live_parts
from hub.api.live_output import region_live_data
from hub.api.renderers import render_json
from hub.census import conf, selectors
from hub.registry.models import Hospital, Unit
from tests.hub.api.test_live_api import ingest, report_all_units
from tests.hub.support import enrolled_site, heartbeat, seal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _everything() -> tuple[QuerySet[Hospital], QuerySet[Unit]]:
    return Hospital.objects.all(), Unit.objects.all()


def _fresh(now: datetime) -> dict[str, Any]:
    hospitals, units = _everything()
    return region_live_data(selectors.live_region(hospitals=hospitals, units=units, now=now))


def _client(role: Role | None = Role.REGIONAL_OPERATOR) -> tuple[DjangoClient, Any]:
    user = get_user_model().objects.create_user(username=f"p{get_user_model().objects.count()}")
    if role is not None:
        assign_role(user, role)
    client = DjangoClient()
    client.force_login(user)
    return client, user


def _spy_builds(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The site codes of every live_hospitals build, in order."""
    builds: list[list[str]] = []
    real = selectors.live_hospitals

    def spy(**kwargs: Any) -> list[selectors.HospitalLive]:
        out = real(**kwargs)
        builds.append(sorted(h.hospital.site_code for h in out))
        return out

    monkeypatch.setattr(selectors, "live_hospitals", spy)
    return builds


def test_parts_give_a_fresh_build_at_every_moment_served() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    ok, key, _ = enrolled_site()
    report_all_units(ok.site_code, key, at=now - timedelta(seconds=30), ed_waiting=4)
    ingest(seal([heartbeat(ok.site_code, at=now - timedelta(seconds=20))], key, ok.site_code))
    stale, stale_key, _ = enrolled_site()
    report_all_units(stale.site_code, stale_key, at=now - timedelta(minutes=9))
    enrolled_site()  # never reported

    key_ = ("test", "everything")
    parts = live_parts.hospital_parts(key_, _everything, selectors.DEFAULT_AUDIENCE, now)
    assert parts is not None
    assert live_parts.region_data(parts, now) == _fresh(now)
    # Later, ages only: the same parts, ages computed again.
    later = now + timedelta(seconds=42)
    again = live_parts.hospital_parts(key_, _everything, selectors.DEFAULT_AUDIENCE, later)
    assert again is not None
    assert [a is b for a, b in zip(again, parts, strict=True)] == [True, True, True]
    assert live_parts.region_data(again, later) == _fresh(later)
    # Past the staleness limit the fresh hospital turns stale: its part is rebuilt.
    past = now + timedelta(seconds=conf.stale_after_seconds())
    third = live_parts.hospital_parts(key_, _everything, selectors.DEFAULT_AUDIENCE, past)
    assert third is not None
    assert live_parts.region_data(third, past) == _fresh(past)
    assert live_parts.region_data(third, past)["hospitals_stale"] == 2
    # The JSON from the parts' templates is the renderer's JSON of that data, byte for byte,
    # at any moment (ages of units, the ED, hospitals and feeds all move).
    for parts_at, at in ((parts, now), (again, later), (third, past)):
        for moment in (at, at + timedelta(microseconds=999_999), at + timedelta(seconds=3601)):
            assert live_parts.region_json(parts_at, moment) == render_json(
                live_parts.region_data(parts_at, moment)
            )
            for part in parts_at:
                assert part.json_at(moment) == render_json(part.data_at(moment))
    assert [p.json_at(later) for p in again] != [p.json_at(now) for p in again]  # ages


def test_the_views_answer_the_renderers_json_and_keep_the_other_formats() -> None:
    now = datetime.now(UTC)
    hospital, key, _ = enrolled_site()
    report_all_units(hospital.site_code, key, at=now - timedelta(seconds=61), ed_waiting=3)
    client, user = _client()
    for url in ("/api/v1/live/", f"/api/v1/live/hospitals/{hospital.site_code}/"):
        plain = client.get(url)
        assert plain.status_code == 200
        assert plain["Content-Type"] == "application/json"
        assert plain.json() == json.loads(plain.content)
        indented = client.get(url, HTTP_ACCEPT="application/json; indent=2")
        assert indented.status_code == 200
        assert b'\n  "' in indented.content  # rendered by DRF from the data, as before
        varying = {"Content-Length", "X-Request-ID"}
        assert {k: v for k, v in plain.headers.items() if k not in varying} == {
            k: v for k, v in indented.headers.items() if k not in varying
        }
        browsable = client.get(url, HTTP_ACCEPT="text/html")
        assert browsable.status_code == 200
        assert browsable["Content-Type"].startswith("text/html")
    # Every answer is audited with the hospitals and rows it showed, bytes or not.
    events = AuditEvent.objects.filter(actor_id=user.pk, path=url, status_code=200)
    assert events.count() == 3
    assert {tuple(e.hospital_ids) for e in events} == {(hospital.pk,)}
    assert {e.row_count for e in events} == {Unit.objects.filter(hospital=hospital).count()}


def test_a_change_to_one_hospital_rebuilds_that_hospital_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime.now(UTC)
    sites = [enrolled_site() for _ in range(3)]
    for hospital, key, _ in sites:
        report_all_units(hospital.site_code, key, at=now - timedelta(minutes=1), ed_waiting=1)
    client, _ = _client()
    builds = _spy_builds(monkeypatch)
    monkeypatch.setattr(timezone, "now", lambda: now)  # equal answers need equal ages
    first = client.get("/api/v1/live/").json()
    assert builds == [sorted(h.site_code for h, _, _ in sites)]
    assert client.get("/api/v1/live/").json()["hospitals"] == first["hospitals"]
    assert len(builds) == 1  # nothing moved: nothing rebuilt

    changed, key, _ = sites[1]
    report_all_units(changed.site_code, key, at=now - timedelta(seconds=5), ed_waiting=9)
    second = client.get("/api/v1/live/").json()
    assert builds[1:] == [[changed.site_code]]
    waiting = {h["site_code"]: h["ed"]["waiting"] for h in second["hospitals"]}
    assert waiting == {h.site_code: 9 if h == changed else 1 for h, _, _ in sites}
    assert second == _fresh(datetime.fromisoformat(second["generated_at"]))


def test_the_ingest_moves_the_hospitals_own_version_not_the_live_one() -> None:
    now = datetime.now(UTC)
    (a, key_a, _), (b, _, _) = enrolled_site(), enrolled_site()
    live = versions.state_version("live")
    census_before = versions.state_version("census")
    before = versions.hospital_versions([a.pk, b.pk])
    assert before is not None
    report_all_units(a.site_code, key_a, at=now - timedelta(minutes=1))
    after = versions.hospital_versions([a.pk, b.pk])
    assert after is not None
    assert after[0] > before[0]
    assert after[1] == before[1]
    assert versions.state_version("live") == live
    assert versions.state_version("census") != census_before


def test_a_structural_change_rebuilds_every_hospital(monkeypatch: pytest.MonkeyPatch) -> None:
    sites = [enrolled_site() for _ in range(2)]
    client, _ = _client()
    builds = _spy_builds(monkeypatch)
    client.get("/api/v1/live/")
    hospital = sites[0][0]
    hospital.name = "Renamed"
    hospital.save()
    names = {h["site_code"]: h["name"] for h in client.get("/api/v1/live/").json()["hospitals"]}
    assert names[hospital.site_code] == "Renamed"
    assert len(builds) == 2
    assert builds[1] == sorted(h.site_code for h, _, _ in sites)


def test_scopes_keep_their_own_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    (mine, key, _), (other, other_key, _) = enrolled_site(), enrolled_site()
    for hospital, k in ((mine, key), (other, other_key)):
        report_all_units(hospital.site_code, k, at=now - timedelta(minutes=1), ed_waiting=2)
    operator, _ = _client()
    nurse, user = _client(role=None)
    grant_hospital(user, mine, Role.ED_STAFF)

    def seen(client: DjangoClient) -> dict[str, list[str]]:
        body = client.get("/api/v1/live/").json()
        return {h["site_code"]: [u["code"] for u in h["units"]] for h in body["hospitals"]}

    everything = {mine.site_code: ["ED", "ICU", "W1"], other.site_code: ["ED", "ICU", "W1"]}
    for _ in range(2):  # built, then served from the parts
        assert seen(operator) == everything
        assert seen(nurse) == {mine.site_code: ["ED"]}
    report_all_units(mine.site_code, key, at=now - timedelta(seconds=5), ed_waiting=8)
    assert seen(nurse) == {mine.site_code: ["ED"]}
    assert seen(operator) == everything
    body = nurse.get("/api/v1/live/").json()
    assert body["hospitals"][0]["ed"]["waiting"] == 8


def test_the_hospital_view_follows_its_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    hospital, key, _ = enrolled_site()
    client, _ = _client()
    url = f"/api/v1/live/hospitals/{hospital.site_code}/"
    assert client.get(url).json()["status"] == "no_data"
    report_all_units(hospital.site_code, key, at=now - timedelta(minutes=1), ed_waiting=6)
    assert client.get(url).json()["ed"]["waiting"] == 6
    assert client.get("/api/v1/live/hospitals/NOPE/").status_code == 404
