"""Generalised timestamps of the regional contracts, turned into the instant they start at.

The DE-ID policy coarsens timestamps; the text's precision says how much: "2026-11-23T19:10Z"
(minute), "2026-11-23T19Z" (hour), "2026-11-23" (day), "2026-W48" (ISO week), "2026-11"
(month), "2026" (year). The hub stores the text as released and the start of the interval as
a timestamp for ordering, partitioning and time-range queries.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})Z$"), "minute"),
    (re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2})Z$"), "hour"),
    (re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"), "day"),
    (re.compile(r"^(\d{4})-W(\d{2})$"), "week"),
    (re.compile(r"^(\d{4})-(\d{2})$"), "month"),
    (re.compile(r"^(\d{4})$"), "year"),
)

GRANULARITY_LENGTH: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=31),
    "year": timedelta(days=366),
}


class GeneralisedTimeError(ValueError):
    pass


@functools.lru_cache(maxsize=8192)
def parse_generalised(text: str) -> tuple[datetime, str]:
    """(start of the interval in UTC, granularity name); raises GeneralisedTimeError."""
    # Full ISO timestamps with seconds are accepted too: a policy may release them unchanged.
    if len(text) > 17 and "T" in text and text[:4].isdigit():
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise GeneralisedTimeError("not a generalised timestamp") from None
        if parsed.tzinfo is None:
            raise GeneralisedTimeError("timestamp without a UTC offset")
        return parsed.astimezone(UTC), "second"
    for pattern, granularity in _PATTERNS:
        m = pattern.match(text)
        if m is None:
            continue
        parts = [int(g) for g in m.groups()]
        try:
            if granularity == "week":
                start = date.fromisocalendar(parts[0], parts[1], 1)
                return datetime(start.year, start.month, start.day, tzinfo=UTC), granularity
            if granularity == "month":
                return datetime(parts[0], parts[1], 1, tzinfo=UTC), granularity
            if granularity == "year":
                return datetime(parts[0], 1, 1, tzinfo=UTC), granularity
            hour, minute = [*parts, 0, 0][3:5]
            return datetime(parts[0], parts[1], parts[2], hour, minute, tzinfo=UTC), granularity
        except ValueError:
            raise GeneralisedTimeError("not a valid date") from None
    raise GeneralisedTimeError("not a generalised timestamp")
