"""Checks of a valid scenario across its sections, and the warnings a planner should see.

The models check each section alone; these check what spans sections: unique host, VM and plan names,
names that must exist (batches, failures, drills, maintenance, plans), trace files that must load, times
that need the calendar start, and the policy's parameters. Each problem is a :class:`Problem` located by
its place in the file. :func:`scenario_warnings` lists what is allowed but suspicious (legacy settings,
vendor limits).

Imports only :mod:`drsim.scenario` modules below the document (units, churn, policy, problems and the site
and link sections), and the document for hints.
"""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import TYPE_CHECKING

from drsim.scenario import units
from drsim.scenario.churn import TraceError, load_trace, mean_rate
from drsim.scenario.link import MAX_THROTTLE, MIN_THROTTLE
from drsim.scenario.policy import PolicyError, validate_policy
from drsim.scenario.problems import Problem
from drsim.scenario.site import churn_limit, protectable

if TYPE_CHECKING:
    from drsim.scenario.document import Scenario

__all__ = ["cross_section_problems", "scenario_warnings"]


def cross_section_problems(s: Scenario) -> list[Problem]:
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
                    load_trace(path)
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


def scenario_warnings(s: Scenario) -> list[str]:
    """Things that are allowed but worth a planner's attention (legacy settings, vendor limits)."""
    out = []
    eligible = {vm.name for host, vm in s.vms() if protectable(host, vm)}
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
        if not vm.protect:
            continue
        if not host.supported:
            out.append(f"{vm.name}: host {host.name} runs {host.os}; hosts older than Windows Server 2012 R2 "
                       "cannot be protected")
        for reason in vm.unsupported_reasons():
            out.append(f"{vm.name} cannot be protected: {reason} (support matrix)")
        rate = mean_rate(s, vm)
        limit = churn_limit(s.replication.target_storage, s.replication.io_size)
        if vm.name in eligible and rate > limit:
            out.append(f"{vm.name}: mean churn {rate / 1e6:.2f} MB/s exceeds the {limit / 1e6:g} MB/s the service "
                       f"supports per VM on {s.replication.target_storage} storage (support matrix)")
    for host in s.site.hosts:
        need = sum(vm.disk_size for vm in host.vms if protectable(host, vm))
        if host.free_space is not None and need > 0 and host.free_space < need:
            out.append(f"host {host.name}: {units.format_size(host.free_space)} free for the change logs; initial "
                       f"replication of its VMs may need up to {units.format_size(need)} (100 % of their disks) "
                       f"and delta replication up to {units.format_size(need / 2)} (50 %): when the log space runs "
                       "out, replication pauses and the VMs need resynchronisation")
    return out
