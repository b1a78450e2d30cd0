"""Field types for scenario models: values with human units, random quantities, and the strict base model.

Each type parses the human form (``"5m"``, ``"127GiB"``, ``"20Mbit/s"``, ``{dist: ...}``) into base units
(seconds, bytes, bytes/s, :class:`~drsim.scenario.distributions.Distribution`), serialises back to a form that parses
to the same value, and describes itself in the JSON Schema. Messages quote a short excerpt of a bad value.

Imports only :mod:`drsim.scenario` units, distributions and quoting.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from drsim.scenario import units
from drsim.scenario.distributions import DIST_NAMES, Distribution, parse_distribution
from drsim.scenario.quoting import excerpt

__all__ = ["Duration", "PositiveDuration", "Size", "Rate", "Fraction", "DailyFraction", "RandomDuration",
           "StrictModel", "random_duration", "parse_time_point", "Range", "Choices", "parse_lhs", "LhsDimension"]


def _checked(parse: Any, positive: bool) -> Any:
    """A validator that parses a value with units and checks its sign, quoting the value as written."""

    def validate(raw: object) -> float:
        value = parse(raw)
        if positive and not value > 0:
            raise ValueError(f"must be greater than zero, got {excerpt(raw)}")
        if value < 0:
            raise ValueError(f"must not be negative, got {excerpt(raw)}")
        return value

    return validate


def _string_schema(pattern_hint: str, examples: list[str], allow_number: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "description": pattern_hint, "examples": examples}
    if allow_number:
        return {"anyOf": [schema, {"type": "number"}], "description": pattern_hint}
    return schema


def _ser_duration(v: float) -> str:
    return f"{v!r}s"


def _ser_size(v: float) -> str:
    return f"{v!r}B"


def _ser_rate(v: float) -> str:
    return f"{v!r}B/s"


def _parse_daily(raw: object) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 1:
        raise ValueError(f"a bare number is a fraction (0.03 = 3 %/day); write '{raw}%' if you mean percent")
    return units.parse_daily_fraction(raw)


Duration = Annotated[
    float,
    BeforeValidator(_checked(units.parse_duration, positive=False)),
    PlainSerializer(_ser_duration, return_type=str),
    WithJsonSchema(_string_schema("duration: 30s, 5m, 2h, 3d, 2y (bare number = seconds)", ["5m"], True)),
]
PositiveDuration = Annotated[
    float,
    BeforeValidator(_checked(units.parse_duration, positive=True)),
    PlainSerializer(_ser_duration, return_type=str),
    WithJsonSchema(_string_schema("duration greater than zero: 30s, 5m, 2h, 3d", ["5m"], True)),
]
Size = Annotated[
    float,
    BeforeValidator(_checked(units.parse_size, positive=True)),
    PlainSerializer(_ser_size, return_type=str),
    WithJsonSchema(_string_schema("size: 127GiB, 500MB, 2TB", ["127GiB"], False)),
]
Rate = Annotated[
    float,
    BeforeValidator(_checked(units.parse_rate, positive=True)),
    PlainSerializer(_ser_rate, return_type=str),
    WithJsonSchema(_string_schema("rate: 20Mbit/s, 100Mbps, 2MB/s", ["20Mbit/s"], False)),
]
Fraction = Annotated[
    float,
    BeforeValidator(units.parse_fraction),
    WithJsonSchema(_string_schema("percentage or fraction: 3%, 0.03", ["3%"], True)),
]
DailyFraction = Annotated[
    float,
    BeforeValidator(_checked(_parse_daily, positive=True)),
    WithJsonSchema(_string_schema("daily change: 3%/day, 3%, 0.03", ["3%/day"], True)),
]


def _parse_random_duration(raw: object) -> Distribution:
    return parse_distribution(raw, units.parse_duration)


_RANDOM_SCHEMA = {
    "description": "a duration (fixed) or {dist: exponential|lognormal|uniform|weibull|triangular|empirical, ...}",
    "anyOf": [
        {"type": "string"},
        {"type": "number"},
        {
            "type": "object",
            "properties": {
                "dist": {"enum": list(DIST_NAMES)},
                "value": {},
                "mean": {},
                "median": {},
                "p95": {},
                "low": {},
                "mode": {},
                "high": {},
                "shape": {"type": "number"},
                "scale": {},
                "values": {"type": "array"},
            },
            "required": ["dist"],
            "additionalProperties": False,
        },
    ],
}

RandomDuration = Annotated[
    Distribution,
    BeforeValidator(_parse_random_duration),
    PlainSerializer(lambda d: d.to_yaml(_ser_duration), return_type=Any),
    WithJsonSchema(_RANDOM_SCHEMA),
]


class StrictModel(BaseModel):
    """Base for scenario sections: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)



