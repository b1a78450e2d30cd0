"""Checks of a valid scenario across its sections, and the warnings a planner should see.

The models check each section alone; these check what spans sections: unique host, VM and plan names, names that
must exist (batches, failures, drills, maintenance, plans), trace files that must load, times that need the calendar
start (and a run that fits the tables' calendar), and the policy's parameters. Each problem is a :class:`Problem`
located by its place in the file. :func:`warning_problems` lists what is allowed but suspicious (legacy settings,
vendor limits, values that are almost surely mistakes: a bare number of seconds where hours or days are meant, a
daily churn over half the disk, churn above the link, a run too short for the initial copies), located like
problems; :func:`scenario_warnings` gives them in words, :func:`located_warnings` with the file's line and column.

Imports only :mod:`drsim.scenario` modules below the document (units, churn, policy, problems, quoting and the
site and link sections), and the document for hints.
"""

from __future__ import annotations

import difflib
import math
from datetime import datetime
from typing import TYPE_CHECKING

from drsim.scenario import units
from drsim.scenario.churn import TraceError, load_trace, mean_rate, trace_warnings
from drsim.scenario.link import MAX_THROTTLE, MIN_THROTTLE
from drsim.scenario.policy import PolicyError, validate_policy
from drsim.scenario.problems import Problem, location_text
from drsim.scenario.quoting import excerpt, printable
from drsim.scenario.site import churn_limit, protectable

if TYPE_CHECKING:
    from drsim.scenario.document import Scenario

__all__ = ["cross_section_problems", "scenario_warnings", "warning_problems", "located_warnings",
           "bare_duration_warnings", "LONG_DURATIONS", "DAILY_CHURN_SUSPECT", "FIRST_DAY", "LAST_DAY"]

#: The calendar a run with a calendar start must lie in. [basis: pandas' nanosecond timestamps, which the result
#: tables use, run from 1677-09-21 to 2262-04-11; 1900 is an assumption: no site replicated to a cloud before]
FIRST_DAY = datetime(1900, 1, 1)
LAST_DAY = datetime(2262, 1, 1)


def cross_section_problems(s: Scenario) -> list[Problem]:
    """Checks across sections: unique names, names that must exist, files that must load."""
    problems: list[Problem] = []
    hosts: dict[str, int] = {}
    vms: dict[str, tuple[int, int]] = {}
    dashboards = []
    for hi, host in enumerate(s.site.hosts):
        if host.name in hosts:
            problems.append(Problem(loc=("site", "hosts", hi, "name"),
                                    message=f"host name {excerpt(host.name)} is used twice"))
        hosts[host.name] = hi
        for vi, vm in enumerate(host.vms):
            loc = ("site", "hosts", hi, "vms", vi)
            if vm.name in vms:
                problems.append(Problem(loc=(*loc, "name"), message=f"VM name {excerpt(vm.name)} is used twice"))
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
                        message=f"unknown VM {excerpt(name)}" + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                    ))
                elif name in seen:
                    problems.append(Problem(loc=loc, message=f"VM {excerpt(name)} is in more than one batch"))
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
        elif s.start.tzinfo is None and start < s.start:  # a zoned calendar start is a problem of its own
            problems.append(Problem(loc=("replication", "initial", "start"), message="starts before the scenario"))
    if s.start is not None and s.start.tzinfo is not None:
        problems.append(Problem(loc=("start",), message="give the calendar start in site local time, without a zone"))
    elif s.start is not None and not (s.start >= FIRST_DAY and (LAST_DAY - s.start).total_seconds() >= s.duration):
        problems.append(Problem(loc=("start",), message=(
            f"the run must lie between {FIRST_DAY.date()} and {LAST_DAY.date()} (the calendar of the result tables), "
            f"got a start on {s.start.date()} and a duration of {units.format_duration(s.duration)}")))
    if not problems and s.initial_start_offset() >= s.duration:
        problems.append(Problem(loc=("replication", "initial", "start"),
                                message="starts after the simulated period ends"))
    return problems


def _name_problem(loc: tuple[str | int, ...], name: str, known: dict, what: str) -> Problem | None:
    if name in known:
        return None
    hint = difflib.get_close_matches(name, list(known), n=1)
    return Problem(loc=loc, message=f"unknown {what} {excerpt(name)}" + (f" (did you mean {hint[0]!r}?)" if hint
                                                                         else ""))


