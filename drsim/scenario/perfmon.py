"""Performance-counter logs as Windows writes them: the PDH-CSV 4.0 format of ``typeperf`` and ``relog -f csv``.

The first cell of the header is ``(PDH-CSV 4.0) (<time zone>)(<bias in minutes>)``, the other header cells are
counter paths such as ``\\\\HV01\\PhysicalDisk(1 D:)\\Disk Write Bytes/sec`` or ``\\\\HV01\\Hyper-V Virtual Storage
Device(D:-VMs-sql01.vhdx)\\Write Bytes/sec``; each row is a timestamp in the logging machine's **local time**
(``MM/DD/YYYY HH:MM:SS.mmm``) and one value per counter, blank or ``" "`` for a missing sample. A rate counter's
value at a timestamp is its average over the interval since the row before (PDH computes a rate from two raw
samples; Microsoft, "Collecting Performance Data", Win32 documentation, 2018-05-31), so the first row's values
describe time before the log and are not used.

:func:`read_counter_log` reads such a file (any encoding, separator and decimal mark :mod:`drsim.scenario.csvtext`
reads) into elapsed seconds and a matrix of values. Local timestamps are turned into elapsed time exactly when the
log's time zone is given (an IANA name such as ``Europe/Berlin``); without it, a clock going back one hour is read
as the end of daylight saving time (it can be nothing else), and a clock jumping forward by one hour more than the
sample interval is refused, because it may be the start of daylight saving time or an hour without samples.
Imports only :mod:`drsim.scenario.csvtext` and :mod:`drsim.scenario.units`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from drsim.scenario.csvtext import CsvTextError, read_rows
from drsim.scenario.units import format_duration

__all__ = ["CounterLog", "CounterLogError", "read_counter_log", "is_counter_log", "check_timezone"]

_HEADER = re.compile(r"^\ufeff?\(PDH-CSV 4\.0\)\s*(?:\((?P<zone>.*)\)\s*\((?P<bias>[-+]?\d+)\))?\s*$")
# Timestamp layouts, tried in this order. PDH-CSV writes month first; a spreadsheet may have rewritten it.
_FORMATS = ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S.%f",
            "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",
            "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M")
HOUR = 3600.0


class CounterLogError(ValueError):
    """A counter log that cannot be read; the message names the file and the line, and says what to do."""


@dataclass(eq=False)  # compared and hashed by identity: one object per file read (cached)
class CounterLog:
    """A counter log read into numbers.

    ``elapsed`` holds the seconds of each row from the first (daylight-saving changes taken out), ``local`` the
    timestamps as written (site local time, naive), ``values`` one column per counter (NaN for a missing sample),
    ``lines`` each row's line in the file. ``notes`` say what was read in a way worth knowing (a daylight-saving
    change)."""

    path: Path
    zone: str | None
    bias_min: int | None
    columns: list[str]
    elapsed: np.ndarray
    local: pd.DatetimeIndex
    values: np.ndarray
    lines: np.ndarray
    encoding: str
    delimiter: str
    notes: list[str] = field(default_factory=list)

    @property
    def interval(self) -> float:
        """The typical sample interval in seconds (the median step)."""
        return float(np.median(np.diff(self.elapsed)))

    def where(self, row: int) -> str:
        """``counter log FILE, line N`` for a row index."""
        return f"counter log {self.path}, line {int(self.lines[row])}"

    def when(self, row: int) -> str:
        """A row's local timestamp as text."""
        return self.local[row].strftime("%Y-%m-%d %H:%M:%S")


def is_counter_log(path: str | Path) -> bool:
    """Whether a file starts like a PDH-CSV counter log (whatever its encoding)."""
    try:
        with open(path, "rb") as f:  # the first bytes only: never the whole of a large or endless file
            head = f.read(512)
    except OSError:
        return False
    for codec in ("utf-8-sig", "utf-16"):
        try:
            text = head.decode(codec, errors="ignore")
        except LookupError:  # pragma: no cover - both codecs exist
            continue
        if "PDH-CSV" in text[:80]:
            return True
    return False


