"""One call that re-evaluates a region: diversion, surge and alerts, in that order (alerts
read the diversion and surge changes). Pure; the Celery task and the benchmark call this."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.coordination.alerts_rules import Alertable, evaluate_alerts
from hub.coordination.config import RegionConfig
from hub.coordination.diversion import (
    Mode,
    Neighbourhood,
    PriorStatus,
    RegionDiversion,
    Status,
    evaluate_diversion,
)
from hub.coordination.gcpause import paused_gc
from hub.coordination.state import HospitalState, TravelTimes
from hub.coordination.surge import PriorLevel, RegionSurge, evaluate_surge


@dataclass(frozen=True, slots=True, kw_only=True)
class Priors:
    """What held before: per-hospital diversion status and surge level, the region's level
    and mode."""

    diversion: Mapping[str, PriorStatus]
    surge: Mapping[str, PriorLevel]
    region_level: PriorLevel | None = None
    mode: Mode = Mode.NORMAL


NO_PRIORS = Priors(diversion={}, surge={})


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionEvaluation:
    at: datetime
    diversion: RegionDiversion
    surge: RegionSurge
    alerts: tuple[Alertable, ...]


def evaluate_region(
    states: Sequence[HospitalState],
    travel: TravelTimes | Neighbourhood,
    priors: Priors,
    now: datetime,
    config: RegionConfig,
    *,
    region_code: str = "region",
    closed: Collection[str] = (),
) -> RegionEvaluation:
    with paused_gc():  # see gcpause: most of the objects made here live until stored
        diversion = evaluate_diversion(
            states,
            travel,
            priors.diversion,
            now,
            config.diversion,
            prior_mode=priors.mode,
            closed=closed,
        )
        surge = evaluate_surge(
            states,
            priors.surge,
            now,
            config.surge,
            config.diversion,
            region_code=region_code,
            region_prior=priors.region_level,
            arrays=diversion.arrays,
        )
        alerts = evaluate_alerts(states, diversion, surge, now, config.alerts, config.diversion)
    return RegionEvaluation(at=now, diversion=diversion, surge=surge, alerts=tuple(alerts))


def carry_forward(evaluation: RegionEvaluation) -> Priors:
    """The priors for the next evaluation: what this one decided (the Django layer stores the
    same thing per hospital; tests and the benchmark chain evaluations with this)."""
    d = evaluation.diversion
    diversion: dict[str, PriorStatus] = {}
    routes = {r.hospital: r.routes for r in d.recommendations}
    for code, n in d.statuses.items():
        diversion[code] = PriorStatus(
            status=n.status,
            since=n.since,
            expires_at=n.expires_at,
            destinations={
                r.ambulance_class: r.destination
                for r in routes.get(code, ())
                if n.status is not Status.OPEN
            },
        )
    for code, prior in d.priors.items():
        diversion.setdefault(code, prior)
    s = evaluation.surge
    surge = {
        code: PriorLevel(level=int(lv), since=s.since.get(code))
        for code, lv in zip(s.codes, s.level.tolist(), strict=True)
        if lv > 0
    }
    region_level = (
        PriorLevel(level=s.region.level, since=s.region.since)
        if s.region.level is not None
        else None
    )
    return Priors(diversion=diversion, surge=surge, region_level=region_level, mode=d.mode)