def parse_time_point(raw: object) -> datetime | float:
    """A time in a scenario: a date-time (``2026-03-18T09:12:00``) or a non-negative offset from t = 0 (``10d``)."""
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, date):  # an unquoted YAML date: midnight
        return datetime.combine(raw, datetime.min.time())
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            pass
    value = units.parse_duration(raw)
    if value < 0:
        raise ValueError(f"must not be negative, got {excerpt(raw)}")
    return value


def random_duration(raw: object) -> Distribution:
    """Parse a random duration given in scenario form (for defaults)."""
    return parse_distribution(raw, units.parse_duration)


# ----------------------------------------------------------------------------------------------------
# Latin hypercube dimensions: ranges with units, or choices

_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER_TEXT = re.compile(r"[+-]?\d+")
_RANGE_TEXT = re.compile(r"(?P<low>[^.\s].*?)\s*\.\.\s*(?P<high>.*?[^.\s])(?::(?P<scale>[A-Za-z]+))?")
_KINDS = (("rate", units.parse_rate), ("size", units.parse_size), ("duration", units.parse_duration),
          ("fraction", units.parse_daily_fraction))
_SERIALISE = {"rate": _ser_rate, "size": _ser_size}


@dataclass(frozen=True)
class Range:
    """A range of a numeric setting to sample, ``low`` to ``high`` in base units: seconds (``duration``), bytes
    (``size``), bytes/s (``rate``), plain fractions (``fraction``: ``3%`` is 0.03) or plain numbers (``number``;
    ``integer`` when both ends are whole numbers: every integer from ``low`` to ``high`` inclusive).
    ``log``: sampled uniformly in the logarithm (for ranges spanning orders of magnitude; ``low`` > 0)."""

    low: float
    high: float
    kind: str
    log: bool = False
    text: str = ""

    def at(self, u: float) -> int | float:
        """The value at quantile ``u`` (0 <= u < 1) of the uniform (or log-uniform) distribution on the range."""
        if self.kind == "integer":
            lo, hi = self.low, self.high + 1  # [low, high + 1): each integer gets an equal share
            x = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if self.log else lo + u * (hi - lo)
            return int(min(self.high, math.floor(x)))
        if self.log:
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)

    def setting(self, value: float) -> Any:
        """``value`` (base units) as a scenario value that reads back as exactly ``value``: ``'1250000.0B/s'``
        for a rate, ``'2e9B'`` for a size, a plain number otherwise (a bare number is seconds for durations)."""
        ser = _SERIALISE.get(self.kind)
        return ser(float(value)) if ser is not None else value

    def format(self, value: float) -> str:
        """``value`` (base units) for people: ``'23.4 Mbit/s'``, ``'4 min 10 s'``, ``'3.125%'``."""
        fmt = {"rate": units.format_rate, "size": units.format_size, "duration": units.format_duration,
               "fraction": lambda v: f"{v:.3%}", "integer": lambda v: str(int(v))}.get(self.kind)
        return fmt(float(value)) if fmt is not None else f"{float(value):.4g}"

    def describe(self) -> dict[str, Any]:
        """The range as plain data (for metadata and comparisons)."""
        return {"range": self.text, "kind": self.kind, "low": self.low, "high": self.high,
                "scale": "log" if self.log else "linear"}


@dataclass(frozen=True)
class Choices:
    """Values of a setting to sample with equal probability (values as in a scenario file)."""

    values: tuple[Any, ...]

    def at(self, u: float) -> Any:
        """The value at quantile ``u`` (0 <= u < 1): the ``floor(u * len(values))``-th."""
        return self.values[min(len(self.values) - 1, int(u * len(self.values)))]

    def setting(self, value: Any) -> Any:
        return value

    def describe(self) -> dict[str, Any]:
        return {"choices": list(self.values)}


