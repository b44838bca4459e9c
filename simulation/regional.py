"""The regional model: hospitals, ambulance incidents by zone, travel, and diversion.

A diversion policy is any callable that maps the hospitals' current status to the set
of hospitals that should be on diversion; the hub's coordination rules can be wrapped
as one. :class:`ThresholdDiversion` is a simple default with hysteresis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from simulation.arrivals import replication_seed, stream
from simulation.distributions import Sampler
from simulation.engine import Environment, Model, Pool, Proc
from simulation.params import RegionalScenario, ThresholdSettings
from simulation.results import (
    ReplicationResult,
    confidence_interval,
    model_audit,
    model_metrics,
    model_series,
)


@dataclass(frozen=True)
class HospitalStatus:
    """What a policy sees of one hospital at a review."""

    name: str
    ed_beds: int
    ed_occupied: int
    ed_waiting: int
    boarding: int
    free_beds: tuple[tuple[str, int], ...]
    on_diversion: bool

    @property
    def ed_pressure(self) -> float:
        return (self.ed_occupied + self.ed_waiting) / max(self.ed_beds, 1)


DiversionPolicy = Callable[[Mapping[str, HospitalStatus]], frozenset[str]]


@dataclass(frozen=True)
class NoDiversion:
    """Every ambulance goes to the nearest hospital."""

    def __call__(self, status: Mapping[str, HospitalStatus]) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True)
class ThresholdDiversion:
    """Divert when ED pressure reaches ``on_pressure``; end below ``off_pressure``.

    The gap between the two thresholds stops a hospital flapping on and off every
    review; and the region is never fully closed: if every hospital qualifies, the
    least pressured one stays open.
    """

    on_pressure: float = 1.25
    off_pressure: float = 0.9

    @staticmethod
    def from_settings(s: ThresholdSettings) -> ThresholdDiversion:
        return ThresholdDiversion(s.on_pressure, s.off_pressure)

    def __call__(self, status: Mapping[str, HospitalStatus]) -> frozenset[str]:
        out = {
            name
            for name, h in status.items()
            if h.ed_pressure >= (self.off_pressure if h.on_diversion else self.on_pressure)
        }
        if out and len(out) == len(status):
            out.discard(min(status.values(), key=lambda h: h.ed_pressure).name)
        return frozenset(out)


def policy_for(scenario: RegionalScenario) -> DiversionPolicy:
    if scenario.policy == "none":
        return NoDiversion()
    if scenario.policy == "threshold":
        return ThresholdDiversion.from_settings(scenario.threshold)
    raise ValueError(f"unknown policy {scenario.policy!r}: use 'none' or 'threshold'")


class Region:
    """Several hospital :class:`Model` objects sharing one SimPy environment.

    ``incidents`` records (zone, hospital, t_call, response_wait, travel, offload_wait,
    diverted) for every incident; a patient is "diverted" when taken past the nearest
    hospital.
    """

    def __init__(
        self,
        env: simpy.Environment,
        scenario: RegionalScenario,
        seed: np.random.SeedSequence,
        policy: DiversionPolicy,
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.policy = policy
        self.hospitals: dict[str, Model] = {}
        for i, h in enumerate(scenario.hospitals):
            # Each hospital draws from its own child so adding a hospital leaves the
            # others' random numbers alone.
            child = np.random.SeedSequence(
                entropy=seed.entropy, spawn_key=(*seed.spawn_key, 1_000 + i)
            )
            self.hospitals[h.name] = Model(env, h.scenario, child, external_ambulances=True)
        self.seed = seed
        self.diverted: frozenset[str] = frozenset()
        self.diversion_hours = dict.fromkeys(self.hospitals, 0.0)
        self.incidents: list[tuple[str, str, float, float, float, float, bool]] = []
        self.fleets: dict[str, Pool] = {}
        self._order: dict[str, list[tuple[float, str]]] = {}
        run = scenario.run
        for z in scenario.zones:
            self.fleets[z.name] = Pool(env, f"ambulances:{z.name}", z.ambulances)
            self._order[z.name] = sorted((scenario.travel(z.name, h), h) for h in self.hospitals)
            response = Sampler.of(z.response, stream(seed, f"zone:response:{z.name}"))
            times = z.incidents.times(
                stream(seed, f"zone:incidents:{z.name}"), run.start_hour, run.end
            )
            env.process(self._calls(z.name, times.tolist(), response))
        env.process(self._review())

    def status(self) -> dict[str, HospitalStatus]:
        out = {}
        for name, m in self.hospitals.items():
            beds = m.ed_beds
            if beds is None:
                continue
            out[name] = HospitalStatus(
                name=name,
                ed_beds=beds.capacity,
                ed_occupied=beds.busy,
                ed_waiting=beds.queued,
                boarding=m.boarding,
                free_beds=tuple((u, max(0, p.capacity - p.busy)) for u, p in m.pools.items()),
                on_diversion=name in self.diverted,
            )
        return out

    def _review(self) -> Proc:
        env = self.env
        step = self.scenario.threshold.review_hours
        warmup = self.scenario.run.warmup
        end = self.scenario.run.end
        while True:
            self.diverted = frozenset(self.policy(self.status()))
            counted = max(0.0, min(env.now + step, end) - max(env.now, warmup))
            for name in self.diverted:
                self.diversion_hours[name] += counted
            yield env.timeout(step)

    def destination(self, zone: str) -> tuple[str, bool]:
        order = self._order[zone]
        nearest_time, nearest = order[0]
        limit = nearest_time + self.scenario.threshold.max_extra_travel_hours
        for hours, name in order:
            if hours > limit:
                break
            if name not in self.diverted:
                return name, name != nearest
        # Diversion is advice, not a locked door: with nowhere acceptable open, the
        # crew goes to the nearest hospital.
        return nearest, False

    def _calls(self, zone: str, times: list[float], response: Sampler) -> Proc:
        env = self.env
        for t in times:
            yield env.timeout(t - env.now)
            env.process(self._incident(zone, response))

    def _incident(self, zone: str, response: Sampler) -> Proc:
        env = self.env
        fleet = self.fleets[zone]
        t0 = env.now
        if not fleet.try_take():
            yield fleet.wait(1)
        response_wait = env.now - t0
        yield env.timeout(response())
        dest, diverted = self.destination(zone)
        travel = self.scenario.travel(zone, dest)
        yield env.timeout(travel)
        offloaded = env.event()
        t_arrive = env.now
        self.hospitals[dest].ambulance_arrival(offloaded)
        yield offloaded
        offload = env.now - t_arrive
        self.incidents.append((zone, dest, t0, response_wait, travel, offload, diverted))
        yield env.timeout(travel)  # back to the zone
        fleet.release()


def region_metrics(region: Region) -> dict[str, float]:
    run = region.scenario.run
    w = run.warmup
    window = region.env.now - w
    rows = [r for r in region.incidents if r[2] >= w]
    m: dict[str, float] = {}
    for name, model in region.hospitals.items():
        m.update(model_metrics(model, prefix=f"{name}."))
        m[f"{name}.diversion_share"] = region.diversion_hours[name] / window
        m[f"{name}.ambulances_per_day"] = sum(1 for r in rows if r[1] == name) / window * 24
    if rows:
        arr = np.array([(r[3], r[4], r[5], r[6]) for r in rows], dtype=float)
        m["region.incidents_per_day"] = len(rows) / window * 24
        m["region.response_wait_mean_min"] = float(arr[:, 0].mean() * 60)
        m["region.travel_mean_min"] = float(arr[:, 1].mean() * 60)
        m["region.offload_mean_min"] = float(arr[:, 2].mean() * 60)
        m["region.offload_p95_min"] = float(np.quantile(arr[:, 2], 0.95) * 60)
        m["region.offload_hours_per_day"] = float(arr[:, 2].sum()) / window * 24
        m["region.diverted_share"] = float(arr[:, 3].mean())
    waits = [m[f"{h}.ed.wait_mean_h"] for h in region.hospitals]
    m["region.ed_wait_mean_h_worst"] = max(waits) if waits else math.nan
    return m


def run_regional_replication(
    scenario: RegionalScenario,
    replication: int = 0,
    seed: int = 1,
    *,
    policy: DiversionPolicy | None = None,
) -> ReplicationResult:
    env = Environment(initial_time=scenario.run.start_hour)
    region = Region(
        env, scenario, replication_seed(seed, replication), policy or policy_for(scenario)
    )
    env.run(until=scenario.run.end)
    series: dict[str, list[float]] = {}
    audit = {}
    start = scenario.run.warmup
    for name, model in region.hospitals.items():
        audit.update({f"{name}.{k}": v for k, v in model_audit(model).items()})
        s, start = model_series(model)
        series.update({f"{name}.{k}": v for k, v in s.items()})
    return ReplicationResult(
        scenario=scenario.name,
        replication=replication,
        seed=seed,
        metrics=region_metrics(region),
        series=series,
        series_start=start,
        series_step=scenario.run.snapshot_hours,
        audit=audit,
    )


REGION_METRICS = (
    "region.offload_mean_min",
    "region.offload_p95_min",
    "region.offload_hours_per_day",
    "region.response_wait_mean_min",
    "region.travel_mean_min",
    "region.diverted_share",
    "region.ed_wait_mean_h_worst",
)


def compare_policies(
    scenario: RegionalScenario,
    policies: Mapping[str, DiversionPolicy],
    replications: int = 20,
    seed: int = 1,
    *,
    processes: int | None = None,
    metrics: tuple[str, ...] = REGION_METRICS,
) -> pd.DataFrame:
    """What each diversion policy does to the region, before anyone applies it.

    Every policy meets the same incidents and patients (same seeds); deltas are paired
    against the first policy, with 95% CIs. Policies must be picklable (module-level
    classes or dataclasses) when ``processes`` > 1.
    """
    # Imported here because the runner imports this module.
    from simulation.runner import Task, run_tasks

    names = list(policies)
    tasks: list[Task] = [
        (scenario, i, seed, policies[name]) for name in names for i in range(replications)
    ]
    runs = run_tasks(tasks, processes)
    by = {name: runs[k * replications : (k + 1) * replications] for k, name in enumerate(names)}
    wanted = list(metrics) + [f"{h.name}.ed.wait_mean_h" for h in scenario.hospitals]
    wanted += [f"{h.name}.diversion_share" for h in scenario.hospitals]
    rows = []
    ref = by[names[0]]
    for name in names:
        for m in wanted:
            vals = [r.metrics.get(m, math.nan) for r in by[name]]
            base = [r.metrics.get(m, math.nan) for r in ref]
            mean, _sd, lo, hi = confidence_interval(vals)
            delta, _dsd, dlo, dhi = confidence_interval(
                [v - b for v, b in zip(vals, base, strict=True)]
            )
            rows.append(
                {
                    "policy": name,
                    "metric": m,
                    "mean": mean,
                    "ci_low": lo,
                    "ci_high": hi,
                    f"delta_vs_{names[0]}": delta,
                    "delta_ci_low": dlo,
                    "delta_ci_high": dhi,
                }
            )
    return pd.DataFrame(rows)
