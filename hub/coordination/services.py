"""Writes of regional coordination. Each function is one action: keyword-only, typed, in one
transaction with its audit event; side effects (directives on the control topic, alert
e-mail and webhooks, a re-evaluation) go out in ``transaction.on_commit``.

The decisions themselves come from the pure modules; this layer reads their inputs
(``inputs``), stores what they decide and applies what operators decide.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from governance import audit
from hub.coordination import census_ahead, checklists, inputs, kept, matching, rules, sqlrows
from hub.coordination import models as m
from hub.coordination.alerts_rules import (
    GROUPED_KINDS,
    Alertable,
    AlertGroup,
    OpenAlert,
    members_of,
    plan_alerts,
)
from hub.coordination.config import RegionConfig
from hub.coordination.diversion import (
    CLASS_LABEL,
    Neighbourhood,
    Recommendation,
    neighbourhood,
    routes_inputs,
)
from hub.coordination.gcpause import paused_gc
from hub.coordination.governed import COORDINATE
from hub.coordination.region import RegionEvaluation, evaluate_region
from hub.coordination.state import AmbulanceClass
from hub.coordination.surge import SurgeChange
from hub.registry import services as registry
from hub.registry.models import Directive, Hospital, Region

logger = logging.getLogger("hub.coordination")


class CoordinationError(ValueError):
    """A request the rules or the workflow refuse (an API answers 409 or 400)."""


class Conflict(CoordinationError):
    """The object is no longer in a state that allows this (answered with 409)."""


# --- configuration --------------------------------------------------------------------------


def region_config(region: Region) -> RegionConfig:
    row = m.RegionSettings.objects.filter(region=region).first()
    return row.region_config() if row is not None else RegionConfig()


@transaction.atomic
def region_settings_set(
    *, region: Region, config: Mapping[str, Any], user: Any
) -> m.RegionSettings:
    """Store a region's thresholds (only what differs from the defaults); refused whole if any
    value is invalid."""
    try:
        RegionConfig.from_dict(config)
    except ValueError as exc:
        raise CoordinationError(str(exc)) from None
    row, _ = m.RegionSettings.objects.update_or_create(
        region=region, defaults={"config": dict(config), "updated_by": user}
    )
    audit.record(
        actor=user, action=COORDINATE, target=row, detail={"region": region.code, "config": config}
    )
    return row


# --- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvaluationSummary:
    region: str
    at: datetime
    mode: str
    hospitals: int
    recommendations_new: int
    recommendations_renewed: int
    recommendations_closed: int
    status_changes: int
    surge_changes: int
    alerts_raised: int
    alerts_resolved: int
    alerts_escalated: int
    decisions_expired: int
    rules_ms: float


@paused_gc()
@transaction.atomic
def region_evaluate(*, region: Region, now: datetime | None = None) -> EvaluationSummary:
    """Re-evaluate diversion, surge and alerts for one region and store the outcome.

    The region's state row is locked for the duration, so two workers (the minute beat and a
    state-change trigger) never evaluate the same region at once and never both raise the
    same alert. The cyclic collector is paused throughout (``gcpause``): reading, deciding
    and storing make objects that all live until the end.
    """
    now = now or timezone.now()
    m.RegionState.objects.get_or_create(region=region)
    state = m.RegionState.objects.select_for_update().get(region=region)
    # The census, on a second connection while this one reads everything else.
    census = census_ahead.start(region, now)
    previous = state.evaluated_at
    # What the last evaluation stored, if this worker made it and nothing wrote since.
    was = kept.take(region.pk, kept.stamp(region.pk))
    config = region_config(region)
    expired = _decisions_expire(region=region, now=now)

    travel = _neighbourhood(region, config)
    hospitals = dict(Hospital.objects.filter(region=region).values_list("site_code", "pk"))
    # The stored statuses, kept by the last evaluation or read once (for the priors and to
    # compare the new ones with).
    statuses = was.statuses if was is not None else _stored_statuses(region)
    priors = inputs.priors(region, statuses=(statuses, hospitals), state=state)
    closed = inputs.closed_by_decision(region)
    # What the stores compare with, read before any write (none of the writes touch it).
    stored = _Stored(
        pending=_pending(region, was),
        answered=_answered_statuses(region, now),
        live_alerts=(live := {row[1]: row for row in _live_alerts(region)}),
        alert_words=_alert_words(live, was),
    )
    states = census()
    started = time.perf_counter()
    ev = evaluate_region(
        states, travel, priors, now, config, region_code=region.code, closed=closed
    )
    rules_ms = (time.perf_counter() - started) * 1000

    now_kept = kept.Kept(stamp=("", now))
    # The writes that need no answer go without waiting for the server, which applies them
    # while the next rows are computed (a load-balancing minute's renewals while the alerts
    # are planned); the surge changes last, as their COPY waits for everything sent.
    with sqlrows.sent_ahead():
        _store_statuses(region, ev, hospitals, now, was, now_kept, existing=statuses)
        new, renewed, closed_recs = _store_recommendations(
            region, ev, hospitals, now, stored, was, now_kept
        )
        raised, resolved, escalated = _store_alerts(
            region, ev.alerts, hospitals, now, config, stored, now_kept, previous
        )
        _store_surge(region, ev.surge.changes, hospitals)

    region_level = ev.surge.region
    state.mode = ev.diversion.mode.value
    if region_level.level is not None:
        state.surge_level = region_level.level
        state.level_since = region_level.since
    state.surge_score = region_level.score
    state.hospitals = len(states)
    state.fresh = ev.diversion.fresh_count
    state.would_close = ev.diversion.would_close
    state.evaluated_at = now
    state.evaluation_ms = rules_ms
    state.save()
    now_kept.stamp = kept.stamp(region.pk)
    kept.keep_on_commit(region.pk, now_kept)
    return EvaluationSummary(
        region=region.code,
        at=now,
        mode=ev.diversion.mode.value,
        hospitals=len(states),
        recommendations_new=new,
        recommendations_renewed=renewed,
        recommendations_closed=closed_recs,
        status_changes=len(ev.diversion.changes),
        surge_changes=len(ev.surge.changes),
        alerts_raised=raised,
        alerts_resolved=resolved,
        alerts_escalated=escalated,
        decisions_expired=expired,
        rules_ms=rules_ms,
    )


# Sorted neighbour lists per region, kept across evaluations in this worker process until
# the region's travel times (or travel limits) change: they change rarely, and sorting a
# national network's every row each minute is most of a load-balancing evaluation.
_NEIGHBOURHOODS: dict[int, tuple[Any, Neighbourhood]] = {}


def _neighbourhood(region: Region, config: RegionConfig) -> Neighbourhood:
    cfg = config.diversion
    key = (
        inputs.travel_version(region),
        cfg.max_travel_minutes,
        cfg.max_travel_minutes_time_critical,
    )
    cached = _NEIGHBOURHOODS.get(region.pk)
    if cached is not None and cached[0] == key:
        return cached[1]
    near = neighbourhood(inputs.travel_times(region), cfg)
    _NEIGHBOURHOODS[region.pk] = (key, near)
    return near


def regions_changed_since_evaluated() -> list[Region]:
    """Regions with a census snapshot received after their last evaluation (the "on every
    state change" trigger, polled every few seconds so ingestion needs no hook)."""
    from hub.census.models import UnitState

    latest = dict(
        UnitState.objects.values("hospital__region")
        .annotate(last=Max("received_at"))
        .values_list("hospital__region", "last")
    )
    evaluated = dict(m.RegionState.objects.values_list("region_id", "evaluated_at"))
    due = [
        rid
        for rid, last in latest.items()
        if rid is not None and (evaluated.get(rid) is None or last > evaluated[rid])
    ]
    return list(Region.objects.filter(pk__in=due))


_STATUS_FIELDS = (
    "diversion_status",
    "status_since",
    "expires_at",
    "destinations",
    "pressure",
    "fresh",
    "surge_level",
    "level_since",
    "surge_score",
)


def _store_statuses(
    region: Region,
    ev: RegionEvaluation,
    hospitals: Mapping[str, int],
    now: datetime,
    was: kept.Kept | None = None,
    now_kept: kept.Kept | None = None,
    *,
    existing: Mapping[int, tuple[Any, ...]] | None = None,
) -> int:
    """Every evaluated hospital's status row: created if new, its values written only where
    they changed, and ``evaluated_at`` moved to ``now`` on all of them (one statement each).
    The stored rows are compared with ``existing`` (by hospital id, ``_STATUS_FIELDS``) if
    given, else with what the last evaluation kept (``was``), else read. Returns the number
    of rows created or changed."""
    d, s = ev.diversion, ev.surge
    routes = {r.hospital: r.routes for r in d.recommendations}
    if existing is None:
        existing = was.statuses if was is not None else _stored_statuses(region)
    pressure = d.pressure.tolist()
    fresh = d.arrays.fresh.tolist()
    scores = s.score.tolist()
    levels = s.level.tolist()
    open_value = m.DiversionStatus.OPEN.value
    create: list[tuple[Any, ...]] = []
    change: list[tuple[Any, ...]] = []
    same: list[int] = []
    for i, code in enumerate(d.codes):
        hid = hospitals.get(code)
        if hid is None:
            continue
        old = existing.get(hid)
        if old is None:
            old = (open_value, None, None, {}, None, False, None, None, None)
        status, since, expires, destinations, _, _, level, level_since, _ = old
        n = d.statuses.get(code)
        if n is not None:
            status = n.status.value
            since = n.since
            expires = n.expires_at
            destinations = {
                r.ambulance_class.value: r.destination
                for r in routes.get(code, ())
                if status != open_value
            }
        if levels[i] > 0:
            level = int(levels[i])
            level_since = s.since.get(code)
        row: tuple[Any, ...] = (
            status,
            since,
            expires,
            destinations,
            None if pressure[i] != pressure[i] else pressure[i],  # NaN → None
            bool(fresh[i]),
            level,
            level_since,
            None if scores[i] != scores[i] else scores[i],
        )
        if hid not in existing:
            create.append((hid, *row))
        elif row != old:
            change.append((hid, *row))
        else:
            same.append(hid)
    if now_kept is not None:
        after = dict(existing)
        for r in create:
            after[r[0]] = r[1:]
        for r in change:
            after[r[0]] = r[1:]
        now_kept.statuses = after
    for rows, write in ((create, _insert_statuses), (change, _update_statuses)):
        if rows:
            columns = list(zip(*rows, strict=True))
            write(columns, now)
    if same:
        sqlrows.set_where_in(m.HospitalStatus, "hospital", same, {"evaluated_at": now})
    return len(create) + len(change)


# The region's stored status rows (``_STATUS_FIELDS`` after the hospital id), JSON as text.
_STATUSES_SQL = """
SELECT s.hospital_id, s.diversion_status, s.status_since, s.expires_at, s.destinations::text,
    s.pressure, s.fresh, s.surge_level, s.level_since, s.surge_score
FROM coordination_hospitalstatus s JOIN registry_hospital h ON h.id = s.hospital_id
WHERE h.region_id = %s
"""


def _stored_statuses(region: Region) -> dict[int, tuple[Any, ...]]:
    """The region's stored status rows by hospital id (``_STATUS_FIELDS``), as the kept copy
    holds them: read when this worker has no kept copy."""
    with connection.cursor() as cursor:
        cursor.execute(_STATUSES_SQL, [region.pk])
        rows = cursor.fetchall()
    return {
        hid: (status, since, expires, _json_loads(destinations), *rest)
        for hid, status, since, expires, destinations, *rest in rows
    }


def _insert_statuses(columns: list[tuple[Any, ...]], now: datetime) -> None:
    values = dict(zip(_STATUS_FIELDS, columns[1:], strict=True))
    sqlrows.copy_insert(
        m.HospitalStatus,
        {"hospital": columns[0], **values, "evaluated_at": [now] * len(columns[0])},
    )


def _update_statuses(columns: list[tuple[Any, ...]], now: datetime) -> None:
    values = dict(zip(_STATUS_FIELDS, columns[1:], strict=True))
    sqlrows.update_rows(
        m.HospitalStatus,
        "hospital",
        columns[0],
        {**values, "evaluated_at": [now] * len(columns[0])},
    )


def recommendation_signature(rec: Recommendation) -> tuple[Any, ...]:
    """``models.recommendation_signature`` of the advice ``rec`` would store, without
    building its route rows."""
    return m.advice_signature(
        rec.mode.value,
        rec.status.value,
        ((r.ambulance_class.value, r.destination) for r in rec.routes),
    )


class _Pending(NamedTuple):
    """A hospital's pending recommendation as the evaluation compares it (``_pending``)."""

    pk: int
    signature: tuple[Any, ...]
    expires_at: datetime | None
    words: tuple[Any, ...] | None  # as stored (``_words`` order)
    key: Any  # the inputs key the words were made from, when the kept copy has it


def _words(rec: Recommendation, routes: list[dict[str, Any]] | None = None) -> tuple[Any, ...]:
    """What a recommendation's row says (the columns of ``_RENEWED_FIELDS`` but the expiry):
    score, route rows, kept classes, explanation, figures, no_forecast. ``routes``: the
    stored route rows of routes made from equal inputs (``diversion.routes_inputs``), kept
    with their texts instead of built again."""
    if routes is not None:
        rec.known_route_texts([r["explanation"] for r in routes])
    return (
        rec.score,
        _route_rows(rec) if routes is None else routes,
        [{"class": k.ambulance_class.value, "reason": k.reason} for k in rec.kept],
        rec.explanation,
        rec.figures,
        rec.no_forecast,
    )


def _route_rows(rec: Recommendation) -> list[dict[str, Any]]:
    return [
        {
            "class": r.ambulance_class.value,
            "class_label": CLASS_LABEL[r.ambulance_class],
            "destination": r.destination,
            "travel_minutes": r.travel_minutes,
            "share": round(r.share, 4),
            "alternates": list(r.alternates),
            "explanation": r.explanation,
        }
        for r in rec.routes
    ]


def _answered_statuses(region: Region, now: datetime) -> dict[Any, set[str]]:
    """Per hospital, the statuses its decisions in force have answered: the status decided
    and the status of the recommendation the decision was about."""
    answered: dict[Any, set[str]] = {}
    decisions = m.DiversionDecision.objects.filter(
        region=region, state=m.DiversionDecision.State.ACTIVE, expires_at__gt=now
    ).select_related("recommendation")
    for d in decisions:
        statuses = answered.setdefault(d.hospital_id, set())
        statuses.add(d.status)
        if d.recommendation is not None:
            statuses.add(d.recommendation.status)
    return answered


def _json_loads(text: str | bytes | None) -> Any:
    """A JSON column read as text, decoded by orjson: the same values as ``json.loads``
    (Django's ``JSONField``) in a fraction of the time; a minute without the kept copy
    reads back thousands of stored routes, figures and alert figures."""
    return None if text is None else orjson.loads(text)


# The stored words of pending advice (``_words`` order, after mode and status), JSON as text.
_PENDING_WORDS_SQL = """
SELECT id, mode, status, score, routes::text, kept::text, explanation, figures::text,
    no_forecast
FROM coordination_diversionrecommendation WHERE id = ANY(%s::bigint[])
"""


def _pending(region: Region, was: kept.Kept | None) -> dict[int, _Pending]:
    """Per hospital, its pending recommendation, locked: (id, signature, expiry, stored
    words, the key of the inputs they were made from). Signatures, words and keys come from
    the kept copy where it has them; the others are read, with no key (a renewal then
    builds its words and compares them with the stored ones)."""
    rows = list(
        m.DiversionRecommendation.objects.select_for_update()
        .filter(region=region, state=m.DiversionRecommendation.State.PENDING)
        .order_by()
        .values_list("pk", "hospital_id", "expires_at")
    )
    advice = was.advice if was is not None else {}
    unknown = [pk for pk, _, _ in rows if pk not in advice]
    signatures = {pk: advice[pk][0] for pk, _, _ in rows if pk in advice}
    words = {pk: advice[pk][1] for pk, _, _ in rows if pk in advice}
    keys = {pk: advice[pk][2] for pk, _, _ in rows if pk in advice}
    if unknown:
        with connection.cursor() as cursor:
            cursor.execute(_PENDING_WORDS_SQL, [sqlrows.int_array(unknown)])
            rows_read = cursor.fetchall()
        loads = _json_loads
        for pk, mode, status, score, routes, kept_, explanation, figures, no_forecast in rows_read:
            stored = (score, loads(routes), loads(kept_), explanation, loads(figures), no_forecast)
            signatures[pk] = m.recommendation_signature(mode, status, stored[1])
            words[pk] = stored
    return {
        hid: _Pending(pk, signatures[pk], expires_at, words[pk], keys.get(pk))
        for pk, hid, expires_at in rows
    }


class _Stored(NamedTuple):
    """What the evaluation's stores compare with, read up front: the pending advice by
    hospital id, the statuses the decisions in force answered, the live alerts by key and
    their words."""

    pending: dict[int, _Pending]
    answered: dict[Any, set[str]]
    live_alerts: dict[str, tuple[Any, ...]]
    alert_words: dict[int, Any]


def _store_recommendations(
    region: Region,
    ev: RegionEvaluation,
    hospitals: Mapping[str, int],
    now: datetime,
    stored: _Stored,
    was: kept.Kept | None = None,
    now_kept: kept.Kept | None = None,
) -> tuple[int, int, int]:
    pending, answered = stored.pending, stored.answered
    # The kept input keys hold only for the configuration they were made under.
    cfg = ev.diversion.cfg
    keys_hold = was is not None and was.diversion == cfg
    new_rows: list[tuple[Any, ...]] = []
    rewritten = 0
    renewed_only: list[tuple[int, Any]] = []  # (id, new expiry): the words are the same
    superseded: list[int] = []
    advice_after: dict[int, tuple[tuple[Any, ...], tuple[Any, ...], Any]] = {}
    new_advice: dict[int, tuple[tuple[Any, ...], tuple[Any, ...], Any]] = {}
    model, states = m.DiversionRecommendation, m.DiversionRecommendation.State
    # Renewed advice with new words: only the columns that changed (the figures' snapshot
    # time moves every minute; the routes and their texts mostly do not), each row sent to
    # the server as soon as its words are made, while the next ones are (``StagedUpdate``).
    renewals = sqlrows.StagedUpdate(
        model, "id", _RENEWED_FIELDS[:6], ("expires_at", "renewed_at", "figures_as_of")
    )
    with renewals:
        for rec in ev.diversion.recommendations:
            hid = hospitals.get(rec.hospital)
            if hid is None:
                continue
            if rec.status.value in answered.get(hid, ()):
                # A decision in force already answers this advice (accepted it, or overrode
                # it with a reason): asking again every cycle would only train people to
                # click. The advice returns when the decision expires, or if it escalates.
                continue
            key = rec.inputs_key
            old = pending.pop(hid, None)
            # The kept words and the key they were made from, where that key holds.
            kept_words: tuple[Any, ...] | None = None
            kept_key: Any = None
            if keys_hold and key is not None and old is not None and old.key is not None:
                kept_words, kept_key = old.words, old.key
            same_inputs = kept_words is not None and kept_key == key
            # Equal keys mean the same advice (the key names the mode or status and each
            # route's class and destination): its signature is the stored one, not worked
            # out again.
            if same_inputs and old is not None:
                signature = old.signature
            else:
                signature = recommendation_signature(rec)
            if old is not None and old.signature == signature:
                # The same advice: renewed in place. While no figure's value changed (the
                # snapshot time moving alone is not a change) the stored words and figures
                # stay as they are, with ``figures_as_of``; else they are rewritten, only the
                # columns that changed. Made from the same inputs as the stored words, they
                # would come out the same: not built at all; routes made from the same
                # inputs keep their stored rows and texts.
                if same_inputs and kept_words is not None:
                    renewed_only.append((old.pk, rec.expires_at))
                    advice_after[old.pk] = (signature, kept_words, key)
                    continue
                same_routes = kept_words is not None and routes_inputs(kept_key) == routes_inputs(
                    key
                )
                words = _words(
                    rec, kept_words[1] if same_routes and kept_words is not None else None
                )
                if old.words is not None and words_unchanged(old.words, words):
                    renewed_only.append((old.pk, rec.expires_at))
                    advice_after[old.pk] = (signature, old.words, key)
                else:
                    before = old.words
                    changed = tuple(j for j in range(6) if before is None or words[j] != before[j])
                    renewals.add(old.pk, words, changed, (rec.expires_at, now, now))
                    rewritten += 1
                    advice_after[old.pk] = (signature, words, key)
                continue
            if old is not None:
                superseded.append(old.pk)
            words = _words(rec)
            new_rows.append((hid, rec.mode.value, rec.status.value, *words, rec.expires_at))
            new_advice[hid] = (signature, words, key)
    expired = [p.pk for p in pending.values() if p.expires_at is not None and p.expires_at <= now]
    withdrawn = [p.pk for p in pending.values() if p.expires_at is None or p.expires_at > now]
    # The rest one statement each (a load-balancing national region renews thousands a
    # minute); superseded rows close before their successors are created (one pending row
    # per hospital). Renewed advice whose figures did not change: only its expiry and
    # renewal time, one statement per distinct expiry (every renewal of a minute expires at
    # the same time).
    by_expiry: dict[Any, list[int]] = {}
    for pk, exp in renewed_only:
        by_expiry.setdefault(exp, []).append(pk)
    for exp, pks in by_expiry.items():
        sqlrows.set_where_in(model, "id", pks, {"expires_at": exp, "renewed_at": now})
    for pks, state in ((superseded, states.SUPERSEDED), (expired, states.EXPIRED)):
        sqlrows.set_where_in(model, "id", pks, {"state": state.value, "closed_at": now})
    sqlrows.set_where_in(
        model, "id", withdrawn, {"state": states.WITHDRAWN.value, "closed_at": now}
    )
    if new_rows:
        columns = list(zip(*new_rows, strict=True))
        n = len(new_rows)
        ids = sqlrows.copy_insert(
            model,
            {
                "region": [region.pk] * n,
                "hospital": columns[0],
                "mode": columns[1],
                "status": columns[2],
                **dict(zip(_RENEWED_FIELDS, columns[3:], strict=True)),
                "state": [states.PENDING.value] * n,
                "created_at": [now] * n,
                "renewed_at": [now] * n,
                "figures_as_of": [now] * n,
            },
        )
        for pk, hid in zip(ids, columns[0], strict=True):
            advice_after[pk] = new_advice[hid]
    if now_kept is not None:
        now_kept.advice = advice_after
        now_kept.diversion = cfg
    renewed = rewritten + len(renewed_only)
    return len(new_rows), renewed, len(expired) + len(withdrawn)


def words_unchanged(before: tuple[Any, ...], after: tuple[Any, ...]) -> bool:
    """Whether a renewal's words (score, routes, kept, explanation, figures, no_forecast) say
    what the stored ones say: equal except for the figures' snapshot time (``as_of``)."""
    if before[:4] != after[:4] or before[5] != after[5]:
        return False
    old, new = before[4], after[4]
    if old == new:
        return True
    if not isinstance(old, dict) or not isinstance(new, dict) or old.keys() != new.keys():
        return False
    return all(k == "as_of" or old[k] == new[k] for k in new)


_RENEWED_FIELDS = (
    "score",
    "routes",
    "kept",
    "explanation",
    "figures",
    "no_forecast",
    "expires_at",
)


def _store_surge(
    region: Region, changes: Sequence[SurgeChange], hospitals: Mapping[str, int]
) -> None:
    """Every level change with the parameters that caused it (one statement), pointing at its
    checklist, stored once per distinct list (one statement)."""
    if not changes:
        return
    digests = checklists.checklists_store(c.checklist for c in changes)
    sqlrows.copy_insert(
        m.SurgeLevelChange,
        {
            "region": [region.pk] * len(changes),
            "hospital": [
                hospitals.get(c.subject) if c.subject != region.code else None for c in changes
            ],
            "from_level": [c.from_level for c in changes],
            "to_level": [c.to_level for c in changes],
            "score": [round(c.score, 2) for c in changes],
            "causes": [[r._asdict() for r in c.causes] for c in changes],
            "readings": [[r._asdict() for r in c.readings] for c in changes],
            "checklist_ref": [digests[tuple(c.checklist)] for c in changes],
            "explanation": [c.explanation for c in changes],
            "at": [c.at for c in changes],
        },
    )


_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The live alerts as the plan reads them, without their words and without a lock: the
# region's state row is locked, so no other evaluation writes them; an acknowledgement
# may (it changes the state), hence the state guards on the writes that depend on it.
# ``opened_at``: escalation counts from there.
_LIVE_ALERTS_SQL = """
SELECT id, key, (extract(epoch FROM opened_at) * 1000000)::bigint,
    (extract(epoch FROM last_notified_at) * 1000000)::bigint,
    condition, severity, state, escalation_level, kind
FROM coordination_alert WHERE region_id = %s AND state <> 'resolved'
"""


def _live_alerts(region: Region) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(_LIVE_ALERTS_SQL, [region.pk])
        rows = cursor.fetchall()
    return [
        (
            pk,
            key,
            _EPOCH + timedelta(microseconds=opened),
            _EPOCH + timedelta(microseconds=notified),
            condition,
            severity,
            state,
            level,
            kind,
        )
        for pk, key, opened, notified, condition, severity, state, level, kind in rows
    ]


def _alert_words(live: Mapping[str, tuple[Any, ...]], was: kept.Kept | None) -> dict[int, Any]:
    """Per live alert id, what the evaluation compares: a grouped alert's members (figure:
    severity), another's title, message and figures; kept by the last evaluation, else read."""
    words: dict[int, Any] = dict(was.alert_words) if was is not None else {}
    unknown = [a[0] for a in live.values() if a[0] not in words]
    if unknown:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, kind, title, message, figures::text FROM coordination_alert "
                "WHERE id = ANY(%s::bigint[])",
                [sqlrows.int_array(unknown)],
            )
            rows = cursor.fetchall()
        for pk, kind, title, message, text in rows:
            figures = _json_loads(text)
            words[pk] = members_of(figures) if kind in GROUPED_KINDS else (title, message, figures)
    return words


