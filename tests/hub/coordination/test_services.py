"""The Django layer: live census in, recommendations, decisions, directives, surge history,
alerts and resource requests out (real PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from governance.models import AuditEvent
from hub.census.selectors import live_hospitals
from hub.coordination import inputs, services
from hub.coordination import models as m
from hub.coordination.config import RegionConfig
from hub.coordination.delivery import deliver
from hub.registry.models import Directive, Hospital

from .db import World, calm, saturated, unit_state

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _pending(w: World) -> m.DiversionRecommendation:
    return m.DiversionRecommendation.objects.get(
        hospital=w.h.hospital, state=m.DiversionRecommendation.State.PENDING
    )


def test_the_adapter_reads_the_live_census_as_the_rules_expect(w: World) -> None:
    now = timezone.now()
    states = {s.code: s for s in inputs.region_states(w.region, now)}
    h = states[w.h.hospital.site_code]
    assert (h.ed_capacity, h.ed_occupied, h.ed_boarding) == (20, 21, 6)
    assert (h.icu_capacity, h.icu_occupied) == (10, 10)
    assert h.offload_p90_minutes == 80
    assert h.feed_stale is False
    assert h.forecast is None  # no forecast from the site yet: flagged "no forecast"
    travel = inputs.travel_times(w.region)
    assert travel[w.h.hospital.site_code][w.g.hospital.site_code] == 12


def test_an_evaluation_recommends_and_renews_the_same_advice_in_place(w: World) -> None:
    summary = services.region_evaluate(region=w.region)
    assert summary.recommendations_new == 1
    rec = _pending(w)
    assert rec.status == m.DiversionStatus.CLOSED
    assert rec.routes[0]["destination"] == w.g.hospital.site_code
    assert rec.no_forecast is True
    assert "no forecast" in rec.explanation
    status = m.HospitalStatus.objects.get(hospital=w.h.hospital)
    assert status.diversion_status == m.DiversionStatus.CLOSED
    assert status.surge_level is not None

    again = services.region_evaluate(region=w.region, now=timezone.now() + timedelta(minutes=1))
    assert (again.recommendations_new, again.recommendations_renewed) == (0, 1)
    assert _pending(w).pk == rec.pk
    state = m.RegionState.objects.get(region=w.region)
    assert state.evaluated_at is not None
    assert state.mode == m.Mode.NORMAL


def test_new_advice_supersedes_the_pending_one_in_the_same_evaluation(w: World) -> None:
    services.region_evaluate(region=w.region)
    first = _pending(w)
    assert first.routes[0]["destination"] == w.g.hospital.site_code
    later = timezone.now() + timedelta(minutes=1)
    saturated(w.h, at=later)
    saturated(w.g, at=later)  # G can no longer receive: H's ambulances go elsewhere
    for s in w.others:
        calm(s, at=later)
    summary = services.region_evaluate(region=w.region, now=later)
    assert (summary.recommendations_new, summary.recommendations_renewed) == (1, 0)
    first.refresh_from_db()
    assert first.state == m.DiversionRecommendation.State.SUPERSEDED
    assert first.closed_at == later
    current = _pending(w)
    assert current.pk != first.pk
    assert current.routes[0]["destination"] == w.others[0].hospital.site_code
    assert w.others[0].hospital.site_code in current.explanation


def test_renewed_advice_carries_the_new_evaluation_time_and_expiry(w: World) -> None:
    services.region_evaluate(region=w.region)
    first = _pending(w)
    later = timezone.now() + timedelta(minutes=1)
    services.region_evaluate(region=w.region, now=later)
    renewed = _pending(w)
    assert renewed.pk == first.pk
    assert renewed.renewed_at == later
    assert renewed.expires_at is not None
    assert first.expires_at is not None
    assert renewed.expires_at > first.expires_at
    assert renewed.figures["as_of"] == first.figures["as_of"]  # same census, same numbers


def test_when_the_figures_clear_the_advice_is_withdrawn(w: World) -> None:
    services.region_evaluate(region=w.region)
    calm(w.h)
    # The minimum duration (30 min) holds the status, so look 31 minutes on.
    later = timezone.now() + timedelta(minutes=31)
    for s in (w.h, w.g, *w.others):
        calm(s, at=later)
    services.region_evaluate(region=w.region, now=later)
    rec = m.DiversionRecommendation.objects.get(hospital=w.h.hospital)
    assert rec.state == m.DiversionRecommendation.State.WITHDRAWN


def test_accepting_issues_a_directive_that_the_edxl_have_export_shows(
    w: World, operator: Any
) -> None:
    services.region_evaluate(region=w.region)
    rec = _pending(w)
    decision = services.diversion_accept(recommendation=rec, user=operator)
    assert decision.state == m.DiversionDecision.State.ACTIVE
    assert decision.decided_by == operator
    rec.refresh_from_db()
    assert rec.state == m.DiversionRecommendation.State.ACCEPTED
    assert decision.directive_id is not None
    directive = Directive.objects.get(pk=decision.directive_id)
    assert directive.kind == Directive.Kind.DIVERSION
    assert directive.payload["ems_traffic"] == "Closed"
    assert directive.payload["routes"][0]["destination"] == w.g.hospital.site_code
    assert directive.expires_at == decision.expires_at
    [live] = live_hospitals(hospitals=Hospital.objects.filter(pk=w.h.hospital.pk))
    assert live.ed is not None
    assert live.ed.ems_traffic == "Closed"
    event = AuditEvent.objects.filter(action="coordinate", target__contains="diversiondecision")
    assert event.exists()
    with pytest.raises(services.Conflict):
        services.diversion_accept(recommendation=rec, user=operator)


def test_a_decision_in_force_is_not_asked_again(w: World, operator: Any) -> None:
    services.region_evaluate(region=w.region)
    services.diversion_accept(recommendation=_pending(w), user=operator, ttl_minutes=30)
    pending = m.DiversionRecommendation.State.PENDING
    later = timezone.now() + timedelta(minutes=5)
    summary = services.region_evaluate(region=w.region, now=later)
    assert summary.recommendations_new == 0
    assert not m.DiversionRecommendation.objects.filter(state=pending).exists()


def test_an_overridden_advice_is_not_repeated_while_the_override_stands(
    w: World, operator: Any
) -> None:
    services.region_evaluate(region=w.region)
    services.diversion_override(
        recommendation=_pending(w), user=operator, reason="surge team arriving", status="open"
    )
    later = timezone.now() + timedelta(minutes=5)
    assert services.region_evaluate(region=w.region, now=later).recommendations_new == 0


def test_an_override_needs_a_reason_and_respects_capabilities(w: World, operator: Any) -> None:
    services.region_evaluate(region=w.region)
    rec = _pending(w)
    with pytest.raises(services.CoordinationError, match="reason"):
        services.diversion_override(recommendation=rec, user=operator, reason=" ", status="open")
    with pytest.raises(services.CoordinationError, match="cannot take STEMI"):
        services.diversion_override(
            recommendation=rec,
            user=operator,
            reason="cath lab at G",
            status="closed",
            routes=[{"class": "stemi", "destination": w.g.hospital.site_code}],
        )
    decision = services.diversion_override(
        recommendation=rec, user=operator, reason="surge team arriving", status="advisory"
    )
    assert decision.action == m.DiversionDecision.Action.OVERRIDE
    assert decision.reason == "surge team arriving"
    assert decision.directive is not None
    assert decision.directive.payload["ems_traffic"] == "Advisory"


def test_decisions_expire_unless_renewed_and_can_be_ended(w: World, operator: Any) -> None:
    services.region_evaluate(region=w.region)
    decision = services.diversion_accept(recommendation=_pending(w), user=operator, ttl_minutes=30)
    renewed = services.diversion_renew(decision=decision, user=operator, ttl_minutes=45)
    assert renewed.renewals == 1
    assert renewed.expires_at > decision.expires_at
    later = renewed.expires_at + timedelta(seconds=1)
    for s in (w.h, w.g, *w.others):
        unit_state(s.ed, at=later, occupied_beds=10)
    summary = services.region_evaluate(region=w.region, now=later)
    assert summary.decisions_expired == 1
    renewed.refresh_from_db()
    assert renewed.state == m.DiversionDecision.State.EXPIRED
    with pytest.raises(services.Conflict):
        services.diversion_renew(decision=renewed, user=operator)


def test_ending_a_diversion_tells_the_site_it_is_open(w: World, operator: Any) -> None:
    services.region_evaluate(region=w.region)
    decision = services.diversion_accept(recommendation=_pending(w), user=operator)
    ended = services.diversion_end(decision=decision, user=operator, reason="flow restored")
    assert ended.state == m.DiversionDecision.State.ENDED
    latest = Directive.objects.filter(hospital=w.h.hospital).order_by("-issued_at", "-id").first()
    assert latest is not None
    assert latest.payload["ems_traffic"] == "Normal"


def test_a_hospital_an_operator_closed_is_not_a_destination(w: World, operator: Any) -> None:
    services.region_evaluate(region=w.region)
    # G is put on diversion by hand (an override of a recommendation made for G).
    now = timezone.now()
    g_rec = m.DiversionRecommendation.objects.create(
        region=w.region,
        hospital=w.g.hospital,
        status=m.DiversionStatus.ADVISORY,
        explanation="by hand",
        created_at=now,
        renewed_at=now,
        expires_at=now + timedelta(hours=1),
    )
    services.diversion_override(
        recommendation=g_rec, user=operator, reason="CT down", status="closed"
    )
    services.region_evaluate(region=w.region, now=now + timedelta(minutes=1))
    rec = _pending(w)
    assert rec.routes[0]["destination"] != w.g.hospital.site_code


def test_surge_changes_are_recorded_with_causes_and_checklist(w: World) -> None:
    services.region_evaluate(region=w.region)
    change = m.SurgeLevelChange.objects.get(hospital=w.h.hospital)
    assert change.from_level is None
    assert change.to_level >= 3
    assert change.causes
    assert change.checklist
    assert m.SurgeLevelChange.objects.filter(region=w.region, hospital=None).exists()


def test_alerts_are_raised_once_acknowledged_and_resolved(w: World, operator: Any) -> None:
    unit_state(w.g.ed, at=timezone.now() - timedelta(minutes=40), occupied_beds=10)  # stale
    services.region_evaluate(region=w.region)
    key = f"stale:{w.g.hospital.site_code}"
    alert = m.Alert.objects.get(region=w.region, key=key)
    assert alert.state == m.Alert.State.OPEN
    services.region_evaluate(region=w.region, now=timezone.now() + timedelta(minutes=1))
    assert m.Alert.objects.filter(region=w.region, key=key).count() == 1  # de-duplicated
    services.alert_acknowledge(alert=alert, user=operator, note="site called")
    alert.refresh_from_db()
    assert alert.state == m.Alert.State.ACKNOWLEDGED
    calm(w.g, at=timezone.now() + timedelta(minutes=2))
    services.region_evaluate(region=w.region, now=timezone.now() + timedelta(minutes=2))
    alert.refresh_from_db()
    assert alert.state == m.Alert.State.RESOLVED


def test_an_unacknowledged_alert_escalates_and_mails_the_next_level(
    w: World, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    m.AlertRecipient.objects.create(region=w.region, email="duty@example.org", escalation_level=0)
    m.AlertRecipient.objects.create(region=w.region, email="oncall@example.org", escalation_level=1)
    services.region_evaluate(region=w.region)
    alert = m.Alert.objects.filter(region=w.region, severity="critical").first()
    assert alert is not None
    deliver(alert, 0)
    assert [msg.to for msg in mail.outbox] == [["duty@example.org"]]
    later = timezone.now() + timedelta(minutes=16)
    saturated(w.h, at=later)
    for s in (w.g, *w.others):
        calm(s, at=later)
    summary = services.region_evaluate(region=w.region, now=later)
    assert summary.alerts_escalated >= 1
    alert.refresh_from_db()
    assert alert.escalation_level == 1
    deliver(alert, 1)
    assert mail.outbox[-1].to == ["oncall@example.org"]
    assert mail.outbox[-1].subject.startswith("[CRITICAL] escalation 1")
    assert m.AlertDelivery.objects.filter(alert=alert, ok=True).count() == 2


def test_a_resource_request_walks_its_workflow_and_records_every_step(
    w: World, operator: Any
) -> None:
    # H asks for 2 adult ICU beds; G's ICU has 5 free (census), 1 kept in reserve.
    request = services.resource_request_create(
        requester=w.h.hospital, kind="bed", item="adult_icu", quantity=2, user=operator
    )
    assert request.suggestions[0]["hospital"] == w.g.hospital.site_code
    assert request.suggestions[0]["covers"] == 2
    offer = services.resource_offer_make(
        request=request, donor=w.g.hospital, quantity=2, user=operator
    )
    with pytest.raises(services.Conflict):
        services.resource_request_fulfil(request=request, user=operator)  # not accepted yet
    services.resource_offer_accept(offer=offer, user=operator)
    done = services.resource_request_fulfil(request=request, user=operator, note="transferred")
    assert done.status == m.RequestStatus.FULFILLED
    steps = list(done.events.values_list("from_status", "to_status"))
    assert steps == [
        ("", "requested"),
        ("requested", "offered"),
        ("offered", "accepted"),
        ("accepted", "fulfilled"),
    ]
    with pytest.raises(services.Conflict):
        services.resource_request_cancel(request=done, user=operator, reason="too late")


def test_declared_spares_are_matched_by_role_and_shift(w: World, operator: Any) -> None:
    services.resource_availability_declare(
        hospital=w.g.hospital,
        kind="staff",
        item="icu_nurse",
        quantity=3,
        shift="2026-11-24 night",
        user=operator,
    )
    request = services.resource_request_create(
        requester=w.h.hospital,
        kind="staff",
        item="icu_nurse",
        quantity=2,
        shift="2026-11-24 night",
        user=operator,
    )
    assert [s["hospital"] for s in request.suggestions] == [w.g.hospital.site_code]
    with pytest.raises(services.CoordinationError):
        services.resource_availability_declare(
            hospital=w.g.hospital, kind="bed", item="adult_icu", quantity=3, user=operator
        )


def test_region_settings_are_validated_before_they_are_stored(w: World, operator: Any) -> None:
    with pytest.raises(services.CoordinationError, match="unknown keys"):
        services.region_settings_set(
            region=w.region, config={"diversion": {"close_entr": 0.9}}, user=operator
        )
    services.region_settings_set(
        region=w.region, config={"diversion": {"close_enter": 0.95}}, user=operator
    )
    assert services.region_config(w.region).diversion.close_enter == 0.95


def test_a_renewal_with_unchanged_figures_keeps_its_words_and_stays_unexpired(w: World) -> None:
    t0 = timezone.now()
    services.region_evaluate(region=w.region, now=t0)
    first = _pending(w)
    assert first.figures_as_of == t0
    # The same values sent again a minute later: only the snapshot time moves.
    t1 = t0 + timedelta(minutes=1)
    saturated(w.h, at=t1)
    for s in (w.g, *w.others):
        calm(s, at=t1)
    summary = services.region_evaluate(region=w.region, now=t1)
    assert summary.recommendations_renewed == 1
    renewed = _pending(w)
    assert renewed.pk == first.pk
    assert renewed.figures == first.figures  # the stored snapshot time is not rewritten
    assert renewed.explanation == first.explanation
    assert renewed.figures_as_of == t0  # "figures unchanged since" t0
    assert renewed.renewed_at == t1
    assert renewed.expires_at is not None
    assert first.expires_at is not None
    assert renewed.expires_at > first.expires_at > t1  # renewed: not lapsing


def test_a_renewal_with_a_changed_value_rewrites_words_and_figures(w: World) -> None:
    t0 = timezone.now()
    services.region_evaluate(region=w.region, now=t0)
    first = _pending(w)
    t1 = t0 + timedelta(minutes=1)
    unit_state(
        w.h.ed,
        at=t1,
        occupied_beds=21,
        available_beds=0,
        ed_boarding=7,  # one more boarder: a changed value
        longest_boarding_minutes=400,
        offload_p90_minutes=80,
    )
    services.region_evaluate(region=w.region, now=t1)
    renewed = _pending(w)
    assert renewed.pk == first.pk  # the same advice
    assert renewed.figures["ed_boarding"] == 7
    assert renewed.figures["as_of"] != first.figures["as_of"]
    assert renewed.figures_as_of == t1


def test_a_destination_whose_feed_goes_stale_is_still_excluded(w: World) -> None:
    t0 = timezone.now()
    services.region_evaluate(region=w.region, now=t0)
    assert _pending(w).routes[0]["destination"] == w.g.hospital.site_code
    # 20 minutes on every feed but G's has reported again, with the same values.
    t1 = t0 + timedelta(minutes=20)
    saturated(w.h, at=t1)
    for s in w.others:
        calm(s, at=t1)
    services.region_evaluate(region=w.region, now=t1)
    current = _pending(w)
    assert {r["destination"] for r in current.routes} == {w.others[0].hospital.site_code}


def test_level_changes_with_the_same_checklist_share_one_stored_checklist(w: World) -> None:
    saturated(w.g)  # H and G both go to the same high level
    services.region_evaluate(region=w.region)
    h = m.SurgeLevelChange.objects.get(hospital=w.h.hospital)
    g = m.SurgeLevelChange.objects.get(hospital=w.g.hospital)
    assert h.to_level == g.to_level
    assert h.checklist_ref_id == g.checklist_ref_id
    assert len(h.checklist_ref_id) == 64  # SHA-256, hex
    assert m.SurgeChecklist.objects.filter(items=h.checklist).count() == 1
    assert h.checklist == list(RegionConfig().surge.checklists[h.to_level])


def test_editing_the_region_checklist_leaves_a_past_change_as_it_was(
    w: World, operator: Any
) -> None:
    services.region_evaluate(region=w.region)
    past = m.SurgeLevelChange.objects.get(hospital=w.h.hospital)
    before = past.checklist
    edited = {str(k): [f"edited action for level {k}"] for k in (1, 2, 3, 4)}
    services.region_settings_set(
        region=w.region, config={"surge": {"checklists": edited}}, user=operator
    )
    later = timezone.now() + timedelta(hours=2)
    for s in (w.h, w.g, *w.others):
        calm(s, at=later)  # H's level falls: a new change under the edited checklists
    services.region_evaluate(region=w.region, now=later)
    past = m.SurgeLevelChange.objects.select_related("checklist_ref").get(pk=past.pk)
    assert past.checklist == before
    newer = m.SurgeLevelChange.objects.filter(hospital=w.h.hospital).exclude(pk=past.pk).first()
    assert newer is not None
    assert newer.checklist == [f"edited action for level {newer.to_level}"]
    assert newer.checklist_ref_id != past.checklist_ref_id
