"""The agent's FHIR R5 endpoint (aiohttp): Encounter and Location in, plus health and census.

    POST /fhir/Encounter            PUT /fhir/Encounter/{id}
    POST /fhir/Location             PUT /fhir/Location/{id}
    POST /fhir                      a batch or transaction Bundle of the above
    GET  /fhir/metadata             CapabilityStatement
    GET  /health                    feeds, outbox backlog, relay (JSON)
    GET  /census                    the current census per unit (JSON, no identifiers)

Invalid input gets 400 with an OperationOutcome, input that is valid but cannot be applied
(an Encounter at an unknown Location) 422, a body over ``max_body_bytes`` 413. A request is
answered after it is committed, like an HL7 ACK. A transaction Bundle is all or nothing; a
batch Bundle applies each entry on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from site_agent import __version__
from site_agent.config import FhirConfig
from site_agent.fhir.mapping import FhirInvalid, ParsedRequest, apply_request, parse_request
from site_agent.ingest import FhirItem, IngestWriter
from site_agent.twin.census import census_all
from site_agent.twin.model import ApplyError

if TYPE_CHECKING:
    from site_agent.agent import Agent

__all__ = ["FhirServer", "operation_outcome"]

log = logging.getLogger("site_agent.fhir")
FHIR_JSON = "application/fhir+json"


def operation_outcome(
    status: int, issues: list[str], code: str = "invalid", severity: str = "error"
) -> web.Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": i[:500]} for i in issues],
    }
    return web.json_response(body, status=status, content_type=FHIR_JSON)


class FhirServer:
    def __init__(self, config: FhirConfig, agent: Agent) -> None:
        self.config = config
        self.agent = agent
        self.app = web.Application(client_max_size=config.max_body_bytes, middlewares=[self._count])
        self.app.add_routes(
            [
                web.get("/fhir/metadata", self.metadata),
                web.post("/fhir/Encounter", self.create_encounter),
                web.put("/fhir/Encounter/{id}", self.update_encounter),
                web.post("/fhir/Location", self.create_location),
                web.put("/fhir/Location/{id}", self.update_location),
                web.post("/fhir", self.bundle),
                web.post("/fhir/", self.bundle),
                web.get("/health", self.health),
                web.get("/census", self.census),
            ]
        )
        self.runner: web.AppRunner | None = None
        self.port = config.port

    @web.middleware
    async def _count(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics = self.agent.metrics
            if metrics is not None and request.path.startswith("/fhir"):
                metrics.fhir.labels(str(status)).inc()

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.host, self.config.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("FHIR endpoint on http://%s:%d/fhir", self.config.host, self.port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    # --- handlers ------------------------------------------------------------------------------

    async def metadata(self, request: web.Request) -> web.Response:
        interactions = [{"code": "create"}, {"code": "update"}]
        body = {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": datetime.now(UTC).date().isoformat(),
            "kind": "instance",
            "fhirVersion": "5.0.0",
            "format": ["json"],
            "software": {"name": "site_agent", "version": __version__},
            "rest": [
                {
                    "mode": "server",
                    "resource": [
                        {"type": "Encounter", "interaction": interactions},
                        {"type": "Location", "interaction": interactions},
                    ],
                    "interaction": [{"code": "batch"}, {"code": "transaction"}],
                }
            ],
        }
        return web.json_response(body, content_type=FHIR_JSON)

    async def create_encounter(self, request: web.Request) -> web.Response:
        return await self._single(request, "Encounter", None)

    async def update_encounter(self, request: web.Request) -> web.Response:
        return await self._single(request, "Encounter", request.match_info["id"])

    async def create_location(self, request: web.Request) -> web.Response:
        return await self._single(request, "Location", None)

    async def update_location(self, request: web.Request) -> web.Response:
        return await self._single(request, "Location", request.match_info["id"])

    async def _read(self, request: web.Request) -> bytes | web.Response:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return operation_outcome(413, ["request body too large"], "too-long")

    async def _single(self, request: web.Request, kind: str, url_id: str | None) -> web.Response:
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        try:
            parsed = parse_request(body, expected_type=kind, url_id=url_id)
        except FhirInvalid as exc:
            return operation_outcome(400, exc.issues, exc.code)
        result = await self._submit(body, parsed, request.remote or "")
        if isinstance(result, web.Response):
            return result
        status = 200 if url_id is not None else 201
        resp = web.Response(body=body, status=status, content_type=FHIR_JSON)
        resp.headers["Location"] = f"/fhir/{result[0]}"
        return resp

    async def bundle(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        try:
            parsed = parse_request(body, expected_type="Bundle")
        except FhirInvalid as exc:
            return operation_outcome(400, exc.issues, exc.code)
        peer = request.remote or ""
        entries: list[dict[str, Any]] = []
        if parsed.bundle_type == "transaction":
            result = await self._submit(body, parsed, peer)
            if isinstance(result, web.Response):
                return result
            entries = [{"response": {"status": "200 OK", "location": r}} for r in result]
        else:
            for resource in parsed.resources:
                raw = resource.model_dump_json(exclude_none=True).encode()
                one = ParsedRequest((resource,), None)
                res = await self._submit(raw, one, peer)
                if isinstance(res, web.Response):
                    entries.append(
                        {
                            "response": {
                                "status": str(res.status),
                                "outcome": json.loads(res.text or "{}"),
                            }
                        }
                    )
                else:
                    entries.append({"response": {"status": "200 OK", "location": res[0]}})
        response_type = f"{parsed.bundle_type}-response"
        return web.json_response(
            {"resourceType": "Bundle", "type": response_type, "entry": entries},
            content_type=FHIR_JSON,
        )

    async def _submit(
        self, raw: bytes, parsed: ParsedRequest, peer: str
    ) -> list[str] | web.Response:
        writer = self.agent.writer
        assert writer is not None  # noqa: S101
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        received_at = datetime.now(UTC)

        def apply(w: IngestWriter, now: datetime) -> list[str]:
            return apply_request(w, parsed, "fhir", received_at, now=now)

        def reply(value: Any) -> None:
            if not fut.done():
                fut.set_result(value)

        writer.submit(
            FhirItem(
                raw=raw, feed="fhir", peer=peer, received_at=received_at, apply=apply, reply=reply
            )
        )
        result = await fut
        if result is None:
            return operation_outcome(
                503, ["the agent could not store the request; retry"], "transient"
            )
        if isinstance(result, ApplyError):
            return operation_outcome(422, [result.text], "processing")
        assert isinstance(result, list)  # noqa: S101
        return result

    async def health(self, request: web.Request) -> web.Response:
        agent = self.agent
        now = datetime.now(UTC)

        def read(w: IngestWriter) -> dict[str, Any]:
            return {
                "site_code": w.config.site_code,
                "version": __version__,
                "feeds": [f.to_dict() for f in w.feeds.statuses(now)],
                "outbox_backlog": w.backlog,
                "stats": {k: v for k, v in asdict(w.stats).items() if k != "last_commit_at"},
            }

        body = await agent.call(read)
        relay = agent.relay
        body["relay"] = (
            None
            if relay is None
            else {
                "published_total": relay.published_total,
                "in_flight": relay.in_flight,
                "connected": relay.connected,
                "last_error": relay.last_error,
            }
        )
        return web.json_response(body, dumps=lambda o: json.dumps(o, default=str))

    async def census(self, request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        rows = await self.agent.call(lambda w: census_all(w.twin, now))
        body = [{k: getattr(c, k) for k in c.__slots__} for c in rows]
        return web.json_response(body, dumps=lambda o: json.dumps(o, default=str))
