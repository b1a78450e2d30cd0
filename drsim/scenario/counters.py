"""Churn from a performance-counter log: the columns of a VM, their gaps, a fixed step, the rewrite factor.

A VM's write rate is the sum of the counter columns chosen for it by pattern (one per virtual disk, or one per
physical volume that holds only its disks). A write counter such as ``Disk Write Bytes/sec`` measures **write
throughput**: every byte written counts, also a block written again within the same interval. Replication ships
a changed block once per cycle, so write throughput overstates churn when blocks are rewritten; ``rewrite`` scales
the bytes by the share assumed new (``1``: every byte written is replicated, the model's assumption).

:func:`counter_trace` turns the chosen columns into the replayed-trace form of :mod:`drsim.scenario.churn`
(start times from 0, bytes per step, the period): a sample covers the interval since the row before; missing
samples are filled by linear interpolation of the rate when the gap is at most ``max_gap`` and refused when
longer; the bytes are then summed over a fixed ``step`` exactly (the rate is constant within a sample interval).
Imports only :mod:`drsim.scenario.perfmon`, :mod:`drsim.scenario.csvtext` and :mod:`drsim.scenario.units`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from drsim.scenario.csvtext import SEPARATORS
from drsim.scenario.perfmon import CounterLog, CounterLogError, check_timezone, read_counter_log
from drsim.scenario.units import format_duration

__all__ = ["CounterTrace", "counter_trace", "match_columns", "DEFAULT_MAX_GAP", "MIN_STEP", "default_step",
           "trace_problem", "COUNTER_KEYS", "log_text", "trace_text", "write_trace_csv"]

#: Longest run of missing samples filled by interpolation [15 min: an assumption, three 5-minute replication
#: cycles; longer gaps are refused so that an outage of the logger is not silently invented as writes].
DEFAULT_MAX_GAP = 900.0
#: The default step is the log's sample interval, but not below one minute [the vendor's deployment planner keeps
#: per-minute averages of the 15-second samples it takes; Site Recovery Deployment Planner documentation].
MIN_STEP = 60.0


@dataclass
class CounterTrace:
    """The write trace of one VM from a counter log: ``starts`` (s from 0), ``bytes`` per step, the ``period``
    (s), the ``columns`` used, the ``step`` (s), and ``notes`` on gaps and daylight saving worth a warning."""

    starts: np.ndarray
    bytes: np.ndarray
    period: float
    step: float
    columns: list[str]
    first: str
    notes: list[str] = field(default_factory=list)

    @property
    def mean_rate(self) -> float:
        """Mean write rate over the trace, bytes/s."""
        return float(self.bytes.sum() / self.period)


def _glob(pattern: str) -> re.Pattern[str]:
    """A counter-path pattern: ``*`` any run of characters, ``?`` one character, everything else literal; letter
    case ignored (Windows counter paths are case-insensitive). A pattern that starts with a single backslash
    matches after the ``\\\\computer`` part, so it fits the counter on any computer."""
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern.strip())
    if pattern.strip().startswith("\\") and not pattern.strip().startswith("\\\\"):
        body = r"(?:\\\\[^\\]*)?" + body
    return re.compile(body, re.IGNORECASE | re.DOTALL)


def match_columns(columns: Sequence[str], patterns: Sequence[str], what: str) -> list[int]:
    """The indices of the columns matched by any of ``patterns`` (each must match at least one), in log order.
    Raises :class:`CounterLogError` naming the pattern and the nearest columns."""
    chosen: set[int] = set()
    for pattern in patterns:
        rx = _glob(pattern)
        hits = [i for i, c in enumerate(columns) if rx.fullmatch(c)]
        if not hits:
            counter = pattern.strip().rsplit("\\", 1)[-1]
            same = [c for c in columns if c.lower().endswith("\\" + counter.lower())] if counter else []
            near = same[:4] or difflib.get_close_matches(pattern, list(columns), n=3, cutoff=0.3)
            hint = ("; columns with that counter: " if same else "; nearest columns: ") + ", ".join(
                repr(c) for c in near) if near else ""
            raise CounterLogError(f"{what}: no column matches {pattern!r}{hint}. Use * for any text (e.g. "
                                  r"'\\*\PhysicalDisk(*D:)\Disk Write Bytes/sec'); 'drsim trace FILE' lists the "
                                  "columns")
        chosen.update(hits)
    return sorted(chosen)


def default_step(log: CounterLog) -> float:
    """The step a trace is resampled to when none is given: the log's sample interval, at least a minute."""
    return max(MIN_STEP, round(log.interval))