def _history_entry(
    at: datetime, added: Sequence[str], removed: Sequence[str], severity: str, reopened: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "at": at.isoformat(),
        "added": list(added),
        "removed": list(removed),
        "severity": severity,
    }
    if reopened:
        entry["reopened"] = True
    return entry


def _store_alerts(
    region: Region,
    candidates: Sequence[Alertable],
    hospitals: Mapping[str, int],
    now: datetime,
    config: RegionConfig,
    stored: _Stored,
    now_kept: kept.Kept | None = None,
    previous: datetime | None = None,
) -> tuple[int, int, int]:
    """Raise, refresh, change, resolve, remind and escalate. ``previous``: the time of the
    region's previous evaluation (when its live condition alerts were last seen)."""
    live, words = stored.live_alerts, stored.alert_words
    acknowledged = m.Alert.State.ACKNOWLEDGED.value
    open_state = m.Alert.State.OPEN.value
    # key, opened_at, last_notified_at, condition, severity, acknowledged, escalation_level,
    # members (grouped alerts)
    open_alerts = {
        key: OpenAlert(
            key,
            a[2],
            a[3],
            a[4],
            a[5],
            a[6] == acknowledged,
            a[7],
            words.get(a[0]) if a[8] in GROUPED_KINDS else None,
        )
        for key, a in live.items()
    }
    plan = plan_alerts(candidates, open_alerts, now, config.alerts)
    new = plan.raise_new
    n = len(new)
    new_words: list[Any] = [
        c.members if isinstance(c, AlertGroup) else (c.title[:300], c.message, dict(c.figures))
        for c in new
    ]
    created_ids = sqlrows.copy_insert(
        m.Alert,
        {
            "region": [region.pk] * n,
            "hospital": [hospitals.get(c.hospital) if c.hospital else None for c in new],
            "key": [c.key for c in new],
            "kind": [c.kind for c in new],
            "severity": [c.severity for c in new],
            "title": [c.title[:300] for c in new],
            "message": [c.message for c in new],
            "figures": [dict(c.figures) for c in new],
            "condition": [c.condition for c in new],
            "state": [open_state] * n,
            "raised_at": [now] * n,
            "opened_at": [now] * n,
            "last_seen_at": [now] * n,
            "last_notified_at": [now] * n,
            "acknowledge_note": [""] * n,
            "escalation_level": [0] * n,
            "history": [
                [_history_entry(now, list(w), (), c.severity, False)]
                if isinstance(c, AlertGroup)
                else []
                for c, w in zip(new, new_words, strict=True)
            ],
        },
    )
    # Ungrouped and still true: seen now; title, message, figures and a raised severity
    # written only where they changed, compared with the words the last evaluation kept,
    # or read.
    seen: list[int] = []
    changed: list[tuple[Any, ...]] = []
    words_after: dict[int, Any] = {}
    for c in plan.refresh:
        a = live[c.key]
        pk = a[0]
        severity = a[5]
        if _SEVERITY_RANK.get(c.severity, 0) > _SEVERITY_RANK.get(severity, 0):
            severity = c.severity
        row = (c.title[:300], c.message, dict(c.figures))
        if row != words.get(pk) or severity != a[5]:
            changed.append((pk, *row, severity, now))
        elif not a[4]:
            seen.append(pk)  # an event seen again (a live condition is seen: ``seen_at``)
        words_after[pk] = row
    sqlrows.set_where_in(m.Alert, "id", seen, {"last_seen_at": now})
    sqlrows.update_tuples(
        m.Alert, "id", ("title", "message", "figures", "severity", "last_seen_at"), changed
    )
    # Grouped and changed: rewritten in place, the change appended to the history; those
    # that gained a figure or severity are sent again, and opened again if acknowledged.
    grouped: list[tuple[Any, ...]] = []
    notify: list[int] = []
    for ch in plan.change:
        g = ch.group
        a = live[g.key]
        pk = a[0]
        entry = _history_entry(now, ch.added, ch.removed, g.severity, ch.reopen)
        notified = now if ch.notify else a[3]
        grouped.append(
            (pk, g.title[:300], g.message, g.figures, g.severity, now, notified, [entry])
        )
        if ch.notify:
            notify.append(pk)
        words_after[pk] = g.members
    sqlrows.update_tuples(
        m.Alert,
        "id",
        ("title", "message", "figures", "severity", "last_seen_at", "last_notified_at", "history"),
        grouped,
        append=("history",),
    )
    # Opened again: those acknowledged (also by an acknowledgement since they were read).
    sqlrows.set_where_in(
        m.Alert,
        "id",
        notify,
        {"state": open_state, "opened_at": now, "escalation_level": 0, "escalated_at": None},
        only_if={"state": [acknowledged]},
    )
    # Resolve, remind and escalate only what an acknowledgement has not changed meanwhile.
    # A condition resolving was last seen at the previous evaluation (``Alert.seen_at``).
    resolved = _resolve_alerts([live[k][0] for k in plan.resolve], now, previous)
    levels = {live[k][0]: live[k][7] for k in plan.remind}
    reminded_ids = sqlrows.set_where_in(
        m.Alert,
        "id",
        list(levels),
        {"last_notified_at": now},
        only_if={"state": [open_state]},
        returning=True,
    )
    reminded = [(pk, levels[pk]) for pk in _ids(reminded_ids)]
    escalating = {live[key][0]: level for key, level in plan.escalate}
    escalated: list[tuple[int, int]] = []
    if escalating:
        escalated_ids = sqlrows.update_rows(
            m.Alert,
            "id",
            list(escalating),
            {
                "escalation_level": list(escalating.values()),
                "escalated_at": [now] * len(escalating),
            },
            only_if={"state": [open_state]},
            returning=True,
        )
        escalated = [(pk, escalating[pk]) for pk in _ids(escalated_ids)]
    if now_kept is not None:
        words_after.update(zip(created_ids, new_words, strict=True))
        # Live alerts not rewritten (unchanged groups, events waiting for an
        # acknowledgement) keep theirs.
        for a in live.values():
            if a[0] not in words_after and a[0] in words:
                words_after[a[0]] = words[a[0]]
        for pk in resolved:
            words_after.pop(pk, None)
        now_kept.alert_words = words_after

    sends = [(pk, 0) for pk in created_ids]
    sends += [(pk, 0) for pk in notify]
    sends += reminded
    sends += escalated
    if sends:
        transaction.on_commit(lambda: _deliver_later(sends))
    return len(created_ids), len(resolved), len(escalated)


