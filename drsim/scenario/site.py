"""The site section of a scenario: hosts, their VMs, each VM's disks and churn (how fast it writes).

``site.hosts[i].vms[j]`` holds a VM's disks (provisioned and used bytes), its churn (a daily fraction, a
rate in bytes/s, or a replayed trace file), its generation, its upload threads and whether it is protected. A
host's Windows Server version decides whether it can be protected at all, and a VM's disks whether the service
accepts it (:meth:`VM.unsupported_reasons`; the limits are those of the support matrix for Hyper-V VMs,
vendor documentation, date not recorded). :func:`churn_limit` is the average churn the service supports per
VM (and per disk) on the target storage tier.

Imports only the scenario's units, field types, :mod:`drsim.scenario.churn` (the built-in profiles) and
:mod:`drsim.scenario.quoting`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_serializer, model_validator

from drsim.scenario.churn import PROFILES
from drsim.scenario.counters import COUNTER_KEYS, trace_problem
from drsim.scenario.fields import DailyFraction, Duration, Fraction, PositiveDuration, Rate, Size, StrictModel
from drsim.scenario.quoting import excerpt
from drsim.scenario.units import format_size

__all__ = ["Disk", "DiskSpec", "Trace", "Churn", "VM", "Host", "Site", "CHURN_LIMIT_STANDARD", "SITE_ROW",
           "MAX_WEEKEND", "churn_limit", "protectable", "DATA_DISK_MAX", "OS_DISK_MAX", "DATA_DISKS_MAX"]

GIB = 1024.0**3
# The service's limits for Hyper-V VMs (support matrix; vendor documentation, date not recorded). Its "GB" are
# Windows' binary gigabytes: 4,095 GB is one GiB short of 4 TiB.
DATA_DISK_MAX = 4095 * GIB  # bytes: largest data disk
OS_DISK_MAX = {1: 2047 * GIB, 2: 300 * GIB}  # bytes: largest OS disk, by VM generation
DATA_DISKS_MAX = 16  # data disks per VM (besides the OS disk)
# average churn per VM the service supports, bytes/s, by target storage (8 KB writes; premium with writes of
# 16 KB or more: 20 MB/s); these assume ~30 % I/O overlap and a ~5-minute processing backlog
CHURN_LIMIT_STANDARD = 2e6
CHURN_LIMIT_PREMIUM = 5e6
CHURN_LIMIT_PREMIUM_LARGE_IO = 20e6
LARGE_IO = 16e3  # bytes: premium storage supports 20 MB/s when the average write is at least this large
#: The name of the site's row in the result tables (beside one row per VM): no VM may take it.
SITE_ROW = "(site)"
#: Largest weekend multiplier of the write rate. [assumption: a weekend a thousand times busier than a weekday is
#: already beyond any site; the bound keeps rates finite]
MAX_WEEKEND = 1000.0


def churn_limit(storage: str, io_size: float) -> float:
    """Average churn (bytes/s) the service supports per VM on ``storage`` (``standard`` or ``premium``) with
    writes of ``io_size`` bytes on average (support matrix)."""
    if storage == "standard":
        return CHURN_LIMIT_STANDARD
    return CHURN_LIMIT_PREMIUM_LARGE_IO if io_size >= LARGE_IO else CHURN_LIMIT_PREMIUM


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

    ``format: perfmon`` reads a performance-counter log (PDH-CSV, as typeperf and relog write it) instead:
    ``columns`` (counter-path patterns, summed) choose the VM's write counters; ``step``, ``max_gap`` and
    ``timezone`` say how to read it (:mod:`drsim.scenario.counters`). ``rewrite`` scales the bytes of any trace.
    """

    file: Path
    repeat: bool = True
    format: Literal["bytes", "perfmon"] = Field("bytes", description="bytes: timestamp,bytes rows; perfmon: a "
                                                "performance-counter log (PDH-CSV)")
    columns: str | list[str] | None = Field(None, description="perfmon: counter-path patterns (* any text), summed")
    step: PositiveDuration | None = Field(None, description="perfmon: resample to this step [the log's sample "
                                          "interval, at least 1m]")
    max_gap: Duration | None = Field(None, description="perfmon: longest gap filled by interpolation [15m]")
    timezone: str | None = Field(None, description="perfmon: IANA time zone of the log's local timestamps")
    rewrite: float = Field(1.0, gt=0, le=1, description="share of the bytes written that are new (not rewritten "
                                                        "within an interval) [1]")

    @model_validator(mode="after")
    def _counter_keys(self) -> Trace:
        problem = trace_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: Any) -> Any:
        data = handler(self)  # keys at their defaults are left out: older resolved scenarios stay the same
        for key, default in (("format", "bytes"), ("rewrite", 1.0), *((k, None) for k in COUNTER_KEYS)):
            if isinstance(data, dict) and data.get(key, default) == default:
                data.pop(key, None)
        return data


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
            {"type": "object", "properties": {
                "file": {"type": "string"}, "repeat": {"type": "boolean"}, "format": {"enum": ["bytes", "perfmon"]},
                "columns": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                "step": {"type": ["string", "number"]}, "max_gap": {"type": ["string", "number"]},
                "timezone": {"type": "string"}, "rewrite": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}},
             "required": ["file"], "additionalProperties": False},
        ]}),
    ] | None = None
    profile: str | list[float] | None = None
    weekend: Fraction = Field(1.0, ge=0, le=MAX_WEEKEND,
                              description="multiplier of the write rate on Saturdays and Sundays")
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
            raise ValueError(f"unknown profile {excerpt(v)}; expected one of {', '.join(PROFILES)} or 24 numbers")
        if isinstance(v, list):
            if len(v) != 24:
                raise ValueError(f"a profile lists 24 hourly multipliers, got {len(v)}")
            bad = next((h for h, x in enumerate(v) if not math.isfinite(x)), None)
            if bad is not None:
                raise ValueError(f"profile multipliers must be finite numbers, got {v[bad]} at hour {bad}")
            if min(v) < 0 or max(v) <= 0:
                raise ValueError("profile multipliers must be non-negative and not all zero")
        return v


