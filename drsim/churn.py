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
from bisect import bisect_right
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from drsim.units import DAY, HOUR, WEEK

if TYPE_CHECKING:
    from drsim.scenario import VM, Scenario

__all__ = ["PROFILES", "WriteCurve", "TraceError", "load_trace", "build_curve", "mean_rate", "week_offset"]

#: Built-in 24-hour shapes (multipliers per hour of the day, 00:00-01:00 first). Normalised to mean 1
#: when used. They are illustrative assumptions, not measurements.
PROFILES: dict[str, tuple[float, ...]] = {
    "flat": (1.0,) * 24,
    # an office: quiet nights, busy 08-18 with a lunch dip
    "office": (0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.6, 1.8, 2.2, 2.2, 2.0,
               1.2, 1.8, 2.0, 2.0, 1.8, 1.6, 0.8, 0.5, 0.4, 0.3, 0.3, 0.2),
    # the office plus a nightly backup or maintenance burst from 01:00 to 03:00
    "office-backup": (0.2, 3.0, 3.0, 0.2, 0.2, 0.2, 0.3, 0.6, 1.8, 2.2, 2.2, 2.0,
                      1.2, 1.8, 2.0, 2.0, 1.8, 1.6, 0.8, 0.5, 0.4, 0.3, 0.3, 0.2),
    # a batch server: most writes in a 00:00-04:00 window
    "nightly-batch": (4.0, 4.0, 4.0, 4.0, 0.5, 0.3, 0.3, 0.3, 0.5, 0.5, 0.5, 0.5,
                      0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.5),
    # a server with a morning peak (e.g. a batch job at 09:00-11:00)
    "morning-batch": (0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.8, 1.0, 4.0, 4.0, 1.2,
                      1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.7, 0.6, 0.6, 0.5, 0.5, 0.5),
}


class TraceError(ValueError):
    """A churn trace that is missing or malformed."""


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

    def between(self, t0: float, t1: float) -> float:
        """Bytes written in (t0, t1]."""
        return self(t1) - self(t0)


