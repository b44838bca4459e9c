"""Arrival forecasts back-tested against same-hour-last-week and the 8-week mean."""

from __future__ import annotations

import pandas as pd
import pytest

from simulation import backtest, synthetic_arrivals
from simulation.backtest import read_history


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return synthetic_arrivals(weeks=80, seed=7)


def test_synthetic_history_is_seeded_hourly_and_realistic(history: pd.DataFrame) -> None:
    again = synthetic_arrivals(weeks=80, seed=7)
    pd.testing.assert_frame_equal(history, again)
    assert len(history) == 80 * 168
    assert history["count"].sum() / (80 * 7) == pytest.approx(281, rel=0.08)
    hourly = history.groupby(history["timestamp"].dt.hour)["count"].mean()
    assert hourly[11] > 3 * hourly[4]


@pytest.mark.parametrize("horizon", [1, 6, 24])
def test_forecast_beats_both_baselines_on_mae(history: pd.DataFrame, horizon: int) -> None:
    res = backtest(history, horizon)
    mae = res.table.set_index("method")["mae"]
    assert mae["seasonal"] < mae["last_week"]
    assert mae["seasonal"] < mae["mean_8_weeks"]
    assert res.beats_baselines


def test_forecast_80_percent_interval_covers_about_80_percent(history: pd.DataFrame) -> None:
    res = backtest(history, 6)
    coverage = res.table.set_index("method")["coverage80"]
    assert 0.75 <= coverage["seasonal"] <= 0.9
    assert len(res.forecasts) == res.table["n"].iloc[0]


def test_backtest_scores_only_the_last_fifth(history: pd.DataFrame) -> None:
    res = backtest(history, 1)
    first = res.forecasts["timestamp"].min()
    assert first >= history["timestamp"].iloc[int(len(history) * 0.8)]


def test_history_columns_are_detected_and_gaps_mean_zero_arrivals() -> None:
    df = pd.DataFrame(
        {
            "Time": ["2024-01-01 00:10", "2024-01-01 00:40", "2024-01-01 03:05"],
            "Arrivals": [2, 1, 4],
        }
    )
    s = read_history(df)
    assert s.tolist() == [3.0, 0.0, 0.0, 4.0]


def test_too_short_a_history_is_refused() -> None:
    with pytest.raises(ValueError, match="history"):
        backtest(synthetic_arrivals(weeks=6, seed=1), 1)