class VM(StrictModel):
    name: str = Field(min_length=1)
    disks: list[DiskSpec] = Field(min_length=1)
    churn: Churn
    threads: int = Field(4, ge=1, le=32, description="upload threads: the VM's weight on the shared link")
    generation: Literal[1, 2] = Field(1, description="Hyper-V VM generation (the OS disk limit depends on it)")
    dashboard: bool = Field(False, description="this VM is the server that runs the management dashboard")
    protect: bool = Field(True, description="enable replication for this VM")

    @field_validator("name")
    @classmethod
    def _not_the_site_row(cls, v: str) -> str:
        if v == SITE_ROW:
            raise ValueError(f"{SITE_ROW!r} is reserved: it names the site's row in the result tables")
        return v

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

    def unsupported_reasons(self) -> list[str]:
        """Why the service would refuse to replicate this VM (empty: it accepts it). The first disk is the OS
        disk (support matrix: OS disk up to 2,047 GB on generation 1, 300 GB on generation 2; data disks up to
        4,095 GB; at most 16 data disks)."""
        out = []
        os_max = OS_DISK_MAX[self.generation]
        if self.disks[0].size > os_max:
            out.append(f"its OS disk (the first) is {format_size(self.disks[0].size)}; a generation {self.generation} "
                       f"VM's OS disk may be at most {os_max / GIB:,.0f} GB")
        for k, d in enumerate(self.disks[1:], start=2):
            if d.size > DATA_DISK_MAX:
                out.append(f"its data disk {k} is {format_size(d.size)}; a data disk may be at most "
                           f"{DATA_DISK_MAX / GIB:,.0f} GB")
        if len(self.disks) - 1 > DATA_DISKS_MAX:
            out.append(f"it has {len(self.disks) - 1} data disks; at most {DATA_DISKS_MAX} are supported")
        return out

    @property
    def supported(self) -> bool:
        """The service accepts the VM (its disks are within the limits)."""
        return not self.unsupported_reasons()

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
    free_space: Size | None = Field(
        None, description="free space for the change logs on the host's volume (None: not limited); the service "
                          "may need up to 100 % of the VHD size during initial replication, 50 % during delta "
                          "replication")

    @field_validator("os")
    @classmethod
    def _known_os(cls, v: str) -> str:
        m = _OS_RE.fullmatch(v.strip())
        if not m or (int(m.group(1)), bool(m.group(2))) not in _KNOWN_OS:
            raise ValueError("expected a Windows Server version: 2008, 2008 R2, 2012, 2012 R2, 2016, 2019, 2022 "
                             f"or 2025 (e.g. 'Windows Server 2016'), got {excerpt(v)}")
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


def protectable(host: Host, vm: VM) -> bool:
    """The VM will replicate: its host and its disks are supported and ``protect`` is on."""
    return host.supported and vm.protect and vm.supported
