"""Scenario sections for failures, failover operations and the failover policy.

``failures`` lists what breaks (scripted at a time, or stochastic with a time between failures);
``failover`` gives the duration of each operation step; ``drills`` schedules test failovers;
``maintenance`` schedules planned failovers; ``plans`` defines recovery plans; ``policy`` selects the
failover policy by name with its parameters. Defaults follow the typical values in the domain notes
(cloud VM start 5-20 min, VM reboot about 5 min, host repair hours to days, site rebuild weeks). A
stochastic failure's mean time between failures is at least :data:`MIN_FAILURE_EVERY`.

Imports only the scenario's field types, distributions and units.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from drsim.scenario.distributions import Distribution
from drsim.scenario.fields import (
    PositiveDuration,
    RandomDuration,
    Rate,
    StrictModel,
    parse_time_point,
    random_default,
    random_duration,
)
from drsim.scenario.replication import CHECKSUM_RATE
from drsim.scenario.units import format_duration

__all__ = ["Failure", "CloudNetwork", "FailoverSteps", "Drill", "Maintenance", "PlanGroup", "Actions", "RecoveryPlan",
           "PolicyConfig", "TimePoint", "DEFAULT_REPAIR", "FAILURE_KINDS", "MIN_FAILURE_EVERY"]

FAILURE_KINDS = ("vm", "host", "site", "link", "corruption")

#: repair (or reboot) time when a failure gives none [assumptions based on typical values]
DEFAULT_REPAIR: dict[str, Distribution] = {
    "vm": random_duration("5m"),  # guest crash: reboot on its host
    "host": random_duration({"dist": "lognormal", "median": "8h", "p95": "72h"}),  # hours with a spare, days for parts
    "site": random_duration({"dist": "lognormal", "median": "7d", "p95": "21d"}),  # rebuild: days to weeks
    "link": random_duration({"dist": "lognormal", "median": "1h", "p95": "6h"}),
    "corruption": random_duration("0s"),
}
DEFAULT_DETECTION = random_duration({"dist": "lognormal", "median": "12h", "p95": "3d"})  # corruption noticed
#: Shortest mean time between stochastic failures, s. [assumption: a failure is noticed in about a minute (the
#: automatic policy probes every 60 s by default); failures closer than that are a typo, such as 1ms for 1m]
MIN_FAILURE_EVERY = 60.0


TimePoint = Annotated[
    datetime | float,
    BeforeValidator(parse_time_point),
    WithJsonSchema({"description": "an offset from the start like 10d or 10d9h12m, or a date-time",
                    "anyOf": [{"type": "string"}, {"type": "number", "minimum": 0}]}),
]


class Failure(StrictModel):
    """Something that breaks. Scripted with ``at`` (and a ``repair`` time), or stochastic with ``every``
    (the time between failures of each target, e.g. ``{dist: exponential, mean: 3y}``) and ``repair``."""

    kind: Literal["vm", "host", "site", "link", "corruption"]
    target: str | list[str] | None = Field(
        None, description="VM names (vm, corruption) or host names (host); 'all' for every one of the kind")
    at: TimePoint | None = None
    every: RandomDuration | None = None
    repair: RandomDuration | None = Field(None, description="time until repaired (vm: reboot); default per kind")
    disks_lost: bool = Field(False, description="the on-premises disks are destroyed (host, site, vm)")
    detected_after: RandomDuration | None = Field(None, description="corruption: time until it is noticed")

    @model_validator(mode="after")
    def _consistent(self) -> Failure:
        if (self.at is None) == (self.every is None):
            raise ValueError("give either 'at' (a scripted failure) or 'every' (time between failures)")
        if self.kind in ("site", "link") and self.target is not None:
            raise ValueError(f"a {self.kind} failure has no target")
        if self.kind in ("vm", "host", "corruption") and self.target is None:
            raise ValueError(f"a {self.kind} failure needs a target (a name, a list of names, or 'all')")
        if self.kind != "corruption" and self.detected_after is not None:
            raise ValueError("'detected_after' applies to corruption only")
        if self.kind in ("link", "corruption") and self.disks_lost:
            raise ValueError(f"a {self.kind} failure cannot lose disks")
        if self.kind == "corruption" and self.repair is not None:
            raise ValueError("a corruption is not repaired: give 'detected_after' (recovery uses a clean point)")
        if self.every is not None and not self.every.mean >= MIN_FAILURE_EVERY:
            raise ValueError(f"'every' (the time between failures) is at least {format_duration(MIN_FAILURE_EVERY)} "
                             f"on average, got {format_duration(self.every.mean)}")
        names = self.targets or []
        if "all" in names and len(names) > 1:
            raise ValueError("'all' stands alone, not in a list of names")
        return self

    @property
    def targets(self) -> list[str] | None:
        if self.target is None:
            return None
        return [self.target] if isinstance(self.target, str) else list(self.target)

    @property
    def repair_dist(self) -> Distribution:
        return self.repair if self.repair is not None else DEFAULT_REPAIR[self.kind]

    @property
    def detection_dist(self) -> Distribution:
        return self.detected_after if self.detected_after is not None else DEFAULT_DETECTION



class CloudNetwork(StrictModel):
    """How clients reach failed-over VMs: through the cloud virtual network, over a site-to-site VPN (clients at
    the site) or a point-to-site VPN (clients anywhere). Each exists beforehand (``ready``), is set up during the
    first incident that needs it (``set-up``, taking ``setup``), or (site-to-site only) does not exist (``none``:
    clients at the site use point-to-site too). While the site itself is down, clients can only come in
    point-to-site from elsewhere."""

    site_to_site: Literal["ready", "set-up", "none"] = "ready"
    point_to_site: Literal["ready", "set-up"] = "set-up"
    setup: RandomDuration = random_default({"dist": "lognormal", "median": "1h", "p95": "4h"})


class FailoverSteps(StrictModel):
    """Durations of the steps of failover and failback operations (random quantities)."""

    shutdown: RandomDuration = random_default("2m")
    prepare: RandomDuration = random_default({"dist": "lognormal", "median": "3m", "p95": "10m"})
    process_pending: RandomDuration = random_default({"dist": "lognormal", "median": "5m", "p95": "20m"})
    start: RandomDuration = random_default({"dist": "lognormal", "median": "8m", "p95": "20m"})
    reconnect: RandomDuration = random_default("2m")
    onprem_start: RandomDuration = random_default("5m")
    cleanup: RandomDuration = random_default("10m")
    portal: RandomDuration = random_default({"dist": "lognormal", "median": "10m", "p95": "30m"})
    quota: int | None = Field(None, ge=1, description="most VMs starting in the cloud at once (None: no limit)")
    network: CloudNetwork = Field(default_factory=CloudNetwork,
                                  description="the VPNs through which clients reach the cloud network")
    failback_sync: Literal["before-shutdown", "during-failover"] = Field(
        "before-shutdown",
        description="'before-shutdown' (synchronise data before failover): compare the disks by checksums and copy "
                    "the changed blocks while the cloud VM keeps serving, then the final delta; 'during-failover' "
                    "(synchronise during failover only): shut it down and download the whole disks")
    shutdown_first: bool = Field(
        False, description="unplanned failover: when the failed VM's host and the link still work, send its pending "
                           "log first (the portal's 'shut down the machine before failover'): no data lost")
    checksum_rate: Rate = Field(CHECKSUM_RATE, description="bytes/s of disk compared by block checksums before a "
                                                           "failback (default 3GB/min: 'a few GB per minute')")


class Drill(StrictModel):
    """A test failover: scheduled ``at`` a time, or ``every`` period (first at one period)."""

    vms: str | list[str] = Field(description="VM names, or 'all'", min_length=1)
    at: TimePoint | None = None
    every: PositiveDuration | None = None
    duration: RandomDuration = random_default("2h")
    point: Literal["latest", "latest-processed", "latest-app"] = "latest-processed"

    @model_validator(mode="after")
    def _when(self) -> Drill:
        if (self.at is None) == (self.every is None):
            raise ValueError("give either 'at' or 'every'")
        if isinstance(self.vms, list) and "all" in self.vms and len(self.vms) > 1:
            raise ValueError("'all' stands alone, not in a list of names")
        return self


class Maintenance(StrictModel):
    """Planned failover of every VM on a host for a maintenance window, then failback."""

    host: str
    at: TimePoint
    window: RandomDuration = random_default("4h")


class Actions(StrictModel):
    """Before or after a plan group: a manual action (waits for a person) and/or a script."""

    manual: RandomDuration | None = None
    script: RandomDuration | None = None


class PlanGroup(StrictModel):
    vms: list[str] = Field(min_length=1)
    before: Actions | None = None
    after: Actions | None = None


class RecoveryPlan(StrictModel):
    """Ordered groups of VMs failed over together: group k+1 starts when every VM of group k runs."""

    name: str = Field(min_length=1)
    groups: list[PlanGroup] = Field(min_length=1, max_length=7)

    @model_validator(mode="after")
    def _size(self) -> RecoveryPlan:
        n = sum(len(g.vms) for g in self.groups)
        if n > 100:
            raise ValueError(f"a recovery plan holds at most 100 VMs, got {n}")
        return self

    @property
    def vm_names(self) -> list[str]:
        return [v for g in self.groups for v in g.vms]


class PolicyConfig(BaseModel):
    """``name`` selects a failover policy; the other keys are its parameters (checked by the policy)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = "manual"

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

