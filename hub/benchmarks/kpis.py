"""Benchmarking KPIs per hospital and period, from de-identified data. Pure pandas: tidy
frames in, tidy frames out; no ORM (``hub.benchmarks.selectors`` builds the frames).

Input frames (one row per ...), columns in ``backticks``; times are UTC timestamps:

- ED visits: ``hospital``, ``arrival``, ``departure``, ``admitted`` (bool), and where known
  ``acuity`` (triage 1-5), ``decision_to_admit`` (boarding starts), ``ambulance`` (bool),
  ``offload_minutes`` (ambulance arrival to handover).
- counts (already aggregated, e.g. NHS England's monthly A&E returns): ``hospital``,
  ``period``, ``attendances``, ``breaches``.
- OR sessions: ``hospital``, ``date``, ``staffed_minutes``, ``in_room_minutes``,
  ``planned_electives``, ``cancelled_electives``.
- bed snapshots: ``hospital``, ``at``, ``unit_type`` (deid vocabulary), ``occupied``,
  ``staffed``.
- inpatient stays: ``hospital``, ``unit_type``, ``admitted_at``, ``discharged_at``.

Definitions follow the public ones they are compared with: 4-hour performance is NHS
England's (share of attendances with arrival to admission, transfer or discharge within
4 hours, i.e. 1 − breaches/attendances); 12-hour waits count stays over 12 hours from
arrival; ambulance offload p90 is APOT-1's 90th percentile; OR utilisation is in-room time
over staffed session time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
FOUR_HOURS = pd.Timedelta(hours=4)
TWELVE_HOURS = pd.Timedelta(hours=12)
ICU_TYPES = frozenset({"adult_icu", "pediatric_icu", "neonatal_icu"})
# Places that are not inpatient beds (HHS/NHSN definitions, deid.contracts.vocabulary).
NOT_BEDS = frozenset({"emergency", "operating_room", "observation", "other"})


def period_start(ts: pd.Series, period: Period) -> pd.Series:
    """The start of the day, ISO week (Monday) or month each timestamp falls in, as a
    timezone-naive date-time (UTC), so periods group and sort plainly."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}")
    t = pd.to_datetime(ts, utc=True).dt.tz_localize(None)
    if period == "day":
        return t.dt.floor("D")
    if period == "week":
        day = t.dt.floor("D")
        return day - pd.to_timedelta(day.dt.weekday, unit="D")
    return t.dt.to_period("M").dt.start_time


def _q(values: pd.Series, q: float) -> float:
    v = values.dropna()
    return float(np.quantile(v, q)) if len(v) else float("nan")


def four_hour_performance(
    counts: pd.DataFrame, by: Sequence[str] = ("hospital", "period")
) -> pd.DataFrame:
    """1 − breaches/attendances over the groups ``by`` (sums first, then the ratio: the share
    of all attendances in the group, not a mean of shares). Rows with no attendances are
    left out (the ratio is undefined)."""
    keys = list(by)
    g = counts.groupby(keys, observed=True, sort=True)[["attendances", "breaches"]].sum()
    g = g[g["attendances"] > 0]
    if (g["breaches"] > g["attendances"]).any() or (g["breaches"] < 0).any():
        raise ValueError("breaches must lie between 0 and the attendances")
    g["within_4h_share"] = 1.0 - g["breaches"] / g["attendances"]
    return g.reset_index()