def _resolve_alerts(ids: Sequence[int], now: datetime, previous: datetime | None) -> list[int]:
    """Resolve the live alerts ``ids`` that are still live; their last sighting becomes the
    previous evaluation's time if it is later than the one stored. Returns those resolved."""
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE coordination_alert SET state = %s, resolved_at = %s, "
            "last_seen_at = CASE WHEN condition AND %s::timestamptz > last_seen_at "
            "THEN %s::timestamptz ELSE last_seen_at END "
            "WHERE id = ANY(%s) AND state <> %s RETURNING id",
            [
                m.Alert.State.RESOLVED.value,
                now,
                previous,
                previous,
                list(ids),
                m.Alert.State.RESOLVED.value,
            ],
        )
        return [row[0] for row in cursor.fetchall()]


def _ids(result: int | list[int]) -> list[int]:
    return result if isinstance(result, list) else []


def _deliver_later(sends: Iterable[tuple[int, int]]) -> None:
    from hub.coordination import tasks

    for alert_id, level in sends:
        tasks.deliver_alert.delay(alert_id, level)


@transaction.atomic
def alert_acknowledge(*, alert: m.Alert, user: Any, note: str = "") -> m.Alert:
    """Someone has seen it: escalation stops. A condition alert stays (acknowledged) until
    its condition clears; an event alert is done. A grouped alert's history records what
    was acknowledged (its figures and severity then): a figure joining later, or a higher
    severity, opens it again."""
    alert = m.Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.state == m.Alert.State.RESOLVED:
        raise Conflict("the alert is already resolved")
    now = timezone.now()
    if alert.kind in GROUPED_KINDS:
        alert.history = [
            *alert.history,
            {
                "at": now.isoformat(),
                "acknowledged_by": getattr(user, "username", str(user)),
                "note": note,
                "breaching": list(members_of(alert.figures)),
                "severity": alert.severity,
            },
        ]
    alert.acknowledged_at = now
    alert.acknowledged_by = user
    alert.acknowledge_note = note
    alert.state = m.Alert.State.ACKNOWLEDGED if alert.condition else m.Alert.State.RESOLVED
    if not alert.condition:
        alert.resolved_at = now
    alert.save()
    audit.record(
        actor=user,
        action=COORDINATE,
        target=alert,
        hospital_ids=[alert.hospital_id] if alert.hospital_id else [],
        detail={"acknowledged": alert.key, "note": note},
    )
    return alert


