"""Operating-room case sequencing under uncertain case durations.

Times in this module are minutes, as theatre lists are planned. A day's cases are
assigned to rooms and ordered; a plan is scored on many shared random duration
scenarios at once (common random numbers: every candidate meets the same days, so
comparisons are not blurred by luck). Rules of the day: cases in a room run back to
back with a turnover between them, and no case starts after the session's last start
time (it is cancelled on the day instead).

A candidate plan is a permutation of the cases plus a room id per position that never
decreases, so each room's list is one contiguous segment: one cumulative sum with
per-segment offsets gives every case's start time in every scenario for thousands of
candidates at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from simulation.distributions import Dist

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CHUNK_ELEMENTS = 4_000_000  # scenario × candidate × case values per evaluation chunk


@dataclass(frozen=True)
class Case:
    """One elective case; ``duration`` in minutes."""

    name: str
    duration: Dist
    needs_icu: bool = False


@dataclass(frozen=True)
class SurgeryDay:
    cases: tuple[Case, ...]
    rooms: int
    session_minutes: float = 480.0
    turnover_minutes: float = 30.0
    last_start_minutes: float | None = None  # default: the end of the session
    overtime_tolerance_minutes: float = 30.0
    # Highest acceptable P(bad day): a room over by more than the tolerance, or a case
    # cancelled on the day.
    max_risk: float = 0.2

    @property
    def last_start(self) -> float:
        return self.session_minutes if self.last_start_minutes is None else self.last_start_minutes


@dataclass(frozen=True)
class Plan:
    """Case indices per room, in order."""

    rooms: tuple[tuple[int, ...], ...]

    def arrays(self, n_cases: int) -> tuple[IntArray, IntArray]:
        order = np.array([i for room in self.rooms for i in room], dtype=np.int64)
        seg = np.array([r for r, room in enumerate(self.rooms) for _ in room], dtype=np.int64)
        if sorted(order.tolist()) != list(range(n_cases)):
            raise ValueError("a plan must place every case exactly once")
        return order, seg

    @staticmethod
    def from_arrays(order: IntArray, seg: IntArray, rooms: int) -> Plan:
        return Plan(tuple(tuple(int(i) for i in order[seg == r]) for r in range(rooms)))

    def describe(self, day: SurgeryDay) -> str:
        return " | ".join(
            f"room {r + 1}: " + ", ".join(day.cases[i].name for i in room)
            for r, room in enumerate(self.rooms)
        )


@dataclass(frozen=True)
class Score:
    utilisation: float  # expected share of session time spent operating
    risk: float  # P(a room overruns by more than the tolerance or a case is cancelled)
    expected_overtime: float  # minutes, summed over rooms
    expected_cancelled: float  # cases not started before the last start time

    def objective(self, max_risk: float) -> float:
        # Infeasible plans rank below every feasible one, ordered by how far over.
        penalty = 10.0 * max(0.0, self.risk - max_risk)
        return self.utilisation - penalty - 1e-4 * self.expected_cancelled


def scenarios(day: SurgeryDay, n: int = 500, seed: int = 1) -> FloatArray:
    """``n`` × cases matrix of case durations (minutes), one column per case."""
    root = np.random.SeedSequence(seed)
    cols = [
        c.duration.sample(np.random.default_rng(child), n)
        for c, child in zip(day.cases, root.spawn(len(day.cases)), strict=True)
    ]
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def evaluate(
    day: SurgeryDay, order: IntArray, seg: IntArray, durations: FloatArray
) -> dict[str, FloatArray]:
    """Score candidates (rows of ``order``/``seg``) against every duration scenario.

    Returns arrays over candidates: ``utilisation``, ``risk``,
    ``expected_overtime`` and ``expected_cancelled``.
    """
    order = np.atleast_2d(order)
    seg = np.atleast_2d(seg)
    n_cand, n_cases = order.shape
    n_scen = durations.shape[0]
    out = {
        k: np.empty(n_cand)
        for k in ("utilisation", "risk", "expected_overtime", "expected_cancelled")
    }
    if n_cases == 0:
        for v in out.values():
            v[:] = 0.0
        return out
    dur32 = durations.astype(np.float32)
    session = np.float32(day.session_minutes)
    last_start = np.float32(day.last_start)
    tol = np.float32(day.overtime_tolerance_minutes)
    turn = np.float32(day.turnover_minutes)
    step = max(1, CHUNK_ELEMENTS // max(1, n_scen * n_cases))
    positions = np.arange(n_cases)
    for a in range(0, n_cand, step):
        o = order[a : a + step]
        s = seg[a : a + step]
        c = o.shape[0]
        d = dur32[:, o]  # (S, c, N)
        slot = d + turn
        cs = np.cumsum(slot, axis=2)
        before = cs - slot  # time used by earlier positions, all rooms
        # Index of the first position of each position's room segment.
        new_room = np.ones_like(s, dtype=bool)
        new_room[:, 1:] = s[:, 1:] != s[:, :-1]
        first = np.maximum.accumulate(np.where(new_room, positions, 0), axis=1)
        start = before - before[:, np.arange(c)[:, None], first]
        end = start + d
        done = start <= last_start
        used = np.clip(np.minimum(end, session) - start, 0, None) * done
        out["utilisation"][a : a + c] = used.sum(axis=2).mean(axis=0) / (session * day.rooms)
        out["expected_cancelled"][a : a + c] = (~done).sum(axis=2).mean(axis=0)
        # A room's overtime is decided by its last case started; within a room the
        # started cases are a prefix, so that case is the one followed by a new room,
        # by a case not started, or by nothing.
        last = np.ones((n_scen, c, n_cases), dtype=bool)
        last[:, :, :-1] = new_room[None, :, 1:] | ~done[:, :, 1:]
        last &= done
        over = np.where(last, np.maximum(end - session, 0), 0)
        over_sum = over.sum(axis=2)
        # A bad day: a room overruns by more than the tolerance, or a case is
        # cancelled on the day because its room ran out of time to start it.
        over_any = (over > tol).any(axis=2) | ~done.all(axis=2)
        out["risk"][a : a + c] = over_any.mean(axis=0)
        out["expected_overtime"][a : a + c] = over_sum.mean(axis=0)
    return out


def score_plan(day: SurgeryDay, plan: Plan, durations: FloatArray) -> Score:
    order, seg = plan.arrays(len(day.cases))
    r = evaluate(day, order[None], seg[None], durations)
    return Score(
        *(
            float(r[k][0])
            for k in ("utilisation", "risk", "expected_overtime", "expected_cancelled")
        )
    )


# -- baselines ----------------------------------------------------------------------------


def first_come(day: SurgeryDay) -> Plan:
    """Cases in booking order, filling room 1 up to the session by expected duration,
    then room 2, and so on; the last room takes whatever is left."""
    rooms: list[list[int]] = [[] for _ in range(day.rooms)]
    r, load = 0, 0.0
    for i, c in enumerate(day.cases):
        need = c.duration.true_mean + (day.turnover_minutes if rooms[r] else 0)
        if rooms[r] and load + need > day.session_minutes and r < day.rooms - 1:
            r, load = r + 1, 0.0
            need = c.duration.true_mean
        rooms[r].append(i)
        load += need
    return Plan(tuple(tuple(x) for x in rooms))


def longest_first(day: SurgeryDay) -> Plan:
    """Longest expected case first, each to the room with the least expected load (LPT)."""
    rooms: list[list[int]] = [[] for _ in range(day.rooms)]
    load = [0.0] * day.rooms
    for i in sorted(range(len(day.cases)), key=lambda k: -day.cases[k].duration.true_mean):
        r = min(range(day.rooms), key=lambda k: load[k])
        rooms[r].append(i)
        load[r] += day.cases[i].duration.true_mean + day.turnover_minutes
    return Plan(tuple(tuple(x) for x in rooms))


# -- search --------------------------------------------------------------------------------


def random_candidates(
    n_cases: int, rooms: int, n: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    order = rng.permuted(np.tile(np.arange(n_cases, dtype=np.int64), (n, 1)), axis=1)
    seg = np.sort(rng.integers(0, rooms, (n, n_cases)), axis=1).astype(np.int64)
    return order, seg


def _neighbours(
    order: IntArray, seg: IntArray, rooms: int, n: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Random swaps of two cases, or a shift of one room boundary."""
    k = order.shape[0]
    pick = rng.integers(0, k, n)
    o = order[pick].copy()
    s = seg[pick].copy()
    n_cases = o.shape[1]
    rows = np.arange(n)
    i, j = rng.integers(0, n_cases, n), rng.integers(0, n_cases, n)
    swap = rng.random(n) < 0.7
    oi, oj = o[rows, i].copy(), o[rows, j].copy()
    o[rows[swap], i[swap]] = oj[swap]
    o[rows[swap], j[swap]] = oi[swap]
    # Boundary moves: change one position's room to a neighbour's and re-sort.
    mv = ~swap
    s[rows[mv], i[mv]] = np.clip(s[rows[mv], i[mv]] + rng.choice([-1, 1], mv.sum()), 0, rooms - 1)
    s = np.sort(s, axis=1)
    return o, s


