"""Resource sharing: the request workflow and suggested matches from live availability."""

from __future__ import annotations

import pytest

from hub.coordination.matching import (
    Availability,
    Donor,
    InvalidTransition,
    Need,
    RequestStatus,
    ResourceKind,
    check_transition,
    suggest_matches,
)

from .builders import CONFIG, NOW, minutes_ago

SHARING = CONFIG.sharing
R = RequestStatus


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (R.REQUESTED, R.OFFERED),
        (R.OFFERED, R.OFFERED),
        (R.OFFERED, R.ACCEPTED),
        (R.ACCEPTED, R.FULFILLED),
        (R.REQUESTED, R.CANCELLED),
        (R.OFFERED, R.CANCELLED),
        (R.ACCEPTED, R.CANCELLED),
    ],
)
def test_the_workflow_allows_its_steps(current: RequestStatus, target: RequestStatus) -> None:
    assert check_transition(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (R.REQUESTED, R.ACCEPTED),  # nothing offered yet
        (R.REQUESTED, R.FULFILLED),
        (R.OFFERED, R.FULFILLED),  # not accepted yet
        (R.FULFILLED, R.CANCELLED),  # done is done
        (R.CANCELLED, R.OFFERED),
    ],
)
def test_the_workflow_refuses_a_skipped_or_reversed_step(
    current: RequestStatus, target: RequestStatus
) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, target)


def _beds(hospital: str, quantity: float, age: float = 2) -> Availability:
    return Availability(
        hospital=hospital,
        kind=ResourceKind.BED,
        item="adult_icu",
        quantity=quantity,
        as_of=minutes_ago(age),
    )


def test_bed_matches_rank_full_cover_then_distance_and_keep_a_reserve() -> None:
    # H needs 2 adult ICU beds. Each donor keeps 1 bed in reserve.
    need = Need(requester="H", kind=ResourceKind.BED, item="adult_icu", quantity=2)
    availability = [
        _beds("H", 5),  # the requester itself
        _beds("A", 2),  # 1 beyond its reserve: partial cover, near
        _beds("B", 4),  # 3 beyond reserve: full cover, farther
        _beds("C", 6, age=20),  # census 20 min old: beds move by the minute
        _beds("D", 5),  # at OPEL 4: not asked to give
        _beds("E", 1),  # nothing beyond its reserve
        _beds("F", 9),  # stale feed
        Availability(
            hospital="G", kind=ResourceKind.BED, item="pediatric_icu", quantity=9, as_of=NOW
        ),
    ]
    travel = {"H": {"A": 10, "B": 25, "C": 5, "D": 5, "E": 5, "F": 5, "G": 5}}
    donors = {
        "B": Donor(hospital="B", surge_level=2),
        "D": Donor(hospital="D", surge_level=4),
        "F": Donor(hospital="F", fresh=False),
    }
    matches = suggest_matches(need, availability, travel, donors, NOW, SHARING)
    assert [m.hospital for m in matches] == ["B", "A"]
    assert [m.covers for m in matches] == [2, 0]
    assert matches[0].explanation == (
        "B: 4 adult icu beds available (1 kept in reserve), OPEL 2, 25 minutes away, covers 2 of 2"
    )


def test_partial_donors_add_up_in_order() -> None:
    need = Need(requester="H", kind=ResourceKind.BED, item="adult_icu", quantity=3)
    matches = suggest_matches(
        need, [_beds("A", 3), _beds("B", 3)], {"H": {"A": 10, "B": 20}}, {}, NOW, SHARING
    )
    assert [(m.hospital, m.covers) for m in matches] == [("A", 2), ("B", 1)]


def test_staff_match_on_role_and_shift_and_may_lack_a_travel_time() -> None:
    need = Need(
        requester="H",
        kind=ResourceKind.STAFF,
        item="icu_nurse",
        quantity=2,
        shift="2026-11-24 night",
    )
    offers = [
        Availability(
            hospital="A",
            kind=ResourceKind.STAFF,
            item="icu_nurse",
            quantity=2,
            shift="2026-11-24 day",
            as_of=minutes_ago(60),
        ),
        Availability(
            hospital="B",
            kind=ResourceKind.STAFF,
            item="icu_nurse",
            quantity=3,
            shift="2026-11-24 night",
            as_of=minutes_ago(60),
        ),
    ]
    [match] = suggest_matches(need, offers, {}, {}, NOW, SHARING)
    assert match.hospital == "B"
    assert match.travel_minutes is None
    assert match.explanation.endswith("travel time unknown, covers 2 of 2")


def test_equipment_is_matched_by_kind_of_device() -> None:
    need = Need(requester="H", kind=ResourceKind.EQUIPMENT, item="ventilator", quantity=1)
    offers = [
        Availability(
            hospital="A", kind=ResourceKind.EQUIPMENT, item="infusion_pump", quantity=9, as_of=NOW
        ),
        Availability(
            hospital="B", kind=ResourceKind.EQUIPMENT, item="ventilator", quantity=3, as_of=NOW
        ),
    ]
    matches = suggest_matches(need, offers, {"B": {"H": 30}}, {}, NOW, SHARING)
    assert [(m.hospital, m.offerable, m.travel_minutes) for m in matches] == [("B", 2, 30)]
