"""Benchmark KPIs: small frames worked by hand, and the real NHS England A&E figures.

The NHS file (``/work/shared/data/nhs_ae_attendances_2016_2019.csv``, Open Government
Licence v3.0) holds monthly attendances and 4-hour breaches per provider and A&E type,
April 2016 to March 2019. 4-hour performance = 1 − breaches / attendances.

Plausible ranges, stated before looking at what the code returns: NHS England's published
national type-1 (major A&E) performance in 2016/17-2018/19 ran between about 76% (winter
months) and 90%, never near the 95% standard; all types together between about 84% and 92%.
We accept national type-1 monthly figures in [0.70, 0.92] and all-type figures in
[0.80, 0.95], and expect winter (December-February) below summer (June-August) every year.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hub.benchmarks import kpis

NHS_CSV = Path("/work/shared/data/nhs_ae_attendances_2016_2019.csv")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture(scope="module")
def nhs() -> pd.DataFrame:
    if not NHS_CSV.exists():
        pytest.skip(f"{NHS_CSV} is not on this machine")
    df = pd.read_csv(NHS_CSV, parse_dates=["period"], dtype={"type": str})
    return df.rename(columns={"org_code": "hospital"})


def test_nhs_four_hour_performance_matches_an_independent_computation(nhs: pd.DataFrame) -> None:
    ours = kpis.four_hour_performance(nhs, by=("hospital", "period"))
    # Independent: plain Python over the rows, summing per provider and month first.
    totals: dict[tuple[str, pd.Timestamp], list[float]] = {}
    columns = ("hospital", "period", "attendances", "breaches")
    for hospital, period, attendances, breaches in zip(
        *(nhs[c].tolist() for c in columns), strict=True
    ):
        t = totals.setdefault((hospital, period), [0.0, 0.0])
        t[0] += attendances
        t[1] += breaches
    expected = {k: 1 - b / a for k, (a, b) in totals.items() if a > 0}
    got = dict(
        zip(
            zip(ours["hospital"].tolist(), ours["period"].tolist(), strict=True),
            ours["within_4h_share"].tolist(),
            strict=True,
        )
    )
    assert got.keys() == expected.keys()
    assert len(got) == nhs.groupby(["hospital", "period"]).ngroups
    worst = max(abs(got[k] - expected[k]) for k in expected)
    assert worst < 1e-12


def test_nhs_per_type_pivot_agrees_with_the_kpi(nhs: pd.DataFrame) -> None:
    ours = kpis.four_hour_performance(nhs, by=("hospital", "period", "type"))
    pivot = nhs.pivot_table(
        index=["hospital", "period", "type"], values=["attendances", "breaches"], aggfunc="sum"
    )
    independent = (1 - pivot["breaches"] / pivot["attendances"]).rename("independent")
    joined = ours.set_index(["hospital", "period", "type"]).join(independent)
    np.testing.assert_allclose(joined["within_4h_share"], joined["independent"], rtol=0, atol=1e-12)


def test_nhs_values_lie_in_0_1_and_national_figures_are_plausible(nhs: pd.DataFrame) -> None:
    per_provider = kpis.four_hour_performance(nhs, by=("hospital", "period", "type"))
    assert per_provider["within_4h_share"].between(0, 1).all()

    national_t1 = kpis.four_hour_performance(
        nhs[nhs["type"] == "1"].assign(region="England"), by=("region", "period")
    ).set_index("period")["within_4h_share"]
    assert len(national_t1) == 36  # April 2016 - March 2019
    assert national_t1.between(0.70, 0.92).all(), national_t1.describe()
    national_all = kpis.four_hour_performance(
        nhs.assign(region="England"), by=("region", "period")
    ).set_index("period")["within_4h_share"]
    assert national_all.between(0.80, 0.95).all()
    # All types together do better than major A&Es alone (minor units rarely breach).
    assert (national_all > national_t1).all()

    when = pd.DatetimeIndex(national_t1.index)
    month, years = when.month, when.year
    for year in (2016, 2017, 2018):
        summer = national_t1[(years == year) & month.isin([6, 7, 8])].mean()
        winter_idx = ((years == year) & (month == 12)) | ((years == year + 1) & month.isin([1, 2]))
        assert national_t1[winter_idx].mean() < summer, year


def test_four_hour_performance_refuses_impossible_counts() -> None:
    bad = pd.DataFrame(
        {"hospital": ["A"], "period": [ts("2026-01-01")], "attendances": [5], "breaches": [6]}
    )
    with pytest.raises(ValueError, match="breaches"):
        kpis.four_hour_performance(bad)


# --- ED KPIs from visits, worked by hand ------------------------------------------------------

VISITS = pd.DataFrame(
    {
        "hospital": ["A"] * 5 + ["B"] * 2,
        "arrival": [ts("2026-11-23 08:00")] * 5 + [ts("2026-11-24 09:00")] * 2,
        "departure": [
            ts("2026-11-23 09:00"),  # 60 min
            ts("2026-11-23 11:00"),  # 180
            ts("2026-11-23 12:00"),  # 240: exactly 4 h is within
            ts("2026-11-23 13:00"),  # 300: breach
            ts("2026-11-23 21:00"),  # 780: breach, over 12 h
            ts("2026-11-24 10:00"),
            ts("2026-11-24 11:00"),
        ],
        "admitted": [False, False, True, True, True, False, True],
        "decision_to_admit": [
            pd.NaT,
            pd.NaT,
            ts("2026-11-23 11:00"),  # boarded 60 min
            ts("2026-11-23 11:00"),  # 120
            ts("2026-11-23 12:00"),  # 540
            pd.NaT,
            ts("2026-11-24 10:30"),
        ],
        "offload_minutes": [12.0, np.nan, 35.0, 20.0, np.nan, np.nan, 10.0],
        "acuity": [3, 3, 2, 2, 1, 3, 2],
    }
)


def test_ed_kpis_by_hand() -> None:
    out = kpis.ed_kpis(VISITS, "day").set_index("hospital")
    a = out.loc["A"]
    assert a["period"] == pd.Timestamp("2026-11-23")
    assert a["attendances"] == 5
    assert a["los_median_minutes"] == 240
    # p90 of [60, 180, 240, 300, 780] (linear): 300 + 0.6·480 = 588
    assert a["los_p90_minutes"] == pytest.approx(588)
    assert a["breaches"] == 2
    assert a["within_4h_share"] == pytest.approx(3 / 5)
    assert a["waits_over_12h"] == 1
    assert a["conversion_rate"] == pytest.approx(3 / 5)
    assert a["boarding_median_minutes"] == 120
    # offload p90 of [12, 35, 20] = 20 + 0.8·15 = 32
    assert a["offload_p90_minutes"] == pytest.approx(32)
    assert a["ambulance_handovers"] == 3


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    s = pd.Series([ts("2026-11-23 08:00"), ts("2026-11-29 23:00"), ts("2026-11-30 00:10")])
    assert kpis.period_start(s, "week").tolist() == [
        pd.Timestamp("2026-11-23"),
        pd.Timestamp("2026-11-23"),
        pd.Timestamp("2026-11-30"),
    ]
    assert kpis.period_start(s, "month").tolist() == [pd.Timestamp("2026-11-01")] * 3


def test_small_samples_are_withheld_and_flagged() -> None:
    out = kpis.suppress_small(
        kpis.ed_kpis(VISITS, "day"), "attendances", ["within_4h_share", "los_p90_minutes"], 5
    ).set_index("hospital")
    assert out.loc["A", "within_4h_share"] == pytest.approx(0.6)
    assert bool(out.loc["B", "suppressed"]) is True
    assert pd.isna(out.loc["B", "within_4h_share"])
    assert pd.isna(out.loc["B", "attendances"])


def test_acuity_adjustment_compares_with_the_region_for_the_same_mix() -> None:
    # Both days fall in one month, so the region is both hospitals together.
    out = kpis.acuity_adjusted_within_4h(VISITS, "month").set_index("hospital")
    # Within 4 h per visit: A = [1, 1, 1, 0, 0] with acuity [3, 3, 2, 2, 1]; B = [1, 1], [3, 2]
    # Region rate: acuity 1: 0/1 = 0; acuity 2: (1 + 0 + 1)/3 = 2/3; acuity 3: 3/3 = 1.
    # Region overall: 5/7. A expected = (1 + 1 + 2/3 + 2/3 + 0)/5 = 10/15 = 2/3, observed 3/5.
    assert out.loc["A", "expected"] == pytest.approx(2 / 3)
    assert out.loc["A", "within_4h_adjusted"] == pytest.approx((3 / 5) / (2 / 3) * (5 / 7))
    # B: expected (1 + 2/3)/2 = 5/6, observed 1 → 1 / (5/6) · 5/7 = 6/7
    assert out.loc["B", "within_4h_adjusted"] == pytest.approx(6 / 7)


def test_or_occupancy_and_inpatient_length_of_stay() -> None:
    sessions = pd.DataFrame(
        {
            "hospital": ["A", "A"],
            "date": [ts("2026-11-23"), ts("2026-11-24")],
            "staffed_minutes": [480, 480],
            "in_room_minutes": [420, 300],
            "planned_electives": [6, 5],
            "cancelled_electives": [0, 2],
        }
    )
    o = kpis.or_kpis(sessions, "week").iloc[0]
    assert o["or_utilisation"] == pytest.approx(720 / 960)
    assert o["cancelled_electives"] == 2
    assert o["cancelled_share"] == pytest.approx(2 / 11)

    snaps = pd.DataFrame(
        {
            "hospital": ["A"] * 4,
            "at": [ts("2026-11-23 00:00"), ts("2026-11-23 12:00")] * 2,
            "unit_type": ["medical_surgical", "medical_surgical", "adult_icu", "adult_icu"],
            "occupied": [90, 96, 9, 10],
            "staffed": [100, 100, 10, 10],
        }
    )
    occ = kpis.occupancy_kpis(snaps, "day").iloc[0]
    assert occ["bed_occupancy"] == pytest.approx(0.93)
    assert occ["icu_occupancy"] == pytest.approx(0.95)

    stays = pd.DataFrame(
        {
            "hospital": ["A", "A", "A"],
            "unit_type": ["adult_icu", "adult_icu", "medical_surgical"],
            "admitted_at": [ts("2026-11-01"), ts("2026-11-10"), ts("2026-11-20")],
            "discharged_at": [ts("2026-11-05"), ts("2026-11-12"), pd.NaT],  # one still in
        }
    )
    los = kpis.inpatient_los(stays, "month").set_index("unit_type")
    assert los.loc["adult_icu", "stays"] == 2
    assert los.loc["adult_icu", "los_median_days"] == pytest.approx(3.0)
    assert "medical_surgical" not in los.index


def test_peer_groups_and_ranks_leave_suppressed_rows_out() -> None:
    assert kpis.peer_group(beds=650, trauma_level=1) == "large/tertiary"
    assert kpis.peer_group(beds=300, trauma_level=None, stemi_pci=True) == "medium/specialist"
    assert kpis.peer_group(beds=80, trauma_level=4) == "small/general"
    frame = pd.DataFrame(
        {
            "hospital": ["A", "B", "C", "D"],
            "period": [pd.Timestamp("2026-11-01")] * 4,
            "peer_group": ["g"] * 4,
            "within_4h_share": [0.80, 0.90, 0.70, 0.99],
            "suppressed": [False, False, False, True],
        }
    )
    r = kpis.rank_within_peers(frame, "within_4h_share", higher_is_better=True).set_index(
        "hospital"
    )
    assert r.loc[["B", "A", "C"], "rank"].tolist() == [1, 2, 3]
    assert r.loc["B", "percentile"] == pytest.approx(1.0)
    assert r.loc["C", "percentile"] == pytest.approx(1 / 3)
    assert r.loc["A", "peer_median"] == pytest.approx(0.80)
    assert pd.isna(r.loc["D", "rank"])


def test_csv_export_writes_iso_dates_and_empty_withheld_cells() -> None:
    out = kpis.suppress_small(kpis.ed_kpis(VISITS, "day"), "attendances", ["within_4h_share"], 5)
    text = kpis.to_csv(out[["hospital", "period", "attendances", "within_4h_share", "suppressed"]])
    assert text.splitlines() == [
        "hospital,period,attendances,within_4h_share,suppressed",
        "A,2026-11-23,5,0.6,False",
        "B,2026-11-24,,,True",
    ]
