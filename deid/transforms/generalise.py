"""Generalisation of the quasi-identifying values a release may keep: dates, ages, ZIPs.

45 CFR 164.514(b)(2)(i): Safe Harbor removes (C) all elements of dates except the year for
dates directly related to an individual, and ages over 89 (aggregated into 90 or older), and
(B) all geographic subdivisions smaller than a state except the initial three ZIP digits of
areas with more than 20,000 people. Record-level releases to regional operations keep the day
(an expert-determination choice recorded in the policy); public releases keep the year.
"""

from __future__ import annotations

from datetime import date, datetime

from deid.contracts.vocabulary import GRANULARITY_ORDER, DateGranularity
from deid.policy import AGE_TOP_CODE
from deid.zip3 import zip3 as zip3_of

__all__ = [
    "AGE_TOP_CODE",
    "age_at",
    "coarser",
    "generalise_timestamp",
    "granularity_of",
    "zip3_of",
]

_ISO_CUT = {
    DateGranularity.MINUTE: 16,
    DateGranularity.HOUR: 13,
    DateGranularity.DAY: 10,
    DateGranularity.MONTH: 7,
    DateGranularity.YEAR: 4,
}


def generalise_timestamp(value: datetime, granularity: DateGranularity) -> str:
    """A UTC timestamp cut to `granularity`: '2026-11-23T19:10Z', '2026-11-23T19Z',
    '2026-11-23', '2026-W48', '2026-11' or '2026'."""
    if granularity is DateGranularity.WEEK:
        year, week, _ = value.isocalendar()
        return f"{year:04d}-W{week:02d}"
    # The contracts normalise timestamps to UTC, so isoformat starts YYYY-MM-DDTHH:MM.
    text = value.isoformat()[: _ISO_CUT[granularity]]
    return text + "Z" if granularity in (DateGranularity.MINUTE, DateGranularity.HOUR) else text


def granularity_of(text: str) -> DateGranularity | None:
    """The granularity a generalised timestamp string carries (None if it is none of them)."""
    n = len(text)
    if n == 4 and text.isdigit():
        return DateGranularity.YEAR
    if n == 7 and text[4] == "-":
        return DateGranularity.MONTH
    if n == 8 and text[4:6] == "-W":
        return DateGranularity.WEEK
    if n == 10 and text[4] == "-" and text[7] == "-":
        return DateGranularity.DAY
    if n == 14 and text[10] == "T" and text.endswith("Z"):
        return DateGranularity.HOUR
    if n == 17 and text[10] == "T" and text.endswith("Z"):
        return DateGranularity.MINUTE
    return None


def coarser(a: DateGranularity, b: DateGranularity) -> bool:
    """True when `a` keeps no more detail than `b`."""
    return GRANULARITY_ORDER.index(a) >= GRANULARITY_ORDER.index(b)


def age_at(birth: date, when: date) -> int:
    """Completed years of age on `when`."""
    return when.year - birth.year - ((when.month, when.day) < (birth.month, birth.day))
