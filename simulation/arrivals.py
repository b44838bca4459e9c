"""Hour-of-week arrival profiles and non-homogeneous Poisson arrival times.

Engine time is in hours; ``t % 168`` is the hour of the week with 0 = Monday 00:00.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
HOURS_PER_WEEK = 168


@dataclass(frozen=True)
class ArrivalProfile:
    """Mean arrivals per hour for each of the 168 hours of the week (Monday 00:00 first).

    The rate is constant within an hour, which makes the process exactly a piecewise
    homogeneous Poisson process and lets a whole run's arrivals be drawn in one go.
    """

    rates: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.rates) != HOURS_PER_WEEK:
            raise ValueError(f"an arrival profile has 168 hourly rates, got {len(self.rates)}")
        if min(self.rates) < 0:
            raise ValueError("arrival rates cannot be negative")

    @staticmethod
    def constant(per_hour: float) -> ArrivalProfile:
        return ArrivalProfile((float(per_hour),) * HOURS_PER_WEEK)

    @staticmethod
    def from_shape(
        daily_mean: float,
        hour_of_day: Sequence[float] | None = None,
        day_of_week: Sequence[float] | None = None,
    ) -> ArrivalProfile:
        """Scale a multiplicative hour-of-day × day-of-week shape to ``daily_mean``."""
        hod = np.ones(24) if hour_of_day is None else np.asarray(hour_of_day, dtype=float)
        dow = np.ones(7) if day_of_week is None else np.asarray(day_of_week, dtype=float)
        if hod.size != 24 or dow.size != 7:
            raise ValueError("hour_of_day needs 24 weights and day_of_week 7")
        shape = np.outer(dow / dow.mean(), hod / hod.sum()).ravel()
        return ArrivalProfile(tuple(float(x) for x in shape * daily_mean))

    @property
    def daily_mean(self) -> float:
        return float(sum(self.rates)) / 7

    def scaled(self, factor: float) -> ArrivalProfile:
        return ArrivalProfile(tuple(r * factor for r in self.rates))

    def rate_at(self, t: FloatArray) -> FloatArray:
        rates: FloatArray = np.asarray(self.rates, dtype=float)
        idx = np.floor(np.asarray(t, dtype=float)).astype(np.int64) % HOURS_PER_WEEK
        return cast(FloatArray, rates[idx])

    def expected(self, start: float, end: float) -> float:
        """Expected number of arrivals in [start, end)."""
        rates = np.asarray(self.rates)
        first, last = int(np.floor(start)), int(np.ceil(end))
        hours = np.arange(first, last)
        lo = np.maximum(hours, start)
        hi = np.minimum(hours + 1, end)
        return float(np.sum(rates[hours % HOURS_PER_WEEK] * np.clip(hi - lo, 0, 1)))

    def times(self, rng: np.random.Generator, start: float, end: float) -> FloatArray:
        """Sorted arrival times in [start, end)."""
        rates = np.asarray(self.rates)
        first, last = int(np.floor(start)), int(np.ceil(end))
        hours = np.arange(first, last, dtype=np.float64)
        lo = np.maximum(hours, start)
        hi = np.minimum(hours + 1, end)
        width = np.clip(hi - lo, 0.0, 1.0)
        counts = rng.poisson(rates[np.arange(first, last) % HOURS_PER_WEEK] * width)
        base = np.repeat(lo, counts)
        spread = np.repeat(width, counts)
        t: FloatArray = base + rng.random(base.size) * spread
        t.sort()
        return t


def stream(seed: np.random.SeedSequence, name: str) -> np.random.Generator:
    """An independent generator for one named purpose within a replication.

    The child key is a stable hash of the name rather than a spawn counter, so adding a
    unit or an operating room in a what-if leaves every other stream untouched: base and
    variant then share their random numbers (common random numbers) and their paired
    differences have much tighter confidence intervals.
    """
    key = zlib.crc32(name.encode())
    child = np.random.SeedSequence(
        entropy=seed.entropy, spawn_key=(*seed.spawn_key, key), pool_size=seed.pool_size
    )
    return np.random.Generator(np.random.PCG64(child))


def replication_seed(seed: int, replication: int) -> np.random.SeedSequence:
    """The same child that ``SeedSequence(seed).spawn(n)[replication]`` returns.

    Built directly so the hub can run one replication per Celery task without spawning
    all the others first.
    """
    return np.random.SeedSequence(seed, spawn_key=(replication,))
