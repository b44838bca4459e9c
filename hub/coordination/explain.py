"""Explanations are made of the numbers used: small formatters shared by the rules."""

from __future__ import annotations

import math

from hub.coordination.state import Forecast, ForecastPoint


def duration(minutes: float) -> str:
    """'5 h 10 min', '45 min', '2 h'."""
    total = round(minutes)
    hours, mins = divmod(total, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    if hours:
        return f"{hours} h"
    return f"{mins} min"


def percent(ratio: float) -> str:
    return f"{round(ratio * 100)}%"


def count(value: float) -> str:
    """Whole numbers without a decimal point; forecasts are medians of whole places."""
    return str(round(value)) if not math.isnan(value) else "?"


def hours(value: float) -> str:
    return f"{value:g} h"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def full_run(points: tuple[ForecastPoint, ...], lo: float, hi: float) -> tuple[float, float] | None:
    """The first stretch of the window [lo, hi] hours in which the forecast median of free
    places is at or below zero: (from_hours, to_hours), or None if it never is."""
    start: float | None = None
    end = 0.0
    for p in sorted(points, key=lambda q: q.horizon_hours):
        if p.horizon_hours < lo or p.horizon_hours > hi:
            continue
        if p.p50 <= 0:
            if start is None:
                start = p.horizon_hours
            end = p.horizon_hours
        elif start is not None:
            break
    return None if start is None else (start, end)


def describe_full(points: tuple[ForecastPoint, ...], lo: float, hi: float, what: str) -> str:
    """'forecast full for the next 3 h (p50)' or 'forecast full in 4 h (p50)'."""
    run = full_run(points, lo, hi)
    if run is None:
        return ""
    start, end = run
    first = min((p.horizon_hours for p in points), default=start)
    if start <= first:
        return f"{what}forecast full for the next {hours(end)} (p50)"
    return f"{what}forecast full in {hours(start)} (p50)"


def point_at(points: tuple[ForecastPoint, ...], horizon: float) -> ForecastPoint | None:
    """The forecast point nearest ``horizon`` hours (ties: the earlier)."""
    if not points:
        return None
    return min(points, key=lambda p: (abs(p.horizon_hours - horizon), p.horizon_hours))


def describe_free_at(forecast: Forecast | None, horizon: float) -> str:
    """'forecast 3 free in 2 h (80% interval 1–6)'; '' when there is no ED forecast."""
    if forecast is None:
        return ""
    p = point_at(forecast.ed, horizon)
    if p is None:
        return ""
    text = f"forecast {count(max(p.p50, 0.0))} free in {hours(p.horizon_hours)}"
    if p.p10 is not None and p.p90 is not None:
        text += f" (80% interval {count(max(p.p10, 0.0))}–{count(max(p.p90, 0.0))})"
    return text