def _check_time(s: Scenario, loc: tuple[str | int, ...], at: object) -> Problem | None:
    if isinstance(at, datetime):
        if s.start is None:
            return Problem(loc=loc, message="a date-time needs the scenario's calendar 'start'; or give an offset")
        if at.tzinfo is not None:
            return Problem(loc=loc, message="give the date-time in site local time, without a zone")
        if s.start.tzinfo is None and at < s.start:  # a zoned calendar start is a problem of its own
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
            problems.append(Problem(loc=("plans", i, "name"), message=f"plan name {excerpt(plan.name)} is used twice"))
        plan_names.add(plan.name)
        seen: set[str] = set()
        for g, group in enumerate(plan.groups):
            for j, name in enumerate(group.vms):
                loc = ("plans", i, "groups", g, "vms", j)
                problems.append(_name_problem(loc, name, vms, "VM"))
                if name in seen:
                    problems.append(Problem(loc=loc, message=f"VM {excerpt(name)} is in more than one group"))
                seen.add(name)
    try:
        validate_policy(s.policy, s)
    except PolicyError as exc:
        problems.append(Problem(loc=("policy", *exc.loc), message=exc.message))
    return [p for p in problems if p is not None]


def warning_problems(s: Scenario) -> list[Problem]:
    """What is allowed but worth a planner's attention (legacy settings, vendor limits, values that are almost
    surely mistakes), each located by ``loc`` in the file; the message names its subject (a key or a VM)."""
    out: list[Problem] = list(s._raw_warnings)
    eligible = {vm.name for host, vm in s.vms() if protectable(host, vm)}
    for bi, batch in enumerate(s.replication.initial.batches or []):
        for ni, name in enumerate(batch):
            if name not in eligible:
                out.append(Problem(loc=("replication", "initial", "batches", bi, ni),
                                   message=f"replication.initial.batches: {name} is listed but will not replicate "
                                           "(protect: false, an unsupported host or a VM beyond the "
                                           "service's limits)"))
    if s.replication.interval == 900.0:
        out.append(Problem(loc=("replication", "interval"), message="replication.interval: 15 minutes is a legacy "
                                                                    "frequency in the cloud service; prefer 30s or 5m"))
    t = s.link.throttle
    if t is not None:
        for name in ("work_limit", "off_limit"):
            v = getattr(t, name)
            if v is not None and not MIN_THROTTLE <= v <= MAX_THROTTLE:
                out.append(Problem(loc=("link", "throttle", name),
                                   message=f"link.throttle.{name}: the agent accepts 512 kbit/s to 1023 Mbit/s, "
                                           f"got {units.format_rate(v)}"))
    limit = churn_limit(s.replication.target_storage, s.replication.io_size)
    for hi, host in enumerate(s.site.hosts):
        for vi, vm in enumerate(host.vms):
            loc = ("site", "hosts", hi, "vms", vi)
            if vm.protect and not host.supported:
                out.append(Problem(loc=loc, message=f"{vm.name}: host {host.name} runs {host.os}; hosts older than "
                                                    "Windows Server 2012 R2 cannot be protected"))
            if vm.protect:
                for reason in vm.unsupported_reasons():
                    out.append(Problem(loc=(*loc, "disks"),
                                       message=f"{vm.name} cannot be protected: {reason} (support matrix)"))
            rate = mean_rate(s, vm)
            if vm.name in eligible and rate > limit:
                shown = f"{rate / 1e6:.2f}" if rate < 1e12 else f"{rate / 1e6:.3g}"  # never a 300-digit number
                out.append(Problem(loc=(*loc, "churn"), message=f"{vm.name}: mean churn {shown} MB/s exceeds "
                                                                f"the {limit / 1e6:g} MB/s the service supports per "
                                                                f"VM on {s.replication.target_storage} storage "
                                                                "(support matrix)"))
            daily = vm.churn.daily
            if daily is not None and daily > DAILY_CHURN_SUSPECT:
                out.append(Problem(loc=(*loc, "churn", "daily"),
                                   message=f"{vm.name}: churn.daily {daily:.0%} of the disk a day is more than "
                                           f"{DAILY_CHURN_SUSPECT:.0%}: a bare number is a fraction (1 is 100 %); "
                                           "write e.g. 1% for one per cent a day"))
        need = sum(vm.disk_size for vm in host.vms if protectable(host, vm))
        if host.free_space is not None and need > 0 and host.free_space < need:
            out.append(Problem(
                loc=("site", "hosts", hi, "free_space"),
                message=f"host {host.name}: {units.format_size(host.free_space)} free for the change logs; initial "
                        f"replication of its VMs may need up to {units.format_size(need)} (100 % of their disks) "
                        f"and delta replication up to {units.format_size(need / 2)} (50 %): when the log space runs "
                        "out, replication pauses and the VMs need resynchronisation"))
    out.extend(_link_warnings(s, eligible))
    # gaps filled and daylight-saving changes in counter logs, at the VM's trace
    by_name = {vm.name: ("site", "hosts", hi, "vms", vi, "churn", "trace")
               for hi, host in enumerate(s.site.hosts) for vi, vm in enumerate(host.vms)}
    out.extend(Problem(loc=by_name.get(w.split(":", 1)[0], ()), message=w) for w in trace_warnings(s))
    return out


