"""Churn as a scenario describes it: built-in daily profiles, trace files of measured writes, and the
long-run mean write rate a VM's churn section implies.

A trace is read only from a regular file of at most :data:`MAX_TRACE_BYTES`; its rows must hold finite, bounded
bytes and timestamps that increase, in one time zone.

The write curves the simulation replays are built from these in :mod:`drsim.model.churn`. This module
imports only :mod:`drsim.scenario.units`, :mod:`drsim.scenario.files`, :mod:`drsim.scenario.quoting`, the
counter-log readers (:mod:`drsim.scenario.counters`, :mod:`drsim.scenario.perfmon`) and the scenario types for hints.
"""

from __future__ import annotations

import io
import math
import stat
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from drsim.scenario.counters import CounterTrace, counter_trace
from drsim.scenario.files import FileRefused, read_regular_file
from drsim.scenario.perfmon import CounterLogError, is_counter_log
from drsim.scenario.quoting import excerpt
from drsim.scenario.units import DAY, MAX_SIZE

if TYPE_CHECKING:
    from drsim.scenario.document import Scenario
    from drsim.scenario.site import VM, Trace

__all__ = ["PROFILES", "TraceError", "load_trace", "mean_rate", "profile_shape", "base_rate", "trace_warnings",
           "MAX_TRACE_BYTES"]

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


#: A trace's ``rewrite`` below this gets a warning [assumption: the vendor's churn limits assume about 30 % I/O
#: overlap (support matrix), so dropping more than half of the written bytes needs a reason].
REWRITE_WARNING = 0.5


class TraceError(ValueError):
    """A churn trace that is missing or malformed."""


#: Most bytes of a trace file. [assumption: a year of one-minute samples is about 15 MB of CSV]
MAX_TRACE_BYTES = 256 * 2**20
#: Most bytes one trace row may hold. [the largest size a scenario takes, 1 EiB: see drsim.scenario.units]
MAX_TRACE_ROW_BYTES = MAX_SIZE


@lru_cache(maxsize=64)
def _load_trace_cached(path: str, mtime: float) -> tuple[np.ndarray, np.ndarray, float]:
    import pandas as pd

    try:
        data = read_regular_file(path, MAX_TRACE_BYTES, "a trace", "a year of one-minute samples takes about 15 MB")
    except FileRefused as exc:
        raise TraceError(f"churn trace {path} not found" if exc.missing else f"churn trace {path}: {exc}") from None
    try:
        df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, skipinitialspace=True)
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
        raise TraceError(f"{where(i)}: timestamp {excerpt(ts.iloc[i])} is not a number like the rows before it")
    else:
        parsed = _iso_times(ts, where)
        t = (parsed - parsed.iloc[0]).dt.total_seconds().to_numpy(dtype=float)
    raw_b = df[cols["bytes"]].str.strip()
    b_series = pd.to_numeric(raw_b, errors="coerce")
    if b_series.isna().any():
        i = int(np.argmax(b_series.isna().to_numpy()))
        text = raw_b.iloc[i]
        raise TraceError(f"{where(i)}: bytes " + ("is empty" if text == "" else f"{excerpt(text)} is not a number"))
    b = b_series.to_numpy(dtype=float)
    if not np.isfinite(b).all():
        i = int(np.argmax(~np.isfinite(b)))
        raise TraceError(f"{where(i)}: bytes must be finite")
    if np.any(b < 0):
        i = int(np.argmax(b < 0))
        raise TraceError(f"{where(i)}: bytes must not be negative")
    if np.any(b > MAX_TRACE_ROW_BYTES):
        i = int(np.argmax(b > MAX_TRACE_ROW_BYTES))
        raise TraceError(f"{where(i)}: bytes {excerpt(raw_b.iloc[i])} is more than the 1 EiB a row may hold")
    if not np.isfinite(t).all():
        i = int(np.argmax(~np.isfinite(t)))
        raise TraceError(f"{where(i)}: timestamp must be finite")
    if np.any(np.diff(t) <= 0):
        i = int(np.argmax(np.diff(t) <= 0)) + 1
        raise TraceError(f"{where(i)}: timestamps must increase")
    t = t - t[0]
    period = t[-1] + (t[-1] - t[-2])
    return t, b, float(period)


