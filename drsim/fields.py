"""Field types for scenario models: values with human units, random quantities, and the strict base model.

Each type parses the human form (``"5m"``, ``"127GiB"``, ``"20Mbit/s"``, ``{dist: ...}``) into base units
(seconds, bytes, bytes/s, :class:`~drsim.distributions.Distribution`), serialises back to a form that parses
to the same value, and describes itself in the JSON Schema.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
)

from drsim import units
from drsim.distributions import DIST_NAMES, Distribution, parse_distribution

__all__ = ["Duration", "PositiveDuration", "Size", "Rate", "Fraction", "DailyFraction", "RandomDuration",
           "StrictModel", "random_duration", "parse_time_point"]


def _checked(parse: Any, positive: bool) -> Any:
    """A validator that parses a value with units and checks its sign, quoting the value as written."""

    def validate(raw: object) -> float:
        value = parse(raw)
        if positive and not value > 0:
            raise ValueError(f"must be greater than zero, got {raw!r}")
        if value < 0:
            raise ValueError(f"must not be negative, got {raw!r}")
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
        raise ValueError(f"must not be negative, got {raw!r}")
    return value


def random_duration(raw: object) -> Distribution:
    """Parse a random duration given in scenario form (for defaults)."""
    return parse_distribution(raw, units.parse_duration)
