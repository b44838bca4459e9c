"""Alert rules (thresholds, forecasts, stale feeds, diversion and surge changes) and the plan
that de-duplicates, resolves, reminds and escalates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.coordination.alerts_rules import (
    AlertCandidate,
    AlertGroup,
    Breach,
    OpenAlert,
    breach_words,
    escalation_level,
    group_breaches,
    plan_alerts,
)
from hub.coordination.config import AlertConfig, ForecastRule, ThresholdRule
from hub.coordination.region import NO_PRIORS, evaluate_region
from hub.coordination.state import Forecast, ForecastPoint

from .builders import CONFIG, NOW, at_pressure, hospital, minutes_ago

ALERTS = CONFIG.alerts


def _alerts(states, travel=None):
    ev = evaluate_region(states, travel or {}, NO_PRIORS, NOW, CONFIG)
    return {a.key: a for a in ev.alerts}


def test_icu_forecast_full_within_six_hours_raises_the_forecast_alert() -> None:
    icu = (
        ForecastPoint(horizon_hours=2, p50=2, p10=0, p90=4),
        ForecastPoint(horizon_hours=4, p50=1, p10=-1, p90=3),
        ForecastPoint(horizon_hours=6, p50=0, p10=-2, p90=2),
    )
    h = hospital("H", forecast=Forecast(as_of=minutes_ago(20), icu=icu))
    alerts = _alerts([h])
    a = alerts["forecast:H"]
    assert a.title == "ICU at H forecast full in 6 h (p50)"
    assert a.message == (
        "At H: ICU forecast full in 6 h (p50 0 free, 80% interval -2 to 2 free). "
        "Forecast made 20 min ago."
    )
    assert a.figures["breaches"] == [
        {
            "unit": "icu",
            "horizon_hours": 6,
            "within_hours": 6.0,
            "p50": 0,
            "p10": -2,
            "p90": 2,
            "severity": "warning",
        }
    ]
    assert a.condition is True
    assert a.severity == "warning"


def test_an_old_forecast_raises_no_forecast_alert() -> None:
    icu = (ForecastPoint(horizon_hours=1, p50=-1),)
    h = hospital("H", forecast=Forecast(as_of=minutes_ago(120), icu=icu))
    assert "forecast:H" not in _alerts([h])


def test_thresholds_raise_for_fresh_hospitals_only() -> None:
    hot = hospital("A", ed_capacity=20, ed_occupied=21, offload_p90_minutes=75, offload_as_of=NOW)
    stale = hospital("B", ed_capacity=20, ed_occupied=25, as_of=minutes_ago(30))
    alerts = _alerts([hot, stale, hospital("C")])
    a = alerts["threshold:A"]  # one alert for both figures, the higher severity
    assert (
        a.title == "2 thresholds breached at A: ED occupancy 105%, ambulance offload p90 1 h 15 min"
    )
    assert a.severity == "critical"
    assert a.message == (
        "At A: ED occupancy 105% (alert >= 100%, warning); "
        "ambulance offload p90 1 h 15 min (alert >= 1 h, critical)."
    )
    assert [
        (b["figure"], b["value"], b["threshold"], b["severity"]) for b in a.figures["breaches"]
    ] == [
        ("ed_occupancy", 1.05, 1.0, "warning"),
        ("offload_p90_minutes", 75.0, 60.0, "critical"),
    ]
    assert "threshold:B" not in alerts
    assert alerts["stale:B"].message == (
        "B: census 30 min old (limit 15). It is not used as a destination."
    )
    assert not [k for k in alerts if k.endswith(":C")]


def test_diversion_and_surge_changes_are_events_that_wait_for_an_ack() -> None:
    h = at_pressure("H", 0.9)
    calm = [at_pressure(f"G{i}", 0.1) for i in range(3)]
    alerts = _alerts([h, *calm], {"H": {"G0": 10}})
    div = alerts["diversion:H:closed"]
    assert div.condition is False
    assert div.title == "H recommended closed to ambulances (was open)"
    assert div.message.startswith("Close ED to general ambulances at H; send them to G0.")


def test_a_custom_rule_set_is_used() -> None:
    cfg = AlertConfig(
        thresholds=(ThresholdRule("ed_boarding", ">=", 3, "critical"),),
        forecasts=(ForecastRule("ed", 2.0, "info"),),
    )
    config = CONFIG.__class__(diversion=CONFIG.diversion, surge=CONFIG.surge, alerts=cfg)
    h = hospital("H", ed_boarding=3)
    ev = evaluate_region([h], {}, NO_PRIORS, NOW, config)
    (a,) = [a for a in ev.alerts if isinstance(a, AlertGroup) and a.kind == "threshold"]
    assert a.key == "threshold:H"
    assert a.members == {"ed_boarding": "critical"}
    assert a.title == "1 threshold breached at H: ED boarding 3"


# --- the plan ---------------------------------------------------------------------------------


def _candidate(key: str, severity: str = "warning", condition: bool = True) -> AlertCandidate:
    return AlertCandidate(
        key=key,
        kind=key.split(":")[0],
        severity=severity,
        hospital="H",
        title=key,
        message=key,
        condition=condition,
    )


def _open(key: str, raised: float, notified: float | None = None, **kw: object) -> OpenAlert:
    base: dict[str, object] = {
        "key": key,
        "raised_at": minutes_ago(raised),
        "last_notified_at": minutes_ago(notified if notified is not None else raised),
        "condition": True,
        "severity": "warning",
    }
    base.update(kw)
    return OpenAlert(**base)  # type: ignore[arg-type]


def test_an_open_alert_is_not_raised_twice() -> None:
    plan = plan_alerts(
        [_candidate("threshold:ed_occupancy:H"), _candidate("stale:K")],
        {"threshold:ed_occupancy:H": _open("threshold:ed_occupancy:H", 5)},
        NOW,
        ALERTS,
    )
    assert [c.key for c in plan.raise_new] == ["stale:K"]
    assert [c.key for c in plan.refresh] == ["threshold:ed_occupancy:H"]
    assert plan.remind == ()


def test_duplicate_candidates_collapse_to_the_most_severe() -> None:
    plan = plan_alerts(
        [_candidate("x:H", "info"), _candidate("x:H", "critical"), _candidate("x:H", "warning")],
        {},
        NOW,
        ALERTS,
    )
    assert [c.severity for c in plan.raise_new] == ["critical"]


def test_a_condition_that_cleared_resolves_but_an_event_waits_for_its_ack() -> None:
    open_alerts = {
        "stale:H": _open("stale:H", 30),
        "diversion:H:closed": _open("diversion:H:closed", 30, condition=False),
    }
    plan = plan_alerts([], open_alerts, NOW, ALERTS)
    assert plan.resolve == ("stale:H",)


def test_unacknowledged_alerts_escalate_step_by_step_and_acknowledged_ones_do_not() -> None:
    # Escalation after 15, 45 and 120 minutes from raising.
    open_alerts = {
        "a": _open("a", 16, notified=16),
        "b": _open("b", 50, notified=50, escalation_level=1),
        "c": _open("c", 130, notified=10, escalation_level=3),
        "d": _open("d", 200, notified=200, acknowledged=True),
        "e": _open("e", 200, notified=200, severity="info"),
    }
    cands = [_candidate(k) for k in open_alerts]
    plan = plan_alerts(cands, open_alerts, NOW, ALERTS)
    assert dict(plan.escalate) == {"a": 1, "b": 2}
    assert "d" not in plan.remind


def test_a_long_open_unacknowledged_alert_is_sent_again_as_a_reminder() -> None:
    open_alerts = {"a": _open("a", 300, notified=241), "b": _open("b", 300, notified=100)}
    plan = plan_alerts([_candidate("a"), _candidate("b")], open_alerts, NOW, ALERTS)
    assert plan.remind == ("a",)


def test_the_plan_escalates_and_reminds_exactly_at_the_limits() -> None:
    """The plan compares raising and notification times with cut-offs; the same decisions
    as the ages: ``escalation_level`` and ``now - last_notified >= renotify``, at every
    minute around the limits (and a second either side)."""
    limits = sorted({*ALERTS.escalation_minutes, ALERTS.renotify_minutes})
    ages = sorted({a + d for m in limits for a in (m - 1, m, m + 1) for d in (-1 / 60, 0, 1 / 60)})
    open_alerts = {
        f"k{i}": _open(f"k{i}", age, age, severity="critical") for i, age in enumerate(ages)
    }
    plan = plan_alerts([_candidate(k) for k in open_alerts], open_alerts, NOW, ALERTS)
    escalated = dict(plan.escalate)
    for key, a in open_alerts.items():
        expected = escalation_level(a.raised_at, NOW, ALERTS)
        assert escalated.get(key, 0) == expected, (key, NOW - a.raised_at)
        assert (key in plan.remind) == (NOW - a.last_notified_at >= _renotify()), key
    assert escalated  # the limits were crossed somewhere
    assert plan.remind


def _renotify() -> timedelta:
    return timedelta(minutes=ALERTS.renotify_minutes)


# --- grouped alerts (one per hospital and kind) -----------------------------------------------


def _breach(code: str, name: str, severity: str = "warning", value: float = 1.0) -> Breach:
    return Breach("threshold", name, severity, code, value, 0.5, ">=")


def _group(code: str, **members: str) -> AlertGroup:
    (g,) = group_breaches(_breach(code, n, s) for n, s in members.items())
    return g


def _live(g: AlertGroup, raised: float = 30, **kw: Any) -> OpenAlert:
    return _open(g.key, raised, members=g.members, severity=g.severity, **kw)


def test_breaches_group_into_one_alert_per_hospital_and_kind() -> None:
    breaches = [
        _breach("H", "ed_occupancy"),
        _breach("K", "ed_occupancy"),
        _breach("H", "icu_occupancy", "critical"),
        _breach("H", "ed_occupancy", "critical"),  # a second rule on the same figure
        Breach("forecast", "icu", "warning", "H", 4.0, 6.0, "<="),
    ]
    groups = {g.key: g for g in group_breaches(breaches)}
    assert sorted(groups) == ["forecast:H", "threshold:H", "threshold:K"]
    assert groups["threshold:H"].members == {
        "ed_occupancy": "critical",
        "icu_occupancy": "critical",
    }
    assert groups["threshold:H"].severity == "critical"
    assert groups["threshold:K"].severity == "warning"
    assert groups["forecast:H"].members == {"icu": "warning"}


def test_an_unchanged_group_is_not_rewritten() -> None:
    g = _group("H", ed_occupancy="warning", icu_occupancy="warning")
    plan = plan_alerts([g], {g.key: _live(g)}, NOW, ALERTS)
    assert plan.change == ()
    assert plan.raise_new == ()
    assert plan.resolve == ()


def test_a_new_figure_after_acknowledgement_notifies_again_and_reopens() -> None:
    before = _group("H", ed_occupancy="warning")
    live = _live(before, raised=200, acknowledged=True, escalation_level=0)
    now = _group("H", ed_occupancy="warning", icu_occupancy="warning")
    plan = plan_alerts([now], {now.key: live}, NOW, ALERTS)
    (ch,) = plan.change
    assert (ch.added, ch.removed, ch.notify, ch.reopen) == (("icu_occupancy",), (), True, True)
    assert plan.escalate == ()  # its clock restarts now, not from 200 minutes ago


def test_a_higher_severity_after_acknowledgement_reopens() -> None:
    before = _group("H", ed_occupancy="warning")
    live = _live(before, acknowledged=True)
    now = _group("H", ed_occupancy="critical")
    (ch,) = plan_alerts([now], {now.key: live}, NOW, ALERTS).change
    assert (ch.added, ch.notify, ch.reopen) == ((), True, True)
    assert ch.group.severity == "critical"


def test_a_figure_clearing_or_a_lower_severity_does_not_reopen() -> None:
    before = _group("H", ed_occupancy="warning", offload_p90_minutes="critical")
    live = _live(before, acknowledged=True)
    now = _group("H", ed_occupancy="warning")
    plan = plan_alerts([now], {now.key: live}, NOW, ALERTS)
    (ch,) = plan.change  # rewritten: one figure fewer, severity down
    assert (ch.removed, ch.notify, ch.reopen) == (("offload_p90_minutes",), False, False)
    assert ch.group.severity == "warning"
    assert plan.resolve == ()


def test_a_new_figure_in_an_open_group_notifies_and_keeps_escalating() -> None:
    before = _group("H", ed_occupancy="warning")
    live = _live(before, raised=50, notified=50, escalation_level=1)
    now = _group("H", ed_occupancy="warning", icu_occupancy="warning")
    plan = plan_alerts([now], {now.key: live}, NOW, ALERTS)
    (ch,) = plan.change
    assert (ch.notify, ch.reopen) == (True, False)
    assert dict(plan.escalate) == {now.key: 2}  # unacknowledged for 50 min: level 2


def test_a_group_resolves_when_no_figure_breaches() -> None:
    g = _group("H", ed_occupancy="warning")
    plan = plan_alerts([], {g.key: _live(g, acknowledged=True)}, NOW, ALERTS)
    assert plan.resolve == (g.key,)


def test_a_grouped_alerts_members_read_as_words() -> None:
    assert (
        breach_words({"figure": "ed_occupancy", "value": 1.03, "op": ">=", "threshold": 1.0})
        == "ED occupancy 103% (alert >= 100%)"
    )
    assert (
        breach_words({"figure": "offload_p90_minutes", "value": 85, "op": ">=", "threshold": 60})
        == "ambulance offload p90 1 h 25 min (alert >= 1 h)"
    )
    assert (
        breach_words({"unit": "icu", "horizon_hours": 5.5, "within_hours": 6})
        == "ICU full in 5.5 h (p50)"
    )
