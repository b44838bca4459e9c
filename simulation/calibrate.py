"""Calibration from history: arrival profiles, stays and routing from flow records.

Input is a pandas DataFrame of de-identified flow records, one row per stay in a unit:

=============== ==================================================================
column          meaning
=============== ==================================================================
``unit``        the unit of the stay (str)
``patient_class`` the patient class (str)
``arrival``     when the patient entered the unit (datetime64, timezone-aware or not)
``departure``   when they left it (datetime64; missing for patients still in)
``source``      optional: the unit they came from; empty, NaN or "external" when the
                stay began with an arrival from outside (these make the profiles)
``next_unit``   optional: the unit they went to; empty, NaN or "exit" when they left
=============== ==================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from simulation.arrivals import HOURS_PER_WEEK, ArrivalProfile
from simulation.distributions import Dist
from simulation.params import EXIT, LosRule, PatientClass, Route, RunSettings, Scenario, UnitParams
from simulation.runner import run_replication

FloatArray = npt.NDArray[np.float64]
REQUIRED = ("unit", "patient_class", "arrival", "departure")
CANDIDATES = ("lognormal", "gamma", "exponential")
EPOCH = pd.Timestamp("2024-01-01")  # a Monday: engine hour 0 in synthetic records


@dataclass
class Calibration:
    """Fitted inputs and the goodness-of-fit report.

    ``profiles``: (unit, class) → hour-of-week arrival profile of external arrivals;
    ``fits``: one row per (unit, class, candidate distribution) with its mean and sd
    (hours), log-likelihood, AIC, KS statistic and p-value, and ``best`` (lowest AIC);
    ``routing``: (unit, class, next_unit) → probability.
    """

    profiles: dict[tuple[str, str], ArrivalProfile]
    fits: pd.DataFrame
    routing: pd.DataFrame
    weeks_observed: float
    notes: list[str] = field(default_factory=list)

    def best(self) -> pd.DataFrame:
        return self.fits[self.fits["best"]].reset_index(drop=True)

    def dist(self, unit: str, patient_class: str) -> Dist:
        row = self.best().query("unit == @unit and patient_class == @patient_class").iloc[0]
        return Dist(str(row["distribution"]), float(row["mean_h"]), float(row["sd_h"]))  # type: ignore[arg-type]

    def to_scenario(
        self,
        name: str,
        beds: Mapping[str, int | None] | None = None,
        run: RunSettings | None = None,
    ) -> Scenario:
        """A unit-network scenario built from the fit (beds default to uncapacitated)."""
        beds = beds or {}
        units = sorted(set(self.fits["unit"]))
        classes = tuple(
            PatientClass(f"{cls}@{unit}" if _dup(self.profiles, cls) else cls, unit, prof)
            for (unit, cls), prof in sorted(self.profiles.items())
        )
        class_of = {
            (unit, cls): (f"{cls}@{unit}" if _dup(self.profiles, cls) else cls)
            for (unit, cls) in self.profiles
        }
        los = []
        for _, row in self.best().iterrows():
            cls = class_of.get(
                (str(row["unit"]), str(row["patient_class"])), str(row["patient_class"])
            )
            los.append(
                LosRule(
                    unit=str(row["unit"]),
                    dist=Dist(str(row["distribution"]), float(row["mean_h"]), float(row["sd_h"])),  # type: ignore[arg-type]
                    patient_class=cls,
                )
            )
        routes = []
        for key, grp in self.routing.groupby(["unit", "patient_class"]):
            unit, cls = (str(k) for k in key)
            pairs = zip(grp["next_unit"], grp["probability"], strict=True)
            to = tuple((str(n), float(p)) for n, p in pairs)
            routes.append(Route(unit, to, class_of.get((unit, cls), cls)))
        return Scenario(
            name=name,
            description="calibrated from flow records",
            units=tuple(UnitParams(u, beds.get(u), discharge_profile=False) for u in units),
            los=tuple(los),
            run=run or RunSettings(),
            classes=classes,
            routes=tuple(routes),
        )


def _dup(profiles: Mapping[tuple[str, str], ArrivalProfile], cls: str) -> bool:
    return sum(1 for _, c in profiles if c == cls) > 1


def fit_distribution(x: FloatArray, kind: str) -> tuple[Dist, float, int]:
    """Maximum-likelihood fit of one candidate: (dist, log-likelihood, parameters)."""
    if kind == "lognormal":
        logs = np.log(x)
        mu, sigma = float(logs.mean()), float(logs.std())
        sigma = max(sigma, 1e-6)
        ll = float(stats.lognorm.logpdf(x, s=sigma, scale=math.exp(mu)).sum())
        mean = math.exp(mu + sigma**2 / 2)
        sd = mean * math.sqrt(math.expm1(sigma**2))
        return Dist("lognormal", mean, sd), ll, 2
    if kind == "gamma":
        a, _loc, scale = stats.gamma.fit(x, floc=0)
        ll = float(stats.gamma.logpdf(x, a, scale=scale).sum())
        return Dist("gamma", a * scale, math.sqrt(a) * scale), ll, 2
    if kind == "exponential":
        mean = float(x.mean())
        ll = float(stats.expon.logpdf(x, scale=mean).sum())
        return Dist("exponential", mean, mean), ll, 1
    raise ValueError(kind)


def fit_stays(x: FloatArray) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for kind in CANDIDATES:
        dist, ll, k = fit_distribution(x, kind)
        frozen = dist.frozen()
        ks = stats.kstest(x, frozen.cdf) if frozen is not None else None
        rows.append(
            {
                "distribution": kind,
                "mean_h": dist.mean,
                "sd_h": dist.sd,
                "loglik": ll,
                "aic": 2 * k - 2 * ll,
                "ks_stat": float(ks.statistic) if ks is not None else math.nan,
                "ks_pvalue": float(ks.pvalue) if ks is not None else math.nan,
            }
        )
    best = int(np.argmin([float(r["aic"]) for r in rows]))
    for i, r in enumerate(rows):
        r["best"] = i == best
    return rows


def _is_outside(values: pd.Series) -> npt.NDArray[np.bool_]:
    s = values.astype("string").fillna("").str.strip().str.lower()
    return np.asarray(s.isin(["", "external", "exit", "nan", "none"]), dtype=bool)


def calibrate(records: pd.DataFrame, *, min_stays: int = 20) -> Calibration:
    """Fit hour-of-week arrival profiles, stay distributions and routing."""
    missing = [c for c in REQUIRED if c not in records.columns]
    if missing:
        raise ValueError(f"flow records need columns {REQUIRED}; missing {missing}")
    df = records.copy()
    df["arrival"] = pd.to_datetime(df["arrival"])
    df["departure"] = pd.to_datetime(df["departure"])
    notes: list[str] = []
    start = df["arrival"].min().floor("h")
    end = df["arrival"].max().ceil("h")
    hours = pd.date_range(start, end, freq="h", inclusive="left")
    how_all = np.asarray(hours.dayofweek * 24 + hours.hour)
    exposure = np.bincount(how_all, minlength=HOURS_PER_WEEK).astype(float)
    weeks = len(hours) / HOURS_PER_WEEK
    if (exposure == 0).any():
        notes.append("history shorter than a week: some hours of the week have no data")
    outside = _is_outside(df["source"]) if "source" in df.columns else np.ones(len(df), bool)
    profiles: dict[tuple[str, str], ArrivalProfile] = {}
    ext = df[outside]
    for (unit, cls), grp in ext.groupby(["unit", "patient_class"]):
        how = np.asarray(grp["arrival"].dt.dayofweek * 24 + grp["arrival"].dt.hour)
        counts = np.bincount(how, minlength=HOURS_PER_WEEK).astype(float)
        rates = np.divide(counts, exposure, out=np.zeros(HOURS_PER_WEEK), where=exposure > 0)
        profiles[(str(unit), str(cls))] = ArrivalProfile(tuple(float(r) for r in rates))
    done = df.dropna(subset=["departure"])
    stay_h = (done["departure"] - done["arrival"]).dt.total_seconds() / 3600
    done = done.assign(stay_h=stay_h)[stay_h > 0]
    fit_rows: list[dict[str, Any]] = []
    for (unit, cls), grp in done.groupby(["unit", "patient_class"]):
        x = np.asarray(grp["stay_h"], dtype=float)
        if x.size < min_stays:
            notes.append(f"{unit}/{cls}: only {x.size} stays, not fitted")
            continue
        fit_rows.extend(
            {"unit": unit, "patient_class": cls, "n": int(x.size), **row} for row in fit_stays(x)
        )
    route_rows: list[dict[Any, Any]] = []
    if "next_unit" in df.columns:
        nxt = df["next_unit"].where(~_is_outside(df["next_unit"]), EXIT).astype(str)
        table = (
            df.assign(next_unit=nxt)
            .groupby(["unit", "patient_class", "next_unit"])
            .size()
            .rename("n")
            .reset_index()
        )
        totals = table.groupby(["unit", "patient_class"])["n"].transform("sum")
        table["probability"] = table["n"] / totals
        route_rows = table.drop(columns="n").to_dict(orient="records")
    return Calibration(
        profiles=profiles,
        fits=pd.DataFrame(fit_rows),
        routing=pd.DataFrame(
            route_rows, columns=["unit", "patient_class", "next_unit", "probability"]
        ),
        weeks_observed=weeks,
        notes=notes,
    )


def flow_records(stays: pd.DataFrame, epoch: pd.Timestamp = EPOCH) -> pd.DataFrame:
    """Engine stay records (hours) → flow records in the calibration format."""
    s = stays[stays["t_bed"].notna()].sort_values(["pid", "t_bed"]).copy()
    prev = s.groupby("pid")["unit"].shift(1)
    out = pd.DataFrame(
        {
            "unit": s["unit"].to_numpy(),
            "patient_class": s["patient_class"].to_numpy(),
            "arrival": epoch + pd.to_timedelta(s["t_bed"].to_numpy(), unit="h"),
            "departure": epoch + pd.to_timedelta(s["t_release"].to_numpy(), unit="h"),
            "source": prev.fillna("external").to_numpy(),
            "next_unit": s["next"].to_numpy(),
        }
    )
    return out.reset_index(drop=True)


def synthetic_flow_records(scenario: Scenario, seed: int = 1) -> pd.DataFrame:
    """Synthetic de-identified flow records: run ``scenario`` once and export its stays
    (the warm-up is dropped so that stays start from an empty hospital)."""
    sc = replace(scenario, run=replace(scenario.run, warmup_days=0.0, initial_occupancy=()))
    result = run_replication(sc, 0, seed, keep_tables=True)
    return flow_records(result.tables["stays"])
