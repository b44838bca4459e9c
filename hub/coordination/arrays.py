"""The region as columns: one pass over the hospitals' states into numpy arrays, so scores,
levels and threshold checks run for a whole region (6,000 hospitals) at once.

The per-hospital explanations and the single-hospital functions use the same scoring
functions on a one-row array, so there is one formula, not a fast one and a slow one.
Missing or unusable figures are NaN and simply left out of the weighted means.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from hub.coordination.config import (
    PRESSURE_FIGURES,
    SURGE_PARAMETERS,
    DiversionConfig,
    SurgeConfig,
)
from hub.coordination.state import ForecastPoint, HospitalState

F = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

FORECAST_UNITS: tuple[str, ...] = ("ed", "icu", "ward")


@dataclass(frozen=True, slots=True)
class RegionArrays:
    codes: tuple[str, ...]
    index: dict[str, int]
    fresh: B
    census_age_minutes: F
    ed_capacity: F
    ed_occupied: F
    icu_capacity: F
    icu_occupied: F
    ward_capacity: F
    ward_occupied: F
    pressure_figures: F  # n × len(PRESSURE_FIGURES), NaN = missing or too old
    offload_unusable: B  # an offload figure was there but too old
    forecast_unusable: B  # a forecast was there but too old
    forecast_usable: B
    surge_values: F  # n × len(SURGE_PARAMETERS), NaN = not reported
    first_full: F  # n × len(FORECAST_UNITS): first horizon with p50 <= 0 (NaN: none, or old)
    forecast_age_minutes: F

    @property
    def ed_free(self) -> F:
        return self.ed_capacity - self.ed_occupied

    def __len__(self) -> int:
        return len(self.codes)


def _first_full(points: tuple[ForecastPoint, ...]) -> float | None:
    best: float | None = None
    for p in points:
        if p.p50 <= 0 and (best is None or p.horizon_hours < best):
            best = p.horizon_hours
    return best


# A state's figures as the arrays read them (also the part of a hospital's key its words are
# made from: ``diversion._Ctx.hospital_key``).
STATE_COLUMNS = operator.attrgetter(
    "ed_capacity",
    "ed_occupied",
    "ed_waiting",
    "ed_boarding",
    "longest_boarding_minutes",
    "over_4h_share",
    "offload_p90_minutes",
    "handovers_over_30_min",
    "icu_capacity",
    "icu_occupied",
    "ward_capacity",
    "ward_occupied",
    "staffing_gap_share",
)


def region_arrays(
    states: Sequence[HospitalState], now: datetime, cfg: DiversionConfig
) -> RegionArrays:
    """One pass over the states; everything after it is array arithmetic."""
    n = len(states)
    nan = np.nan
    codes = [s.code for s in states]
    now_ts = now.timestamp()
    as_of = [s.as_of for s in states]
    census_ts = np.fromiter(map(datetime.timestamp, as_of), np.float64, n)
    offload_ts = np.fromiter(
        (datetime.timestamp(s.offload_as_of or s.as_of) for s in states), np.float64, n
    )
    feed_stale = np.fromiter((s.feed_stale for s in states), bool, n)
    if n:
        columns = [
            np.array(c, dtype=np.float64) for c in zip(*map(STATE_COLUMNS, states), strict=True)
        ]
    else:
        columns = [np.zeros(0) for _ in range(13)]
    (
        ed_cap,
        ed_occ,
        waiting,
        board,
        longest_m,
        over4,
        off,
        handovers,
        icu_c,
        icu_o,
        ward_c,
        ward_o,
        staffing,
    ) = columns

    # Forecasts: only the hospitals that have one (a loop over a few points each).
    fc_age = np.full(n, nan)
    fc_min = np.full(n, nan)
    full = np.full((n, len(FORECAST_UNITS)), nan)
    lo, hi = cfg.forecast_min_hours, cfg.forecast_max_hours
    for i, s in enumerate(states):
        f = s.forecast
        if f is None:
            continue
        fc_age[i] = (now_ts - f.as_of.timestamp()) / 60.0
        window = [p.p50 for p in f.ed if lo <= p.horizon_hours <= hi]
        if window:
            fc_min[i] = min(window)
        for u, points in enumerate((f.ed, f.icu, f.ward)):
            first = _first_full(points)
            if first is not None:
                full[i, u] = first

    age = (now_ts - census_ts) / 60.0
    fresh = ~feed_stale & (ed_cap > 0) & (age <= cfg.stale_after_minutes)
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_cap = np.where(ed_cap > 0, ed_cap, nan)
        ed_occupancy = ed_occ / safe_cap
        icu_occupancy = icu_o / np.where(icu_c > 0, icu_c, nan)
        ward_occupancy = ward_o / np.where(ward_c > 0, ward_c, nan)
    off_old = (now_ts - offload_ts) / 60.0 > cfg.offload_stale_after_minutes
    offload_unusable = ~np.isnan(off) & off_old
    off = np.where(off_old, nan, off)
    with np.errstate(invalid="ignore"):
        fc_old = fc_age > cfg.forecast_stale_after_minutes  # NaN compares False: no forecast
    fmin = np.where(fc_old, nan, fc_min)
    figures = np.column_stack(
        [
            ed_occupancy,
            waiting / safe_cap,
            board / safe_cap,
            longest_m,
            off,
            icu_occupancy,
            ward_occupancy,
            fmin / safe_cap,
        ]
    )
    surge = np.column_stack(
        [
            ed_occupancy,
            board,
            longest_m / 60.0,
            over4,
            handovers,
            ward_occupancy,
            icu_occupancy,
            staffing,
        ]
    )
    full[fc_old] = nan
    return RegionArrays(
        codes=tuple(codes),
        index={c: i for i, c in enumerate(codes)},
        fresh=fresh,
        census_age_minutes=age,
        ed_capacity=ed_cap,
        ed_occupied=ed_occ,
        icu_capacity=icu_c,
        icu_occupied=icu_o,
        ward_capacity=ward_c,
        ward_occupied=ward_o,
        pressure_figures=figures,
        offload_unusable=offload_unusable,
        forecast_unusable=fc_old,
        forecast_usable=~np.isnan(fmin),
        surge_values=surge,
        first_full=full,
        forecast_age_minutes=fc_age,
    )


def pressure_scores(figures: F, cfg: DiversionConfig) -> tuple[F, F, F]:
    """Per-figure 0-1 scores, the weights that apply (0 where the figure is missing), and
    the pressure: the weighted mean of the present figures (NaN if none is present)."""
    lo = np.array([cfg.bands[f].lo for f in PRESSURE_FIGURES])
    hi = np.array([cfg.bands[f].hi for f in PRESSURE_FIGURES])
    w = np.array([cfg.weights[f] for f in PRESSURE_FIGURES])
    present = ~np.isnan(figures)
    scores = np.clip((figures - lo) / (hi - lo), 0.0, 1.0)
    weights = np.where(present, w, 0.0)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pressure = np.where(
            total > 0, np.nansum(np.where(present, scores, 0.0) * weights, axis=1) / total, np.nan
        )
    # The ED occupancy is the one figure a score cannot do without.
    pressure = np.where(present[:, 0], pressure, np.nan)
    return np.where(present, scores, np.nan), weights, pressure


def surge_scores(values: F, cfg: SurgeConfig) -> tuple[npt.NDArray[np.int64], F, F]:
    """Per-parameter levels 1-4 (0 where not reported), the weights that apply, and the
    score 0-100 (NaN with fewer than ``min_parameters`` reported)."""
    params = [cfg.parameters.get(name) for name in SURGE_PARAMETERS]
    t2 = np.array([p.level2 if p else np.inf for p in params])
    t3 = np.array([p.level3 if p else np.inf for p in params])
    t4 = np.array([p.level4 if p else np.inf for p in params])
    w = np.array([p.weight if p else 0.0 for p in params])
    present = ~np.isnan(values) & (w > 0)
    with np.errstate(invalid="ignore"):
        levels = 1 + (values >= t2).astype(np.int64) + (values >= t3) + (values >= t4)
    levels = np.where(present, levels, 0)
    weights = np.where(present, w, 0.0)
    total = (weights * 3).sum(axis=1)
    points = (weights * np.maximum(levels - 1, 0)).sum(axis=1)
    counted = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        enough = (counted >= cfg.min_parameters) & (total > 0)
        score = np.where(enough, 100 * points / total, np.nan)
    return levels, weights, score


def levels_for_scores(score: F, cfg: SurgeConfig) -> npt.NDArray[np.int64]:
    b2, b3, b4 = cfg.score_bands
    with np.errstate(invalid="ignore"):
        lv = 1 + (score >= b2).astype(np.int64) + (score >= b3) + (score >= b4)
    return np.where(np.isnan(score), 0, lv)


def region_parameters(a: RegionArrays) -> dict[str, float | None]:
    """The region's OPEL parameters from its fresh hospitals (``surge.region_parameters`` on
    columns): occupancies pooled, counts and times averaged per reporting hospital."""
    f = a.fresh

    def pooled(num: F, den: F) -> float | None:
        ok = f & ~np.isnan(num) & ~np.isnan(den) & (den > 0)
        total = float(den[ok].sum())
        return float(num[ok].sum()) / total if total else None

    def mean(name: str) -> float | None:
        x = a.surge_values[f, SURGE_PARAMETERS.index(name)]
        x = x[~np.isnan(x)]
        return float(x.mean()) if x.size else None

    return {
        "ed_occupancy": pooled(a.ed_occupied, a.ed_capacity),
        "ed_boarding": mean("ed_boarding"),
        "longest_boarding_hours": mean("longest_boarding_hours"),
        "over_4h_share": mean("over_4h_share"),
        "handovers_over_30_min": mean("handovers_over_30_min"),
        "bed_occupancy": pooled(a.ward_occupied, a.ward_capacity),
        "icu_occupancy": pooled(a.icu_occupied, a.icu_capacity),
        "staffing_gap_share": mean("staffing_gap_share"),
    }
