"""Surge levels in the style of the NHS OPEL framework: parameters → score → level 1-4.

The NHS Operational Pressures Escalation Levels framework (2023/24 revision) moved acute
trusts from a judgement to a calculation: a fixed set of parameters, each with thresholds,
each weighted, summed into a score that sets the level. The same idea here, with the
parameters the issue names and every threshold and weight configurable per region
(``config.SurgeConfig``):

- each parameter's value → its own level 1-4 by its thresholds;
- score = Σ weight·(level − 1) / Σ weight·3 over the parameters reported, as 0-100;
- score → level by the region's score bands;
- escalation at once; de-escalation only after the score has been ``deescalate_margin``
  under the band and the level has held ``min_level_minutes`` (no flapping);
- each change records the parameters that caused it; each level carries its checklist.

The region's own level is computed the same way from the region's pooled parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from hub.coordination import explain, rules
from hub.coordination.arrays import (
    F,
    RegionArrays,
    levels_for_scores,
    region_arrays,
    surge_scores,
)
from hub.coordination.arrays import region_parameters as region_columns
from hub.coordination.config import SURGE_PARAMETERS, DiversionConfig, SurgeConfig
from hub.coordination.state import HospitalState

LABELS: dict[str, str] = {
    "ed_occupancy": "ED occupancy",
    "ed_boarding": "boarding",
    "longest_boarding_hours": "longest boarding",
    "over_4h_share": "patients over 4 h",
    "handovers_over_30_min": "handovers over 30 min (last hour)",
    "bed_occupancy": "bed occupancy",
    "icu_occupancy": "ICU occupancy",
    "staffing_gap_share": "staffing gap",
}


class Reading(NamedTuple):
    """One parameter as it stood: its value, the level its thresholds give, its weight."""

    name: str
    value: float
    level: int
    weight: float

    def describe(self) -> str:
        return f"{LABELS.get(self.name, self.name)} {format_value(self.name, self.value)}"


def format_value(name: str, value: float) -> str:
    if name in {"ed_occupancy", "bed_occupancy", "icu_occupancy", "over_4h_share"}:
        return explain.percent(value)
    if name == "staffing_gap_share":
        return explain.percent(value)
    if name == "longest_boarding_hours":
        return explain.duration(value * 60)
    return explain.count(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorLevel:
    level: int
    since: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SurgeChange:
    subject: str  # site code, or the region's code
    from_level: int | None
    to_level: int
    at: datetime
    score: float
    causes: tuple[Reading, ...]
    readings: tuple[Reading, ...]
    checklist: tuple[str, ...]
    _explanation: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def explanation(self) -> str:
        """'OPEL 2 → 3 at H: score 62/100; ED occupancy 97% (level 3), …' (built when first
        read, then kept: a national region's first evaluation changes thousands of levels at
        once, and the alert and the stored change both read the same words)."""
        text = self._explanation
        if text is None:
            before, after = self.from_level, self.to_level
            arrow = f"OPEL {before} → {after}" if before is not None else f"OPEL {after}"
            why = ", ".join(f"{r.describe()} (level {r.level})" for r in self.causes)
            text = f"{arrow} at {self.subject}: score {round(self.score)}/100; "
            text += why or "no parameter"
            object.__setattr__(self, "_explanation", text)  # a cache, not a change of state
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class SurgeAssessment:
    subject: str
    score: float | None
    raw_level: int | None  # what the score alone says
    level: int | None  # after hysteresis; None: never had enough data
    since: datetime | None
    readings: tuple[Reading, ...]
    checklist: tuple[str, ...]
    change: SurgeChange | None
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionSurge:
    """Every hospital's level (arrays in ``codes`` order; 0 = no level yet), the changes of
    this evaluation, and the region's own assessment."""

    codes: tuple[str, ...]
    score: F  # NaN: stale or not enough parameters
    level: npt.NDArray[np.int64]
    since: Mapping[str, datetime | None]  # hospitals with a level
    changes_: tuple[SurgeChange, ...]
    region: SurgeAssessment
    arrays: RegionArrays
    cfg: SurgeConfig
    at: datetime

    @property
    def changes(self) -> tuple[SurgeChange, ...]:
        if self.region.change is not None:
            return (*self.changes_, self.region.change)
        return self.changes_

    @property
    def hospitals(self) -> dict[str, int]:
        """Site code → level, for the hospitals that have one."""
        return {c: int(lv) for c, lv in zip(self.codes, self.level, strict=True) if lv > 0}

    def assessment(self, code: str) -> SurgeAssessment:
        i = self.arrays.index[code]
        fresh = bool(self.arrays.fresh[i])
        values = self.arrays.surge_values[i : i + 1]
        levels, weights, scores = surge_scores(values, self.cfg)
        value, readings = _row(values, levels, weights, scores, 0)
        if not fresh:
            value, readings = None, ()
        lvl = int(self.level[i]) or None
        change = next((c for c in self.changes_ if c.subject == code), None)
        return SurgeAssessment(
            subject=code,
            score=value,
            raw_level=None if value is None else level_for(value, self.cfg),
            level=lvl,
            since=self.since.get(code),
            readings=readings,
            checklist=self.cfg.checklists[lvl] if lvl is not None else (),
            change=change,
            note="" if fresh else "feed stale: level held",
        )


