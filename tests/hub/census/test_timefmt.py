from datetime import UTC, datetime

import pytest

from hub.census.timefmt import GeneralisedTimeError, parse_generalised


@pytest.mark.parametrize(
    ("text", "start", "granularity"),
    [
        ("2026-11-23T19:10Z", datetime(2026, 11, 23, 19, 10, tzinfo=UTC), "minute"),
        ("2026-11-23T19Z", datetime(2026, 11, 23, 19, tzinfo=UTC), "hour"),
        ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC), "day"),
        ("2026-W48", datetime(2026, 11, 23, tzinfo=UTC), "week"),
        ("2026-11", datetime(2026, 11, 1, tzinfo=UTC), "month"),
        ("2026", datetime(2026, 1, 1, tzinfo=UTC), "year"),
        ("2026-11-23T19:10:05+00:00", datetime(2026, 11, 23, 19, 10, 5, tzinfo=UTC), "second"),
    ],
)
def test_generalised_timestamps_start_their_interval(
    text: str, start: datetime, granularity: str
) -> None:
    assert parse_generalised(text) == (start, granularity)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2026-13", "2026-02-30", "2026-W60", "2026-11-23T19:10"]
)
def test_malformed_timestamps_are_refused(text: str) -> None:
    with pytest.raises(GeneralisedTimeError):
        parse_generalised(text)
