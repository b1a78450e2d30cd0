"""Performance-counter logs (PDH-CSV) as churn: reading them as Windows and spreadsheets write them, the columns of
a VM, gaps, daylight saving, the step and the rewrite factor; each bad input read right or refused with its line."""

from __future__ import annotations

import codecs
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from drsim.scenario.counters import counter_trace, default_step, match_columns
from drsim.scenario.perfmon import CounterLogError, read_counter_log

DISK_D = r"\\HV01\PhysicalDisk(1 D:)\Disk Write Bytes/sec"
DISK_E = r"\\HV01\PhysicalDisk(2 E:)\Disk Write Bytes/sec"
HEADER = "(PDH-CSV 4.0) (W. Europe Standard Time)(-60)"


def write_log(path: Path, times: list[datetime], columns: dict[str, list[object]], *, sep: str = ",",
              decimal: str = ".", encoding: str = "utf-8", bom: bytes = b"", header: str = HEADER) -> Path:
    """A counter log as typeperf writes it: every cell quoted, CRLF, MM/DD/YYYY HH:MM:SS.mmm local timestamps.
    A value None is written as ' ' (a missing sample); a string is written as it is."""
    lines = [sep.join(f'"{c}"' for c in [header, *columns])]
    for i, t in enumerate(times):
        cells = [f"{t:%m/%d/%Y %H:%M:%S}.{t.microsecond // 1000:03d}"]
        for values in columns.values():
            v = values[i]
            cells.append(" " if v is None else v if isinstance(v, str) else f"{v:.6f}".replace(".", decimal))
        lines.append(sep.join(f'"{c}"' for c in cells))
    path.write_bytes(bom + ("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def minutes(n: int, start: datetime = datetime(2026, 3, 2, 8, 0), step: float = 60) -> list[datetime]:
    return [start + timedelta(seconds=step * i) for i in range(n)]


def test_constant_columns_give_exact_bytes_per_step(tmp_path):
    """Two disks at 1000 and 500 bytes/s, sampled every minute for an hour: 5-minute steps of 1500 * 300 bytes.
    The first row's values (here absurd) are not used: they cover time before the log."""
    times = minutes(61)
    log = write_log(tmp_path / "log.csv", times, {DISK_D: [9e9] + [1000.0] * 60, DISK_E: [9e9] + [500.0] * 60})
    c = counter_trace(str(log), [r"\\HV01\PhysicalDisk(*)\Disk Write Bytes/sec"], step=300)
    assert c.step == 300 and c.period == 3600 and len(c.bytes) == 12
    np.testing.assert_allclose(c.starts, np.arange(12) * 300.0)
    np.testing.assert_allclose(c.bytes, 1500.0 * 300, rtol=1e-12)
    assert c.columns == [DISK_D, DISK_E] and c.first == "2026-03-02 08:00:00" and c.notes == []


def test_resampling_keeps_the_bytes_of_varying_rates(tmp_path):
    """Sample i (i >= 1) is the mean rate over (t[i-1], t[i]]: a 7-minute step gets exactly the bytes of the
    minutes it covers; the part of the log after the last whole step is left out and said so."""
    rates = [0.0] + [float(100 * i) for i in range(1, 61)]
    log = write_log(tmp_path / "log.csv", minutes(61), {DISK_D: rates})
    c = counter_trace(str(log), [DISK_D], step=420)
    per_minute = np.array(rates[1:]) * 60
    expected = per_minute[: 8 * 7].reshape(8, 7).sum(axis=1)
    np.testing.assert_allclose(c.bytes, expected, rtol=1e-12)
    assert any("the last 4 min of the log" in n for n in c.notes)


def test_rewrite_factor_scales_the_bytes(tmp_path):
    log = write_log(tmp_path / "log.csv", minutes(11), {DISK_D: [1000.0] * 11})
    full = counter_trace(str(log), [DISK_D], step=60)
    part = counter_trace(str(log), [DISK_D], step=60, rewrite=0.7)
    np.testing.assert_allclose(part.bytes, 0.7 * full.bytes, rtol=1e-12)
    assert full.mean_rate == pytest.approx(1000.0, rel=1e-12)


def test_default_step_is_the_interval_but_at_least_a_minute(tmp_path):
    fast = read_counter_log(write_log(tmp_path / "a.csv", minutes(10, step=15), {DISK_D: [1.0] * 10}))
    slow = read_counter_log(write_log(tmp_path / "b.csv", minutes(10, step=300), {DISK_D: [1.0] * 10}))
    assert default_step(fast) == 60 and default_step(slow) == 300


def test_patterns_match_any_host_and_any_case(tmp_path):
    log = read_counter_log(write_log(tmp_path / "log.csv", minutes(5), {DISK_D: [1.0] * 5, DISK_E: [1.0] * 5,
                                                                        r"\\HV01\Memory\Available MBytes": [1.0] * 5}))
    assert match_columns(log.columns, [r"\physicaldisk(*)\disk write bytes/sec"], "x") == [0, 1]
    assert match_columns(log.columns, [r"\\*\PhysicalDisk(? E:)\*"], "x") == [1]
    assert match_columns(log.columns, [DISK_E, DISK_E, DISK_D], "x") == [0, 1]  # each column once, log order


def test_a_pattern_that_matches_nothing_is_refused_with_the_nearest_columns(tmp_path):
    path = write_log(tmp_path / "log.csv", minutes(5), {DISK_D: [1.0] * 5})
    with pytest.raises(CounterLogError) as exc:
        counter_trace(str(path), [r"\\HV01\PhysicalDisk(3 F:)\Disk Write Bytes/sec"])
    text = str(exc.value)
    assert "no column matches" in text and repr(DISK_D) in text and "drsim trace FILE" in text


@pytest.mark.parametrize("encoding,bom", [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
                                          ("utf-8", codecs.BOM_UTF8), ("utf-16-le", b""), ("cp1252", b"")])
def test_encodings_windows_writes_are_read(tmp_path, encoding, bom):
    """UTF-16 with a byte-order mark (what Windows often writes), UTF-8 with one, UTF-16 without, the ANSI code
    page: the same numbers."""
    header = "(PDH-CSV 4.0) (Mitteleuropäische Zeit)(-60)"
    path = write_log(tmp_path / "log.csv", minutes(6), {DISK_D: [250.0] * 6}, encoding=encoding, bom=bom,
                     header=header)
    log = read_counter_log(path)
    assert log.zone == "Mitteleuropäische Zeit" and log.bias_min == -60
    c = counter_trace(str(path), [DISK_D], step=60)
    np.testing.assert_allclose(c.bytes, 250.0 * 60)


@pytest.mark.parametrize("sep,decimal", [(";", ","), ("\t", "."), (",", ","), (";", ".")])
def test_separators_and_decimal_commas_are_read(tmp_path, sep, decimal):
    """Semicolons (a spreadsheet in a German or French locale), tabs (typeperf -f TSV), a decimal comma inside
    quoted cells: the same numbers."""
    path = write_log(tmp_path / "log.csv", minutes(6), {DISK_D: [1234.5] * 6, DISK_E: [0.25] * 6}, sep=sep,
                     decimal=decimal)
    c = counter_trace(str(path), [r"\PhysicalDisk(*)\Disk Write Bytes/sec"], step=60)
    np.testing.assert_allclose(c.bytes, (1234.5 + 0.25) * 60)


def test_thousands_separators_are_refused_with_the_line(tmp_path):
    path = write_log(tmp_path / "log.csv", minutes(6), {DISK_D: [1.0, 2.0, "1,234.5", 4.0, 5.0, 6.0]})
    with pytest.raises(CounterLogError, match=r"log\.csv, line 4: numbers such as '1,234\.5' mix ',' and '\.'"):
        read_counter_log(path)


def test_a_word_where_a_number_belongs_is_refused_with_line_and_column(tmp_path):
    path = write_log(tmp_path / "log.csv", minutes(6), {DISK_D: [1.0, 2.0, 3.0, "n/a", 5.0, 6.0]})
    with pytest.raises(CounterLogError) as exc:
        read_counter_log(path)
    assert "line 5, column " in str(exc.value) and "'n/a' is not a number" in str(exc.value)


def test_missing_samples_are_filled_by_interpolation_and_reported(tmp_path):
    """Blank and ' ' samples: the rate is interpolated linearly in time between the samples around the gap."""
    rates: list[object] = [0.0, 100.0, 200.0, None, "", 500.0, 600.0]
    path = write_log(tmp_path / "log.csv", minutes(7), {DISK_D: rates})
    c = counter_trace(str(path), [DISK_D], step=60)
    np.testing.assert_allclose(c.bytes, np.array([100, 200, 300, 400, 500, 600]) * 60.0)
    assert c.notes == ["2 missing samples filled by interpolation (longest gap 2 min)"]


def test_a_gap_longer_than_max_gap_is_refused_saying_what_to_do(tmp_path):
    rates: list[object] = [0.0, 100.0] + [None] * 20 + [100.0, 100.0]
    path = write_log(tmp_path / "log.csv", minutes(24), {DISK_D: rates})
    with pytest.raises(CounterLogError) as exc:
        counter_trace(str(path), [DISK_D])
    text = str(exc.value)
    assert "line 4 to line 23" in text and "(20 min), longer than max_gap (15 min)" in text
    assert "relog" in text and "raise max_gap" in text
    c = counter_trace(str(path), [DISK_D], step=60, max_gap=3600)
    np.testing.assert_allclose(c.bytes, 100.0 * 60)


def test_missing_rows_are_a_gap_too(tmp_path):
    """A step between rows longer than the interval: the row after it averages the whole step."""
    times = minutes(5) + minutes(5, start=datetime(2026, 3, 2, 8, 9))
    path = write_log(tmp_path / "log.csv", times, {DISK_D: [100.0] * 10})
    c = counter_trace(str(path), [DISK_D], step=60)
    np.testing.assert_allclose(c.bytes, 100.0 * 60)
    assert len(c.bytes) == 13 and "1 longer step between rows" in c.notes[0]
    with pytest.raises(CounterLogError, match="no rows from 2026-03-02 08:04:00 to 2026-03-02 08:09:00"):
        counter_trace(str(path), [DISK_D], max_gap=120)


def test_leading_missing_samples_move_the_start(tmp_path):
    path = write_log(tmp_path / "log.csv", minutes(8), {DISK_D: [None, None, None, 10.0, 10.0, 10.0, 10.0, 10.0]})
    c = counter_trace(str(path), [DISK_D], step=60)
    assert c.first == "2026-03-02 08:02:00" and len(c.bytes) == 5
    assert "the trace starts at 2026-03-02 08:02:00" in c.notes[0]


def test_the_repeated_hour_at_the_end_of_summer_time_is_read_without_a_time_zone(tmp_path):
    """Clocks go back from 03:00 to 02:00 on 25 October 2026 in Berlin: the local timestamps repeat an hour. drsim
    reads the step back as one sample interval: the trace is continuous and holds every byte."""
    utc_minutes = [datetime(2026, 10, 25, 0, 30) + timedelta(minutes=i) for i in range(121)]  # 00:30-02:30 UTC
    local = [t + timedelta(hours=2 if t < datetime(2026, 10, 25, 1, 0) else 1) for t in utc_minutes]
    path = write_log(tmp_path / "log.csv", local, {DISK_D: [50.0] * len(local)})
    log = read_counter_log(path)
    np.testing.assert_allclose(log.elapsed, np.arange(121) * 60.0)
    assert "the clock goes back one hour" in log.notes[0] and "line 32" in log.notes[0]
    c = counter_trace(str(path), [DISK_D], step=60)
    assert c.period == 120 * 60 and c.bytes.sum() == pytest.approx(50.0 * 7200)
    zoned = read_counter_log(path, "Europe/Berlin")
    np.testing.assert_allclose(zoned.elapsed, np.arange(121) * 60.0)
    assert "repeated when daylight saving time ends" in zoned.notes[0]


def test_the_skipped_hour_at_the_start_of_summer_time_needs_the_time_zone(tmp_path):
    """Clocks go forward from 02:00 to 03:00 on 29 March 2026 in Berlin. Without a time zone the jump could as well
    be an hour without samples: refused, saying to give the zone; with it, read exactly."""
    utc_minutes = [datetime(2026, 3, 29, 0, 30) + timedelta(minutes=i) for i in range(61)]  # 00:30-01:30 UTC
    local = [t + timedelta(hours=1 if t < datetime(2026, 3, 29, 1, 0) else 2) for t in utc_minutes]
    path = write_log(tmp_path / "log.csv", local, {DISK_D: [50.0] * len(local)})
    with pytest.raises(CounterLogError) as exc:
        read_counter_log(path)
    text = str(exc.value)
    assert "line 32: the clock jumps from 2026-03-29 01:59:00 to 03:00:00" in text
    assert "timezone: Europe/Berlin" in text
    log = read_counter_log(path, "Europe/Berlin")
    np.testing.assert_allclose(log.elapsed, np.arange(61) * 60.0)
    c = counter_trace(str(path), [DISK_D], step=60, timezone="Europe/Berlin")
    assert c.bytes.sum() == pytest.approx(50.0 * 3600)


def test_a_time_that_does_not_exist_in_the_zone_is_refused(tmp_path):
    local = [datetime(2026, 3, 29, 1, 58), datetime(2026, 3, 29, 1, 59), datetime(2026, 3, 29, 2, 0),
             datetime(2026, 3, 29, 2, 1)]
    path = write_log(tmp_path / "log.csv", local, {DISK_D: [1.0] * 4})
    with pytest.raises(CounterLogError, match=r"line 4: 2026-03-29 02:00:00 does not exist in Europe/Berlin"):
        read_counter_log(path, "Europe/Berlin")


def test_an_unknown_time_zone_is_refused(tmp_path):
    path = write_log(tmp_path / "log.csv", minutes(4), {DISK_D: [1.0] * 4})
    with pytest.raises(CounterLogError, match="unknown time zone 'Mars/Olympus'.*IANA"):
        read_counter_log(path, "Mars/Olympus")


def test_timestamps_that_go_back_otherwise_are_refused(tmp_path):
    times = minutes(5) + [datetime(2026, 3, 2, 8, 0, 30)]
    path = write_log(tmp_path / "log.csv", times, {DISK_D: [1.0] * 6})
    with pytest.raises(CounterLogError, match=r"line 7: timestamp 2026-03-02 08:00:30 is not after"):
        read_counter_log(path)


def test_day_first_dates_from_a_spreadsheet_are_read(tmp_path):
    """A log re-saved by a spreadsheet in a day-first locale: 13/03/2026 can only be day first."""
    times = minutes(4, start=datetime(2026, 3, 13, 23, 58))
    path = tmp_path / "log.csv"
    lines = [f'"{HEADER}";"{DISK_D}"'] + [f"{t:%d/%m/%Y %H:%M:%S};100,0" for t in times]
    path.write_text("\n".join(lines), encoding="utf-8")
    log = read_counter_log(path)
    assert log.local[-1] == datetime(2026, 3, 14, 0, 1)
    np.testing.assert_allclose(log.elapsed, [0, 60, 120, 180])


@pytest.mark.parametrize("text,message", [
    ('"timestamp","bytes"\r\n"0","1"\r\n"1","2"\r\n"2","3"\r\n', "not a performance-counter log"),
    (f'"{HEADER}","{DISK_D}"\r\n"03/02/2026 08:00:00.000","1"\r\n', "needs at least three rows"),
    (f'"{HEADER}","{DISK_D}"\r\n"03/02/2026 08:00:00.000","1"\r\n"03/02/2026 08:01:00.000","1","2"\r\n'
     '"03/02/2026 08:02:00.000","1"\r\n', "line 3: 3 cells where the header has 2"),
    (f'"{HEADER}","{DISK_D}"\r\n"yesterday","1"\r\n"03/02/2026 08:01:00.000","1"\r\n"03/02/2026 08:02:00.000","1"\r\n',
     "line 2: timestamp 'yesterday' is not a date and time"),
    ("", "the file is empty"),
])
def test_broken_logs_are_refused_with_a_located_message(tmp_path, text, message):
    path = tmp_path / "log.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CounterLogError, match=message):
        read_counter_log(path)


def test_a_negative_write_rate_is_refused(tmp_path):
    path = write_log(tmp_path / "log.csv", minutes(5), {DISK_D: [1.0, 1.0, -5.0, 1.0, 1.0]})
    with pytest.raises(CounterLogError, match=r"line 4, column .*: a write rate cannot be negative"):
        counter_trace(str(path), [DISK_D])


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CounterLogError, match="not found"):
        read_counter_log(tmp_path / "nope.csv")


def test_a_log_that_starts_inside_the_repeated_hour_is_read_or_refused_plainly(tmp_path):
    """02:50 to 03:10 on 25 October 2026 in Berlin: the times before 03:00 occur twice and nothing in the log says
    which pass it is. drsim takes the first (summer time), so 03:00 comes 61 minutes after 02:59: a gap it
    refuses with the lines, rather than a guess."""
    local = [datetime(2026, 10, 25, 2, 50) + timedelta(minutes=i) for i in range(21)]
    path = write_log(tmp_path / "log.csv", local, {DISK_D: [1.0] * 21})
    log = read_counter_log(path, "Europe/Berlin")
    assert np.diff(log.elapsed).max() == 3660
    with pytest.raises(CounterLogError, match="no rows from 2026-10-25 02:59:00 to 2026-10-25 03:00:00"):
        counter_trace(str(path), [DISK_D], timezone="Europe/Berlin")