@dataclass
class SequencingResult:
    best: Plan
    best_score: Score
    baselines: dict[str, tuple[Plan, Score]]
    overbooked: bool
    suggestions: list[str] = field(default_factory=list)
    candidates_evaluated: int = 0

    def table(self) -> pd.DataFrame:
        rows = [("optimised", self.best_score)] + [(k, v[1]) for k, v in self.baselines.items()]
        return pd.DataFrame(
            [
                {
                    "plan": name,
                    "utilisation": s.utilisation,
                    "risk": s.risk,
                    "expected_overtime_min": s.expected_overtime,
                    "expected_cancelled": s.expected_cancelled,
                }
                for name, s in rows
            ]
        )


def _best_of(
    day: SurgeryDay, order: IntArray, seg: IntArray, durations: FloatArray
) -> tuple[int, dict[str, FloatArray], FloatArray]:
    r = evaluate(day, order, seg, durations)
    penalty = 10.0 * np.maximum(0.0, r["risk"] - day.max_risk)
    obj = r["utilisation"] - penalty - 1e-4 * r["expected_cancelled"]
    return int(np.argmax(obj)), r, obj


def sequence_day(
    day: SurgeryDay,
    *,
    candidates: int = 10_000,
    n_scenarios: int = 500,
    seed: int = 1,
    rounds: int = 4,
    durations: FloatArray | None = None,
    suggest: bool = True,
) -> SequencingResult:
    """Search for the plan with the highest expected utilisation whose overtime risk
    stays within ``max_risk``; compare it with the baselines; flag an
    overbooked day (no feasible plan found) and suggest what to postpone."""
    rng = np.random.default_rng(seed)
    d = scenarios(day, n_scenarios, seed) if durations is None else durations
    n = len(day.cases)
    baselines = {"first_come": first_come(day), "longest_first": longest_first(day)}
    base_arrays = [p.arrays(n) for p in baselines.values()]
    order, seg = random_candidates(n, day.rooms, max(candidates - len(base_arrays), 0), rng)
    order = np.vstack([order, *[a[0][None] for a in base_arrays]])
    seg = np.vstack([seg, *[a[1][None] for a in base_arrays]])
    evaluated = order.shape[0]
    _i, _r, obj = _best_of(day, order, seg, d)
    # Local search around the best few: cheap, and it fixes what random sampling misses.
    for _ in range(rounds):
        top = np.argsort(obj)[-20:]
        no, ns = _neighbours(order[top], seg[top], day.rooms, 1000, rng)
        order = np.vstack([order[top], no])
        seg = np.vstack([seg[top], ns])
        _i, _r, obj = _best_of(day, order, seg, d)
        evaluated += no.shape[0]
    i = int(np.argmax(obj))
    best = Plan.from_arrays(order[i], seg[i], day.rooms)
    best_score = score_plan(day, best, d)
    scored = {k: (p, score_plan(day, p, d)) for k, p in baselines.items()}
    overbooked = best_score.risk > day.max_risk
    suggestions: list[str] = []
    if not suggest:
        pass
    elif overbooked:
        suggestions = suggest_postponements(day, d, seed=seed)
    else:
        for name, (p, s) in scored.items():
            if s.risk > day.max_risk:
                suggestions += [f"{name} plan: {t}" for t in suggest_swaps(day, p, d)[:2]]
    return SequencingResult(best, best_score, scored, overbooked, suggestions, evaluated)


