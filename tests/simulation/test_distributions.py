"""Duration distributions: moments from mean and sd, conditional remaining stays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation import Dist
from simulation.distributions import Chooser, Sampler


@pytest.mark.parametrize("kind", ["lognormal", "gamma"])
def test_samples_have_the_requested_mean_and_sd(kind: str) -> None:
    d = Dist(kind, 5.0, 3.0)  # type: ignore[arg-type]
    x = d.sample(np.random.default_rng(1), 400_000)
    assert x.mean() == pytest.approx(5.0, rel=0.01)
    assert x.std() == pytest.approx(3.0, rel=0.02)
    frozen = d.frozen()
    assert frozen is not None
    assert frozen.mean() == pytest.approx(5.0)
    assert frozen.std() == pytest.approx(3.0)


def test_exponential_remaining_stay_is_memoryless() -> None:
    d = Dist.exponential(4.0)
    rem = d.sample_remaining(np.random.default_rng(1), np.full(200_000, 30.0))
    assert rem.mean() == pytest.approx(4.0, rel=0.02)


def test_lognormal_remaining_stay_matches_the_conditional_mean() -> None:
    d = Dist.lognormal(5.0, 6.0)
    frozen = d.frozen()
    assert frozen is not None
    e = 10.0
    expected = frozen.expect(lambda s: s - e, lb=e, conditional=True)
    rem = d.sample_remaining(np.random.default_rng(2), np.full(200_000, e))
    assert rem.mean() == pytest.approx(expected, rel=0.03)
    # Heavy tail: someone already in for 10 h stays on longer than a fresh admission.
    assert rem.mean() > d.mean


def test_remaining_stay_far_in_the_tail_is_finite_and_positive() -> None:
    d = Dist.gamma(2.0, 0.5)
    rem = d.sample_remaining(np.random.default_rng(3), np.array([50.0, 500.0]))
    assert np.isfinite(rem).all()
    assert (rem > 0).all()


def test_empirical_remaining_stay_uses_only_longer_stays() -> None:
    d = Dist.empirical([1, 2, 3, 10, 20])
    rem = d.sample_remaining(np.random.default_rng(4), np.full(1000, 5.0))
    assert set(np.round(rem, 6).tolist()) <= {5.0, 15.0}


@settings(max_examples=30, deadline=None)
@given(
    mean=st.floats(0.1, 100.0),
    cv=st.floats(0.1, 3.0),
    elapsed=st.floats(0.0, 200.0),
)
def test_remaining_stays_are_never_negative(mean: float, cv: float, elapsed: float) -> None:
    for d in (Dist.lognormal(mean, mean * cv), Dist.gamma(mean, mean * cv)):
        rem = d.sample_remaining(np.random.default_rng(0), np.full(50, elapsed))
        assert (rem >= 0).all()
        assert np.isfinite(rem).all()


def test_sampler_reproduces_the_numpy_stream_block_by_block() -> None:
    d = Dist.lognormal(2.0, 1.0)
    s = Sampler.of(d, np.random.default_rng(5))
    got = [s() for _ in range(1000)]
    rng = np.random.default_rng(5)
    want = np.concatenate([d.sample(rng, 512), d.sample(rng, 512)])[:1000]
    assert np.allclose(got, want)


def test_chooser_frequencies_match_probabilities() -> None:
    c = Chooser([0.2, 0.5, 0.3], np.random.default_rng(6))
    counts = np.bincount([c() for _ in range(60_000)], minlength=3) / 60_000
    assert counts == pytest.approx([0.2, 0.5, 0.3], abs=0.01)


def test_invalid_distributions_are_rejected() -> None:
    with pytest.raises(ValueError, match="sd"):
        Dist("lognormal", 2.0, 0.0)
    with pytest.raises(ValueError, match="kind"):
        Dist("weibull", 2.0, 1.0)  # type: ignore[arg-type]
