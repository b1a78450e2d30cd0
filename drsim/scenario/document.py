"""Scenario files: YAML validated into typed models, with located, readable errors.

A scenario describes one on-premises Hyper-V site replicating to the cloud: hosts and their VMs (disks,
churn), the WAN link, the replication policy and the objectives. :func:`load_scenario` reads a file,
:func:`parse_scenario` a mapping; both raise :class:`ScenarioError` naming the file, the place (e.g.
``site.hosts[0].vms[2].disks[0]``), the line, and what was expected.

All values are held in base units: seconds, bytes, bytes per second, plain fractions.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)

from drsim.scenario import units
from drsim.scenario.churn import PROFILES, TraceError, load_trace, mean_rate, trace_warnings
from drsim.scenario.counters import COUNTER_KEYS, trace_problem
from drsim.scenario.distributions import parse_distribution
from drsim.scenario.fields import (
    DailyFraction,
    Duration,
    Fraction,
    LhsDimension,
    PositiveDuration,
    RandomDuration,
    Rate,
    Size,
    StrictModel,
    parse_time_point,
)
from drsim.scenario.policy import PolicyError, validate_policy
from drsim.scenario.recovery import Drill, FailoverSteps, Failure, Maintenance, PolicyConfig, RecoveryPlan

__all__ = [
    "Scenario",
    "ScenarioError",
    "Problem",
    "load_scenario",
    "parse_scenario",
    "scenario_schema",
    "scenario_warnings",
    "scenario_hash",
    "location_text",
    "SUPPORTED_INTERVALS",
    "ExperimentSection",
]

SUPPORTED_INTERVALS = (30.0, 300.0, 900.0)  # seconds: the replication frequencies the service offers
MIN_THROTTLE = 512e3 / 8  # bytes/s: the agent's lowest settable limit (512 kbit/s)
MAX_THROTTLE = 1023e6 / 8  # bytes/s: the agent's highest settable limit (1023 Mbit/s)
CHURN_LIMIT_STANDARD = 2e6  # bytes/s per VM the service supports on standard storage


_Model = StrictModel


# ----------------------------------------------------------------------------------------------------
# Site


def _disk_before(raw: object) -> object:
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        return {"size": raw}
    return raw


class Disk(_Model):
    """A virtual disk. ``size`` is the provisioned size; ``used`` (default: size) is what the initial
    copy must move (the data actually in a dynamically expanding VHDX)."""

    size: Size
    used: Size | None = None

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
                    "properties": {"size": {"type": "string"}, "used": {"type": "string"}},
                    "required": ["size"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


class Trace(_Model):
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


class Churn(_Model):
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


class VM(_Model):
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


_OS_RE = re.compile(r"(?:windows\s+server\s+)?(\d{4})(\s*r2)?", re.IGNORECASE)
_KNOWN_OS = {(2008, False), (2008, True), (2012, False), (2012, True), (2016, False), (2019, False),
             (2022, False), (2025, False)}


class Host(_Model):
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


class Site(_Model):
    hosts: list[Host] = Field(min_length=1)


# ----------------------------------------------------------------------------------------------------
# Link

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hours(raw: object) -> tuple[float, float]:
    if isinstance(raw, list | tuple) and any(isinstance(p, int) for p in raw):
        raise ValueError("quote times of day, e.g. ['08:00', '18:00'] (YAML reads 18:00 unquoted as a number)")
    if isinstance(raw, list | tuple) and len(raw) == 2:
        parts = [str(p) for p in raw]
    elif isinstance(raw, str) and "-" in raw:
        parts = raw.split("-")
    else:
        raise ValueError(f"expected work hours like '08:00-18:00', got {raw!r}")

    def hour(text: str) -> float:
        m = re.fullmatch(r"\s*(\d{1,2})(?::(\d{2}))?\s*", text)
        if not m or int(m.group(1)) > 24 or int(m.group(2) or 0) >= 60:
            raise ValueError(f"expected a time of day like '08:00', got {text!r}")
        return int(m.group(1)) * 3600.0 + int(m.group(2) or 0) * 60.0

    start, end = hour(parts[0]), hour(parts[1])
    if not start < end <= 86400:
        raise ValueError(f"work hours must start before they end within one day, got {raw!r}")
    return start, end


class Throttle(_Model):
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


class Link(_Model):
    upload: Rate
    download: Rate
    efficiency: Fraction = Field(0.9, gt=0, le=1, description="share of the raw bandwidth left for payload")
    compression: float = Field(1.0, ge=1, le=10, description="compression ratio of replication traffic")
    throttle: Throttle | None = None


# ----------------------------------------------------------------------------------------------------
# Replication


def _initial_start_before(raw: object) -> object:
    if raw is None or raw == "immediate":
        return "immediate"
    try:
        return parse_time_point(raw)
    except ValueError as exc:
        if str(exc).startswith("must not be negative"):
            raise ValueError(f"the initial start offset {exc}") from None
        raise


class Initial(_Model):
    """When and in which order initial replication runs."""

    start: Annotated[
        Literal["immediate"] | datetime | float,
        BeforeValidator(_initial_start_before),
        WithJsonSchema({"description": "'immediate', a date-time, or an offset like 18h",
                        "anyOf": [{"type": "string"}, {"type": "number", "minimum": 0}]}),
    ] = "immediate"
    batches: list[list[str]] | None = Field(
        None, description="ordered groups of VM names; batch k+1 starts when batch k is protected"
    )


class Replication(_Model):
    interval: PositiveDuration = 300.0
    retention: Duration = 24 * 3600.0
    app_consistent_every: Duration = 0.0
    setup: RandomDuration = Field(
        default_factory=lambda: parse_distribution("15m", units.parse_duration),
        description="agent install and vault creation before initial replication, per host",
    )
    initial: Initial = Field(default_factory=Initial)

    @field_validator("interval")
    @classmethod
    def _supported_interval(cls, v: float) -> float:
        if v not in SUPPORTED_INTERVALS:
            raise ValueError(f"the service replicates every 30s, 5m or 15m; got {units.format_duration(v)}")
        return v

    @field_validator("retention")
    @classmethod
    def _retention_range(cls, v: float) -> float:
        if v > 24 * 3600:
            raise ValueError(f"recovery-point retention is 0 to 24h, got {units.format_duration(v)}")
        return v

    @field_validator("app_consistent_every")
    @classmethod
    def _app_range(cls, v: float) -> float:
        if v > 12 * 3600:
            raise ValueError(f"app-consistent snapshots are taken every 0 to 12h, got {units.format_duration(v)}")
        return v


class Objectives(_Model):
    rpo: PositiveDuration = 15 * 60.0
    rto: PositiveDuration = 2 * 3600.0


# ----------------------------------------------------------------------------------------------------
# Experiment (read by drsim sweep; drsim run ignores it)


def _sweep_values(raw: object) -> object:
    if isinstance(raw, dict):
        return {k: v if isinstance(v, list) else [v] for k, v in raw.items()}
    return raw


class ExperimentSection(_Model):
    """How ``drsim sweep`` runs this scenario: replications, the sweep (a full factorial grid and/or a Latin
    hypercube over ranges), the precision to reach and the output. Options on the command line override these
    keys; ``drsim run`` and ``drsim plan`` ignore the section."""

    replications: int | None = Field(None, ge=1, description="replications of every sweep point (with "
                                     "precision: of the first round) [10]")
    seed: int | None = Field(None, ge=0, description="the experiment seed [the scenario's seed]")
    sweep: Annotated[dict[str, list[Any]], BeforeValidator(_sweep_values)] = Field(
        default_factory=dict, description="full factorial grid: dotted path -> list of values, as in a scenario")
    lhs: dict[str, LhsDimension] = Field(
        default_factory=dict, description="Latin hypercube: dotted path -> range 'LO..HI' (':log' after it for a "
                                          "log scale) or a list of choices")
    samples: int | None = Field(None, ge=1, description="Latin hypercube samples (needed with lhs)")
    precision: dict[str, str | float] = Field(
        default_factory=dict, description="METRIC[@VM] -> tolerance of the 95 % confidence half-width, e.g. "
                                          "rpo_p95_s: 30s, or '10%rel' relative to the mean")
    max_replications: int | None = Field(None, ge=2, description="with precision: at most this many replications "
                                         "per point [100, or replications if more]")
    batch_size: int | None = Field(None, ge=1, description="replications per task [automatic]")
    keep_runs: bool = Field(False, description="also save every run's full tables (large)")


# ----------------------------------------------------------------------------------------------------
# Scenario


class Scenario(_Model):
    """A complete what-if scenario. Times in seconds, sizes in bytes, rates in bytes per second."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    duration: PositiveDuration
    start: datetime | None = Field(None, description="calendar date-time of t = 0 (site local time)")
    seed: int = Field(0, ge=0)
    site: Site
    link: Link
    replication: Replication = Field(default_factory=Replication)
    objectives: Objectives = Field(default_factory=Objectives)
    failures: list[Failure] = Field(default_factory=list, description="what breaks, scripted or stochastic")
    failover: FailoverSteps = Field(default_factory=FailoverSteps, description="durations of operation steps")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="the failover policy and its parameters")
    drills: list[Drill] = Field(default_factory=list, description="test failovers")
    maintenance: list[Maintenance] = Field(default_factory=list, description="planned failovers of a host")
    plans: list[RecoveryPlan] = Field(default_factory=list, description="recovery plans (groups of VMs)")
    experiment: ExperimentSection | None = Field(
        None, description="how drsim sweep runs this scenario (drsim run ignores it)")

    # Not part of the file: where it came from, so traces resolve relative to it.
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The file this scenario was loaded from (None when built in code)."""
        return self._source

    def vms(self) -> list[tuple[Host, VM]]:
        """Every (host, VM) pair, in file order."""
        return [(h, v) for h in self.site.hosts for v in h.vms]

    def vm(self, name: str) -> VM:
        for _, v in self.vms():
            if v.name == name:
                return v
        raise KeyError(name)

    def initial_start_offset(self) -> float:
        """Seconds from t = 0 to the start of protection."""
        start = self.replication.initial.start
        if start == "immediate":
            return 0.0
        if isinstance(start, datetime):
            assert self.start is not None
            return (start - self.start).total_seconds()
        return float(start)

    def trace_path(self, trace: Trace) -> Path:
        base = self.source.parent if self.source is not None else Path.cwd()
        return trace.file if trace.file.is_absolute() else base / trace.file


# ----------------------------------------------------------------------------------------------------
# Errors


class Problem(BaseModel):
    """One problem in a scenario: where it is and what was expected."""

    loc: tuple[str | int, ...]
    message: str
    line: int | None = None
    column: int | None = None


class ScenarioError(Exception):
    """A scenario that cannot be used. ``str()`` gives one located line per problem."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = problems
        self.source = source
        super().__init__(self.format())

    def format(self) -> str:
        lines = []
        for p in self.problems:
            where = self.source or "<scenario>"
            if p.line is not None:
                where += f":{p.line}" + (f":{p.column}" if p.column is not None else "")
            place = location_text(p.loc)
            lines.append(f"{where}: {place + ': ' if place else ''}{p.message}")
        return "\n".join(lines)