def suggest_swaps(day: SurgeryDay, plan: Plan, durations: FloatArray) -> list[str]:
    """Single swaps of two cases that lower the overtime risk of ``plan``, best first."""
    n = len(day.cases)
    order, seg = plan.arrays(n)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if seg[i] != seg[j]]
    if not pairs:
        return []
    o = np.tile(order, (len(pairs), 1))
    s = np.tile(seg, (len(pairs), 1))
    for k, (i, j) in enumerate(pairs):
        o[k, i], o[k, j] = o[k, j], o[k, i]
    base = score_plan(day, plan, durations)
    r = evaluate(day, o, s, durations)
    better = np.argsort(r["risk"])
    out = []
    for k in better[:5]:
        if r["risk"][k] < base.risk - 1e-9:
            i, j = pairs[k]
            out.append(
                f"swap {day.cases[order[i]].name} (room {seg[i] + 1}) with "
                f"{day.cases[order[j]].name} (room {seg[j] + 1}): overtime risk "
                f"{base.risk:.0%} → {r['risk'][k]:.0%}"
            )
    return out


def suggest_postponements(day: SurgeryDay, durations: FloatArray, *, seed: int = 1) -> list[str]:
    """Which single case to postpone so that the rest fits within the overtime risk."""
    out = []
    for k in range(len(day.cases)):
        keep = [i for i in range(len(day.cases)) if i != k]
        sub = SurgeryDay(
            tuple(day.cases[i] for i in keep), day.rooms, day.session_minutes,
            day.turnover_minutes, day.last_start_minutes, day.overtime_tolerance_minutes,
            day.max_risk,
        )  # fmt: skip
        res = sequence_day(
            sub,
            candidates=1000,
            rounds=1,
            seed=seed,
            durations=durations[:200, keep],
            suggest=False,
        )
        out.append(
            (
                res.best_score.risk <= day.max_risk,
                res.best_score.utilisation,
                k,
                res.best_score,
            )
        )
    out.sort(key=lambda x: (not x[0], -x[1]))
    return [
        f"postpone {day.cases[k].name}: bad-day risk {s.risk:.0%}, utilisation {s.utilisation:.0%}"
        for ok, _u, k, s in out[:3]
        if ok
    ] or ["no single postponement is enough: postpone two cases or open another room"]


