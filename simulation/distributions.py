"""Duration distributions given by mean and standard deviation, and buffered samplers.

Every duration in the engine is in hours. A :class:`Dist` is data (it sits in frozen
parameter dataclasses and TOML files); a :class:`Sampler` turns one into a fast stream
of Python floats drawn in blocks from its own numpy generator, because one numpy call
per draw costs more than a whole SimPy event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]
DistKind = Literal["lognormal", "gamma", "exponential", "empirical", "fixed"]
KINDS: tuple[DistKind, ...] = ("lognormal", "gamma", "exponential", "empirical", "fixed")

# Block size for buffered draws: large enough that numpy's per-call overhead vanishes,
# small enough that a short forecast run does not draw far more than it uses.
BLOCK = 512


@dataclass(frozen=True)
class Dist:
    """A positive duration distribution in hours.

    ``lognormal``, ``gamma`` and ``exponential`` are parameterised by ``mean`` and
    ``sd`` (exponential ignores ``sd``); ``empirical`` resamples ``values``; ``fixed``
    always returns ``mean``.
    """

    kind: DistKind
    mean: float
    sd: float = 0.0
    values: tuple[float, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown distribution kind {self.kind!r}; use one of {KINDS}")
        if self.kind == "empirical":
            if not self.values:
                raise ValueError("an empirical distribution needs values")
            if min(self.values) < 0:
                raise ValueError("durations cannot be negative")
        elif not (self.mean > 0 and math.isfinite(self.mean)):
            raise ValueError(f"mean must be positive, got {self.mean}")
        if self.kind in ("lognormal", "gamma") and not self.sd > 0:
            raise ValueError(f"{self.kind} needs a positive sd, got {self.sd}")

    @staticmethod
    def exponential(mean: float) -> Dist:
        return Dist("exponential", mean, mean)

    @staticmethod
    def lognormal(mean: float, sd: float) -> Dist:
        return Dist("lognormal", mean, sd)

    @staticmethod
    def gamma(mean: float, sd: float) -> Dist:
        return Dist("gamma", mean, sd)

    @staticmethod
    def fixed(value: float) -> Dist:
        return Dist("fixed", value, 0.0)

    @staticmethod
    def empirical(values: Sequence[float]) -> Dist:
        arr = np.asarray(values, dtype=float)
        return Dist("empirical", float(arr.mean()), float(arr.std()), tuple(float(v) for v in arr))

    def scaled(self, factor: float) -> Dist:
        """The same shape with every duration multiplied by ``factor`` (unit changes)."""
        return Dist(
            self.kind,
            self.mean * factor,
            self.sd * factor,
            tuple(v * factor for v in self.values),
        )

    @property
    def true_mean(self) -> float:
        return float(np.mean(self.values)) if self.kind == "empirical" else self.mean

    def frozen(self) -> stats.rv_continuous | None:
        """The scipy distribution, for cdf/ppf/logpdf; None for empirical and fixed."""
        if self.kind == "lognormal":
            sigma2 = math.log1p((self.sd / self.mean) ** 2)
            mu = math.log(self.mean) - sigma2 / 2
            return stats.lognorm(s=math.sqrt(sigma2), scale=math.exp(mu))
        if self.kind == "gamma":
            shape = (self.mean / self.sd) ** 2
            return stats.gamma(a=shape, scale=self.mean / shape)
        if self.kind == "exponential":
            return stats.expon(scale=self.mean)
        return None

    def sample(self, rng: np.random.Generator, n: int) -> FloatArray:
        if self.kind == "lognormal":
            sigma2 = math.log1p((self.sd / self.mean) ** 2)
            mu = math.log(self.mean) - sigma2 / 2
            return rng.lognormal(mu, math.sqrt(sigma2), n)
        if self.kind == "gamma":
            shape = (self.mean / self.sd) ** 2
            return rng.gamma(shape, self.mean / shape, n)
        if self.kind == "exponential":
            return rng.exponential(self.mean, n)
        if self.kind == "empirical":
            return cast(FloatArray, rng.choice(np.asarray(self.values), n))
        return np.full(n, self.mean)

    def sample_remaining(self, rng: np.random.Generator, elapsed: FloatArray) -> FloatArray:
        """Remaining durations given that ``elapsed`` hours have already passed.

        Draws from the conditional distribution of S - e given S > e (inverse survival
        function, which stays accurate far in the tail where 1 - cdf underflows).
        """
        elapsed = np.asarray(elapsed, dtype=float)
        n = elapsed.size
        if self.kind == "fixed":
            return np.maximum(self.mean - elapsed, 0.0)
        if self.kind == "exponential":
            return rng.exponential(self.mean, n)
        if self.kind == "empirical":
            values = np.sort(np.asarray(self.values))
            out = np.empty(n)
            # A patient who has stayed longer than every recorded stay: use the mean
            # residual of the top decile so the forecast neither freezes nor empties.
            top = values[values >= np.quantile(values, 0.9)]
            tail_mean = max(float(np.mean(top - top[0])), 1.0)
            for i, e in enumerate(elapsed):
                longer = values[values > e]
                if longer.size:
                    out[i] = float(longer[rng.integers(longer.size)]) - e
                else:
                    out[i] = rng.exponential(tail_mean)
            return out
        dist = self.frozen()
        if dist is None:  # unreachable: empirical and fixed returned above
            raise RuntimeError(self.kind)
        survival = dist.sf(elapsed)
        u = rng.random(n)
        total = dist.isf(u * survival)
        # Where survival underflows to zero isf returns inf or nan: fall back to a short
        # exponential tail rather than a patient who never leaves.
        bad = ~np.isfinite(total) | (total < elapsed)
        total = np.where(bad, elapsed + rng.exponential(max(self.sd, 1.0), n), total)
        return cast(FloatArray, total - elapsed)


class Sampler:
    """An endless stream of floats drawn ``BLOCK`` at a time from ``fill``."""

    __slots__ = ("_buf", "_fill", "_i", "_n")

    def __init__(self, fill: Callable[[int], FloatArray]) -> None:
        self._fill = fill
        self._buf: list[float] = []
        self._i = 0
        self._n = 0

    def __call__(self) -> float:
        i = self._i
        if i == self._n:
            self._buf = self._fill(BLOCK).tolist()
            self._n = len(self._buf)
            i = 0
        self._i = i + 1
        return self._buf[i]

    @staticmethod
    def of(dist: Dist, rng: np.random.Generator) -> Sampler:
        if dist.kind == "fixed":
            value = dist.mean
            return Sampler(lambda n: np.full(n, value))
        return Sampler(lambda n: dist.sample(rng, n))


class Chooser:
    """An endless stream of indices drawn with fixed probabilities, ``BLOCK`` at a time."""

    __slots__ = ("_buf", "_i", "_n", "_p", "_rng")

    def __init__(self, probabilities: Sequence[float], rng: np.random.Generator) -> None:
        p = np.asarray(probabilities, dtype=float)
        if p.size == 0 or (p < 0).any() or p.sum() <= 0:
            raise ValueError(f"invalid probabilities {list(probabilities)}")
        self._p = p / p.sum()
        self._rng = rng
        self._buf: list[int] = []
        self._i = 0
        self._n = 0

    def __call__(self) -> int:
        i = self._i
        if i == self._n:
            self._buf = self._rng.choice(self._p.size, BLOCK, p=self._p).tolist()
            self._n = len(self._buf)
            i = 0
        self._i = i + 1
        return self._buf[i]
