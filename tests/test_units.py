"""Unit parsing and formatting: exact values, and rejections that say what was expected."""

from __future__ import annotations

import math

import pytest

from drsim.scenario import units
from drsim.scenario.units import (
    DAY,
    HOUR,
    MINUTE,
    WEEK,
    YEAR,
    format_duration,
    format_rate,
    format_size,
    parse_daily_fraction,
    parse_duration,
    parse_fraction,
    parse_rate,
    parse_size,
)

# ----------------------------------------------------------------------------------------------------
# Constants


def test_time_constants():
    assert (MINUTE, HOUR, DAY, WEEK) == (60.0, 3600.0, 86400.0, 604800.0)
    assert YEAR == 365 * 86400.0  # a calendar year, not 365.25 days


# ----------------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("3d", 3 * 86400.0),
        ("1w", 7 * 86400.0),
        ("2y", 2 * 365 * 86400.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("1d12h", 1.5 * 86400.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("5 min", 300.0),
        ("10 seconds", 10.0),
        ("2 hours", 7200.0),
        ("1 week", 604800.0),
        (" 45s ", 45.0),
        ("90", 90.0),  # a bare number in a string is seconds
        ("0", 0.0),
    ],
)
def test_parse_duration_values(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("number", "seconds"), [(90, 90.0), (0, 0.0), (2.5, 2.5)])
def test_parse_duration_bare_numbers_are_seconds(number, seconds):
    result = parse_duration(number)
    assert result == seconds
    assert type(result) is float


def test_parse_duration_keeps_sign():
    # The parser keeps the sign; scenario fields reject negative durations themselves.
    assert parse_duration("-5m") == -300.0


def test_parse_duration_unknown_unit():
    with pytest.raises(ValueError) as exc:
        parse_duration("5 parsecs")
    assert str(exc.value) == "unknown time unit 'parsecs' in '5 parsecs' (use ms, s, m, h, d, w or y)"


def test_parse_duration_is_case_sensitive_about_units():
    # 'M' is not minutes (nor months): refused rather than guessed.
    with pytest.raises(ValueError, match=r"unknown time unit 'M' in '5M'"):
        parse_duration("5M")


@pytest.mark.parametrize("text", ["abc", "", "five minutes", "1,5h", "inf", "nan"])
def test_parse_duration_garbage(text):
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert str(exc.value) == f"expected a duration like '30s', '5m', '2h' or '3d', got {text!r}"


@pytest.mark.parametrize("value", [True, False])
def test_parse_duration_rejects_booleans(value):
    with pytest.raises(ValueError) as exc:
        parse_duration(value)
    assert str(exc.value) == f"expected a duration like '5m', got {value!r}"


@pytest.mark.parametrize("value", [None, [5], {"m": 5}])
def test_parse_duration_rejects_other_types(value):
    with pytest.raises(ValueError, match="expected a duration like '5m'"):
        parse_duration(value)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, "1e400s"])
def test_parse_duration_rejects_non_finite(value):
    with pytest.raises(ValueError) as exc:
        parse_duration(value)
    assert str(exc.value) == f"expected a finite duration, got {value!r}"


@pytest.mark.parametrize(("parser", "what"), [(parse_duration, "duration"), (parse_fraction, "fraction")])
@pytest.mark.parametrize("number", [10**400, -(10**400)])
def test_huge_integers_are_a_value_error(parser, what, number):
    # YAML turns a long run of digits into a Python int, which float() cannot hold; the message shows
    # only the first 27 characters of its 401 or 402, then '...'
    with pytest.raises(ValueError) as exc:
        parser(number)
    shown = repr(number)[:27] + "..."
    assert len(shown) == 30
    assert str(exc.value) == f"{what} {shown} is too large"


@pytest.mark.parametrize("text", ["1h30", "5m3", "1h 30", "30 5m"])
def test_parse_duration_composite_needs_every_unit(text):
    # a bare number is seconds only on its own; inside a composite it is most likely a forgotten unit
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert str(exc.value) == f"a number without a unit in {text!r} (write e.g. '1h30m')"


# ----------------------------------------------------------------------------------------------------
# Sizes


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("127GiB", 127 * 2**30),
        ("500MB", 500e6),
        ("1.5TB", 1.5e12),
        ("1 GB", 1e9),
        ("10KiB", 10 * 1024),
        ("10kB", 10e3),
        ("10KB", 10e3),  # decimal: K and k are both 1000
        ("2MiB", 2 * 2**20),
        ("1TiB", 2**40),
        ("1PB", 1e15),
        ("8Mbit", 1e6),  # bits: 8 Mbit is 1 MB
        ("8Mb", 1e6),
        ("16 bits", 2.0),
        ("100 bytes", 100.0),
        ("100B", 100.0),
    ],
)
def test_parse_size_values(text, nbytes):
    assert parse_size(text) == nbytes