# -- exact model for small days ------------------------------------------------------------


def solve_cpsat(
    day: SurgeryDay,
    *,
    n_scenarios: int = 60,
    seed: int = 1,
    time_limit_s: float = 10.0,
    durations: FloatArray | None = None,
) -> tuple[Plan, str]:
    """Exact room assignment by CP-SAT over a sample of duration scenarios.

    Maximises expected operating time inside the session subject to the overtime
    chance constraint (at most ``max_risk`` of scenarios may have a room over
    by more than the tolerance). Within a room, cases go longest first. Use for small
    days (about 10 cases); returns the plan and the solver status.
    """
    # Imported here: OR-Tools is only needed for this exact path, and site agents that
    # import the package for forecasts should not pay for loading it.
    from ortools.sat.python import cp_model

    d = scenarios(day, n_scenarios, seed) if durations is None else durations[:n_scenarios]
    s_count, n = d.shape
    mins = np.rint(d).astype(int)
    turn = round(day.turnover_minutes)
    session = round(day.session_minutes)
    limit = session + round(day.overtime_tolerance_minutes) + turn
    big = int(mins.sum(axis=1).max()) + turn * n + 1
    m = cp_model.CpModel()
    x = {(i, r): m.new_bool_var(f"x{i}_{r}") for i in range(n) for r in range(day.rooms)}
    for i in range(n):
        m.add_exactly_one(x[i, r] for r in range(day.rooms))
    # Symmetry: rooms are identical, so case 0 goes to room 0.
    if n:
        m.add(x[0, 0] == 1)
    over = [m.new_bool_var(f"over{s}") for s in range(s_count)]
    used_terms = []
    for s in range(s_count):
        for r in range(day.rooms):
            load = sum(x[i, r] * int(mins[s, i] + turn) for i in range(n))
            m.add(load <= limit + big * over[s])
            used = m.new_int_var(0, session, f"u{s}_{r}")
            m.add(used <= load)
            used_terms.append(used)
    m.add(sum(over) <= math.floor(day.max_risk * s_count))
    m.maximize(sum(used_terms))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 1
    status = solver.solve(m)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return longest_first(day), name
    rooms = []
    for r in range(day.rooms):
        members = [i for i in range(n) if solver.value(x[i, r])]
        members.sort(key=lambda i: -day.cases[i].duration.true_mean)
        rooms.append(tuple(members))
    return Plan(tuple(rooms)), name


