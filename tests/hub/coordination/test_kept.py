"""The kept copy of what the last evaluation stored (``kept``): the next minute diffs against
it instead of reading the rows back. It must mirror the database exactly, be dropped when
someone else wrote, and leave every service behaviour as it was.

The tests run inside a transaction that never commits, so the copy is kept at once here
(``keep_at_once``) instead of on commit; the service scenarios of ``test_services`` are
collected again below and run with the copy in use from their second evaluation on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from hub.coordination import kept, selectors, services
from hub.coordination import models as m
from hub.coordination.alerts_rules import GROUPED_KINDS, members_of
from hub.coordination.serializers import AlertSerializer

from .db import World, calm, saturated, unit_state
from .test_services import (  # noqa: F401  (collected again: run with the kept copy in use)
    test_a_decision_in_force_is_not_asked_again,
    test_a_destination_whose_feed_goes_stale_is_still_excluded,
    test_a_renewal_with_a_changed_value_rewrites_words_and_figures,
    test_a_renewal_with_unchanged_figures_keeps_its_words_and_stays_unexpired,
    test_alerts_are_raised_once_acknowledged_and_resolved,
    test_an_evaluation_recommends_and_renews_the_same_advice_in_place,
    test_an_overridden_advice_is_not_repeated_while_the_override_stands,
    test_an_unacknowledged_alert_escalates_and_mails_the_next_level,
    test_decisions_expire_unless_renewed_and_can_be_ended,
    test_new_advice_supersedes_the_pending_one_in_the_same_evaluation,
    test_renewed_advice_carries_the_new_evaluation_time_and_expiry,
    test_surge_changes_are_recorded_with_causes_and_checklist,
    test_when_the_figures_clear_the_advice_is_withdrawn,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def keep_at_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Keep the copy when the evaluation ends (the test transaction never commits); record
    whether each evaluation found one to use."""
    used: list[bool] = []
    take = kept.take

    def keep(region_id: int, copy: kept.Kept) -> None:
        kept._KEPT[kept._key(region_id)] = copy

    def take_and_note(region_id: int, current: Any) -> kept.Kept | None:
        copy = take(region_id, current)
        used.append(copy is not None)
        return copy

    kept.forget()
    monkeypatch.setattr(kept, "keep_on_commit", keep)
    monkeypatch.setattr(kept, "take", take_and_note)
    yield used
    kept.forget()


def _stored(w: World) -> dict[str, Any]:
    """What the database holds for the region, as the kept copy keeps it."""
    statuses = {
        row[0]: row[1:]
        for row in m.HospitalStatus.objects.filter(hospital__region=w.region).values_list(
            "hospital_id", *services._STATUS_FIELDS
        )
    }
    words = ("score", "routes", "kept", "explanation", "figures", "no_forecast")
    pending = m.DiversionRecommendation.objects.filter(
        region=w.region, state=m.DiversionRecommendation.State.PENDING
    )
    advice = {
        pk: (m.recommendation_signature(mode, status, rest[1]), tuple(rest))
        for pk, mode, status, *rest in pending.values_list("pk", "mode", "status", *words)
    }
    alerts = {
        pk: members_of(figures) if kind in GROUPED_KINDS else (title, message, figures)
        for pk, kind, title, message, figures in m.Alert.objects.filter(region=w.region)
        .exclude(state=m.Alert.State.RESOLVED)
        .values_list("pk", "kind", "title", "message", "figures")
    }
    return {
        "statuses": statuses,
        "advice": advice,
        "alerts": alerts,
    }


def test_the_kept_copy_mirrors_what_the_database_holds(w: World, keep_at_once: list[bool]) -> None:
    unit_state(w.g.ed, at=timezone.now() - timedelta(minutes=40), occupied_beds=10)  # stale
    start = timezone.now()
    for minute in range(4):
        at = start + timedelta(minutes=minute)
        if minute == 2:
            saturated(w.g, at=at)  # G fresh again and saturated: new alerts, new advice
            calm(w.others[0], at=at)
        services.region_evaluate(region=w.region, now=at)
        copy = kept._KEPT[kept._key(w.region.pk)]
        db = _stored(w)
        assert copy.statuses == db["statuses"]
        advice = {pk: (sig, tuple(words)) for pk, (sig, words, _key) in copy.advice.items()}
        assert advice == db["advice"]
        # Every live alert the evaluation refreshed or raised is kept with its words.
        assert {pk: copy.alert_words[pk] for pk in copy.alert_words} == {
            pk: db["alerts"][pk] for pk in copy.alert_words
        }
        assert set(copy.alert_words) <= set(db["alerts"])
    assert keep_at_once == [False, True, True, True]
    assert m.DiversionRecommendation.objects.filter(region=w.region).exists()
    assert m.Alert.objects.filter(region=w.region).exists()