def _endpoints(low: object, high: object, text: str) -> tuple[str, float, float]:
    """The kind shared by both ends of a range and their values in base units."""
    def plain(v: object) -> str | None:
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            return "integer"
        if isinstance(v, float):
            return "number"
        if isinstance(v, str) and _INTEGER_TEXT.fullmatch(v.strip()):
            return "integer"
        if isinstance(v, str) and _NUMBER_TEXT.fullmatch(v.strip()):
            return "number"
        return None

    kinds = (plain(low), plain(high))
    if None not in kinds:
        kind = "integer" if kinds == ("integer", "integer") else "number"
        cast = int if kind == "integer" else float
        return kind, cast(low), cast(high)  # type: ignore[call-overload]
    for kind, parse in _KINDS:
        try:
            return kind, parse(low), parse(high)
        except ValueError:
            continue
    raise ValueError(f"cannot read the range {excerpt(text)}: give both ends with the same kind of unit, e.g. "
                     "10Mbit/s..50Mbit/s, 30s..15m, 100GiB..2TB, 1%..5% or 1..8")


def _range(low: object, high: object, scale: object, text: str) -> Range:
    if scale not in (None, "linear", "log"):
        raise ValueError(f"unknown scale {excerpt(scale)} in {excerpt(text)}: 'linear' (the default) or 'log'")
    kind, lo, hi = _endpoints(low, high, text)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"the range {excerpt(text)} must have finite ends")
    if lo == hi:
        raise ValueError(f"the range {excerpt(text)} holds a single value: give it as a fixed setting (a sweep value)")
    if lo > hi:
        raise ValueError(f"the range {excerpt(text)} is empty: its low end is above its high end (write low..high)")
    if scale == "log" and lo <= 0:
        raise ValueError(f"a log range needs a low end above zero, got {excerpt(text)}")
    return Range(lo, hi, kind, scale == "log", text)


def parse_lhs(raw: object) -> Range | Choices:
    """A Latin hypercube dimension as written in a scenario file or after ``--lhs PATH=``:

    * ``"LO..HI"`` (``"10Mbit/s..50Mbit/s"``, ``"30s..15m"``, ``"1%..5%"``, ``"1..8"``), with ``":log"`` after it
      for a log-uniform range (``"1y..100y:log"``); or the mapping ``{low: LO, high: HI, scale: linear|log}``;
    * a list of two or more values (``[30s, 5m, 15m]``): choices, each drawn equally often.

    Raises ``ValueError`` saying what was expected."""
    if isinstance(raw, Range | Choices):
        return raw
    if isinstance(raw, list | tuple):
        if len(raw) < 2:
            raise ValueError("list at least two choices (a single value is a fixed setting)")
        return Choices(tuple(raw))
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"low", "high", "scale"})
        if unknown or "low" not in raw or "high" not in raw:
            raise ValueError("a range mapping has the keys low, high and optionally scale (linear or log)"
                             + (f"; unknown key {excerpt(unknown[0])}" if unknown else ""))
        return _range(raw["low"], raw["high"], raw.get("scale"),
                      f"{raw['low']}..{raw['high']}" + (f":{raw['scale']}" if raw.get("scale") else ""))
    if isinstance(raw, str):
        m = _RANGE_TEXT.fullmatch(raw.strip())
        if m:
            return _range(m.group("low"), m.group("high"), m.group("scale"), raw.strip())
    raise ValueError(f"expected a range like '10Mbit/s..50Mbit/s' (or '1y..100y:log') or a list of choices, "
                     f"got {excerpt(raw)}")


def _describe_lhs(dim: Range | Choices) -> Any:
    return dim.text if isinstance(dim, Range) else list(dim.values)


LhsDimension = Annotated[
    Range | Choices,
    BeforeValidator(parse_lhs),
    PlainSerializer(_describe_lhs, return_type=Any),
    WithJsonSchema({"description": "a range 'LO..HI' with units (':log' after it for a log scale), "
                                   "{low, high, scale}, or a list of choices",
                    "anyOf": [{"type": "string", "examples": ["10Mbit/s..50Mbit/s", "1y..100y:log"]},
                              {"type": "array", "minItems": 2},
                              {"type": "object", "properties": {"low": {}, "high": {},
                                                                "scale": {"enum": ["linear", "log"]}},
                               "required": ["low", "high"], "additionalProperties": False}]}),
]


def random_default(raw: object) -> Any:
    """A pydantic field whose default is the random duration ``raw`` (as written in a scenario file), built
    anew for each model."""
    return Field(default_factory=lambda: random_duration(raw))
