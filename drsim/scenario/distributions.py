"""Random quantities: a plain value meaning "fixed", or ``{dist: NAME, ...}``.

Scenario files write every random quantity in one form::

    reboot: 5m                                   # fixed
    repair: {dist: exponential, mean: 8h}
    detect: {dist: lognormal, median: 8m, p95: 20m}
    start:  {dist: uniform, low: 5m, high: 20m}
    mtbf:   {dist: weibull, shape: 1.5, scale: 2y}
    notice: {dist: triangular, low: 1m, mode: 5m, high: 30m}
    boot:   {dist: empirical, values: [4m, 5m, 7m]}

Values carry units (parsed by the caller's unit parser, e.g. :func:`drsim.scenario.units.parse_duration`).
Samples are drawn only from a ``numpy.random.Generator`` passed in: never from global random state.

Imports only :mod:`drsim.scenario.quoting` (excerpts of values in messages).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from drsim.scenario.quoting import excerpt

__all__ = [
    "Distribution",
    "Fixed",
    "Exponential",
    "LogNormal",
    "Uniform",
    "Weibull",
    "Triangular",
    "Empirical",
    "parse_distribution",
    "DIST_NAMES",
]

_Z95 = NormalDist().inv_cdf(0.95)
#: Bounds of a Weibull shape. [assumption: fitted failure data give shapes of about 0.5 to 5; below 0.1 the mean
#: is millions of times the scale, and at 1e-300 it overflows]
MIN_WEIBULL_SHAPE, MAX_WEIBULL_SHAPE = 0.1, 100.0


class Distribution:
    """A non-negative random quantity in base units (seconds for durations)."""

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one value using ``rng``."""
        raise NotImplementedError

    def quantile(self, q: float) -> float:
        """The value below which a fraction ``q`` (0 < q < 1) of draws fall."""
        raise NotImplementedError

    @property
    def mean(self) -> float:
        """The expected value."""
        raise NotImplementedError

    def describe(self, fmt: Callable[[float], str] = str) -> str:
        """A short human description, values formatted by ``fmt``."""
        raise NotImplementedError

    def to_yaml(self, fmt: Callable[[float], Any] = float) -> Any:
        """The scenario-file form, values formatted by ``fmt``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Fixed(Distribution):
    value: float

    def sample(self, rng: np.random.Generator) -> float:
        return self.value

    def quantile(self, q: float) -> float:
        return self.value

    @property
    def mean(self) -> float:
        return self.value

    def describe(self, fmt: Callable[[float], str] = str) -> str:
        return fmt(self.value)

    def to_yaml(self, fmt: Callable[[float], Any] = float) -> Any:
        return fmt(self.value)


@dataclass(frozen=True)
class Exponential(Distribution):
    mean_value: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.exponential(self.mean_value))

    def quantile(self, q: float) -> float:
        return -self.mean_value * math.log1p(-q)

    @property
    def mean(self) -> float:
        return self.mean_value

    def describe(self, fmt: Callable[[float], str] = str) -> str:
        return f"exponential, mean {fmt(self.mean_value)}"

    def to_yaml(self, fmt: Callable[[float], Any] = float) -> Any:
        return {"dist": "exponential", "mean": fmt(self.mean_value)}


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Log-normal given by its median and 95th percentile (the form people can estimate)."""

    median: float
    p95: float

    @property
    def sigma(self) -> float:
        return math.log(self.p95 / self.median) / _Z95

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.lognormal(math.log(self.median), self.sigma))

    def quantile(self, q: float) -> float:
        return self.median * math.exp(self.sigma * NormalDist().inv_cdf(q))

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def describe(self, fmt: Callable[[float], str] = str) -> str:
        return f"log-normal, median {fmt(self.median)}, p95 {fmt(self.p95)}"

    def to_yaml(self, fmt: Callable[[float], Any] = float) -> Any:
        return {"dist": "lognormal", "median": fmt(self.median), "p95": fmt(self.p95)}


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def quantile(self, q: float) -> float:
        return self.low + q * (self.high - self.low)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def describe(self, fmt: Callable[[float], str] = str) -> str:
        return f"uniform {fmt(self.low)} to {fmt(self.high)}"

    def to_yaml(self, fmt: Callable[[float], Any] = float) -> Any:
        return {"dist": "uniform", "low": fmt(self.low), "high": fmt(self.high)}


@dataclass(frozen=True)
class Weibull(Distribution):
    shape: float
    scale: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.scale * rng.weibull(self.shape))

    def quantile(self, q: float) -> float:
        return self.scale * (-math.log1p(-q)) ** (1 / self.shape)

    @property
    def mean(self) -> float:
        return self.scale * math.gamma(1 + 1 / self.shape)

    def describe(self, fmt: Callable[[float], str] = str) -> str:
        return f"Weibull, shape {self.shape:g}, scale {fmt(self.scale)}"

    def to_yaml(self, fmt: Callable[[float], Any] = float) -> Any:
        return {"dist": "weibull", "shape": self.shape, "scale": fmt(self.scale)}