def location_text(loc: tuple[str | int, ...]) -> str:
    """``('site', 'hosts', 0, 'vms', 2)`` -> ``'site.hosts[0].vms[2]'``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _MarkLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys (a silent overwrite hides mistakes)."""


def _construct_mapping(loader: _MarkLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_MarkLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _node_at(root: yaml.Node | None, loc: tuple[str | int, ...]) -> tuple[yaml.Node | None, bool]:
    """Find the YAML node at ``loc``; the flag says whether the whole path was found."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    node = v
                    break
            else:
                return node, False
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node, False
    return node, True


def _key_node(root: yaml.Node | None, loc: tuple[str | int, ...]) -> yaml.Node | None:
    parent, found = _node_at(root, loc[:-1])
    if found and isinstance(parent, yaml.MappingNode):
        for k, _ in parent.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(loc[-1]):
                return k
    return None


def _allowed_keys(loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the model that holds the key at ``loc`` (for "did you mean" hints)."""
    import types
    import typing

    tp: Any = Scenario
    for part in loc[:-1]:
        while True:
            origin = typing.get_origin(tp)
            if origin is Annotated:
                tp = typing.get_args(tp)[0]
            elif origin in (typing.Union, types.UnionType):
                args = [a for a in typing.get_args(tp) if a is not type(None)]
                tp = args[0] if args else tp
                if not args:
                    return []
            else:
                break
        if isinstance(part, int):
            args = typing.get_args(tp)
            if not args:
                return []
            tp = args[0]
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        else:
            return []
    while typing.get_origin(tp) in (Annotated, typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [n for n, f in tp.model_fields.items() if not f.exclude]
    return []


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        allowed = _allowed_keys(loc)
        hint = difflib.get_close_matches(key, allowed, n=1)
        text = f"unknown key {key!r}"
        if hint:
            text += f" (did you mean {hint[0]!r}?)"
        elif allowed:
            text += f"; expected one of {', '.join(allowed)}"
        return text
    if kind == "missing":
        return "required key is missing"
    if kind == "too_short":
        return "must list at least one item"
    if kind == "string_pattern_mismatch" and loc == ("name",):
        return (f"a scenario name starts with a letter or digit and holds only letters, digits, '.', '_' and '-' "
                f"(it names the results folder), got {err.get('input')!r}")
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if "input" in err and kind not in ("value_error",) and not isinstance(err["input"], dict | list):
        msg += f" (got {err['input']!r})"
    return msg


def _clean_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Drop pydantic's internal union/function tags from a location."""
    return tuple(p for p in loc if isinstance(p, int) or not (isinstance(p, str) and ("[" in p or "-" in p and
                                                                                      p.startswith("function"))))


def _locate(root: yaml.Node | None, loc: tuple[str | int, ...], key: bool) -> tuple[int | None, int | None]:
    node = _key_node(root, loc) if key else None
    if node is None:
        node, _ = _node_at(root, loc)
    if node is None:
        return None, None
    return node.start_mark.line + 1, node.start_mark.column + 1


def parse_scenario(
    data: Any, source: str | None = None, root: yaml.Node | None = None, base: Path | None = None
) -> Scenario:
    """Validate a mapping (already loaded from YAML) into a :class:`Scenario`.

    ``source`` names the file in messages; ``root`` (the composed YAML node tree) gives line numbers;
    ``base`` is the scenario's path, against which trace files resolve.
    """
    if data is None:
        raise ScenarioError([Problem(loc=(), message="the file is empty")], source)
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem(loc=(), message="expected a mapping of scenario keys at the top level, "
                     f"got {type(data).__name__}")],
            source,
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]))
            line, col = _locate(root, loc, key=err["type"] == "extra_forbidden")
            problems.append(Problem(loc=loc, message=_message(err), line=line, column=col))
        raise ScenarioError(problems, source) from None
    if base is not None:
        scenario._source = base
    problems = _check_references(scenario)
    for p in problems:
        p.line, p.column = _locate(root, p.loc, key=False)
    if problems:
        raise ScenarioError(problems, source)
    return scenario


