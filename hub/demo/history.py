"""Synthetic census history for seeded hospitals, through the real ingest path.

For tests, benchmarks and screenshots of the board: hours of plausible census snapshots per
unit (a daily cycle of occupancy around each hospital's own pressure, an ED whose waiting,
boarding and ambulance offload times follow it), a forecast on the latest snapshot, and a
heartbeat per site. Every record is a real ``CensusRecord`` in an envelope signed with a
key registered for the site, and goes through ``envelope_into_batch`` and
``census_ingest_batch`` like a record from Kafka: no row is written by hand.

All figures are synthetic (seeded pseudo-random numbers); only the bed counts of hospitals
seeded from the HHS file are real.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone

from deid.contracts import (
    Audience,
    CensusRecord,
    HeartbeatRecord,
    RegionalFeedStatus,
    RegionalForecastPoint,
    UnitType,
    sign_envelope,
)
from deid.signing import generate_signing_key, public_key_b64
from hub.census.ingest import IngestBatch, SiteDirectory, envelope_into_batch
from hub.census.services import census_ingest_batch
from hub.registry import services
from hub.registry.models import Hospital, Unit

AGENT_NAME = "history-seed"
RECORDS_PER_ENVELOPE = 500
ENVELOPES_PER_TRANSACTION = 20
FORECAST_HORIZONS = (1, 2, 3, 4, 6, 8)


@dataclass
class HistorySeedResult:
    hospitals: int = 0
    records: int = 0
    rejected: list[str] = field(default_factory=list)


def _minute(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _daily(at: datetime) -> float:
    """-1..1, highest mid-afternoon, lowest before dawn: ED arrivals and bed occupancy both
    peak in the afternoon and evening in every published ED arrival curve."""
    hour = at.hour + at.minute / 60
    return math.sin(2 * math.pi * (hour - 9) / 24)


def _unit_record(
    unit: Unit,
    site_code: str,
    at: datetime,
    pressure: float,
    rng: random.Random,
    *,
    forecast: bool,
    stale: bool,
) -> CensusRecord:
    staffed = max(unit.staffed_beds, 1)
    load = pressure + 0.05 * _daily(at) + rng.gauss(0, 0.015)
    common: dict[str, object] = {
        "site_code": site_code,
        "policy_version": 1,
        "audience": Audience.REGIONAL_OPERATIONS,
        "source_event_id": f"hist-{unit.pk}-{at:%Y%m%d%H%M}",
        "unit_code": unit.code,
        "unit_type": UnitType(unit.unit_type),
        "as_of": _minute(at),
        "produced_at": at,
        "source": "hl7-adt",
        "stale": stale,
        "licensed_beds": unit.licensed_beds or staffed,
        "staffed_beds": staffed,
    }
    if unit.unit_type == UnitType.EMERGENCY.value:
        in_treatment = min(staffed, round(staffed * min(load, 1.05)))
        overflow = max(0.0, load - 0.9)
        boarding = min(in_treatment, round(staffed * (overflow * 1.5 + rng.random() * 0.1)))
        waiting = max(0, round(staffed * (0.15 + overflow * 2.5) + rng.gauss(0, 1.5)))
        offload_p50 = max(5, round(14 + 90 * overflow + rng.gauss(0, 3)))
        offload_p90 = offload_p50 + max(5, round(12 + 120 * overflow + rng.gauss(0, 4)))
        values: dict[str, object] = {
            "occupied_beds": in_treatment,
            "available_beds": max(0, staffed - in_treatment),
            "ed_waiting": waiting,
            "ed_in_treatment": in_treatment - boarding,
            "ed_boarding": boarding,
            "longest_boarding_minutes": round(boarding * 55 + rng.random() * 30) if boarding else 0,
            "boarding_p50_minutes": round(boarding * 25) if boarding else 0,
            "offload_count": max(0, round(staffed / 6 + rng.gauss(0, 1))),
            "offload_p50_minutes": offload_p50,
            "offload_p90_minutes": offload_p90,
        }
    else:
        occupied = min(staffed + unit.surge_beds, max(0, round(staffed * load)))
        blocked = 1 if staffed >= 20 and rng.random() < 0.3 else 0
        values = {
            "surge_beds": max(0, occupied - staffed),
            "occupied_beds": occupied,
            "available_beds": max(0, staffed - occupied - blocked),
            "blocked_beds": blocked,
            "pending_admissions": max(0, round(staffed * max(0.0, load - 0.85) * 0.4)),
            "pending_discharges": max(0, round(staffed * 0.08 + rng.gauss(0, 1))),
        }
    points: tuple[RegionalForecastPoint, ...] = ()
    if forecast:
        free_now = float(values["available_beds"])  # type: ignore[arg-type]
        # Busy units fill up, quiet ones free beds; the interval widens with the horizon
        # and with the unit's size (more beds, more arrivals and discharges to be wrong on).
        trend = -0.03 * staffed**0.5 * (1 if pressure > 0.9 else -0.5)
        spread = 0.05 * staffed**0.5
        points = tuple(
            RegionalForecastPoint(
                horizon_hours=h,
                p50=round(free_now + trend * h, 1),
                p10=round(free_now + trend * h - 0.5 - spread * h, 1),
                p90=round(free_now + trend * h + 0.5 + spread * h, 1),
            )
            for h in FORECAST_HORIZONS
        )
    return CensusRecord(**common, **values, forecast=points)  # type: ignore[arg-type]


def _key_for(hospital: Hospital) -> Ed25519PrivateKey:
    """A fresh key registered for the site (a throw-away agent: tests and benchmarks)."""
    key = generate_signing_key()
    hospital.agents.filter(name=AGENT_NAME).delete()
    services.agent_register(hospital=hospital, name=AGENT_NAME, public_key=public_key_b64(key))
    return key


def census_history_seed(
    *,
    hospitals: Iterable[Hospital],
    hours: float = 24,
    interval: timedelta = timedelta(minutes=15),
    now: datetime | None = None,
    seed: int = 7,
    pressure: Mapping[str, float] | None = None,
    silent_for: Mapping[str, timedelta] | None = None,
    flagged_stale: Iterable[str] = (),
    forecast: bool = True,
) -> HistorySeedResult:
    """Ingest ``hours`` of snapshots every ``interval`` for every active unit of each hospital.

    ``pressure`` sets a hospital's mean occupancy (default: drawn between 0.72 and 1.0);
    ``silent_for`` ends a site's feed that long before ``now`` (a stale or offline site);
    ``flagged_stale`` sites mark their last snapshots as stale themselves (a feed gap the
    site agent noticed). Each call registers a fresh signing key per site (agent
    ``history-seed``), so it is for throw-away databases only.
    """
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    rng = random.Random(seed)  # noqa: S311 (synthetic figures, reproducible; no secret)
    pressure = dict(pressure or {})
    silent_for = dict(silent_for or {})
    flagged = set(flagged_stale)
    directory = SiteDirectory()
    result = HistorySeedResult()
    steps = max(1, int(timedelta(hours=hours) / interval))
    pending: list[bytes] = []

    def flush() -> None:
        if not pending:
            return
        batch = IngestBatch()
        for value in pending:
            envelope_into_batch(
                value, directory=directory, batch=batch, received_at=timezone.now(), via="kafka"
            )
        census_ingest_batch(batch=batch)
        result.records += len(batch.census) + len(batch.heartbeats)
        result.rejected += [r.reason for r in batch.rejections]
        pending.clear()

    for hospital in hospitals:
        code = hospital.site_code
        key = _key_for(hospital)
        mean = pressure.get(code, rng.uniform(0.72, 1.0))
        units = list(hospital.units.filter(active=True).order_by("code"))
        last = now - silent_for.get(code, timedelta(0))
        records: list[CensusRecord | HeartbeatRecord] = []
        for step in range(steps, -1, -1):
            at = now - step * interval
            if at > last:
                break
            final = at + interval > last
            records.extend(
                _unit_record(
                    unit,
                    code,
                    at,
                    mean,
                    rng,
                    forecast=forecast and final,
                    stale=final and code in flagged,
                )
                for unit in units
            )
        records.append(
            HeartbeatRecord(
                site_code=code,
                policy_version=1,
                component="deid_worker",
                agent_version="history-seed",
                produced_at=last,
                feeds=(
                    RegionalFeedStatus(
                        name="adt-main",
                        source="hl7-adt",
                        last_message_at=_minute(last),
                        stale=code in flagged,
                    ),
                ),
                outbox_backlog=0,
            )
        )
        for start in range(0, len(records), RECORDS_PER_ENVELOPE):
            chunk = records[start : start + RECORDS_PER_ENVELOPE]
            pending.append(sign_envelope(chunk, key, site_code=code, policy_version=1))
            if len(pending) >= ENVELOPES_PER_TRANSACTION:
                flush()
        result.hospitals += 1
    flush()
    return result
