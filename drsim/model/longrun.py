"""What a model of decades needs when it leaves replication out: churn and capacity that do not grow with time.

A :class:`~drsim.model.site.SiteModel` built with ``replicate=False`` simulates only the slow time scale
(failures, repairs, policy decisions, failover and failback), over a horizon of decades. Two things of the full
model would cost memory or events in proportion to the horizon, and are replaced:

* the write curve of a VM (hourly breakpoints over the whole run) by a :class:`PeriodicCurve`: the VM's weekly
  pattern (profile, weekend factor) with the per-hour random variation replaced by its mean (1), repeated; a
  replayed trace repeats with its own period. Writes matter to the slow time scale only through the size of a
  failback's copy and of an initial replication's catch-up.
* the upload's throttle schedule by a :class:`SettledSchedule`, which follows the throttle until a given time
  (the initial replication is over by then) and then holds the schedule's weekly mean: an idle link then sets
  no timer at every throttle change.

Imports the churn and schedule modules of this package and the scenario types.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

import numpy as np

from drsim.model.churn import WriteCurve, week_offset
from drsim.model.schedule import CapacitySchedule
from drsim.scenario.churn import base_rate, load_trace, profile_shape
from drsim.scenario.units import HOUR

if TYPE_CHECKING:
    from drsim.scenario.document import VM, Scenario

__all__ = ["PeriodicCurve", "periodic_curve", "SettledSchedule"]


class PeriodicCurve:
    """Cumulative bytes written since t = 0 by a write rate that repeats every ``period`` seconds.

    ``times`` (from 0 to ``period``) and ``cumulative`` describe one period, piecewise linear; ``phase`` is the
    position in the period of t = 0. Memory is one period's breakpoints, whatever the horizon.
    """

    __slots__ = ("times", "cumulative", "slopes", "period", "total", "phase", "_at_zero")

    def __init__(self, times: np.ndarray, cumulative: np.ndarray, phase: float = 0.0):
        times = np.asarray(times, dtype=float)
        cumulative = np.asarray(cumulative, dtype=float)
        if times[0] != 0.0 or np.any(np.diff(times) <= 0) or len(times) < 2:
            raise ValueError("one period's breakpoints start at 0 and increase")
        self.times: list[float] = times.tolist()
        self.cumulative: list[float] = cumulative.tolist()
        self.slopes: list[float] = (np.diff(cumulative) / np.diff(times)).tolist()
        self.period = float(times[-1])
        self.total = float(cumulative[-1])
        self.phase = phase % self.period
        self._at_zero = 0.0
        self._at_zero = self._absolute(0.0)

    def _absolute(self, t: float) -> float:
        u = t + self.phase
        k = math.floor(u / self.period)
        u -= k * self.period
        i = min(bisect_right(self.times, u) - 1, len(self.slopes) - 1)
        return k * self.total + self.cumulative[i] + self.slopes[i] * (u - self.times[i]) - self._at_zero

    def __call__(self, t: float) -> float:
        """Bytes written in [0, t]."""
        return self._absolute(t) if t > 0 else 0.0

    def time_of(self, total: float) -> float:
        """The first time (s) at which ``total`` bytes have been written since t = 0 (inf if never), as
        :meth:`drsim.model.churn.WriteCurve.time_of` (a resync's watch during initial replication asks it)."""
        if total <= 0.0:
            return 0.0
        if self.total <= 0.0:
            return math.inf
        target = total + self._at_zero  # bytes from the start of the period that holds t = 0
        k = math.floor(target / self.total)
        rem = target - k * self.total
        if rem <= 1e-12 * target:  # reached at the end of the previous period (or earlier, if it ends without
            k, rem = k - 1, self.total  # writes); the tolerance absorbs the rounding of target / total
        i = bisect_left(self.cumulative, rem)  # 1 <= i: rem > 0 = cumulative[0]
        u = self.times[i - 1] + (rem - self.cumulative[i - 1]) / self.slopes[i - 1]
        return max(k * self.period + u - self.phase, 0.0)

    def rate(self, t: float) -> float:
        """Write rate in bytes/s just after ``t``."""
        u = (t + self.phase) % self.period
        return self.slopes[min(bisect_right(self.times, u) - 1, len(self.slopes) - 1)]

    def between(self, t0: float, t1: float) -> float:
        """Bytes written in (t0, t1]."""
        return self(t1) - self(t0)


def periodic_curve(scenario: Scenario, vm: VM) -> PeriodicCurve | WriteCurve:
    """The write curve of ``vm`` over any horizon in constant memory: its weekly pattern at the mean of the
    per-hour variation; a repeated trace with its period; a constant rate or a trace played once as it is."""
    c = vm.churn
    if c.trace is not None:
        t, b, period = load_trace(scenario.trace_path(c.trace))
        if not c.trace.repeat:
            return WriteCurve(np.concatenate((t, [period, period + 1.0])),
                              np.concatenate(([0.0], np.cumsum(b), [b.sum()])))
        return PeriodicCurve(np.concatenate((t, [period])), np.concatenate(([0.0], np.cumsum(b))))
    base = base_rate(vm)
    if c.profile is None and c.weekend == 1.0:
        return WriteCurve.constant(base)
    hours = np.arange(7 * 24)
    rates = base * profile_shape(vm)[hours % 24] * np.where(hours // 24 >= 5, c.weekend, 1.0)
    edges = HOUR * np.arange(7 * 24 + 1)
    cumulative = np.concatenate(([0.0], np.cumsum(rates * HOUR)))
    return PeriodicCurve(edges, cumulative, week_offset(scenario))


class SettledSchedule(CapacitySchedule):
    """``schedule`` until ``until`` seconds, then its weekly mean for ever (bytes/s)."""

    def __init__(self, schedule: CapacitySchedule, until: float):
        self.inner = schedule
        self.until = until
        self.mean = schedule.weekly_mean()

    def weekly_mean(self) -> float:
        return self.mean

    @property
    def is_constant(self) -> bool:
        return self.inner.is_constant

    def at(self, t: float) -> float:
        return self.inner.at(t) if t < self.until else self.mean

    def next_change(self, t: float) -> float:
        if t >= self.until:
            return math.inf
        nxt = self.inner.next_change(t)
        return nxt if nxt < self.until else self.until

