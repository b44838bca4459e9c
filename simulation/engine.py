"""The patient-flow engine: one SimPy environment, bed pools, and patient processes.

A :class:`Model` runs one hospital (or any unit network) inside a SimPy environment it
is given, so the regional model can put several hospitals in one environment. All the
randomness comes from named streams of one replication's ``SeedSequence`` and every
outcome is appended to plain lists of tuples; :mod:`simulation.results` turns them into
DataFrames and metrics after the run.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import numpy as np
import simpy
from simpy.core import BoundClass, SimTime
from simpy.events import NORMAL, URGENT

from simulation.arrivals import stream
from simulation.distributions import Chooser, Sampler
from simulation.params import EXIT, EDParams, LosRule, Scenario, SurgeryParams

Proc = Generator[simpy.Event, Any, None]
NAN = math.nan
UNLIMITED = sys.maxsize


class Environment(simpy.Environment):
    """``simpy.Environment`` with the event loop of ``run(until=time)`` written out.

    SimPy's ``run`` calls ``step()`` once per event and stops through an exception
    raised by a callback of its ``until`` event. A month's replication processes about
    45,000 events, and that per-event method call is a tenth of the time; this loop does
    the same work in the same order (same heap, same event ids, same failure rule), so
    seeded results are unchanged. Other forms of ``until`` go to SimPy's own loop.
    """

    def __init__(self, initial_time: SimTime = 0) -> None:
        super().__init__(initial_time)
        # SimPy binds its event classes (timeout, event, process ...) to the instance so
        # that `env.timeout(...)` skips a descriptor call and a bound-method object, but
        # only those found in the instance's own class, not in a base: bind them here.
        for name, obj in vars(simpy.Environment).items():
            if type(obj) is BoundClass:
                setattr(self, name, getattr(self, name))

    def run(self, until: SimTime | simpy.Event | None = None) -> Any:
        if until is None or isinstance(until, simpy.Event):
            return super().run(until)
        at: SimTime = until if isinstance(until, int) else float(until)
        if at <= self._now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        # Scheduled as SimPy schedules it: URGENT, so it runs before ordinary events at `at`.
        stop = simpy.Event(self)
        stop._ok = True
        stop._value = None
        self.schedule(stop, URGENT, at - self._now)
        queue = self._queue
        pop = heapq.heappop
        while queue:
            self._now, _, _, event = pop(queue)
            if event is stop:
                stop.callbacks = None  # type: ignore[assignment]  # "processed", as SimPy marks it
                return None
            callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc
        raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {stop}')


class _Wake:
    """A callback scheduled for a later time, with no more to it than the event loop
    (ours or SimPy's ``step``) reads: ``callbacks`` and ``_ok``."""

    __slots__ = ("_ok", "callbacks")

    def __init__(self, callback: Callable[[Any], None]) -> None:
        self.callbacks = [callback]
        self._ok = True


def call_later(
    env: simpy.Environment,
    delay: float,
    callback: Callable[[Any], None],
    priority: int = NORMAL,
) -> None:
    """Call ``callback(event)`` ``delay`` hours from now.

    The same heap entry as ``env.timeout(delay).callbacks.append(callback)`` (same time,
    priority and event id, so the same order and the same seeded results) without a
    ``Timeout`` object: its constructor, ``schedule`` call and attributes are a large
    part of the cost of each of a month's tens of thousands of ED and ward events.
    With ``priority=URGENT`` and no delay it is how SimPy starts a new process.
    """
    if delay < 0:
        raise ValueError(f"Negative delay {delay}")
    queue: list[Any] = env._queue  # SimPy types it as holding Events; _Wake quacks as one
    heapq.heappush(queue, (env._now + delay, priority, next(env._eid), _Wake(callback)))


class Pool:
    """A counted resource (beds, clinicians) with a priority queue and occupancy integrals.

    Leaner than ``simpy.PriorityResource`` because it hands out counts rather than
    request objects, and it tracks what the outputs need as it goes: the time integral
    of busy units and of the queue, the time spent at each occupancy level and the
    occupancy each arrival finds (the occupancy audit).
    """

    __slots__ = (
        "_seq",
        "_waiting",
        "area",
        "arrivals",
        "busy",
        "capacity",
        "env",
        "last",
        "level_time",
        "name",
        "qarea",
        "queued",
        "seen",
    )

    def __init__(self, env: simpy.Environment, name: str, capacity: int | None) -> None:
        self.env = env
        self.name = name
        self.capacity = UNLIMITED if capacity is None else capacity
        self.busy = 0
        self.queued = 0
        self._waiting: list[tuple[int, int, simpy.Event]] = []
        self._seq = 0
        self.last = env.now
        self.area = 0.0
        self.qarea = 0.0
        self.arrivals = 0
        self.level_time: list[float] = [0.0]
        self.seen: list[int] = [0]

    def _advance(self) -> None:
        now = self.env._now  # the attribute, not the property: this runs on every event
        dt = now - self.last
        if dt > 0:
            busy = self.busy
            self.area += busy * dt
            self.qarea += self.queued * dt
            try:
                self.level_time[busy] += dt
            except IndexError:  # a new highest occupancy: rare, so cheaper than a check
                self.level_time.extend([0.0] * (busy + 1 - len(self.level_time)))
                self.level_time[busy] += dt
            self.last = now

    def close(self) -> None:
        """Bring the integrals up to now (at the end of a run)."""
        self._advance()

    def arrive(self) -> None:
        """Count an arrival and the occupancy it finds (for the audit)."""
        self.arrivals += 1
        busy = self.busy
        seen = self.seen
        if busy >= len(seen):
            seen.extend([0] * (busy + 1 - len(seen)))
        seen[busy] += 1

    def try_take(self) -> bool:
        busy = self.busy
        if busy < self.capacity and not self.queued:
            # _advance() written out: this and release() run on most events.
            now = self.env._now
            dt = now - self.last
            if dt > 0:
                self.area += busy * dt
                try:
                    self.level_time[busy] += dt
                except IndexError:
                    self.level_time.extend([0.0] * (busy + 1 - len(self.level_time)))
                    self.level_time[busy] += dt
                self.last = now
            self.busy = busy + 1
            return True
        return False

    def take(self) -> None:
        """Take one unit even beyond capacity (census loading)."""
        self._advance()
        self.busy += 1

    def wait(self, priority: int) -> simpy.Event:
        self._advance()
        event = self.env.event()
        self._seq += 1
        heapq.heappush(self._waiting, (priority, self._seq, event))
        self.queued += 1
        return event

    def release(self) -> None:
        busy = self.busy
        now = self.env._now
        dt = now - self.last
        if dt > 0:  # _advance() written out, as in try_take()
            self.area += busy * dt
            self.qarea += self.queued * dt
            try:
                self.level_time[busy] += dt
            except IndexError:
                self.level_time.extend([0.0] * (busy + 1 - len(self.level_time)))
                self.level_time[busy] += dt
            self.last = now
        if self.queued and busy <= self.capacity:
            # The freed unit passes straight to the head of the queue.
            self.queued -= 1
            heapq.heappop(self._waiting)[2].succeed()
        else:
            self.busy -= 1

    def set_capacity(self, capacity: int) -> None:
        self._advance()
        self.capacity = capacity
        while self.queued and self.busy < capacity:
            self.busy += 1
            self.queued -= 1
            heapq.heappop(self._waiting)[2].succeed()

    def reset_stats(self) -> None:
        """Forget everything before now: called at the end of the warm-up."""
        self._advance()
        self.area = 0.0
        self.qarea = 0.0
        self.arrivals = 0
        self.level_time = [0.0] * len(self.level_time)
        self.seen = [0] * len(self.seen)


class Model:
    """One hospital or unit network, built from a :class:`Scenario`.

    Records (all times in hours since Monday 00:00 of week 0):

    - ``stays``: (pid, unit, class, t_request, t_bed, t_ready, t_release, next) per bed
      stay; ``t_bed`` is NaN when the patient was turned away (``on_full = "block"``).
    - ``visits``: (pid, mode, acuity, t_arrival, t_bed, t_seen, t_decision, t_departure,
      destination) per ED visit; destination "" for patients sent home.
    - ``cases``: (day, room, case type, t_start, t_end, status, destination) per
      booked elective case; status "done", "cancelled_no_bed" or "cancelled_overrun".
    - ``sessions``: (day, room, t_open, t_close, t_last_end, case_hours).
    - ``snapshots``: (t, pool name, busy, queued) every ``run.snapshot_hours``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        seed: np.random.SeedSequence,
        *,
        external_ambulances: bool = False,
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.seed = seed
        self.run = scenario.run
        self.pools: dict[str, Pool] = {u.name: Pool(env, u.name, u.beds) for u in scenario.units}
        self.block = {u.name: u.on_full == "block" for u in scenario.units}
        self.use_discharge_hours = {
            u.name: u.discharge_profile and scenario.discharge_hours is not None
            for u in scenario.units
        }
        self.stays: list[tuple[int, str, str, float, float, float, float, str]] = []
        self.visits: list[tuple[int, str, int, float, float, float, float, float, str]] = []
        self.cases: list[tuple[int, int, str, float, float, str, str]] = []
        self.sessions: list[tuple[int, int, float, float, float, float]] = []
        self.snapshots: list[tuple[float, str, int, int]] = []
        self.in_bed: dict[int, tuple[str, str, float, float]] = {}
        self.in_ed: dict[int, float] = {}
        self.boarding = 0
        self._pid = 0
        self._routes: dict[tuple[str, str], tuple[list[str], Chooser] | None] = {}
        self._los: dict[tuple[str, str, str], Sampler] = {}
        self._discharge: Sampler | None = None
        if scenario.discharge_hours is not None:
            self._discharge = self._hour_sampler(scenario.discharge_hours, "discharge_hour")
        self.ed_beds: Pool | None = None
        self.clinicians: Pool | None = None
        if scenario.ed is not None:
            self._init_ed(scenario.ed, external_ambulances)
        if scenario.surgery is not None:
            env.process(self._surgery_days(scenario.surgery))
        for cls in scenario.classes:
            if cls.unit not in self.pools:
                raise KeyError(f"class {cls.name!r} arrives into unknown unit {cls.unit!r}")
            times = cls.arrivals.times(
                self.rng(f"arrivals:{cls.name}"), self.run.start_hour, self.run.end
            )
            self._source(times, self._class_arrival(cls.name, cls.unit, cls.priority))
        if self.run.initial_occupancy:
            rng = self.rng("initial")
            for unit, n in self.run.initial_occupancy:
                self.fill(unit, n, self.initial_class(unit), rng)
        env.process(self._warmup())
        env.process(self._snapshot())

    # -- plumbing ---------------------------------------------------------------------

    def rng(self, name: str) -> np.random.Generator:
        return stream(self.seed, name)

    def new_pid(self) -> int:
        self._pid += 1
        return self._pid

    def all_pools(self) -> dict[str, Pool]:
        pools = dict(self.pools)
        if self.ed_beds is not None and self.clinicians is not None:
            pools["ed"] = self.ed_beds
            pools["ed_clinicians"] = self.clinicians
        return pools

    def _hour_sampler(self, weights: Iterable[float], name: str) -> Sampler:
        p = np.asarray(list(weights), dtype=float)
        p = p / p.sum()
        rng = self.rng(name)
        return Sampler(lambda n: rng.choice(24, n, p=p) + rng.random(n))

    def _warmup(self) -> Proc:
        yield self.env.timeout(max(self.run.warmup - self.env.now, 0.0))
        for pool in self.all_pools().values():
            pool.reset_stats()

    def _snapshot(self) -> Proc:
        env = self.env
        step = self.run.snapshot_hours
        pools = list(self.all_pools().values())
        snaps = self.snapshots
        while True:
            now = env.now
            for p in pools:
                snaps.append((now, p.name, p.busy, p.queued))
            if self.ed_beds is not None:
                snaps.append((now, "ed_boarding", self.boarding, 0))
            yield env.timeout(step)

    def _source(self, times: Iterable[float], make: Callable[[], None]) -> None:
        """Call ``make`` at each of ``times``: a chain of timeout callbacks rather than a
        process, because arrivals are a large share of all events and a process adds a
        generator resumption to each. It starts as a process would, from an URGENT
        event at the current time, so events keep the order they had as a process."""
        # As Python floats: iterating a numpy array yields numpy scalars, and the clock
        # would then run on numpy float64 (several times slower to add and compare in the
        # event heap) from the first arrival on. Same IEEE doubles, same results.
        _ArrivalSource(self.env, iter(np.asarray(times, dtype=float).tolist()), make)

    def initial_class(self, unit: str) -> str:
        """The class given to patients found in ``unit`` at the start of a run."""
        if self.scenario.ed is not None:
            return self.scenario.ed.admitted_class
        for c in self.scenario.classes:
            if c.unit == unit:
                return c.name
        return self.scenario.classes[0].name if self.scenario.classes else "initial"

    def fill(self, unit: str, n: int, cls: str, rng: np.random.Generator) -> None:
        """Put ``n`` patients of ``cls`` into ``unit`` as a unit in steady state holds them.

        A snapshot catches long stays more often than short ones, so each patient's total
        stay is drawn length-biased and the time already spent uniformly within it.
        """
        if n <= 0:
            return
        env = self.env
        now = env.now
        pool = self.pools[unit]
        nexts = [self.next_unit(unit, cls) for _ in range(n)]
        for nxt in sorted(set(nexts)):
            k = nexts.count(nxt)
            dist = self.los_rule(unit, cls, nxt).dist
            draws = dist.sample(rng, max(8 * k, 256))
            total = rng.choice(draws, k, p=draws / draws.sum())
            elapsed = total * rng.random(k)
            for el, tot in zip(elapsed.tolist(), total.tolist(), strict=True):
                pool.take()
                t_bed = now - el
                self.journey(
                    self.new_pid(), unit, cls, 3, t_bed, first_next=nxt, first_stay=tot,
                    t_bed=t_bed,
                )  # fmt: skip

    # -- the unit network ---------------------------------------------------------------

    def next_unit(self, unit: str, cls: str) -> str:
        key = (unit, cls)
        if key in self._routes:
            entry = self._routes[key]
        else:
            entry = self._routes[key] = self._make_route(unit, cls)
        if entry is None:
            return EXIT
        targets, chooser = entry
        return targets[chooser()]

    def _make_route(self, unit: str, cls: str) -> tuple[list[str], Chooser] | None:
        routes = [r for r in self.scenario.routes if r.unit == unit]
        chosen = [r for r in routes if r.patient_class == cls] or [
            r for r in routes if r.patient_class is None
        ]
        if not chosen:
            return None
        targets = [t for t, _ in chosen[0].to]
        for t in targets:
            if t != EXIT and t not in self.pools:
                raise KeyError(f"route from {unit!r} goes to unknown unit {t!r}")
        probs = [p for _, p in chosen[0].to]
        return targets, Chooser(probs, self.rng(f"route:{unit}:{cls}"))

    def los_rule(self, unit: str, cls: str, nxt: str) -> LosRule:
        best: LosRule | None = None
        best_score = -1
        for rule in self.scenario.los:
            if rule.unit != unit:
                continue
            if rule.patient_class not in (None, cls) or rule.next_unit not in (None, nxt):
                continue
            score = 2 * (rule.patient_class is not None) + (rule.next_unit is not None)
            if score > best_score:
                best, best_score = rule, score
        if best is None:
            raise KeyError(f"no length of stay for unit {unit!r}, class {cls!r}, next {nxt!r}")
        return best

    def los_sampler(self, unit: str, cls: str, nxt: str) -> Sampler:
        key = (unit, cls, nxt)
        sampler = self._los.get(key)
        if sampler is None:
            dist = self.los_rule(unit, cls, nxt).dist
            sampler = Sampler.of(dist, self.rng(f"los:{unit}:{cls}:{nxt}"))
            self._los[key] = sampler
        return sampler

    def discharge_time(self, ready: float) -> float:
        """First time at or after ``ready`` at an hour drawn from the discharge profile:
        patients become fit to leave at any hour, but wards discharge in the daytime."""
        sampler = self._discharge
        if sampler is None:
            return ready
        t = math.floor(ready / 24) * 24 + sampler()
        return t if t >= ready else t + 24

    def _class_arrival(self, cls: str, unit: str, priority: int) -> Callable[[], None]:
        def make() -> None:
            self.env.process(self.admit(self.new_pid(), unit, cls, priority))

        return make

    def admit(self, pid: int, unit: str, cls: str, priority: int) -> Proc:
        """An arrival from outside into ``unit``: wait for a bed, or be turned away."""
        env = self.env
        pool = self.pools[unit]
        t_req = env.now
        pool.arrive()
        if not pool.try_take():
            if self.block[unit]:
                self.stays.append((pid, unit, cls, t_req, NAN, NAN, NAN, "blocked"))
                return
            yield pool.wait(priority)
        self.journey(pid, unit, cls, priority, t_req, at_once=True)

    def journey(
        self,
        pid: int,
        unit: str,
        cls: str,
        priority: int,
        t_req: float,
        first_next: str | None = None,
        first_stay: float | None = None,
        t_bed: float | None = None,
        *,
        at_once: bool = False,
    ) -> None:
        """Start a patient's way from a bed in ``unit`` (already held) through transfers
        to the exit.

        A transferring patient keeps the old bed until the new unit has one (blocking
        after service), which is how ICU step-downs block ICU beds in real hospitals.
        Stays run from ``t_bed`` (default: when the journey starts).
        ``first_next``/``first_stay``/``t_bed`` let a census warm start fix the first leg
        of a patient already in a bed.

        The journey starts as a new SimPy process would (from an URGENT event at the
        current time) unless ``at_once``, which starts it now, for a caller that is itself
        a process continuing into the journey.
        """
        j = _Journey(self, pid, unit, cls, priority, t_req, first_next, first_stay, t_bed)
        if at_once:
            j.start(None)
        else:
            call_later(self.env, 0, j.start, URGENT)

    # -- emergency department -------------------------------------------------------------

    def _init_ed(self, ed: EDParams, external_ambulances: bool) -> None:
        env = self.env
        self.ed_beds = Pool(env, "ed", ed.beds)
        by_hour = ed.clinicians_by_hour()
        self.clinicians = Pool(env, "ed_clinicians", by_hour[int(self.run.start_hour) % 24])
        self._by_hour = by_hour
        self._admitted_class = ed.admitted_class
        levels = sorted(ed.acuity, key=lambda a: a.level)
        self._levels = [a.level for a in levels]
        self._assess = [Sampler.of(a.assessment, self.rng(f"ed:assess:{a.level}")) for a in levels]
        self._observe = [
            Sampler.of(a.observation, self.rng(f"ed:observe:{a.level}")) for a in levels
        ]
        self._admit_p = [a.admit_probability for a in levels]
        admit_rng = self.rng("ed:admit")
        self._admit_u = Sampler(admit_rng.random)
        self._admit_to: list[tuple[list[str], Chooser] | None] = []
        for a in levels:
            if a.admit_to:
                for dest, _ in a.admit_to:
                    if dest not in self.pools:
                        raise KeyError(f"ED admits to unknown unit {dest!r}")
                chooser = Chooser([p for _, p in a.admit_to], self.rng(f"ed:dest:{a.level}"))
                self._admit_to.append(([d for d, _ in a.admit_to], chooser))
            elif a.admit_probability > 0:
                raise ValueError(f"acuity {a.level} admits patients but has no admit_to")
            else:
                self._admit_to.append(None)
        self._acuity = {
            "walk_in": Chooser([a.walk_in_share for a in levels], self.rng("ed:acuity:walk_in")),
            "ambulance": Chooser(
                [a.ambulance_share for a in levels], self.rng("ed:acuity:ambulance")
            ),
        }
        start, end = self.run.start_hour, self.run.end
        walk = ed.walk_in.times(self.rng("arrivals:walk_in"), start, end)
        self._source(walk, self._ed_arrival("walk_in"))
        if not external_ambulances:
            amb = ed.ambulance.times(self.rng("arrivals:ambulance"), start, end)
            self._source(amb, self._ed_arrival("ambulance"))
        env.process(self._shifts())

    def _shifts(self) -> Proc:
        env = self.env
        clinicians = self.clinicians
        if clinicians is None:
            return
        by_hour = self._by_hour
        while True:
            yield env.timeout(math.floor(env.now) + 1 - env.now)
            want = by_hour[int(env.now) % 24]
            if want != clinicians.capacity:
                clinicians.set_capacity(want)

    def _ed_arrival(self, mode: str) -> Callable[[], None]:
        chooser = self._acuity[mode]

        def make() -> None:
            self.ed_patient(self.new_pid(), mode, chooser())

        return make

    def acuity_chooser(self, mode: str) -> Chooser:
        """Draws an acuity index for ``mode`` ("walk_in" or "ambulance")."""
        return self._acuity[mode]

    def ambulance_arrival(self, offloaded: simpy.Event | None = None) -> None:
        """An ambulance patient handed over from outside (the regional model)."""
        idx = self._acuity["ambulance"]()
        self.ed_patient(self.new_pid(), "ambulance", idx, offloaded=offloaded)

    def ed_patient(
        self,
        pid: int,
        mode: str,
        idx: int,
        *,
        offloaded: simpy.Event | None = None,
        stage: str = "arrival",
        board_to: str = "",
    ) -> None:
        """Start an ED visit now: wait for a cubicle (ambulance offload), then a
        clinician; be assessed and observed; go home, or board in the cubicle until an
        inpatient bed is free, then continue as an inpatient.

        ``stage`` lets a census start a patient already in treatment or boarding (to
        ``board_to``); such a patient holds a cubicle (and clinician) taken by the loader.
        """
        if self.ed_beds is None or self.clinicians is None:
            raise RuntimeError("this scenario has no emergency department")
        visit = _Visit(self, self.ed_beds, self.clinicians, pid, mode, idx, offloaded, board_to)
        if stage == "arrival":
            visit.arrive()
        elif stage == "treatment":
            visit.bedded(None, with_clinician=True)
        else:
            visit.bedded(None, with_clinician=True, skip_treatment=True)

    # -- elective surgery -----------------------------------------------------------------

    def _surgery_days(self, surgery: SurgeryParams) -> Proc:
        env = self.env
        types = surgery.case_types
        book = Chooser([c.share for c in types], self.rng("or:booking"))
        self._durations = [Sampler.of(c.duration, self.rng(f"or:duration:{c.name}")) for c in types]
        self._dest = [
            (
                [d for d, _ in c.destination],
                Chooser([p for _, p in c.destination], self.rng(f"or:dest:{c.name}")),
            )
            for c in types
        ]
        day = math.floor(self.run.start_hour / 24)
        while True:
            t_open = day * 24 + surgery.session_start
            if t_open >= self.run.start_hour:
                yield env.timeout(t_open - env.now)
                if day % 7 in surgery.weekdays:
                    for room in range(surgery.rooms):
                        booked: list[int] = []
                        planned = 0.0
                        limit = surgery.booking_fill * surgery.session_hours
                        while True:
                            k = book()
                            need = types[k].duration.true_mean + (surgery.turnover if booked else 0)
                            if booked and planned + need > limit:
                                break
                            booked.append(k)
                            planned += need
                        env.process(self._session(surgery, day, room, booked))
            day += 1

    def _session(self, surgery: SurgeryParams, day: int, room: int, booked: list[int]) -> Proc:
        env = self.env
        types = surgery.case_types
        t_open = env.now
        t_close = t_open + surgery.session_hours
        last_start = t_close - surgery.last_start_before_end
        case_hours = 0.0
        t_last = t_open
        for k in booked:
            ctype = types[k]
            targets, chooser = self._dest[k]
            dest = targets[chooser()]
            if t_last > t_open and env.now < t_last + surgery.turnover:
                yield env.timeout(t_last + surgery.turnover - env.now)
            if env.now >= last_start:
                self.cases.append((day, room, ctype.name, NAN, NAN, "cancelled_overrun", dest))
                continue
            pool = self.pools.get(dest) if dest != EXIT else None
            has_bed = True
            pid = 0
            if pool is not None:
                pool.arrive()
                if pool.try_take():
                    # The post-op bed is held from the start of surgery: that is when the
                    # theatre team checks that the patient will have somewhere to go.
                    pid = self.new_pid()
                    self.in_bed[pid] = (dest, ctype.patient_class, env.now, env.now)
                elif surgery.cancel_if_no_bed:
                    self.cases.append((day, room, ctype.name, NAN, NAN, "cancelled_no_bed", dest))
                    continue
                else:
                    has_bed = False
            t_start = env.now
            yield env.timeout(self._durations[k]())
            t_last = env.now
            case_hours += t_last - t_start
            self.cases.append((day, room, ctype.name, t_start, t_last, "done", dest))
            if pool is not None:
                cls = ctype.patient_class
                if has_bed:
                    self.journey(pid, dest, cls, 3, t_start, t_bed=t_start)
                else:
                    env.process(self._post_op_wait(self.new_pid(), dest, cls))
        self.sessions.append((day, room, t_open, t_close, t_last, case_hours))

    def _post_op_wait(self, pid: int, unit: str, cls: str) -> Proc:
        pool = self.pools[unit]
        t_req = self.env.now
        yield pool.wait(2)
        self.journey(pid, unit, cls, 2, t_req, at_once=True)


class _Visit:
    """One ED visit, driven by event callbacks rather than a SimPy process.

    An ED visit is the commonest thing the engine simulates (about 100,000 a year);
    callbacks on its few events save the process start-up and wind-down events that a
    generator process would add to each visit, about a third of the ED's event load.
    The steps are the methods below, in order.
    """

    __slots__ = (
        "beds",
        "board_to",
        "doc",
        "idx",
        "level",
        "m",
        "mode",
        "offloaded",
        "pid",
        "t0",
        "t_bed",
        "t_dec",
        "t_seen",
        "waited",
    )

    def __init__(
        self,
        model: Model,
        beds: Pool,
        doc: Pool,
        pid: int,
        mode: str,
        idx: int,
        offloaded: simpy.Event | None,
        board_to: str,
    ) -> None:
        self.m = model
        self.beds = beds
        self.doc = doc
        self.pid = pid
        self.mode = mode
        self.idx = idx
        self.level = model._levels[idx]
        self.offloaded = offloaded
        self.board_to = board_to
        self.t0 = self.t_bed = self.t_seen = self.t_dec = model.env.now
        self.waited = False

    def arrive(self) -> None:
        beds = self.beds
        beds.arrive()
        if beds.try_take():
            self.bedded(None)
        else:
            beds.wait(self.level).callbacks.append(self.bedded)

    def bedded(
        self, _event: simpy.Event | None, with_clinician: bool = False, skip_treatment: bool = False
    ) -> None:
        m = self.m
        now = m.env.now
        self.t_bed = now
        m.in_ed[self.pid] = now
        if self.offloaded is not None:
            self.offloaded.succeed(now)
        if skip_treatment:
            self.decide(None)
            return
        doc = self.doc
        if with_clinician or doc.try_take():
            self.seen(None)
        else:
            doc.wait(self.level).callbacks.append(self.seen)

    def seen(self, _event: simpy.Event | None) -> None:
        m = self.m
        self.t_seen = m.env.now
        call_later(m.env, m._assess[self.idx](), self.assessed)

    def assessed(self, _event: simpy.Event) -> None:
        m = self.m
        self.doc.release()
        obs = m._observe[self.idx]()
        if obs > 0:
            call_later(m.env, obs, self.decide)
        else:
            self.decide(None)

    def decide(self, _event: simpy.Event | None) -> None:
        m = self.m
        idx = self.idx
        self.t_dec = m.env.now
        target = m._admit_to[idx]
        dest = self.board_to
        if not dest and target is not None and m._admit_u() < m._admit_p[idx]:
            dest = target[0][target[1]()]
        if not dest:
            self.leave("")
            return
        self.board_to = dest
        pool = m.pools[dest]
        pool.arrive()
        if pool.try_take():
            self.admitted(None)
        elif m.block[dest]:
            m.stays.append(
                (self.pid, dest, m._admitted_class, self.t_dec, NAN, NAN, NAN, "blocked")
            )
            self.leave("transferred")
        else:
            m.boarding += 1
            self.waited = True
            pool.wait(self.level).callbacks.append(self.admitted)

    def admitted(self, _event: simpy.Event | None) -> None:
        m = self.m
        if self.waited:
            m.boarding -= 1
        dest = self.board_to
        self.leave(dest)
        m.journey(self.pid, dest, m._admitted_class, self.level, self.t_dec)

    def leave(self, destination: str) -> None:
        m = self.m
        self.beds.release()
        del m.in_ed[self.pid]
        m.visits.append(
            (
                self.pid,
                self.mode,
                self.level,
                self.t0,
                self.t_bed,
                self.t_seen,
                self.t_dec,
                m.env.now,
                destination,
            )
        )


class _ArrivalSource:
    """Calls ``make`` at each time of an iterator of increasing times (see
    :meth:`Model._source`)."""

    __slots__ = ("env", "make", "times")

    def __init__(
        self, env: simpy.Environment, times: Iterator[float], make: Callable[[], None]
    ) -> None:
        self.env = env
        self.times = times
        self.make = make
        call_later(env, 0, self._next, URGENT)

    def _next(self, _event: simpy.Event) -> None:
        t = next(self.times, None)
        if t is not None:
            env = self.env
            call_later(env, t - env._now, self._fire)

    def _fire(self, event: simpy.Event) -> None:
        self.make()
        self._next(event)


class _Journey:
    """One patient's stays from a held bed through transfers to the exit
    (:meth:`Model.journey`), driven by event callbacks like :class:`_Visit`: a generator
    process would add a start and an end event and a generator resumption per step to
    each of the several thousand inpatient journeys of a month."""

    __slots__ = (
        "cls",
        "first_next",
        "first_stay",
        "m",
        "nxt",
        "pid",
        "pool",
        "priority",
        "t_bed",
        "t_ready",
        "t_req",
        "unit",
    )

    def __init__(
        self,
        model: Model,
        pid: int,
        unit: str,
        cls: str,
        priority: int,
        t_req: float,
        first_next: str | None,
        first_stay: float | None,
        t_bed: float | None,
    ) -> None:
        self.m = model
        self.pid = pid
        self.unit = unit
        self.cls = cls
        self.priority = priority
        self.t_req = t_req
        self.first_next = first_next
        self.first_stay = first_stay
        # The start event (if any) runs at this same simulated time.
        self.t_bed: float = model.env._now if t_bed is None else t_bed
        self.nxt = EXIT
        self.t_ready = NAN
        self.pool = model.pools[unit]

    def start(self, _event: simpy.Event | None) -> None:
        self.stay()

    def stay(self) -> None:
        """Hold the bed in ``unit`` from ``t_bed`` until ready to leave it."""
        m = self.m
        unit, cls, t_bed = self.unit, self.cls, self.t_bed
        self.pool = m.pools[unit]
        m.in_bed[self.pid] = (unit, cls, self.t_req, t_bed)
        if self.first_next is not None:
            nxt, self.first_next = self.first_next, None
        else:
            nxt = m.next_unit(unit, cls)
        if self.first_stay is not None:
            stay, self.first_stay = self.first_stay, None
        else:
            stay = m.los_sampler(unit, cls, nxt)()
        self.nxt = nxt
        ready = t_bed + stay
        env = m.env
        if nxt == EXIT:
            if m.use_discharge_hours[unit]:
                ready = m.discharge_time(ready)
            call_later(env, max(ready - env._now, 0.0), self.discharged)
        else:
            call_later(env, max(ready - env._now, 0.0), self.ready)

    def discharged(self, _event: simpy.Event) -> None:
        m = self.m
        self.pool.release()
        del m.in_bed[self.pid]
        now = m.env._now
        m.stays.append((self.pid, self.unit, self.cls, self.t_req, self.t_bed, now, now, EXIT))

    def ready(self, _event: simpy.Event) -> None:
        m = self.m
        self.t_ready = t_ready = m.env._now
        nxt = self.nxt
        npool = m.pools[nxt]
        npool.arrive()
        if npool.try_take():
            self.moved(None)
        elif m.block[nxt]:
            self.pool.release()
            pid, cls = self.pid, self.cls
            del m.in_bed[pid]
            m.stays.append(
                (pid, self.unit, cls, self.t_req, self.t_bed, t_ready, t_ready, "blocked")
            )
            m.stays.append((pid, nxt, cls, t_ready, NAN, NAN, NAN, "blocked"))
        else:
            npool.wait(self.priority).callbacks.append(self.moved)

    def moved(self, _event: simpy.Event | None) -> None:
        m = self.m
        self.pool.release()
        now = m.env._now
        pid, nxt, t_ready = self.pid, self.nxt, self.t_ready
        m.stays.append((pid, self.unit, self.cls, self.t_req, self.t_bed, t_ready, now, nxt))
        self.unit, self.t_req, self.t_bed = nxt, t_ready, now
        self.stay()
