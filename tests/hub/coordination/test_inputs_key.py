"""A recommendation's inputs key (``Recommendation.inputs_key``): a renewal whose key equals
the stored advice's keeps the stored words without building them, so equal keys must mean
equal words, whatever changed between the two minutes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from hub.coordination.diversion import (
    Mode,
    PriorStatus,
    Recommendation,
    RegionDiversion,
    evaluate_diversion,
    routes_inputs,
)
from hub.coordination.state import Forecast, ForecastPoint, HospitalState, TravelTimes

from .builders import DIVERSION, NOW, at_pressure
from .test_properties import PROPERTY, regions

LATER = NOW + timedelta(minutes=1)
# A missing part of the key shows only in the draws where that part alone changes: with 100
# examples some such mutations of ``_Ctx.hospital_key`` went unseen, with 300 (≈ 8 s) fewer.
KEYS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A figure and the values it may take next time (the same value included: most do not move).
_NEXT: dict[str, Any] = {
    "ed_capacity": st.integers(0, 40),
    "ed_occupied": st.integers(0, 50),
    "ed_waiting": st.one_of(st.none(), st.integers(0, 20)),
    "ed_boarding": st.one_of(st.none(), st.integers(0, 15)),
    "longest_boarding_minutes": st.one_of(st.none(), st.floats(0, 900)),
    "offload_p90_minutes": st.one_of(st.none(), st.floats(0, 150)),
    "icu_occupied": st.one_of(st.none(), st.integers(0, 12)),
    "ward_occupied": st.one_of(st.none(), st.integers(50, 110)),
    "over_4h_share": st.one_of(st.none(), st.floats(0, 1)),
    "handovers_over_30_min": st.one_of(st.none(), st.integers(0, 10)),
    "staffing_gap_share": st.one_of(st.none(), st.floats(0, 1)),
}


def _moved(t: datetime | None, minutes: int = 1) -> datetime | None:
    return None if t is None else t + timedelta(minutes=minutes)


def _later(
    s: HospitalState, minutes: int, census: bool, offload: bool = True, forecast: bool = True
) -> HospitalState:
    """``s`` ``minutes`` later, each feed (census, offload, forecast) with a new report of
    the same values (its time moved on) or none (its age grows, and may pass its limit)."""
    f = s.forecast
    return dataclasses.replace(
        s,
        as_of=s.as_of + timedelta(minutes=minutes) if census else s.as_of,
        offload_as_of=_moved(s.offload_as_of, minutes) if offload else s.offload_as_of,
        forecast=dataclasses.replace(f, as_of=f.as_of + timedelta(minutes=minutes))
        if f is not None and forecast
        else f,
    )


@st.composite
def changed(draw: st.DrawFn, s: HospitalState) -> HospitalState:
    """``s`` with one figure, or one value of one point of its ED forecast, changed (perhaps to
    the same value)."""
    what = draw(st.sampled_from(["forecast", *_NEXT]))
    if what != "forecast":
        return dataclasses.replace(s, **{what: draw(_NEXT[what])})
    shift = draw(st.integers(-2, 2))
    if s.forecast is None or not s.forecast.ed:
        point = ForecastPoint(horizon_hours=2, p50=float(shift))
        return dataclasses.replace(s, forecast=Forecast(as_of=s.as_of, ed=(point,)))
    ed = list(s.forecast.ed)
    k = draw(st.integers(0, len(ed) - 1))
    field = draw(st.sampled_from(["p50", "p10", "p90", "horizon_hours"]))
    if field in ("p10", "p90"):
        value = getattr(ed[k], field)
        ed[k] = dataclasses.replace(
            ed[k], **{field: float(shift if value is None else value + shift)}
        )
    else:
        ed[k] = dataclasses.replace(ed[k], **{field: getattr(ed[k], field) + shift})
    return dataclasses.replace(s, forecast=dataclasses.replace(s.forecast, ed=tuple(ed)))


@st.composite
def pressed_regions(
    draw: st.DrawFn,
) -> tuple[list[HospitalState], TravelTimes, dict[str, PriorStatus], Mode]:
    """``regions()``, in half the draws with most EDs at or over capacity (diversion and
    load-balancing advice for most hospitals)."""
    states, travel, priors, mode = draw(regions())
    if draw(st.booleans()):
        states = [
            dataclasses.replace(s, as_of=NOW, ed_occupied=s.ed_capacity + draw(st.integers(-2, 8)))
            for s in states
        ]
    return states, travel, priors, mode


def _words(rec: Recommendation) -> tuple[Any, ...]:
    """What a stored recommendation says, but the figures' snapshot time."""
    figures = {k: v for k, v in rec.figures.items() if k != "as_of"}
    routes = [(r.explanation, r.share, r.travel_minutes, r.alternates) for r in rec.routes]
    return (rec.score, routes, rec.kept, rec.explanation, figures, rec.no_forecast)


def _signature(rec: Recommendation) -> tuple[Any, ...]:
    return (rec.mode, rec.status, sorted((r.ambulance_class, r.destination) for r in rec.routes))


def _by_hospital(ev: RegionDiversion) -> dict[str, Recommendation]:
    return {r.hospital: r for r in ev.recommendations}


