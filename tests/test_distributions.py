"""Random quantities: parsing, closed-form quantiles and means, and sampling from the given Generator only."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

import numpy as np
import pytest

from drsim.scenario.distributions import (
    DIST_NAMES,
    Distribution,
    Empirical,
    Exponential,
    Fixed,
    LogNormal,
    Triangular,
    Uniform,
    Weibull,
    parse_distribution,
)
from drsim.scenario.units import parse_duration

N = 20_000
# Relative tolerance for a sample mean of N draws: the largest coefficient of variation below is
# 1 (exponential), so the standard error is at most 1/sqrt(20000) = 0.71 %; 3 % is over four of them.
MEAN_TOL = 0.03


def parse(raw):
    return parse_distribution(raw, parse_duration)


def draws(dist: Distribution, seed: int = 12345, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([dist.sample(rng) for _ in range(n)])


# ----------------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5m", Fixed(300.0)),
        (90, Fixed(90.0)),
        (0, Fixed(0.0)),
        ({"dist": "fixed", "value": "5m"}, Fixed(300.0)),
        ({"dist": "exponential", "mean": "8h"}, Exponential(28800.0)),
        ({"dist": "lognormal", "median": "8m", "p95": "20m"}, LogNormal(480.0, 1200.0)),
        ({"dist": "uniform", "low": "5m", "high": "20m"}, Uniform(300.0, 1200.0)),
        ({"dist": "uniform", "low": "5m", "high": "5m"}, Uniform(300.0, 300.0)),
        ({"dist": "weibull", "shape": 1.5, "scale": "2y"}, Weibull(1.5, 2 * 365 * 86400.0)),
        ({"dist": "triangular", "low": "1m", "mode": "5m", "high": "30m"}, Triangular(60.0, 300.0, 1800.0)),
        ({"dist": "empirical", "values": ["4m", "5m", "7m"]}, Empirical((240.0, 300.0, 420.0))),
    ],
)
def test_parse_distribution(raw, expected):
    d = parse(raw)
    assert d == expected
    assert type(d) is type(expected)


def test_parse_distribution_passes_a_distribution_through():
    d = Exponential(10.0)
    assert parse(d) is d


def test_parse_distribution_uses_the_given_value_parser():
    d = parse_distribution({"dist": "uniform", "low": 1, "high": 3}, lambda v: float(v) * 1000)
    assert d == Uniform(1000.0, 3000.0)


def test_dist_names():
    assert DIST_NAMES == (
        "fixed",
        "exponential",
        "lognormal",
        "uniform",
        "weibull",
        "triangular",
        "empirical",
    )


ALL_NAMES = ", ".join(DIST_NAMES)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"dist": "gamma", "mean": "1h"}, f"unknown distribution 'gamma'; expected one of {ALL_NAMES}"),
        (
            {"mean": "1h"},
            f"a random quantity needs a 'dist' key (one of {ALL_NAMES}), got {{'mean': '1h'}}",
        ),
        ({"dist": "exponential"}, "exponential distribution takes mean (missing mean)"),
        (
            {"dist": "exponential", "mean": "1h", "sd": "5m"},
            "exponential distribution takes mean (unexpected sd)",
        ),
        ({"dist": "lognormal", "median": "8m"}, "lognormal distribution takes median, p95 (missing p95)"),
        (
            {"dist": "lognormal", "mean": "8m", "p95": "20m"},
            "lognormal distribution takes median, p95 (missing median; unexpected mean)",
        ),
        (
            {"dist": "triangular", "low": "1m", "high": "3m"},
            "triangular distribution takes low, mode, high (missing mode)",
        ),
        (
            {"dist": "uniform", "min": "1m", "max": "3m"},
            "uniform distribution takes low, high (missing low, high; unexpected max, min)",
        ),
        ({"dist": "fixed", "value": "1m", "mean": "1m"}, "fixed distribution takes value (unexpected mean)"),
        # negative values
        ("-5m", "must not be negative, got '-5m'"),
        ({"dist": "fixed", "value": "-1m"}, "fixed parameters must not be negative"),
        ({"dist": "uniform", "low": "-5m", "high": "20m"}, "uniform parameters must not be negative"),
        (
            {"dist": "triangular", "low": "-1m", "mode": "0s", "high": "1m"},
            "triangular parameters must not be negative",
        ),
        ({"dist": "exponential", "mean": "-1h"}, "exponential parameters must not be negative"),
        ({"dist": "empirical", "values": ["4m", "-1m"]}, "empirical values must not be negative"),
        # ordering and positivity
        ({"dist": "exponential", "mean": 0}, "exponential mean must be positive"),
        ({"dist": "lognormal", "median": "20m", "p95": "20m"}, "lognormal needs 0 < median < p95"),
        ({"dist": "lognormal", "median": "30m", "p95": "20m"}, "lognormal needs 0 < median < p95"),
        ({"dist": "lognormal", "median": 0, "p95": "20m"}, "lognormal needs 0 < median < p95"),
        ({"dist": "uniform", "low": "25m", "high": "20m"}, "uniform needs low <= high"),
        (
            {"dist": "triangular", "low": "1m", "mode": "50m", "high": "30m"},
            "triangular needs low <= mode <= high",
        ),
        (
            {"dist": "triangular", "low": "10m", "mode": "5m", "high": "30m"},
            "triangular needs low <= mode <= high",
        ),
        ({"dist": "weibull", "shape": 0, "scale": "2y"}, "weibull shape and scale must be positive and finite"),
        ({"dist": "weibull", "shape": 1.5, "scale": 0}, "weibull shape and scale must be positive and finite"),
        ({"dist": "weibull", "shape": -1, "scale": "2y"}, "weibull shape and scale must be positive and finite"),
        (
            {"dist": "weibull", "shape": math.nan, "scale": "2y"},
            "weibull shape and scale must be positive and finite",
        ),
        (
            {"dist": "weibull", "shape": math.inf, "scale": "2y"},
            "weibull shape and scale must be positive and finite",
        ),
        (
            {"dist": "weibull", "shape": "abc", "scale": "2y"},
            "weibull shape must be a positive number, got 'abc'",
        ),
        (
            {"dist": "weibull", "shape": None, "scale": "2y"},
            "weibull shape must be a positive number, got None",
        ),
        (
            {"dist": "weibull", "shape": 10**400, "scale": "2y"},
            "weibull shape must be a positive number, got 1" + "0" * 59 + "...",  # a short excerpt
        ),
        ({"dist": "empirical", "values": []}, "empirical distribution needs a non-empty list of values"),
        ({"dist": "empirical", "values": "5m"}, "empirical distribution needs a non-empty list of values"),
    ],
)
def test_parse_distribution_errors(raw, message):
    with pytest.raises(ValueError) as exc:
        parse(raw)
    assert str(exc.value) == message


def test_parse_distribution_reports_bad_values_from_the_unit_parser():
    with pytest.raises(ValueError, match=r"unknown time unit 'parsecs' in '5parsecs'"):
        parse({"dist": "exponential", "mean": "5parsecs"})
    with pytest.raises(ValueError, match=r"unknown time unit 'x' in '3x'"):
        parse({"dist": "empirical", "values": ["1m", "3x"]})


@pytest.mark.parametrize("name", [["exponential"], {"a": 1}, 5, None])
def test_parse_distribution_non_string_dist_name(name):
    # a list or mapping from YAML is unhashable; it is an unknown name like any other
    with pytest.raises(ValueError) as exc:
        parse({"dist": name, "mean": "1h"})
    assert str(exc.value) == f"unknown distribution {name!r}; expected one of {ALL_NAMES}"


def test_parse_distribution_weibull_nan_scale():
    # a value parser that lets NaN through still cannot make a NaN scale
    with pytest.raises(ValueError) as exc:
        parse_distribution({"dist": "weibull", "shape": 1.5, "scale": math.nan}, float)
    assert str(exc.value) == "weibull shape and scale must be positive and finite"


def test_parse_distribution_weibull_shape_as_a_numeric_string():
    assert parse({"dist": "weibull", "shape": "1.5", "scale": "2y"}) == Weibull(1.5, 2 * 365 * 86400.0)


# ----------------------------------------------------------------------------------------------------
# Closed forms


def test_fixed():
    d = Fixed(300.0)
    assert d.mean == 300.0
    assert d.quantile(0.01) == d.quantile(0.99) == 300.0


def test_exponential_closed_forms():
    d = Exponential(3600.0)
    assert d.mean == 3600.0
    assert d.quantile(0.5) == pytest.approx(3600.0 * math.log(2), rel=1e-12)
    assert d.quantile(0.95) == pytest.approx(-3600.0 * math.log(0.05), rel=1e-12)


def test_lognormal_closed_forms():
    d = LogNormal(480.0, 1200.0)
    sigma = math.log(1200.0 / 480.0) / NormalDist().inv_cdf(0.95)
    assert d.sigma == pytest.approx(sigma, rel=1e-12)
    assert d.quantile(0.5) == pytest.approx(480.0, rel=1e-12)
    assert d.quantile(0.95) == pytest.approx(1200.0, rel=1e-9)
    assert d.mean == pytest.approx(480.0 * math.exp(sigma**2 / 2), rel=1e-12)
    assert d.mean > d.median  # right-skewed


def test_uniform_closed_forms():
    d = Uniform(300.0, 1200.0)
    assert d.mean == 750.0
    assert d.quantile(0.25) == 525.0
    assert d.quantile(0.5) == 750.0


def test_weibull_closed_forms():
    d = Weibull(1.5, 1000.0)
    assert d.mean == pytest.approx(1000.0 * math.gamma(1 + 1 / 1.5), rel=1e-12)
    # the scale is the 1 - 1/e quantile whatever the shape
    assert d.quantile(1 - math.exp(-1)) == pytest.approx(1000.0, rel=1e-12)
    assert d.quantile(0.5) == pytest.approx(1000.0 * math.log(2) ** (1 / 1.5), rel=1e-12)
    # shape 1 is the exponential
    assert Weibull(1.0, 50.0).quantile(0.5) == pytest.approx(Exponential(50.0).quantile(0.5), rel=1e-12)


def test_triangular_closed_forms():
    d = Triangular(60.0, 300.0, 1800.0)
    assert d.mean == 720.0
    fc = (300.0 - 60.0) / (1800.0 - 60.0)
    assert d.quantile(fc) == pytest.approx(300.0, rel=1e-12)  # the mode sits at F(c)
    sym = Triangular(0.0, 50.0, 100.0)
    assert sym.quantile(0.5) == pytest.approx(50.0, rel=1e-12)
    assert sym.quantile(0.125) == pytest.approx(25.0, rel=1e-12)  # F(25) = 25^2 / (100 * 50)
    degenerate = Triangular(7.0, 7.0, 7.0)
    assert degenerate.quantile(0.3) == 7.0
    assert degenerate.sample(np.random.default_rng(0)) == 7.0


def test_empirical_closed_forms():
    d = Empirical((240.0, 300.0, 420.0))
    assert d.mean == 320.0
    assert d.quantile(0.5) == 300.0
    assert d.quantile(0.25) == 270.0  # linear interpolation between 240 and 300


# ----------------------------------------------------------------------------------------------------
# Sampling


SAMPLED = [
    Exponential(3600.0),
    LogNormal(480.0, 1200.0),
    Uniform(300.0, 1200.0),
    Weibull(1.5, 1e6),
    Triangular(60.0, 300.0, 1800.0),
    Empirical((240.0, 300.0, 420.0)),
]


@pytest.mark.parametrize("dist", SAMPLED, ids=lambda d: type(d).__name__)
def test_sample_mean_matches_mean(dist):
    x = draws(dist)
    assert x.mean() == pytest.approx(dist.mean, rel=MEAN_TOL)
    assert x.min() >= 0.0


@pytest.mark.parametrize("dist", SAMPLED, ids=lambda d: type(d).__name__)
def test_same_seed_same_draws(dist):
    assert np.array_equal(draws(dist, seed=7, n=200), draws(dist, seed=7, n=200))
    assert not np.array_equal(draws(dist, seed=7, n=200), draws(dist, seed=8, n=200))


@pytest.mark.parametrize("dist", [*SAMPLED, Fixed(5.0)], ids=lambda d: type(d).__name__)
def test_sampling_uses_only_the_given_generator(dist):
    np.random.seed(1)
    random.seed(1)
    first = draws(dist, seed=99, n=50)
    legacy_state = np.random.get_state()[1].copy()
    stdlib_state = random.getstate()
    np.random.seed(2)
    random.seed(2)
    second = draws(dist, seed=99, n=50)
    assert np.array_equal(first, second)  # global seeds do not matter
    np.random.seed(1)
    random.seed(1)
    draws(dist, seed=99, n=50)
    assert np.array_equal(np.random.get_state()[1], legacy_state)  # and global state is not consumed
    assert random.getstate() == stdlib_state


def test_sampling_advances_the_given_generator():
    rng = np.random.default_rng(3)
    a = Exponential(1.0).sample(rng)
    b = Exponential(1.0).sample(rng)
    assert a != b


def test_fixed_does_not_touch_the_generator():
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    assert Fixed(42.0).sample(rng) == 42.0
    assert rng.bit_generator.state == before


def test_lognormal_empirical_p95():
    d = LogNormal(480.0, 1200.0)
    x = draws(d)
    # The 95th percentile of N draws has a relative standard error of about 0.9 % here; allow 4 %.
    assert np.quantile(x, 0.95) == pytest.approx(1200.0, rel=0.04)
    assert np.median(x) == pytest.approx(480.0, rel=0.03)


def test_empirical_draws_only_observed_values_evenly():
    d = Empirical((240.0, 300.0, 420.0))
    x = draws(d)
    values, counts = np.unique(x, return_counts=True)
    assert values.tolist() == [240.0, 300.0, 420.0]
    # each value a third of the time: binomial sd is 0.33 % of N; allow 2 %
    assert np.all(np.abs(counts / N - 1 / 3) < 0.02)


def test_uniform_and_triangular_stay_in_range():
    assert draws(Uniform(300.0, 1200.0), n=2000).min() >= 300.0
    assert draws(Uniform(300.0, 1200.0), n=2000).max() <= 1200.0
    x = draws(Triangular(60.0, 300.0, 1800.0), n=2000)
    assert x.min() >= 60.0 and x.max() <= 1800.0


# ----------------------------------------------------------------------------------------------------
# Text and YAML forms


@pytest.mark.parametrize("dist", [*SAMPLED, Fixed(300.0)], ids=lambda d: type(d).__name__)
def test_to_yaml_round_trips(dist):
    raw = dist.to_yaml(lambda v: f"{v!r}s")
    assert parse(raw) == dist


def test_describe():
    assert Fixed(300.0).describe() == "300.0"
    assert Exponential(3600.0).describe(lambda v: f"{v:g}s") == "exponential, mean 3600s"
    assert LogNormal(480.0, 1200.0).describe(lambda v: f"{v:g}") == "log-normal, median 480, p95 1200"
    assert Uniform(1.0, 2.0).describe(lambda v: f"{v:g}") == "uniform 1 to 2"
    assert Weibull(1.5, 10.0).describe(lambda v: f"{v:g}") == "Weibull, shape 1.5, scale 10"
    assert Triangular(1.0, 2.0, 3.0).describe(lambda v: f"{v:g}") == "triangular 1 / 2 / 3"
    assert Empirical((1.0, 2.0, 6.0)).describe(lambda v: f"{v:g}") == "empirical (3 values, mean 3)"


def test_to_yaml_forms():
    assert Exponential(60.0).to_yaml() == {"dist": "exponential", "mean": 60.0}
    assert Weibull(1.5, 10.0).to_yaml(str) == {"dist": "weibull", "shape": 1.5, "scale": "10.0"}
    assert Fixed(5.0).to_yaml() == 5.0