def check_timezone(name: str) -> str | None:
    """A problem with a time-zone name, or None if it is a known IANA zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return (f"unknown time zone {name!r}: give the IANA name of the zone the log was written in, e.g. "
                "Europe/Berlin or America/New_York")
    return None


def read_counter_log(path: str | Path, timezone: str | None = None) -> CounterLog:
    """Read a PDH-CSV counter log. ``timezone`` (an IANA name) is the zone its local timestamps are in; without
    it, daylight-saving changes are found from the timestamps (see the module). Raises
    :class:`CounterLogError`."""
    p = Path(path)
    if not p.is_file():
        raise CounterLogError(f"counter log {p} not found")
    return _read_cached(str(p.resolve()), p.stat().st_mtime, timezone)


@lru_cache(maxsize=16)
def _read_cached(path: str, mtime: float, timezone: str | None) -> CounterLog:
    p = Path(path)
    what = f"counter log {p}"
    try:
        table = read_rows(p, what)
    except CsvTextError as exc:
        raise CounterLogError(str(exc)) from None
    m = _HEADER.match(table.header[0].strip())
    if not m:
        raise CounterLogError(
            f"{what}, line {table.header_line}: not a performance-counter log: its first cell should start with "
            f"'(PDH-CSV 4.0)' as typeperf -f CSV and relog -f csv write it, got {table.header[0][:60]!r}")
    columns = [c.strip() for c in table.header[1:]]
    if not columns:
        raise CounterLogError(f"{what}, line {table.header_line}: the log has no counter columns")
    if len(table.rows) < 3:
        raise CounterLogError(f"{what}: needs at least three rows of samples, got {len(table.rows)}")
    width = len(table.header)
    for cells, line in zip(table.rows, table.lines, strict=True):
        if len(cells) != width:
            raise CounterLogError(
                f"{what}, line {line}: {len(cells)} cells where the header has {width}"
                + (" (a decimal comma in a comma-separated file? quote the numbers or separate with ';')"
                   if len(cells) > width and table.delimiter == "," else ""))
    lines = np.array(table.lines)
    local = _timestamps([r[0] for r in table.rows], lines, what)
    values = _values(table.rows, lines, what, columns)
    notes = []
    elapsed, dst_notes = (_elapsed_in_zone(local, lines, timezone, what) if timezone
                          else _elapsed_local(local, lines, what))
    notes.extend(dst_notes)
    bias = int(m.group("bias")) if m.group("bias") is not None else None
    return CounterLog(p, m.group("zone"), bias, columns, elapsed, local, values, lines, table.encoding,
                      table.delimiter, notes)


def _timestamps(cells: list[str], lines: np.ndarray, what: str) -> pd.DatetimeIndex:
    """Parse every timestamp with one layout; month-first and day-first are told apart by the values (a field
    above 12) or, for a log that fits both, by which one gives regular steps."""
    texts = pd.Series([c.strip() for c in cells])
    head = texts.iloc[:50]
    candidates = []
    for fmt in _FORMATS:
        if not pd.to_datetime(head, format=fmt, errors="coerce").notna().all():
            continue  # the first rows decide which layouts are worth parsing the whole log with
        parsed = pd.to_datetime(texts, format=fmt, errors="coerce")
        if parsed.notna().all():
            steps = np.diff(parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64))
            candidates.append((float(np.abs(steps).max()) if len(steps) else 0.0, fmt, parsed))
    if not candidates:
        best = max(_FORMATS, key=lambda f: pd.to_datetime(texts, format=f, errors="coerce").notna().sum())
        parsed = pd.to_datetime(texts, format=best, errors="coerce")
        i = int(np.argmax(parsed.isna().to_numpy())) if parsed.notna().any() else 0
        raise CounterLogError(f"{what}, line {lines[i]}: timestamp {cells[i].strip()!r} is not a date and time like "
                              "'03/02/2026 08:00:00.000' (month/day/year, as typeperf writes it)")
    candidates.sort(key=lambda c: c[0])  # the most regular reading
    return pd.DatetimeIndex(candidates[0][2])


def _values(rows: list[list[str]], lines: np.ndarray, what: str, columns: list[str]) -> np.ndarray:
    """The samples as numbers (NaN where blank), with the file's decimal mark."""
    n, k = len(rows), len(columns)
    cells = [c for r in rows for c in r[1:]]
    joined = "\x00".join(cells)
    if "," in joined and "." in joined:
        i = next((j for j, c in enumerate(cells) if "," in c and "." in c), None)  # a number with both marks,
        if i is None:  # or the later of the first with each
            i = max(next(j for j, c in enumerate(cells) if "," in c), next(j for j, c in enumerate(cells) if "." in c))
        raise CounterLogError(
            f"{what}, line {lines[i // k]}: numbers such as {cells[i].strip()!r} mix ',' and '.': drsim cannot tell "
            "the decimal mark from a thousands separator; export the log again with relog -f csv (plain numbers "
            "with a decimal point)")
    if "," in joined:
        cells = joined.replace(",", ".").split("\x00")
    numbers = pd.to_numeric(np.array(cells, dtype=object), errors="coerce").astype(float)
    for i in np.flatnonzero(~np.isfinite(numbers)):
        if cells[i].strip():
            raise CounterLogError(f"{what}, line {lines[i // k]}, column {columns[i % k]!r}: {cells[i].strip()!r} is "
                                  "not a number (a missing sample is blank or ' ')")
        numbers[i] = np.nan
    return numbers.reshape(n, k)