def _renewals(data: st.DataObject) -> Iterator[tuple[Recommendation, Recommendation]]:
    """Against one minute's advice, several later minutes, each with the clock moved on,
    some snapshots renewed and one figure of one hospital changed: each later advice that
    is the same advice (the same signature) as before, with the one before."""
    states, travel, priors, mode = data.draw(pressed_regions())
    before = evaluate_diversion(states, travel, priors, NOW, DIVERSION, prior_mode=mode)
    old_recs = _by_hospital(before)
    # The hospitals advice is about or names: a change elsewhere cannot touch its words.
    involved = sorted(
        {before.arrays.index[r.hospital] for r in before.recommendations}
        | {before.arrays.index[d.destination] for r in before.recommendations for d in r.routes}
    ) or list(range(len(states)))
    for _ in range(12):
        minutes = data.draw(st.sampled_from([1, 2, 10, 31, 45]))
        later = [_later(s, minutes, *(data.draw(st.booleans()) for _ in range(3))) for s in states]
        i = data.draw(st.sampled_from(involved))
        later[i] = data.draw(changed(later[i]))
        after = evaluate_diversion(
            later, travel, priors, NOW + timedelta(minutes=minutes), DIVERSION, prior_mode=mode
        )
        for new in after.recommendations:
            old = old_recs.get(new.hospital)
            if old is not None and _signature(new) == _signature(old):
                yield old, new


@KEYS
@given(st.data())
def test_equal_keys_mean_equal_words(data: st.DataObject) -> None:
    """Wherever the same advice has the same key, it has the same words."""
    for old, new in _renewals(data):
        key = new.inputs_key
        if key is not None and key == old.inputs_key:
            assert _words(new) == _words(old)


def _route_words(rec: Recommendation) -> list[tuple[Any, ...]]:
    """What a stored route row says (its class label follows from its class)."""
    return [
        (r.ambulance_class, r.destination, r.travel_minutes, r.share, r.alternates, r.explanation)
        for r in rec.routes
    ]


@KEYS
@given(st.data())
def test_equal_route_inputs_mean_equal_routes(data: st.DataObject) -> None:
    """Wherever the same advice has the same routes part of its key (``routes_inputs``),
    whatever else changed, its routes say the same (a renewal keeps the stored route rows
    and texts instead of building them)."""
    for old, new in _renewals(data):
        key, old_key = new.inputs_key, old.inputs_key
        if key is not None and old_key is not None and routes_inputs(key) == routes_inputs(old_key):
            assert _route_words(new) == _route_words(old)


def test_known_route_texts_are_not_built_again() -> None:
    """Route texts given before they are read are the routes' texts and the explanation
    quotes them; a route's inputs changing changes the routes part of the key."""
    first, _ = _load_balancing(occupied_b=18)
    a = _by_hospital(first)["A"]
    texts = [f"route text {k}" for k in range(len(a.routes))]
    a.known_route_texts(texts)
    assert [r.explanation for r in a.routes] == texts
    assert all(t in a.explanation for t in texts)
    second, _ = _load_balancing(occupied_b=19)
    a2 = _by_hospital(second)["A"]
    assert routes_inputs(a2.inputs_key) != routes_inputs(_by_hospital(first)["A"].inputs_key)


@PROPERTY
@given(regions())
def test_the_same_inputs_give_the_same_key(region) -> None:
    """The key is not vacuous: a fresh hospital's advice has one, equal next minute when
    nothing but the snapshot times moved."""
    states, travel, priors, mode = region
    later = [_later(s, 1, census=True) for s in states]
    before = evaluate_diversion(states, travel, priors, NOW, DIVERSION, prior_mode=mode)
    after = _by_hospital(
        evaluate_diversion(later, travel, priors, LATER, DIVERSION, prior_mode=mode)
    )
    for old in before.recommendations:
        fresh = bool(before.arrays.fresh[before.arrays.index[old.hospital]])
        assert (old.inputs_key is not None) == fresh
        new = after.get(old.hospital)
        if new is not None and _signature(new) == _signature(old):
            # (the clock alone may end a diversion, or its minimum duration)
            assert new.inputs_key == old.inputs_key


def _load_balancing(occupied_b: int) -> tuple[RegionDiversion, list[HospitalState]]:
    states = [
        dataclasses.replace(at_pressure(c, 0.99), ed_capacity=20, ed_occupied=o)
        for c, o in (("A", 30), ("B", occupied_b), ("C", 31))
    ]
    travel = {a: {b: 10.0 for b in "ABC" if b != a} for a in "ABC"}
    ev = evaluate_diversion(states, travel, {}, NOW, DIVERSION)
    assert ev.mode is Mode.LOAD_BALANCING
    return ev, states


def test_a_destination_s_free_places_are_part_of_the_key() -> None:
    """A's load-balancing advice names B's free places: one more patient at B changes A's
    words and its key, though nothing at A changed."""
    first, _ = _load_balancing(occupied_b=18)
    second, _ = _load_balancing(occupied_b=19)
    a1, a2 = _by_hospital(first)["A"], _by_hospital(second)["A"]
    assert a1.inputs_key != a2.inputs_key
    assert a1.explanation != a2.explanation