def counter_trace(path: str, columns: Sequence[str], step: float | None = None, rewrite: float = 1.0,
                  max_gap: float | None = None, timezone: str | None = None) -> CounterTrace:
    """The write trace of the columns matched by ``columns`` (patterns, summed), resampled to ``step`` seconds
    (default :func:`default_step`), scaled by ``rewrite``. Gaps up to ``max_gap`` seconds (default
    :data:`DEFAULT_MAX_GAP`) are filled by linear interpolation of the rate. Raises :class:`CounterLogError`.
    The result is kept for the same file (and modification time) and arguments; its arrays are read-only."""
    log = read_counter_log(path, timezone)
    return _counter_trace(log, tuple(columns), step, float(rewrite), max_gap)


@lru_cache(maxsize=64)
def _counter_trace(log: CounterLog, columns: tuple[str, ...], step: float | None, rewrite: float,
                   max_gap: float | None) -> CounterTrace:
    what = f"counter log {log.path}"
    idx = match_columns(log.columns, columns, what)
    max_gap = DEFAULT_MAX_GAP if max_gap is None else float(max_gap)
    values = log.values[:, idx]
    t = log.elapsed
    lo, hi, notes = _usable_span(log, values, idx)
    t, values = t[lo:hi + 1], values[lo:hi + 1]
    negative = np.argwhere(values[1:] < 0)
    if len(negative):
        i, j = negative[0]
        raise CounterLogError(f"{log.where(lo + 1 + i)}, column {log.columns[idx[j]]!r}: a write rate cannot be "
                              f"negative, got {values[1 + i, j]:g}")
    filled = _fill_gaps(log, t, values, idx, lo, max_gap, notes)
    rates = filled[1:].sum(axis=1)  # bytes/s over (t[i-1], t[i]]
    cumulative = np.concatenate(([0.0], np.cumsum(rates * np.diff(t))))
    step = float(step) if step is not None else default_step(log)
    n = int(np.floor((t[-1] - t[0]) / step + 1e-9))
    if n < 2:
        raise CounterLogError(f"{what}: the usable part of the log ({format_duration(t[-1] - t[0])}) holds fewer than "
                              f"two steps of {format_duration(step)}: give a shorter step or a longer log")
    grid = t[0] + step * np.arange(n + 1)
    per_step = np.diff(np.interp(grid, t, cumulative)) * float(rewrite)
    dropped = t[-1] - grid[-1]
    if dropped > 1e-6:
        notes.append(f"the last {format_duration(dropped)} of the log, less than one step of {format_duration(step)}, "
                     "is left out")
    starts = step * np.arange(n)
    starts.setflags(write=False)
    per_step.setflags(write=False)
    return CounterTrace(starts, per_step, n * step, step, [log.columns[i] for i in idx], log.when(lo),
                        [*log.notes, *notes])


