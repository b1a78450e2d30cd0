"""Exact statistics of piecewise-linear RPO curves against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from drsim.results.metrics import rpo_stats, time_above


def test_one_ramp():
    # RPO rising from 0 to 100 s over 100 s: mean 50, p95 95, max 100, above 80 for 20 % of the time
    st = rpo_stats(np.array([0.0]), np.array([100.0]), target=80.0)
    assert (st.mean, st.max, st.duration) == (50.0, 100.0, 100.0)
    assert st.p95 == pytest.approx(95.0, rel=1e-12)
    assert st.over_target == pytest.approx(0.2, rel=1e-12)


def test_sawtooth_percentiles_are_exact():
    # 1,000 teeth from d = 20 s to T + d = 320 s: the q-th time percentile is d + q T for every q
    n, d, T = 1000, 20.0, 300.0
    r0, length = np.full(n, d), np.full(n, T)
    for q in (0.5, 0.9, 0.95, 0.99):
        assert rpo_stats(r0, length, 60.0, q=q).p95 == pytest.approx(d + q * T, rel=1e-12)


def test_percentile_matches_a_dense_sample_of_random_curves():
    rng = np.random.default_rng(7)
    r0 = rng.random(400) * 600.0
    length = rng.random(400) * 900.0
    st = rpo_stats(r0, length, 300.0)
    # sample every segment finely: the time-weighted 95th percentile of the samples
    k = 2000
    samples = (r0[:, None] + length[:, None] * (np.arange(k) + 0.5) / k).ravel()
    weights = np.repeat(length / k, k)
    order = np.argsort(samples)
    cdf = np.cumsum(weights[order]) / weights.sum()
    assert st.p95 == pytest.approx(samples[order][np.searchsorted(cdf, 0.95)], rel=1e-3)
    # and G(p95) is (1 - 0.95) of the time, to round-off
    assert float(time_above(r0, length, st.p95)) == pytest.approx(0.05 * length.sum(), rel=1e-9)