def _elapsed_local(local: pd.DatetimeIndex, lines: np.ndarray, what: str) -> tuple[np.ndarray, list[str]]:
    """Seconds from the first row, reading a one-hour step back as the end of daylight saving time."""
    t = (local - local[0]).total_seconds().to_numpy(dtype=float)
    steps = np.diff(t)
    positive = steps[steps > 0]
    if not len(positive):
        raise CounterLogError(f"{what}: the timestamps do not advance")
    interval = float(np.median(positive))
    tol = max(2.0, 0.5 * interval)
    back = steps <= 0
    forward = (np.abs(steps - HOUR - interval) <= tol) & (steps > 2 * interval)
    shift = np.zeros_like(t)
    notes = []
    for i in np.flatnonzero(back | forward) + 1:
        before, after = f"{local[i - 1]:%Y-%m-%d %H:%M:%S}", f"{local[i]:%H:%M:%S}"
        if back[i - 1]:
            if abs(steps[i - 1] + HOUR - interval) <= tol:
                shift[i:] += HOUR
                notes.append(f"line {lines[i]}: the clock goes back one hour ({before} to {after}): read as the end "
                             "of daylight saving time, one sample interval later")
                continue
            raise CounterLogError(
                f"{what}, line {lines[i]}: timestamp {local[i]:%Y-%m-%d %H:%M:%S} is not after the one before "
                f"({before}): timestamps must increase (a clock going back by exactly one hour, at the end of "
                "daylight saving time, is understood)")
        raise CounterLogError(
            f"{what}, line {lines[i]}: the clock jumps from {before} to {after}, one hour more than the "
            f"{format_duration(interval)} between samples: daylight saving time began, or the log has an hour "
            "without samples. Give the time zone the log was written in (timezone: Europe/Berlin in the "
            "trace, or --timezone for drsim trace) so drsim reads the local times exactly")
    return t + shift, notes


def _elapsed_in_zone(local: pd.DatetimeIndex, lines: np.ndarray, zone_name: str,
                     what: str) -> tuple[np.ndarray, list[str]]:
    """Seconds from the first row, converting local times in ``zone_name`` to UTC. A time in the hour repeated when
    daylight saving time ends is taken at its first occurrence until the clock has gone back."""
    problem = check_timezone(zone_name)
    if problem:
        raise CounterLogError(f"{what}: {problem}")
    zone = ZoneInfo(zone_name)
    for i in np.flatnonzero(local.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").isna()):
        if not _exists(local[i].to_pydatetime().replace(tzinfo=zone)):
            raise CounterLogError(
                f"{what}, line {lines[i]}: {local[i]:%Y-%m-%d %H:%M:%S} does not exist in {zone_name} (the clocks "
                "skip that hour when daylight saving time begins): is the log's time zone right?")
    try:
        aware = local.tz_localize(zone, ambiguous="infer")
        t = (aware - aware[0]).total_seconds().to_numpy(dtype=float)
    except Exception:  # noqa: BLE001 - pandas cannot infer the repeated hour from the order (pytz's or a ValueError)
        t = _elapsed_row_by_row(local, zone)
    bad = np.flatnonzero(np.diff(t) <= 0)
    if len(bad):
        i = int(bad[0]) + 1
        raise CounterLogError(f"{what}, line {lines[i]}: timestamp {local[i]:%Y-%m-%d %H:%M:%S} is not after the one "
                              f"before in {zone_name}: timestamps must increase")
    notes = [f"line {lines[i]}: {local[i]:%Y-%m-%d %H:%M:%S} is in the hour repeated when daylight saving time ends "
             f"in {zone_name}: read as its second occurrence" for i in np.flatnonzero(np.diff(local.asi8) < 0) + 1]
    return t, notes


def _elapsed_row_by_row(local: pd.DatetimeIndex, zone: ZoneInfo) -> np.ndarray:
    """Seconds from the first row: each local time at its first occurrence, or its second when the first would not
    come after the row before."""
    utc_zone = ZoneInfo("UTC")
    out: list[datetime] = []
    for x in local.to_pydatetime():
        u = x.replace(tzinfo=zone, fold=0).astimezone(utc_zone)
        if out and u <= out[-1]:
            u = x.replace(tzinfo=zone, fold=1).astimezone(utc_zone)
        out.append(u)
    return np.array([(u - out[0]).total_seconds() for u in out])


def _exists(aware: datetime) -> bool:
    """Whether a zone-aware local time exists (is not in the hour skipped when clocks go forward)."""
    back = aware.astimezone(ZoneInfo("UTC")).astimezone(aware.tzinfo)
    return back.replace(tzinfo=None) == aware.replace(tzinfo=None)