def _iso_times(ts: Any, where: Callable[[int], str]) -> Any:
    """ISO date-time timestamps as pandas times: all in one zone, or all without one."""
    import pandas as pd

    offsets = ts.str.extract(r"(Z|[+-]\d\d:?\d\d)$", expand=False).fillna("")
    offsets = offsets.str.replace("Z", "+00:00").str.replace(r"^([+-]\d\d)(\d\d)$", r"\1:\2", regex=True)
    other = (offsets != offsets.iloc[0]).to_numpy()
    if other.any():
        i = int(np.argmax(other))
        raise TraceError(f"{where(i)}: timestamp {excerpt(ts.iloc[i])} has another time-zone offset than the first "
                         "row; give every timestamp in one zone")
    try:
        parsed = pd.to_datetime(ts, format="ISO8601", errors="coerce")
    except (ValueError, OverflowError) as exc:  # what pandas cannot put on one time line
        raise TraceError(f"{where(0)}: timestamps cannot be read as ISO date-times: {excerpt(str(exc))}") from None
    if parsed.isna().any():
        i = int(np.argmax(parsed.isna().to_numpy()))
        raise TraceError(f"{where(i)}: timestamp {excerpt(ts.iloc[i])} is neither seconds nor an ISO date-time "
                         "like 2026-03-02T08:00:00")
    return parsed


def load_trace(path: str | Path, trace: Trace | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Load a write trace CSV. Returns (start times from 0 in s, bytes per sample, period in s).

    Row i's bytes are written uniformly over [t_i, t_{i+1}); the last row's sample interval equals the
    previous one, which also ends the trace period. With the scenario's ``trace`` section, a counter log
    (``format: perfmon``) is read by :func:`drsim.scenario.counters.counter_trace`, and the bytes of either
    format are scaled by ``rewrite``.
    """
    p = Path(path)
    try:
        info = p.stat()
    except OSError:
        raise TraceError(f"churn trace {p} not found") from None
    if not stat.S_ISREG(info.st_mode):
        raise TraceError(f"churn trace {p}: not a regular file: a device, a pipe or a socket cannot be read as a trace")
    if trace is not None and trace.format == "perfmon":
        c = _counter_trace(p, trace)
        return c.starts, c.bytes, c.period
    if is_counter_log(p):
        raise TraceError(f"churn trace {p} is a performance-counter log (PDH-CSV): add format: perfmon and the "
                         "columns of the VM's write counters to the trace ('drsim trace FILE' lists them)")
    t, b, period = _load_trace_cached(str(p.resolve()), info.st_mtime)
    return (t, b * trace.rewrite, period) if trace is not None and trace.rewrite != 1.0 else (t, b, period)


def _counter_trace(path: Path, trace: Trace) -> CounterTrace:
    columns = [trace.columns] if isinstance(trace.columns, str) else list(trace.columns or [])
    try:
        return counter_trace(str(path), columns, trace.step, trace.rewrite, trace.max_gap, trace.timezone)
    except CounterLogError as exc:
        raise TraceError(str(exc)) from None


def trace_warnings(scenario: Scenario) -> list[str]:
    """What a planner should know about each VM's trace: gaps filled, daylight-saving changes and parts of a counter
    log left out; a ``rewrite`` that drops more than half of the bytes written."""
    out = []
    for _, vm in scenario.vms():
        trace = vm.churn.trace
        if trace is not None and trace.rewrite < REWRITE_WARNING:
            out.append(f"{vm.name}: churn trace {trace.file}: rewrite {trace.rewrite:g} replays only "
                       f"{trace.rewrite:.0%} of the bytes written; the vendor's churn limits assume about 30 % I/O "
                       "overlap (rewrite 0.7): is so much really rewritten within an interval?")
        if trace is not None and trace.format == "perfmon":
            try:
                c = _counter_trace(scenario.trace_path(trace), trace)
            except TraceError:
                continue  # reported as an error by the checks
            out.extend(f"{vm.name}: churn trace {trace.file}: {note}" for note in c.notes)
    return out


def profile_shape(vm: VM) -> np.ndarray:
    """The VM's 24-hour shape (multipliers per hour of the day), normalised to mean 1."""
    raw = vm.churn.profile
    if raw is None:
        values = np.ones(24)
    elif isinstance(raw, str):
        values = np.array(PROFILES[raw], dtype=float)
    else:
        values = np.array(raw, dtype=float)
    # scaled first by a power of two (exact: the shape is unchanged to the last bit) to at most 1, so the mean of
    # multipliers near 1e308 does not overflow
    values = np.ldexp(values, -math.frexp(float(values.max()))[1])
    return values / values.mean()


def base_rate(vm: VM) -> float:
    """Mean write rate on a weekday, bytes/s, before the profile shape."""
    c = vm.churn
    return c.daily * vm.disk_size / DAY if c.daily is not None else float(c.rate)


def mean_rate(scenario: Scenario, vm: VM) -> float:
    """Long-run mean write rate of a VM in bytes/s (weekends and profile included; variation has mean 1)."""
    c = vm.churn
    if c.trace is not None:
        _, b, period = load_trace(scenario.trace_path(c.trace), c.trace)
        if not c.trace.repeat and scenario.duration > period:
            return float(b.sum() / scenario.duration)  # writes stop when the trace ends
        return float(b.sum() / period)
    return base_rate(vm) * (5 + 2 * c.weekend) / 7
