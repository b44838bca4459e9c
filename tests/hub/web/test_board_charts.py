"""Chart.js configurations: every series as long as the axis, the forecast band growing out of
the last observed value, nothing a JSON script block cannot carry, and words for screen
readers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hub.web.board_charts import free_beds_chart, lines_chart, spark_summary
from hub.web.board_data import ForecastBand

END = datetime(2026, 11, 23, 14, 37, tzinfo=UTC)
TIMES = [END - timedelta(hours=3 - k) for k in range(4)]
FORECAST = [ForecastBand(1, 2, 4, 6), ForecastBand(2, 1, 3, 7), ForecastBand(4, -2, 2, 8)]


def test_the_forecast_starts_at_the_last_observed_value_on_one_axis() -> None:
    config = free_beds_chart(TIMES, [5, 6, None, 4], FORECAST, "America/New_York")
    labels = config["data"]["labels"]
    assert labels == ["06:37", "07:37", "08:37", "09:37", "+1 h", "+2 h", "+3 h", "+4 h"]
    observed, p10, p90, p50 = config["data"]["datasets"]
    for dataset in (observed, p10, p90, p50):
        assert len(dataset["data"]) == len(labels)
    assert observed["data"] == [5, 6, None, 4, None, None, None, None]
    assert observed["spanGaps"] is False  # a missing hour is a gap, not a line across it
    assert p50["data"] == [None, None, None, 4, 4, 3, None, 2]  # +3 h: no forecast, spanned
    assert p90["fill"] == "-1"  # the band between the 10th and the 90th percentile
    json.dumps(config, allow_nan=False)  # plain data only: it travels in json_script


def test_a_sparkline_has_no_axes_legend_or_hover() -> None:
    config = free_beds_chart(TIMES, [5, 6, 7, 4], [], "UTC")
    assert len(config["data"]["datasets"]) == 1
    options = config["options"]
    assert options["animation"] is False
    assert options["plugins"]["legend"]["display"] is False
    assert options["scales"]["x"]["display"] is False
    assert options["events"] == []
    assert free_beds_chart(TIMES, [1, 2, 3, 4], FORECAST, "UTC", sparkline=False)["options"][
        "plugins"
    ]["legend"]["display"]


def test_more_than_a_day_is_labelled_with_the_weekday() -> None:
    days = [END - timedelta(hours=47 - k) for k in range(48)]
    config = lines_chart(days, [("Med-surg", [90.0] * 48)], "UTC", y_title="Occupancy (%)")
    assert config["data"]["labels"][-1] == "Mon 14:37"
    day = lines_chart(TIMES, [("ICU", [1.0, 2.0, 3.0, 4.0])], "UTC", y_title="Patients")
    assert day["data"]["labels"][-1] == "14:37"


def test_the_sparkline_in_words() -> None:
    text = spark_summary([5, None, 3, 8], FORECAST, 24)
    assert text == (
        "Free beds over the last 24 hours: from 5 to 8, lowest 3; "
        "forecast in 4 h: 2 (80% interval -2 to 8)."
    )
    assert spark_summary([None], [], 24) == "No free-bed figures in the last 24 hours."
