"""Hourly arrival forecasts and their back-test against two naive baselines.

The forecast is multiplicative: the mean of the same hour of the week over up to a
year of history (the shape, with little noise because it averages many weeks) times a
level factor from the last two weeks (which follows trend, season and outbreaks that a
fixed eight-week average lags behind). Its 80% interval comes from a negative binomial
whose over-dispersion is estimated on the training part only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

FloatArray = npt.NDArray[np.float64]
WEEK = 168
SHAPE_WEEKS = 52
LEVEL_HOURS = 14 * 24
TIME_NAMES = ("timestamp", "time", "datetime", "date", "hour", "period")
COUNT_NAMES = ("count", "arrivals", "n", "attendances", "value")


def synthetic_arrivals(
    weeks: int = 104,
    seed: int = 1,
    *,
    daily_mean: float = 281.0,
    start: str = "2023-01-02",
    yearly_amplitude: float = 0.08,
    trend_per_year: float = 0.03,
    level_noise: float = 0.015,
) -> pd.DataFrame:
    """A synthetic hourly ED arrivals history (``timestamp``, ``count``), seeded.

    Hour-of-day and day-of-week shape as in the bundled general hospital; a winter peak;
    a slow trend; a daily level that wanders (AR(1) on the log scale) like real demand
    does with weather and outbreaks; Poisson-gamma counts. Never real data.
    """
    rng = np.random.default_rng(seed)
    hod = np.array(
        [0.45, 0.35, 0.28, 0.22, 0.20, 0.22, 0.35, 0.60, 1.00, 1.35, 1.50, 1.50,
         1.45, 1.40, 1.38, 1.35, 1.30, 1.30, 1.30, 1.25, 1.15, 1.00, 0.80, 0.60]
    )  # fmt: skip
    dow = np.array([1.12, 1.02, 0.98, 0.97, 0.99, 0.95, 0.97])
    n = weeks * WEEK
    ts = pd.date_range(start, periods=n, freq="h")
    days = n // 24
    log_level = np.zeros(days)
    for d in range(1, days):
        log_level[d] = 0.9 * log_level[d - 1] + rng.normal(0, level_noise)
    t_years = np.arange(n) / (24 * 365.25)
    doy = np.asarray(ts.dayofyear, dtype=float)
    season = 1 + yearly_amplitude * np.cos(2 * np.pi * (doy - 15) / 365.25)
    mean = (
        daily_mean
        * (hod / hod.sum())[ts.hour]
        * (dow / dow.mean())[ts.dayofweek]
        * season
        * (1 + trend_per_year * t_years)
        * np.exp(log_level[np.arange(n) // 24])
    )
    # Gamma-mixed Poisson: hourly counts are a little more variable than Poisson.
    counts = rng.poisson(mean * rng.gamma(50.0, 1 / 50.0, n))
    return pd.DataFrame({"timestamp": ts, "count": counts})


def read_history(
    df: pd.DataFrame, time_column: str | None = None, count_column: str | None = None
) -> pd.Series:
    """An hourly count series from a table with a timestamp and a count column."""
    cols = {c.lower(): c for c in df.columns}
    tcol = time_column or next((cols[n] for n in TIME_NAMES if n in cols), df.columns[0])
    ccol = count_column or next(
        (cols[n] for n in COUNT_NAMES if n in cols),
        next(c for c in df.columns if c != tcol and pd.api.types.is_numeric_dtype(df[c])),
    )
    times = pd.to_datetime(df[tcol]).dt.floor("h")
    counts = pd.to_numeric(df[ccol], errors="coerce").fillna(0.0)
    series = counts.groupby(times).sum().sort_index()
    # Hours with no row had no arrivals.
    return series.asfreq("h", fill_value=0.0).astype(float)


def _weeks_back(horizon: int) -> int:
    return max(1, math.ceil(horizon / WEEK))


def seasonal_forecast(y: FloatArray, targets: npt.NDArray[np.int64], horizon: int) -> FloatArray:
    """Point forecasts for hours ``targets`` using data up to ``target - horizon``."""
    k0 = _weeks_back(horizon)
    out = np.full(targets.size, np.nan)
    for j, i in enumerate(targets.tolist()):
        origin = i - horizon
        lags = i - WEEK * np.arange(k0, k0 + SHAPE_WEEKS)
        lags = lags[lags >= 0]
        if lags.size < 2:
            continue
        shape_i = y[lags].mean()
        recent = np.arange(max(0, origin - LEVEL_HOURS + 1), origin + 1)
        # The shape for each recent hour, from the same weeks-back window as the target,
        # so level and shape are measured against the same yardstick.
        r_lags = recent[:, None] - WEEK * np.arange(k0, k0 + SHAPE_WEEKS)[None, :]
        valid = r_lags >= 0
        expected = np.where(valid, y[np.maximum(r_lags, 0)], 0.0).sum(1) / np.maximum(
            valid.sum(1), 1
        )
        ok = valid.sum(1) >= 2
        level = (y[recent[ok]].sum() + 1) / (expected[ok].sum() + 1) if ok.any() else 1.0
        out[j] = shape_i * level
    return out


def _nb_interval(mu: FloatArray, phi: float) -> tuple[FloatArray, FloatArray]:
    mu = np.maximum(mu, 1e-9)
    if phi <= 1e-6:
        return stats.poisson.ppf(0.1, mu), stats.poisson.ppf(0.9, mu)
    n = 1 / phi
    p = n / (n + mu)
    return stats.nbinom.ppf(0.1, n, p), stats.nbinom.ppf(0.9, n, p)


@dataclass
class BacktestResult:
    """``table``: per method MAE, RMSE, 80% interval coverage and n; ``forecasts``: per
    test hour the actual and each method's forecast and interval."""

    horizon: int
    table: pd.DataFrame
    forecasts: pd.DataFrame

    @property
    def beats_baselines(self) -> bool:
        mae = self.table.set_index("method")["mae"]
        return bool(mae["seasonal"] < mae["last_week"] and mae["seasonal"] < mae["mean_8_weeks"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon_hours": self.horizon,
            "methods": self.table.to_dict(orient="records"),
            "beats_baselines": self.beats_baselines,
        }


def backtest(history: pd.Series | pd.DataFrame, horizon: int = 1, **columns: Any) -> BacktestResult:
    """Forecast each hour of the last fifth from data at least ``horizon`` hours older,
    and score against *same hour last week* and *mean of the same hour-of-week over the
    previous 8 weeks*, computed in the same run."""
    series = history if isinstance(history, pd.Series) else read_history(history, **columns)
    y = series.to_numpy(dtype=float)
    n = y.size
    k0 = _weeks_back(horizon)
    start = max(int(n * 0.8), (k0 + 8) * WEEK)
    if start >= n:
        raise ValueError(f"need more than {(k0 + 8) * WEEK / 0.8:.0f} hours of history")
    targets = np.arange(start, n, dtype=np.int64)
    # Over-dispersion from the training part only: forecasts of its last 8 weeks.
    train = np.arange(max((k0 + 2) * WEEK, start - 8 * WEEK), start, dtype=np.int64)
    mu_train = seasonal_forecast(y, train, horizon)
    ok = ~np.isnan(mu_train) & (mu_train > 0)
    resid = (y[train][ok] - mu_train[ok]) ** 2 - mu_train[ok]
    phi = max(0.0, float(np.sum(resid) / np.sum(mu_train[ok] ** 2))) if ok.any() else 0.0
    mu = seasonal_forecast(y, targets, horizon)
    lo, hi = _nb_interval(mu, phi)
    last = y[targets - WEEK * k0]
    lags8 = targets[:, None] - WEEK * np.arange(k0, k0 + 8)[None, :]
    mean8 = y[lags8].mean(axis=1)
    actual = y[targets]
    methods: Mapping[str, tuple[FloatArray, FloatArray, FloatArray]] = {
        "seasonal": (mu, lo, hi),
        "last_week": (last, *(stats.poisson.ppf(q, np.maximum(last, 1e-9)) for q in (0.1, 0.9))),
        "mean_8_weeks": (
            mean8,
            *(stats.poisson.ppf(q, np.maximum(mean8, 1e-9)) for q in (0.1, 0.9)),
        ),
    }
    rows = []
    fc = {"timestamp": series.index[targets], "actual": actual}
    for name, (point, low, high) in methods.items():
        err = point - actual
        rows.append(
            {
                "method": name,
                "mae": float(np.mean(np.abs(err))),
                "rmse": float(np.sqrt(np.mean(err**2))),
                "coverage80": float(np.mean((actual >= low) & (actual <= high))),
                "n": int(actual.size),
            }
        )
        fc |= {name: point, f"{name}_lo": low, f"{name}_hi": high}
    return BacktestResult(horizon, pd.DataFrame(rows), pd.DataFrame(fc))
