"""Human units for scenario files, and their formatting back for people.

Internally drsim works in plain SI base units:

* durations in **seconds** (float),
* sizes in **bytes** (float),
* rates in **bytes per second** (float),
* fractions as plain floats (``3%`` is ``0.03``).

Parsers accept numbers with a unit (``"30s"``, ``"127GiB"``, ``"20Mbit/s"``, ``"3%/day"``) and raise
``ValueError`` with a message that says what was expected, quoting at most a short excerpt of the value.
Decimal prefixes are powers of 1000 (``MB``), binary prefixes powers of 1024 (``MiB``); ``b``/``bit`` are bits,
``B`` bytes.

Values must be finite and within bounds far beyond any real site (:data:`MAX_DURATION`, :data:`MAX_SIZE`,
:data:`MAX_RATE`): products such as a rate times a duration then stay finite, and a typo such as ``1e300MB/s``
is refused with the bound instead of overflowing in the simulation.

Imports only :mod:`drsim.scenario.quoting`.
"""

from __future__ import annotations

import math
import re

from drsim.scenario.quoting import excerpt

__all__ = [
    "parse_duration",
    "parse_size",
    "parse_rate",
    "parse_fraction",
    "parse_daily_fraction",
    "format_duration",
    "format_size",
    "format_rate",
    "SECOND",
    "MINUTE",
    "HOUR",
    "DAY",
    "WEEK",
    "YEAR",
    "MAX_DURATION",
    "MAX_SIZE",
    "MAX_RATE",
]

SECOND = 1.0
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY
YEAR = 365 * DAY  # a calendar year of 365 days (8,760 h), the usual basis of MTBF figures

#: Longest duration, s: 10,000 years. [basis: Python's calendar ends in year 9999; no plan looks that far]
MAX_DURATION = 10_000 * YEAR
#: Largest size, bytes: 1 EiB. [assumption: 16,000 times the largest VHDX, 64 TB]
MAX_SIZE = 2.0**60
#: Fastest rate, bytes/s: 1 Pbit/s. [assumption: a thousand times the fastest WAN links of 2025, about 1 Tbit/s]
MAX_RATE = 1e15 / 8

_BOUNDS = {"duration": (MAX_DURATION, "10,000 years (the calendar ends in year 9999)"),
           "size": (MAX_SIZE, "1 EiB (16,000 times the largest virtual disk)"),
           "rate": (MAX_RATE, "1 Pbit/s (a thousand times the fastest WAN links)")}

_NUMBER = r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"

_DURATION_UNITS = {
    "ms": 1e-3,
    "s": SECOND,
    "sec": SECOND,
    "secs": SECOND,
    "second": SECOND,
    "seconds": SECOND,
    "m": MINUTE,
    "min": MINUTE,
    "mins": MINUTE,
    "minute": MINUTE,
    "minutes": MINUTE,
    "h": HOUR,
    "hr": HOUR,
    "hrs": HOUR,
    "hour": HOUR,
    "hours": HOUR,
    "d": DAY,
    "day": DAY,
    "days": DAY,
    "w": WEEK,
    "wk": WEEK,
    "week": WEEK,
    "weeks": WEEK,
    "y": YEAR,
    "yr": YEAR,
    "year": YEAR,
    "years": YEAR,
}

_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BIN_PREFIX = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}


def _size_unit_factor(unit: str) -> float | None:
    """Bytes per unit for a size unit such as ``GiB``, ``MB``, ``Mbit``; None if unknown."""
    m = re.fullmatch(r"(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P|)(B|byte|bytes|b|bit|bits)", unit)
    if not m:
        return None
    prefix, base = m.groups()
    scale = _BIN_PREFIX.get(prefix) or _PREFIX[prefix]
    return scale * (1.0 if base in ("B", "byte", "bytes") else 1.0 / 8.0)


def _split(text: str, what: str, example: str) -> tuple[float, str]:
    m = re.fullmatch(_NUMBER + r"\s*(.*)", text.strip())
    if not m:
        raise ValueError(f"expected {what} like {example!r}, got {excerpt(text)}")
    return float(m.group(1)), m.group(2).strip()


def _finite(value: float | int, text: object, what: str) -> float:
    """``value`` as a float, if it is finite and within the bound of its kind (``what``)."""
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f"{what} {excerpt(text, 27)} is too large") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite {what}, got {excerpt(text)}")
    bound = _BOUNDS.get(what)
    if bound is not None and abs(value) > bound[0]:
        raise ValueError(f"a {what} is at most {bound[1]}, got {excerpt(text)}")
    return value


