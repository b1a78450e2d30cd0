"""A first scenario file from the site's inventory (and a counter log): what ``drsim init`` writes.

:func:`scaffold_scenario` turns an :class:`~drsim.scenario.inventory.Inventory` into scenario YAML, ready to edit:
hosts and VMs with their names as written (quoted where YAML needs it), each virtual disk with its provisioned size
and, as ``used``, its file size (what an initial replication copies), the bundled defaults for the link,
replication and objectives with their basis in comments, and lines marked ``EDIT`` where the inventory cannot
know the answer. With a counter log, a VM whose every virtual disk has a ``Hyper-V Virtual Storage Device``
write counter gets its churn from the log (:func:`map_counters`); the others get a placeholder: 2 % of the data in
use a day (the low end of the 2-5 % of used disk a day of backup vendors' sizing guides), flat.

The text is validated as a scenario before it is returned. Imports :mod:`drsim.scenario.document` (for the
validation), :mod:`drsim.scenario.inventory`, :mod:`drsim.scenario.perfmon`, :mod:`drsim.scenario.counters` and
:mod:`drsim.scenario.units` (and the site's limits from :mod:`drsim.scenario.site`). A generation 2 VM gets
``generation: 2`` (its OS disk may be at most 300 GB).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from drsim.scenario import parse_scenario
from drsim.scenario.counters import counter_trace
from drsim.scenario.inventory import Inventory, InventoryVM, host_os
from drsim.scenario.perfmon import CounterLog, CounterLogError
from drsim.scenario.site import DATA_DISK_MAX, DATA_DISKS_MAX, OS_DISK_MAX
from drsim.scenario.units import format_size

__all__ = ["Scaffold", "scaffold_scenario", "map_counters", "yaml_scalar", "PLACEHOLDER_DAILY", "scenario_name",
           "next_steps_text"]

#: Placeholder churn: a share of the data in use written per day [2 %: the low end of "2-5 % of used disk a day",
#: backup vendors' sizing guides; an assumption for any particular VM].
PLACEHOLDER_DAILY = 0.02
GIB = 1024.0**3
#: Vendor limits (:mod:`drsim.scenario.site`, after the support matrix): OS disk by generation (as the inventory
#: writes it), data disk, data disks per VM.
OS_DISK_LIMIT = {str(g): size for g, size in OS_DISK_MAX.items()}
DATA_DISK_LIMIT = DATA_DISK_MAX
MAX_DATA_DISKS = DATA_DISKS_MAX
_WRITE_COUNTER = re.compile(
    r"^\\\\(?P<host>[^\\]+)\\Hyper-V Virtual Storage Device\((?P<instance>.*)\)\\Write Bytes/sec$", re.IGNORECASE)


@dataclass
class Scaffold:
    """What :func:`scaffold_scenario` made: the YAML ``text``, the VMs whose churn comes from the counter log
    (``traced``) and those with the placeholder, and ``notes`` worth a warning."""

    text: str
    name: str
    vms: int
    hosts: int
    traced: list[str] = field(default_factory=list)
    placeholder: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def yaml_scalar(text: str, quote: bool = False) -> str:
    """``text`` as a YAML scalar that reads back as the same string: plain when YAML allows it (and ``quote`` is
    not asked for), otherwise quoted as PyYAML's emitter decides (single quotes; double quotes with escapes for
    control characters)."""
    if any(ord(c) < 32 or c in "\x7f\x85\u2028\u2029\ufeff" for c in text):
        return json.dumps(text)  # a double-quoted YAML scalar on one line
    out = yaml.safe_dump(text, default_flow_style=True, width=10**9, allow_unicode=True)
    out = out.removesuffix("\n").removesuffix("\n...").strip("\n")
    if quote and not out.startswith(("'", '"')):
        out = "'" + text.replace("'", "''") + "'"
    assert yaml.safe_load(out) == text, (text, out)
    return out


def scenario_name(stem: str) -> str:
    """A scenario name (letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit) from a file name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")
    return name or "site"


def _norm(path: str) -> str:
    """A disk path as a Hyper-V Virtual Storage Device counter instance writes it: lower case, backslashes and
    slashes as dashes, no ``\\\\?\\`` prefix, no doubled dashes [observed instance names; an assumption]."""
    text = path.strip().lower().replace("/", "\\")
    text = text.removeprefix("\\\\?\\")
    text = text.replace("\\", "-")
    text = re.sub("-{2,}", "-", text).removeprefix("-?-")
    return text