# --- diversion decisions ---------------------------------------------------------------------


def _directive_payload(decision: m.DiversionDecision, explanation: str) -> dict[str, Any]:
    return {
        "ems_traffic": decision.ems_traffic,
        "status": decision.status,
        "reason": decision.reason or explanation,
        "routes": [
            {"class": r["class"], "destination": r["destination"], "share": r.get("share", 1.0)}
            for r in decision.routes
        ],
        "decision_id": decision.pk,
        "action": decision.action,
        "expires_at": decision.expires_at.isoformat(),
    }


def _issue_directive(decision: m.DiversionDecision, user: Any, explanation: str) -> Directive:
    directive = registry.directive_issue(
        hospital=decision.hospital,
        kind=Directive.Kind.DIVERSION,
        payload=_directive_payload(decision, explanation),
        issued_by=user if getattr(user, "is_authenticated", False) else None,
        expires_at=decision.expires_at,
    )
    decision.directive = directive
    decision.save(update_fields=["directive"])
    directive_id = directive.pk
    region_id = decision.region_id
    transaction.on_commit(lambda: _publish_and_reevaluate(directive_id, region_id))
    return directive


def _publish_and_reevaluate(directive_id: int, region_id: int) -> None:
    from hub.coordination import tasks

    tasks.publish_directive.delay(directive_id)
    tasks.evaluate_region.delay(region_id)


