"""Chart.js configurations of the board and hospital pages, as plain JSON-able dicts.

The page hands each one to ``<canvas data-chart>`` through ``json_script`` (app.js draws
it): no function can travel that way, so every option here is data. Past points sit on the
hour grid of the history; forecast horizons are placed on the same grid after "now", and
the forecast lines start at the last observed value so the band visibly grows out of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hub.web.board_data import ForecastBand, local_time

INFO = "#6cb4ff"
MUTED = "#a3b1bf"
BAND = "rgba(108, 180, 255, 0.22)"
PALETTE = ("#6cb4ff", "#f4b400", "#2fbf71", "#ff8ad8", "#ff5d5d", "#c39bff", "#5fd7d0")


def _future_axis(forecast: Sequence[ForecastBand]) -> list[int]:
    if not forecast:
        return []
    last = int(max(b.horizon_hours for b in forecast))
    return list(range(1, last + 1))


def _labels(
    times: Sequence[datetime], tz: str, future: Sequence[int], fmt: str = "%H:%M"
) -> list[str]:
    return [local_time(t, tz).strftime(fmt) for t in times] + [f"+{h} h" for h in future]


def _last_value(values: Sequence[float | None]) -> float | None:
    return values[-1] if values else None


def _forecast_datasets(
    forecast: Sequence[ForecastBand],
    past: int,
    future: Sequence[int],
    anchor: float | None,
    *,
    thin: bool,
) -> list[dict[str, Any]]:
    by_h = {int(b.horizon_hours): b for b in forecast if float(b.horizon_hours).is_integer()}

    def series(pick: str) -> list[float | None]:
        head: list[float | None] = [None] * past
        if past:
            head[-1] = anchor
        tail = [
            getattr(by_h[h], pick) if h in by_h else None  # gaps: spanGaps draws across
            for h in future
        ]
        return head + tail

    common = {"pointRadius": 0, "spanGaps": True, "cubicInterpolationMode": "monotone"}
    return [
        {**common, "label": "Forecast 10th percentile", "data": series("p10"), "borderWidth": 0},
        {
            **common,
            "label": "Forecast 80% interval",
            "data": series("p90"),
            "borderWidth": 0,
            "backgroundColor": BAND,
            "fill": "-1",
        },
        {
            **common,
            "label": "Forecast median",
            "data": series("p50"),
            "borderColor": MUTED,
            "borderDash": [4, 3],
            "borderWidth": 1.5 if thin else 2,
        },
    ]


def free_beds_chart(
    times: Sequence[datetime],
    free: Sequence[float | None],
    forecast: Sequence[ForecastBand],
    tz: str,
    *,
    sparkline: bool = True,
) -> dict[str, Any]:
    """Free places over the past hours, then the forecast median and 80% band."""
    future = _future_axis(forecast)
    past = len(times)
    datasets: list[dict[str, Any]] = [
        {
            "label": "Free beds",
            "data": list(free) + [None] * len(future),
            "borderColor": INFO,
            "backgroundColor": INFO,
            "borderWidth": 2,
            "pointRadius": 0,
            "cubicInterpolationMode": "monotone",
            "spanGaps": False,
        }
    ]
    if forecast:
        datasets += _forecast_datasets(forecast, past, future, _last_value(free), thin=sparkline)
    options: dict[str, Any] = {
        "animation": False,
        "responsive": True,
        "maintainAspectRatio": False,
        "interaction": {"mode": "index", "intersect": False},
        "plugins": {"legend": {"display": not sparkline}, "tooltip": {"enabled": not sparkline}},
        "scales": {
            "x": {"display": not sparkline, "ticks": {"maxTicksLimit": 12}},
            "y": {"display": not sparkline, "beginAtZero": True, "grace": "10%"},
        },
    }
    if sparkline:
        options["layout"] = {"padding": 2}
        options["events"] = []  # no hover work for fifty small charts
    return {
        "type": "line",
        "data": {"labels": _labels(times, tz, future), "datasets": datasets},
        "options": options,
    }


def lines_chart(
    times: Sequence[datetime],
    series: Sequence[tuple[str, Sequence[float | None]]],
    tz: str,
    *,
    y_title: str,
    y_max: float | None = None,
) -> dict[str, Any]:
    """Several labelled series over the same hours (the hospital page's timelines)."""
    datasets = [
        {
            "label": label,
            "data": list(values),
            "borderColor": PALETTE[i % len(PALETTE)],
            "backgroundColor": PALETTE[i % len(PALETTE)],
            "borderWidth": 2,
            "pointRadius": 0,
            "cubicInterpolationMode": "monotone",
            "spanGaps": False,
        }
        for i, (label, values) in enumerate(series)
    ]
    span = (times[-1] - times[0]).total_seconds() if times else 0
    label_format = "%a %H:%M" if span > 86_400 else "%H:%M"
    y: dict[str, Any] = {"beginAtZero": True, "title": {"display": True, "text": y_title}}
    if y_max is not None:
        y["suggestedMax"] = y_max
    return {
        "type": "line",
        # More than a day: the hour alone would repeat, so the weekday comes with it.
        "data": {"labels": _labels(times, tz, [], fmt=label_format), "datasets": datasets},
        "options": {
            "animation": False,
            "responsive": True,
            "maintainAspectRatio": False,
            "interaction": {"mode": "index", "intersect": False},
            "scales": {"x": {"ticks": {"maxTicksLimit": 12}}, "y": y},
        },
    }


def spark_summary(
    free: Sequence[float | None], forecast: Sequence[ForecastBand], hours: int
) -> str:
    """The sparkline in words, for screen readers (the canvas is an image)."""
    seen = [v for v in free if v is not None]
    parts = []
    if seen:
        parts.append(
            f"Free beds over the last {hours} hours: from {seen[0]:.0f} to {seen[-1]:.0f}, "
            f"lowest {min(seen):.0f}"
        )
    else:
        parts.append(f"No free-bed figures in the last {hours} hours")
    if forecast:
        last = forecast[-1]
        band = (
            f" (80% interval {last.p10:.0f} to {last.p90:.0f})"
            if last.p10 is not None and last.p90 is not None
            else ""
        )
        parts.append(f"forecast in {last.horizon_hours:g} h: {last.p50:.0f}{band}")
    return "; ".join(parts) + "."