def map_counters(inventory: Inventory,
                 logs: Sequence[CounterLog]) -> tuple[dict[str, tuple[CounterLog, list[str]]], list[str]]:
    """For each VM whose every disk has a ``Hyper-V Virtual Storage Device(...)\\Write Bytes/sec`` column on its
    host in one of the ``logs``, that log and those columns; and notes on the VMs left out. A disk's column is the
    one whose instance is its path written with dashes, or else the only one ending with its file name."""
    notes: list[str] = []
    per_log = []
    for log in logs:
        counters = [(c, m) for c in log.columns if (m := _WRITE_COUNTER.match(c))]
        if not counters:
            notes.append(f"counter log {log.path} has no 'Hyper-V Virtual Storage Device(*)\\Write Bytes/sec' "
                         "columns: map its columns to VMs by hand (columns: in a trace; 'drsim trace FILE' lists them)")
        per_log.append((log, counters))
    found: dict[str, tuple[CounterLog, list[str]]] = {}
    for vm in inventory.vms():
        missing: list[str] = [d.path for d in vm.disks]
        for log, counters in per_log:
            columns, missing = _vm_columns(vm, counters)
            if not missing:
                found[vm.name] = (log, columns)
                break
        if vm.name not in found and per_log:
            off = f" (the VM is {vm.state}: only a running VM's disks have counters)" if vm.state not in (
                "Running", "") else ""
            where = logs[0].path.name if len(logs) == 1 else "any counter log"
            notes.append(f"{vm.name}: no write counter for {', '.join(missing)} in {where}{off}: placeholder churn")
    return found, notes


def _vm_columns(vm: InventoryVM, counters: list[tuple[str, re.Match[str]]]) -> tuple[list[str], list[str]]:
    """The write-counter column of each of a VM's disks on its host, and the disks without one."""
    on_host = [(c, _norm(m.group("instance"))) for c, m in counters if m.group("host").lower() == vm.host.lower()]
    columns, missing = [], []
    for disk in vm.disks:
        full = _norm(disk.path)
        exact = [c for c, inst in on_host if inst == full]
        tail = "-" + _norm(disk.path.replace("/", "\\").rsplit("\\", 1)[-1])
        by_name = [c for c, inst in on_host if inst.endswith(tail) or inst == tail[1:]]
        pick = exact or (by_name if len(by_name) == 1 else [])
        if pick:
            columns.append(pick[0])
        else:
            missing.append(disk.path)
    return columns, missing


def _size_text(n: float) -> str:
    for unit, size in (("TiB", 1024.0**4), ("GiB", GIB), ("MiB", 1024.0**2)):
        if n >= size and n % size == 0:
            return f"{int(n // size)}{unit}"
    return f"{int(n)}B"


def _disk_text(size: float, used: float) -> str:
    if used >= size:
        return _size_text(size)
    if used >= GIB:
        used_text = f"{math.ceil(used / GIB * 100) / 100:.2f}".rstrip("0").rstrip(".") + "GiB"
    else:
        used_text = f"{math.ceil(used / 2**20)}MiB"
    return f"{{size: {_size_text(size)}, used: {used_text}}}"


def _rate_text(bytes_per_day: float) -> str:
    if bytes_per_day >= 1e9:
        return f"{bytes_per_day / 1e9:.3g}GB/day"
    return f"{max(bytes_per_day / 1e6, 0.001):.3g}MB/day"


