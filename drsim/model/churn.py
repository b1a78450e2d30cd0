"""Churn: how many bytes a VM writes over time.

Every churn model becomes a :class:`WriteCurve`: the cumulative bytes written since t = 0, a
piecewise-linear function of time. The bytes in a replication log cut at ``t1`` after a cut at ``t0``
are ``curve(t1) - curve(t0)``: exact for any cut times, with no time stepping.

Shapes come from a constant rate or a daily percentage of the VM's disk size, optionally shaped by a
24-hour profile (normalised to mean 1, so the daily total is kept), a weekend factor, and a random
log-normal multiplier per hour; or from a replayed trace of measured writes.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

import numpy as np

from drsim.scenario.churn import base_rate, load_trace, profile_shape
from drsim.scenario.units import DAY, HOUR, WEEK

if TYPE_CHECKING:
    from drsim.scenario.document import Scenario
    from drsim.scenario.site import VM

__all__ = ["WriteCurve", "build_curve", "week_offset"]

class WriteCurve:
    """Cumulative bytes written, piecewise linear through ``(times[i], cumulative[i])``.

    Past the last breakpoint the last slope continues. ``times`` start at 0 and increase.
    """

    __slots__ = ("times", "cumulative", "slopes", "_last_i")

    def __init__(self, times: np.ndarray, cumulative: np.ndarray):
        times = np.asarray(times, dtype=float)
        cumulative = np.asarray(cumulative, dtype=float)
        if times[0] != 0.0 or np.any(np.diff(times) <= 0):
            raise ValueError("breakpoint times must start at 0 and increase")
        slopes = np.empty_like(times)
        slopes[:-1] = np.diff(cumulative) / np.diff(times)
        slopes[-1] = slopes[-2] if len(times) > 1 else 0.0
        self.times: list[float] = times.tolist()
        self.cumulative: list[float] = cumulative.tolist()
        self.slopes: list[float] = slopes.tolist()

    @classmethod
    def constant(cls, rate: float) -> WriteCurve:
        """Writes at ``rate`` bytes/s forever."""
        return cls(np.array([0.0, 1.0]), np.array([0.0, rate]))

    def __call__(self, t: float) -> float:
        """Bytes written in [0, t]."""
        i = bisect_right(self.times, t) - 1
        if i < 0:
            return 0.0
        return self.cumulative[i] + self.slopes[i] * (t - self.times[i])

    def rate(self, t: float) -> float:
        """Write rate in bytes/s just after ``t``."""
        i = max(bisect_right(self.times, t) - 1, 0)
        return self.slopes[i]

    def time_of(self, total: float) -> float:
        """The first time (s) at which ``total`` bytes have been written (inf if never)."""
        cum = self.cumulative
        i = bisect_left(cum, total)
        if i == 0:
            return 0.0
        if i == len(cum):  # past the last breakpoint: the last slope continues
            slope = self.slopes[-1]
            return self.times[-1] + (total - cum[-1]) / slope if slope > 0 else math.inf
        return self.times[i - 1] + (total - cum[i - 1]) / self.slopes[i - 1]

    def between(self, t0: float, t1: float) -> float:
        """Bytes written in (t0, t1]."""
        return self(t1) - self(t0)


def week_offset(scenario: Scenario) -> float:
    """Seconds from Monday 00:00 to t = 0 (the calendar start; Monday 00:00 when there is none)."""
    if scenario.start is None:
        return 0.0
    s = scenario.start
    return s.weekday() * DAY + s.hour * HOUR + s.minute * 60 + s.second + s.microsecond / 1e6


def build_curve(scenario: Scenario, vm: VM, rng: np.random.Generator, horizon: float) -> WriteCurve:
    """The write curve of ``vm`` over [0, horizon] seconds (extended linearly beyond).

    ``rng`` draws the per-hour random variation, if any.
    """
    c = vm.churn
    if c.trace is not None:
        return _trace_curve(scenario, c.trace, horizon)
    base = base_rate(vm)
    if c.profile is None and c.weekend == 1.0 and c.variation == 0.0:
        return WriteCurve.constant(base)
    # hourly breakpoints aligned on the calendar
    offset = week_offset(scenario)
    first = math.ceil(offset / HOUR) * HOUR - offset  # first hour boundary after t = 0
    n_hours = int(math.ceil((horizon - first) / HOUR)) + 1
    edges = np.concatenate(([0.0], first + HOUR * np.arange(n_hours + 1)))
    edges = np.unique(edges)
    starts = edges[:-1]
    week_pos = (offset + starts) % WEEK
    hour_of_day = ((week_pos % DAY) // HOUR).astype(int)
    weekday = (week_pos // DAY).astype(int)
    rates = base * profile_shape(vm)[hour_of_day] * np.where(weekday >= 5, c.weekend, 1.0)
    if c.variation > 0:
        sigma2 = math.log1p(c.variation**2)
        rates = rates * rng.lognormal(-sigma2 / 2, math.sqrt(sigma2), size=len(rates))
    cumulative = np.concatenate(([0.0], np.cumsum(rates * np.diff(edges))))
    return WriteCurve(edges, cumulative)


def _trace_curve(scenario: Scenario, trace, horizon: float) -> WriteCurve:
    t, b, period = load_trace(scenario.trace_path(trace), trace)
    repeats = max(1, int(math.ceil(horizon / period))) if trace.repeat else 1
    starts = (t[None, :] + period * np.arange(repeats)[:, None]).ravel()
    times = np.concatenate((starts, [period * repeats]))
    cumulative = np.concatenate(([0.0], np.cumsum(np.tile(b, repeats))))
    if not trace.repeat:
        times = np.concatenate((times, [times[-1] + 1.0]))  # writes stop after the trace
        cumulative = np.concatenate((cumulative, [cumulative[-1]]))
    return WriteCurve(times, cumulative)
