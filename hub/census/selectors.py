"""Reads of the census: live regional state (with freshness and provenance) and history.

Every figure the live board shows carries its age and where it came from. A unit whose last
snapshot is older than ``conf.stale_after_seconds()`` (or that its own site flagged as stale,
or that never reported) is *stale*, and a hospital with any stale unit is shown as stale: it
is never shown as fine. Regional totals count fresh figures only and say how many units are
missing from them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from deid.contracts.vocabulary import CAPACITY_GROUP, EDXL_HAVE_BED_TYPE, UnitType
from hub.census import conf
from hub.census.models import CensusSnapshot, FeedState, FlowEvent, UnitState
from hub.registry.models import Directive, Hospital, SiteAgent, Unit

DEFAULT_AUDIENCE = "regional_operations"

# EMS traffic thresholds, from common US regional practice: an ambulance patient offload
# (APOT) over 30 minutes is a delay (California EMSA APOT standard), ED boarding above a
# quarter of ED places strains intake. Documented in docs/hub.md; a region may change them.
OFFLOAD_DELAYED_MINUTES = 30
ADVISORY_OFFLOAD_P90_MINUTES = 60
ADVISORY_BOARDING_SHARE = 0.25


@dataclass(frozen=True)
class Provenance:
    """Where a figure came from: the site feed, the signing key (agent), when."""

    site_code: str
    source: str
    agent: str
    key_id: str
    via: str
    event_id: str
    policy_version: int
    produced_at: datetime
    received_at: datetime


@dataclass(frozen=True)
class Freshness:
    observed_at: datetime | None
    age_seconds: int | None
    stale: bool
    reason: str = ""


@dataclass
class UnitLive:
    unit_id: int
    code: str
    name: str
    unit_type: str
    edxl_bed_type: str | None
    capacity_group: str
    baseline_licensed: int
    baseline_staffed: int
    baseline_surge: int
    figures: dict[str, int | None]
    suppressed: list[str]
    forecast: list[dict[str, Any]]
    freshness: Freshness
    provenance: Provenance | None


@dataclass
class BedTypeLive:
    unit_type: str
    edxl_bed_type: str | None
    capacity_group: str
    units: int
    units_fresh: int
    baseline_staffed: int
    staffed: int
    occupied: int
    available: int
    oldest_observed_at: datetime | None

    @property
    def occupancy_pct(self) -> float | None:
        return round(100 * self.occupied / self.staffed, 1) if self.staffed else None


@dataclass
class EdLive:
    unit_code: str | None
    ems_traffic: str  # Normal | Advisory | Closed | NotApplicable | Unknown
    ems_traffic_reason: str
    offload_status: str | None  # Normal | Delayed
    waiting: int | None
    in_treatment: int | None
    boarding: int | None
    longest_boarding_minutes: int | None
    boarding_p50_minutes: int | None
    offload_count: int | None
    offload_p50_minutes: int | None
    offload_p90_minutes: int | None
    freshness: Freshness
    provenance: Provenance | None


@dataclass
class FeedLive:
    component: str
    agent_version: str
    policy_version: int | None
    last_seen_at: datetime
    age_seconds: int
    stale: bool
    feeds: list[dict[str, Any]]
    outbox_backlog: int | None


@dataclass
class HospitalLive:
    hospital: Hospital
    status: str  # ok | stale | no_data
    stale_units: list[str]
    freshness: Freshness
    ed: EdLive | None
    beds: list[BedTypeLive]
    units: list[UnitLive]
    feeds: list[FeedLive]
    # When the clock alone next changes something here other than an age (a unit or feed
    # turning stale, a diversion expiring); None: never. Ages change every second.
    changes_at: datetime | None = None


@dataclass
class RegionLive:
    generated_at: datetime
    hospitals: list[HospitalLive]
    beds: list[BedTypeLive] = field(default_factory=list)
    hospitals_stale: int = 0
    hospitals_no_data: int = 0


FIGURES = (
    "licensed_beds",
    "staffed_beds",
    "surge_beds",
    "occupied_beds",
    "available_beds",
    "blocked_beds",
    "pending_admissions",
    "pending_discharges",
    "ed_waiting",
    "ed_in_treatment",
    "ed_boarding",
    "longest_boarding_minutes",
    "boarding_p50_minutes",
    "boarding_p90_minutes",
    "offload_count",
    "offload_p50_minutes",
    "offload_p90_minutes",
)


def age_seconds(now: datetime, then: datetime | None) -> int | None:
    """Whole seconds from ``then`` to ``now`` (0 if in the future), as every age is shown."""
    return None if then is None else max(0, int((now - then).total_seconds()))


_age = age_seconds
_MICROSECOND = timedelta(microseconds=1)


def _earliest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _unit_freshness(state: UnitState | None, now: datetime, limit: timedelta) -> Freshness:
    if state is None:
        return Freshness(None, None, True, "no snapshot received")
    age = _age(now, state.observed_at)
    if state.stale:
        return Freshness(state.observed_at, age, True, "the site reports its feed as overdue")
    if now - state.observed_at > limit:
        return Freshness(state.observed_at, age, True, "no snapshot within the staleness limit")
    return Freshness(state.observed_at, age, False)


def _provenance(state: UnitState, agents: dict[str, str], site_code: str) -> Provenance:
    return Provenance(
        site_code=site_code,
        source=state.source,
        agent=agents.get(state.key_id, ""),
        key_id=state.key_id,
        via=state.via,
        event_id=str(state.event_id),
        policy_version=state.policy_version,
        produced_at=state.produced_at,
        received_at=state.received_at,
    )


def _ems_traffic(ed: UnitLive | None, directive: Directive | None) -> tuple[str, str, str | None]:
    """(EMS traffic status, reason, offload status) in EDXL-HAVE terms."""
    if directive is not None:
        status = str(directive.payload.get("ems_traffic", "Closed"))
        if status in ("Normal", "Advisory", "Closed"):
            reason = str(directive.payload.get("reason", "regional diversion decision"))
            offload = _offload_status(ed)
            return status, reason, offload
    if ed is None:
        return "NotApplicable", "no emergency department registered", None
    if ed.freshness.stale:
        return "Unknown", f"ED figures stale: {ed.freshness.reason}", None
    offload = _offload_status(ed)
    f = ed.figures
    places = f.get("staffed_beds") or ed.baseline_staffed
    reasons = []
    if f.get("available_beds") == 0:
        reasons.append("no ED place free")
    if places and (f.get("ed_boarding") or 0) >= ADVISORY_BOARDING_SHARE * places:
        reasons.append("boarding above a quarter of ED places")
    if (f.get("offload_p90_minutes") or 0) > ADVISORY_OFFLOAD_P90_MINUTES:
        reasons.append("ambulance offload p90 above 60 minutes")
    if reasons:
        return "Advisory", "; ".join(reasons), offload
    return "Normal", "", offload


def _offload_status(ed: UnitLive | None) -> str | None:
    if ed is None or ed.freshness.stale:
        return None
    p90 = ed.figures.get("offload_p90_minutes")
    p50 = ed.figures.get("offload_p50_minutes")
    if p90 is None and p50 is None:
        return None
    worst = p90 if p90 is not None else p50
    return "Delayed" if worst is not None and worst > OFFLOAD_DELAYED_MINUTES else "Normal"


def _bed_types(units: Iterable[UnitLive]) -> list[BedTypeLive]:
    by_type: dict[str, BedTypeLive] = {}
    for u in units:
        if u.unit_type == UnitType.EMERGENCY.value:
            continue  # ED places are not beds; the ED has its own status block
        agg = by_type.get(u.unit_type)
        if agg is None:
            agg = by_type[u.unit_type] = BedTypeLive(
                u.unit_type, u.edxl_bed_type, u.capacity_group, 0, 0, 0, 0, 0, 0, None
            )
        agg.units += 1
        agg.baseline_staffed += u.baseline_staffed
        if u.freshness.stale:
            continue
        agg.units_fresh += 1
        agg.staffed += u.figures.get("staffed_beds") or 0
        agg.staffed += u.figures.get("surge_beds") or 0
        agg.occupied += u.figures.get("occupied_beds") or 0
        agg.available += u.figures.get("available_beds") or 0
        seen = u.freshness.observed_at
        if seen is not None and (agg.oldest_observed_at is None or seen < agg.oldest_observed_at):
            agg.oldest_observed_at = seen
    return sorted(by_type.values(), key=lambda b: b.unit_type)


def _merge_bed_types(parts: Iterable[BedTypeLive]) -> list[BedTypeLive]:
    merged: dict[str, BedTypeLive] = {}
    for b in parts:
        m = merged.get(b.unit_type)
        if m is None:
            m = merged[b.unit_type] = BedTypeLive(
                b.unit_type, b.edxl_bed_type, b.capacity_group, 0, 0, 0, 0, 0, 0, None
            )
        m.units += b.units
        m.units_fresh += b.units_fresh
        m.baseline_staffed += b.baseline_staffed
        m.staffed += b.staffed
        m.occupied += b.occupied
        m.available += b.available
        if b.oldest_observed_at is not None and (
            m.oldest_observed_at is None or b.oldest_observed_at < m.oldest_observed_at
        ):
            m.oldest_observed_at = b.oldest_observed_at
    return sorted(merged.values(), key=lambda b: b.unit_type)


def active_hospitals(hospitals: QuerySet[Hospital]) -> list[Hospital]:
    """The hospitals of ``hospitals`` that ``live_hospitals`` shows, in its order."""
    return list(hospitals.filter(active=True).select_related("region"))


merge_bed_types = _merge_bed_types


def live_hospitals(
    *,
    hospitals: QuerySet[Hospital],
    units: QuerySet[Unit] | None = None,
    audience: str = DEFAULT_AUDIENCE,
    now: datetime | None = None,
    hospital_list: list[Hospital] | None = None,
) -> list[HospitalLive]:
    """Live state of each hospital in ``hospitals`` (already restricted by the caller).

    ``units`` (restricted too) limits which units are shown; by default all active units of
    those hospitals. Six queries whatever the number of hospitals; five when the caller
    passes ``hospital_list``, the rows of ``active_hospitals(hospitals)`` it read already.
    """
    now = now or timezone.now()
    limit = timedelta(seconds=conf.stale_after_seconds())
    if hospital_list is None:
        hospital_list = active_hospitals(hospitals)
    ids = [h.pk for h in hospital_list]
    site_by_id = {h.pk: h.site_code for h in hospital_list}
    unit_qs = units if units is not None else Unit.objects.all()
    unit_rows = list(unit_qs.filter(hospital_id__in=ids, active=True).order_by("code"))
    states = {
        s.unit_id: s
        for s in UnitState.objects.filter(unit_id__in=[u.pk for u in unit_rows], audience=audience)
    }
    agents = dict(
        SiteAgent.objects.filter(hospital_id__in=ids)
        .exclude(key_id="")
        .values_list("key_id", "name")
    )
    # A feed turns stale when its whole-second age passes the limit.
    feed_turns_stale = timedelta(seconds=int(limit.total_seconds()) + 1)
    changes_at: dict[int, datetime | None] = {}
    feeds_by_hospital: dict[int, list[FeedLive]] = defaultdict(list)
    for f in FeedState.objects.filter(hospital_id__in=ids).order_by("component"):
        age = _age(now, f.produced_at) or 0
        feed = FeedLive(
            component=f.component,
            agent_version=f.agent_version,
            policy_version=f.policy_version,
            last_seen_at=f.produced_at,
            age_seconds=age,
            stale=age > limit.total_seconds()
            or any(bool(x.get("stale")) for x in f.feeds if isinstance(x, dict)),
            feeds=list(f.feeds),
            outbox_backlog=f.outbox_backlog,
        )
        feeds_by_hospital[f.hospital_id].append(feed)
        if not feed.stale:
            changes_at[f.hospital_id] = _earliest(
                changes_at.get(f.hospital_id), f.produced_at + feed_turns_stale
            )
    diversions: dict[int, Directive] = {}
    for d in Directive.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        hospital_id__in=ids,
        kind=Directive.Kind.DIVERSION,
    ).order_by("issued_at", "id"):
        diversions[d.hospital_id] = d  # the latest decision wins
        changes_at[d.hospital_id] = _earliest(changes_at.get(d.hospital_id), d.expires_at)

    units_by_hospital: dict[int, list[UnitLive]] = defaultdict(list)
    for u in unit_rows:
        state = states.get(u.pk)
        unit_type = UnitType(u.unit_type)
        units_by_hospital[u.hospital_id].append(
            UnitLive(
                unit_id=u.pk,
                code=u.code,
                name=u.name,
                unit_type=u.unit_type,
                edxl_bed_type=EDXL_HAVE_BED_TYPE.get(unit_type),
                capacity_group=CAPACITY_GROUP[unit_type].value,
                baseline_licensed=u.licensed_beds,
                baseline_staffed=u.staffed_beds,
                baseline_surge=u.surge_beds,
                figures={k: getattr(state, k) for k in FIGURES} if state else {},
                suppressed=list(state.suppressed) if state else [],
                forecast=list(state.forecast) if state else [],
                freshness=_unit_freshness(state, now, limit),
                provenance=_provenance(state, agents, site_by_id[u.hospital_id]) if state else None,
            )
        )

    out = []
    for h in hospital_list:
        hunits = units_by_hospital.get(h.pk, [])
        stale_units = [u.code for u in hunits if u.freshness.stale]
        # A unit turns stale once its snapshot is older than the limit.
        turns_stale = [
            u.freshness.observed_at + limit + _MICROSECOND
            for u in hunits
            if not u.freshness.stale and u.freshness.observed_at is not None
        ]
        observed = [u.freshness.observed_at for u in hunits if u.freshness.observed_at]
        oldest = min(observed) if observed else None
        if not observed:
            status, reason = "no_data", "no snapshot received"
        elif stale_units:
            status, reason = "stale", f"stale units: {', '.join(stale_units)}"
        else:
            status, reason = "ok", ""
        ed_unit = next((u for u in hunits if u.unit_type == UnitType.EMERGENCY.value), None)
        traffic, traffic_reason, offload = _ems_traffic(ed_unit, diversions.get(h.pk))
        ed = None
        if ed_unit is not None or traffic != "NotApplicable":
            fig = ed_unit.figures if ed_unit else {}
            ed = EdLive(
                unit_code=ed_unit.code if ed_unit else None,
                ems_traffic=traffic,
                ems_traffic_reason=traffic_reason,
                offload_status=offload,
                waiting=fig.get("ed_waiting"),
                in_treatment=fig.get("ed_in_treatment"),
                boarding=fig.get("ed_boarding"),
                longest_boarding_minutes=fig.get("longest_boarding_minutes"),
                boarding_p50_minutes=fig.get("boarding_p50_minutes"),
                offload_count=fig.get("offload_count"),
                offload_p50_minutes=fig.get("offload_p50_minutes"),
                offload_p90_minutes=fig.get("offload_p90_minutes"),
                freshness=ed_unit.freshness
                if ed_unit
                else Freshness(None, None, True, "no ED unit"),
                provenance=ed_unit.provenance if ed_unit else None,
            )
        out.append(
            HospitalLive(
                hospital=h,
                status=status,
                stale_units=stale_units,
                freshness=Freshness(oldest, _age(now, oldest), status != "ok", reason),
                ed=ed,
                beds=_bed_types(hunits),
                units=hunits,
                feeds=feeds_by_hospital.get(h.pk, []),
                changes_at=_earliest(changes_at.get(h.pk), *turns_stale),
            )
        )
    return out


def live_region(
    *,
    hospitals: QuerySet[Hospital],
    units: QuerySet[Unit] | None = None,
    audience: str = DEFAULT_AUDIENCE,
    now: datetime | None = None,
) -> RegionLive:
    """The region: every hospital's live state and totals per bed type (fresh figures only)."""
    now = now or timezone.now()
    per_hospital = live_hospitals(hospitals=hospitals, units=units, audience=audience, now=now)
    return RegionLive(
        generated_at=now,
        hospitals=per_hospital,
        beds=_merge_bed_types(b for h in per_hospital for b in h.beds),
        hospitals_stale=sum(1 for h in per_hospital if h.status == "stale"),
        hospitals_no_data=sum(1 for h in per_hospital if h.status == "no_data"),
    )


