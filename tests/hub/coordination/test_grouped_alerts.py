"""Grouped alerts stored: one live threshold alert per hospital, rewritten only when its
figures or severity change, opened again when a figure joins after an acknowledgement,
escalating from then, resolved when no figure breaches, its history kept."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from hub.coordination import models as m
from hub.coordination import services

from .db import Site, World, calm, unit_state

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    monkeypatch.setattr(services, "_deliver_later", out.extend)
    return out


def _minute(w: World, at: datetime, **ed: Any) -> None:
    """Every site fresh at ``at``; H's ED full (105%) with ``ed``'s extra figures."""
    for s in (w.g, *w.others):
        calm(s, at=at)
    figures = {"offload_p90_minutes": 10, "longest_boarding_minutes": 0, **ed}
    unit_state(w.h.ed, at=at, occupied_beds=21, available_beds=0, ed_boarding=0, **figures)
    unit_state(w.h.icu, at=at, occupied_beds=5, available_beds=5)
    unit_state(w.h.ward, at=at, occupied_beds=70, available_beds=30)


def _threshold(site: Site) -> m.Alert:
    (alert,) = m.Alert.objects.filter(hospital=site.hospital, kind="threshold").exclude(
        state=m.Alert.State.RESOLVED
    )
    return alert


def _members(alert: m.Alert) -> list[str]:
    return [b["figure"] for b in alert.figures["breaches"]]


def test_a_grouped_alert_lives_through_ack_reopen_escalation_and_resolution(
    w: World, operator: Any, sends: list[tuple[int, int]], django_capture_on_commit_callbacks: Any
) -> None:
    def evaluate(at: datetime, **ed: Any) -> None:
        """A minute at ``at`` evaluated, its deliveries run (on commit) into ``sends``."""
        _minute(w, at, **ed)
        with django_capture_on_commit_callbacks(execute=True):
            services.region_evaluate(region=w.region, now=at)

    t0 = timezone.now()
    evaluate(t0)
    alert = _threshold(w.h)
    assert (alert.key, _members(alert), alert.severity) == (
        f"threshold:{w.h.hospital.site_code}",
        ["ed_occupancy"],
        "warning",
    )
    assert (alert.pk, 0) in sends
    services.alert_acknowledge(alert=alert, user=operator, note="seen")

    # The same figure a minute later: nothing written, nothing sent.
    t1 = t0 + timedelta(minutes=1)
    sends.clear()
    evaluate(t1)
    alert.refresh_from_db()
    assert alert.state == m.Alert.State.ACKNOWLEDGED
    assert alert.last_seen_at == t0  # not rewritten (seen at the region's evaluation)
    assert not [s for s in sends if s[0] == alert.pk]

    # Offload joins after the acknowledgement: the same alert, open again, sent again.
    t2 = t0 + timedelta(minutes=2)
    evaluate(t2, offload_p90_minutes=80)
    alert.refresh_from_db()
    assert _threshold(w.h).pk == alert.pk
    assert alert.state == m.Alert.State.OPEN
    assert (alert.opened_at, alert.raised_at, alert.escalation_level) == (t2, t0, 0)
    assert _members(alert) == ["ed_occupancy", "offload_p90_minutes"]
    assert alert.severity == "critical"
    assert (alert.pk, 0) in sends
    raised, acked, joined = alert.history
    assert raised["added"] == ["ed_occupancy"]
    assert (acked["acknowledged_by"], acked["breaching"], acked["note"]) == (
        operator.username,
        ["ed_occupancy"],
        "seen",
    )
    assert (joined["added"], joined["severity"], joined.get("reopened")) == (
        ["offload_p90_minutes"],
        "critical",
        True,
    )

    # Unacknowledged 16 minutes after it opened again (not after it was raised): level 1.
    t3 = t2 + timedelta(minutes=16)
    sends.clear()
    evaluate(t3, offload_p90_minutes=80)
    alert.refresh_from_db()
    assert alert.escalation_level == 1
    assert (alert.pk, 1) in sends

    # Acknowledged; offload clears: rewritten (one figure, warning), not opened again.
    services.alert_acknowledge(alert=alert, user=operator)
    t4 = t3 + timedelta(minutes=1)
    sends.clear()
    evaluate(t4)
    alert.refresh_from_db()
    assert alert.state == m.Alert.State.ACKNOWLEDGED
    assert (_members(alert), alert.severity) == (["ed_occupancy"], "warning")
    assert alert.history[-1]["removed"] == ["offload_p90_minutes"]
    assert not [s for s in sends if s[0] == alert.pk]

    # ED calm: nothing breaches, the alert resolves; its history stays.
    t5 = t4 + timedelta(minutes=1)
    _minute(w, t5)
    calm(w.h, at=t5)
    services.region_evaluate(region=w.region, now=t5)
    alert.refresh_from_db()
    assert alert.state == m.Alert.State.RESOLVED
    assert len(alert.history) == 5  # raised, ack, joined, ack, cleared
    assert not m.Alert.objects.filter(hospital=w.h.hospital, kind="threshold").exclude(pk=alert.pk)
