"""What-if changes as data: a mapping of change keys applied to a base scenario.

=============================== ===========================================================
key                             meaning
=============================== ===========================================================
``arrivals_scale``              multiply every arrival stream (ED and direct) by the value
``ed_arrivals_scale``           multiply only the ED's walk-in and ambulance arrivals
``or_rooms``                    add (or remove) operating rooms
``staffed_beds``                ``{unit: delta}``: add or remove staffed beds per unit
``set_beds``                    ``{unit: beds}``: set staffed beds per unit
``ed_beds``                     add or remove ED cubicles
``ed_clinicians``               add (or remove) clinicians on every ED shift
``ed_clinicians_per_shift``     set the clinicians on every ED shift
``discharge_before_noon_share`` move this share of all discharges (0.2 = 20 percentage
                                points) from after noon to before noon
``los_scale``                   ``{unit: factor}``: multiply stays in a unit
``capacity_scale``              multiply every unit's staffed beds, the ED's cubicles and
                                clinicians, and the operating rooms (rounded): a smaller or
                                larger hospital of the same design
``run_days``/``warmup_days``    change the run length
=============================== ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from simulation.params import Scenario, Shift

CHANGE_KEYS = (
    "arrivals_scale",
    "ed_arrivals_scale",
    "or_rooms",
    "staffed_beds",
    "set_beds",
    "ed_beds",
    "ed_clinicians",
    "ed_clinicians_per_shift",
    "discharge_before_noon_share",
    "los_scale",
    "capacity_scale",
    "run_days",
    "warmup_days",
)


def describe(changes: Mapping[str, Any]) -> str:
    """A short label such as ``or_rooms +1, staffed_beds ward_b -10``."""
    parts: list[str] = []
    for key, value in changes.items():
        if isinstance(value, Mapping):
            parts.extend(f"{key} {k} {_signed(v, key)}" for k, v in value.items())
        else:
            parts.append(f"{key} {_signed(value, key)}")
    return ", ".join(parts) or "base"


def _signed(value: Any, key: str) -> str:
    if key.endswith("scale") or key.startswith("set_") or key.endswith("per_shift"):
        return f"×{value}" if key.endswith("scale") else f"={value}"
    return f"{value:+g}" if isinstance(value, int | float) else str(value)


def apply_changes(base: Scenario, changes: Mapping[str, Any]) -> Scenario:
    """A new scenario: ``base`` with ``changes`` applied (the base is never modified)."""
    unknown = set(changes) - set(CHANGE_KEYS)
    if unknown:
        raise ValueError(f"unknown change keys {sorted(unknown)}; known: {CHANGE_KEYS}")
    s = base
    for key, value in changes.items():
        s = _apply(s, key, value)
    return s


def _needs_ed(s: Scenario, key: str) -> None:
    if s.ed is None:
        raise ValueError(f"{key}: scenario {s.name!r} has no emergency department")


def _apply(s: Scenario, key: str, value: Any) -> Scenario:
    if key in ("arrivals_scale", "ed_arrivals_scale"):
        f = float(value)
        if s.ed is not None:
            s = replace(
                s,
                ed=replace(
                    s.ed, walk_in=s.ed.walk_in.scaled(f), ambulance=s.ed.ambulance.scaled(f)
                ),
            )
        if key == "arrivals_scale":
            s = replace(
                s, classes=tuple(replace(c, arrivals=c.arrivals.scaled(f)) for c in s.classes)
            )
        return s
    if key == "or_rooms":
        if s.surgery is None:
            raise ValueError(f"or_rooms: scenario {s.name!r} has no elective surgery")
        rooms = s.surgery.rooms + int(value)
        if rooms < 0:
            raise ValueError("or_rooms would leave fewer than zero rooms")
        return replace(s, surgery=replace(s.surgery, rooms=rooms))
    if key in ("staffed_beds", "set_beds"):
        units = list(s.units)
        for name, v in dict(value).items():
            u = s.unit(str(name))
            if u.beds is None:
                raise ValueError(f"{key}: unit {name!r} is uncapacitated")
            beds = int(v) if key == "set_beds" else u.beds + int(v)
            if beds < 0:
                raise ValueError(f"{key}: unit {name!r} would have {beds} beds")
            units[units.index(u)] = replace(u, beds=beds)
        return replace(s, units=tuple(units))
    if key == "ed_beds":
        _needs_ed(s, key)
        if s.ed is None:  # for the type checker; _needs_ed raised already
            return s
        return replace(s, ed=replace(s.ed, beds=max(0, s.ed.beds + int(value))))
    if key in ("ed_clinicians", "ed_clinicians_per_shift"):
        _needs_ed(s, key)
        ed = s.ed
        if ed is None:
            return s
        shifts = tuple(
            Shift(
                sh.start_hour,
                sh.end_hour,
                max(0, int(value) if key.endswith("per_shift") else sh.clinicians + int(value)),
            )
            for sh in ed.shifts
        )
        return replace(s, ed=replace(ed, shifts=shifts))
    if key == "discharge_before_noon_share":
        return replace(s, discharge_hours=_shift_discharges(s.discharge_hours, float(value)))
    if key == "los_scale":
        factors = {str(k): float(v) for k, v in dict(value).items()}
        return replace(
            s,
            los=tuple(
                replace(r, dist=r.dist.scaled(factors[r.unit])) if r.unit in factors else r
                for r in s.los
            ),
        )
    if key == "capacity_scale":
        f = float(value)
        s = replace(
            s,
            units=tuple(
                replace(u, beds=max(1, round(u.beds * f))) if u.beds is not None else u
                for u in s.units
            ),
            run=replace(
                s.run,
                initial_occupancy=tuple((u, round(n * f)) for u, n in s.run.initial_occupancy),
            ),
        )
        if s.ed is not None:
            shifts = tuple(
                Shift(sh.start_hour, sh.end_hour, max(1, round(sh.clinicians * f)))
                for sh in s.ed.shifts
            )
            s = replace(s, ed=replace(s.ed, beds=max(1, round(s.ed.beds * f)), shifts=shifts))
        if s.surgery is not None:
            s = replace(s, surgery=replace(s.surgery, rooms=max(1, round(s.surgery.rooms * f))))
        return s
    if key == "run_days":
        return replace(s, run=replace(s.run, days=float(value)))
    if key == "warmup_days":
        return replace(s, run=replace(s.run, warmup_days=float(value)))
    raise ValueError(key)  # pragma: no cover - guarded by CHANGE_KEYS


def _shift_discharges(hours: tuple[float, ...] | None, delta: float) -> tuple[float, ...]:
    if hours is None:
        raise ValueError("discharge_before_noon_share: the scenario has no discharge_hours")
    total = sum(hours)
    p = [h / total for h in hours]
    before = sum(p[:12])
    target = min(max(before + delta, 0.0), 1.0)
    # With no morning discharges at all, open the late-morning hours (08–12) evenly.
    morning = [x * target / before for x in p[:12]] if before > 0 else [0.0] * 8 + [target / 4] * 4
    after = 1 - before
    afternoon = [x * (1 - target) / after if after else 0.0 for x in p[12:]]
    return tuple(morning + afternoon)


def before_noon_share(hours: tuple[float, ...]) -> float:
    return sum(hours[:12]) / sum(hours)
