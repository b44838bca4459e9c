"""Region configuration: every threshold the coordination rules use, with documented defaults.

A region stores its own values as JSON (``RegionConfig.from_dict``); anything it leaves out
keeps the default below, and a key the code does not know is refused rather than ignored (a
typo in a threshold must not silently fall back to the default). ``docs/coordination.md``
lists every value with the reason for its default.

The defaults are this project's starting point for a region, not national standards; where a
number comes from a standard the comment names it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from hub.coordination.state import StrokeLevel

PRESSURE_FIGURES: tuple[str, ...] = (
    "ed_occupancy",
    "ed_waiting",
    "ed_boarding",
    "longest_boarding_minutes",
    "offload_p90_minutes",
    "icu_occupancy",
    "ward_occupancy",
    "forecast_ed_free",
)
"""The figures the diversion pressure can use (``hub.coordination.arrays`` computes them)."""

SURGE_PARAMETERS: tuple[str, ...] = (
    "ed_occupancy",
    "ed_boarding",
    "longest_boarding_hours",
    "over_4h_share",
    "handovers_over_30_min",
    "bed_occupancy",
    "icu_occupancy",
    "staffing_gap_share",
)
"""The OPEL parameters a region can weigh."""

ALERT_FIGURES: frozenset[str] = frozenset(
    {
        "ed_occupancy",
        "ed_waiting",
        "ed_boarding",
        "longest_boarding_minutes",
        "offload_p90_minutes",
        "icu_occupancy",
        "ward_occupancy",
        *SURGE_PARAMETERS,
    }
)
"""The figures a threshold alert rule can watch."""


@dataclass(frozen=True, slots=True)
class Band:
    """Maps a figure onto 0-1 linearly: ``lo`` (or better) scores 0, ``hi`` (or worse) 1.
    ``lo > hi`` means lower is worse (free places)."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if self.lo == self.hi:
            raise ValueError("a band needs lo != hi")

    def score(self, value: float) -> float:
        x = (value - self.lo) / (self.hi - self.lo)
        return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