def test_parse_size_zero_needs_no_unit():
    assert parse_size(0) == 0.0


@pytest.mark.parametrize("value", [10, 1.5, 127])
def test_parse_size_bare_number_is_ambiguous(value):
    with pytest.raises(ValueError) as exc:
        parse_size(value)
    assert str(exc.value) == f"a size needs a unit, e.g. '{value}GB' or '{value}GiB', got {value!r}"


@pytest.mark.parametrize("text", ["10", "10XB", "10 gb", "5 GiBs"])
def test_parse_size_unknown_unit(text):
    with pytest.raises(ValueError) as exc:
        parse_size(text)
    unit = text.lstrip("0123456789. ")
    assert str(exc.value) == (f"unknown size unit {unit!r} in {text!r} (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)")


@pytest.mark.parametrize("text", ["abc", "GiB", "", "infGB", "nanGB"])
def test_parse_size_garbage(text):
    with pytest.raises(ValueError) as exc:
        parse_size(text)
    assert str(exc.value) == f"expected a size like '127GiB', got {text!r}"


@pytest.mark.parametrize("value", [True, False, None, ["1GB"]])
def test_parse_size_rejects_booleans_and_other_types(value):
    with pytest.raises(ValueError) as exc:
        parse_size(value)
    assert str(exc.value) == f"expected a size like '127GiB' or '500MB', got {value!r}"


def test_parse_size_rejects_overflow():
    with pytest.raises(ValueError) as exc:
        parse_size("1e400GB")
    assert str(exc.value) == "expected a finite size, got '1e400GB'"


# ----------------------------------------------------------------------------------------------------
# Rates


@pytest.mark.parametrize(
    ("text", "bytes_per_s"),
    [
        ("20Mbit/s", 2.5e6),
        ("20Mbps", 2.5e6),
        ("20 Mbit/s", 2.5e6),
        ("20Mb/s", 2.5e6),
        ("2MB/s", 2e6),
        ("100 kbit/s", 12500.0),
        ("100kbps", 12500.0),
        ("1Gbps", 1.25e8),
        ("1 Gbit/s", 1.25e8),
        ("512 kbit/s", 64000.0),
        ("5 MB/sec", 5e6),
        ("20 Mbit per second", 2.5e6),
        ("1MiB/s", 2**20),
        ("3.6GB/h", 1e6),
        ("86.4GB/day", 1e6),
        ("8640 MB per day", 1e5),
        # spaces around '/' or 'per'
        ("20 Mbit / s", 2.5e6),
        ("20Mbit/ s", 2.5e6),
        ("20 Mbit /s", 2.5e6),
        ("2 MB / sec", 2e6),
        ("86.4 GB / day", 1e6),
        ("3.6 GB / h", 1e6),
        ("20 Mbit per s", 2.5e6),
    ],
)
def test_parse_rate_values(text, bytes_per_s):
    assert parse_rate(text) == pytest.approx(bytes_per_s, rel=1e-12)


@pytest.mark.parametrize("value", [20, 2.5, True, None])
def test_parse_rate_needs_a_unit(value):
    with pytest.raises(ValueError) as exc:
        parse_rate(value)
    assert str(exc.value) == f"a rate needs a unit, e.g. '20Mbit/s' or '2MB/s', got {value!r}"


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("20Mbit", "Mbit"),
        ("20MB", "MB"),
        ("20 Mbit/week", "Mbit/week"),
        ("20 furlongs/s", "furlongs/s"),
    ],
)
def test_parse_rate_unknown_unit(text, unit):
    with pytest.raises(ValueError) as exc:
        parse_rate(text)
    assert str(exc.value) == (f"unknown rate unit {unit!r} in {text!r} (use e.g. kbit/s, Mbit/s, Gbit/s, Mbps, MB/s)")


@pytest.mark.parametrize(("text", "bytes_per_s"),
                         [("3GB/min", 50e6), ("60 MB per minute", 1e6), ("120Mbit/min", 0.25e6)])
def test_parse_rate_per_minute(text, bytes_per_s):
    # the checksum rates are quoted per minute ("a few GB per minute")
    assert parse_rate(text) == pytest.approx(bytes_per_s, rel=1e-12)


def test_parse_rate_without_a_unit_says_it_needs_one():
    for text in ("20", "0"):
        with pytest.raises(ValueError, match=rf"a rate needs a unit, e.g. '20Mbit/s' or '2MB/s', got '{text}'"):
            parse_rate(text)


@pytest.mark.parametrize("text", ["abc", "Mbit/s", "nanMbps"])
def test_parse_rate_garbage(text):
    with pytest.raises(ValueError) as exc:
        parse_rate(text)
    assert str(exc.value) == f"expected a rate like '20Mbit/s', got {text!r}"


def test_parse_rate_rejects_overflow():
    with pytest.raises(ValueError) as exc:
        parse_rate("1e400Mbit/s")
    assert str(exc.value) == "expected a finite rate, got '1e400Mbit/s'"