def parse_duration(value: object) -> float:
    """Parse a duration (``"30s"``, ``"5m"``, ``"2h"``, ``"3d"``, ``"2y"``; a bare number is seconds).

    Returns seconds. Composite forms such as ``"1h30m"`` are accepted.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '5m', got {value!r}")
    if isinstance(value, int | float):
        return _finite(value, value, "duration")
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like '5m', got {excerpt(value)}")
    text = value.strip()
    parts = re.findall(_NUMBER + r"\s*([a-zA-Z]*)", text)
    rebuilt = re.sub(r"\s+", "", text)
    if not parts or "".join(n + u for n, u in parts) != rebuilt:
        raise ValueError(f"expected a duration like '30s', '5m', '2h' or '3d', got {excerpt(value)}")
    total = 0.0
    for number, unit in parts:
        if unit == "" and len(parts) == 1:
            factor = 1.0
        elif unit == "":
            raise ValueError(f"a number without a unit in {excerpt(value)} (write e.g. '1h30m')")
        elif unit in _DURATION_UNITS:
            factor = _DURATION_UNITS[unit]
        else:
            raise ValueError(
                f"unknown time unit {excerpt(unit)} in {excerpt(value)} (use ms, s, m, h, d, w or y)"
            )
        total += float(number) * factor
    return _finite(total, value, "duration")


def parse_size(value: object) -> float:
    """Parse a size (``"127GiB"``, ``"500MB"``, ``"1.5TB"``). Returns bytes.

    A unit is required: a bare number is ambiguous between bytes and gigabytes.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a size like '127GiB' or '500MB', got {excerpt(value)}")
    if not isinstance(value, str):
        if value == 0:
            return 0.0
        if not math.isfinite(value):
            raise ValueError(f"expected a finite size like '127GiB', got {value!r}")
        shown = excerpt(value, 27)
        raise ValueError(f"a size needs a unit, e.g. '{shown}GB' or '{shown}GiB', got {shown}")
    number, unit = _split(value, "a size", "127GiB")
    factor = _size_unit_factor(unit)
    if factor is None:
        raise ValueError(f"unknown size unit {excerpt(unit)} in {excerpt(value)} (use B, kB, MB, GB, TB, KiB, MiB, "
                         "GiB, TiB)")
    return _finite(number * factor, value, "size")


def parse_rate(value: object) -> float:
    """Parse a data rate (``"20Mbit/s"``, ``"20Mbps"``, ``"2MB/s"``). Returns bytes per second.

    A unit is required: ``20`` could mean megabits or megabytes.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"a rate needs a unit, e.g. '20Mbit/s' or '2MB/s', got {excerpt(value)}")
    number, unit = _split(value, "a rate", "20Mbit/s")
    if not unit:
        raise ValueError(f"a rate needs a unit, e.g. '20Mbit/s' or '2MB/s', got {excerpt(value)}")
    m = re.fullmatch(r"(k|K|M|G|T|)bps", unit)
    if m:
        return _finite(number * _PREFIX[m.group(1)] / 8.0, value, "rate")
    m = re.fullmatch(r"(.+?)\s*(?:/|per)\s*(s|sec|second|min|minute|h|hour|d|day)", unit)
    if m:
        factor = _size_unit_factor(m.group(1))
        per = parse_duration("1" + m.group(2)) if m.group(2) not in ("sec", "second") else 1.0
        if factor is not None:
            return _finite(number * factor / per, value, "rate")
    raise ValueError(f"unknown rate unit {excerpt(unit)} in {excerpt(value)} (use e.g. kbit/s, Mbit/s, Gbit/s, Mbps, "
                     "MB/s)")


def parse_fraction(value: object) -> float:
    """Parse a fraction (``"3%"``, ``0.03``). Returns a plain float (``0.03``)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage like '3%', got {value!r}")
    if isinstance(value, int | float):
        return _finite(value, value, "fraction")
    if isinstance(value, str):
        m = re.fullmatch(_NUMBER + r"\s*%", value.strip())
        if m:
            return _finite(float(m.group(1)) / 100.0, value, "percentage")
        try:
            return _finite(float(value), value, "fraction")
        except ValueError:
            pass
    raise ValueError(f"expected a percentage like '3%' or a fraction like 0.03, got {excerpt(value)}")


def parse_daily_fraction(value: object) -> float:
    """Parse a daily change fraction (``"3%/day"``, ``"3%"``, ``0.03``). Returns the fraction per day."""
    if isinstance(value, str):
        m = re.fullmatch(r"(.+?)\s*/\s*(day|d)", value.strip())
        if m:
            return parse_fraction(m.group(1))
    return parse_fraction(value)


def format_duration(seconds: float, precise: bool = False) -> str:
    """Format seconds for people: ``"45 s"``, ``"4 min 10 s"``, ``"2 h 5 min"``, ``"2 d 3 h"``; under a tenth of a
    second in ms or µs (``"12.5 ms"``, ``"100 µs"``)."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    if math.isinf(seconds):
        return "never" if seconds > 0 else "-inf"
    sign = "-" if seconds < 0 else ""
    s = abs(float(seconds))
    if 0 < s < 1e-3:
        return sign + f"{s * 1e6:.3g} µs"
    if 0 < s < 0.1:  # one decimal of a second would show 0.0 s
        return sign + f"{s * 1e3:.3g} ms"
    if round(s) < 60:
        text = f"{s:.1f} s" if (precise or s < 10) and s != int(s) else f"{s:.0f} s"
        return sign + text
    units = [("d", DAY), ("h", HOUR), ("min", MINUTE), ("s", SECOND)]
    parts = []
    rest = round(s)
    for name, size in units:
        n = int(rest // size)
        if n or parts:
            parts.append((n, name))
        rest -= n * size
    parts = [p for p in parts[:2] if p[0]] or parts[:1]
    return sign + " ".join(f"{n} {name}" for n, name in parts)


def format_size(nbytes: float) -> str:
    """Format bytes with binary prefixes: ``"127 GiB"``, ``"3.4 MiB"``."""
    if nbytes is None or (isinstance(nbytes, float) and math.isnan(nbytes)):
        return "-"
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_rate(bytes_per_s: float) -> str:
    """Format a rate in bits per second with decimal prefixes: ``"20 Mbit/s"``."""
    if bytes_per_s is None or (isinstance(bytes_per_s, float) and math.isnan(bytes_per_s)):
        return "-"
    bits = float(bytes_per_s) * 8
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if abs(bits) >= scale:
            return f"{bits / scale:.3g} {unit}"
    return f"{bits:.3g} bit/s"