def _vm_lines(vm: InventoryVM, columns: list[str] | None, trace_file: str, timezone: str | None,
              notes: list[str]) -> list[str]:
    about = ", ".join(x for x in (vm.state, f"generation {vm.generation}" if vm.generation else "", vm.guest_os) if x)
    lines = [f"        - name: {yaml_scalar(vm.name)}" + (f"    # {about}" if about else "")]
    if vm.generation.strip() == "2":  # the OS disk's limit depends on it (generation 1 is the default)
        lines.append("          generation: 2")
    lines.append("          disks:")
    used_total = 0.0
    for k, d in enumerate(vm.disks):
        used = d.size if d.file_size is None or d.differencing else min(d.file_size, d.size)
        used_total += used
        why = ""
        if d.file_size is None:
            why = ", no FileSize: used = size"
        elif d.differencing:
            why = ", a checkpoint's differencing disk: used = size (EDIT: the data of the whole chain)"
            notes.append(f"{vm.name}: {d.path} is a checkpoint's differencing disk: its file holds only the changes; "
                         "'used' is set to the provisioned size (edit it)")
        lines.append(f"            - {_disk_text(d.size, used)}    # {d.path}{why}")
        limit = OS_DISK_LIMIT.get(vm.generation.strip()) if k == 0 else DATA_DISK_LIMIT
        if limit is not None and d.size > limit:
            kind = f"an OS disk (the first listed) of a generation {vm.generation} VM" if k == 0 else "a data disk"
            notes.append(f"{vm.name}: {d.path} is {d.size / GIB:,.0f} GiB: above the {limit / GIB:,.0f} GiB the "
                         f"service supports for {kind} (support matrix): the VM will not be protected")
    if len(vm.disks) - 1 > MAX_DATA_DISKS:
        notes.append(f"{vm.name}: {len(vm.disks) - 1} data disks: the service supports at most {MAX_DATA_DISKS}")
    if columns:
        lines += ["          churn:", "            trace:", f"              file: {yaml_scalar(trace_file)}",
                  "              format: perfmon", "              columns:"]
        lines += [f"                - {yaml_scalar(c, quote=True)}" for c in columns]
        if timezone:
            lines.append(f"              timezone: {yaml_scalar(timezone)}")
        lines.append("              # rewrite: 0.7    # EDIT if you know how much is rewritten within an interval "
                     "(see the README)")
    else:
        basis = used_total if used_total > 0 else sum(d.size for d in vm.disks)
        lines.append(f"          churn: {{rate: {_rate_text(PLACEHOLDER_DAILY * basis)}}}    # EDIT placeholder: "
                     f"{PLACEHOLDER_DAILY:.0%} a day of the {format_size(basis)} in use (sizing guides: 2-5 %); "
                     "measure it")
    return lines


def scaffold_scenario(inventory: Inventory, out: str | Path, name: str | None = None,
                      logs: Sequence[CounterLog] = (), timezone: str | None = None, duration: str = "30d") -> Scaffold:
    """The scenario YAML for ``inventory``, to be written to ``out`` (trace paths are made relative to its folder),
    named ``name`` (default: from the inventory's file name), simulating ``duration``. With counter ``logs`` (e.g.
    one per host), VMs whose disks all have a write counter in one of them replay it (read in ``timezone`` if
    given). Raises :class:`~drsim.scenario.document.ScenarioError` if the text is not a valid scenario (e.g. a bad
    duration, or a counter log that cannot be read)."""
    out = Path(out)
    name = scenario_name(name or inventory.path.stem)
    mapped, notes = map_counters(inventory, logs) if logs else ({}, [])
    notes = [*(f"inventory {inventory.path}: {n}" for n in inventory.notes), *notes]
    for vm_name, (log, columns) in list(mapped.items()):
        try:
            counter_trace(str(log.path), columns, timezone=timezone)
        except CounterLogError as exc:  # e.g. a gap longer than max_gap: the VM keeps the placeholder
            del mapped[vm_name]
            notes.append(f"{vm_name}: its counters cannot be replayed as they are ({exc}): placeholder churn; fix "
                         "the log, or set the trace by hand (with max_gap)")
    starts = sorted({log.local[0] for log, _ in mapped.values()})
    if len(starts) > 1:
        notes.append(f"the counter logs start at different times ({', '.join(f'{t:%Y-%m-%d %H:%M}' for t in starts)}):"
                     " each trace plays from the scenario's start; cut them to one start (relog -b) to line them up")
    vms = inventory.vms()
    sources = " and ".join([inventory.path.name, *(log.path.name for log in logs)])
    text = [f"# Scenario written by drsim init from {sources} ({len(vms)} VMs on {len(inventory.hosts)} hosts).",
            "# EDIT marks what the inventory cannot know: your link, churn placeholders, objectives, the dashboard VM.",
            "# Check it with 'drsim validate FILE'; every key is described in scenarios/README.md.",
            f"name: {yaml_scalar(name)}",
            f"description: {yaml_scalar('Site from ' + inventory.path.name)}",
            f"duration: {yaml_scalar(duration)}" + " " * max(1, 25 - len(yaml_scalar(duration)))
            + ("# a month (assumption)" if duration == "30d" else "# the simulated period")
            + "; a shorter counter-log trace repeats to fill it"]
    if starts:
        text.append(f"start: {starts[0]:%Y-%m-%dT%H:%M:%S}        # the counter log's first sample (site local "
                    "time), so replayed writes fall on their hours")
    else:
        text.append("# start: 2026-03-02T08:00:00       # EDIT: the calendar date-time of t = 0 (site local time)")
    text += ["seed: 1", "site:", "  hosts:"]
    for host in inventory.hosts:
        os_name = host_os(host.os) if host.os else None
        if os_name:
            comment = f"HostOS: {host.os}"
        else:
            os_name = "Windows Server 2016"
            comment = ("EDIT: not in the inventory; drsim's default" if not host.os
                       else f"EDIT: {host.os!r} names no Windows Server version; drsim's default")
        text += [f"    - name: {yaml_scalar(host.name)}", f"      os: {os_name}    # {comment}", "      vms:"]
        for vm in host.vms:
            log, columns = mapped.get(vm.name, (None, None))
            text += _vm_lines(vm, columns, _relative(log.path, out) if log else "", timezone, notes)
    text += [
        "link:",
        "  upload: 20Mbit/s                   # EDIT: your uplink (placeholder: a small site's 10-20 Mbit/s, "
        "broadband benchmarks)",
        "  download: 100Mbit/s                # EDIT: your downlink (placeholder: the bundled office scenario's)",
        "  efficiency: 0.9                    # default: share of the raw bandwidth left for payload (assumption)",
        "  compression: 1                     # default: the service does not compress Hyper-V replication to the "
        "cloud",
        "  # throttle: {work_hours: \"08:00-18:00\", work_limit: 10Mbit/s}   # EDIT if the agent limits office hours",
        "replication:",
        "  interval: 5m                       # default: the service's default frequency (30s, 5m or 15m)",
        "  retention: 24h                     # default: recovery points kept (0 to 24h)",
        "  app_consistent_every: 0            # default: no app-consistent points (up to 12h)",
        "  setup: 15m                         # default: agent install and vault creation per host (assumption)",
        "  # initial: {batches: [[small-vm], [big-vm]]}   # EDIT: the order of initial replication",
        "objectives:",
        "  rpo: 15m                           # default; EDIT to your target",
        "  rto: 2h                            # default: the service's SLA of 2 hours; EDIT to your target",
    ]
    result = "\n".join(text) + "\n"
    parse_scenario(yaml.safe_load(result), source=str(out), base=out)  # raises ScenarioError
    traced = [vm.name for vm in vms if vm.name in mapped]
    return Scaffold(result, name, len(vms), len(inventory.hosts), traced,
                    [vm.name for vm in vms if vm.name not in mapped], notes)


