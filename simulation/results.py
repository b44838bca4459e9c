"""Replication results, metrics and their summary with 95% confidence intervals.

A :class:`ReplicationResult` is small and JSON-friendly (``to_dict``/``from_dict``) so
the hub can return it from a Celery task; :func:`summarise` combines any list of them,
wherever they were computed, into the same :class:`Results` a local run gives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from simulation.engine import Model

FloatArray = npt.NDArray[np.float64]
WAIT_BIN_HOURS = 0.25
WAIT_BINS = 48  # 0–12 hours in quarter hours; the last bin also holds longer waits

STAY_COLUMNS = [
    "pid",
    "unit",
    "patient_class",
    "t_request",
    "t_bed",
    "t_ready",
    "t_release",
    "next",
]
VISIT_COLUMNS = [
    "pid",
    "mode",
    "acuity",
    "t_arrival",
    "t_bed",
    "t_seen",
    "t_decision",
    "t_departure",
    "destination",
]
CASE_COLUMNS = ["day", "room", "case_type", "t_start", "t_end", "status", "destination"]
SESSION_COLUMNS = ["day", "room", "t_open", "t_close", "t_last_end", "case_hours"]


@dataclass
class ReplicationResult:
    """The outputs of one replication.

    ``metrics`` are flat scalars named ``ed.*``, ``unit.<name>.*``, ``or.*`` (and
    ``<hospital>.``-prefixed in a regional run); ``series`` holds each pool's busy count
    at every snapshot of the measurement window; ``audit`` holds, per pool, the hours
    spent at each occupancy level and how many arrivals found each level.
    """

    scenario: str
    replication: int
    seed: int
    metrics: dict[str, float]
    series: dict[str, list[float]] = field(default_factory=dict)
    series_start: float = 0.0
    series_step: float = 1.0
    wait_hist: list[int] = field(default_factory=list)
    wait_label: str = ""
    audit: dict[str, tuple[list[float], list[int]]] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN becomes None); raw tables are not included."""
        return {
            "scenario": self.scenario,
            "replication": self.replication,
            "seed": self.seed,
            "metrics": {k: _json_float(v) for k, v in self.metrics.items()},
            "series": self.series,
            "series_start": self.series_start,
            "series_step": self.series_step,
            "wait_hist": self.wait_hist,
            "wait_label": self.wait_label,
            "audit": {k: [lt, seen] for k, (lt, seen) in self.audit.items()},
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> ReplicationResult:
        return ReplicationResult(
            scenario=str(data["scenario"]),
            replication=int(data["replication"]),
            seed=int(data["seed"]),
            metrics={k: math.nan if v is None else float(v) for k, v in data["metrics"].items()},
            series={k: [float(x) for x in v] for k, v in data.get("series", {}).items()},
            series_start=float(data.get("series_start", 0.0)),
            series_step=float(data.get("series_step", 1.0)),
            wait_hist=[int(x) for x in data.get("wait_hist", [])],
            wait_label=str(data.get("wait_label", "")),
            audit={
                k: ([float(x) for x in v[0]], [int(x) for x in v[1]])
                for k, v in data.get("audit", {}).items()
            },
        )


def _json_float(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def _q(values: FloatArray, q: float) -> float:
    return float(np.quantile(values, q)) if values.size else math.nan


def _mean(values: FloatArray) -> float:
    return float(values.mean()) if values.size else math.nan


def tables(model: Model) -> dict[str, pd.DataFrame]:
    """The model's records as DataFrames (times in hours)."""
    return {
        "stays": pd.DataFrame.from_records(model.stays, columns=STAY_COLUMNS),
        "visits": pd.DataFrame.from_records(model.visits, columns=VISIT_COLUMNS),
        "cases": pd.DataFrame.from_records(model.cases, columns=CASE_COLUMNS),
        "sessions": pd.DataFrame.from_records(model.sessions, columns=SESSION_COLUMNS),
    }


def _overlap(start: FloatArray, end: FloatArray, lo: float, hi: float) -> float:
    return float(np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0.0, None).sum())


def model_metrics(model: Model, prefix: str = "") -> dict[str, float]:
    """Scalar outputs of one run over its measurement window (after the warm-up)."""
    run = model.run
    w, end = run.warmup, model.env.now
    window = end - w
    m: dict[str, float] = {}
    for pool in model.all_pools().values():
        pool.close()

    stay_cols = list(zip(*model.stays, strict=True)) or [()] * 8
    stays = np.array(stay_cols[3:7], dtype=float).reshape(4, -1).T
    stay_unit = np.array(stay_cols[1], dtype=object)
    for name, pool in model.pools.items():
        sel = stay_unit == name
        t_req, t_bed, _t_ready, t_rel = (stays[sel, i] for i in range(4))
        requested = t_req >= w
        blocked = np.isnan(t_bed)
        started = ~blocked & (t_bed >= w)
        waited = t_bed[requested & ~blocked] - t_req[requested & ~blocked]
        holding = t_rel[started] - t_bed[started]
        p = f"{prefix}unit.{name}."
        occ = pool.area / window
        m[p + "occupancy_mean"] = occ
        beds = model.scenario.unit(name).beds
        m[p + "utilisation"] = occ / beds if beds else math.nan
        m[p + "queue_mean"] = pool.qarea / window
        m[p + "arrivals_per_day"] = pool.arrivals / window * 24
        m[p + "blocked_share"] = float(blocked[requested].mean()) if requested.any() else math.nan
        m[p + "p_wait"] = float((waited > 1e-9).mean()) if waited.size else math.nan
        m[p + "wait_mean_h"] = _mean(waited)
        m[p + "wait_p95_h"] = _q(waited, 0.95)
        m[p + "stay_mean_h"] = _mean(holding)
        # Little's law, statistically: L (time average) against λ·W from the records.
        lam_w = holding.size / window * _mean(holding)
        m[p + "little_L"] = occ
        m[p + "little_lambda_W"] = lam_w
        m[p + "little_rel_error"] = abs(occ - lam_w) / occ if occ > 0 else 0.0
        # ... and as a sample-path identity over the window, which must hold to rounding
        # on every run: it ties the occupancy integral to the patient records.
        closed = _overlap(t_bed[~blocked], t_rel[~blocked], w, end)
        open_ = [v[3] for v in model.in_bed.values() if v[0] == name]
        total = closed + _overlap(np.array(open_, dtype=float), np.full(len(open_), end), w, end)
        m[p + "little_identity_error"] = abs(total - pool.area) / max(pool.area, 1e-9)

    if model.ed_beds is not None and model.clinicians is not None:
        visit_cols = list(zip(*model.visits, strict=True)) or [()] * 9
        v = np.array(visit_cols[3:8], dtype=float).reshape(5, -1).T
        mode = np.array(visit_cols[1], dtype=object)
        dest = np.array(visit_cols[8], dtype=object)
        inw = v[:, 0] >= w
        t0, t_bed, t_seen, t_dec, t_out = (v[inw, i] for i in range(5))
        mode, dest = mode[inw], dest[inw]
        wait = t_seen - t0
        los = t_out - t0
        admitted = dest != ""
        board = (t_out - t_dec)[admitted]
        amb = mode == "ambulance"
        offload = (t_bed - t0)[amb] * 60
        p = f"{prefix}ed."
        m[p + "arrivals_per_day"] = model.ed_beds.arrivals / window * 24
        m[p + "wait_mean_h"] = _mean(wait)
        m[p + "wait_p95_h"] = _q(wait, 0.95)
        m[p + "los_mean_h"] = _mean(los)
        m[p + "los_p95_h"] = _q(los, 0.95)
        m[p + "within_4h"] = float((los <= 4).mean()) if los.size else math.nan
        m[p + "admitted_share"] = float(admitted.mean()) if los.size else math.nan
        m[p + "boarding_mean_h"] = _mean(board)
        m[p + "boarding_hours_per_day"] = float(board.sum()) / window * 24
        m[p + "offload_mean_min"] = _mean(offload)
        m[p + "offload_p95_min"] = _q(offload, 0.95)
        m[p + "occupancy_mean"] = model.ed_beds.area / window
        m[p + "clinician_utilisation"] = (
            model.clinicians.area
            / max(sum(model.scenario.ed.clinicians_by_hour()), 1)
            * 24
            / window
            if model.scenario.ed
            else math.nan
        )
        m[p + "waiting_mean"] = model.ed_beds.qarea / window
        stay = t_out - t_bed
        lam_w = stay.size / window * _mean(stay)
        occ = model.ed_beds.area / window
        m[p + "little_rel_error"] = abs(occ - lam_w) / occ if occ > 0 else 0.0
        closed = _overlap(v[:, 1], v[:, 4], w, end)
        open_ed = np.array(list(model.in_ed.values()), dtype=float)
        total = closed + _overlap(open_ed, np.full(open_ed.size, end), w, end)
        m[p + "little_identity_error"] = abs(total - model.ed_beds.area) / max(
            model.ed_beds.area, 1e-9
        )

    surgery = model.scenario.surgery
    if surgery is not None:
        sessions = [s for s in model.sessions if s[2] >= w]
        booked = [c for c in model.cases if c[0] * 24 + surgery.session_start >= w]
        status = np.array([c[5] for c in booked], dtype=object)
        p = f"{prefix}or."
        session_hours = sum(s[3] - s[2] for s in sessions)
        in_session = 0.0
        for c in booked:
            if c[5] == "done":
                close = c[0] * 24 + surgery.session_start + surgery.session_hours
                in_session += max(0.0, min(c[4], close) - c[3])
        m[p + "utilisation"] = in_session / session_hours if session_hours else math.nan
        over = np.array([max(0.0, s[4] - s[3]) for s in sessions])
        m[p + "overtime_h_per_session"] = _mean(over)
        m[p + "sessions_over_30min_share"] = float((over > 0.5).mean()) if over.size else math.nan
        n_days = window / 24
        m[p + "cases_done_per_day"] = float((status == "done").sum()) / n_days
        m[p + "cancelled_no_bed_per_day"] = float((status == "cancelled_no_bed").sum()) / n_days
        m[p + "cancelled_overrun_per_day"] = float((status == "cancelled_overrun").sum()) / n_days
        m[p + "cancelled_share"] = float((status != "done").mean()) if status.size else math.nan
    return m


def model_series(model: Model) -> tuple[dict[str, list[float]], float]:
    """Busy counts per pool at each snapshot in the measurement window."""
    w = model.run.warmup
    series: dict[str, list[float]] = {}
    snaps = model.snapshots
    # Snapshots are appended in time order: skip the warm-up's, then group the rest.
    k = next((i for i, s in enumerate(snaps) if s[0] >= w - 1e-9), len(snaps))
    if k == len(snaps):
        return series, w
    for _t, name, busy, _queued in snaps[k:]:
        column = series.get(name)
        if column is None:
            column = series[name] = []
        column.append(float(busy))
    return series, snaps[k][0]


def model_wait_hist(model: Model) -> tuple[list[int], str]:
    w = model.run.warmup
    if model.visits:
        waits = np.array([r[5] - r[3] for r in model.visits if r[3] >= w], dtype=float)
        label = "ED wait for a clinician"
    else:
        waits = np.array(
            [s[4] - s[3] for s in model.stays if s[3] >= w and not math.isnan(s[4])], dtype=float
        )
        label = "wait for a bed"
    idx = np.minimum((waits / WAIT_BIN_HOURS).astype(np.int64), WAIT_BINS - 1)
    return np.bincount(idx, minlength=WAIT_BINS).tolist(), label


def model_audit(model: Model) -> dict[str, tuple[list[float], list[int]]]:
    out: dict[str, tuple[list[float], list[int]]] = {}
    for name, pool in model.all_pools().items():
        pool.close()
        out[name] = (list(pool.level_time), list(pool.seen))
    return out


def collect(
    model: Model, *, scenario: str, replication: int, seed: int, keep_tables: bool = False
) -> ReplicationResult:
    audit = model_audit(model)
    metrics = model_metrics(model)
    series, start = model_series(model)
    hist, label = model_wait_hist(model)
    return ReplicationResult(
        scenario=scenario,
        replication=replication,
        seed=seed,
        metrics=metrics,
        series=series,
        series_start=start,
        series_step=model.run.snapshot_hours,
        wait_hist=hist,
        wait_label=label,
        audit=audit,
        tables=tables(model) if keep_tables else {},
    )


# -- summaries ------------------------------------------------------------------------


def confidence_interval(values: Sequence[float] | FloatArray) -> tuple[float, float, float, float]:
    """Mean, standard deviation and a 95% t interval, ignoring NaN replications."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half


@dataclass
class Results:
    """Replications combined: a metric table with 95% CIs, occupancy bands, wait
    distribution and occupancy audits."""

    scenario: str
    runs: list[ReplicationResult]
    table: pd.DataFrame
    bands: dict[str, pd.DataFrame]
    wait_hist: list[int]
    wait_label: str

    def mean(self, metric: str) -> float:
        return float(cast(float, self.table.at[metric, "mean"]))

    def ci(self, metric: str) -> tuple[float, float]:
        lo, hi = self.table.at[metric, "ci_low"], self.table.at[metric, "ci_high"]
        return float(cast(float, lo)), float(cast(float, hi))

    def audit(self, pool: str, max_beds: int | None = None) -> pd.DataFrame:
        return occupancy_audit(self.runs, pool, max_beds)

    def to_dict(self, *, bands: bool = False) -> dict[str, Any]:
        """JSON-ready summary; ``bands=True`` adds the occupancy bands per pool."""
        out = self._summary()
        if bands:
            out["bands"] = {
                name: {col: [float(x) for x in df[col]] for col in ("t", "mean", "p10", "p90")}
                for name, df in self.bands.items()
            }
        return out

    def _summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "replications": len(self.runs),
            "metrics": {
                str(name): {str(k): _json_float(float(v)) for k, v in row.items()}
                for name, row in self.table.to_dict(orient="index").items()
            },
            "wait_hist": {"bin_hours": WAIT_BIN_HOURS, "counts": self.wait_hist},
            "wait_label": self.wait_label,
        }


def occupancy_audit(
    runs: Iterable[ReplicationResult], pool: str, max_beds: int | None = None
) -> pd.DataFrame:
    """Occupancy distribution of ``pool`` and, for each n, the probability that an
    arriving patient finds at least n beds occupied: with n beds, all of them full."""
    level_time: FloatArray = np.zeros(1)
    seen: FloatArray = np.zeros(1)
    for r in runs:
        lt, sn = r.audit[pool]
        a, b = np.asarray(lt, dtype=float), np.asarray(sn, dtype=float)
        size = max(level_time.size, a.size, seen.size, b.size)
        level_time = np.pad(level_time, (0, size - level_time.size)) + np.pad(a, (0, size - a.size))
        seen = np.pad(seen, (0, size - seen.size)) + np.pad(b, (0, size - b.size))
    size = max(level_time.size, seen.size) if max_beds is None else max_beds + 1
    level_time = np.pad(level_time, (0, max(0, size - level_time.size)))[:size]
    seen = np.pad(seen, (0, max(0, size - seen.size)))[:size]
    p_time = level_time / max(level_time.sum(), 1e-12)
    p_seen = seen / max(seen.sum(), 1e-12)
    # P(an arrival finds >= n occupied) = tail sum of the arrival-point distribution.
    tail = p_seen[::-1].cumsum()[::-1]
    return pd.DataFrame(
        {
            "beds": np.arange(size),
            "p_occupancy": p_time,
            "p_time_at_least": p_time[::-1].cumsum()[::-1],
            "p_arrival_finds_all_full": tail,
        }
    )


def summarise(runs: Sequence[ReplicationResult | Mapping[str, Any]]) -> Results:
    """Combine replications (objects or their ``to_dict`` form) into :class:`Results`."""
    reps = [r if isinstance(r, ReplicationResult) else ReplicationResult.from_dict(r) for r in runs]
    if not reps:
        raise ValueError("nothing to summarise")
    reps.sort(key=lambda r: r.replication)
    names = sorted({k for r in reps for k in r.metrics})
    rows = []
    for name in names:
        mean, sd, lo, hi = confidence_interval([r.metrics.get(name, math.nan) for r in reps])
        rows.append((name, mean, sd, lo, hi, len(reps)))
    table = pd.DataFrame.from_records(
        rows, columns=["metric", "mean", "sd", "ci_low", "ci_high", "n"]
    ).set_index("metric")
    bands: dict[str, pd.DataFrame] = {}
    for name in reps[0].series:
        length = min(len(r.series.get(name, [])) for r in reps)
        if length == 0:
            continue
        arr = np.array([r.series[name][:length] for r in reps], dtype=float)
        t = reps[0].series_start + np.arange(length) * reps[0].series_step
        bands[name] = pd.DataFrame(
            {
                "t": t,
                "mean": arr.mean(axis=0),
                "p10": np.quantile(arr, 0.1, axis=0),
                "p90": np.quantile(arr, 0.9, axis=0),
            }
        )
    hist = np.zeros(WAIT_BINS, dtype=np.int64)
    for r in reps:
        if r.wait_hist:
            hist += np.asarray(r.wait_hist, dtype=np.int64)
    return Results(
        scenario=reps[0].scenario,
        runs=reps,
        table=table,
        bands=bands,
        wait_hist=hist.tolist(),
        wait_label=reps[0].wait_label,
    )