def _supersede_active(hospital: Hospital, now: datetime, user: Any) -> None:
    for old in m.DiversionDecision.objects.select_for_update().filter(
        hospital=hospital, state=m.DiversionDecision.State.ACTIVE
    ):
        old.state = m.DiversionDecision.State.SUPERSEDED
        old.closed_at = now
        old.closed_by = user
        old.save(update_fields=["state", "closed_at", "closed_by"])


def _ttl(region: Region, ttl_minutes: float | None) -> timedelta:
    minutes = (
        ttl_minutes if ttl_minutes is not None else region_config(region).diversion.ttl_minutes
    )
    if not 0 < minutes <= 24 * 60:
        raise CoordinationError("ttl_minutes must be between 0 and 1440")
    return timedelta(minutes=minutes)


def _open_recommendation(
    recommendation: m.DiversionRecommendation, now: datetime
) -> m.DiversionRecommendation:
    rec = m.DiversionRecommendation.objects.select_for_update().get(pk=recommendation.pk)
    if rec.state != m.DiversionRecommendation.State.PENDING:
        raise Conflict(f"the recommendation is {rec.state}, not pending")
    if rec.expires_at is not None and rec.expires_at <= now:
        raise Conflict("the recommendation has expired")
    return rec


@transaction.atomic
def diversion_accept(
    *,
    recommendation: m.DiversionRecommendation,
    user: Any,
    reason: str = "",
    ttl_minutes: float | None = None,
) -> m.DiversionDecision:
    """Accept a recommendation as it stands: it becomes a directive to the site."""
    now = timezone.now()
    rec = _open_recommendation(recommendation, now)
    return _decide(
        rec=rec,
        user=user,
        action=m.DiversionDecision.Action.ACCEPT,
        status=rec.status,
        routes=rec.routes,
        reason=reason,
        ttl=_ttl(rec.region, ttl_minutes),
        now=now,
    )


