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

import orjson
from django.conf import settings
from django.db.models import Func, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

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

__all__ = [
    "CENSUS_HISTORY_FIELDS",
    "answers_in_utc",
    "census_history_rows",
    "census_history_values",
    "hospital_live_data",
    "iso_utc_sql",
    "region_live_data",
    "suppressed_names",
]

# DRF's own datetime rendering (time zone and format from the settings, "Z" for UTC); the
# common case (ISO 8601, aware values) is done here with the time zone looked up once per
# response, not once per value.
_DATETIME = serializers.DateTimeField()


class _Dates:
    def __init__(self) -> None:
        fast = settings.USE_TZ and str(api_settings.DATETIME_FORMAT).lower() == ISO_8601
        self.tz = timezone.get_current_timezone() if fast else None

    def __call__(self, value: datetime | str | None) -> str | None:
        if not value:
            return None
        if isinstance(value, str):  # written by PostgreSQL (``census_history_values``)
            return value
        if self.tz is None or value.tzinfo is None:
            return _DATETIME.to_representation(value)
        text = value.astimezone(self.tz).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _freshness(f: Freshness, dt: _Dates) -> dict[str, Any]:
    return {
        "observed_at": dt(f.observed_at),
        "age_seconds": _int(f.age_seconds),
        "stale": bool(f.stale),
        "reason": str(f.reason),
    }


def _provenance(p: Provenance | None, dt: _Dates) -> dict[str, Any] | None:
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
        "produced_at": dt(p.produced_at),
        "received_at": dt(p.received_at),
    }


def _unit(u: UnitLive, dt: _Dates) -> dict[str, Any]:
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
        "freshness": _freshness(u.freshness, dt),
        "provenance": _provenance(u.provenance, dt),
    }


def _bed_type(b: BedTypeLive, dt: _Dates) -> dict[str, Any]:
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
        "oldest_observed_at": dt(b.oldest_observed_at),
    }


def _ed(e: EdLive | None, dt: _Dates) -> dict[str, Any] | None:
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
        "freshness": _freshness(e.freshness, dt),
        "provenance": _provenance(e.provenance, dt),
    }


def _feed(f: FeedLive, dt: _Dates) -> dict[str, Any]:
    return {
        "component": str(f.component),
        "agent_version": str(f.agent_version),
        "policy_version": _int(f.policy_version),
        "last_seen_at": dt(f.last_seen_at),
        "age_seconds": int(f.age_seconds),
        "stale": bool(f.stale),
        "feeds": [{str(k): v for k, v in d.items()} for d in f.feeds],
        "outbox_backlog": _int(f.outbox_backlog),
    }


def hospital_live_data(h: HospitalLive, dt: _Dates | None = None) -> dict[str, Any]:
    """``HospitalLiveOutput(h).data``, built directly."""
    dt = dt or _Dates()
    return {
        "site_code": str(h.hospital.site_code),
        "name": str(h.hospital.name),
        "status": str(h.status),
        "stale_units": [str(s) for s in h.stale_units],
        "freshness": _freshness(h.freshness, dt),
        "ed": _ed(h.ed, dt),
        "beds": [_bed_type(b, dt) for b in h.beds],
        "units": [_unit(u, dt) for u in h.units],
        "feeds": [_feed(f, dt) for f in h.feeds],
    }


def region_live_data(region: RegionLive) -> dict[str, Any]:
    """``RegionLiveOutput(region).data``, built directly."""
    dt = _Dates()
    return {
        "generated_at": dt(region.generated_at),
        "hospitals_stale": int(region.hospitals_stale),
        "hospitals_no_data": int(region.hospitals_no_data),
        "beds": [_bed_type(b, dt) for b in region.beds],
        "hospitals": [hospital_live_data(h, dt) for h in region.hospitals],
    }


# The columns a census history row is built from (``CensusSnapshotOutput``'s fields) and the
# hospital, for the audit event.
CENSUS_HISTORY_FIELDS = (
    "event_id",
    "observed_at",
    "as_of",
    "site_code",
    "unit_code",
    "unit_type",
    "audience",
    "policy_version",
    *FIGURES,
    "source",
    "stale",
    "suppressed",
    "produced_at",
    "received_at",
    "key_id",
    "via",
    "hospital_id",
)


