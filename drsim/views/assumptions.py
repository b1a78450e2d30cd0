"""What a report's numbers rest on: the model's main approximations (:data:`APPROXIMATIONS`), the table of
values used with their defaults and basis, and the sources behind them (:func:`assumptions`), and the same as
blocks for the experiment and plan reports (:func:`assumption_blocks`).

Imports :mod:`drsim.scenario` (defaults), the model's constants (health, retries), :mod:`drsim.views.rendering`
and :func:`drsim.views.brief.policy_params`.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from drsim.model.recovery import RETRY_BACKOFF, RETRY_EVERY
from drsim.model.replication import CRITICAL_LOG_SHARE, HEALTH_WINDOW, WARN_MISSED_SHARE, WARN_SILENCE
from drsim.results.tables import Results
from drsim.scenario import SUPPORTED_INTERVALS, units
from drsim.scenario.churn import PROFILES
from drsim.scenario.document import Link, Objectives, Replication, Scenario
from drsim.scenario.recovery import DEFAULT_DETECTION, DEFAULT_REPAIR, Drill, FailoverSteps, Maintenance
from drsim.scenario.site import CHURN_LIMIT_STANDARD
from drsim.views.brief import policy_params
from drsim.views.rendering import Block, Table, describe, percent

__all__ = ["APPROXIMATIONS", "assumptions", "assumption_blocks"]

_fmt = units.format_duration

#: The model's main approximations (kept in step with README.md, "Assumptions and approximations").
APPROXIMATIONS: tuple[str, ...] = (
    "Churn is the VM's write rate and every byte written is replicated (no de-duplication of rewrites within a "
    "cycle, which would make real deltas smaller); a daily churn is a share of the provisioned disk size.",
    "Health is judged at replication ticks (at most one interval late), and so is a resync mark once a VM is "
    "protected (during initial replication it is exact).",
    "A resync checksums and then sends each disk in turn (the real comparison overlaps them); the checksum exchange "
    "costs nothing on the link; a disk's used size does not grow; which blocks the writes changed is the "
    "replication.resync.overwrite assumption.",
    "Ticks before protection (while the catch-up is in flight) are not cycles: their writes go into the first "
    "delta.",
    "Throttling applies to the site's shared uplink as a whole (the real agent throttles per host).",
    "Without a calendar start, t = 0 is a Monday 00:00 for profiles and throttle schedules.",
    "Protocol overhead is one efficiency factor; latency and TCP dynamics are not modelled.",
    "A failure that hits a VM already down or in the cloud adds no incident; while a VM is down it writes "
    "nothing; the RPO is defined only while the VM replicates on-premises.",
    "Failover steps take the durations given; cloud capacity is only the quota on parallel starts; a failover "
    "once started runs to its end even if the on-premises side is repaired meanwhile.",
    "Corruption makes the recovery points captured after its start unusable; it does not spread.",
    "Test failovers cost nothing on the link (the cloud copy is used in place).",
)

_STEP_BASIS = {
    "shutdown": "orderly guest shutdown before a planned move or failback: an assumption",
    "prepare": "the failover's disk preparation from the recovery point: an assumption",
    "process_pending": "pending data processed before a 'latest' failover: an assumption, after the support "
                       "matrix's ~5-minute processing backlog",
    "start": "cloud VM start: 5-20 min, Windows slower (secondary sources: peer documentation)",
    "reconnect": "clients and DNS reconnect to the moved VM: an assumption",
    "onprem_start": "VM start on-premises after a repair or failback: a reboot takes about 5 min (secondary sources)",
    "cleanup": "deprovisioning the cloud or test VM and deleting its disk: an assumption",
    "portal": "extra time to trigger from the cloud portal when the Essentials dashboard is down: an assumption",
}
_REPAIR_BASIS = {
    "vm": "a guest crash: the VM reboots on its host, about 5 min (secondary sources)",
    "host": "1 h with a spare on site to 24-72 h when parts are ordered (secondary sources); the distribution is "
            "an assumption",
    "site": "rebuilding a site after a disaster, days to weeks: an assumption",
    "link": "ISP outage, usually an hour, sometimes most of a day: an assumption",
}


# --- the values used and their basis ---------------------------------------------------------------------


def _default_row(setting: str, value: Any, default: Any, basis: str) -> list[str]:
    shown = describe(value)
    same = value == default
    return [setting, shown + (" (default)" if same else ""), describe(default), basis]


def assumptions(results: Results) -> tuple[Table, list[str]]:
    s = results.scenario
    rows = []
    rep0, obj0, steps0 = Replication(), Objectives(), FailoverSteps()
    efficiency0 = Link.model_fields["efficiency"].default
    rows.append(_default_row("replication.setup", s.replication.setup, rep0.setup,
                             "agent install and vault creation per host: an assumption"))
    rows.append(["link.efficiency", percent(s.link.efficiency, 0) + (" (default)" if s.link.efficiency == efficiency0
                                                                   else ""), percent(efficiency0, 0),
                 "share of the raw bandwidth left for payload after protocol overhead: an assumption"])
    rows.append(["link.compression", f"{s.link.compression:g}" + (" (default)" if s.link.compression == 1 else ""),
                 "1", "the service has no compression option for Hyper-V to the cloud; a ratio above 1 models a "
                      "third-party WAN optimiser (sizing guides assume up to 2:1)"])
    rs, rs0 = s.replication.resync, rep0.resync
    rows.append(_default_row("replication.resync.start", rs.start, rs0.start,
                             "outside office hours, as the service schedules it (architecture)"))
    rows.append(["replication.resync.checksum_rate", f"{rs.checksum_rate * 60 / 1e9:.3g} GB/min"
                 + (" (default)" if rs.checksum_rate == rs0.checksum_rate else ""),
                 f"{rs0.checksum_rate * 60 / 1e9:.3g} GB/min",
                 "'a few GB per minute' (failover/failback overview); the exact value is an assumption"])
    rows.append(_default_row("replication.resync.overwrite", rs.overwrite, rs0.overwrite,
                             "which blocks the pending writes changed: an assumption"))
    rows.append(_default_row("objectives.rpo", s.objectives.rpo, obj0.rpo, "the planner's target"))
    rows.append(_default_row("objectives.rto", s.objectives.rto, obj0.rto, "the planner's target"))
    for step, basis in _STEP_BASIS.items():
        rows.append(_default_row(f"failover.{step}", getattr(s.failover, step), getattr(steps0, step), basis))
    rows.append(_default_row("failover.network.setup", s.failover.network.setup, steps0.network.setup,
                             "a VPN into the cloud network set up during an incident: an assumption"))
    rows.append(_default_row("replication.processing_lag", s.replication.processing_lag, rep0.processing_lag,
                             "before a point counts as processed: the support matrix's ~5-minute backlog"))
    kinds = {f.kind for f in s.failures}
    for kind, basis in _REPAIR_BASIS.items():
        given = sorted({describe(f.repair_dist) for f in s.failures if f.kind == kind and f.repair is not None})
        uses_default = any(f.kind == kind and f.repair is None for f in s.failures)
        if kind not in kinds:
            shown = "no failure of this kind"
        else:
            shown = "; ".join(given + ([describe(DEFAULT_REPAIR[kind]) + " (default)"] if uses_default else []))
        rows.append([f"repair of a {kind} failure", shown, describe(DEFAULT_REPAIR[kind]), basis])
    corr = [f for f in s.failures if f.kind == "corruption"]
    shown = ("; ".join(sorted({describe(f.detection_dist) + (" (default)" if f.detected_after is None else "")
                               for f in corr})) if corr else "no corruption")
    rows.append(["corruption noticed after", shown, describe(DEFAULT_DETECTION),
                 "hours to days until someone notices: an assumption"])
    drill_default = Drill(vms="all", every=1.0).duration
    drills = "; ".join(sorted({describe(d.duration) + (" (default)" if d.duration == drill_default else "")
                               for d in s.drills})) or "no drills"
    rows.append(["drills.duration", drills, describe(drill_default), "a test failover kept up for checks"])
    window_default = Maintenance(host="h", at=0.0).window
    windows = "; ".join(sorted({describe(m.window) + (" (default)" if m.window == window_default else "")
                                for m in s.maintenance})) or "no maintenance"
    rows.append(["maintenance.window", windows, describe(window_default), "a maintenance window: an assumption"])
    for name, value, default in policy_params(s):
        rows.append([f"policy {s.policy.name}: {name}", value + (" (default)" if value == default else ""), default,
                     "drsim/scenario/policy.py: operator reaction times are assumptions"])
    profiles = sorted({vm.churn.profile for _, vm in s.vms() if isinstance(vm.churn.profile, str)})
    for name in profiles:
        shape = PROFILES.get(name)
        peak = "" if shape is None else f", busiest {int(np.argmax(shape)):02d}:00"
        rows.append([f"churn profile {name}", "used", "-",
                     f"illustrative assumption (drsim/scenario/churn.py){peak}, not a measurement"])
    table = Table(["setting", "this run", "default", "basis"], rows, [False, False, False, False],
                  caption="Values used and their basis")
    retry = ", ".join(_fmt(x) for x in RETRY_BACKOFF)
    after = ", ".join(_fmt(x) for x in np.cumsum(RETRY_BACKOFF))
    sources = [
        "Step durations, repair and detection times: defaults in drsim/scenario/recovery.py; the cloud VM start (5-20 "
        "min), a reboot (about 5 min) and host repairs (1 h to 72 h) follow secondary sources (peer documentation and "
        "industry surveys; dates not recorded), the others are assumptions, not vendor figures (README: 'Product "
        "facts, defaults and their basis'). '(default)' marks a value the scenario did not change.",
        "Churn profiles (office, office-backup, nightly-batch, morning-batch) in drsim/scenario/churn.py are "
        "illustrative assumptions based on typical values (2-5 % of the disk a day, office hours), not measurements.",
        "Failover policy parameters: defaults in drsim/scenario/policy.py.",
        "Health as the monitoring FAQ gives it for Hyper-V replication (drsim/model/replication.py): warning when "
        f"at least {percent(WARN_MISSED_SHARE, 0)} of "
        f"the last {_fmt(HEALTH_WINDOW)} of cycles were missed or nothing replicated for over {_fmt(WARN_SILENCE)}; "
        f"critical while a resynchronisation is pending or running: a VM is marked for one when a disk's change log "
        f"reaches {percent(CRITICAL_LOG_SHARE, 0)} of that disk's size (architecture; monitoring FAQ; vendor "
        "documentation, date not recorded).",
        "Resync checksums at 3 GB/min by default: the failover/failback overview says block checksums are compared "
        "at 'a few GB per minute' (vendor documentation; date not recorded); the value within that range, its use "
        "for resyncs and the changed-blocks rule are assumptions.",
        "Service limits (drsim/scenario/replication.py, drsim/scenario/link.py, drsim/scenario/site.py): "
        "replication every "
        + ", ".join(_fmt(x) for x in SUPPORTED_INTERVALS)
        + "; recovery points kept 0-24 h; app-consistent snapshots every 0-12 h (architecture); hosts need Windows "
          "Server 2012 R2 or later; OS disk at most 2,047 GB (generation 1) or 300 GB (generation 2), data disks at "
          f"most 4,095 GB, at most 16 data disks; average churn per VM up to {CHURN_LIMIT_STANDARD / 1e6:g} MB/s on "
          "standard storage, 5 MB/s on premium (20 MB/s with writes of 16 KB or more), judged on the 95th percentile "
          "of the simulated churn; host free space for the change logs up to 100 % of the VHD size during initial "
          "replication, 50 % during delta replication (support matrix; vendor documentation, date not recorded).",
        f"After a link failure each transfer is retried at waits of {retry} ({after} after the failure), then every "
        f"{_fmt(RETRY_EVERY)} (drsim/model/recovery.py; vendor documentation, title and date not recorded).",
    ]
    return table, sources


def assumption_blocks(scenario: Scenario) -> list[Block]:
    defaults, sources = assumptions(SimpleNamespace(scenario=scenario))  # type: ignore[arg-type]  # reads .scenario
    return [Block("p", "What the numbers rest on. Defaults are assumptions based on typical values, not "
                       "measurements; change them in the scenario file when better figures are known."),
            Block("table", defaults), Block("h3", "Sources"), Block("ul", sources),
            Block("h3", "Model approximations"), Block("ul", list(APPROXIMATIONS))]
