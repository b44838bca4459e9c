"""Shapes a what-if run for the page: the result rows with readable metric names, and a
small Chart.js chart per headline metric: the baseline against the changed hospital, with
the 95% confidence interval of the change (a floating bar) and its mean (a point)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from governance.access import restrict
from hub.coordination import models as m

ACTION = "run_scenario"
METRICS: dict[str, str] = {
    "ed.wait_mean_h": "ED wait, mean (h)",
    "ed.wait_p95_h": "ED wait, p95 (h)",
    "ed.los_mean_h": "ED length of stay, mean (h)",
    "ed.los_p95_h": "ED length of stay, p95 (h)",
    "ed.within_4h": "ED within 4 h (share)",
    "ed.boarding_hours_per_day": "ED boarding (h/day)",
    "ed.offload_mean_min": "Ambulance offload, mean (min)",
    "or.utilisation": "OR utilisation (share)",
    "or.cases_done_per_day": "OR cases done per day",
    "or.cancelled_no_bed_per_day": "OR cancelled for want of a bed, per day",
    "or.overtime_h_per_session": "OR overtime (h/session)",
}


def label(metric: str) -> str:
    if metric in METRICS:
        return METRICS[metric]
    if metric.startswith("unit."):
        _, unit, what = metric.split(".", 2)
        unit_name = unit.upper() if unit == "icu" else unit.replace("_", " ").capitalize()
        what = {
            "occupancy_mean": "occupied beds, mean",
            "wait_mean_h": "wait for a bed, mean (h)",
        }.get(what, what.replace("_", " "))
        return f"{unit_name}: {what}"
    return metric


def runs(user: Any) -> QuerySet[m.ScenarioRun]:
    return restrict(m.ScenarioRun.objects.all(), user, ACTION).select_related("requested_by")


def table(run: m.ScenarioRun) -> list[dict[str, Any]]:
    out = []
    for row in run.result:
        base = row.get("base")
        out.append(
            {
                **row,
                "label": label(str(row.get("metric"))),
                "pct": None
                if base in (None, 0) or row.get("delta") is None
                else 100 * row["delta"] / base,
            }
        )
    return out


def charts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One small Chart.js chart per headline metric (they have different units): the
    baseline mean, and the changed hospital's mean with the 95% CI of the change laid on the
    baseline (paired replications: baseline + [ci_low, ci_high])."""
    out = []
    for i, r in enumerate(r for r in rows if r["metric"] in METRICS):
        base, lo, hi = r.get("base"), r.get("ci_low"), r.get("ci_high")
        if base is None or lo is None or hi is None or r.get("variant_mean") is None:
            continue
        colour = "#56b4e9" if r["significant"] else "#999999"
        config = {
            "type": "bar",
            "data": {
                "labels": ["Baseline", "With the change"],
                "datasets": [
                    {
                        "label": "mean",
                        "data": [round(base, 4), None],
                        "backgroundColor": "#5b6b7b",
                        "barPercentage": 0.7,
                        "grouped": False,
                        "order": 1,
                    },
                    {
                        "label": "95% CI",
                        "data": [None, [round(base + lo, 4), round(base + hi, 4)]],
                        "backgroundColor": colour,
                        "barPercentage": 0.7,
                        "grouped": False,
                        "order": 1,
                    },
                    {
                        # A point on the category row: {x: value, y: label}.
                        "type": "scatter",
                        "label": "mean with the change",
                        "data": [{"x": round(r["variant_mean"], 4), "y": "With the change"}],
                        "order": 0,  # lower orders are drawn on top: the point over the bar
                        "pointRadius": 7,
                        "pointStyle": "rectRot",
                        "borderColor": "#e69f00",
                        "backgroundColor": "#e69f00",
                    },
                ],
            },
            "options": {
                "indexAxis": "y",
                "responsive": True,
                "maintainAspectRatio": False,
                "animation": False,
                "plugins": {"legend": {"display": False}},
                "scales": {"x": {"title": {"display": True, "text": r["label"]}}},
            },
        }
        out.append({"id": f"whatif-chart-{i}", "row": r, "config": config})
    return out