def parameters(state: HospitalState) -> dict[str, float | None]:
    """The OPEL parameters of one hospital from its live state (None: not reported)."""
    return {
        "ed_occupancy": state.ed_occupancy,
        "ed_boarding": None if state.ed_boarding is None else float(state.ed_boarding),
        "longest_boarding_hours": (
            None if state.longest_boarding_minutes is None else state.longest_boarding_minutes / 60
        ),
        "over_4h_share": state.over_4h_share,
        "handovers_over_30_min": (
            None if state.handovers_over_30_min is None else float(state.handovers_over_30_min)
        ),
        "bed_occupancy": state.ward_occupancy,
        "icu_occupancy": state.icu_occupancy,
        "staffing_gap_share": state.staffing_gap_share,
    }


def score(
    values: Mapping[str, float | None], cfg: SurgeConfig
) -> tuple[float | None, tuple[Reading, ...]]:
    """Parameters → score 0-100 (None when fewer than ``min_parameters`` are reported): the
    region's formula (``arrays.surge_scores``) on one row."""
    row = np.array(
        [[np.nan if values.get(n) is None else values[n] for n in SURGE_PARAMETERS]],
        dtype=np.float64,
    )
    levels, weights, scores = surge_scores(row, cfg)
    return _row(row, levels, weights, scores, 0)


def _row(
    values: F, levels: npt.NDArray[np.int64], weights: F, scores: F, i: int
) -> tuple[float | None, tuple[Reading, ...]]:
    vs, ls, ws = values[i].tolist(), levels[i].tolist(), weights[i].tolist()
    readings = tuple(
        Reading(name, vs[j], ls[j], ws[j]) for j, name in enumerate(SURGE_PARAMETERS) if ws[j] > 0
    )
    value = float(scores[i])
    return (None if math.isnan(value) else value), readings


def level_for(value: float, cfg: SurgeConfig) -> int:
    """Score → level by the score bands."""
    b2, b3, b4 = cfg.score_bands
    if value >= b4:
        return 4
    if value >= b3:
        return 3
    if value >= b2:
        return 2
    return 1


def _band_floor(level: int, cfg: SurgeConfig) -> float:
    return 0.0 if level == 1 else cfg.score_bands[level - 2]


def next_level(
    prior: PriorLevel | None, value: float | None, now: datetime, cfg: SurgeConfig
) -> tuple[int | None, datetime | None, str]:
    """The level after this evaluation: escalate at once, de-escalate with margin and hold."""
    if value is None:
        held = prior.level if prior is not None else None
        return held, prior.since if prior is not None else None, "not enough data: level held"
    target = level_for(value, cfg)
    if prior is None:
        return target, now, "first assessment"
    if target > prior.level:
        return target, now, "escalated"
    if target < prior.level:
        # De-escalate only as far as the margin allows, and only after the minimum hold.
        margin = cfg.deescalate_margin
        while target < prior.level and value >= _band_floor(target + 1, cfg) - margin:
            target += 1
        if target < prior.level and rules.held_long_enough(prior.since, now, cfg.min_level_minutes):
            return target, now, "de-escalated"
        return prior.level, prior.since, "held (hysteresis)"
    return prior.level, prior.since, "unchanged"


def assess(
    subject: str,
    values: Mapping[str, float | None],
    prior: PriorLevel | None,
    now: datetime,
    cfg: SurgeConfig,
    *,
    usable: bool = True,
    note: str = "",
) -> SurgeAssessment:
    """One hospital's (or the region's) level from its parameters."""
    s, readings = score(values, cfg) if usable else (None, ())
    lvl, since, why = next_level(prior, s, now, cfg)
    change = None
    before = prior.level if prior is not None else None
    if lvl is not None and s is not None and lvl != before:
        change = _change(subject, before, lvl, s, readings, now, cfg)
    return SurgeAssessment(
        subject=subject,
        score=s,
        raw_level=None if s is None else level_for(s, cfg),
        level=lvl,
        since=since,
        readings=readings,
        checklist=cfg.checklists[lvl] if lvl is not None else (),
        change=change,
        note=note or why,
    )


def _change(
    subject: str,
    before: int | None,
    after: int,
    value: float,
    readings: tuple[Reading, ...],
    now: datetime,
    cfg: SurgeConfig,
) -> SurgeChange:
    return SurgeChange(
        subject=subject,
        from_level=before,
        to_level=after,
        at=now,
        score=value,
        causes=_causes(readings, before, after),
        readings=readings,
        checklist=cfg.checklists[after],
    )