def _history_filters(
    since: datetime | None,
    until: datetime | None,
    site_code: str | None,
    unit_code: str | None,
    unit_type: str | None,
    audience: str | None,
) -> list[tuple[str, str, Any]]:
    """The filters of a census history query: (ORM lookup, the same as an SQL condition on
    the snapshot table's columns, value). An empty value filters nothing."""
    filters: list[tuple[str, str, Any]] = []
    if since is not None:
        filters.append(("observed_at__gte", "observed_at >= %s", since))
    if until is not None:
        filters.append(("observed_at__lt", "observed_at < %s", until))
    equals = (
        ("site_code", site_code),
        ("unit_code", unit_code),
        ("unit_type", unit_type),
        ("audience", audience),
    )
    filters += [(column, f"{column} = %s", value) for column, value in equals if value]
    return filters


def census_history(
    *,
    queryset: QuerySet[CensusSnapshot],
    since: datetime | None = None,
    until: datetime | None = None,
    site_code: str | None = None,
    unit_code: str | None = None,
    unit_type: str | None = None,
    audience: str | None = None,
) -> QuerySet[CensusSnapshot]:
    """Snapshots in [since, until), newest first. The time bounds let PostgreSQL prune the
    monthly partitions it does not need."""
    filters = _history_filters(since, until, site_code, unit_code, unit_type, audience)
    qs = queryset.filter(**{lookup: value for lookup, _, value in filters})
    return qs.order_by("-observed_at", "-event_id")


