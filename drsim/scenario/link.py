"""The link section of a scenario: the WAN's upload and download rates and the agent's bandwidth throttle.

Rates in bytes/s of raw bandwidth; ``efficiency`` is the share left for payload and ``compression`` the
ratio by which replication traffic shrinks. The throttle sets one limit during work hours on work days and
another otherwise (times of day in seconds from midnight).

Imports only the scenario's field types and :mod:`drsim.scenario.quoting` (excerpts of values in messages).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from drsim.scenario.fields import Fraction, Rate, StrictModel
from drsim.scenario.quoting import excerpt

__all__ = ["Throttle", "Link", "MIN_THROTTLE", "MAX_THROTTLE"]

MIN_THROTTLE = 512e3 / 8  # bytes/s: the agent's lowest settable limit (512 kbit/s)
MAX_THROTTLE = 1023e6 / 8  # bytes/s: the agent's highest settable limit (1023 Mbit/s)

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hours(raw: object) -> tuple[float, float]:
    if isinstance(raw, list | tuple) and any(isinstance(p, int) for p in raw):
        raise ValueError("quote times of day, e.g. ['08:00', '18:00'] (YAML reads 18:00 unquoted as a number)")
    if isinstance(raw, list | tuple) and len(raw) == 2:
        parts = [str(p) for p in raw]
    elif isinstance(raw, str) and "-" in raw:
        parts = raw.split("-")
    else:
        raise ValueError(f"expected work hours like '08:00-18:00', got {excerpt(raw)}")

    def hour(text: str) -> float:
        m = re.fullmatch(r"\s*(\d{1,2})(?::(\d{2}))?\s*", text)
        if not m or int(m.group(1)) > 24 or int(m.group(2) or 0) >= 60:
            raise ValueError(f"expected a time of day like '08:00', got {excerpt(text)}")
        return int(m.group(1)) * 3600.0 + int(m.group(2) or 0) * 60.0

    start, end = hour(parts[0]), hour(parts[1])
    if not start < end <= 86400:
        raise ValueError(f"work hours must start before they end within one day, got {excerpt(raw)}")
    return start, end


class Throttle(StrictModel):
    """The agent's bandwidth throttling: one limit during work hours on work days, another otherwise."""

    work_days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"]
    )
    work_hours: Annotated[
        tuple[float, float],
        BeforeValidator(_parse_hours),
        PlainSerializer(lambda v: f"{int(v[0]) // 3600:02d}:{int(v[0]) % 3600 // 60:02d}-"
                        f"{int(v[1]) // 3600:02d}:{int(v[1]) % 3600 // 60:02d}"),
        WithJsonSchema({"anyOf": [{"type": "string", "examples": ["08:00-18:00"]},
                                  {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}],
                        "default": "08:00-18:00"}),
    ] = (8 * 3600.0, 18 * 3600.0)
    work_limit: Rate
    off_limit: Rate | None = None

    @property
    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(_DAYS.index(d) for d in self.work_days)


class Link(StrictModel):
    upload: Rate
    download: Rate
    efficiency: Fraction = Field(0.9, gt=0, le=1, description="share of the raw bandwidth left for payload")
    compression: float = Field(1.0, ge=1, le=10, description="compression ratio of replication traffic")
    throttle: Throttle | None = None
