"""Polling client for an EHR's FHIR R5 base URL.

Every ``poll_interval_seconds``: ``GET [base]/Location?_lastUpdated=gt{since}`` then the same
for Encounter (Locations first, so new beds exist before Encounters point at them), following
the Bundle's ``next`` links. ``since`` is the newest ``meta.lastUpdated`` seen per resource
type, kept in the store so a restart resumes where it stopped; the first poll takes
everything. Each resource goes through the same validation and mapping as a push to our own
endpoint, under the feed name ``fhir-poll``. A bearer token is read from the environment
variable named by ``poll_token_env`` (never from the file).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp

from site_agent.config import FhirConfig
from site_agent.fhir.mapping import FhirInvalid, ParsedRequest, apply_request, parse_request
from site_agent.ingest import FhirItem, IngestWriter
from site_agent.twin.model import ApplyError

if TYPE_CHECKING:
    from site_agent.agent import Agent

__all__ = ["FhirPoller"]

log = logging.getLogger("site_agent.fhir.poll")
FEED = "fhir-poll"
MAX_PAGES = 1000


def _poll_state(w: IngestWriter, *, base: str, resource: str) -> str | None:
    return w.store.poll_state(base, resource)


def _save_poll_state(w: IngestWriter, *, base: str, resource: str, stamp: str) -> None:
    w.store.save_poll_state(base, resource, stamp)


class FhirPoller:
    def __init__(self, config: FhirConfig, agent: Agent) -> None:
        self.config = config
        self.agent = agent
        self.base = config.poll_base_url.rstrip("/")
        self.polls = 0
        self.applied = 0
        self.rejected = 0

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/fhir+json"}
        if self.config.poll_token_env:
            token = os.environ.get(self.config.poll_token_env, "")
            if token:
                headers["Authorization"] = f"Bearer {token}"
        return headers

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout, headers=self._headers()) as session:
            while True:
                try:
                    await self.poll_once(session)
                except asyncio.CancelledError:
                    raise
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.warning("FHIR poll of %s failed: %s", self.base, exc)
                await asyncio.sleep(self.config.poll_interval_seconds)

    async def poll_once(self, session: aiohttp.ClientSession) -> int:
        """One round over Location then Encounter; returns how many resources were applied."""
        applied = 0
        for resource in ("Location", "Encounter"):
            since = await self.agent.call(partial(_poll_state, base=self.base, resource=resource))
            url: str | None = f"{self.base}/{resource}"
            params: dict[str, str] | None = {"_count": "100", "_sort": "_lastUpdated"}
            if since and params is not None:
                params["_lastUpdated"] = f"gt{since}"
            newest = since
            pages = 0
            while url and pages < MAX_PAGES:
                pages += 1
                async with session.get(url, params=params) as resp:
                    resp.raise_for_status()
                    bundle = await resp.json(content_type=None)
                params = None  # the next link carries its own query
                for entry in bundle.get("entry") or []:
                    res = (entry or {}).get("resource") or {}
                    if res.get("resourceType") != resource:
                        continue
                    stamp = ((res.get("meta") or {}).get("lastUpdated")) or ""
                    if await self._apply(res):
                        applied += 1
                    if stamp and (newest is None or stamp > newest):
                        newest = stamp
                url = next(
                    (
                        link.get("url")
                        for link in bundle.get("link") or []
                        if link.get("relation") == "next"
                    ),
                    None,
                )
            if newest and newest != since:
                await self.agent.call(
                    partial(_save_poll_state, base=self.base, resource=resource, stamp=newest)
                )
        self.polls += 1
        now = datetime.now(UTC)
        # The EHR answered: the feed is alive even if nothing changed.
        await self.agent.call(lambda w: w.feeds.spoke(FEED, now))
        return applied

    async def _apply(self, resource: dict[str, Any]) -> bool:
        raw = json.dumps(resource, separators=(",", ":")).encode()
        try:
            parsed = parse_request(raw)
        except FhirInvalid as exc:
            self.rejected += 1
            log.warning("polled %s rejected: %s", resource.get("resourceType"), exc)
            await self.agent.call(lambda w: w.feeds.error(FEED))
            return False
        return await self._submit(raw, parsed)

    async def _submit(self, raw: bytes, parsed: ParsedRequest) -> bool:
        writer = self.agent.writer
        assert writer is not None  # noqa: S101
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        received_at = datetime.now(UTC)

        def apply(w: IngestWriter, now: datetime) -> list[str]:
            return apply_request(w, parsed, FEED, received_at, now=now)

        def reply(value: Any) -> None:
            if not fut.done():
                fut.set_result(value)

        writer.submit(
            FhirItem(
                raw=raw,
                feed=FEED,
                peer=self.base,
                received_at=received_at,
                apply=apply,
                reply=reply,
            )
        )
        result = await fut
        if isinstance(result, ApplyError) or result is None:
            self.rejected += 1
            return False
        self.applied += 1
        return True