def census_history_conditions(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    site_code: str | None = None,
    unit_code: str | None = None,
    unit_type: str | None = None,
    audience: str | None = None,
) -> tuple[list[str], list[Any]]:
    """``census_history``'s filters as SQL conditions on the snapshot table's columns and
    their parameters (hub/api/history_json.py: a page of history without compiling the ORM
    query; tests/hub/api/test_history_json.py holds the two equal)."""
    filters = _history_filters(since, until, site_code, unit_code, unit_type, audience)
    return [condition for _, condition, _ in filters], [value for _, _, value in filters]


def flow_history(
    *,
    queryset: QuerySet[FlowEvent],
    since: datetime | None = None,
    until: datetime | None = None,
    site_code: str | None = None,
    event_type: str | None = None,
    unit_code: str | None = None,
    audience: str | None = None,
) -> QuerySet[FlowEvent]:
    qs = queryset
    if since is not None:
        qs = qs.filter(observed_at__gte=since)
    if until is not None:
        qs = qs.filter(observed_at__lt=until)
    if site_code:
        qs = qs.filter(site_code=site_code)
    if event_type:
        qs = qs.filter(event_type=event_type)
    if unit_code:
        qs = qs.filter(unit_code=unit_code)
    if audience:
        qs = qs.filter(audience=audience)
    return qs.order_by("-observed_at", "-event_id")
