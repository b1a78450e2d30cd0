"""The scenario in brief, as every report opens: label/value pairs (hosts, VMs, link, replication, period,
calendar, seed, objectives, failover policy with its parameters, failures, maintenance, drills, recovery plans)
and the table of hosts and VMs. :func:`scenario_brief` is a run's, :func:`brief_of` a scenario's without a run
seed (an experiment or a plan has one per replication); :func:`policy_params` formats the policy's parameters
with their defaults.

Imports :mod:`drsim.scenario`, :func:`drsim.model.policies.make_policy`, :mod:`drsim.results` (time
points) and :mod:`drsim.views.rendering`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from drsim.model.policies import make_policy
from drsim.results.findings import _when_short
from drsim.results.tables import Results
from drsim.scenario import units
from drsim.scenario.distributions import Distribution
from drsim.scenario.document import Scenario
from drsim.scenario.site import protectable
from drsim.views.rendering import Table, describe, percent

__all__ = ["scenario_brief", "brief_of", "policy_params"]

_fmt = units.format_duration


def _calendar(results: Results) -> str:
    start = results.scenario.start
    return f"{start:%a %d %b %Y %H:%M}" if start is not None else "none (t = 0 is a Monday 00:00)"


def _time_point(s: Scenario, at: datetime | float) -> str:
    seconds = (at - s.start).total_seconds() if isinstance(at, datetime) and s.start is not None else float(at)
    return _when_short_scenario(s, seconds)


def _when_short_scenario(s: Scenario, t: float) -> str:
    return _when_short(SimpleNamespace(scenario=s), t)  # type: ignore[arg-type]  # it reads only .scenario


def _churn_text(s: Scenario, vm: Any) -> str:
    c = vm.churn
    if c.trace is not None:
        text = f"trace {Path(c.trace.file).name}" + ("" if c.trace.repeat else " (once)")
    elif c.daily is not None:
        text = f"{percent(c.daily)}/day"
    else:
        text = f"{units.format_size(c.rate)}/s"
    extras = []
    if c.profile is not None:
        extras.append(f"profile {c.profile}" if isinstance(c.profile, str) else "custom profile")
    if c.weekend != 1.0:
        extras.append(f"weekend x{c.weekend:g}")
    if c.variation:
        extras.append(f"variation {c.variation:g}")
    return text + (f" ({', '.join(extras)})" if extras else "")


def _link_text(s: Scenario) -> str:
    link = s.link
    text = (f"{units.format_rate(link.upload)} up / {units.format_rate(link.download)} down, "
            f"efficiency {percent(link.efficiency, 0)}, compression {link.compression:g}")
    t = link.throttle
    if t is not None:
        def hhmm(x: float) -> str:
            return f"{int(x) // 3600:02d}:{int(x) % 3600 // 60:02d}"

        days = ", ".join(d.capitalize() for d in t.work_days)
        off = units.format_rate(t.off_limit) if t.off_limit is not None else "no limit"
        text += (f"; throttle {units.format_rate(t.work_limit)} {hhmm(t.work_hours[0])}-{hhmm(t.work_hours[1])} "
                 f"on {days}, {off} otherwise")
    return text


def _failure_text(s: Scenario, f: Any) -> str:
    what = f.kind if f.targets is None else f"{f.kind} {', '.join(f.targets)}"
    text = f"{what} {_time_point(s, f.at)}" if f.at is not None else f"{what} every {describe(f.every)}"
    if f.kind == "corruption":
        text += f", noticed after {describe(f.detection_dist)}"
    else:
        text += f", repair {describe(f.repair_dist)}"
    if f.disks_lost:
        text += ", disks lost"
    return text


def scenario_brief(results: Results) -> tuple[list[tuple[str, str]], Table]:
    s = results.scenario
    pairs = s.vms()
    eligible = [vm for host, vm in pairs if protectable(host, vm)]
    hosts = "; ".join(f"{h.name} ({h.os}{'' if h.supported else ', cannot be protected'})" for h in s.site.hosts)
    rep = s.replication
    app = (f"app-consistent every {_fmt(rep.app_consistent_every)}" if rep.app_consistent_every
           else "crash-consistent only")
    items = [
        ("Hosts", f"{len(s.site.hosts)}: {hosts}"),
        ("VMs", f"{len(pairs)}, {len(eligible)} protectable; "
                f"{units.format_size(sum(vm.disk_size for _, vm in pairs))} of disks, "
                f"{units.format_size(sum(vm.copy_bytes for vm in eligible))} to copy initially"),
        ("Link", _link_text(s)),
        ("Replication", f"every {_fmt(rep.interval)}, recovery points kept {_fmt(rep.retention)}, {app}"),
        ("Period", _fmt(s.duration)),
        ("Calendar start", _calendar(results)),
        ("Seed", str(results.seed)),
        ("Objectives", f"RPO {_fmt(s.objectives.rpo)}, RTO {_fmt(s.objectives.rto)}"),
        ("Failover policy", _policy_text(s)),
        ("Failures", "; ".join(_failure_text(s, f) for f in s.failures) or "none"),
    ]
    if s.maintenance:
        items.append(("Maintenance", "; ".join(f"host {m.host} {_time_point(s, m.at)}, window {describe(m.window)}"
                                               for m in s.maintenance)))
    if s.drills:
        items.append(("Drills", "; ".join(
            f"{d.vms if isinstance(d.vms, str) else ', '.join(d.vms)} "
            + (_time_point(s, d.at) if d.at is not None else f"every {_fmt(d.every)}")
            + f" for {describe(d.duration)}" for d in s.drills)))
    if s.plans:
        items.append(("Recovery plans", "; ".join(
            f"{p.name}: " + " then ".join("[" + ", ".join(g.vms) + "]" for g in p.groups) for p in s.plans)))
    if s.description.strip():
        items.insert(0, ("Description", " ".join(s.description.split())))
    rows = []
    for host, vm in pairs:
        disks = ", ".join(units.format_size(d.size) + ("" if d.used is None else f" ({units.format_size(d.used)} used)")
                          for d in vm.disks)
        role = "dashboard" if vm.dashboard else ""
        protect = ("no (host too old)" if not host.supported else "no (not supported)" if not vm.supported
                   else "yes" if vm.protect else "no")
        rows.append([vm.name, host.name, disks, _churn_text(s, vm), protect, role])
    table = Table(["VM", "host", "disks", "churn", "protected", "role"], rows,
                  [False, False, False, False, False, False], caption="Hosts and VMs")
    return items, table


def _policy_text(s: Scenario) -> str:
    params = policy_params(s)
    inner = "; ".join(f"{name}: {value}" for name, value, _ in params)
    return s.policy.name + (f" ({inner})" if inner else "")


def policy_params(s: Scenario) -> list[tuple[str, str, str]]:
    """(name, value, default) of every parameter of the scenario's policy, formatted."""

    try:
        policy = make_policy(s.policy, s)
    except Exception:  # an unknown or broken third-party policy: show what the scenario says
        return [(k, str(v), "") for k, v in s.policy.params.items()]
    out = []
    for name, info in type(policy.params).model_fields.items():
        value = getattr(policy.params, name)
        default = info.get_default(call_default_factory=True) if not info.is_required() else None
        is_duration = any(getattr(m, "func", None) is units.parse_duration for m in info.metadata)

        def fmt(v: Any, is_duration: bool = is_duration) -> str:
            if isinstance(v, Distribution):
                return v.describe(_fmt)
            if is_duration and isinstance(v, int | float):
                return _fmt(float(v))
            return str(v)

        out.append((name, fmt(value), "(required)" if info.is_required() else fmt(default)))
    return out


def brief_of(scenario: Scenario) -> tuple[list[tuple[str, str]], Table]:
    """The run report's scenario in brief, without the run seed (an experiment or plan has one per replication)."""
    items, table = scenario_brief(SimpleNamespace(scenario=scenario, seed=None))  # type: ignore[arg-type]  # reads both
    return [(label, value) for label, value in items if label != "Seed"], table