@dataclass(frozen=True, slots=True, kw_only=True)
class DiversionConfig:
    # --- freshness: a figure older than this is not used ------------------------------------
    stale_after_minutes: float = 15.0  # census: site agents report every minute
    offload_stale_after_minutes: float = 30.0
    forecast_stale_after_minutes: float = 90.0  # forecasts are made every 15-60 minutes

    # --- pressure score: each figure → 0-1 by its band, weighted mean of the figures present
    bands: dict[str, Band] = field(
        default_factory=lambda: {
            "ed_occupancy": Band(0.80, 1.00),
            "ed_waiting": Band(0.0, 0.5),  # waiting to be seen, per ED space
            "ed_boarding": Band(0.0, 0.25),  # boarders per ED space
            "longest_boarding_minutes": Band(60.0, 360.0),
            # APOT-1 (California EMSA's offload measure) is the 90th percentile; the state
            # standard is 30 minutes (AB 40). 90 minutes is three times the standard.
            "offload_p90_minutes": Band(30.0, 90.0),
            "icu_occupancy": Band(0.80, 1.00),
            # 85% general-and-acute occupancy is the level above which flow breaks down
            # (the figure NHS England and the RCEM use).
            "ward_occupancy": Band(0.85, 1.00),
            # least median free ED places over the forecast window, per ED space
            "forecast_ed_free": Band(0.10, 0.0),
        }
    )
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "ed_occupancy": 0.25,
            "ed_waiting": 0.05,
            "ed_boarding": 0.15,
            "longest_boarding_minutes": 0.10,
            "offload_p90_minutes": 0.15,
            "icu_occupancy": 0.05,
            "ward_occupancy": 0.10,
            "forecast_ed_free": 0.15,
        }
    )
    forecast_min_hours: float = 2.0  # the window the issue asks for: the next 2-6 hours
    forecast_max_hours: float = 6.0

    # --- status with hysteresis -------------------------------------------------------------
    # Enter above the higher threshold, leave only below the lower one: a score wobbling
    # around one threshold does not open and close the ED every minute.
    advisory_enter: float = 0.60
    advisory_exit: float = 0.50
    close_enter: float = 0.80
    close_exit: float = 0.70
    min_status_minutes: float = 30.0  # no status changes again sooner (except the safety rules)
    ttl_minutes: float = 60.0  # a diversion lapses unless renewed by a later evaluation

    # --- destinations -------------------------------------------------------------------------
    destination_max_pressure: float = 0.50  # "itself saturated" = at or above this
    destination_min_ed_free: int = 1
    max_travel_minutes: float = 45.0
    max_travel_minutes_time_critical: float = 20.0  # stroke, STEMI, major trauma
    sticky_destination_minutes: float = 10.0  # keep the current G unless another is this close
    default_ambulances_per_hour: float = 2.0  # load a diversion adds to G when not reported
    diversion_horizon_hours: float = 1.0  # G's free places must absorb this much diverted load
    destination_forecast_hours: float = 2.0  # "G: forecast 3 free in 2 h"
    max_alternates: int = 2

    # --- capabilities ------------------------------------------------------------------------
    major_trauma_max_level: int = 2  # ACS level I and II take major trauma
    stroke_min_level: StrokeLevel = StrokeLevel.PRIMARY
    thrombectomy_min_level: StrokeLevel = StrokeLevel.THROMBECTOMY

    # --- region ------------------------------------------------------------------------------
    # When this share of the region's fresh hospitals would close, diverting only moves the
    # queue around: switch to load-balancing (everyone open, ambulances shared by headroom).
    load_balance_enter_share: float = 0.60
    load_balance_exit_share: float = 0.40

    def __post_init__(self) -> None:
        if set(self.bands) != set(self.weights):
            raise ValueError("diversion bands and weights must name the same figures")
        if set(self.bands) != set(PRESSURE_FIGURES):
            raise ValueError(f"diversion bands must name exactly {list(PRESSURE_FIGURES)}")
        if not (
            0 <= self.advisory_exit <= self.advisory_enter <= self.close_enter
            and self.advisory_exit <= self.close_exit <= self.close_enter
        ):
            raise ValueError(
                "need advisory_exit <= advisory_enter <= close_enter, "
                "advisory_exit <= close_exit <= close_enter"
            )
        if self.destination_max_pressure > self.advisory_enter:
            raise ValueError("destination_max_pressure must not exceed advisory_enter")
        if self.load_balance_exit_share > self.load_balance_enter_share:
            raise ValueError("load_balance_exit_share must not exceed load_balance_enter_share")
        if self.ttl_minutes <= 0 or self.min_status_minutes < 0:
            raise ValueError("ttl_minutes must be positive, min_status_minutes not negative")
        if self.destination_min_ed_free < 1:
            # A destination takes ambulances only into a free ED place.
            raise ValueError("destination_min_ed_free must be at least 1")


@dataclass(frozen=True, slots=True)
class SurgeParameter:
    """One OPEL parameter: the values at which it reaches levels 2, 3 and 4, and its weight."""

    level2: float
    level3: float
    level4: float
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.level2 <= self.level3 <= self.level4:
            raise ValueError("surge thresholds must rise: level2 <= level3 <= level4")
        if self.weight < 0:
            raise ValueError("a surge weight must not be negative")

    def level(self, value: float) -> int:
        if value >= self.level4:
            return 4
        if value >= self.level3:
            return 3
        if value >= self.level2:
            return 2
        return 1


