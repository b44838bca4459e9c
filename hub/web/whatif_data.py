"""Shapes a what-if run for the page: the result rows with readable metric names, and a
Chart.js config of each metric's change against the baseline with its 95% confidence
interval (floating bars for the interval, a point for the mean change)."""

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
        return f"{unit.replace('_', ' ')}: {what.replace('_', ' ')}"
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


def chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Change against the baseline in % of the baseline, per metric, with its 95% CI."""
    shown = [r for r in rows if r["pct"] is not None and r.get("ci_low") is not None]
    labels = [r["label"] for r in shown]

    def pct(r: dict[str, Any], key: str) -> float:
        return round(100 * r[key] / r["base"], 2)

    return {
        "type": "bar",
        "data": {
            "labels": labels,
            "datasets": [
                {
                    "type": "bar",
                    "label": "95% confidence interval of the change",
                    "data": [sorted((pct(r, "ci_low"), pct(r, "ci_high"))) for r in shown],
                    "backgroundColor": [
                        "rgba(86,180,233,0.55)" if r["significant"] else "rgba(153,153,153,0.45)"
                        for r in shown
                    ],
                    "borderColor": "#56b4e9",
                    "borderWidth": 1,
                    "barPercentage": 0.6,
                },
                {
                    "type": "line",
                    "label": "mean change",
                    "data": [round(r["pct"], 2) for r in shown],
                    "showLine": False,
                    "pointRadius": 6,
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
            "plugins": {
                "title": {"display": True, "text": "Change against the baseline (% of baseline)"}
            },
            "scales": {"x": {"title": {"display": True, "text": "% change vs baseline"}}},
        },
    }
