"""Alert rules: live state and the region's evaluation in, alert candidates out; and the plan
that turns candidates plus the alerts already open into raise / remind / resolve / escalate.

Two kinds of alert:

- **conditions** (a threshold crossed, a forecast of a full unit, a stale feed) hold while
  their condition holds and resolve themselves when it clears;
- **events** (a diversion or surge change) stay until someone acknowledges them.

Every candidate has a de-duplication ``key``: while an alert with that key is open, the same
condition does not raise it again (at most a reminder every ``renotify_minutes``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
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
    has tens of thousands, read every minute)."""

    key: str
    raised_at: datetime
    last_notified_at: datetime
    condition: bool
    severity: str
    acknowledged: bool = False
    escalation_level: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertPlan:
    raise_new: tuple[AlertCandidate, ...]  # not open yet: create and notify
    refresh: tuple[AlertCandidate, ...]  # open and still true: update the figures, no notify
    remind: tuple[str, ...]  # open, unacknowledged, last notified long ago: notify again
    resolve: tuple[str, ...]  # open conditions that no longer hold
    escalate: tuple[tuple[str, int], ...]  # (key, new level) unacknowledged too long


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


def threshold_alerts(a: RegionArrays, cfg: AlertConfig) -> list[AlertCandidate]:
    """Fresh hospitals whose figure crosses a threshold rule (stale ones raise the stale
    alert instead: their figures are not current)."""
    out: list[AlertCandidate] = []
    for rule in cfg.thresholds:
        v = figure_values(a, rule.figure)
        with np.errstate(invalid="ignore"):
            hit = (v >= rule.value) if rule.op == ">=" else (v <= rule.value)
        hit &= a.fresh
        label = FIGURE_LABELS.get(rule.figure, rule.figure.replace("_", " "))
        limit = _format(rule.figure, rule.value)
        idx = np.flatnonzero(hit)
        for i, value in zip(idx.tolist(), v[idx].tolist(), strict=True):
            code = a.codes[i]
            shown = _format(rule.figure, value)
            out.append(
                AlertCandidate(
                    key=f"threshold:{rule.figure}:{code}",
                    kind="threshold",
                    severity=rule.severity,
                    hospital=code,
                    title=f"{label} at {code}: {shown}",
                    message=f"{label} at {code} is {shown} (alert {rule.op} {limit})",
                    condition=True,
                    figures={"figure": rule.figure, "value": value, "threshold": rule.value},
                )
            )
    return out


def _points(state: HospitalState, unit: str) -> tuple[ForecastPoint, ...]:
    f = state.forecast
    if f is None:
        return ()
    return f.ed if unit == "ed" else f.icu if unit == "icu" else f.ward


def forecast_alerts(
    a: RegionArrays, states: Sequence[HospitalState], cfg: AlertConfig
) -> list[AlertCandidate]:
    """ "ICU at H forecast full in 6 h (p50)": the first horizon at which the median of free
    places is at or below zero, if it is within the rule's hours (recent forecasts only)."""
    out: list[AlertCandidate] = []
    for rule in cfg.forecasts:
        first = a.first_full[:, FORECAST_UNITS.index(rule.unit)]
        with np.errstate(invalid="ignore"):
            hit = first <= rule.hours
        unit = UNIT_LABELS[rule.unit]
        idx = np.flatnonzero(hit)
        rows = zip(
            idx.tolist(),
            first[idx].tolist(),
            np.round(a.forecast_age_minutes[idx]).astype(np.int64).tolist(),
            strict=True,
        )
        for i, horizon, age in rows:
            code = a.codes[i]
            point = next(p for p in _points(states[i], rule.unit) if p.horizon_hours == horizon)
            interval = ""
            if point.p10 is not None and point.p90 is not None:
                interval = (
                    f"; 80% interval {explain.count(point.p10)} to {explain.count(point.p90)} free"
                )
            out.append(
                AlertCandidate(
                    key=f"forecast:{rule.unit}:{code}",
                    kind="forecast",
                    severity=rule.severity,
                    hospital=code,
                    title=f"{unit} at {code} forecast full in {explain.hours(horizon)} (p50)",
                    message=(
                        f"{unit} at {code} forecast full in {explain.hours(horizon)} (p50 "
                        f"{explain.count(point.p50)} free{interval}); forecast made {age} min ago"
                    ),
                    condition=True,
                    figures={
                        "unit": rule.unit,
                        "horizon_hours": horizon,
                        "p50": point.p50,
                        "p10": point.p10,
                        "p90": point.p90,
                    },
                )
            )
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
) -> list[AlertCandidate]:
    """Every alert the region's state calls for now."""
    a = diversion.arrays
    return [
        *threshold_alerts(a, cfg),
        *forecast_alerts(a, states, cfg),
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
    candidates: Sequence[AlertCandidate],
    open_alerts: Mapping[str, OpenAlert],
    now: datetime,
    cfg: AlertConfig,
) -> AlertPlan:
    """De-duplicate against what is open, resolve what cleared, escalate what waits."""
    seen: dict[str, AlertCandidate] = {}
    rank = _RANK.get
    for c in candidates:
        # One candidate per key per evaluation: the most severe wins.
        old = seen.get(c.key)
        if old is None or rank(c.severity, 0) > rank(old.severity, 0):
            seen[c.key] = c
    raise_new = tuple(c for k, c in seen.items() if k not in open_alerts)
    refresh = tuple(c for k, c in seen.items() if k in open_alerts)
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
        if a.acknowledged:
            continue
        if a.last_notified_at <= notified_before:
            remind.append(key)
        if a.severity in escalating and a.escalation_level < steps:
            lvl = steps - bisect_left(cutoffs, a.raised_at)
            if lvl > a.escalation_level:
                escalate.append((key, lvl))
    return AlertPlan(
        raise_new=raise_new,
        refresh=refresh,
        remind=tuple(remind),
        resolve=tuple(resolve),
        escalate=tuple(escalate),
    )


_RANK = {"info": 0, "warning": 1, "critical": 2}
