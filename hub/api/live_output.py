"""The live-state responses as plain dicts, built directly from the selectors' dataclasses.

Exactly what ``RegionLiveOutput(region).data`` / ``HospitalLiveOutput(h).data`` give (the
serializers stay the schema; ``tests/hub/api/test_live_output.py`` holds the two equal),
without DRF's field-by-field machinery: for a 50-hospital region (350 units, each with
figures, freshness and provenance) DRF's generic walk cost about as much CPU as the
selector and its queries together, on the endpoint every operations screen and the
end-to-end latency benchmark poll.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework import serializers

from hub.census.selectors import (
    FIGURES,
    BedTypeLive,
    EdLive,
    FeedLive,
    Freshness,
    HospitalLive,
    Provenance,
    RegionLive,
    UnitLive,
)

__all__ = ["hospital_live_data", "region_live_data"]

# DRF's own datetime rendering (time zone and format from the settings, "Z" for UTC).
_DATETIME = serializers.DateTimeField()


def _dt(value: datetime | None) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _freshness(f: Freshness) -> dict[str, Any]:
    return {
        "observed_at": _dt(f.observed_at),
        "age_seconds": _int(f.age_seconds),
        "stale": bool(f.stale),
        "reason": str(f.reason),
    }


def _provenance(p: Provenance | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "site_code": str(p.site_code),
        "source": str(p.source),
        "agent": str(p.agent),
        "key_id": str(p.key_id),
        "via": str(p.via),
        "event_id": str(p.event_id),
        "policy_version": int(p.policy_version),
        "produced_at": _dt(p.produced_at),
        "received_at": _dt(p.received_at),
    }


def _unit(u: UnitLive) -> dict[str, Any]:
    figures = u.figures
    return {
        "code": str(u.code),
        "name": str(u.name),
        "unit_type": str(u.unit_type),
        "edxl_bed_type": _str(u.edxl_bed_type),
        "capacity_group": str(u.capacity_group),
        "baseline_licensed": int(u.baseline_licensed),
        "baseline_staffed": int(u.baseline_staffed),
        "baseline_surge": int(u.baseline_surge),
        # As the serializer's nullable fields: a figure the record did not carry is null.
        "figures": {k: _int(figures.get(k)) for k in FIGURES},
        "suppressed": [str(s) for s in u.suppressed],
        "forecast": [{str(k): v for k, v in d.items()} for d in u.forecast],
        "freshness": _freshness(u.freshness),
        "provenance": _provenance(u.provenance),
    }


def _bed_type(b: BedTypeLive) -> dict[str, Any]:
    pct = b.occupancy_pct
    return {
        "unit_type": str(b.unit_type),
        "edxl_bed_type": _str(b.edxl_bed_type),
        "capacity_group": str(b.capacity_group),
        "units": int(b.units),
        "units_fresh": int(b.units_fresh),
        "baseline_staffed": int(b.baseline_staffed),
        "staffed": int(b.staffed),
        "occupied": int(b.occupied),
        "available": int(b.available),
        "occupancy_pct": None if pct is None else float(pct),
        "oldest_observed_at": _dt(b.oldest_observed_at),
    }


def _ed(e: EdLive | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "unit_code": _str(e.unit_code),
        "ems_traffic": str(e.ems_traffic),
        "ems_traffic_reason": str(e.ems_traffic_reason),
        "offload_status": _str(e.offload_status),
        "waiting": _int(e.waiting),
        "in_treatment": _int(e.in_treatment),
        "boarding": _int(e.boarding),
        "longest_boarding_minutes": _int(e.longest_boarding_minutes),
        "boarding_p50_minutes": _int(e.boarding_p50_minutes),
        "offload_count": _int(e.offload_count),
        "offload_p50_minutes": _int(e.offload_p50_minutes),
        "offload_p90_minutes": _int(e.offload_p90_minutes),
        "freshness": _freshness(e.freshness),
        "provenance": _provenance(e.provenance),
    }


def _feed(f: FeedLive) -> dict[str, Any]:
    return {
        "component": str(f.component),
        "agent_version": str(f.agent_version),
        "policy_version": _int(f.policy_version),
        "last_seen_at": _dt(f.last_seen_at),
        "age_seconds": int(f.age_seconds),
        "stale": bool(f.stale),
        "feeds": [{str(k): v for k, v in d.items()} for d in f.feeds],
        "outbox_backlog": _int(f.outbox_backlog),
    }


def hospital_live_data(h: HospitalLive) -> dict[str, Any]:
    """``HospitalLiveOutput(h).data``, built directly."""
    return {
        "site_code": str(h.hospital.site_code),
        "name": str(h.hospital.name),
        "status": str(h.status),
        "stale_units": [str(s) for s in h.stale_units],
        "freshness": _freshness(h.freshness),
        "ed": _ed(h.ed),
        "beds": [_bed_type(b) for b in h.beds],
        "units": [_unit(u) for u in h.units],
        "feeds": [_feed(f) for f in h.feeds],
    }


def region_live_data(region: RegionLive) -> dict[str, Any]:
    """``RegionLiveOutput(region).data``, built directly."""
    return {
        "generated_at": _dt(region.generated_at),
        "hospitals_stale": int(region.hospitals_stale),
        "hospitals_no_data": int(region.hospitals_no_data),
        "beds": [_bed_type(b) for b in region.beds],
        "hospitals": [hospital_live_data(h) for h in region.hospitals],
    }
