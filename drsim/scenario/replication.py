"""The replication and objectives sections of a scenario: how often and how VMs replicate, and the RPO and
RTO they are held to.

``replication`` gives the interval (one of the service's frequencies), the recovery-point retention, the
app-consistent snapshot period, the per-host setup time, when and in which order initial replication
runs, and how a resynchronisation runs (when it starts, how fast disks are checksummed, which blocks the
writes changed). ``objectives`` gives the RPO and RTO targets. Times in seconds.

Imports only the scenario's units, distributions and field types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from drsim.scenario import units
from drsim.scenario.distributions import parse_distribution
from drsim.scenario.fields import (
    Duration,
    PositiveDuration,
    RandomDuration,
    Rate,
    Size,
    StrictModel,
    parse_time_point,
)

__all__ = ["Initial", "Resync", "Replication", "Objectives", "SUPPORTED_INTERVALS", "CHECKSUM_RATE"]

SUPPORTED_INTERVALS = (30.0, 300.0, 900.0)  # seconds: the replication frequencies the service offers
#: bytes/s at which source and target disks are compared block by block (resync, failback): the
#: failover/failback overview says checksums are compared at "a few GB per minute"; 3 GB/min is taken
CHECKSUM_RATE = 3e9 / 60.0


def _initial_start_before(raw: object) -> object:
    if raw is None or raw == "immediate":
        return "immediate"
    try:
        return parse_time_point(raw)
    except ValueError as exc:
        if str(exc).startswith("must not be negative"):
            raise ValueError(f"the initial start offset {exc}") from None
        raise


class Initial(StrictModel):
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


class Resync(StrictModel):
    """How a resynchronisation runs (a VM is marked for one when a disk's change log reaches 50 % of that
    disk's size): when it starts, how fast the disks are compared, which blocks the pending writes changed."""

    start: Literal["off-hours", "immediate"] = Field(
        "off-hours", description="the service schedules a resync outside office hours by default; 'immediate' "
                                 "starts it at once (started by hand)")
    checksum_rate: Rate = Field(
        CHECKSUM_RATE, description="bytes/s of disk compared by block checksums (default 3GB/min: 'a few GB per "
                                   "minute')")
    overwrite: Literal["random", "none"] = Field(
        "random", description="'random': writes fall uniformly at random on the disk's used blocks, so the "
                              "changed bytes are used x (1 - exp(-written / used)); 'none': no block is written "
                              "twice, min(written, used)")


class Replication(StrictModel):
    interval: PositiveDuration = 300.0
    retention: Duration = 24 * 3600.0
    app_consistent_every: Duration = 0.0
    setup: RandomDuration = Field(
        default_factory=lambda: parse_distribution("15m", units.parse_duration),
        description="agent install and vault creation before initial replication, per host",
    )
    initial: Initial = Field(default_factory=Initial)
    resync: Resync = Field(default_factory=Resync)
    processing_lag: Duration = Field(
        300.0, description="how long a recovery point in the cloud waits to be processed (applied to the replica "
                           "disks): 'latest processed' offers only points older than this (~5 min within limits)")
    target_storage: Literal["standard", "premium"] = Field(
        "standard", description="the cloud storage tier of the replicas: it sets the churn the service supports")
    io_size: Size = Field(8e3, description="average size of the VMs' writes (premium storage supports 20 MB/s "
                                           "per VM from 16 KB, else 5 MB/s)")

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

    @model_validator(mode="after")
    def _app_within_retention(self) -> Replication:
        every, kept = self.app_consistent_every, self.retention
        if every > 0 and every >= kept:
            raise ValueError(
                f"app_consistent_every ({units.format_duration(every)}) must be less than the retention "
                f"({units.format_duration(kept)}): no app-consistent point would be kept; the service refuses it")
        return self


class Objectives(StrictModel):
    rpo: PositiveDuration = 15 * 60.0
    rto: PositiveDuration = 2 * 3600.0
