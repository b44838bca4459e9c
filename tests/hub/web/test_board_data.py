"""The board's view-model builder: figures, freshness, advice, sorting, filtering, history,
and a fixed number of queries whatever the size of the region."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.roles import Role
from hub.census.models import UnitState
from hub.demo.history import census_history_seed
from hub.web import board_data
from hub.web.board_data import (
    ForecastBand,
    Tile,
    filter_tiles,
    history,
    history_times,
    sort_tiles,
    summarise,
    summed_forecast,
    tiles_for,
)
from tests.hub.web.board_fixtures import make_user, seed_region, set_status

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def by_site(tiles: list[Tile]) -> dict[str, Tile]:
    return {t.site_code: t for t in tiles}


def test_a_tile_adds_up_the_hospitals_fresh_beds_and_shows_its_ed_and_surge() -> None:
    seeded = seed_region(3)
    set_status(seeded.a, diversion="open", surge=3)
    ops = make_user("ops", Role.REGIONAL_OPERATOR)
    tiles = by_site(tiles_for(ops, now=seeded.now))
    assert set(tiles) == {h.site_code for h in seeded.hospitals}
    tile = tiles[seeded.a.site_code]
    states = UnitState.objects.filter(hospital=seeded.a).exclude(unit__unit_type="emergency")
    staffed = sum((s.staffed_beds or 0) + (s.surge_beds or 0) for s in states)
    occupied = sum(s.occupied_beds or 0 for s in states)
    assert tile.occupancy_pct == round(100 * occupied / staffed, 1)
    assert tile.free_beds == sum(s.available_beds or 0 for s in states)
    assert {b.label for b in tile.beds} == {"Adult ICU", "Med-surg"}
    assert tile.ed_status in ("open", "advisory")  # from the ED's own figures, fresh
    ed = UnitState.objects.get(hospital=seeded.a, unit__unit_type="emergency")
    assert (tile.ed_waiting, tile.ed_boarding, tile.offload_p90) == (
        ed.ed_waiting,
        ed.ed_boarding,
        ed.offload_p90_minutes,
    )
    assert tile.surge_level == 3
    assert tile.freshness == "fresh"
    assert tile.whole_hospital
    assert tile.url == f"/hospitals/{seeded.a.site_code}/"


def test_a_silent_site_is_stale_after_the_limit_and_offline_after_three() -> None:
    seeded = seed_region(3, silent_for={1: timedelta(minutes=8), 2: timedelta(minutes=40)}, hours=2)
    ops = make_user("ops", Role.REGIONAL_OPERATOR)
    tiles = by_site(tiles_for(ops, now=seeded.now))
    a, b, c = (tiles[h.site_code] for h in seeded.hospitals)
    assert a.freshness == "fresh"
    assert b.freshness == "stale"
    assert "stale units" in b.freshness_reason
    assert c.freshness == "offline"
    assert "nothing received for 40 min" in c.freshness_reason
    # Stale figures are never shown as current ones.
    assert (b.occupancy_pct, b.free_beds, b.ed_waiting) == (None, None, None)
    assert b.ed_status == "unknown"


def test_a_site_flagging_its_own_feed_as_overdue_is_stale_with_recent_figures() -> None:
    seeded = seed_region(1, hours=1, flagged=(0,))
    ops = make_user("ops", Role.REGIONAL_OPERATOR)
    (tile,) = tiles_for(ops, now=seeded.now)
    assert tile.freshness == "stale"
    assert "feeds overdue: adt-main" in tile.freshness_reason


def test_advice_is_shown_only_when_it_would_change_what_is_in_force() -> None:
    seeded = seed_region(3, hours=1, pressure={0: 0.6, 1: 0.6}, silent_for={2: timedelta(hours=2)})
    ops = make_user("ops", Role.REGIONAL_OPERATOR)
    set_status(seeded.a, diversion="closed", surge=2)
    tiles = by_site(tiles_for(ops, now=seeded.now))
    a = tiles[seeded.a.site_code]
    assert a.ed_status == "open"
    assert (a.advice, a.advice_label, a.signature) == ("closed", "close", "open|closed|2")

    b_status = tiles[seeded.b.site_code].ed_status
    set_status(seeded.b, diversion=b_status, surge=1)
    set_status(seeded.hospitals[2], diversion="open", surge=1)
    tiles = by_site(tiles_for(ops, now=seeded.now))
    assert tiles[seeded.b.site_code].advice is None  # the advice is what is in force
    c = tiles[seeded.hospitals[2].site_code]
    assert (c.ed_status, c.advice) == ("unknown", None)  # "open" beside "unknown" is noise


def test_executives_get_totals_and_coordination_but_no_forecast() -> None:
    seeded = seed_region(2, hours=2)
    set_status(seeded.a, surge=4)
    executive = make_user("exec", Role.EXECUTIVE, hospital=seeded.a)
    (tile,) = tiles_for(executive, now=seeded.now)
    assert tile.site_code == seeded.a.site_code
    assert tile.whole_hospital
    assert tile.occupancy_pct is not None
    assert tile.surge_level == 4
    assert tile.forecast == []  # read_forecast is unit-level: not an executive's


def test_ed_staff_see_their_ed_alone_and_are_told_so() -> None:
    seeded = seed_region(2, hours=2)
    set_status(seeded.a, surge=4)
    ed_staff = make_user("ed", Role.ED_STAFF, hospital=seeded.a)
    (tile,) = tiles_for(ed_staff, now=seeded.now)
    assert tile.site_code == seeded.a.site_code
    assert not tile.whole_hospital
    assert tile.scope_note == "Your units only: Emergency department"
    assert tile.beds == []
    assert tile.ed_waiting is not None
    assert tile.surge_level is None  # read_coordination is not an ED role's
    assert tile.forecast  # the ED's own forecast (read_forecast)


def test_history_adds_units_per_hour_and_leaves_a_gap_where_one_is_missing() -> None:
    # Half past an hour: a report on the hour itself would be exactly one step old at the
    # next point, which counts as a gap (the test failed when run in an hour's first minute).
    half_past = timezone.now().replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
    seeded = seed_region(1, hours=6, now=half_past)
    units = list(seeded.a.units.order_by("code"))
    ids = [u.pk for u in units]
    hist = history(
        {"all": ids, "icu": [units[0].pk], "ghost": [ids[0], 10**9]},
        ("free", "occupied", "capacity"),
        end=seeded.now,
        hours=6,
    )
    assert len(hist.times) == 6
    assert hist.times[-1] == seeded.now
    free = hist.series("all", "free")
    assert all(v is not None for v in free)
    latest = {s.unit_id: s for s in UnitState.objects.filter(unit__in=units)}
    assert free[-1] == sum(latest[u.pk].available_beds or 0 for u in units)
    assert hist.series("icu", "occupied")[-1] == latest[units[0].pk].occupied_beds
    # A unit that never reported makes the sum unknown rather than too small.
    assert hist.series("ghost", "free") == [None] * 6
    # Two hours of silence: the points of those hours are gaps, not zeros.
    quiet = history({"all": ids}, ("free",), end=seeded.now + timedelta(hours=2), hours=6)
    assert quiet.series("all", "free")[-2:] == [None, None]
    assert quiet.series("all", "free")[-3] is not None


def test_past_hours_are_kept_and_only_the_current_point_is_looked_up_again(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.HUB_BOARD_HISTORY_CACHE_SECONDS = 300
    seeded = seed_region(1, history=False)
    code = seeded.a.site_code
    hour = history_times(seeded.now, 2, timedelta(hours=1))[0]  # the last whole hour
    census_history_seed(
        hospitals=[seeded.a],
        hours=6,
        interval=timedelta(hours=1),
        now=hour - timedelta(minutes=30),
        pressure={code: 0.95},
    )
    ids = [u.pk for u in seeded.a.units.all()]
    asked: list[int] = []  # (unit, point) lookups per call
    real = board_data._query_sums

    def counting(batches: list[Any], *args: Any) -> Any:
        asked.append(sum(len(ids) * len(tis) for ids, _, tis in batches))
        return real(batches, *args)

    monkeypatch.setattr(board_data, "_query_sums", counting)

    def free() -> list[float | None]:
        return history({"h": ids}, ("free",), end=seeded.now, hours=6).series("h", "free")

    first = free()
    assert free() == first
    assert asked == [6 * len(ids), len(ids)]  # then only "now" for each unit

    # A site's outbox delivering late into past hours: kept sums hide it until they
    # expire (here: at once), then the new snapshots count.
    census_history_seed(
        hospitals=[seeded.a],
        hours=6,
        interval=timedelta(hours=1),
        now=hour - timedelta(minutes=10),  # twenty minutes after the first: the newest
        pressure={code: 0.3},
    )
    assert free()[:-1] == first[:-1]
    settings.HUB_BOARD_HISTORY_CACHE_SECONDS = 0
    later = free()
    assert later[-2] is not None
    assert first[-2] is not None
    assert later[-2] > first[-2]  # a third as busy: more free beds


def test_kept_points_live_longer_the_further_back_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(board_data.time, "monotonic", lambda: clock[0])
    kept = board_data._Settled()
    end = datetime(2026, 11, 23, 14, 37, tzinfo=UTC)
    recent, old = end - timedelta(hours=1), end - timedelta(hours=10)
    kept.put(("k",), {recent: (1.0,), old: (2.0,)})
    assert kept.get(("k",), end, ttl=300) == {recent: (1.0,), old: (2.0,)}
    clock[0] += 6 * 60  # an hour back: kept 5 minutes; ten hours back: 50
    assert kept.get(("k",), end, ttl=300) == {old: (2.0,)}
    clock[0] += 45 * 60
    assert kept.get(("k",), end, ttl=300) == {}
    assert kept.get(("other",), end, ttl=300) == {}


def test_history_points_sit_on_whole_hours_but_the_last() -> None:
    end = datetime(2026, 11, 23, 14, 37, 12, tzinfo=UTC)
    times = history_times(end, 4, timedelta(hours=1))
    assert [t.strftime("%H:%M:%S") for t in times] == [
        "12:00:00",
        "13:00:00",
        "14:00:00",
        "14:37:12",
    ]
    on_the_hour = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    assert history_times(on_the_hour, 2, timedelta(hours=1))[-2:] == [
        on_the_hour - timedelta(hours=1),
        on_the_hour,
    ]


def test_summed_forecast_leaves_out_a_horizon_some_unit_lacks() -> None:
    a: Any = SimpleNamespace(
        forecast=[
            {"horizon_hours": 1, "p10": 1, "p50": 2, "p90": 3},
            {"horizon_hours": 2, "p10": 0, "p50": 1, "p90": 4},
        ]
    )
    b: Any = SimpleNamespace(forecast=[{"horizon_hours": 1, "p10": 2, "p50": 5, "p90": None}])
    assert summed_forecast([a, b]) == [ForecastBand(1.0, 3, 7.0, None)]  # p90 withheld at b
    assert summed_forecast([a]) == [ForecastBand(1.0, 1, 2.0, 3), ForecastBand(2.0, 0, 1.0, 4)]


def tile(name: str, **values: Any) -> Tile:
    defaults: dict[str, Any] = {
        "hospital_id": 0,
        "site_code": name.upper(),
        "name": name,
        "url": "",
        "timezone": "UTC",
        "ed_status": "open",
        "ed_status_reason": "",
        "advice": None,
        "surge_level": None,
        "freshness": "fresh",
        "freshness_reason": "",
        "age_seconds": 30,
        "occupancy_pct": None,
        "free_beds": None,
        "staffed_beds": None,
        "beds": [],
        "ed_waiting": None,
        "ed_boarding": None,
        "offload_p90": None,
        "whole_hospital": True,
        "scope_note": "",
    }
    return Tile(**{**defaults, **values})


TILES = [
    tile("Delta", occupancy_pct=97.0, free_beds=3, ed_status="advisory", surge_level=3),
    tile("alpha", occupancy_pct=80.0, free_beds=40, surge_level=1),
    tile("Charlie", ed_status="unknown", freshness="offline"),
    tile("bravo", occupancy_pct=99.5, free_beds=1, ed_status="closed", surge_level=4),
    tile("Echo", occupancy_pct=70.0, free_beds=12, advice="advisory", freshness="stale"),
]


def names(tiles: list[Tile]) -> list[str]:
    return [t.name for t in tiles]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("name", ["alpha", "bravo", "Charlie", "Delta", "Echo"]),
        ("occupancy", ["bravo", "Delta", "alpha", "Echo", "Charlie"]),
        ("free", ["bravo", "Delta", "Echo", "alpha", "Charlie"]),
        ("ed", ["bravo", "Delta", "Charlie", "Echo", "alpha"]),
        ("surge", ["bravo", "Delta", "alpha", "Charlie", "Echo"]),
        ("nonsense", ["alpha", "bravo", "Charlie", "Delta", "Echo"]),
    ],
)
def test_sorting_puts_the_worst_first_and_hospitals_without_the_figure_last(
    key: str, expected: list[str]
) -> None:
    assert names(sort_tiles(TILES, key)) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("", {"alpha", "bravo", "Charlie", "Delta", "Echo"}),
        ("closed", {"bravo"}),
        ("advisory", {"Delta"}),
        ("open", {"alpha", "Echo"}),
        ("diverting", {"bravo", "Delta"}),
        ("feed", {"Charlie", "Echo"}),
    ],
)
def test_filtering_by_ed_status_or_feed_problems(status: str, expected: set[str]) -> None:
    assert set(names(filter_tiles(TILES, status))) == expected


def test_the_summary_counts_problems_and_only_fresh_free_beds() -> None:
    summary = summarise(TILES, now=None)  # type: ignore[arg-type]
    assert (summary.hospitals, summary.closed, summary.advisory, summary.problems) == (5, 1, 1, 2)
    assert summary.free_beds == 3 + 40 + 1


def test_the_board_costs_the_same_queries_for_two_hospitals_as_for_eight() -> None:
    few = seed_region(2, hours=3)
    ops = make_user("ops", Role.REGIONAL_OPERATOR)
    tiles_for(ops, now=few.now)  # governance's per-user lookups, memoised from here on
    with CaptureQueriesContext(connection) as small:
        assert len(tiles_for(ops, now=few.now)) == 2
    many = seed_region(8, hours=3)
    tiles_for(ops, now=many.now)
    with CaptureQueriesContext(connection) as large:
        assert len(tiles_for(ops, now=many.now)) == 8
    # Six live-state reads, the statuses, the history (with its two SET LOCALs, inside a
    # savepoint here as the test runs in a transaction): twelve, for any number of hospitals.
    assert len(large.captured_queries) == len(small.captured_queries) == 12