def _relative(path: Path, out: Path) -> str:
    """``path`` relative to the folder of ``out`` (absolute when that folder does not exist yet, or is on another
    drive)."""
    if out.resolve().parent.is_dir():
        with contextlib.suppress(ValueError):
            return Path(os.path.relpath(path.resolve(), out.resolve().parent)).as_posix()
    return str(path.resolve())


def next_steps_text(s: Scaffold, out: str | Path, inventory: str | Path,
                    counters: Sequence[str | Path] = ()) -> str:
    """What ``drsim init`` prints after writing the scenario: what it holds and what to edit next."""
    out = str(out)
    lines = [f"wrote {out}: {s.vms} VMs on {s.hosts} hosts from {inventory}"]
    if counters:
        lines.append(f"churn: {len(s.traced)} VMs replay {' and '.join(map(str, counters))}"
                     + (f" ({', '.join(s.traced)})" if s.traced else "")
                     + (f"; {len(s.placeholder)} {'has' if len(s.placeholder) == 1 else 'have'} a placeholder "
                        f"({', '.join(s.placeholder)})"
                        if s.placeholder else ""))
    elif s.placeholder:
        lines.append(f"churn: a placeholder for every VM ({PLACEHOLDER_DAILY:.0%} of its data in use a day)")
    lines += ["Edit next (the lines marked EDIT):",
              "  - link.upload and link.download: your line's speeds (placeholders: 20 and 100 Mbit/s)"]
    if s.placeholder:
        lines.append("  - the placeholder churn of " + ", ".join(s.placeholder) + ": measure it (a counter log; "
                     "'drsim trace LOG' lists its columns) or estimate it")
    lines += ["  - objectives.rpo and objectives.rto; the VM that runs the dashboard (dashboard: true); "
              "the order of initial replication (replication.initial.batches)",
              f"Then: drsim validate {out}; drsim run {out}; drsim plan {out} --rpo 15m"]
    return "\n".join(lines)