def _check_references(s: Scenario) -> list[Problem]:
    """Checks across sections: unique names, names that must exist, files that must load."""
    problems: list[Problem] = []
    hosts: dict[str, int] = {}
    vms: dict[str, tuple[int, int]] = {}
    dashboards = []
    for hi, host in enumerate(s.site.hosts):
        if host.name in hosts:
            problems.append(Problem(loc=("site", "hosts", hi, "name"),
                                    message=f"host name {host.name!r} is used twice"))
        hosts[host.name] = hi
        for vi, vm in enumerate(host.vms):
            loc = ("site", "hosts", hi, "vms", vi)
            if vm.name in vms:
                problems.append(Problem(loc=(*loc, "name"), message=f"VM name {vm.name!r} is used twice"))
            vms[vm.name] = (hi, vi)
            if vm.dashboard:
                dashboards.append(loc)
            if vm.churn.trace is not None:
                path = s.trace_path(vm.churn.trace)
                try:
                    load_trace(path, vm.churn.trace)
                except TraceError as exc:
                    problems.append(Problem(loc=(*loc, "churn", "trace"), message=str(exc)))
    if len(dashboards) > 1:
        for loc in dashboards[1:]:
            problems.append(Problem(loc=(*loc, "dashboard"), message="only one VM can run the management dashboard"))
    if not vms:
        problems.append(Problem(loc=("site", "hosts"), message="the site has no VMs"))
    batches = s.replication.initial.batches
    if batches is not None:
        seen: set[str] = set()
        for bi, batch in enumerate(batches):
            if not batch:
                problems.append(Problem(loc=("replication", "initial", "batches", bi), message="a batch is empty"))
            for ni, name in enumerate(batch):
                loc = ("replication", "initial", "batches", bi, ni)
                if name not in vms:
                    hint = difflib.get_close_matches(name, list(vms), n=1)
                    problems.append(Problem(
                        loc=loc,
                        message=f"unknown VM {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                    ))
                elif name in seen:
                    problems.append(Problem(loc=loc, message=f"VM {name!r} is in more than one batch"))
                seen.add(name)
    problems.extend(_check_recovery_references(s, hosts, vms))
    start = s.replication.initial.start
    if isinstance(start, datetime) and start.tzinfo is not None:
        problems.append(Problem(loc=("replication", "initial", "start"),
                                message="give the date-time in site local time, without a zone"))
    elif isinstance(start, datetime):
        if s.start is None:
            problems.append(Problem(
                loc=("replication", "initial", "start"),
                message="a date-time start needs the scenario's calendar 'start'; or give an offset like 18h",
            ))
        elif start < s.start:
            problems.append(Problem(loc=("replication", "initial", "start"), message="starts before the scenario"))
    if s.start is not None and s.start.tzinfo is not None:
        problems.append(Problem(loc=("start",), message="give the calendar start in site local time, without a zone"))
    if not problems and s.initial_start_offset() >= s.duration:
        problems.append(Problem(loc=("replication", "initial", "start"),
                                message="starts after the simulated period ends"))
    return problems


def _name_problem(loc: tuple[str | int, ...], name: str, known: dict, what: str) -> Problem | None:
    if name in known:
        return None
    hint = difflib.get_close_matches(name, list(known), n=1)
    return Problem(loc=loc, message=f"unknown {what} {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))


def _check_time(s: Scenario, loc: tuple[str | int, ...], at: object) -> Problem | None:
    if isinstance(at, datetime):
        if s.start is None:
            return Problem(loc=loc, message="a date-time needs the scenario's calendar 'start'; or give an offset")
        if at.tzinfo is not None:
            return Problem(loc=loc, message="give the date-time in site local time, without a zone")
        if at < s.start:
            return Problem(loc=loc, message="is before the scenario starts")
    return None


def _check_recovery_references(s: Scenario, hosts: dict, vms: dict) -> list[Problem]:
    """Names in failures, drills, maintenance, plans and the policy must exist."""
    problems: list[Problem | None] = []
    for i, f in enumerate(s.failures):
        loc = ("failures", i)
        problems.append(_check_time(s, (*loc, "at"), f.at))
        known, what = (hosts, "host") if f.kind == "host" else (vms, "VM")
        for j, name in enumerate(f.targets or []):
            if name == "all" and len(f.targets or []) == 1:
                continue
            tloc = (*loc, "target") if isinstance(f.target, str) else (*loc, "target", j)
            problems.append(_name_problem(tloc, name, known, what))
    for i, d in enumerate(s.drills):
        problems.append(_check_time(s, ("drills", i, "at"), d.at))
        names = [d.vms] if isinstance(d.vms, str) else d.vms
        for j, name in enumerate(names):
            if name != "all":
                loc = ("drills", i, "vms") if isinstance(d.vms, str) else ("drills", i, "vms", j)
                problems.append(_name_problem(loc, name, vms, "VM"))
    for i, m in enumerate(s.maintenance):
        problems.append(_check_time(s, ("maintenance", i, "at"), m.at))
        problems.append(_name_problem(("maintenance", i, "host"), m.host, hosts, "host"))
    plan_names: set[str] = set()
    for i, plan in enumerate(s.plans):
        if plan.name in plan_names:
            problems.append(Problem(loc=("plans", i, "name"), message=f"plan name {plan.name!r} is used twice"))
        plan_names.add(plan.name)
        seen: set[str] = set()
        for g, group in enumerate(plan.groups):
            for j, name in enumerate(group.vms):
                loc = ("plans", i, "groups", g, "vms", j)
                problems.append(_name_problem(loc, name, vms, "VM"))
                if name in seen:
                    problems.append(Problem(loc=loc, message=f"VM {name!r} is in more than one group"))
                seen.add(name)
    try:
        validate_policy(s.policy, s)
    except PolicyError as exc:
        problems.append(Problem(loc=("policy", *exc.loc), message=exc.message))
    return [p for p in problems if p is not None]


def _load_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    try:
        root = yaml.compose(text, Loader=_MarkLoader)
        data = yaml.load(text, Loader=_MarkLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        problem = Problem(loc=(), message=f"malformed YAML: {what}", line=line, column=col)
        raise ScenarioError([problem], source) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(loc=(), message=f"malformed YAML: {exc}")], source) from None
    return data, root


#: A further check of a valid scenario: its problems, located by ``loc`` in the file.
Check = Callable[["Scenario"], list["Problem"]]


def load_scenario(path: str | Path, checks: Sequence[Check] = ()) -> Scenario:
    """Read and validate a scenario file. Raises :class:`ScenarioError` on any problem.

    ``checks`` are further checks of the valid scenario, each returning its problems (e.g. the experiment
    section's, :func:`drsim.experiments.section.section_problems`, which ``drsim validate`` and ``drsim sweep``
    run); their problems are located in the file like the others."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(loc=(), message="file not found")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(loc=(), message=f"cannot read the file: {exc}")], str(path)) from None
    data, root = _load_yaml(text, str(path))
    scenario = parse_scenario(data, source=str(path), root=root, base=path)
    problems = [p for check in checks for p in check(scenario)]
    for p in problems:
        p.line, p.column = _locate(root, p.loc, key=True)
    if problems:
        raise ScenarioError(problems, str(path))
    return scenario


def scenario_warnings(s: Scenario) -> list[str]:
    """Things that are allowed but worth a planner's attention (legacy settings, vendor limits)."""
    out = []
    eligible = {vm.name for host, vm in s.vms() if host.supported and vm.protect}
    for batch in s.replication.initial.batches or []:
        for name in batch:
            if name not in eligible:
                out.append(f"replication.initial.batches: {name} is listed but will not replicate "
                           "(protect: false or an unsupported host)")
    if s.replication.interval == 900.0:
        out.append("replication.interval: 15 minutes is a legacy frequency in the cloud service; prefer 30s or 5m")
    t = s.link.throttle
    if t is not None:
        for name in ("work_limit", "off_limit"):
            v = getattr(t, name)
            if v is not None and not MIN_THROTTLE <= v <= MAX_THROTTLE:
                out.append(f"link.throttle.{name}: the agent accepts 512 kbit/s to 1023 Mbit/s, "
                           f"got {units.format_rate(v)}")
    for host, vm in s.vms():
        if not host.supported and vm.protect:
            out.append(f"{vm.name}: host {host.name} runs {host.os}; hosts older than Windows Server 2012 R2 "
                       "cannot be protected")
        rate = mean_rate(s, vm)
        if vm.name in eligible and rate > CHURN_LIMIT_STANDARD:
            out.append(f"{vm.name}: mean churn {rate / 1e6:.2f} MB/s exceeds the 2 MB/s the service supports "
                       "per VM on standard storage")
    out.extend(trace_warnings(s))  # gaps filled and daylight-saving changes in counter logs
    return out


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files (for editor autocompletion)."""
    schema = Scenario.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "drsim scenario"
    return schema


def scenario_to_dict(s: Scenario, seed: int | None = None) -> dict[str, Any]:
    """The resolved scenario as plain data with units: every default filled in, trace paths absolute,
    and ``seed`` (if given) in place of the file's seed. Loading it again gives the same scenario. The
    ``experiment`` section is left out (it says how to run the scenario, not what runs), so it does not change
    :func:`scenario_hash` either."""
    data = s.model_dump(mode="json", exclude={"experiment"})  # how to run it is not part of what runs
    for hi, host in enumerate(s.site.hosts):
        for vi, vm in enumerate(host.vms):
            if vm.churn.trace is not None:
                trace = data["site"]["hosts"][hi]["vms"][vi]["churn"]["trace"]
                trace["file"] = str(s.trace_path(vm.churn.trace).resolve())
    if seed is not None:
        data["seed"] = seed
    return data


def scenario_hash(s: Scenario, seed: int | None = None) -> str:
    """A stable SHA-256 (first 16 hex digits) of :func:`scenario_to_dict` and the contents of its trace files:
    equal for equal runs."""
    data = scenario_to_dict(s, seed)
    traces = sorted({str(s.trace_path(vm.churn.trace).resolve()) for _, vm in s.vms() if vm.churn.trace is not None})
    data["_trace_sha256"] = [hashlib.sha256(Path(t).read_bytes()).hexdigest() for t in traces]
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
