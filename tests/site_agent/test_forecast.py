"""The forecast hook: an identifier-free census into ``simulation``, quantiles into snapshots."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from deid.contracts import RawCensusSnapshot, decode_record
from deid.keystore import PatientKeyStore
from site_agent.config import AgentConfig, ForecastConfig
from site_agent.forecast import ForecastCache, census_input, run_forecast
from site_agent.ingest import _Tick

from .conftest import SyncWriter
from .hl7msg import adt


def test_forecast_reaches_the_snapshots(config: AgentConfig, keystore: PatientKeyStore) -> None:
    units = tuple(
        replace(u, forecast_unit={"4W": "ward_a", "ICU": "icu"}.get(u.code, ""))
        for u in config.units
    )
    cfg = replace(
        config, units=units, forecast=ForecastConfig(scenario="general_hospital", replications=5)
    )
    w = SyncWriter(cfg, keystore)
    cache = ForecastCache(cfg)
    w.writer.publisher.forecaster = cache
    w.send(adt("A01", "F1", loc="4W^401^A"), adt("A04", "F2", cls="E", loc="ED^ED1^1"))
    now = datetime.now(UTC)
    data = census_input(w.writer.twin, cfg, now)
    assert data.capacity == {"ward_a": 4, "icu": 4}
    assert len(data.elapsed_hours["ward_a"]) == 1
    assert data.ed_in_treatment == 1
    # No identifiers cross into the simulation: counts and durations only.
    assert "F1" not in repr(data)
    result = run_forecast(data, "general_hospital", horizon_hours=3, replications=5)
    cache.update(w.writer.twin, result, now)
    w.writer.process([_Tick()])
    snaps = [
        r
        for t, p in w.sealed_outbox()
        if t == "raw.census_snapshot"
        for r in [decode_record(p)]
        if isinstance(r, RawCensusSnapshot) and r.unit_code == "4W"
    ]
    forecast = snaps[-1].forecast
    assert [f.horizon_hours for f in forecast] == [1, 2, 3]
    assert all(f.p10 <= f.p50 <= f.p90 for f in forecast)
    ed = [s for t, p in w.sealed_outbox() for s in [decode_record(p)] if t == "raw.census_snapshot"]
    assert all(
        s.forecast == () for s in ed if isinstance(s, RawCensusSnapshot) and s.unit_code == "ED"
    )
    w.store.close()
