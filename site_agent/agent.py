"""``python -m site_agent run``: wires the store, the writer, the listeners, the relay, the timers.

Shutdown (SIGTERM or SIGINT): stop accepting connections, let in-flight messages be committed
and answered, stop the writer after it has drained its queue, give the relay time to deliver
what is in flight (the rest stays in the outbox for the next start), exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from deid.keystore import MASTER_KEY_ENV, MasterKeyRing
from deid.signing import secret_from_env
from site_agent.config import AgentConfig, ConfigError
from site_agent.forecast import ForecastCache, census_input, run_forecast
from site_agent.ingest import CallItem, IngestWriter
from site_agent.ingest import published_item as _published
from site_agent.metrics import Metrics
from site_agent.mllp_server import MllpServer
from site_agent.publish import Publisher
from site_agent.relay import OutboxRelay, RelaySettings
from site_agent.store import Store, checkpoint

__all__ = ["Agent", "master_key_text"]

log = logging.getLogger("site_agent")
T = TypeVar("T")


def master_key_text(config: AgentConfig) -> str:
    """The key-store master key: ``DEID_MASTER_KEY`` / ``DEID_MASTER_KEY_FILE``, else a key
    generated once into the data folder — for the local demo only, and said so in the log."""
    text = secret_from_env(MASTER_KEY_ENV)
    if text:
        MasterKeyRing.parse(text)  # fail now, not in the relay process
        return text
    path = config.data_dir / "master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(MasterKeyRing.generate_b64() + "\n")
        log.warning(
            "%s is not set: generated a local master key in %s (demo only; production sets "
            "%s or %s_FILE from a secret store)",
            MASTER_KEY_ENV,
            path,
            MASTER_KEY_ENV,
            MASTER_KEY_ENV,
        )
    else:
        log.warning("%s is not set: using the local demo key in %s", MASTER_KEY_ENV, path)
    return path.read_text(encoding="utf-8").strip()


class Agent:
    """One site agent. ``start`` and ``stop`` run on the event loop."""

    def __init__(
        self, config: AgentConfig, *, master_key: str | None = None, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        self._master_key = master_key
        self.metrics = metrics
        self.store: Store | None = None
        self.writer: IngestWriter | None = None
        self.mllp: MllpServer | None = None
        self.relay: OutboxRelay | None = None
        self.fhir: Any = None
        self.poller: Any = None
        self.forecasts = ForecastCache(config)
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: ProcessPoolExecutor | None = None
        self.started_at: datetime | None = None
        self._stopping = False

    async def start(self, *, relay: bool = True) -> None:
        cfg = self.config
        if cfg.database_url:
            raise SystemExit(
                "agent.database_url (PostgreSQL) is not supported yet: leave it empty to use "
                "the SQLite store in the data folder"
            )
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        if self._master_key is None:
            self._master_key = master_key_text(cfg)
        self.store = Store(cfg.database_path)
        forecaster = self.forecasts if cfg.forecast.enabled else None
        publisher = Publisher(cfg.site_code, forecaster)

        self.writer = IngestWriter(cfg, self.store, publisher)
        self.writer.metrics = self.metrics
        self.writer.start(loop)
        self.mllp = MllpServer(cfg.mllp, self.writer)
        await self.mllp.start()
        if cfg.fhir.enabled:
            from site_agent.fhir.server import FhirServer

            self.fhir = FhirServer(cfg.fhir, self)
            await self.fhir.start()
        if cfg.fhir.poll_base_url:
            from site_agent.fhir.poller import FhirPoller

            self.poller = FhirPoller(cfg.fhir, self)
            self._tasks.append(asyncio.create_task(self.poller.run(), name="fhir-poller"))
        if relay:
            await self.start_relay()
        self._tasks.append(asyncio.create_task(self._ticker(), name="ticker"))
        if cfg.hub.enabled:
            self._tasks.append(asyncio.create_task(self._directives(), name="directives"))
        else:
            log.info("no hub URL configured: directives from the region are not fetched")
        if cfg.forecast.enabled:
            # spawn: a fresh interpreter for the simulation, nothing inherited from the agent.
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
            self._tasks.append(asyncio.create_task(self._forecaster(), name="forecaster"))
        self.started_at = datetime.now(UTC)
        log.info(
            "site %s: %d units, %d beds, %d patients restored; MLLP %s:%d; outbox backlog %d",
            cfg.site_code,
            len(self.writer.twin.units),
            sum(len(u.beds) for u in self.writer.twin.units.values()),
            len(self.writer.twin.patients),
            cfg.mllp.host,
            self.mllp.port,
            self.writer.backlog,
        )

    async def start_relay(self, bootstrap: str | None = None) -> None:
        """Start (or re-point and restart) the outbox relay process."""
        assert self.writer is not None  # noqa: S101
        assert self._master_key is not None  # noqa: S101
        if self.relay is not None:
            await self.relay.stop(flush_timeout=0)
        cfg = self.config
        kafka = cfg.kafka
        if bootstrap is not None:
            kafka = replace(kafka, bootstrap_servers=bootstrap)
        settings = RelaySettings(
            db_path=cfg.database_path,
            kafka=kafka,
            keystore_path=cfg.keystore_path or cfg.data_dir / "keystore.sqlite3",
            master_key=self._master_key,
            site_code=cfg.site_code,
            client_id=f"site-agent-{cfg.site_code}",
            log_level=logging.getLogger().getEffectiveLevel(),
        )
        writer = self.writer
        metrics = self.metrics

        def on_published(seqs: list[int]) -> None:
            writer.submit(_published(seqs))
            if metrics is not None:
                metrics.published.inc(len(seqs))

        relay = self.relay = OutboxRelay(settings, on_published)
        # Everything committed so far is on disk once this fsync returns.
        await asyncio.to_thread(writer.store.sync_wal)
        relay.start(asyncio.get_running_loop(), writer.store.max_outbox_seq())
        writer.on_durable = relay.durable

    async def call(self, fn: Callable[[IngestWriter], T]) -> T:
        """Run ``fn`` on the writer thread, inside its transaction, and return the result."""
        assert self.writer is not None  # noqa: S101
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()

        def reply(value: Any) -> None:
            if not fut.done():
                fut.set_result(value)

        self.writer.submit(CallItem(fn=fn, reply=reply))
        return await fut

    async def _ticker(self) -> None:
        assert self.writer is not None  # noqa: S101
        db = self.config.database_path
        while True:
            self.writer.tick()
            # The writer never checkpoints (wal_autocheckpoint=0: not on the ACK path); a
            # PASSIVE checkpoint from another connection in a thread keeps the WAL short.
            await asyncio.to_thread(checkpoint, db)
            relay = self.relay
            if relay is not None and relay.started and not relay.alive and not self._stopping:
                # The relay process died (it should not): the outbox still holds everything
                # it had not delivered, so a new one simply carries on.
                log.error("the relay process exited; starting a new one")
                await self.start_relay(relay.settings.kafka.bootstrap_servers)
            await asyncio.sleep(1.0)

    async def _directives(self) -> None:
        """Poll the hub's directives (site_agent/directives.py) until cancelled."""
        from deid.keystore import PatientKeyStore
        from site_agent.directives import DirectivePoller, HubClient, poll_once

        cfg = self.config
        assert self._master_key is not None  # noqa: S101
        loop = asyncio.get_running_loop()
        try:
            credential = cfg.hub.read_credential()
        except ConfigError as exc:
            # Ingestion goes on without directives; the hub shows them pending meanwhile.
            log.error("directives from the hub are OFF: %s", exc)
            return
        hub = HubClient(cfg.hub.url, credential, timeout=cfg.hub.timeout_seconds)
        if not cfg.hub.governance_keys:
            log.warning(
                "no governance public key configured ([hub] governance_keys or "
                "DEID_GOVERNANCE_PUBLIC_KEYS): erasure directives will be refused"
            )
        # The key store the relay and the DE-ID worker use (one file, shared by processes).
        keystore = PatientKeyStore(
            cfg.keystore_path or cfg.data_dir / "keystore.sqlite3", self._master_key
        )
        ledger = _WriterLedger(self, loop)

        def cycle() -> list[Any]:
            return poll_once(
                site_code=cfg.site_code,
                hub=hub,
                keystore=keystore,
                ledger=ledger,
                trusted=list(cfg.hub.governance_keys),
            )

        poller = DirectivePoller(
            cycle,
            interval=cfg.hub.directives_interval_seconds,
            ceiling=cfg.hub.max_backoff_seconds,
        )
        try:
            await poller.run()
        finally:
            keystore.close()

    async def _forecaster(self) -> None:
        cfg = self.config.forecast
        loop = asyncio.get_running_loop()
        await asyncio.sleep(5.0)  # let the first messages in before the first forecast
        while True:
            try:
                await self._forecast_once(loop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("forecast failed; snapshots go out without one")
            await asyncio.sleep(cfg.interval_minutes * 60)

    async def _forecast_once(self, loop: asyncio.AbstractEventLoop) -> None:
        cfg = self.config.forecast
        now = datetime.now(UTC)
        data = await self.call(lambda w: census_input(w.twin, self.config, now))
        result = await loop.run_in_executor(
            self._pool, run_forecast, data, cfg.scenario, cfg.horizon_hours, cfg.replications
        )
        await self.call(lambda w: self.forecasts.update(w.twin, result, now))
        log.info("forecast updated for %d scenario units", len(result))

    async def stop(self) -> None:
        log.info("stopping: no new connections, finishing in-flight messages")
        self._stopping = True
        if self.mllp is not None:
            await self.mllp.stop()
        if self.fhir is not None:
            await self.fhir.stop()
        for t in self._tasks:
            t.cancel()
        # Background tasks (ticker, poller, forecaster) only read or queue work: cancelling them
        # loses nothing; their errors were logged where they happened.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.writer is not None:
            await self.writer.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.store is not None:
            self.store.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        log.info("stopped")


class _WriterLedger:
    """The directive ledger through the writer thread (the store has one owner): called from
    the directive poller's worker thread, it waits for the writer to run each step."""

    def __init__(self, agent: Agent, loop: asyncio.AbstractEventLoop) -> None:
        self._agent = agent
        self._loop = loop

    def _run(self, fn: Callable[[IngestWriter], T]) -> T:
        return asyncio.run_coroutine_threadsafe(self._agent.call(fn), self._loop).result(60)

    def directive_outcome(self, directive_id: int) -> str | None:
        return self._run(lambda w: w.store.directive_outcome(directive_id))

    def record_directive(
        self,
        directive_id: int,
        *,
        kind: str,
        outcome: str,
        payload: dict[str, Any],
        at: str,
        detail: str = "",
    ) -> None:
        self._run(
            lambda w: w.store.record_directive(
                directive_id, kind=kind, outcome=outcome, payload=payload, at=at, detail=detail
            )
        )