DEFAULT_CHECKLISTS: dict[int, tuple[str, ...]] = {
    1: (
        "Routine flow: daily bed meeting, discharge planning on every ward.",
        "Keep the live census feed and forecast current.",
    ),
    2: (
        "Bed meetings twice daily; site manager reviews ED and ward flow.",
        "Bring discharges forward: discharge lounge open, pharmacy and transport prioritised.",
        "Review tomorrow's elective list against the bed forecast.",
    ),
    3: (
        "Senior manager on call leads the site; bed meetings every 2 hours.",
        "Open escalation beds; move boarders to wards (full-capacity protocol, step 1).",
        "Postpone non-urgent electives after clinical review.",
        "Tell the regional operations center; ask for mutual aid if a resource is short.",
    ),
    4: (
        "Executive on call leads; hourly command meetings.",
        "Full-capacity protocol: boarders to ward corridors per policy; all escalation beds open.",
        "Cancel non-urgent electives; redeploy staff to the ED and wards.",
        "Regional operations center coordinates diversion or load-balancing and mutual aid.",
        "Consider declaring a critical incident.",
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SurgeConfig:
    """OPEL-style levels: each parameter → level 1-4 by its thresholds; score = weighted mean
    of (level - 1) over the parameters reported, as 0-100; score → level by ``score_bands``
    (the idea of the NHS OPEL framework 2023/24: parameters → score → level)."""

    parameters: dict[str, SurgeParameter] = field(
        default_factory=lambda: {
            "ed_occupancy": SurgeParameter(0.85, 0.95, 1.05, weight=2.0),
            "ed_boarding": SurgeParameter(2, 5, 10, weight=1.0),
            "longest_boarding_hours": SurgeParameter(2, 4, 12, weight=1.0),  # 12 h: NHS measure
            "over_4h_share": SurgeParameter(0.10, 0.20, 0.35, weight=1.0),  # 4-hour standard
            "handovers_over_30_min": SurgeParameter(1, 3, 6, weight=2.0),  # in the last hour
            "bed_occupancy": SurgeParameter(0.85, 0.92, 0.97, weight=1.5),
            "icu_occupancy": SurgeParameter(0.80, 0.90, 0.98, weight=1.0),
            "staffing_gap_share": SurgeParameter(0.05, 0.10, 0.20, weight=1.0),
        }
    )
    # Lower bounds of the score for levels 2, 3 and 4. With every parameter at level n the
    # score is 33.3·(n-1), which falls in level n's band.
    score_bands: tuple[float, float, float] = (20.0, 45.0, 70.0)
    # Escalate at once; de-escalate only after the score has been this far under the band
    # and the level has held this long (a level does not flap with the minute's noise).
    deescalate_margin: float = 5.0
    min_level_minutes: float = 60.0
    min_parameters: int = 3  # fewer reported parameters: no level (stated as "not enough data")
    checklists: dict[int, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_CHECKLISTS))

    def __post_init__(self) -> None:
        unknown = set(self.parameters) - set(SURGE_PARAMETERS)
        if unknown:
            raise ValueError(f"unknown surge parameters {sorted(unknown)}")
        a, b, c = self.score_bands
        if not 0 < a <= b <= c <= 100:
            raise ValueError("surge score bands must rise within 0-100")
        if set(self.checklists) != {1, 2, 3, 4}:
            raise ValueError("surge checklists must cover levels 1-4")


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Alert when ``figure`` is at or above (``op`` ">=") or at or below ("<=") ``value``."""

    figure: str
    op: str
    value: float
    severity: str = "warning"

    def __post_init__(self) -> None:
        if self.figure not in ALERT_FIGURES:
            raise ValueError(f"unknown alert figure {self.figure!r}")
        if self.op not in {">=", "<="}:
            raise ValueError("threshold op must be '>=' or '<='")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}")


@dataclass(frozen=True, slots=True)
class ForecastRule:
    """Alert when ``unit`` (ed/icu/ward) is forecast full (p50 free <= 0) within ``hours``."""

    unit: str
    hours: float
    severity: str = "warning"

    def __post_init__(self) -> None:
        if self.unit not in {"ed", "icu", "ward"}:
            raise ValueError("forecast rule unit must be ed, icu or ward")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}")


SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertConfig:
    thresholds: tuple[ThresholdRule, ...] = (
        ThresholdRule("ed_occupancy", ">=", 1.0, "warning"),
        ThresholdRule("offload_p90_minutes", ">=", 60.0, "critical"),  # twice APOT standard
        ThresholdRule("longest_boarding_minutes", ">=", 720.0, "critical"),  # 12-hour wait
        ThresholdRule("icu_occupancy", ">=", 0.95, "warning"),
    )
    forecasts: tuple[ForecastRule, ...] = (
        ForecastRule("icu", 6.0, "warning"),
        ForecastRule("ed", 3.0, "warning"),
    )
    stale_severity: str = "warning"
    diversion_severity: str = "warning"
    surge_severity: dict[int, str] = field(
        default_factory=lambda: {1: "info", 2: "info", 3: "warning", 4: "critical"}
    )
    # An open alert is not sent again while its condition holds; after this long it is sent
    # again as a reminder (de-duplication window).
    renotify_minutes: float = 240.0
    # Unacknowledged alerts escalate: after each of these delays (from raising), one level up
    # (1 = duty manager, 2 = on-call senior manager, 3 = executive on call).
    escalation_minutes: tuple[float, ...] = (15.0, 45.0, 120.0)
    escalate_severities: tuple[str, ...] = ("warning", "critical")


@dataclass(frozen=True, slots=True, kw_only=True)
class SharingConfig:
    """Suggested matches for resource requests between hospitals."""

    # Availability older than this is not offered as a match (beds move by the minute; staff
    # rosters, OR lists and equipment stocks by the shift or the day).
    max_age_minutes: dict[str, float] = field(
        default_factory=lambda: {
            "bed": 15.0,
            "staff": 12 * 60.0,
            "or_time": 12 * 60.0,
            "equipment": 24 * 60.0,
        }
    )
    # What a donor keeps for itself: beds by the surge it may meet, one of each device.
    reserve: dict[str, float] = field(
        default_factory=lambda: {"bed": 1.0, "staff": 0.0, "or_time": 0.0, "equipment": 1.0}
    )
    max_donor_level: int = 3  # a hospital at OPEL 4 is not asked to give
    max_travel_minutes: float = 120.0
    max_suggestions: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionConfig:
    diversion: DiversionConfig = field(default_factory=DiversionConfig)
    surge: SurgeConfig = field(default_factory=SurgeConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    sharing: SharingConfig = field(default_factory=SharingConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Defaults overlaid with ``data`` (as stored per region); unknown keys are refused."""
        return _build(cls, data, "")

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))

    def to_dict(self) -> dict[str, Any]:
        return typing.cast(dict[str, Any], _plain(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _build(cls: Any, data: Any, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise ValueError(f"{path or 'config'}: expected an object")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{path or 'config'}: unknown keys {sorted(unknown)}")
    default = cls() if all(_has_default(f) for f in dataclasses.fields(cls)) else None
    kwargs: dict[str, Any] = {}
    for name, raw in data.items():
        where = f"{path}.{name}" if path else name
        current = getattr(default, name) if default is not None else None
        kwargs[name] = _convert(hints[name], raw, where, current)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{path or 'config'}: {exc}") from None


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _convert(hint: Any, raw: Any, path: str, current: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in (Band, SurgeParameter, ThresholdRule, ForecastRule):
        # Small value types: written as a list ([0.8, 1.0]) or an object ({"lo": 0.8, ...}).
        try:
            return hint(*raw) if isinstance(raw, list) else hint(**raw)
        except TypeError as exc:
            raise ValueError(f"{path}: {exc}") from None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, raw, path)
    if origin is dict:
        key_type, value_type = args
        if not isinstance(raw, Mapping):
            raise ValueError(f"{path}: expected an object")
        # A partial dict overrides entries of the default one (e.g. one band of eight).
        merged: dict[Any, Any] = dict(current) if isinstance(current, dict) else {}
        for k, v in raw.items():
            merged[key_type(k)] = _convert(value_type, v, f"{path}.{k}", merged.get(key_type(k)))
        return merged
    if origin is tuple:
        if not isinstance(raw, list | tuple):
            raise ValueError(f"{path}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{i}]", None) for i, v in enumerate(raw))
        if len(raw) != len(args):
            raise ValueError(f"{path}: expected {len(args)} values")
        pairs = enumerate(zip(args, raw, strict=True))
        return tuple(_convert(a, v, f"{path}[{i}]", None) for i, (a, v) in pairs)
    if origin in (typing.Union, types.UnionType):
        return raw
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"{path}: expected a number")
        return float(raw)
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"{path}: expected an integer")
        return raw
    if isinstance(hint, type) and issubclass(hint, str):
        try:
            return hint(raw)
        except ValueError:
            raise ValueError(f"{path}: {raw!r} is not a valid value") from None
    return raw