def _link_warnings(s: Scenario, eligible: set[str]) -> list[Problem]:
    """Churn above the link's mean payload capacity; a run shorter than the initial copies take at full speed."""
    link, out = s.link, []
    t = link.throttle
    if t is None:
        mean_raw = best_raw = link.upload
    else:
        work = len(t.weekday_numbers) * (t.work_hours[1] - t.work_hours[0]) / units.WEEK  # share of the week
        work_raw = min(link.upload, t.work_limit)
        off_raw = link.upload if t.off_limit is None else min(link.upload, t.off_limit)
        mean_raw = work * work_raw + (1 - work) * off_raw
        best_raw = max(work_raw if work > 0 else 0.0, off_raw if work < 1 else 0.0)
    vms = [vm for _, vm in s.vms() if vm.name in eligible]
    churn = sum(mean_rate(s, vm) for vm in vms) / link.compression  # wire bytes/s
    if churn >= mean_raw * link.efficiency > 0:
        out.append(Problem(loc=("link", "upload"), message=(
            f"link: the protected VMs' churn ({units.format_rate(churn)} on the wire) exceeds the link's mean "
            f"payload capacity ({units.format_rate(mean_raw * link.efficiency)}): replication cannot keep up; the "
            "RPO grows until a disk's change log reaches half the disk and the VM needs resynchronisation")))
    copy = sum(vm.copy_bytes for vm in vms) / link.compression
    needs = s.initial_start_offset() + copy / (best_raw * link.efficiency) if best_raw > 0 else math.inf
    if vms and needs > s.duration:
        out.append(Problem(loc=("duration",), message=(
            f"duration: the run ({units.format_duration(s.duration)}) is shorter than the initial replication needs "
            f"at the least ({units.format_duration(needs)}: {units.format_size(copy * link.compression)} at the "
            f"link's best payload rate{', from replication.initial.start' if s.initial_start_offset() else ''}): "
            "VMs will end the run not protected")))
    return out


#: durations that are hours or more in practice: a bare number (seconds) below an hour there is likely a slip
LONG_DURATIONS = (("duration",), ("replication", "retention"), ("replication", "app_consistent_every"),
                  ("objectives", "rto"), ("failures", "*", "every"), ("failures", "*", "repair"),
                  ("failures", "*", "detected_after"), ("maintenance", "*", "window"), ("drills", "*", "every"),
                  ("drills", "*", "duration"))
DAILY_CHURN_SUSPECT = 0.5  #: a daily churn above this share of the disk is likely a slip (assumption: 2-5 % is typical)


def _at(data: object, pattern: tuple[str, ...], loc: tuple = ()) -> list[tuple[tuple, object]]:
    """The values of ``data`` at ``pattern`` (``*``: every item of a list), with their locations."""
    if not pattern:
        return [(loc, data)]
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return [hit for i, item in enumerate(data) for hit in _at(item, rest, (*loc, i))] if isinstance(data, list) \
            else []
    return _at(data[head], rest, (*loc, head)) if isinstance(data, dict) and head in data else []


def _bare_numbers(value: object) -> list[tuple[tuple, float]]:
    """Bare numbers in a duration or a random duration (not the Weibull shape)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [((), float(value))]
    if isinstance(value, dict):
        return [((key, *sub), x) for key, v in value.items() if key not in ("dist", "shape")
                for sub, x in _bare_numbers(v)]
    if isinstance(value, list):
        return [((i, *sub), x) for i, v in enumerate(value) for sub, x in _bare_numbers(v)]
    return []


def bare_duration_warnings(data: object) -> list[Problem]:
    """Warnings for a bare number under an hour where a duration is hours or more in practice (``duration: 30``
    is 30 seconds), from the scenario as read from YAML."""
    out = []
    for pattern in LONG_DURATIONS:
        for loc, value in _at(data, pattern):
            for sub, x in _bare_numbers(value):
                if 0 < x < units.HOUR:
                    where = location_text((*loc, *sub))
                    out.append(Problem(loc=(*loc, *sub), message=(
                        f"{where}: {x:g} is {units.format_duration(x)} (a bare number is seconds); write {x:g}d or "
                        f"{x:g}h if you meant days or hours")))
    return out


def scenario_warnings(s: Scenario) -> list[str]:
    """Things that are allowed but worth a planner's attention (see :func:`warning_problems`), in words (control
    characters in names escaped for the terminal)."""
    return [printable(p.message) for p in warning_problems(s)]


def located_warnings(s: Scenario) -> list[str]:
    """:func:`scenario_warnings` with the file, line and column of each (``office.yaml:12:5: ...``) when the
    scenario was loaded from a file."""
    where = str(s.source) if s.source is not None else "<scenario>"
    out = []
    for p in warning_problems(s):
        line, col = s._warning_lines.get(p.loc, (None, None))
        message = printable(p.message)  # names may hold control characters: escaped for the terminal
        out.append((line or math.inf, f"{where}:{line}:{col}: {message}" if line else f"{where}: {message}"))
    return [text for _, text in sorted(out, key=lambda x: x[0])]  # in file order