def test_the_copy_is_not_used_after_another_write_of_the_region(
    w: World, keep_at_once: list[bool]
) -> None:
    services.region_evaluate(region=w.region)
    later = timezone.now() + timedelta(minutes=1)
    # Another worker's evaluation (or any write of the region's state row) since.
    m.RegionState.objects.filter(region=w.region).update(evaluated_at=later)
    services.region_evaluate(region=w.region, now=later + timedelta(minutes=1))
    assert keep_at_once == [False, False]
    # That evaluation kept a copy again: the next minute uses it.
    services.region_evaluate(region=w.region, now=later + timedelta(minutes=2))
    assert keep_at_once[-1] is True


def test_an_alert_acknowledged_between_minutes_is_neither_reminded_nor_escalated(
    w: World, operator: Any, keep_at_once: list[bool]
) -> None:
    services.region_evaluate(region=w.region)
    alert = m.Alert.objects.filter(region=w.region, severity="critical", condition=True).first()
    assert alert is not None
    services.alert_acknowledge(alert=alert, user=operator, note="on it")
    later = timezone.now() + timedelta(minutes=40)  # past the escalation and reminder delays
    saturated(w.h, at=later)
    for s in (w.g, *w.others):
        calm(s, at=later)
    summary = services.region_evaluate(region=w.region, now=later)
    alert.refresh_from_db()
    assert keep_at_once == [False, True]
    assert alert.state == m.Alert.State.ACKNOWLEDGED
    assert alert.escalation_level == 0
    assert alert.last_notified_at < later
    assert alert.seen_at(later) == later  # still true: seen at this evaluation
    assert summary.alerts_escalated == 0 or alert.escalated_at is None


def test_a_live_condition_alert_is_last_seen_at_the_last_evaluation_until_it_clears(
    w: World,
) -> None:
    t0 = timezone.now()
    unit_state(w.g.ed, at=t0 - timedelta(minutes=40), occupied_beds=10)  # stale
    services.region_evaluate(region=w.region, now=t0)
    key = f"stale:{w.g.hospital.site_code}"
    t1 = t0 + timedelta(minutes=1)
    services.region_evaluate(region=w.region, now=t1)
    # Alerts whose words did not change were not rewritten: their stored sighting is t0.
    unchanged = m.Alert.objects.filter(region=w.region, condition=True, last_seen_at=t0)
    assert unchanged.exclude(state=m.Alert.State.RESOLVED).exists()
    listed = selectors.alerts(queryset=m.Alert.objects.filter(key=key), live=True)
    [shown] = AlertSerializer(listed, many=True).data
    assert parse_datetime(shown["last_seen_at"]) == t1
    alert = m.Alert.objects.get(key=key)
    assert AlertSerializer(alert).data["last_seen_at"] == shown["last_seen_at"]  # not annotated
    t2 = t1 + timedelta(minutes=1)
    calm(w.g, at=t2)
    services.region_evaluate(region=w.region, now=t2)
    alert.refresh_from_db()
    assert (alert.state, alert.resolved_at) == (m.Alert.State.RESOLVED, t2)
    assert alert.last_seen_at == t1  # true at the evaluation before the one that cleared it
    assert parse_datetime(AlertSerializer(alert).data["last_seen_at"]) == t1


def test_a_changed_configuration_rebuilds_the_words_its_inputs_key_would_keep(
    w: World, operator: Any, keep_at_once: list[bool]
) -> None:
    """The kept inputs keys hold only under the configuration they were made with: a wider
    boarding band lowers H's pressure, so its score and words change although none of its
    figures did (the same advice, renewed in place, with the kept copy in use)."""
    t0 = timezone.now()
    services.region_evaluate(region=w.region, now=t0)
    pending = {"hospital": w.h.hospital, "state": m.DiversionRecommendation.State.PENDING}
    first = m.DiversionRecommendation.objects.get(**pending)
    services.region_settings_set(
        region=w.region,
        config={"diversion": {"bands": {"ed_boarding": {"lo": 0.0, "hi": 1.0}}}},
        user=operator,
    )
    t1 = t0 + timedelta(minutes=1)
    saturated(w.h, at=t1)
    for s in (w.g, *w.others):
        calm(s, at=t1)
    services.region_evaluate(region=w.region, now=t1)
    assert keep_at_once[-1] is True
    renewed = m.DiversionRecommendation.objects.get(**pending)
    assert renewed.pk == first.pk
    assert renewed.score is not None
    assert first.score is not None
    assert renewed.score < first.score
    assert renewed.explanation != first.explanation
