"""The scenario document: the top-level :class:`Scenario` model that gathers every section, the experiment
section, and the resolved scenario as plain data with its hash.

A scenario describes one on-premises Hyper-V site replicating to the cloud: hosts and their VMs (disks,
churn), the WAN link, the replication policy and the objectives, failures and the operations that answer
them. All values are held in base units: seconds, bytes, bytes per second, plain fractions. Files are read
by :mod:`drsim.scenario.loading`; cross-section checks are in :mod:`drsim.scenario.checks`.

Imports only the section models of :mod:`drsim.scenario` (site, link, replication, recovery), its field
types, its problems and :mod:`drsim.scenario.quoting`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PrivateAttr, WithJsonSchema

from drsim.scenario.fields import LhsDimension, PositiveDuration, StrictModel
from drsim.scenario.link import Link
from drsim.scenario.prices import load_price_sheet
from drsim.scenario.problems import Problem, ScenarioError, location_text
from drsim.scenario.quoting import excerpt
from drsim.scenario.recovery import Drill, FailoverSteps, Failure, Maintenance, PolicyConfig, RecoveryPlan
from drsim.scenario.replication import Objectives, Replication
from drsim.scenario.site import VM, Host, Site, Trace

__all__ = ["Scenario", "ExperimentSection", "scenario_to_dict", "scenario_hash", "MAX_NAME"]

# ----------------------------------------------------------------------------------------------------
# Experiment (read by drsim sweep; drsim run ignores it)


def _sweep_values(raw: object) -> object:
    if isinstance(raw, dict):
        return {k: v if isinstance(v, list) else [v] for k, v in raw.items()}
    return raw


class ExperimentSection(StrictModel):
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

#: Most characters of a scenario name. [basis: it names a results folder, and file names hold at most 255 bytes
#: on common file systems; 100 leaves room for the folders drsim adds and reads in a table]
MAX_NAME = 100


#: ``start`` in the JSON Schema: ISO 8601 in site local time, no zone, so not the JSON Schema ``date-time`` format
#: (RFC 3339 requires an offset): a date, or a date and time with ``T``, ``t`` or a space between
_START_SCHEMA = {"anyOf": [{"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"},
                           {"type": "null"}],
                 "description": "calendar date-time of t = 0 in site local time, without a zone: "
                                "2026-03-02T08:00:00, 2026-03-02 08:00 or 2026-03-02"}


def _calendar_start(raw: object) -> object:
    """A calendar date-time as written (``2026-03-02T08:00:00``, or a date: midnight); not a number, which pydantic
    would take for seconds since 1970 in UTC."""
    if raw is None or isinstance(raw, datetime):
        return raw
    if isinstance(raw, date):
        return datetime.combine(raw, time())
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.strip())
        except ValueError:
            pass
    if isinstance(raw, int | float) and not isinstance(raw, bool) or isinstance(raw, str) and _is_number(raw):
        raise ValueError("give the calendar start as a date-time in site local time, like 2026-03-02T08:00:00 "
                         f"(got {excerpt(raw)})")
    raise ValueError(f"expected a calendar date-time like 2026-03-02T08:00:00, got {excerpt(raw)}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_prices(value: Any) -> Any:
    """A ``prices:`` section must merge over the bundled sheet into a valid one."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("a mapping of price-sheet sections (licence, storage, compute, ...)")
    try:
        load_price_sheet(overrides=value)
    except ScenarioError as exc:
        p = exc.problems[0]
        raise ValueError(f"{location_text(p.loc)}: {p.message}") from None
    return value


class Scenario(StrictModel):
    """A complete what-if scenario. Times in seconds, sizes in bytes, rates in bytes per second."""

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    duration: PositiveDuration
    start: Annotated[datetime | None, BeforeValidator(_calendar_start), WithJsonSchema(_START_SCHEMA)] = Field(
        None, description="calendar date-time of t = 0 (site local time)")
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
    prices: Annotated[dict[str, Any] | None, BeforeValidator(_check_prices)] = Field(
        None, description="price sheet entries merged over the bundled sheet (drsim.scenario.prices)")
    experiment: ExperimentSection | None = Field(
        None, description="how drsim sweep runs this scenario (drsim run ignores it)")

    # Not part of the file: where it came from, so traces resolve relative to it; warnings only the file as written
    # shows (a bare number where a unit was likely meant) and where each warning is in it (loc -> line, column).
    _source: Path | None = PrivateAttr(None)
    _raw_warnings: list[Problem] = PrivateAttr(default_factory=list)
    _warning_lines: dict[tuple[str | int, ...], tuple[int | None, int | None]] = PrivateAttr(default_factory=dict)

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


def scenario_to_dict(s: Scenario, seed: int | None = None) -> dict[str, Any]:
    """The resolved scenario as plain data with units: every default filled in, trace paths absolute,
    and ``seed`` (if given) in place of the file's seed. Loading it again gives the same scenario. The
    ``experiment`` section is left out (it says how to run the scenario, not what runs), so it does not change
    :func:`scenario_hash` either."""
    data = s.model_dump(mode="json", exclude={"experiment"})  # how to run it is not part of what runs
    if data.get("prices") is None:
        data.pop("prices", None)
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
    data.pop("prices", None)  # prices change no table
    traces = sorted({str(s.trace_path(vm.churn.trace).resolve()) for _, vm in s.vms() if vm.churn.trace is not None})
    data["_trace_sha256"] = [hashlib.sha256(Path(t).read_bytes()).hexdigest() for t in traces]
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
