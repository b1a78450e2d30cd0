"""Link capacity over time: a weekly throttle schedule, as the replication agent offers; and office hours.

A :class:`CapacitySchedule` is piecewise constant. It answers the capacity at a time and the next time
the capacity changes, so the link only wakes up at schedule boundaries. :func:`until_off_hours` says how long
until the office hours end (when off-hours work such as a failback or a resync may start).

Imports only the scenario's units (and the scenario for hints).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import TYPE_CHECKING

from drsim.scenario.units import DAY, HOUR, WEEK

if TYPE_CHECKING:
    from drsim.scenario.document import Scenario

__all__ = ["CapacitySchedule", "until_off_hours"]


def until_off_hours(scenario: Scenario, now: float, week_offset: float) -> float:
    """Seconds from ``now`` until the next off-hours time (0 if now is off hours): outside the throttle's
    work hours on its work days, or outside 08:00-18:00 Monday to Friday without a throttle. ``week_offset``
    is the week second of t = 0."""
    t = scenario.link.throttle
    work_days = t.weekday_numbers if t is not None else frozenset(range(5))
    start, end = t.work_hours if t is not None else (8 * HOUR, 18 * HOUR)
    pos = (now + week_offset) % WEEK
    day, sec = int(pos // DAY), pos % DAY
    if day in work_days and start <= sec < end:
        return end - sec
    return 0.0


class CapacitySchedule:
    """Payload capacity in bytes/s as a function of simulated time (seconds from t = 0).

    ``pattern`` is a list of ``(week_second, capacity)`` pairs sorted by week second, the first at 0:
    the capacity from that second of the week (Monday 00:00 = 0) until the next entry. ``offset`` is the
    week second of t = 0. With one entry the capacity is constant.
    """

    def __init__(self, pattern: list[tuple[float, float]], offset: float = 0.0):
        if not pattern or pattern[0][0] != 0.0:
            raise ValueError("a weekly pattern starts at week second 0")
        merged: list[tuple[float, float]] = []
        for sec, cap in pattern:
            if merged and merged[-1][1] == cap:
                continue
            merged.append((sec, cap))
        self._starts = [s for s, _ in merged]
        self._caps = [c for _, c in merged]
        self._offset = offset

    @classmethod
    def constant(cls, capacity: float) -> CapacitySchedule:
        return cls([(0.0, capacity)])

    @classmethod
    def weekly(
        cls,
        base: float,
        work_limit: float,
        off_limit: float,
        work_days: frozenset[int],
        work_hours: tuple[float, float],
        offset: float,
        efficiency: float,
    ) -> CapacitySchedule:
        """Work-hours and off-hours limits (bytes/s, raw), each capped by ``base``, times ``efficiency``."""
        work = min(base, work_limit) * efficiency
        off = min(base, off_limit) * efficiency

        def in_work(sec: float) -> bool:
            day, t = int(sec // DAY) % 7, sec % DAY
            return day in work_days and work_hours[0] <= t < work_hours[1]

        bounds = sorted({0.0} | {d * DAY + h for d in range(7) for h in work_hours if d * DAY + h < WEEK})
        cleaned = [(b, work if in_work(b) else off) for b in bounds]
        return cls(cleaned, offset)

    def weekly_mean(self) -> float:
        """Mean capacity over a week (bytes/s)."""
        ends = [*self._starts[1:], WEEK]
        return sum(c * (e - s) for s, e, c in zip(self._starts, ends, self._caps, strict=True)) / WEEK

    @property
    def is_constant(self) -> bool:
        return len(self._caps) == 1

    def at(self, t: float) -> float:
        """Capacity (bytes/s) in force at time ``t``."""
        if len(self._caps) == 1:
            return self._caps[0]
        pos = (t + self._offset) % WEEK
        return self._caps[bisect_right(self._starts, pos) - 1]

    def next_change(self, t: float) -> float:
        """The first time strictly after ``t`` at which the capacity changes (``inf`` if never)."""
        if len(self._caps) == 1:
            return math.inf
        current = self.at(t)
        week_start = math.floor((t + self._offset) / WEEK) * WEEK - self._offset
        i = bisect_right(self._starts, t - week_start)
        for _ in range(len(self._starts) + 1):
            if i >= len(self._starts):
                week_start += WEEK
                i = 0
            nxt = week_start + self._starts[i]
            if self._caps[i] != current and nxt > t:
                return nxt
            i += 1
        return math.inf