@transaction.atomic
def diversion_override(
    *,
    recommendation: m.DiversionRecommendation,
    user: Any,
    reason: str,
    status: str,
    routes: Sequence[Mapping[str, Any]] | None = None,
    ttl_minutes: float | None = None,
) -> m.DiversionDecision:
    """Decide otherwise than recommended (another status, or other destinations), saying why.

    The destinations an operator names are checked against the same capability rule as the
    recommendations: a stroke patient is not sent by hand to a hospital without stroke care.
    """
    if not reason.strip():
        raise CoordinationError("an override needs a reason")
    if status not in m.DiversionStatus.values:
        raise CoordinationError(f"status must be one of {m.DiversionStatus.values}")
    now = timezone.now()
    rec = _open_recommendation(recommendation, now)
    chosen = [dict(r) for r in (routes if routes is not None else rec.routes)]
    if status == m.DiversionStatus.OPEN:
        chosen = []
    _check_routes(rec.region, rec.hospital, chosen)
    return _decide(
        rec=rec,
        user=user,
        action=m.DiversionDecision.Action.OVERRIDE,
        status=status,
        routes=chosen,
        reason=reason.strip(),
        ttl=_ttl(rec.region, ttl_minutes),
        now=now,
    )


def _check_routes(region: Region, origin: Hospital, routes: list[dict[str, Any]]) -> None:
    cfg = region_config(region).diversion
    codes = {str(r.get("destination", "")) for r in routes}
    found = {h.site_code: h for h in Hospital.objects.filter(region=region, site_code__in=codes)}
    for r in routes:
        code = str(r.get("destination", ""))
        try:
            cls = AmbulanceClass(str(r.get("class", "general")))
        except ValueError:
            raise CoordinationError(f"unknown ambulance class {r.get('class')!r}") from None
        h = found.get(code)
        if h is None or code == origin.site_code:
            raise CoordinationError(f"destination {code!r} is not another hospital of the region")
        if not rules.can_take(inputs.capabilities(h), cls, cfg):
            raise CoordinationError(f"{code} cannot take {CLASS_LABEL[cls]} patients")
        r["class"] = cls.value
        r["destination"] = code


