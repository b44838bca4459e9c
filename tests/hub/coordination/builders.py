"""Plain builders for the pure coordination tests: a calm, fresh hospital unless told
otherwise, so each test states only the figures its scenario is about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hub.coordination.config import DiversionConfig, RegionConfig
from hub.coordination.state import Forecast, ForecastPoint, HospitalState

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONFIG = RegionConfig()
DIVERSION: DiversionConfig = CONFIG.diversion


def hospital(code: str, **figures: Any) -> HospitalState:
    """A fresh hospital with a 20-space ED, half full, and nothing else reported."""
    base: dict[str, Any] = {"as_of": NOW, "ed_capacity": 20, "ed_occupied": 10}
    base.update(figures)
    return HospitalState(code=code, **base)


def at_pressure(code: str, pressure: float, **figures: Any) -> HospitalState:
    """A hospital whose only figure is ED occupancy, set so its pressure is ``pressure``
    (the occupancy band runs from 80% (score 0) to 100% (score 1); 1,000 spaces give the
    occupancy three decimals)."""
    occupied = round(1000 * (0.80 + 0.20 * pressure))
    return hospital(code, ed_capacity=1000, ed_occupied=occupied, **figures)


def ed_forecast(
    *points: tuple[float, float, float | None, float | None], age_minutes: float = 10
) -> Forecast:
    """(horizon hours, p50, p10, p90) of free ED places."""
    return Forecast(
        as_of=NOW - timedelta(minutes=age_minutes),
        ed=tuple(ForecastPoint(horizon_hours=h, p50=m, p10=lo, p90=hi) for h, m, lo, hi in points),
    )


def minutes_ago(m: float) -> datetime:
    return NOW - timedelta(minutes=m)