# -- ICU-aware timing ---------------------------------------------------------------------


def recommend_icu_timing(
    cases: Sequence[Case],
    icu_available: FloatArray,
    candidate_starts: Sequence[int],
    *,
    max_risk: float = 0.1,
) -> pd.DataFrame:
    """When to operate on cases that need an ICU bed afterwards.

    ``icu_available`` is replications × hours-ahead available ICU beds, e.g.
    ``forecast_from_census(...).available["icu"]``; ``candidate_starts`` are the hours
    ahead at which a case could start (session starts). Each ICU case, longest first,
    gets the earliest start at which the chance of meeting a full ICU on arrival —
    counting the beds taken by cases placed before it — is at most ``max_risk``;
    otherwise the least risky start, marked "postpone".
    """
    hours = icu_available.shape[1]
    booked = np.zeros(hours)
    rows = []
    icu_cases = sorted((c for c in cases if c.needs_icu), key=lambda c: -c.duration.true_mean)
    for c in icu_cases:
        best: tuple[float, int, int] | None = None
        chosen: tuple[float, int, int] | None = None
        for h0 in candidate_starts:
            arrive = int(h0 + math.ceil(c.duration.true_mean / 60))
            if arrive >= hours:
                continue
            p_full = float(np.mean(icu_available[:, arrive] - booked[arrive] <= 0))
            if best is None or p_full < best[0]:
                best = (p_full, h0, arrive)
            if p_full <= max_risk:
                chosen = (p_full, h0, arrive)
                break
        pick = chosen or best
        if pick is None:
            rows.append(
                {
                    "case": c.name,
                    "start_hours_ahead": None,
                    "icu_arrival_hours_ahead": None,
                    "p_icu_full": math.nan,
                    "action": "outside forecast",
                }
            )
            continue
        p_full, h0, arrive = pick
        booked[arrive:] += 1
        rows.append(
            {
                "case": c.name,
                "start_hours_ahead": h0,
                "icu_arrival_hours_ahead": arrive,
                "p_icu_full": p_full,
                "action": "schedule" if chosen is not None else "postpone",
            }
        )
    return pd.DataFrame(rows)