def _decide(
    *,
    rec: m.DiversionRecommendation,
    user: Any,
    action: str,
    status: str,
    routes: Sequence[Mapping[str, Any]],
    reason: str,
    ttl: timedelta,
    now: datetime,
) -> m.DiversionDecision:
    _supersede_active(rec.hospital, now, user)
    decision = m.DiversionDecision.objects.create(
        region=rec.region,
        hospital=rec.hospital,
        recommendation=rec,
        action=action,
        status=status,
        routes=[dict(r) for r in routes],
        reason=reason,
        decided_by=user if getattr(user, "is_authenticated", False) else None,
        decided_at=now,
        expires_at=now + ttl,
    )
    rec.state = (
        m.DiversionRecommendation.State.ACCEPTED
        if action == m.DiversionDecision.Action.ACCEPT
        else m.DiversionRecommendation.State.OVERRIDDEN
    )
    rec.closed_at = now
    rec.save(update_fields=["state", "closed_at"])
    _issue_directive(decision, user, rec.explanation)
    audit.record(
        actor=user,
        action=COORDINATE,
        target=decision,
        hospital_ids=[rec.hospital_id],
        object_ids=[decision.pk, rec.pk],
        detail={
            "decision": action,
            "recommended": rec.status,
            "decided": status,
            "routes": [r.get("destination") for r in decision.routes],
            "reason": reason,
            "expires_at": decision.expires_at.isoformat(),
        },
    )
    return decision


@transaction.atomic
def diversion_renew(
    *, decision: m.DiversionDecision, user: Any, ttl_minutes: float | None = None, reason: str = ""
) -> m.DiversionDecision:
    """Keep a diversion in force for another period (every diversion lapses unless renewed)."""
    now = timezone.now()
    d = m.DiversionDecision.objects.select_for_update().get(pk=decision.pk)
    if d.state != m.DiversionDecision.State.ACTIVE or d.expires_at <= now:
        raise Conflict(f"the decision is {d.state}; decide again instead")
    d.expires_at = now + _ttl(d.region, ttl_minutes)
    d.renewals += 1
    d.save(update_fields=["expires_at", "renewals"])
    _issue_directive(d, user, reason or "renewed")
    audit.record(
        actor=user,
        action=COORDINATE,
        target=d,
        hospital_ids=[d.hospital_id],
        detail={"renewed_until": d.expires_at.isoformat(), "reason": reason},
    )
    return d


@transaction.atomic
def diversion_end(*, decision: m.DiversionDecision, user: Any, reason: str) -> m.DiversionDecision:
    """End a diversion early: the site is told it is open again."""
    if not reason.strip():
        raise CoordinationError("ending a diversion needs a reason")
    now = timezone.now()
    d = m.DiversionDecision.objects.select_for_update().get(pk=decision.pk)
    if d.state != m.DiversionDecision.State.ACTIVE:
        raise Conflict(f"the decision is {d.state}")
    d.state = m.DiversionDecision.State.ENDED
    d.closed_at = now
    d.closed_by = user
    d.close_reason = reason.strip()
    d.save(update_fields=["state", "closed_at", "closed_by", "close_reason"])
    # The "open" directive carries the same expiry rule as any other: it does not pin the
    # site open forever, it only overrides the diversion it ends.
    directive = registry.directive_issue(
        hospital=d.hospital,
        kind=Directive.Kind.DIVERSION,
        payload={
            "ems_traffic": "Normal",
            "status": m.DiversionStatus.OPEN.value,
            "reason": d.close_reason,
            "routes": [],
            "decision_id": d.pk,
            "action": "end",
            "expires_at": (now + _ttl(d.region, None)).isoformat(),
        },
        issued_by=user if getattr(user, "is_authenticated", False) else None,
        expires_at=now + _ttl(d.region, None),
    )
    directive_id, region_id = directive.pk, d.region_id
    transaction.on_commit(lambda: _publish_and_reevaluate(directive_id, region_id))
    audit.record(
        actor=user,
        action=COORDINATE,
        target=d,
        hospital_ids=[d.hospital_id],
        detail={"ended": d.pk, "reason": d.close_reason},
    )
    return d


def _decisions_expire(*, region: Region, now: datetime) -> int:
    """Every diversion expires unless renewed: mark those past their time, keep the record."""
    due = list(
        m.DiversionDecision.objects.select_for_update().filter(
            region=region, state=m.DiversionDecision.State.ACTIVE, expires_at__lte=now
        )
    )
    for d in due:
        d.state = m.DiversionDecision.State.EXPIRED
        d.closed_at = now
    m.DiversionDecision.objects.bulk_update(due, ["state", "closed_at"])
    if due:
        audit.record(
            actor=None,
            action=COORDINATE,
            target=m.DiversionDecision,
            hospital_ids=[d.hospital_id for d in due],
            object_ids=[d.pk for d in due],
            detail={"expired": len(due), "region": region.code},
        )
    return len(due)


# --- resource sharing --------------------------------------------------------------------------


