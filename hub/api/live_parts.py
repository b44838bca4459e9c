"""Live answers assembled from per-hospital parts: a poll rebuilds only what moved.

The region's live board is polled by every operations screen and by the latency benchmark,
while 50 hospitals each send an update a second. With one answer per state version and
second (``live_cache.live_answer``), every poll during ingest rebuilt the whole region (five
queries, 350 units, ~16,000 output values). Here an answer is a list of **hospital parts**
kept per caller scope, audience and uncommitted-change token (``live_cache.state_token``):

* each part is one hospital's response data (``hospital_live_data``) as built, with the
  **per-hospital version** it was built under (``governance.versions.hospital_versions``:
  the ingest bumps the counter of every hospital its batch touches, with ``census``, at the
  write and at commit). The versions are read *before* the rows, so a part is never older
  than the last committed batch of its hospital;
* everything else the board reads (hospitals, units, regions, directives, agents' names,
  unit or feed states written through the ORM) moves the ``live`` version: then every part
  is rebuilt (as is the whole answer after ``MAX_AGE_SECONDS``, whatever the versions say);
* what depends on the clock is done when the answer is served, not when it is built: the
  ages (``age_seconds`` of units, the ED, hospitals and feeds) are computed from the stored
  timestamps, and a part is rebuilt once the clock alone would change anything else in it
  (a unit or feed turning stale, a diversion expiring: ``HospitalLive.changes_at``). The
  region's totals per bed type and counts are merged from the parts at every request.

A request whose ``census`` version has not moved reads no per-hospital version (one Redis
round trip saved); otherwise one ``HMGET`` for the answer's hospitals, then one build
(five queries) for those whose version moved, whatever their number. The governed checks
and the audit event are the view's, for every request, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any

from django.db.models import QuerySet

from governance import versions
from hub.api.live_cache import MAX_AGE_SECONDS, answers
from hub.api.live_output import _bed_type, _Dates, hospital_live_data
from hub.api.renderers import render_json
from hub.census import selectors as census
from hub.registry.models import Hospital, Unit

Scoped = Callable[[], tuple[QuerySet[Hospital], QuerySet[Unit]]]


@dataclass(frozen=True, slots=True)
class HospitalPart:
    """One hospital's response data as built, and what serving it again needs."""

    pk: int
    version: int  # the hospital's own version it was built under
    built: float  # monotonic
    data: dict[str, Any]  # hospital_live_data at build time: only read, never changed
    # The times the ages count from, in microseconds since the epoch (``_micros``).
    oldest: int | None  # the hospital's freshness
    ed_observed: int | None  # the ED's freshness
    unit_observed: tuple[int | None, ...]  # per unit, in data["units"] order
    feed_seen: tuple[int, ...]  # per feed, in data["feeds"] order
    changes_at: datetime | None
    status: str
    beds: tuple[census.BedTypeLive, ...]
    row_count: int
    # ``json_at``'s template (``_template``): the JSON between the ages, and the stored time
    # (``_micros``) each age counts from, in the order written.
    chunks: tuple[bytes, ...] = ()
    chunk_at: tuple[int, ...] = ()

    def valid(self, now: datetime, at: float) -> bool:
        return (self.changes_at is None or now < self.changes_at) and (
            at - self.built < MAX_AGE_SECONDS
        )

    def data_at(self, now: datetime) -> dict[str, Any]:
        """The data as a build at ``now`` would give it: the ages computed again (as
        ``selectors.age_seconds`` does, in whole microseconds); a dict whose age has not
        moved since the build is served as built."""
        now_us = _micros(now)
        return _aged(self, lambda at: max(0, (now_us - at) // 1_000_000))

    def json_at(self, now: datetime) -> bytes:
        """``data_at(now)`` as the API's JSON renderer writes it (the same bytes), from the
        part's template: the ages are the only figures that move with the clock."""
        now_us = _micros(now)
        chunks = self.chunks
        out = [chunks[0]]
        for at, chunk in zip(self.chunk_at, chunks[1:], strict=True):
            out.append(b"%d" % max(0, (now_us - at) // 1_000_000))
            out.append(chunk)
        return b"".join(out)


def _aged(part: HospitalPart, age_of: Callable[[int], int]) -> dict[str, Any]:
    """The part's data with every age that counts from a stored time set by ``age_of``."""
    data = part.data

    def aged(block: dict[str, Any], at: int | None) -> dict[str, Any]:
        freshness = block["freshness"]
        if at is None:
            return block
        age = age_of(at)
        if freshness["age_seconds"] == age:
            return block
        return {**block, "freshness": {**freshness, "age_seconds": age}}

    out = aged(data, part.oldest)
    if out is data:
        out = dict(data)
    out["units"] = [
        aged(unit, at) for unit, at in zip(data["units"], part.unit_observed, strict=True)
    ]
    if data["ed"] is not None:
        out["ed"] = aged(data["ed"], part.ed_observed)
    feeds = []
    for feed, at in zip(data["feeds"], part.feed_seen, strict=True):
        age = age_of(at)
        feeds.append(feed if feed["age_seconds"] == age else {**feed, "age_seconds": age})
    out["feeds"] = feeds
    return out


# A part's JSON template: the data rendered once with a sentinel in place of every age that
# moves with the clock, split there. Sentinel i is _SENTINEL - i (no age is negative), and
# only a value of an ``"age_seconds"`` key is taken (a string holding the same text would be
# written with escaped quotes).
_SENTINEL = -7_000_000_000_000_000
_SLOT = re.compile(rb'(?<="age_seconds":)(-7\d{15})(?=[,}])')


def _template(part: HospitalPart) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
    """The part's JSON split at its ages, and the stored time each age counts from."""
    slots: list[int] = []

    def sentinel(at: int) -> int:
        slots.append(at)
        return _SENTINEL - (len(slots) - 1)

    pieces = _SLOT.split(render_json(_aged(part, sentinel)))
    chunks = tuple(pieces[0::2])
    order = tuple(slots[_SENTINEL - int(p)] for p in pieces[1::2])
    if len(order) != len(slots):  # every sentinel written once, or no template
        raise ValueError("live part template: ages not found in the rendered JSON")
    return chunks, order


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


def _micros_or_none(at: datetime | None) -> int | None:
    return None if at is None else _micros(at)


def _part(h: census.HospitalLive, version: int, built: float) -> HospitalPart:
    part = HospitalPart(
        pk=h.hospital.pk,
        version=version,
        built=built,
        data=hospital_live_data(h),
        oldest=_micros_or_none(h.freshness.observed_at),
        ed_observed=_micros_or_none(h.ed.freshness.observed_at) if h.ed is not None else None,
        unit_observed=tuple(_micros_or_none(u.freshness.observed_at) for u in h.units),
        feed_seen=tuple(_micros(f.last_seen_at) for f in h.feeds),
        changes_at=h.changes_at,
        status=h.status,
        beds=tuple(h.beds),
        row_count=len(h.units),
    )
    chunks, chunk_at = _template(part)
    return replace(part, chunks=chunks, chunk_at=chunk_at)


@dataclass(frozen=True, slots=True)
class _Entry:
    live: int  # the ``live`` version the hospitals and their order were read under
    census: int  # the ``census`` version the parts' own versions were read under (at least)
    built: float  # when the hospitals were read (monotonic): the entry expires with it
    parts: tuple[HospitalPart, ...]  # in the board's order


def hospital_parts(
    key: Hashable, scoped: Scoped, audience: str, now: datetime
) -> list[HospitalPart] | None:
    """The parts of the hospitals the caller may see (``scoped``: their restricted hospitals
    and units), current at ``now``; None when nothing may be shared (Redis unreachable:
    then the caller builds the answer itself, as before)."""
    live = versions.state_version("live")
    census_version = versions.state_version("census")
    if live is None or census_version is None:
        return None
    entry_key = ("parts", versions.state_token(), key)
    at = monotonic()
    entry: _Entry | None = answers.get(entry_key)
    if entry is None or entry.live != live:
        return _full(entry_key, scoped, audience, now, live, census_version, at)

    parts = entry.parts
    current = {p.pk: p.version for p in parts}
    if entry.census != census_version:
        moved = versions.hospital_versions(list(current))
        if moved is None:
            return None
        current = dict(zip(current, moved, strict=True))
    elif all(p.valid(now, at) for p in parts):
        return list(parts)  # nothing moved: no Redis round trip, no query
    stale = [p.pk for p in parts if current[p.pk] != p.version or not p.valid(now, at)]
    if stale:
        hospitals, units = scoped()
        rebuilt = census.live_hospitals(
            hospitals=hospitals.filter(pk__in=stale), units=units, audience=audience, now=now
        )
        if len(rebuilt) != len(stale):  # a hospital left the scope meanwhile
            return _full(entry_key, scoped, audience, now, live, census_version, at)
        fresh = {h.hospital.pk: _part(h, current[h.hospital.pk], at) for h in rebuilt}
        parts = tuple(fresh.get(p.pk, p) for p in parts)
    answers.put(entry_key, _Entry(live, census_version, entry.built, parts), entry.built)
    return list(parts)


def _full(
    entry_key: Hashable,
    scoped: Scoped,
    audience: str,
    now: datetime,
    live: int,
    census_version: int,
    at: float,
) -> list[HospitalPart] | None:
    hospitals, units = scoped()
    hospital_list = census.active_hospitals(hospitals)
    # Before the unit and feed states are read: a part is at least as new as its version.
    own = versions.hospital_versions([h.pk for h in hospital_list])
    if own is None:
        return None
    built = census.live_hospitals(
        hospitals=hospitals,
        units=units,
        audience=audience,
        now=now,
        hospital_list=hospital_list,
    )
    parts = tuple(_part(h, v, at) for h, v in zip(built, own, strict=True))
    answers.put(entry_key, _Entry(live, census_version, at, parts), at)
    return list(parts)


def region_data(parts: list[HospitalPart], now: datetime) -> dict[str, Any]:
    """``region_live_data(live_region(..., now=now))`` from the parts."""
    dt = _Dates()
    beds = census.merge_bed_types(b for p in parts for b in p.beds)
    return {
        "generated_at": dt(now),
        "hospitals_stale": sum(1 for p in parts if p.status == "stale"),
        "hospitals_no_data": sum(1 for p in parts if p.status == "no_data"),
        "beds": [_bed_type(b, dt) for b in beds],
        "hospitals": [p.data_at(now) for p in parts],
    }


def region_json(parts: list[HospitalPart], now: datetime) -> bytes:
    """``region_data(parts, now)`` as the API's JSON renderer writes it (the same bytes): the
    totals rendered at every request, each hospital from its part's template."""
    dt = _Dates()
    beds = census.merge_bed_types(b for p in parts for b in p.beds)
    head = render_json(
        {
            "generated_at": dt(now),
            "hospitals_stale": sum(1 for p in parts if p.status == "stale"),
            "hospitals_no_data": sum(1 for p in parts if p.status == "no_data"),
            "beds": [_bed_type(b, dt) for b in beds],
        }
    )
    body = b",".join(p.json_at(now) for p in parts)
    return b"".join((head[:-1], b',"hospitals":[', body, b"]}"))