@dataclass(frozen=True)
class Triangular(Distribution):
    low: float
    mode: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        if self.high == self.low:
            return self.low
        return float(rng.triangular(self.low, self.mode, self.high))

    def quantile(self, q: float) -> float:
        a, c, b = self.low, self.mode, self.high
        if b == a:
            return a
        fc = (c - a) / (b - a)
        if q < fc:
            return a + math.sqrt(q * (b - a) * (c - a))
        return b - math.sqrt((1 - q) * (b - a) * (b - c))

    @property
    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3

    def describe(self, fmt: Callable[[float], str] = str) -> str:
        return f"triangular {fmt(self.low)} / {fmt(self.mode)} / {fmt(self.high)}"

    def to_yaml(self, fmt: Callable[[float], Any] = float) -> Any:
        return {"dist": "triangular", "low": fmt(self.low), "mode": fmt(self.mode), "high": fmt(self.high)}


@dataclass(frozen=True)
class Empirical(Distribution):
    """Draws uniformly from observed values."""

    values: tuple[float, ...]

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.values[int(rng.integers(len(self.values)))])

    def quantile(self, q: float) -> float:
        return float(np.quantile(np.asarray(self.values), q))

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    def describe(self, fmt: Callable[[float], str] = str) -> str:
        return f"empirical ({len(self.values)} values, mean {fmt(self.mean)})"

    def to_yaml(self, fmt: Callable[[float], Any] = float) -> Any:
        return {"dist": "empirical", "values": [fmt(v) for v in self.values]}


# name -> (class, required keys, optional keys)
_SPECS: dict[str, tuple[type, tuple[str, ...]]] = {
    "fixed": (Fixed, ("value",)),
    "exponential": (Exponential, ("mean",)),
    "lognormal": (LogNormal, ("median", "p95")),
    "uniform": (Uniform, ("low", "high")),
    "weibull": (Weibull, ("shape", "scale")),
    "triangular": (Triangular, ("low", "mode", "high")),
    "empirical": (Empirical, ("values",)),
}
DIST_NAMES = tuple(_SPECS)


def parse_distribution(raw: object, parse_value: Callable[[object], float]) -> Distribution:
    """Turn a scenario value into a :class:`Distribution`.

    ``raw`` is a plain value (fixed) or a mapping with a ``dist`` key. ``parse_value`` converts each
    unit-carrying value (e.g. :func:`drsim.scenario.units.parse_duration`). Raises ``ValueError`` with a
    message naming the expected keys.
    """
    if isinstance(raw, Distribution):
        return raw
    if not isinstance(raw, dict):
        value = parse_value(raw)
        if value < 0:
            raise ValueError(f"must not be negative, got {excerpt(raw)}")
        return Fixed(value)
    if "dist" not in raw:
        raise ValueError(f"a random quantity needs a 'dist' key (one of {', '.join(DIST_NAMES)}), got {excerpt(raw)}")
    name = raw["dist"]
    if not isinstance(name, str) or name not in _SPECS:
        raise ValueError(f"unknown distribution {excerpt(name)}; expected one of {', '.join(DIST_NAMES)}")
    cls, keys = _SPECS[name]
    given = set(raw) - {"dist"}
    missing = [k for k in keys if k not in given]
    extra = sorted(given - set(keys))
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected {', '.join(extra)}")
        raise ValueError(f"{name} distribution takes {', '.join(keys)} ({'; '.join(problems)})")
    if name == "empirical":
        values = raw["values"]
        if not isinstance(values, list) or not values:
            raise ValueError("empirical distribution needs a non-empty list of values")
        parsed = tuple(parse_value(v) for v in values)
        if min(parsed) < 0:
            raise ValueError("empirical values must not be negative")
        return Empirical(parsed)
    if name == "weibull":
        try:
            shape = float(raw["shape"])
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"weibull shape must be a positive number, got {excerpt(raw['shape'])}") from None
        scale = parse_value(raw["scale"])
        if not (math.isfinite(shape) and shape > 0 and scale > 0):
            raise ValueError("weibull shape and scale must be positive and finite")
        if not MIN_WEIBULL_SHAPE <= shape <= MAX_WEIBULL_SHAPE:
            raise ValueError(f"weibull shape must be from {MIN_WEIBULL_SHAPE:g} to {MAX_WEIBULL_SHAPE:g} (fitted "
                             f"failure data give about 0.5 to 5), got {shape:g}")
        return Weibull(shape, scale)
    args = [parse_value(raw[k]) for k in keys]
    if min(args) < 0:
        raise ValueError(f"{name} parameters must not be negative")
    if name == "exponential" and args[0] <= 0:
        raise ValueError("exponential mean must be positive")
    if name == "lognormal":
        median, p95 = args
        if median <= 0 or p95 <= median:
            raise ValueError("lognormal needs 0 < median < p95")
    if name == "uniform" and args[0] > args[1]:
        raise ValueError("uniform needs low <= high")
    if name == "triangular" and not args[0] <= args[1] <= args[2]:
        raise ValueError("triangular needs low <= mode <= high")
    return cls(*args)
