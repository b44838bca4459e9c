"""Alert rules: live state and the region's evaluation in, alert candidates out; and the plan
that turns candidates plus the alerts already open into raise / remind / resolve / escalate.

Two kinds of alert:

- **conditions** (a threshold crossed, a forecast of a full unit, a stale feed) hold while
  their condition holds and resolve themselves when it clears;
- **events** (a diversion or surge change) stay until someone acknowledges them.

Every candidate has a de-duplication ``key``: while an alert with that key is open, the same
condition does not raise it again (at most a reminder every ``renotify_minutes``).

Threshold and forecast alerts are **grouped per hospital and kind** (``threshold:H``,
``forecast:H``, as Alertmanager groups by labels): one alert lists every figure breaching,
its severity the highest of theirs. It is rewritten only when its set of figures or a
severity changes; it notifies again when a figure joins or its severity rises, and if it
was acknowledged it opens again (escalation counting from then); figures clearing or the
severity falling do not re-open it; it resolves when no figure breaches.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from hub.coordination import explain, rules
from hub.coordination.arrays import FORECAST_UNITS, F, RegionArrays
from hub.coordination.config import PRESSURE_FIGURES, SURGE_PARAMETERS, AlertConfig, DiversionConfig
from hub.coordination.diversion import RegionDiversion, Status
from hub.coordination.state import ForecastPoint, HospitalState
from hub.coordination.surge import RegionSurge

FIGURE_LABELS = {
    "ed_occupancy": "ED occupancy",
    "offload_p90_minutes": "ambulance offload p90",
    "longest_boarding_minutes": "longest boarding",
    "icu_occupancy": "ICU occupancy",
    "ward_occupancy": "ward occupancy",
    "ed_boarding": "ED boarding",
    "ed_waiting": "ED waiting",
}
UNIT_LABELS = {"ed": "ED", "icu": "ICU", "ward": "ward beds"}


class AlertCandidate(NamedTuple):
    """An alert the state calls for. A named tuple, not a dataclass: a saturated national
    region raises tens of thousands per minute and a tuple is several times cheaper to make."""

    key: str
    kind: str  # threshold, forecast, stale, diversion, surge
    severity: str
    hospital: str | None
    title: str
    message: str
    condition: bool  # True: resolves when it no longer holds; False: an event, needs an ack
    figures: Mapping[str, Any] = MappingProxyType({})


class OpenAlert(NamedTuple):
    """An alert still live, as the plan reads it (a named tuple: a saturated national region
    has tens of thousands, read every minute). ``raised_at``: when escalation counts from
    (``Alert.opened_at``); ``members``: a grouped alert's figures (name: severity)."""

    key: str
    raised_at: datetime
    last_notified_at: datetime
    condition: bool
    severity: str
    acknowledged: bool = False
    escalation_level: int = 0
    members: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupChange:
    """A live grouped alert whose figures or severity changed: rewritten in place."""

    group: AlertGroup
    added: tuple[str, ...]
    removed: tuple[str, ...]
    notify: bool  # a figure joined or the severity rose: sent again
    reopen: bool  # ... and it was acknowledged: open again, escalation from now


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertPlan:
    raise_new: tuple[Alertable, ...]  # not open yet: create and notify
    refresh: tuple[AlertCandidate, ...]  # open and still true: update the figures, no notify
    remind: tuple[str, ...]  # open, unacknowledged, last notified long ago: notify again
    resolve: tuple[str, ...]  # open conditions that no longer hold
    escalate: tuple[tuple[str, int], ...]  # (key, new level) unacknowledged too long
    change: tuple[GroupChange, ...] = ()  # grouped, still true, changed


def figure_values(a: RegionArrays, figure: str) -> F:
    """One figure for every hospital of the region (NaN: not reported, or too old)."""
    fig = {name: j for j, name in enumerate(PRESSURE_FIGURES)}
    par = {name: j for j, name in enumerate(SURGE_PARAMETERS)}
    if figure in {"ed_occupancy", "longest_boarding_minutes", "offload_p90_minutes"}:
        return a.pressure_figures[:, fig[figure]]
    if figure in {"icu_occupancy", "ward_occupancy"}:
        return a.pressure_figures[:, fig[figure]]
    if figure == "ed_waiting":
        return a.pressure_figures[:, fig["ed_waiting"]] * a.ed_capacity
    if figure == "ed_boarding":
        return a.surge_values[:, par["ed_boarding"]]
    if figure in par:
        return a.surge_values[:, par[figure]]
    raise ValueError(f"unknown alert figure {figure!r}")


def _format(figure: str, value: float) -> str:
    if figure.endswith("_occupancy") or figure.endswith("_share"):
        return explain.percent(value)
    if figure.endswith("_minutes"):
        return explain.duration(value)
    return explain.count(value)