def _causes(readings: tuple[Reading, ...], before: int | None, after: int) -> tuple[Reading, ...]:
    """Escalation: the parameters at or above the new level (else the highest ones).
    De-escalation: the parameters now below the old level."""
    if before is None or after > before:
        at_or_above = tuple(r for r in readings if r.level >= after)
        if at_or_above:
            return at_or_above
        top = max((r.level for r in readings), default=1)
        return tuple(r for r in readings if r.level == top)
    return tuple(r for r in readings if r.level < before)


def region_parameters(states: Sequence[HospitalState]) -> dict[str, float | None]:
    """The region's parameters: occupancies pooled (Σ occupied / Σ places), so a large
    hospital weighs by its size; counts and times as the mean per reporting hospital, so the
    same thresholds read the same for a region of 5 or of 50 hospitals."""

    def pooled(pairs: list[tuple[int | None, int | None]]) -> float | None:
        num = sum(a for a, b in pairs if a is not None and b is not None and b > 0)
        den = sum(b for a, b in pairs if a is not None and b is not None and b > 0)
        return num / den if den else None

    def mean(values: list[float | None]) -> float | None:
        xs = [v for v in values if v is not None]
        return sum(xs) / len(xs) if xs else None

    per = [parameters(s) for s in states]
    return {
        "ed_occupancy": pooled([(s.ed_occupied, s.ed_capacity) for s in states]),
        "ed_boarding": mean([p["ed_boarding"] for p in per]),
        "longest_boarding_hours": mean([p["longest_boarding_hours"] for p in per]),
        "over_4h_share": mean([p["over_4h_share"] for p in per]),
        "handovers_over_30_min": mean([p["handovers_over_30_min"] for p in per]),
        "bed_occupancy": pooled([(s.ward_occupied, s.ward_capacity) for s in states]),
        "icu_occupancy": pooled([(s.icu_occupied, s.icu_capacity) for s in states]),
        "staffing_gap_share": mean([p["staffing_gap_share"] for p in per]),
    }


def evaluate_surge(
    states: Sequence[HospitalState],
    priors: Mapping[str, PriorLevel],
    now: datetime,
    cfg: SurgeConfig,
    freshness: DiversionConfig,
    *,
    region_code: str = "region",
    region_prior: PriorLevel | None = None,
    arrays: RegionArrays | None = None,
) -> RegionSurge:
    """Every hospital's level and the region's. A stale hospital keeps its level (it is not
    re-scored on old figures) and is left out of the region's parameters."""
    a = arrays if arrays is not None else region_arrays(states, now, freshness)
    levels, weights, scores = surge_scores(a.surge_values, cfg)
    scores = np.where(a.fresh, scores, np.nan)
    raw = levels_for_scores(scores, cfg)  # 0 where no score
    prior_level = np.zeros(len(a), dtype=np.int64)
    since: dict[str, datetime | None] = {}
    for code, held in priors.items():
        i = a.index.get(code)
        if i is not None:
            prior_level[i] = held.level
            since[code] = held.since
    level = prior_level.copy()
    changes: list[SurgeChange] = []
    # Only where the score's own level differs from the prior one can anything change.
    todo = np.flatnonzero((raw > 0) & (raw != prior_level))
    # Readings for every candidate at once: one conversion of the rows, not one per row.
    rows = zip(
        todo.tolist(),
        a.surge_values[todo].tolist(),
        levels[todo].tolist(),
        weights[todo].tolist(),
        scores[todo].tolist(),
        prior_level[todo].tolist(),
        strict=True,
    )
    names = SURGE_PARAMETERS
    for i, vs, ls, ws, value, had in rows:
        code = a.codes[i]
        prior = priors.get(code)
        lvl, when, _ = next_level(prior, value, now, cfg)
        if lvl is None or lvl == had:
            continue
        level[i] = lvl
        since[code] = when
        if min(ws) > 0:  # every parameter reported (the usual case): one call per row
            readings = tuple(map(Reading, names, vs, ls, ws))
        else:
            readings = tuple(
                Reading(names[j], vs[j], ls[j], ws[j]) for j in range(len(names)) if ws[j] > 0
            )
        before = prior.level if prior is not None else None
        changes.append(_change(code, before, lvl, value, readings, now, cfg))
    region = assess(
        region_code,
        region_columns(a),
        region_prior,
        now,
        cfg,
        note=f"{int(a.fresh.sum())} of {len(states)} hospitals reporting fresh figures",
    )
    return RegionSurge(
        codes=a.codes,
        score=scores,
        level=level,
        since=since,
        changes_=tuple(changes),
        region=region,
        arrays=a,
        cfg=cfg,
        at=now,
    )
