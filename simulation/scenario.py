"""Scenario files: TOML data → frozen parameter dataclasses, and back.

The format is documented in ``docs/simulation.md``. Bundled scenarios live in
``simulation/scenarios/`` and can be named without their path or suffix. Unknown keys
are errors: a typo in a scenario file must not silently become a default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from simulation.arrivals import ArrivalProfile
from simulation.changes import apply_changes
from simulation.distributions import Dist, DistKind
from simulation.params import (
    Acuity,
    CaseType,
    EDParams,
    LosRule,
    OnFull,
    PatientClass,
    RegionalHospital,
    RegionalScenario,
    Route,
    RunSettings,
    Scenario,
    Shift,
    SurgeryParams,
    ThresholdSettings,
    UnitKind,
    UnitParams,
    Zone,
)

SCENARIO_DIR = Path(__file__).parent / "scenarios"
UNIT_HOURS = {"hours": 1.0, "minutes": 1 / 60, "days": 24.0}
AnyScenario = Scenario | RegionalScenario
Data = Mapping[str, Any]


class ScenarioError(ValueError):
    """A scenario file or mapping that does not describe a valid model."""


def bundled_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(source: str | Path | Data | AnyScenario) -> AnyScenario:
    """A scenario from a bundled name, a TOML path, a parsed mapping, or itself."""
    if isinstance(source, Scenario | RegionalScenario):
        return source
    if isinstance(source, Mapping):
        return scenario_from_dict(source, SCENARIO_DIR)
    path = Path(source)
    if not path.suffix and not path.exists():
        path = SCENARIO_DIR / f"{source}.toml"
    if not path.exists():
        raise ScenarioError(f"no scenario {source!r}; bundled: {', '.join(bundled_scenarios())}")
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    data.setdefault("name", path.stem)
    return scenario_from_dict(data, path.parent)


def _check(data: Data, where: str, allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")


def parse_dist(data: Data, where: str) -> Dist:
    """``{kind, mean, sd, values, unit}``; ``unit`` is hours (default), minutes or days."""
    _check(data, where, {"kind", "mean", "sd", "values", "unit"})
    unit = str(data.get("unit", "hours"))
    if unit not in UNIT_HOURS:
        raise ScenarioError(f"{where}: unit must be one of {sorted(UNIT_HOURS)}")
    kind = cast(DistKind, str(data.get("kind", "lognormal")))
    try:
        if kind == "empirical":
            dist = Dist.empirical([float(v) for v in data["values"]])
        else:
            mean = float(data["mean"])
            sd = float(data.get("sd", mean if kind == "exponential" else 0.0))
            dist = Dist(kind, mean, sd)
    except (KeyError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc}") from exc
    return dist.scaled(UNIT_HOURS[unit])


def parse_profile(data: Data, shapes: Data, where: str) -> ArrivalProfile:
    """``{per_hour}``, ``{hour_of_week = [168]}``, or ``{daily_mean, hour_of_day,
    day_of_week}`` where the two shapes may come from a named ``[shapes.NAME]`` table."""
    _check(
        data,
        where,
        {"per_hour", "hour_of_week", "daily_mean", "hour_of_day", "day_of_week", "shape"},
    )
    if "per_hour" in data:
        return ArrivalProfile.constant(float(data["per_hour"]))
    if "hour_of_week" in data:
        return ArrivalProfile(tuple(float(x) for x in data["hour_of_week"]))
    shape: Data = {}
    if "shape" in data:
        name = str(data["shape"])
        if name not in shapes:
            raise ScenarioError(f"{where}: unknown shape {name!r}")
        shape = shapes[name]
    if "daily_mean" not in data:
        raise ScenarioError(f"{where}: give per_hour, hour_of_week or daily_mean")
    try:
        return ArrivalProfile.from_shape(
            float(data["daily_mean"]),
            data.get("hour_of_day", shape.get("hour_of_day")),
            data.get("day_of_week", shape.get("day_of_week")),
        )
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from exc


def _pairs(data: Data) -> tuple[tuple[str, float], ...]:
    return tuple((str(k), float(v)) for k, v in data.items())


def _run(data: Data) -> RunSettings:
    _check(
        data, "[run]", {"days", "warmup_days", "start_hour", "snapshot_hours", "initial_occupancy"}
    )
    return RunSettings(
        days=float(data.get("days", 28)),
        warmup_days=float(data.get("warmup_days", 7)),
        start_hour=float(data.get("start_hour", 0)),
        snapshot_hours=float(data.get("snapshot_hours", 1)),
        initial_occupancy=tuple(
            (str(k), int(v)) for k, v in data.get("initial_occupancy", {}).items()
        ),
    )


def scenario_from_dict(data: Data, base_dir: Path = SCENARIO_DIR) -> AnyScenario:
    if data.get("kind") == "regional":
        return _regional(data, base_dir)
    _check(
        data,
        "scenario",
        {
            "name", "description", "kind", "run", "shapes", "discharge_hours", "units",
            "classes", "routes", "los", "ed", "surgery",
        },
    )  # fmt: skip
    shapes: Data = data.get("shapes", {})
    units = []
    for i, u in enumerate(data.get("units", [])):
        _check(u, f"units[{i}]", {"name", "beds", "kind", "on_full", "discharge_profile"})
        on_full = str(u.get("on_full", "queue"))
        kind = str(u.get("kind", "ward"))
        if on_full not in ("queue", "block") or kind not in ("ward", "icu", "other"):
            raise ScenarioError(f"units[{i}]: on_full is queue|block, kind is ward|icu|other")
        units.append(
            UnitParams(
                name=str(u["name"]),
                beds=None if u.get("beds") is None else int(u["beds"]),
                kind=cast(UnitKind, kind),
                on_full=cast(OnFull, on_full),
                discharge_profile=bool(u.get("discharge_profile", True)),
            )
        )
    if not units:
        raise ScenarioError("a scenario needs at least one unit")
    classes = []
    for i, c in enumerate(data.get("classes", [])):
        _check(c, f"classes[{i}]", {"name", "unit", "arrivals", "priority"})
        classes.append(
            PatientClass(
                name=str(c["name"]),
                unit=str(c["unit"]),
                arrivals=parse_profile(c["arrivals"], shapes, f"classes[{i}].arrivals"),
                priority=int(c.get("priority", 3)),
            )
        )
    routes = []
    for i, r in enumerate(data.get("routes", [])):
        _check(r, f"routes[{i}]", {"unit", "class", "to"})
        routes.append(
            Route(
                unit=str(r["unit"]),
                to=_pairs(r["to"]),
                patient_class=None if r.get("class") is None else str(r["class"]),
            )
        )
    los = []
    for i, rule in enumerate(data.get("los", [])):
        _check(rule, f"los[{i}]", {"unit", "class", "next", "dist"})
        los.append(
            LosRule(
                unit=str(rule["unit"]),
                dist=parse_dist(rule["dist"], f"los[{i}].dist"),
                patient_class=None if rule.get("class") is None else str(rule["class"]),
                next_unit=None if rule.get("next") is None else str(rule["next"]),
            )
        )
    discharge = data.get("discharge_hours")
    if discharge is not None and len(discharge) != 24:
        raise ScenarioError("discharge_hours needs 24 weights")
    scenario = Scenario(
        name=str(data.get("name", "scenario")),
        description=str(data.get("description", "")),
        units=tuple(units),
        los=tuple(los),
        run=_run(data.get("run", {})),
        classes=tuple(classes),
        routes=tuple(routes),
        ed=_ed(data["ed"], shapes) if "ed" in data else None,
        surgery=_surgery(data["surgery"]) if "surgery" in data else None,
        discharge_hours=None if discharge is None else tuple(float(x) for x in discharge),
    )
    validate(scenario)
    return scenario


def _ed(data: Data, shapes: Data) -> EDParams:
    _check(data, "[ed]", {"beds", "shifts", "walk_in", "ambulance", "acuity", "admitted_class"})
    shifts = []
    for i, s in enumerate(data.get("shifts", [])):
        _check(s, f"ed.shifts[{i}]", {"start", "end", "clinicians"})
        shifts.append(Shift(float(s["start"]), float(s["end"]), int(s["clinicians"])))
    acuity = []
    for i, a in enumerate(data.get("acuity", [])):
        where = f"ed.acuity[{i}]"
        _check(
            a,
            where,
            {
                "level",
                "walk_in_share",
                "ambulance_share",
                "assessment",
                "observation",
                "admit",
                "admit_to",
            },
        )
        acuity.append(
            Acuity(
                level=int(a["level"]),
                walk_in_share=float(a["walk_in_share"]),
                ambulance_share=float(a["ambulance_share"]),
                assessment=parse_dist(a["assessment"], where + ".assessment"),
                observation=parse_dist(a["observation"], where + ".observation"),
                admit_probability=float(a.get("admit", 0.0)),
                admit_to=_pairs(a.get("admit_to", {})),
            )
        )
    return EDParams(
        beds=int(data["beds"]),
        shifts=tuple(shifts),
        walk_in=parse_profile(data["walk_in"], shapes, "ed.walk_in"),
        ambulance=parse_profile(data["ambulance"], shapes, "ed.ambulance"),
        acuity=tuple(acuity),
        admitted_class=str(data.get("admitted_class", "emergency")),
    )


def _surgery(data: Data) -> SurgeryParams:
    _check(
        data,
        "[surgery]",
        {
            "rooms", "case_types", "weekdays", "session_start", "session_hours",
            "turnover_minutes", "booking_fill", "last_start_before_end", "cancel_if_no_bed",
        },
    )  # fmt: skip
    types = []
    for i, c in enumerate(data.get("case_types", [])):
        _check(c, f"surgery.case_types[{i}]", {"name", "share", "duration", "destination", "class"})
        types.append(
            CaseType(
                name=str(c["name"]),
                share=float(c["share"]),
                duration=parse_dist(c["duration"], f"surgery.case_types[{i}].duration"),
                destination=_pairs(c["destination"]),
                patient_class=str(c.get("class", "elective")),
            )
        )
    return SurgeryParams(
        rooms=int(data["rooms"]),
        case_types=tuple(types),
        weekdays=tuple(int(d) for d in data.get("weekdays", (0, 1, 2, 3, 4))),
        session_start=float(data.get("session_start", 8.0)),
        session_hours=float(data.get("session_hours", 9.0)),
        turnover=float(data.get("turnover_minutes", 30)) / 60,
        booking_fill=float(data.get("booking_fill", 0.85)),
        last_start_before_end=float(data.get("last_start_before_end", 0.0)),
        cancel_if_no_bed=bool(data.get("cancel_if_no_bed", True)),
    )


def validate(scenario: Scenario) -> None:
    """Cross-references between units, classes, routes and stays."""
    names = {u.name for u in scenario.units}
    if len(names) != len(scenario.units):
        raise ScenarioError("unit names must be unique")
    for c in scenario.classes:
        if c.unit not in names:
            raise ScenarioError(f"class {c.name!r} arrives into unknown unit {c.unit!r}")
    targets: set[str] = set()
    for r in scenario.routes:
        targets |= {t for t, _ in r.to}
        if r.unit not in names:
            raise ScenarioError(f"route from unknown unit {r.unit!r}")
    if scenario.ed is not None:
        for a in scenario.ed.acuity:
            targets |= {t for t, _ in a.admit_to}
        if len(scenario.ed.acuity) == 0 or not scenario.ed.shifts:
            raise ScenarioError("an ED needs acuity levels and shifts")
    if scenario.surgery is not None:
        for ct in scenario.surgery.case_types:
            targets |= {t for t, _ in ct.destination}
    unknown = targets - names - {"exit"}
    if unknown:
        raise ScenarioError(f"patients are sent to unknown units {sorted(unknown)}")
    for unit in names:
        if not any(rule.unit == unit for rule in scenario.los):
            raise ScenarioError(f"unit {unit!r} has no length of stay")


def _regional(data: Data, base_dir: Path) -> RegionalScenario:
    _check(
        data,
        "regional scenario",
        {"name", "description", "kind", "run", "shapes", "hospitals", "zones", "travel_minutes",
         "policy", "threshold"},
    )  # fmt: skip
    shapes: Data = data.get("shapes", {})
    run = _run(data.get("run", {}))
    hospitals = []
    for i, h in enumerate(data.get("hospitals", [])):
        _check(h, f"hospitals[{i}]", {"name", "scenario", "changes"})
        src = h["scenario"]
        if isinstance(src, str) and (base_dir / f"{src}.toml").exists():
            src = base_dir / f"{src}.toml"
        base = load_scenario(src)
        if not isinstance(base, Scenario) or base.ed is None:
            raise ScenarioError(f"hospitals[{i}]: a regional hospital needs a scenario with an ED")
        changed = apply_changes(base, h.get("changes", {}))
        hospitals.append(RegionalHospital(str(h["name"]), replace(changed, run=run)))
    zones = []
    for i, z in enumerate(data.get("zones", [])):
        _check(z, f"zones[{i}]", {"name", "incidents", "ambulances", "response"})
        zones.append(
            Zone(
                name=str(z["name"]),
                incidents=parse_profile(z["incidents"], shapes, f"zones[{i}].incidents"),
                ambulances=None if z.get("ambulances") is None else int(z["ambulances"]),
                response=parse_dist(z["response"], f"zones[{i}].response")
                if "response" in z
                else Dist.fixed(0.25),
            )
        )
    travel = tuple(
        (str(zone), str(hosp), float(minutes) / 60)
        for zone, row in data.get("travel_minutes", {}).items()
        for hosp, minutes in row.items()
    )
    th = data.get("threshold", {})
    _check(th, "[threshold]", set(ThresholdSettings.__dataclass_fields__))
    scenario = RegionalScenario(
        name=str(data.get("name", "region")),
        description=str(data.get("description", "")),
        hospitals=tuple(hospitals),
        zones=tuple(zones),
        travel_hours=travel,
        run=run,
        policy=str(data.get("policy", "threshold")),
        threshold=ThresholdSettings(
            **{k: type(getattr(ThresholdSettings(), k))(v) for k, v in th.items()}
        ),
    )
    for zone in scenario.zones:
        for h in scenario.hospitals:
            scenario.travel(zone.name, h.name)
    return scenario


# -- back to data ---------------------------------------------------------------------


def dist_to_dict(d: Dist) -> dict[str, Any]:
    if d.kind == "empirical":
        return {"kind": "empirical", "values": list(d.values)}
    return {"kind": d.kind, "mean": d.mean, "sd": d.sd}


def scenario_to_dict(s: AnyScenario) -> dict[str, Any]:
    """The mapping form that :func:`scenario_from_dict` reads back (hours throughout)."""
    run = {
        "days": s.run.days,
        "warmup_days": s.run.warmup_days,
        "start_hour": s.run.start_hour,
        "snapshot_hours": s.run.snapshot_hours,
        "initial_occupancy": dict(s.run.initial_occupancy),
    }
    if isinstance(s, RegionalScenario):
        travel: dict[str, dict[str, float]] = {}
        for zone, hosp, hours in s.travel_hours:
            travel.setdefault(zone, {})[hosp] = hours * 60
        return {
            "kind": "regional",
            "name": s.name,
            "description": s.description,
            "run": run,
            "hospitals": [
                {"name": h.name, "scenario": scenario_to_dict(h.scenario)} for h in s.hospitals
            ],
            "zones": [
                {
                    "name": z.name,
                    "incidents": {"hour_of_week": list(z.incidents.rates)},
                    **({} if z.ambulances is None else {"ambulances": z.ambulances}),
                    "response": dist_to_dict(z.response),
                }
                for z in s.zones
            ],
            "travel_minutes": travel,
            "policy": s.policy,
            "threshold": dict(s.threshold.__dict__),
        }
    out: dict[str, Any] = {
        "name": s.name,
        "description": s.description,
        "run": run,
        "units": [
            {
                "name": u.name,
                **({} if u.beds is None else {"beds": u.beds}),
                "kind": u.kind,
                "on_full": u.on_full,
                "discharge_profile": u.discharge_profile,
            }
            for u in s.units
        ],
        "classes": [
            {
                "name": c.name,
                "unit": c.unit,
                "priority": c.priority,
                "arrivals": {"hour_of_week": list(c.arrivals.rates)},
            }
            for c in s.classes
        ],
        "routes": [
            {
                "unit": r.unit,
                "to": dict(r.to),
                **({"class": r.patient_class} if r.patient_class else {}),
            }
            for r in s.routes
        ],
        "los": [
            {
                "unit": r.unit,
                "dist": dist_to_dict(r.dist),
                **({"class": r.patient_class} if r.patient_class else {}),
                **({"next": r.next_unit} if r.next_unit else {}),
            }
            for r in s.los
        ],
    }
    if s.discharge_hours is not None:
        out["discharge_hours"] = list(s.discharge_hours)
    if s.ed is not None:
        ed = s.ed
        out["ed"] = {
            "beds": ed.beds,
            "admitted_class": ed.admitted_class,
            "walk_in": {"hour_of_week": list(ed.walk_in.rates)},
            "ambulance": {"hour_of_week": list(ed.ambulance.rates)},
            "shifts": [
                {"start": sh.start_hour, "end": sh.end_hour, "clinicians": sh.clinicians}
                for sh in ed.shifts
            ],
            "acuity": [
                {
                    "level": a.level,
                    "walk_in_share": a.walk_in_share,
                    "ambulance_share": a.ambulance_share,
                    "assessment": dist_to_dict(a.assessment),
                    "observation": dist_to_dict(a.observation),
                    "admit": a.admit_probability,
                    "admit_to": dict(a.admit_to),
                }
                for a in ed.acuity
            ],
        }
    if s.surgery is not None:
        su = s.surgery
        out["surgery"] = {
            "rooms": su.rooms,
            "weekdays": list(su.weekdays),
            "session_start": su.session_start,
            "session_hours": su.session_hours,
            "turnover_minutes": su.turnover * 60,
            "booking_fill": su.booking_fill,
            "last_start_before_end": su.last_start_before_end,
            "cancel_if_no_bed": su.cancel_if_no_bed,
            "case_types": [
                {
                    "name": c.name,
                    "share": c.share,
                    "duration": dist_to_dict(c.duration),
                    "destination": dict(c.destination),
                    "class": c.patient_class,
                }
                for c in su.case_types
            ],
        }
    return out
