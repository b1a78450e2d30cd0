"""The site section of a scenario: hosts, their VMs, each VM's disks and churn (how fast it writes).

``site.hosts[i].vms[j]`` holds a VM's disks (provisioned and used bytes), its churn (a daily fraction, a
rate in bytes/s, or a replayed trace file), its upload threads and whether it is protected. A host's
Windows Server version decides whether it can be protected at all.

Imports only the scenario's field types and :mod:`drsim.scenario.churn` (the built-in profiles).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from drsim.scenario.churn import PROFILES
from drsim.scenario.fields import DailyFraction, Fraction, Rate, Size, StrictModel

__all__ = ["Disk", "DiskSpec", "Trace", "Churn", "VM", "Host", "Site", "CHURN_LIMIT_STANDARD"]

CHURN_LIMIT_STANDARD = 2e6  # bytes/s per VM the service supports on standard storage


def _disk_before(raw: object) -> object:
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        return {"size": raw}
    return raw


class Disk(StrictModel):
    """A virtual disk. ``size`` is the provisioned size; ``used`` (default: size) is what the initial
    copy must move (the data actually in a dynamically expanding VHDX). ``churn_share`` is the share of the
    VM's writes that land on this disk (default: in proportion to the provisioned sizes)."""

    size: Size
    used: Size | None = None
    churn_share: Fraction | None = Field(None, ge=0, le=1, description="share of the VM's writes on this disk")

    @model_validator(mode="after")
    def _used_fits(self) -> Disk:
        if self.used is not None and self.used > self.size:
            raise ValueError("used must not exceed size")
        return self

    @property
    def copy_bytes(self) -> float:
        """Bytes the initial replication copies for this disk."""
        return self.size if self.used is None else self.used


DiskSpec = Annotated[
    Disk,
    BeforeValidator(_disk_before),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": "disk size, e.g. 127GiB"},
                {
                    "type": "object",
                    "properties": {"size": {"type": "string"}, "used": {"type": "string"},
                                   "churn_share": {"type": ["string", "number"]}},
                    "required": ["size"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


class Trace(StrictModel):
    """A replayed write trace: a CSV file with ``timestamp`` and ``bytes`` columns.

    Each row's bytes were written during the sampling interval that starts at its timestamp (the last
    row's interval is as long as the one before it). Timestamps are seconds from the trace start or ISO
    date-times. The trace repeats when it is shorter than the simulated period.
    """

    file: Path
    repeat: bool = True


def _trace_before(raw: object) -> object:
    return {"file": raw} if isinstance(raw, str) else raw


class Churn(StrictModel):
    """How fast a VM writes. Give exactly one of ``daily``, ``rate`` or ``trace``.

    ``profile`` shapes the day (built-in name or 24 hourly multipliers, normalised to mean 1 so the
    daily total is kept); ``weekend`` scales Saturdays and Sundays; ``variation`` is the coefficient of
    variation of a random log-normal multiplier drawn per hour.
    """

    daily: DailyFraction | None = None
    rate: Rate | None = None
    trace: Annotated[
        Trace,
        BeforeValidator(_trace_before),
        WithJsonSchema({"anyOf": [
            {"type": "string", "description": "path of a CSV file (timestamp,bytes), relative to the scenario"},
            {"type": "object", "properties": {"file": {"type": "string"}, "repeat": {"type": "boolean"}},
             "required": ["file"], "additionalProperties": False},
        ]}),
    ] | None = None
    profile: str | list[float] | None = None
    weekend: Fraction = Field(1.0, ge=0, description="multiplier of the write rate on Saturdays and Sundays")
    variation: float = Field(0.0, ge=0, le=5)

    @model_validator(mode="after")
    def _one_source(self) -> Churn:
        given = [k for k in ("daily", "rate", "trace") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'daily' (e.g. 3%/day), 'rate' (e.g. 500kB/s) or 'trace' (a CSV file)"
                + (f"; got {', '.join(given)}" if given else "")
            )
        if self.trace is not None and (self.profile is not None or self.variation or self.weekend != 1.0):
            raise ValueError("a replayed trace already has its own shape: drop profile, weekend and variation")
        return self

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str | list[float] | None) -> str | list[float] | None:
        if isinstance(v, str) and v not in PROFILES:
            raise ValueError(f"unknown profile {v!r}; expected one of {', '.join(PROFILES)} or 24 numbers")
        if isinstance(v, list):
            if len(v) != 24:
                raise ValueError(f"a profile lists 24 hourly multipliers, got {len(v)}")
            if min(v) < 0 or sum(v) <= 0:
                raise ValueError("profile multipliers must be non-negative and not all zero")
        return v


class VM(StrictModel):
    name: str = Field(min_length=1)
    disks: list[DiskSpec] = Field(min_length=1)
    churn: Churn
    threads: int = Field(4, ge=1, le=32, description="upload threads: the VM's weight on the shared link")
    dashboard: bool = Field(False, description="this VM is the server that runs the management dashboard")
    protect: bool = Field(True, description="enable replication for this VM")

    @property
    def disk_size(self) -> float:
        """Total provisioned disk size in bytes."""
        return sum(d.size for d in self.disks)

    @property
    def copy_bytes(self) -> float:
        """Total bytes the initial replication copies."""
        return sum(d.copy_bytes for d in self.disks)

    @property
    def disk_shares(self) -> list[float]:
        """Share of the VM's writes on each disk: as given, else in proportion to the provisioned sizes
        (an assumption: writes spread over the disks like their capacity)."""
        if self.disks[0].churn_share is not None:
            return [float(d.churn_share or 0.0) for d in self.disks]
        total = self.disk_size
        return [d.size / total for d in self.disks]

    @model_validator(mode="after")
    def _shares(self) -> VM:
        given = [d.churn_share is not None for d in self.disks]
        if any(given) and not all(given):
            raise ValueError("give churn_share for every disk of the VM or for none")
        if all(given) and abs(sum(d.churn_share for d in self.disks) - 1.0) > 1e-6:
            raise ValueError("the disks' churn_share must add up to 100%, got "
                             f"{sum(d.churn_share for d in self.disks):.4%}")
        return self


_OS_RE = re.compile(r"(?:windows\s+server\s+)?(\d{4})(\s*r2)?", re.IGNORECASE)
_KNOWN_OS = {(2008, False), (2008, True), (2012, False), (2012, True), (2016, False), (2019, False),
             (2022, False), (2025, False)}


class Host(StrictModel):
    name: str = Field(min_length=1)
    os: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v)] = (
        Field("Windows Server 2016", description="e.g. 'Windows Server 2012 R2', 'Windows Server 2019'"))
    vms: list[VM] = Field(default_factory=list)

    @field_validator("os")
    @classmethod
    def _known_os(cls, v: str) -> str:
        m = _OS_RE.fullmatch(v.strip())
        if not m or (int(m.group(1)), bool(m.group(2))) not in _KNOWN_OS:
            raise ValueError("expected a Windows Server version: 2008, 2008 R2, 2012, 2012 R2, 2016, 2019, 2022 "
                             f"or 2025 (e.g. 'Windows Server 2016'), got {v!r}")
        return v

    @property
    def supported(self) -> bool:
        """Hosts older than Windows Server 2012 R2 are listed but cannot be protected."""
        m = _OS_RE.fullmatch(self.os.strip())
        assert m is not None
        year, r2 = int(m.group(1)), bool(m.group(2))
        return (year, r2) >= (2012, True)


class Site(StrictModel):
    hosts: list[Host] = Field(min_length=1)
