"""Each region rule on its own (the property tests check them across whole regions)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.coordination import rules
from hub.coordination.state import AmbulanceClass, Capabilities, StrokeLevel

from .builders import DIVERSION, NOW, hospital, minutes_ago

C = AmbulanceClass


def test_a_hospital_is_stale_when_its_feed_says_so_or_its_census_is_old() -> None:
    assert rules.is_fresh(hospital("A"), NOW, DIVERSION)
    assert rules.is_fresh(hospital("A", as_of=minutes_ago(15)), NOW, DIVERSION)
    assert not rules.is_fresh(hospital("A", as_of=minutes_ago(16)), NOW, DIVERSION)
    assert not rules.is_fresh(hospital("A", feed_stale=True), NOW, DIVERSION)
    assert not rules.is_fresh(hospital("A", ed_capacity=0, ed_occupied=0), NOW, DIVERSION)
    assert rules.stale_reasons(hospital("A", as_of=minutes_ago(40)), NOW, DIVERSION) == (
        "census 40 min old (limit 15)",
    )


def test_an_old_offload_figure_or_forecast_is_not_usable() -> None:
    ok = hospital("A", offload_p90_minutes=40, offload_as_of=minutes_ago(30))
    old = hospital("A", offload_p90_minutes=40, offload_as_of=minutes_ago(31))
    assert rules.offload_usable(ok, NOW, DIVERSION)
    assert not rules.offload_usable(old, NOW, DIVERSION)
    assert not rules.forecast_usable(hospital("A"), NOW, DIVERSION)


@pytest.mark.parametrize(
    ("caps", "cls", "ok"),
    [
        (Capabilities(), C.GENERAL, True),
        (Capabilities(), C.STROKE, False),
        (Capabilities(stroke=StrokeLevel.ACUTE_READY), C.STROKE, False),
        (Capabilities(stroke=StrokeLevel.PRIMARY), C.STROKE, True),
        (Capabilities(stroke=StrokeLevel.PRIMARY), C.STROKE_THROMBECTOMY, False),
        (Capabilities(stroke=StrokeLevel.THROMBECTOMY), C.STROKE_THROMBECTOMY, True),
        (Capabilities(stroke=StrokeLevel.COMPREHENSIVE), C.STROKE_THROMBECTOMY, True),
        (Capabilities(stemi_pci=True), C.STEMI, True),
        (Capabilities(), C.STEMI, False),
        (Capabilities(trauma_level=1), C.MAJOR_TRAUMA, True),
        (Capabilities(trauma_level=2), C.MAJOR_TRAUMA, True),
        (Capabilities(trauma_level=3), C.MAJOR_TRAUMA, False),
        (Capabilities(paediatrics=True), C.PAEDIATRIC, True),
        (Capabilities(), C.PAEDIATRIC, False),
        (Capabilities(burns=True), C.BURNS, True),
        (Capabilities(), C.BURNS, False),
        (Capabilities(maternity=True), C.MATERNITY, True),
        (Capabilities(psychiatry=True), C.PSYCHIATRIC, True),
    ],
)
def test_capabilities_decide_who_may_take_a_class(
    caps: Capabilities, cls: AmbulanceClass, ok: bool
) -> None:
    assert rules.can_take(caps, cls, DIVERSION) is ok


def test_time_critical_classes_have_the_shorter_travel_limit() -> None:
    assert rules.travel_limit(C.STEMI, DIVERSION) == 20
    assert rules.travel_limit(C.MAJOR_TRAUMA, DIVERSION) == 20
    assert rules.travel_limit(C.GENERAL, DIVERSION) == 45
    assert rules.travel_limit(C.PAEDIATRIC, DIVERSION) == 45


def _refusal(**overrides: object) -> str | None:
    args: dict[str, object] = {
        "fresh": True,
        "diverting": False,
        "pressure": 0.2,
        "free": 3.0,
        "caps": Capabilities(),
        "cls": C.GENERAL,
        "travel_minutes": 10.0,
        "cfg": DIVERSION,
    }
    args.update(overrides)
    return rules.destination_refusal(**args)  # type: ignore[arg-type]


def test_a_destination_must_be_fresh_open_unsaturated_free_capable_and_near() -> None:
    assert _refusal() is None
    assert _refusal(fresh=False) == "feed stale"
    assert _refusal(diverting=True) == "itself diverting"
    assert _refusal(pressure=0.50) == "itself saturated"
    assert _refusal(pressure=None) == "itself saturated"  # unknown is not a guess
    assert _refusal(free=0.5) == "no free ED places left"
    assert _refusal(cls=C.BURNS) == "cannot take burns"
    assert _refusal(travel_minutes=46.0) == "too far"
    assert _refusal(cls=C.STEMI, caps=Capabilities(stemi_pci=True), travel_minutes=21.0) == (
        "too far"
    )


def test_load_balancing_starts_at_the_enter_share_and_ends_under_the_exit_share() -> None:
    def lb(would_close: int, current: bool, stuck: bool = False) -> bool:
        return rules.should_load_balance(
            fresh_count=10,
            would_close=would_close,
            diverting_without_destination=stuck,
            currently_load_balancing=current,
            cfg=DIVERSION,
        )

    assert not lb(5, current=False)
    assert lb(6, current=False)
    assert lb(4, current=True)
    assert not lb(3, current=True)
    assert lb(1, current=False, stuck=True)  # someone must divert and no one can receive
    assert not rules.should_load_balance(
        fresh_count=0,
        would_close=0,
        diverting_without_destination=True,
        currently_load_balancing=False,
        cfg=DIVERSION,
    )


def test_expiry_and_minimum_duration() -> None:
    assert rules.expired(NOW, NOW)
    assert not rules.expired(NOW + timedelta(seconds=1), NOW)
    assert not rules.expired(None, NOW)
    assert rules.held_long_enough(None, NOW, 30)
    assert rules.held_long_enough(minutes_ago(30), NOW, 30)
    assert not rules.held_long_enough(minutes_ago(29), NOW, 30)
