"""The region rules, one small function each, shared by diversion, surge, alerts and matching.

Each rule here has its own test in ``tests/hub/coordination/test_rules.py`` and a property
test in ``test_properties.py``:

- never send patients to a hospital whose feed is stale, or that is itself saturated;
- respect capabilities (stroke, STEMI/PCI, trauma level, paediatrics, burns, maternity,
  psychiatry);
- never let every hospital divert at once: a region that is saturated load-balances;
- hysteresis and a minimum duration, so a status does not flap;
- every diversion expires unless renewed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.coordination.config import DiversionConfig
from hub.coordination.state import TIME_CRITICAL, AmbulanceClass, Capabilities, HospitalState

_C = AmbulanceClass


def stale_reasons(state: HospitalState, now: datetime, cfg: DiversionConfig) -> tuple[str, ...]:
    """Why the hospital's census cannot be trusted now; empty when it is fresh."""
    reasons: list[str] = []
    if state.feed_stale:
        reasons.append("feed reported stale")
    age = (now - state.as_of).total_seconds() / 60.0
    if age > cfg.stale_after_minutes:
        reasons.append(f"census {round(age)} min old (limit {cfg.stale_after_minutes:g})")
    if state.ed_capacity <= 0:
        reasons.append("no ED capacity reported")
    return tuple(reasons)


def is_fresh(state: HospitalState, now: datetime, cfg: DiversionConfig) -> bool:
    return (
        not state.feed_stale
        and state.ed_capacity > 0
        and (now - state.as_of).total_seconds() <= cfg.stale_after_minutes * 60.0
    )


def offload_usable(state: HospitalState, now: datetime, cfg: DiversionConfig) -> bool:
    if state.offload_p90_minutes is None:
        return False
    as_of = state.offload_as_of or state.as_of
    return (now - as_of).total_seconds() <= cfg.offload_stale_after_minutes * 60.0


def forecast_usable(state: HospitalState, now: datetime, cfg: DiversionConfig) -> bool:
    f = state.forecast
    if f is None or not f.ed:
        return False
    return (now - f.as_of).total_seconds() <= cfg.forecast_stale_after_minutes * 60.0


def can_take(caps: Capabilities, cls: AmbulanceClass, cfg: DiversionConfig) -> bool:
    """Whether a hospital with ``caps`` may receive an ambulance patient of class ``cls``."""
    if cls is _C.GENERAL:
        return True
    if cls is _C.MAJOR_TRAUMA:
        return caps.trauma_level is not None and caps.trauma_level <= cfg.major_trauma_max_level
    if cls is _C.STROKE:
        return caps.stroke.rank >= cfg.stroke_min_level.rank
    if cls is _C.STROKE_THROMBECTOMY:
        return caps.stroke.rank >= cfg.thrombectomy_min_level.rank
    if cls is _C.STEMI:
        return caps.stemi_pci
    if cls is _C.PAEDIATRIC:
        return caps.paediatrics
    if cls is _C.BURNS:
        return caps.burns
    if cls is _C.MATERNITY:
        return caps.maternity
    if cls is _C.PSYCHIATRIC:
        return caps.psychiatry
    raise ValueError(f"unknown ambulance class {cls!r}")  # pragma: no cover


def accepted_classes(caps: Capabilities, cfg: DiversionConfig) -> tuple[AmbulanceClass, ...]:
    """The classes of ambulance patient a hospital takes, GENERAL first."""
    return tuple(c for c in AmbulanceClass if can_take(caps, c, cfg))


def travel_limit(cls: AmbulanceClass, cfg: DiversionConfig) -> float:
    return cfg.max_travel_minutes_time_critical if cls in TIME_CRITICAL else cfg.max_travel_minutes


def saturated(pressure: float | None, cfg: DiversionConfig) -> bool:
    """A destination is 'itself saturated' at or above ``destination_max_pressure``; an
    unknown pressure counts as saturated (we do not send patients on a guess)."""
    return pressure is None or pressure >= cfg.destination_max_pressure


def destination_refusal(
    *,
    fresh: bool,
    diverting: bool,
    pressure: float | None,
    free: float,
    caps: Capabilities,
    cls: AmbulanceClass,
    travel_minutes: float,
    cfg: DiversionConfig,
) -> str | None:
    """Why a hospital may not receive diverted ambulances of class ``cls``; None if it may."""
    if not fresh:
        return "feed stale"
    if diverting:
        return "itself diverting"
    if saturated(pressure, cfg):
        return "itself saturated"
    if free < cfg.destination_min_ed_free:
        return "no free ED places left"
    if not can_take(caps, cls, cfg):
        return f"cannot take {cls.value.replace('_', ' ')}"
    if travel_minutes > travel_limit(cls, cfg):
        return "too far"
    return None


def should_load_balance(
    *,
    fresh_count: int,
    would_close: int,
    diverting_without_destination: bool,
    currently_load_balancing: bool,
    cfg: DiversionConfig,
) -> bool:
    """Never let every hospital divert: when a large share of the region's fresh hospitals
    would close (or hospitals need to divert and no one can receive), switch the whole region
    to load-balancing. Entering and leaving use different shares (hysteresis)."""
    if fresh_count == 0:
        return False
    share = would_close / fresh_count
    if currently_load_balancing:
        return share >= cfg.load_balance_exit_share
    return share >= cfg.load_balance_enter_share or diverting_without_destination


def expired(expires_at: datetime | None, now: datetime) -> bool:
    """Every diversion expires unless renewed: at ``expires_at`` it no longer holds."""
    return expires_at is not None and expires_at <= now


def held_long_enough(since: datetime | None, now: datetime, minutes: float) -> bool:
    """Minimum duration: a status (or level) may change only after it has held this long."""
    return since is None or now - since >= timedelta(minutes=minutes)