# ----------------------------------------------------------------------------------------------------
# Fractions


@pytest.mark.parametrize(
    ("value", "fraction"),
    [
        ("3%", 0.03),
        ("3 %", 0.03),
        ("0.5%", 0.005),
        ("100%", 1.0),
        (0.03, 0.03),
        ("0.03", 0.03),
        (0, 0.0),
        (1, 1.0),
    ],
)
def test_parse_fraction_values(value, fraction):
    assert parse_fraction(value) == pytest.approx(fraction, rel=1e-15)


@pytest.mark.parametrize(
    ("value", "fraction"),
    [("3%/day", 0.03), ("3% / day", 0.03), ("3%/d", 0.03), ("3%", 0.03), (0.03, 0.03), ("0.03/day", 0.03)],
)
def test_parse_daily_fraction_values(value, fraction):
    assert parse_daily_fraction(value) == pytest.approx(fraction, rel=1e-15)


@pytest.mark.parametrize("value", ["abc", "3%/week", "3 percent", "nan%", "inf", None])
def test_parse_fraction_garbage(value):
    parser = parse_daily_fraction if isinstance(value, str) and "/" in value else parse_fraction
    with pytest.raises(ValueError) as exc:
        parser(value)
    assert str(exc.value) == f"expected a percentage like '3%' or a fraction like 0.03, got {value!r}"


def test_parse_daily_fraction_names_the_bad_part():
    with pytest.raises(ValueError) as exc:
        parse_daily_fraction("abc/day")
    assert str(exc.value) == "expected a percentage like '3%' or a fraction like 0.03, got 'abc'"


@pytest.mark.parametrize("parser", [parse_fraction, parse_daily_fraction])
def test_parse_fraction_rejects_booleans(parser):
    with pytest.raises(ValueError) as exc:
        parser(True)
    assert str(exc.value) == "expected a percentage like '3%', got True"


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_parse_fraction_rejects_non_finite(value):
    with pytest.raises(ValueError) as exc:
        parse_fraction(value)
    assert str(exc.value) == f"expected a finite fraction, got {value!r}"


# ----------------------------------------------------------------------------------------------------
# Formatting


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (5, "5 s"),
        (5.5, "5.5 s"),
        (45, "45 s"),
        (45.4, "45 s"),
        (59.4, "59 s"),
        (59.6, "1 min"),  # rounds to 60 s, shown as a minute rather than '60 s'
        (-59.6, "-1 min"),
        (60, "1 min"),
        (119.6, "2 min"),
        (250, "4 min 10 s"),
        (3600, "1 h"),
        (7500, "2 h 5 min"),
        (7530, "2 h 5 min"),  # two units at most
        (86400, "1 d"),
        (2 * 86400 + 3 * 3600, "2 d 3 h"),
        (3 * 86400 + 59, "3 d"),  # the second unit (hours) is zero and dropped
        (-90, "-1 min 30 s"),
        (math.inf, "never"),
        (-math.inf, "-inf"),
        (math.nan, "-"),
        (None, "-"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_duration_never_shows_60_s():
    # everything from 59.5 s (which rounds to 60) up to 60.4 s reads as a minute
    assert [format_duration(tenths / 10) for tenths in range(590, 605)] == ["59 s"] * 5 + ["1 min"] * 10


def test_format_duration_precise_keeps_a_decimal_under_a_minute():
    assert format_duration(45.4, precise=True) == "45.4 s"
    assert format_duration(45.0, precise=True) == "45 s"


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (0, "0 B"),
        (500, "500 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (3.4 * 2**20, "3.4 MiB"),
        (127 * 2**30, "127 GiB"),
        (1.5 * 2**40, "1.5 TiB"),
        (3 * 2**50, "3.0 PiB"),
        (5000 * 2**50, "5000 PiB"),
        (math.nan, "-"),
        (None, "-"),
    ],
)
def test_format_size(nbytes, text):
    assert format_size(nbytes) == text


@pytest.mark.parametrize(
    ("bytes_per_s", "text"),
    [
        (2.5e6, "20 Mbit/s"),
        (1.25e8, "1 Gbit/s"),
        (1.875e8, "1.5 Gbit/s"),
        (125, "1 kbit/s"),
        (12500, "100 kbit/s"),
        (12.5, "100 bit/s"),
        (math.nan, "-"),
        (None, "-"),
    ],
)
def test_format_rate(bytes_per_s, text):
    assert format_rate(bytes_per_s) == text


@pytest.mark.parametrize("text", ["20Mbit/s", "100 kbit/s", "1Gbps", "2.5 Mbit/s"])
def test_format_rate_round_trips_through_parse_rate(text):
    assert parse_rate(format_rate(parse_rate(text))) == pytest.approx(parse_rate(text), rel=1e-12)


def test_public_names():
    for name in units.__all__:
        assert hasattr(units, name), name