class Breach(NamedTuple):
    """One figure of one hospital past a rule: a member of that hospital's grouped threshold
    or forecast alert. Raw numbers; the words are made only for the groups stored."""

    kind: str  # threshold, forecast
    name: str  # the figure (threshold) or the unit (forecast)
    severity: str
    hospital: str
    value: float  # the figure's value; forecast: the hours until full (p50)
    limit: float  # the rule's threshold; forecast: the rule's hours
    op: str
    point: ForecastPoint | None = None  # forecast: the point at which it is full
    age: int = 0  # forecast: minutes since it was made


def threshold_breaches(a: RegionArrays, cfg: AlertConfig) -> list[Breach]:
    """Fresh hospitals whose figure crosses a threshold rule (stale ones raise the stale
    alert instead: their figures are not current)."""
    out: list[Breach] = []
    for rule in cfg.thresholds:
        v = figure_values(a, rule.figure)
        with np.errstate(invalid="ignore"):
            hit = (v >= rule.value) if rule.op == ">=" else (v <= rule.value)
        hit &= a.fresh
        idx = np.flatnonzero(hit)
        codes = a.codes
        figure, severity, limit, op = rule.figure, rule.severity, rule.value, rule.op
        out.extend(
            Breach("threshold", figure, severity, codes[i], value, limit, op)
            for i, value in zip(idx.tolist(), v[idx].tolist(), strict=True)
        )
    return out


def _points(state: HospitalState, unit: str) -> tuple[ForecastPoint, ...]:
    f = state.forecast
    if f is None:
        return ()
    return f.ed if unit == "ed" else f.icu if unit == "icu" else f.ward


def forecast_breaches(
    a: RegionArrays, states: Sequence[HospitalState], cfg: AlertConfig
) -> list[Breach]:
    """ "ICU at H forecast full in 6 h, p50": the first horizon at which the median of free
    places is at or below zero, if it is within the rule's hours (recent forecasts only)."""
    out: list[Breach] = []
    for rule in cfg.forecasts:
        first = a.first_full[:, FORECAST_UNITS.index(rule.unit)]
        with np.errstate(invalid="ignore"):
            hit = first <= rule.hours
        idx = np.flatnonzero(hit)
        rows = zip(
            idx.tolist(),
            first[idx].tolist(),
            np.round(a.forecast_age_minutes[idx]).astype(np.int64).tolist(),
            strict=True,
        )
        for i, horizon, age in rows:
            point = next(p for p in _points(states[i], rule.unit) if p.horizon_hours == horizon)
            out.append(
                Breach(
                    "forecast",
                    rule.unit,
                    rule.severity,
                    a.codes[i],
                    horizon,
                    rule.hours,
                    "<=",
                    point,
                    age,
                )
            )
    return out


class AlertGroup(NamedTuple):
    """A hospital's grouped condition alert of one kind (threshold, forecast): every figure
    breaching (one per figure or unit, the most severe rule's), its severity the highest of
    theirs. Title, message and figures are made when read (only for the groups stored)."""

    key: str
    kind: str
    severity: str
    hospital: str
    breaches: tuple[Breach, ...]

    @property
    def condition(self) -> bool:
        return True

    @property
    def members(self) -> dict[str, str]:
        """Figure (or unit) breaching: its severity."""
        return {b.name: b.severity for b in self.breaches}

    @property
    def title(self) -> str:
        n, code = len(self.breaches), self.hospital
        if self.kind == "forecast":
            if n == 1:
                b = self.breaches[0]
                unit, hours = UNIT_LABELS[b.name], explain.hours(b.value)
                return f"{unit} at {code} forecast full in {hours} (p50)"
            parts = ", ".join(
                f"{UNIT_LABELS[b.name]} in {explain.hours(b.value)}" for b in self.breaches
            )
            return f"{n} units at {code} forecast full (p50): {parts}"
        parts = ", ".join(f"{_label(b.name)} {_format(b.name, b.value)}" for b in self.breaches)
        return f"{n} threshold{'s' if n > 1 else ''} breached at {code}: {parts}"

    @property
    def message(self) -> str:
        code = self.hospital
        if self.kind == "forecast":
            parts = "; ".join(_forecast_words(b) for b in self.breaches)
            age = self.breaches[0].age
            return f"At {code}: {parts}. Forecast made {age} min ago."
        parts = "; ".join(
            f"{_label(b.name)} {_format(b.name, b.value)} "
            f"(alert {b.op} {_format(b.name, b.limit)}, {b.severity})"
            for b in self.breaches
        )
        return f"At {code}: {parts}."

    @property
    def figures(self) -> dict[str, Any]:
        if self.kind == "forecast":
            return {
                "breaches": [
                    {
                        "unit": b.name,
                        "horizon_hours": b.value,
                        "within_hours": b.limit,
                        "p50": b.point.p50 if b.point else None,
                        "p10": b.point.p10 if b.point else None,
                        "p90": b.point.p90 if b.point else None,
                        "severity": b.severity,
                    }
                    for b in self.breaches
                ]
            }
        return {
            "breaches": [
                {
                    "figure": b.name,
                    "value": b.value,
                    "op": b.op,
                    "threshold": b.limit,
                    "severity": b.severity,
                }
                for b in self.breaches
            ]
        }


