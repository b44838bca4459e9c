"""Forecasts from the live state: warm-start the model from a census and run forward.

The site agent converts its live twin into a :class:`Census` (no identifiers: elapsed
stays and classes only); :func:`forecast_from_census` returns quantiles of available
beds per unit for each hour ahead and of ICU demand 24–48 hours ahead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import simpy

from simulation.arrivals import replication_seed, stream
from simulation.engine import Environment, Model
from simulation.params import Scenario
from simulation.scenario import load_scenario

FloatArray = npt.NDArray[np.float64]
QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}


@dataclass(frozen=True)
class CensusPatient:
    """One inpatient now: how long they have been in this unit, and their class.

    ``next_unit`` is where they go next if already known (e.g. an ICU patient
    waiting for a ward bed); otherwise it is drawn from the routing.
    """

    elapsed_hours: float
    patient_class: str = "emergency"
    next_unit: str | None = None


@dataclass(frozen=True)
class UnitCensus:
    capacity: int  # staffed beds now
    patients: tuple[CensusPatient, ...] = ()


@dataclass(frozen=True)
class Census:
    """The live state of a hospital at ``time``.

    ``time`` is timezone-aware and in the hospital's local time zone: the hour of the
    week it gives selects the arrival rates, which follow local clocks.
    """

    time: datetime
    units: Mapping[str, UnitCensus]
    ed_waiting: int = 0
    ed_in_treatment: int = 0
    ed_boarding: Mapping[str, int] = field(default_factory=dict)

    @property
    def hour_of_week(self) -> float:
        t = self.time
        return t.weekday() * 24 + t.hour + t.minute / 60 + t.second / 3600


def load_census(model: Model, census: Census, rng: np.random.Generator) -> None:
    """Put the census patients into ``model`` before it runs.

    Each inpatient's remaining stay is drawn from the stay distribution conditioned on
    the stay so far (S - e given S > e): someone already in for ten days is likelier to
    stay on than a fresh admission with the same distribution would suggest.
    """
    env = model.env
    now = env.now
    unknown = (set(census.units) | set(census.ed_boarding)) - set(model.pools)
    if unknown:
        raise ValueError(
            f"census units {sorted(unknown)} are not in scenario {model.scenario.name!r} "
            f"(units: {sorted(model.pools)})"
        )
    for unit, uc in census.units.items():
        pool = model.pools[unit]
        groups: dict[tuple[str, str], list[float]] = defaultdict(list)
        for p in uc.patients:
            nxt = p.next_unit or model.next_unit(unit, p.patient_class)
            groups[(p.patient_class, nxt)].append(p.elapsed_hours)
        for (cls, nxt), elapsed in groups.items():
            e = np.asarray(elapsed, dtype=float)
            dist = model.los_rule(unit, cls, nxt).dist
            remaining = dist.sample_remaining(rng, e)
            for el, rem in zip(e.tolist(), remaining.tolist(), strict=True):
                pool.take()
                t_bed = now - el
                model.journey(
                    model.new_pid(), unit, cls, 3, t_bed,
                    first_next=nxt, first_stay=el + rem, t_bed=t_bed,
                )  # fmt: skip
    if model.ed_beds is None or model.clinicians is None:
        if census.ed_waiting or census.ed_in_treatment or census.ed_boarding:
            raise ValueError("the census has ED patients but the scenario has no ED")
        return
    # The census carries no acuity: draw it from the ambulance mix, the sicker one.
    acuity = model.acuity_chooser("ambulance")
    for _ in range(census.ed_waiting):
        model.ed_patient(model.new_pid(), "walk_in", acuity())
    for _ in range(census.ed_in_treatment):
        model.ed_beds.take()
        model.clinicians.take()
        model.ed_patient(model.new_pid(), "walk_in", acuity(), stage="treatment")
    for dest, count in census.ed_boarding.items():
        for _ in range(count):
            model.ed_beds.take()
            model.ed_patient(
                model.new_pid(), "ambulance", acuity(), stage="boarding", board_to=dest
            )


@dataclass
class Forecast:
    """``beds``: per unit and hour ahead, quantiles of available beds and P(no bed);
    ``icu_demand``: per hour 24–48 ahead, quantiles of ICU demand (patients in ICU beds
    plus those waiting for one) and P(demand > capacity); ``available``: the raw
    replications × hours arrays."""

    start: datetime
    beds: pd.DataFrame
    icu_demand: pd.DataFrame
    available: dict[str, FloatArray]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "beds": self.beds.to_dict(orient="records"),
            "icu_demand": self.icu_demand.to_dict(orient="records"),
        }


def forecast_from_census(
    census: Census,
    params: Scenario | str,
    horizon_hours: int = 6,
    replications: int = 200,
    seed: int = 1,
    *,
    icu_window: tuple[int, int] = (24, 48),
) -> Forecast:
    """Simulate forward from ``census`` and summarise bed availability by hour.

    Each census unit's ``capacity`` replaces the scenario's staffed beds; a unit missing
    from the census starts empty. Arrivals follow the scenario's profiles from the
    census hour of the week on.
    """
    base = load_scenario(params)
    if not isinstance(base, Scenario):
        raise TypeError("forecasts need a hospital scenario, not a regional one")
    icu_units = [u.name for u in base.units if u.kind == "icu"]
    hours = max(horizon_hours, icu_window[1] if icu_units else 0)
    units = tuple(
        replace(u, beds=census.units[u.name].capacity) if u.name in census.units else u
        for u in base.units
    )
    scenario = replace(
        base,
        units=units,
        run=replace(
            base.run,
            start_hour=census.hour_of_week,
            warmup_days=0.0,
            days=(hours + 0.5) / 24,
            snapshot_hours=1.0,
        ),
    )
    busy: dict[str, list[list[float]]] = defaultdict(list)
    demand: dict[str, list[list[float]]] = defaultdict(list)
    for r in range(replications):
        ss = replication_seed(seed, r)
        env = Environment(initial_time=scenario.run.start_hour)
        model = Model(env, scenario, ss)
        load_census(model, census, stream(ss, "census"))
        env.run(until=scenario.run.end)
        per_unit: dict[str, list[float]] = defaultdict(list)
        per_unit_q: dict[str, list[float]] = defaultdict(list)
        for _t, name, b, q in model.snapshots:
            if name in model.pools:
                per_unit[name].append(float(b))
                per_unit_q[name].append(float(b + q))
        for name in model.pools:
            busy[name].append(per_unit[name][: hours + 1])
            demand[name].append(per_unit_q[name][: hours + 1])
    rows = []
    available: dict[str, FloatArray] = {}
    for u in scenario.units:
        if u.beds is None:
            continue
        occ = np.array(busy[u.name], dtype=float)
        avail = np.maximum(u.beds - occ, 0.0)
        available[u.name] = avail
        for h in range(1, horizon_hours + 1):
            col = avail[:, h]
            rows.append(
                {
                    "unit": u.name,
                    "hours_ahead": h,
                    "capacity": u.beds,
                    "mean": float(col.mean()),
                    **{k: float(np.quantile(col, q)) for k, q in QUANTILES.items()},
                    "p_full": float((col <= 0).mean()),
                }
            )
    icu_rows = []
    for name in icu_units:
        d = np.array(demand[name], dtype=float)
        cap = scenario.unit(name).beds
        for h in range(icu_window[0], icu_window[1] + 1):
            col = d[:, h]
            icu_rows.append(
                {
                    "unit": name,
                    "hours_ahead": h,
                    "capacity": cap,
                    "mean": float(col.mean()),
                    **{k: float(np.quantile(col, q)) for k, q in QUANTILES.items()},
                    "p_over_capacity": float((col > (cap if cap is not None else math.inf)).mean()),
                }
            )
    return Forecast(
        start=census.time,
        beds=pd.DataFrame(rows),
        icu_demand=pd.DataFrame(icu_rows),
        available=available,
    )


def steady_census(
    scenario: Scenario, occupancy: Mapping[str, int], time: datetime, seed: int = 1
) -> Census:
    """A synthetic census with ``occupancy[unit]`` patients whose elapsed stays follow
    the equilibrium (length-biased, then uniformly cut) distribution: what a snapshot of
    a unit in steady state looks like. For demos and tests; never real patients."""
    rng = np.random.default_rng(seed)
    units: dict[str, UnitCensus] = {}
    cls = scenario.ed.admitted_class if scenario.ed is not None else "emergency"
    plain = replace(scenario, ed=None, surgery=None, classes=())
    dummy = Model(simpy.Environment(), plain, replication_seed(seed, 0))
    for u in scenario.units:
        n = int(occupancy.get(u.name, 0))
        dist = dummy.los_rule(u.name, cls, dummy.next_unit(u.name, cls)).dist
        draws = dist.sample(rng, max(4 * n, 64))
        # Length-biased resampling: a census catches long stays more often than short ones.
        picked = rng.choice(draws, n, p=draws / draws.sum()) if n else np.zeros(0)
        elapsed = picked * rng.random(n)
        units[u.name] = UnitCensus(
            capacity=u.beds if u.beds is not None else n,
            patients=tuple(CensusPatient(float(e), cls) for e in elapsed),
        )
    return Census(time=time, units=units)