def _usable_span(log: CounterLog, values: np.ndarray, idx: list[int]) -> tuple[int, int, list[str]]:
    """The rows from the first whose successor has every chosen column (a sample describes the interval since the
    row before, so the first row's values are not used) to the last row with every chosen column."""
    complete = ~np.isnan(values).any(axis=1)
    complete[0] = False  # row 0's values cover time before the log
    if not complete.any():
        empty = [log.columns[i] for i, j in zip(idx, range(values.shape[1]), strict=True)
                 if np.isnan(values[1:, j]).all()]
        raise CounterLogError(f"counter log {log.path}: no row has a sample in every chosen column"
                              + (f" (no samples at all in {', '.join(map(repr, empty))})" if empty else ""))
    first = int(np.argmax(complete))
    last = len(complete) - 1 - int(np.argmax(complete[::-1]))
    lo = first - 1
    notes = []
    if lo > 0:
        notes.append(f"the log starts with {lo} row{'s' if lo > 1 else ''} without every chosen column: the trace "
                     f"starts at {log.when(lo)} ({log.where(lo)})")
    if last < len(complete) - 1:
        k = len(complete) - 1 - last
        notes.append(f"the log ends with {k} row{'s' if k > 1 else ''} without every chosen column: the trace ends at "
                     f"{log.when(last)} ({log.where(last)})")
    if last - lo < 2:
        raise CounterLogError(f"counter log {log.path}: fewer than two samples in every chosen column")
    return lo, last, notes


def _fill_gaps(log: CounterLog, t: np.ndarray, values: np.ndarray, idx: list[int], lo: int, max_gap: float,
               notes: list[str]) -> np.ndarray:
    """Fill missing samples by interpolating the rate in time; refuse a gap longer than ``max_gap``. A step
    between rows much longer than the sample interval is a gap too (its sample averages the whole step)."""
    out = values.copy()
    interval = log.interval
    filled_count, longest = 0, 0.0
    for j in range(values.shape[1]):
        col = values[:, j]
        missing = np.isnan(col)
        missing[0] = False  # not used
        if not missing.any():
            continue
        edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
        firsts, lasts = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1  # runs of missing samples
        gaps = t[lasts] - t[firsts - 1]  # samples i..k cover (t[i-1], t[k]]
        if (gaps > max_gap + 1e-9).any():
            r = int(np.argmax(gaps > max_gap + 1e-9))
            i, k = int(firsts[r]), int(lasts[r])
            raise CounterLogError(
                f"{log.where(lo + i)} to line {int(log.lines[lo + k])}, column {log.columns[idx[j]]!r}: no "
                f"samples from {log.when(lo + i - 1)} to {log.when(lo + k)} ({format_duration(gaps[r])}), longer "
                f"than max_gap ({format_duration(max_gap)}). Cut the log around the gap (relog FILE -b/-e), or raise "
                "max_gap to fill it by interpolation")
        filled_count += int(missing.sum())
        longest = max(longest, float(gaps.max()))
        valid = ~np.isnan(col)
        out[missing, j] = np.interp(t[missing], t[valid], col[valid])
    long_steps = np.flatnonzero(np.diff(t) > 1.5 * interval) + 1
    for i in long_steps:
        gap = t[i] - t[i - 1]
        if gap > max_gap + 1e-9:
            raise CounterLogError(
                f"{log.where(lo + i)}: no rows from {log.when(lo + i - 1)} to {log.when(lo + i)} "
                f"({format_duration(gap)}), longer than max_gap ({format_duration(max_gap)}). Cut the log around the "
                "gap (relog FILE -b/-e), "
                "or raise max_gap to spread that row's rate over the whole gap")
        longest = max(longest, gap)
    if filled_count or len(long_steps):
        parts = []
        if filled_count:
            parts.append(f"{filled_count} missing sample{'s' if filled_count > 1 else ''} filled by interpolation")
        if len(long_steps):
            parts.append(f"{len(long_steps)} longer step{'s' if len(long_steps) > 1 else ''} between rows read as "
                         "the rate of the row after it")
        notes.append(", ".join(parts) + f" (longest gap {format_duration(longest)})")
    return out


#: The trace keys that apply only to a counter log (``format: perfmon``).
COUNTER_KEYS = ("columns", "step", "max_gap", "timezone")