def breach_words(breach: Mapping[str, Any]) -> str:
    """One stored member of a grouped alert (``figures["breaches"]``) in words: "ED occupancy
    103% (alert >= 100%)", or "ICU full in 5 h (p50)" for a forecast."""
    figure = breach.get("figure")
    if figure:
        value, limit = float(breach["value"]), float(breach["threshold"])
        return (
            f"{_label(figure)} {_format(figure, value)} "
            f"(alert {breach.get('op', '>=')} {_format(figure, limit)})"
        )
    unit = str(breach.get("unit", ""))
    hours = explain.hours(float(breach.get("horizon_hours") or 0))
    return f"{UNIT_LABELS.get(unit, unit)} full in {hours} (p50)"


def _label(figure: str) -> str:
    return FIGURE_LABELS.get(figure, figure.replace("_", " "))


def _forecast_words(b: Breach) -> str:
    p = b.point
    interval = ""
    if p is not None and p.p10 is not None and p.p90 is not None:
        interval = f", 80% interval {explain.count(p.p10)} to {explain.count(p.p90)} free"
    free = f"p50 {explain.count(p.p50)} free" if p is not None else "p50"
    return f"{UNIT_LABELS[b.name]} forecast full in {explain.hours(b.value)} ({free}{interval})"


def members_of(figures: Mapping[str, Any]) -> dict[str, str]:
    """A stored grouped alert's members (figure or unit: severity), from its ``figures``."""
    return {b.get("figure", b.get("unit")): b["severity"] for b in figures.get("breaches", ())}


GROUPED_KINDS = frozenset({"threshold", "forecast"})
Alertable = AlertCandidate | AlertGroup


def group_breaches(breaches: Iterable[Breach]) -> list[AlertGroup]:
    """One alert per hospital and kind; per figure (or unit) the most severe rule's breach
    (the first of equals), in the order the rules list them."""
    rank = _RANK.get
    groups: dict[tuple[str, str], dict[str, Breach]] = {}
    for b in breaches:
        g = groups.get((b.kind, b.hospital))
        if g is None:
            groups[(b.kind, b.hospital)] = {b.name: b}
            continue
        old = g.get(b.name)
        if old is None or rank(b.severity, 0) > rank(old.severity, 0):
            g[b.name] = b
    out = []
    for (kind, code), members in groups.items():
        severity = max((b.severity for b in members.values()), key=lambda s: rank(s, 0))
        out.append(AlertGroup(f"{kind}:{code}", kind, severity, code, tuple(members.values())))
    return out


def stale_alerts(
    a: RegionArrays,
    states: Sequence[HospitalState],
    now: datetime,
    fresh: DiversionConfig,
    cfg: AlertConfig,
) -> list[AlertCandidate]:
    out = []
    for i in np.flatnonzero(~a.fresh).tolist():
        code = a.codes[i]
        reasons = rules.stale_reasons(states[i], now, fresh)
        out.append(
            AlertCandidate(
                key=f"stale:{code}",
                kind="stale",
                severity=cfg.stale_severity,
                hospital=code,
                title=f"Stale feed at {code}",
                message=f"{code}: {'; '.join(reasons)}. It is not used as a destination.",
                condition=True,
                figures={"reasons": list(reasons)},
            )
        )
    return out


def diversion_alerts(diversion: RegionDiversion, cfg: AlertConfig) -> list[AlertCandidate]:
    recs = {r.hospital: r for r in diversion.recommendations}
    out = []
    for c in diversion.changes:
        rec = recs.get(c.hospital)
        verb = {
            Status.OPEN: "open",
            Status.ADVISORY: "on advisory",
            Status.CLOSED: "closed to ambulances",
        }
        out.append(
            AlertCandidate(
                key=f"diversion:{c.hospital}:{c.to_status.value}",
                kind="diversion",
                severity=cfg.diversion_severity if c.to_status is not Status.OPEN else "info",
                hospital=c.hospital,
                title=f"{c.hospital} recommended {verb[c.to_status]} (was {c.from_status.value})",
                message=rec.explanation if rec is not None else c.reason,
                condition=False,
                figures={"from": c.from_status.value, "to": c.to_status.value, "reason": c.reason},
            )
        )
    return out