@lru_cache(maxsize=64)
def _load_trace_cached(path: str, mtime: float) -> tuple[np.ndarray, np.ndarray, float]:
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise TraceError(f"churn trace {path} not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TraceError(f"churn trace {path} is not a readable CSV: {exc}") from None
    cols = {c.strip().lower(): c for c in df.columns}
    missing = [c for c in ("timestamp", "bytes") if c not in cols]
    if missing:
        raise TraceError(f"churn trace {path} needs columns 'timestamp' and 'bytes' (missing {', '.join(missing)})")
    if len(df) < 2:
        raise TraceError(f"churn trace {path} needs at least two rows")

    def where(i: int) -> str:
        return f"churn trace {path}, line {i + 2}"  # header is line 1

    ts = df[cols["timestamp"]].str.strip()
    numeric = pd.to_numeric(ts, errors="coerce")
    if numeric.notna().all():
        t = numeric.to_numpy(dtype=float)
    elif numeric.notna().any():
        i = int(np.argmax(numeric.isna().to_numpy()))
        raise TraceError(f"{where(i)}: timestamp {ts.iloc[i]!r} is not a number like the rows before it")
    else:
        parsed = pd.to_datetime(ts, format="ISO8601", errors="coerce")
        if parsed.isna().any():
            i = int(np.argmax(parsed.isna().to_numpy()))
            raise TraceError(f"{where(i)}: timestamp {ts.iloc[i]!r} is neither seconds nor an ISO date-time "
                             "like 2026-03-02T08:00:00")
        t = (parsed - parsed.iloc[0]).dt.total_seconds().to_numpy(dtype=float)
    raw_b = df[cols["bytes"]].str.strip()
    b_series = pd.to_numeric(raw_b, errors="coerce")
    if b_series.isna().any():
        i = int(np.argmax(b_series.isna().to_numpy()))
        text = raw_b.iloc[i]
        raise TraceError(f"{where(i)}: bytes " + ("is empty" if text == "" else f"{text!r} is not a number"))
    b = b_series.to_numpy(dtype=float)
    if not np.isfinite(b).all():
        i = int(np.argmax(~np.isfinite(b)))
        raise TraceError(f"{where(i)}: bytes must be finite")
    if np.any(b < 0):
        i = int(np.argmax(b < 0))
        raise TraceError(f"{where(i)}: bytes must not be negative")
    if not np.isfinite(t).all():
        i = int(np.argmax(~np.isfinite(t)))
        raise TraceError(f"{where(i)}: timestamp must be finite")
    if np.any(np.diff(t) <= 0):
        i = int(np.argmax(np.diff(t) <= 0)) + 1
        raise TraceError(f"{where(i)}: timestamps must increase")
    t = t - t[0]
    period = t[-1] + (t[-1] - t[-2])
    return t, b, float(period)


def load_trace(path: str | Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Load a write trace CSV. Returns (start times from 0 in s, bytes per sample, period in s).

    Row i's bytes are written uniformly over [t_i, t_{i+1}); the last row's sample interval equals the
    previous one, which also ends the trace period.
    """
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"churn trace {p} not found")
    return _load_trace_cached(str(p.resolve()), p.stat().st_mtime)


def week_offset(scenario: Scenario) -> float:
    """Seconds from Monday 00:00 to t = 0 (the calendar start; Monday 00:00 when there is none)."""
    if scenario.start is None:
        return 0.0
    s = scenario.start
    return s.weekday() * DAY + s.hour * HOUR + s.minute * 60 + s.second + s.microsecond / 1e6


def _profile(vm: VM) -> np.ndarray:
    raw = vm.churn.profile
    if raw is None:
        values = np.ones(24)
    elif isinstance(raw, str):
        values = np.array(PROFILES[raw], dtype=float)
    else:
        values = np.array(raw, dtype=float)
    return values / values.mean()


def _base_rate(vm: VM) -> float:
    """Mean write rate on a weekday, bytes/s, before the profile shape."""
    c = vm.churn
    return c.daily * vm.disk_size / DAY if c.daily is not None else float(c.rate)


def mean_rate(scenario: Scenario, vm: VM) -> float:
    """Long-run mean write rate of a VM in bytes/s (weekends and profile included; variation has mean 1)."""
    c = vm.churn
    if c.trace is not None:
        _, b, period = load_trace(scenario.trace_path(c.trace))
        if not c.trace.repeat and scenario.duration > period:
            return float(b.sum() / scenario.duration)  # writes stop when the trace ends
        return float(b.sum() / period)
    return _base_rate(vm) * (5 + 2 * c.weekend) / 7


def build_curve(scenario: Scenario, vm: VM, rng: np.random.Generator, horizon: float) -> WriteCurve:
    """The write curve of ``vm`` over [0, horizon] seconds (extended linearly beyond).

    ``rng`` draws the per-hour random variation, if any.
    """
    c = vm.churn
    if c.trace is not None:
        return _trace_curve(scenario, c.trace, horizon)
    base = _base_rate(vm)
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
    rates = base * _profile(vm)[hour_of_day] * np.where(weekday >= 5, c.weekend, 1.0)
    if c.variation > 0:
        sigma2 = math.log1p(c.variation**2)
        rates = rates * rng.lognormal(-sigma2 / 2, math.sqrt(sigma2), size=len(rates))
    cumulative = np.concatenate(([0.0], np.cumsum(rates * np.diff(edges))))
    return WriteCurve(edges, cumulative)


def _trace_curve(scenario: Scenario, trace, horizon: float) -> WriteCurve:
    t, b, period = load_trace(scenario.trace_path(trace))
    repeats = max(1, int(math.ceil(horizon / period))) if trace.repeat else 1
    starts = (t[None, :] + period * np.arange(repeats)[:, None]).ravel()
    times = np.concatenate((starts, [period * repeats]))
    cumulative = np.concatenate(([0.0], np.cumsum(np.tile(b, repeats))))
    if not trace.repeat:
        times = np.concatenate((times, [times[-1] + 1.0]))  # writes stop after the trace
        cumulative = np.concatenate((cumulative, [cumulative[-1]]))
    return WriteCurve(times, cumulative)