def trace_problem(trace: Any) -> str | None:
    """What is wrong with a churn trace's keys taken together (a ``Trace`` of the scenario), or None."""
    if trace.format != "perfmon":
        given = [k for k in COUNTER_KEYS if getattr(trace, k) is not None]
        if given:
            return (f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to a performance-counter log: add "
                    "format: perfmon")
        return None
    patterns = [trace.columns] if isinstance(trace.columns, str) else trace.columns
    if not patterns or not all(isinstance(p, str) and p.strip() for p in patterns):
        return ("a counter log needs columns: the counter paths of the VM's writes, e.g. columns: "
                r"'\\*\PhysicalDisk(*D:)\Disk Write Bytes/sec' ('drsim trace FILE' lists the log's columns)")
    if trace.timezone is not None:
        return check_timezone(trace.timezone)
    return None


def log_text(log: CounterLog) -> str:
    """What ``drsim trace FILE`` prints: the log in brief and one line per counter column (samples, missing, mean
    and highest value; bytes/s counters also in MB/s)."""
    n = len(log.elapsed)
    head = [f"{log.path}: {n} rows from {log.when(0)} to {log.when(n - 1)} (local time"
            + (f", {log.zone}" if log.zone else "") + f"), a sample every {format_duration(log.interval)}",
            f"read as {log.encoding}, separated by {SEPARATORS.get(log.delimiter, repr(log.delimiter))}", ""]
    rows = [("#", "counter", "samples", "missing", "mean", "max")]
    for j, name in enumerate(log.columns):
        col = log.values[1:, j]
        ok = col[~np.isnan(col)]
        rate = name.lower().endswith("bytes/sec")

        def show(v: float, rate: bool = rate) -> str:
            return "-" if not np.isfinite(v) else f"{v / 1e6:.3f} MB/s" if rate else f"{v:.4g}"

        rows.append((str(j + 1), name, str(len(ok)), str(len(col) - len(ok)),
                     show(float(ok.mean()) if len(ok) else np.nan), show(float(ok.max()) if len(ok) else np.nan)))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    body = ["  ".join(c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows]
    notes = [f"note: {x}" for x in log.notes]
    return "\n".join(head + body + notes + ["", "The first row's values cover time before the log and are not used. "
                                            "Choose a VM's columns with --columns PATTERN (* for any text)."])


def trace_text(c: CounterTrace, file: str, patterns: Sequence[str]) -> str:
    """What ``drsim trace FILE --columns ...`` prints about a VM's trace, and the churn section that replays it."""
    daily = c.mean_rate * 86400
    k = 3600 / c.step  # steps per hour: the busiest whole hour when steps divide it
    per_hour = None
    if k == int(k) and len(c.bytes) >= k:
        whole = len(c.bytes) // int(k) * int(k)
        per_hour = c.bytes[:whole].reshape(-1, int(k)).sum(axis=1)
    lines = [f"columns ({len(c.columns)}, summed):", *(f"  {x}" for x in c.columns),
             f"trace: {len(c.bytes)} steps of {format_duration(c.step)} from {c.first} (local time), "
             f"{format_duration(c.period)}",
             f"mean write rate {c.mean_rate / 1e6:.3f} MB/s ({daily / 1e9:.3g} GB a day), busiest step "
             f"{c.bytes.max() / c.step / 1e6:.3f} MB/s"
             + (f", busiest hour {per_hour.max() / 3600 / 1e6:.3f} MB/s" if per_hour is not None else "")]
    lines += [f"note: {x}" for x in c.notes]
    quoted = ", ".join("'" + x.replace("'", "''") + "'" for x in patterns)
    lines += ["", "In a scenario (the file's path relative to the scenario file):",
              f"  churn: {{trace: {{file: {file}, format: perfmon, columns: [{quoted}]}}}}"]
    return "\n".join(lines)


def write_trace_csv(c: CounterTrace, path: str) -> None:
    """Write the trace as a plain ``timestamp,bytes`` CSV (seconds from the first sample; bytes per step)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("timestamp,bytes\n")
        for t, b in zip(c.starts, c.bytes, strict=True):
            f.write(f"{t:g},{f'{b:.3f}'.rstrip('0').rstrip('.')}\n")