def surge_alerts(surge: RegionSurge, cfg: AlertConfig) -> list[AlertCandidate]:
    """A change of level, except a hospital's first assessment at OPEL 1 or 2 (a new
    hospital, or the hub's first evaluation, is not news unless it starts under pressure)."""
    return [
        AlertCandidate(
            key=f"surge:{c.subject}:{c.to_level}",
            kind="surge",
            severity=cfg.surge_severity.get(c.to_level, "info"),
            hospital=None if c.subject == surge.region.subject else c.subject,
            title=f"OPEL {c.to_level} at {c.subject}"
            + (f" (was {c.from_level})" if c.from_level is not None else ""),
            message=c.explanation + ". Actions: " + " ".join(c.checklist),
            condition=False,
            figures={"from": c.from_level, "to": c.to_level, "score": round(c.score, 1)},
        )
        for c in surge.changes
        if c.from_level is not None or c.to_level >= 3
    ]


def evaluate_alerts(
    states: Sequence[HospitalState],
    diversion: RegionDiversion,
    surge: RegionSurge,
    now: datetime,
    cfg: AlertConfig,
    fresh: DiversionConfig,
) -> list[Alertable]:
    """Every alert the region's state calls for now."""
    a = diversion.arrays
    return [
        *group_breaches(threshold_breaches(a, cfg)),
        *group_breaches(forecast_breaches(a, states, cfg)),
        *stale_alerts(a, states, now, fresh, cfg),
        *diversion_alerts(diversion, cfg),
        *surge_alerts(surge, cfg),
    ]


def escalation_level(raised_at: datetime, now: datetime, cfg: AlertConfig) -> int:
    """How many escalation steps an unacknowledged alert has earned by now."""
    age = now - raised_at
    return sum(1 for m in cfg.escalation_minutes if age >= timedelta(minutes=m))


def _escalation_cutoffs(now: datetime, cfg: AlertConfig) -> list[datetime]:
    """The raising times at or before which an alert has earned each escalation step, oldest
    first: ``escalation_level`` is the number of them at or after ``raised_at``."""
    return sorted(now - timedelta(minutes=m) for m in cfg.escalation_minutes)


def plan_alerts(
    candidates: Sequence[Alertable],
    open_alerts: Mapping[str, OpenAlert],
    now: datetime,
    cfg: AlertConfig,
) -> AlertPlan:
    """De-duplicate against what is open, resolve what cleared, escalate what waits; for the
    grouped alerts, what changed, what notifies again and what opens again."""
    seen: dict[str, Alertable] = {}
    rank = _RANK.get
    for c in candidates:
        # One candidate per key per evaluation: the most severe wins.
        old = seen.get(c.key)
        if old is None or rank(c.severity, 0) > rank(old.severity, 0):
            seen[c.key] = c
    raise_new: list[Alertable] = []
    refresh: list[AlertCandidate] = []
    change: list[GroupChange] = []
    notified: set[str] = set()
    reopened: set[str] = set()
    for k, c in seen.items():
        live = open_alerts.get(k)
        if live is None:
            raise_new.append(c)
        elif isinstance(c, AlertCandidate):
            refresh.append(c)
        else:
            before = live.members or {}
            members = c.members
            if members == before and c.severity == live.severity:
                continue  # the same figures at the same severities: nothing to write
            added = tuple(n for n in members if n not in before)
            rose = rank(c.severity, 0) > rank(live.severity, 0)
            notify = bool(added) or rose
            reopen = notify and live.acknowledged
            removed = tuple(n for n in before if n not in members)
            change.append(
                GroupChange(group=c, added=added, removed=removed, notify=notify, reopen=reopen)
            )
            if notify:
                notified.add(k)
            if reopen:
                reopened.add(k)
    remind: list[str] = []
    resolve: list[str] = []
    escalate: list[tuple[str, int]] = []
    # Compared as times, not ages: the same tests as ``now - t >= limit`` without a
    # subtraction per alert.
    notified_before = now - timedelta(minutes=cfg.renotify_minutes)
    cutoffs = _escalation_cutoffs(now, cfg)
    steps = len(cutoffs)
    escalating = cfg.escalate_severities
    for key, a in open_alerts.items():
        if a.condition and key not in seen:
            resolve.append(key)
            continue
        if a.acknowledged or key in reopened:
            continue  # re-opened now: its escalation counts from now
        if a.last_notified_at <= notified_before and key not in notified:
            remind.append(key)
        severity = seen[key].severity if key in notified else a.severity
        if severity in escalating and a.escalation_level < steps:
            lvl = steps - bisect_left(cutoffs, a.raised_at)
            if lvl > a.escalation_level:
                escalate.append((key, lvl))
    return AlertPlan(
        raise_new=tuple(raise_new),
        refresh=tuple(refresh),
        remind=tuple(remind),
        resolve=tuple(resolve),
        escalate=tuple(escalate),
        change=tuple(change),
    )


_RANK = {"info": 0, "warning": 1, "critical": 2}