def ed_kpis(visits: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Per hospital and period (by arrival): attendances, ED length of stay (median and p90,
    minutes), share within 4 hours, 12-hour waits, admissions and conversion (admitted /
    attendances), boarding (decision to admit → departure; median and p90, minutes) and
    ambulance offload p90 (minutes)."""
    v = visits.copy()
    v["period"] = period_start(v["arrival"], period)
    los = pd.to_datetime(v["departure"], utc=True) - pd.to_datetime(v["arrival"], utc=True)
    if (los < pd.Timedelta(0)).any():
        raise ValueError("a visit departs before it arrives")
    v["los_minutes"] = los.dt.total_seconds() / 60.0
    v["breach"] = los > FOUR_HOURS
    v["over_12h"] = los > TWELVE_HOURS
    v["admitted"] = v["admitted"].astype(bool)
    if "decision_to_admit" in v:
        dta = pd.to_datetime(v["decision_to_admit"], utc=True)
        board = pd.to_datetime(v["departure"], utc=True) - dta
        v["boarding_minutes"] = (board.dt.total_seconds() / 60.0).where(v["admitted"])
    else:
        v["boarding_minutes"] = np.nan
    if "offload_minutes" not in v:
        v["offload_minutes"] = np.nan
    rows = []
    for (hospital, start), grp in v.groupby(["hospital", "period"], sort=True):
        n = len(grp)
        admitted = int(grp["admitted"].sum())
        rows.append(
            {
                "hospital": hospital,
                "period": start,
                "attendances": n,
                "los_median_minutes": _q(grp["los_minutes"], 0.5),
                "los_p90_minutes": _q(grp["los_minutes"], 0.9),
                "breaches": int(grp["breach"].sum()),
                "within_4h_share": 1.0 - grp["breach"].sum() / n,
                "waits_over_12h": int(grp["over_12h"].sum()),
                "admissions": admitted,
                "conversion_rate": admitted / n,
                "boarding_median_minutes": _q(grp["boarding_minutes"], 0.5),
                "boarding_p90_minutes": _q(grp["boarding_minutes"], 0.9),
                "offload_p90_minutes": _q(grp["offload_minutes"], 0.9),
                "ambulance_handovers": int(grp["offload_minutes"].notna().sum()),
            }
        )
    return pd.DataFrame(rows, columns=ED_COLUMNS)


ED_COLUMNS = [
    "hospital",
    "period",
    "attendances",
    "los_median_minutes",
    "los_p90_minutes",
    "breaches",
    "within_4h_share",
    "waits_over_12h",
    "admissions",
    "conversion_rate",
    "boarding_median_minutes",
    "boarding_p90_minutes",
    "offload_p90_minutes",
    "ambulance_handovers",
]


def or_kpis(sessions: pd.DataFrame, period: Period) -> pd.DataFrame:
    """OR utilisation (Σ in-room minutes / Σ staffed minutes) and cancelled electives."""
    s = sessions.copy()
    s["period"] = period_start(s["date"], period)
    g = s.groupby(["hospital", "period"], sort=True)[
        ["staffed_minutes", "in_room_minutes", "planned_electives", "cancelled_electives"]
    ].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        g["or_utilisation"] = g["in_room_minutes"] / g["staffed_minutes"].where(
            g["staffed_minutes"] > 0
        )
        g["cancelled_share"] = g["cancelled_electives"] / g["planned_electives"].where(
            g["planned_electives"] > 0
        )
    return g.reset_index()


def occupancy_kpis(snapshots: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Bed occupancy (inpatient beds other than ICU) and ICU occupancy: Σ occupied / Σ staffed
    over the period's snapshots, i.e. the time-average when snapshots are evenly spaced."""
    s = snapshots.copy()
    s["period"] = period_start(s["at"], period)
    s = s[~s["unit_type"].isin(NOT_BEDS)]
    s["kind"] = np.where(s["unit_type"].isin(ICU_TYPES), "icu", "bed")
    g = s.groupby(["hospital", "period", "kind"], sort=True)[["occupied", "staffed"]].sum()
    g["occupancy"] = g["occupied"] / g["staffed"].where(g["staffed"] > 0)
    wide = g["occupancy"].unstack("kind")
    out = pd.DataFrame(index=wide.index)
    out["bed_occupancy"] = wide.get("bed", np.nan)
    out["icu_occupancy"] = wide.get("icu", np.nan)
    return out.reset_index()


def inpatient_los(stays: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Inpatient length of stay (days) by unit type, per discharge period: count, median,
    mean."""
    s = stays.dropna(subset=["discharged_at"]).copy()
    s["period"] = period_start(s["discharged_at"], period)
    los = pd.to_datetime(s["discharged_at"], utc=True) - pd.to_datetime(s["admitted_at"], utc=True)
    s["los_days"] = los.dt.total_seconds() / 86400.0
    g = s.groupby(["hospital", "unit_type", "period"], sort=True)["los_days"]
    out = g.agg(stays="count", los_median_days="median", los_mean_days="mean")
    return out.reset_index()


def suppress_small(
    frame: pd.DataFrame, count_column: str, value_columns: Iterable[str], min_count: int
) -> pd.DataFrame:
    """Small-sample suppression as the sharing policy asks: where fewer than ``min_count``
    cases stand behind a row, its values (and the count itself) are withheld (NaN) and the
    row is flagged ``suppressed``, so a reader sees that something was withheld."""
    if min_count < 1:
        raise ValueError("min_count must be at least 1")
    out = frame.copy()
    small = out[count_column] < min_count
    for c in value_columns:
        out[c] = out[c].astype(float).where(~small)
    out[count_column] = out[count_column].astype(float).where(~small)
    out["suppressed"] = small
    return out


def acuity_adjusted_within_4h(visits: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Share within 4 hours adjusted for acuity mix by indirect standardisation: expected =
    Σ over acuity levels of the hospital's visits × the region's rate for that level;
    adjusted = observed / expected × the region's overall rate (clipped to 0-1). A hospital
    that sees sicker patients is compared with what the region achieves for that mix.
    Visits without an acuity are left out of both."""
    v = visits.dropna(subset=["acuity"]).copy()
    v["period"] = period_start(v["arrival"], period)
    los = pd.to_datetime(v["departure"], utc=True) - pd.to_datetime(v["arrival"], utc=True)
    v["within"] = (los <= FOUR_HOURS).astype(float)
    region_rate = v.groupby(["period", "acuity"])["within"].mean().rename("region_rate")
    overall = v.groupby("period")["within"].mean().rename("region_overall")
    v = v.join(region_rate, on=["period", "acuity"]).join(overall, on="period")
    g = v.groupby(["hospital", "period"], sort=True).agg(
        attendances=("within", "size"),
        observed=("within", "mean"),
        expected=("region_rate", "mean"),
        region_overall=("region_overall", "first"),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        adjusted = g["observed"] / g["expected"] * g["region_overall"]
    g["within_4h_adjusted"] = adjusted.clip(0.0, 1.0)
    return g.reset_index()


def peer_group(
    *,
    beds: int | None,
    trauma_level: int | None,
    stroke: str | None = None,
    stemi_pci: bool = False,
    size_bands: tuple[int, int] = (200, 500),
) -> str:
    """A hospital's peer group: size band (by staffed beds) and capability tier, so a large
    major trauma centre is ranked against its likes, not against a 60-bed community site."""
    small, large = size_bands
    if beds is None:
        size = "unknown-size"
    elif beds < small:
        size = "small"
    elif beds < large:
        size = "medium"
    else:
        size = "large"
    if trauma_level is not None and trauma_level <= 2:
        tier = "tertiary"
    elif stemi_pci or stroke in {"thrombectomy", "comprehensive"}:
        tier = "specialist"
    else:
        tier = "general"
    return f"{size}/{tier}"


def rank_within_peers(
    frame: pd.DataFrame,
    metric: str,
    *,
    higher_is_better: bool,
    group_column: str = "peer_group",
    by: Sequence[str] = ("period",),
) -> pd.DataFrame:
    """Rank (1 = best) and percentile of ``metric`` within each peer group and period, with
    the peer median and count. Suppressed or missing values get no rank and do not count."""
    out = frame.copy()
    keys = [*by, group_column]
    valid = out[metric].notna()
    if "suppressed" in out:
        valid &= ~out["suppressed"].astype(bool)
    ranked = out[valid]
    grp = ranked.groupby(keys, sort=False)[metric]
    out["rank"] = grp.rank(ascending=not higher_is_better, method="min")
    out["peers"] = grp.transform("count")
    out["peer_median"] = grp.transform("median")
    # Percentile: the share of peers this hospital does at least as well as (1 = best).
    out["percentile"] = 1.0 - (out["rank"] - 1) / out["peers"]
    for c in ("rank", "peers", "peer_median", "percentile"):
        out.loc[~valid, c] = np.nan
    return out


def to_csv(frame: pd.DataFrame) -> str:
    """The CSV export: ISO dates, empty cells for withheld values, a stable column order."""
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return str(out.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