def _event(
    request: m.ResourceRequest,
    before: str,
    after: str,
    user: Any,
    now: datetime,
    note: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    m.ResourceRequestEvent.objects.create(
        request=request,
        from_status=before,
        to_status=after,
        actor=user if getattr(user, "is_authenticated", False) else None,
        at=now,
        note=note,
        detail=detail or {},
    )
    audit.record(
        actor=user,
        action=COORDINATE,
        target=request,
        hospital_ids=[request.requester_id],
        detail={"request": request.pk, "from": before, "to": after, "note": note, **(detail or {})},
    )


def _move(request: m.ResourceRequest, target: str) -> str:
    before = request.status
    try:
        matching.check_transition(matching.RequestStatus(before), matching.RequestStatus(target))
    except matching.InvalidTransition as exc:
        raise Conflict(str(exc)) from None
    request.status = target
    return before


@transaction.atomic
def resource_availability_declare(
    *,
    hospital: Hospital,
    kind: str,
    item: str,
    quantity: float,
    user: Any,
    shift: str = "",
    note: str = "",
) -> m.ResourceAvailability:
    if kind == m.ResourceKind.BED:
        raise CoordinationError("free beds come from the live census, not a declaration")
    row = m.ResourceAvailability.objects.create(
        hospital=hospital,
        kind=kind,
        item=item,
        quantity=quantity,
        shift=shift,
        note=note,
        as_of=timezone.now(),
        declared_by=user if getattr(user, "is_authenticated", False) else None,
    )
    audit.record(
        actor=user,
        action=COORDINATE,
        target=row,
        hospital_ids=[hospital.pk],
        detail={"declared": item},
    )
    return row


@transaction.atomic
def resource_request_create(
    *,
    requester: Hospital,
    kind: str,
    item: str,
    quantity: float,
    user: Any,
    shift: str = "",
    needed_by: datetime | None = None,
    note: str = "",
) -> m.ResourceRequest:
    if kind not in m.ResourceKind.values:
        raise CoordinationError(f"kind must be one of {m.ResourceKind.values}")
    if quantity <= 0:
        raise CoordinationError("quantity must be positive")
    now = timezone.now()
    request = m.ResourceRequest.objects.create(
        region=requester.region,
        requester=requester,
        kind=kind,
        item=item,
        quantity=quantity,
        shift=shift,
        needed_by=needed_by,
        note=note,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        created_at=now,
        updated_at=now,
    )
    _event(request, "", m.RequestStatus.REQUESTED, user, now, note)
    resource_request_suggest(request=request, now=now)
    return request


def resource_request_suggest(
    *, request: m.ResourceRequest, now: datetime | None = None
) -> m.ResourceRequest:
    """Refresh the suggested matches from live availability (census beds, declared spares)."""
    from hub.coordination import selectors

    now = now or timezone.now()
    region = request.region
    config = region_config(region)
    need = matching.Need(
        requester=request.requester.site_code,
        kind=matching.ResourceKind(request.kind),
        item=request.item,
        quantity=request.quantity,
        shift=request.shift or None,
    )
    availability, donors = selectors.sharing_inputs(region=region, need=need, now=now)
    matches = matching.suggest_matches(
        need, availability, inputs.travel_times(region), donors, now, config.sharing
    )
    request.suggestions = [
        {
            "hospital": x.hospital,
            "offerable": x.offerable,
            "covers": x.covers,
            "travel_minutes": x.travel_minutes,
            "explanation": x.explanation,
        }
        for x in matches
    ]
    request.suggested_at = now
    request.save(update_fields=["suggestions", "suggested_at"])
    return request


@transaction.atomic
def resource_offer_make(
    *, request: m.ResourceRequest, donor: Hospital, quantity: float, user: Any, note: str = ""
) -> m.ResourceOffer:
    request = m.ResourceRequest.objects.select_for_update().get(pk=request.pk)
    if donor.pk == request.requester_id:
        raise CoordinationError("a hospital cannot offer to itself")
    if donor.region_id != request.region_id:
        raise CoordinationError("the donor is in another region")
    if quantity <= 0:
        raise CoordinationError("quantity must be positive")
    now = timezone.now()
    before = _move(request, m.RequestStatus.OFFERED)
    request.updated_at = now
    request.save(update_fields=["status", "updated_at"])
    offer = m.ResourceOffer.objects.create(
        request=request,
        donor=donor,
        quantity=quantity,
        note=note,
        offered_by=user if getattr(user, "is_authenticated", False) else None,
        offered_at=now,
    )
    _event(
        request,
        before,
        m.RequestStatus.OFFERED,
        user,
        now,
        note,
        {"donor": donor.site_code, "quantity": quantity},
    )
    return offer


@transaction.atomic
def resource_offer_accept(
    *, offer: m.ResourceOffer, user: Any, note: str = ""
) -> m.ResourceRequest:
    offer = m.ResourceOffer.objects.select_for_update().select_related("request").get(pk=offer.pk)
    request = m.ResourceRequest.objects.select_for_update().get(pk=offer.request_id)
    if offer.state != m.ResourceOffer.State.OPEN:
        raise Conflict(f"the offer is {offer.state}")
    now = timezone.now()
    before = _move(request, m.RequestStatus.ACCEPTED)
    request.updated_at = now
    request.save(update_fields=["status", "updated_at"])
    offer.state = m.ResourceOffer.State.ACCEPTED
    offer.save(update_fields=["state"])
    request.offers.exclude(pk=offer.pk).filter(state=m.ResourceOffer.State.OPEN).update(
        state=m.ResourceOffer.State.DECLINED
    )
    _event(
        request,
        before,
        m.RequestStatus.ACCEPTED,
        user,
        now,
        note,
        {"offer": offer.pk, "donor": offer.donor.site_code},
    )
    return request


@transaction.atomic
def resource_request_fulfil(
    *, request: m.ResourceRequest, user: Any, note: str = ""
) -> m.ResourceRequest:
    request = m.ResourceRequest.objects.select_for_update().get(pk=request.pk)
    now = timezone.now()
    before = _move(request, m.RequestStatus.FULFILLED)
    request.updated_at = now
    request.save(update_fields=["status", "updated_at"])
    _event(request, before, m.RequestStatus.FULFILLED, user, now, note)
    return request


@transaction.atomic
def resource_request_cancel(
    *, request: m.ResourceRequest, user: Any, reason: str
) -> m.ResourceRequest:
    if not reason.strip():
        raise CoordinationError("cancelling needs a reason")
    request = m.ResourceRequest.objects.select_for_update().get(pk=request.pk)
    now = timezone.now()
    before = _move(request, m.RequestStatus.CANCELLED)
    request.updated_at = now
    request.save(update_fields=["status", "updated_at"])
    request.offers.filter(state=m.ResourceOffer.State.OPEN).update(
        state=m.ResourceOffer.State.DECLINED
    )
    _event(request, before, m.RequestStatus.CANCELLED, user, now, reason.strip())
    return request
