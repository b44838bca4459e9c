"""FHIR R5 endpoint and poller: Location and Encounter in, OperationOutcome for bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from site_agent.agent import Agent
from site_agent.twin.census import census_all

from .conftest import make_config, run, with_agent
from .hl7msg import a20, adt

WARD = {
    "resourceType": "Location",
    "id": "ward-4w",
    "identifier": [{"value": "4W"}],
    "name": "4 West",
    "form": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "wa"}
        ]
    },
}
NEW_WARD = {
    "resourceType": "Location",
    "id": "ward-9n",
    "identifier": [{"value": "9N"}],
    "name": "9 North Paediatrics",
    "form": {"coding": [{"code": "wa"}]},
    "type": [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "PEDU"}
            ]
        }
    ],
}


def bed(loc_id: str, ward: str, name: str, status: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Location",
        "id": loc_id,
        "identifier": [{"value": name}],
        "form": {"coding": [{"code": "bd"}]},
        "partOf": {"reference": f"Location/{ward}"},
    }
    if status:
        out["operationalStatus"] = {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0116",
            "code": status,
        }
    return out


def encounter(
    enc_id: str, mrn: str, status: str, loc: str | None, cls: str = "IMP"
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": enc_id,
        "status": status,
        "class": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls}
                ]
            }
        ],
        "subject": {"identifier": {"system": "urn:oid:2.16.840.1.113883.3.9999", "value": mrn}},
        "actualPeriod": {"start": "2025-03-01T10:00:00Z"},
    }
    if loc:
        out["location"] = [{"location": {"reference": f"Location/{loc}"}, "status": "active"}]
    return out


async def census(agent: Agent, unit: str) -> Any:
    from datetime import UTC, datetime

    rows = await agent.call(lambda w: census_all(w.twin, datetime.now(UTC)))
    return next(c for c in rows if c.unit_code == unit)


def test_locations_and_encounters_drive_the_twin(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", fhir=True)

    async def body(agent: Agent) -> None:
        base = f"http://127.0.0.1:{agent.fhir.port}/fhir"
        async with aiohttp.ClientSession() as s:
            for res in (
                WARD,
                NEW_WARD,
                bed("b-9n-1", "ward-9n", "901-A"),
                bed("b-4w-x", "ward-4w", "X1", "K"),
            ):
                async with s.put(f"{base}/Location/{res['id']}", json=res) as r:
                    assert r.status == 200, await r.text()
            async with s.post(
                f"{base}/Encounter", json=encounter("e1", "FH1", "in-progress", "b-9n-1")
            ) as r:
                assert r.status == 201, await r.text()
                assert r.headers["Location"] == "/fhir/Encounter/e1"
            c = await census(agent, "9N")
            assert (c.unit_type, c.occupied_beds, c.licensed_beds) == ("pediatrics", 1, 1)
            assert (await census(agent, "4W")).blocked_beds == 1  # K contaminated
            # Discharge through an update.
            async with s.put(
                f"{base}/Encounter/e1", json=encounter("e1", "FH1", "completed", "b-9n-1")
            ) as r:
                assert r.status == 200
            assert (await census(agent, "9N")).occupied_beds == 0
            async with s.get(f"{base}/metadata") as r:
                assert (await r.json())["fhirVersion"] == "5.0.0"

    run(with_agent(cfg, body))


def test_invalid_input_gets_an_operation_outcome(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", fhir=True)

    async def body(agent: Agent) -> None:
        base = f"http://127.0.0.1:{agent.fhir.port}/fhir"
        cases = [
            ("post", "Encounter", b"not json", 400),
            (
                "post",
                "Encounter",
                json.dumps({"resourceType": "Encounter"}).encode(),
                400,
            ),  # no status
            ("post", "Encounter", json.dumps({**encounter("e", "M", "bogus", None)}).encode(), 400),
            (
                "post",
                "Encounter",
                json.dumps({**encounter("e", "M", "in-progress", None), "extra": 1}).encode(),
                400,
            ),
            (
                "post",
                "Location",
                json.dumps({"resourceType": "Location", "physicalType": {}}).encode(),
                400,
            ),  # R4 field
            ("post", "Encounter", json.dumps({"resourceType": "Patient"}).encode(), 400),
            (
                "put",
                "Encounter/other",
                json.dumps(encounter("e9", "M", "in-progress", None)).encode(),
                400,
            ),
            (
                "post",
                "Encounter",
                json.dumps(encounter("e2", "M2", "in-progress", "nowhere")).encode(),
                422,
            ),
        ]
        async with aiohttp.ClientSession() as s:
            for method, path, data, status in cases:
                async with s.request(
                    method,
                    f"{base}/{path}",
                    data=data,
                    headers={"Content-Type": "application/fhir+json"},
                ) as r:
                    assert r.status == status, (path, data[:60], await r.text())
                    body = await r.json(content_type=None)
                    assert body["resourceType"] == "OperationOutcome"
                    assert body["issue"][0]["severity"] == "error"
            big = b'{"resourceType": "Encounter", "x": "' + b"a" * 6_000_000 + b'"}'
            async with s.post(f"{base}/Encounter", data=big) as r:
                assert r.status == 413

    run(with_agent(cfg, body))


def test_transaction_bundle_is_all_or_nothing(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", fhir=True)

    def entry(res: dict[str, Any]) -> dict[str, Any]:
        return {
            "resource": res,
            "request": {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"},
        }

    async def body(agent: Agent) -> None:
        base = f"http://127.0.0.1:{agent.fhir.port}/fhir"
        good = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                entry(encounter("t1", "TX1", "in-progress", "b-4w-1")),
                entry(WARD),
                entry(bed("b-4w-1", "ward-4w", "T1")),
            ],
        }
        bad = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                entry(encounter("t2", "TX2", "in-progress", "b-4w-1")),
                entry(encounter("t3", "TX3", "in-progress", "missing")),
            ],
        }
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                entry(encounter("t4", "TX4", "in-progress", "b-4w-1")),
                entry(encounter("t5", "TX5", "in-progress", "missing")),
            ],
        }
        async with aiohttp.ClientSession() as s:
            async with s.post(base, json=good) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["type"] == "transaction-response"
            async with s.post(base, json=bad) as r:
                assert r.status == 422
            twin_has = await agent.call(lambda w: sorted(w.twin.patients))
            assert twin_has == ["TX1"]  # nothing of the failed transaction
            async with s.post(base, json=batch) as r:
                out = await r.json()
                assert [e["response"]["status"][:3] for e in out["entry"]] == ["200", "422"]
            assert await agent.call(lambda w: sorted(w.twin.patients)) == ["TX1", "TX4"]

    run(with_agent(cfg, body))


def test_conflicts_between_feeds_are_logged_with_both_sides(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", fhir=True)

    async def body(agent: Agent) -> None:
        base = f"http://127.0.0.1:{agent.fhir.port}/fhir"
        from site_agent.mllp_client import MllpClient

        assert agent.mllp is not None
        async with MllpClient("127.0.0.1", agent.mllp.port) as c:
            await c.send(adt("A01", "CF1", loc="4W^401^A"))
            await c.send(a20("4W^401^B", "H"))
        async with aiohttp.ClientSession() as s:
            for res in (
                WARD,
                {**bed("b401a", "ward-4w", "A"), "partOf": {"reference": "Location/ward-4w"}},
            ):
                async with s.put(f"{base}/Location/{res['id']}", json=res) as r:
                    assert r.status == 200
            # FHIR (not the location authority here) says CF1 is elsewhere: HL7 wins, logged.
            async with s.put(
                f"{base}/Encounter/x", json=encounter("x", "CF1", "in-progress", "ward-4w")
            ) as r:
                assert r.status == 200
        rows = await agent.call(
            lambda w: w.store.conn.execute(
                "SELECT kind, authoritative, other FROM conflicts"
            ).fetchall()
        )
        kinds = [r[0] for r in rows]
        assert "patient_location" in kinds
        row = rows[kinds.index("patient_location")]
        assert json.loads(row[1])["source"] == "hl7"
        assert json.loads(row[2])["source"] == "fhir"
        assert await agent.call(lambda w: w.twin.patients["CF1"].bed) == "A"

    run(with_agent(cfg, body))


def test_poller_reads_an_ehr_fhir_server(tmp_path: Path) -> None:
    pages = {
        "Location": [WARD, bed("p-1", "ward-4w", "P1")],
        "Encounter": [encounter("pe1", "POLL1", "in-progress", "p-1")],
    }
    seen: list[str] = []

    async def search(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        seen.append(request.query_string)
        since = request.query.get("_lastUpdated")
        items = [] if since else pages[kind]
        entries = [
            {"resource": {**r, "meta": {"lastUpdated": "2025-03-01T10:00:00Z"}}} for r in items
        ]
        return web.json_response({"resourceType": "Bundle", "type": "searchset", "entry": entries})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/base/{kind}", search)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        from dataclasses import replace

        cfg = make_config(tmp_path / "d")
        cfg = replace(cfg, fhir=replace(cfg.fhir, poll_base_url=f"http://127.0.0.1:{port}/base"))

        async def body(agent: Agent) -> None:
            from site_agent.fhir.poller import FhirPoller

            poller = FhirPoller(cfg.fhir, agent)
            async with aiohttp.ClientSession() as s:
                assert await poller.poll_once(s) == 3
                assert await poller.poll_once(s) == 0  # _lastUpdated=gt... returns nothing new
            assert (await census(agent, "4W")).occupied_beds == 1
            feeds = await agent.call(lambda w: [f.name for f in w.feeds.statuses(w._now)])
            assert "fhir-poll" in feeds

        try:
            await with_agent(cfg, body)
        finally:
            await runner.cleanup()
        assert any("_lastUpdated=gt2025-03-01" in q for q in seen)

    run(main())