_ISO_UTC = (
    "(to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
    "CASE WHEN mod(date_part('microseconds', %(expressions)s)::bigint, 1000000) = 0 "
    "THEN '' ELSE to_char(%(expressions)s AT TIME ZONE 'UTC', '.US') END || 'Z')"
)


def iso_utc_sql(column: str) -> str:
    """The SQL of ``_IsoUtc`` for a plain column name (hub/api/history_json.py)."""
    return _ISO_UTC % {"expressions": column}


class _IsoUtc(Func):
    """A timestamp as DRF writes it in UTC (``isoformat()``, ``Z``, microseconds only when
    not zero), written by PostgreSQL: parsing it into a datetime and formatting it again cost
    most of a history page's CPU."""

    template = _ISO_UTC
    output_field = TextField()


def answers_in_utc() -> bool:
    """Datetimes are answered as ISO 8601 in UTC (``_Dates``' fast case), the form
    ``iso_utc_sql`` writes."""
    tz = _Dates().tz
    return tz is not None and str(tz) == "UTC"


def census_history_values(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """``queryset.values(*CENSUS_HISTORY_FIELDS)``, with the event id and the produced and
    received times as text from PostgreSQL when the response's time zone is UTC (the same
    strings ``census_history_rows`` would make; ``observed_at`` stays a datetime: the
    cursor pagination orders by it)."""
    if not answers_in_utc():
        return queryset.values(*CENSUS_HISTORY_FIELDS)
    as_text = {"event_id", "produced_at", "received_at", "suppressed"}
    return queryset.values(
        *(f for f in CENSUS_HISTORY_FIELDS if f not in as_text),
        event_id_text=Cast("event_id", TextField()),
        # The JSON text as stored, parsed by orjson: the JSONField's converter (json.loads
        # through Django's per-value machinery) cost a tenth of a history page's CPU.
        suppressed_text=Cast("suppressed", TextField()),
        produced_at_text=_IsoUtc("produced_at"),
        received_at_text=_IsoUtc("received_at"),
    )


def suppressed_names(text: str) -> list[str]:
    """A row's ``suppressed`` as answered, from the JSON text PostgreSQL stores (as
    ``census_history_rows`` makes it from ``suppressed_text``)."""
    if text == "[]":  # almost every row: nothing withheld
        return []
    return [str(x) for x in orjson.loads(text)]


def census_history_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``CensusSnapshotOutput(rows, many=True).data`` for ``.values(*CENSUS_HISTORY_FIELDS)``
    rows, built directly (a page of 100 snapshots through DRF's fields cost ~10 ms)."""
    dt = _Dates()
    out = []
    # The figures are integer columns: PostgreSQL's ints or None, already what
    # IntegerField.to_representation gives (no conversion per value).
    figures = FIGURES
    for r in rows:
        item: dict[str, Any] = {k: r[k] for k in figures}
        stale = r["stale"]
        item.update(
            {
                "event_id": str(r["event_id_text"] if "event_id_text" in r else r["event_id"]),
                "observed_at": dt(r["observed_at"]),
                "as_of": str(r["as_of"]),
                "site_code": str(r["site_code"]),
                "unit_code": str(r["unit_code"]),
                "unit_type": str(r["unit_type"]),
                "audience": str(r["audience"]),
                "policy_version": int(r["policy_version"]),
                "source": str(r["source"]),
                "stale": None if stale is None else bool(stale),
                "suppressed": [
                    str(x)
                    for x in (
                        orjson.loads(r["suppressed_text"])
                        if "suppressed_text" in r
                        else r["suppressed"]
                    )
                ],
                "produced_at": dt(r.get("produced_at_text") or r.get("produced_at")),
                "received_at": dt(r.get("received_at_text") or r.get("received_at")),
                "key_id": str(r["key_id"]),
                "via": str(r["via"]),
            }
        )
        out.append(item)
    return out
