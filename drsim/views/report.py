"""Reports of one run: a self-contained HTML file and a Markdown version, written into the run folder.

:func:`write_report` takes a :class:`drsim.Results` and writes ``report.html`` (one file: figures embedded as
base64 PNG data URIs, CSS inline, no script and no external address, so it opens offline and prints) and
``report.md`` (the same content in Markdown, with the figures saved beside it as ``report-*.png`` and linked
relatively). :func:`write_report_from_folder` rebuilds the report of a run folder written by
:func:`drsim.results.folders.write_run`: the folder holds tables but the figures need the full results, so it
**re-simulates** the folder's ``scenario.yaml`` with the seed recorded in ``metadata.json`` (the simulation is
deterministic: same scenario and seed, identical tables) after checking the scenario hash, and checks that the
re-simulated summary equals the stored ``summary.parquet``.

The report has these sections (:data:`SECTIONS`): the scenario in brief; an executive summary in plain words
(headline sentences built from the summary, the incidents and the hours when the RPO target is missed most,
then the findings of :func:`drsim.results.findings.findings`); objective compliance per VM; per-VM replication and
recovery tables; the incidents (table and the lines of :func:`drsim.results.findings.incident_lines`); the four figures
of :mod:`drsim.views.figures`; and the assumptions and sources behind the defaults used.

Both formats are rendered with Jinja2 templates from ``drsim/templates``. The HTML template is autoescaped, so a
VM named ``<script>alert(1)</script>`` appears as text; in the Markdown template every value is escaped by the
environment's ``finalize`` (backslash before ``\\ ` * _ [ ] < > | & ~ # $``), so names cannot break a table or
become markup. Values the report itself produces (image file names, data URIs) are marked safe explicitly.

:func:`write_experiment_report` writes the same two files into a sweep folder (written by
:func:`drsim.experiments.experiment.write_experiment`): the scenario in brief, the sweep, a summary in plain words, the site's
aggregate per point and the experiment figures that apply to what was swept. :func:`write_plan_report` writes the
report of a bandwidth plan (:func:`drsim.plan`) and :func:`write_plan_folder` a whole plan folder. Both use the
generic templates ``document.html.j2`` and ``document.md.j2`` (sections of blocks) with the same escaping.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from drsim.experiments.planner import mbit as planner_mbit
from drsim.experiments.planner import plan_text
from drsim.model.churn import week_offset
from drsim.model.policies import make_policy
from drsim.model.recovery import RETRY_BACKOFF, RETRY_EVERY
from drsim.model.replication import CRITICAL_LOG_SHARE, HEALTH_WINDOW, WARN_MISSED_SHARE, WARN_SILENCE
from drsim.results.findings import _cause, _when_short, count, findings, incident_lines, saturation
from drsim.results.folders import atomic_folder, atomic_write, package_versions
from drsim.results.run import simulate
from drsim.results.tables import PLANNED_KINDS, SITE, Results
from drsim.scenario import units
from drsim.scenario.churn import PROFILES
from drsim.scenario.distributions import Distribution
from drsim.scenario.document import (
    CHURN_LIMIT_STANDARD,
    SUPPORTED_INTERVALS,
    Link,
    Objectives,
    Replication,
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_hash,
)
from drsim.scenario.recovery import DEFAULT_DETECTION, DEFAULT_REPAIR, Drill, FailoverSteps, Maintenance
from drsim.version import __version__
from drsim.views import figures as plots

__all__ = ["write_report", "write_report_from_folder", "render_report", "report_context", "ReportError",
           "SECTIONS", "FIGURES", "HTML_NAME", "MD_NAME", "markdown_escape", "write_experiment_report",
           "experiment_report_context", "write_plan_report", "plan_report_context", "write_plan_folder", "json_safe",
           "write_document", "figure_blocks", "scenario_brief", "Block", "Section", "Table", "ReportFigure"]

HTML_NAME = "report.html"
MD_NAME = "report.md"

#: (anchor id, heading) of every section, in order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("scenario", "Scenario"),
    ("summary", "Executive summary"),
    ("compliance", "Objective compliance"),
    ("vms", "Per-VM results"),
    ("incidents", "Incidents"),
    ("figures", "Figures"),
    ("assumptions", "Assumptions and sources"),
)


@dataclass(frozen=True)
class FigureSpec:
    function: str  # name in drsim.views.figures
    title: str
    file: str  # PNG written beside report.md
    caption: str


#: The figures of the report, drawn by the :mod:`drsim.views.figures` function of the same name.
FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("protection_timeline", "Protection timeline", "report-protection-timeline.png",
               "One row per VM: lifecycle states over the run, health warnings hatched, failures (triangles) and "
               "drills (diamonds) marked."),
    FigureSpec("rpo_over_time", "RPO over time", "report-rpo-over-time.png",
               "The exact RPO sawtooth of each VM against the RPO target; time above the target is shaded."),
    FigureSpec("link_usage", "Link usage", "report-link-usage.png",
               "Upload capacity (throttle schedule), active transfers and backlog; initial-replication progress."),
    FigureSpec("incident_waterfall", "Incident waterfall", "report-incident-waterfall.png",
               "Each incident from the failure to service restored, and its failback; RTO target ticks."),
)

_DPI = 100
_MAX_EVENTS = 4  # incident events told in the executive summary; the rest are in the Incidents section

#: The model's main approximations (kept in step with README.md, "Assumptions and approximations").
APPROXIMATIONS: tuple[str, ...] = (
    "Churn is the VM's write rate and every byte written is replicated (no de-duplication of rewrites within a "
    "cycle, which would make real deltas smaller); a daily churn is a share of the provisioned disk size.",
    "Health is judged at replication ticks (at most one interval late); reaching critical is recorded, but the "
    "resynchronisation itself is not modelled: replication continues with ever larger deltas.",
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
    "shutdown": "orderly guest shutdown before a planned move or failback",
    "prepare": "the service prepares the failover (creates the cloud VM from the recovery point)",
    "process_pending": "pending data processed into a recovery point before a 'latest' failover",
    "start": "cloud VM start: typically 5-20 min",
    "reconnect": "clients and DNS reconnect to the moved VM",
    "onprem_start": "VM start on-premises after a repair or failback (a reboot takes about 5 min)",
    "cleanup": "deprovisioning the cloud or test VM and deleting its disk",
    "portal": "extra time to trigger from the cloud portal when the Essentials dashboard is down",
}
_REPAIR_BASIS = {
    "vm": "a guest crash: the VM reboots on its host (about 5 min)",
    "host": "hours with a spare or a quick fix, days when parts must be ordered",
    "site": "rebuilding a site after a disaster: days to weeks",
    "link": "ISP outage: usually an hour, sometimes most of a day",
}


class ReportError(ValueError):
    """A folder a report cannot be rebuilt from (not a run folder, changed scenario, different results)."""


# --- tables --------------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A table of formatted cells; ``numeric`` columns are right-aligned; ``total`` is the site row."""

    header: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    caption: str = ""
    total: list[str] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        for row in [*self.rows, *([self.total] if self.total else [])]:
            if len(row) != len(self.header):
                raise ValueError(f"row {row!r} has {len(row)} cells for {len(self.header)} columns")


@dataclass
class ReportFigure:
    """A drawn figure: PNG bytes, its data URI for the HTML, and the file name beside report.md."""

    title: str
    caption: str
    file: str
    data_uri: str
    png: bytes = field(repr=False, default=b"")


# --- formatting ----------------------------------------------------------------------------------------------

_fmt = units.format_duration


def _isnan(x: Any) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def _pct(x: float, digits: int = 1) -> str:
    return "-" if _isnan(x) else f"{100 * float(x):.{digits}f} %"


def _status(ok: bool, incidents: int) -> str:
    if incidents == 0:
        return "met (no incident)"
    return "met" if ok else "missed"


def _describe(d: Any) -> str:
    """A random duration or a plain duration, for people."""
    if isinstance(d, Distribution):
        return d.describe(_fmt)
    if isinstance(d, int | float) and not isinstance(d, bool):
        return _fmt(float(d))
    return str(d)


def _calendar(results: Results) -> str:
    start = results.scenario.start
    return f"{start:%a %d %b %Y %H:%M}" if start is not None else "none (t = 0 is a Monday 00:00)"


def _time_point(s: Scenario, at: datetime | float) -> str:
    seconds = (at - s.start).total_seconds() if isinstance(at, datetime) and s.start is not None else float(at)
    return _when_short_scenario(s, seconds)


def _when_short_scenario(s: Scenario, t: float) -> str:
    return _when_short(SimpleNamespace(scenario=s), t)  # type: ignore[arg-type]  # it reads only .scenario


def _names(names: Sequence[str], limit: int = 4) -> str:
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- scenario in brief ----------------------------------------------------------------------------------------


def _churn_text(s: Scenario, vm: Any) -> str:
    c = vm.churn
    if c.trace is not None:
        text = f"trace {Path(c.trace.file).name}" + ("" if c.trace.repeat else " (once)")
    elif c.daily is not None:
        text = f"{_pct(c.daily)}/day"
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
            f"efficiency {_pct(link.efficiency, 0)}, compression {link.compression:g}")
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
    text = f"{what} {_time_point(s, f.at)}" if f.at is not None else f"{what} every {_describe(f.every)}"
    if f.kind == "corruption":
        text += f", noticed after {_describe(f.detection_dist)}"
    else:
        text += f", repair {_describe(f.repair_dist)}"
    if f.disks_lost:
        text += ", disks lost"
    return text


def _brief(results: Results) -> tuple[list[tuple[str, str]], Table]:
    s = results.scenario
    pairs = s.vms()
    eligible = [vm for host, vm in pairs if host.supported and vm.protect]
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
        items.append(("Maintenance", "; ".join(f"host {m.host} {_time_point(s, m.at)}, window {_describe(m.window)}"
                                               for m in s.maintenance)))
    if s.drills:
        items.append(("Drills", "; ".join(
            f"{d.vms if isinstance(d.vms, str) else ', '.join(d.vms)} "
            + (_time_point(s, d.at) if d.at is not None else f"every {_fmt(d.every)}")
            + f" for {_describe(d.duration)}" for d in s.drills)))
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
        protect = ("yes" if vm.protect else "no") if host.supported else "no (host too old)"
        rows.append([vm.name, host.name, disks, _churn_text(s, vm), protect, role])
    table = Table(["VM", "host", "disks", "churn", "protected", "role"], rows,
                  [False, False, False, False, False, False], caption="Hosts and VMs")
    return items, table


def _policy_text(s: Scenario) -> str:
    params = _policy_params(s)
    inner = "; ".join(f"{name}: {value}" for name, value, _ in params)
    return s.policy.name + (f" ({inner})" if inner else "")


def _policy_params(s: Scenario) -> list[tuple[str, str, str]]:
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


# --- objectives, tables ----------------------------------------------------------------------------------------


def _vm_rows(results: Results) -> tuple[pd.DataFrame, pd.Series]:
    summ = results.summary
    return summ[summ["vm"] != SITE], summ[summ["vm"] == SITE].iloc[0]


def _compliance_table(results: Results) -> Table:
    s = results.scenario
    vms, site = _vm_rows(results)

    def row(r: pd.Series) -> list[str]:
        within = "-" if _isnan(r["rpo_over_target"]) else _pct(max(0.0, 1 - r["rpo_over_target"]))
        n = int(r["incidents"])
        return [r["vm"], within, _status(bool(r["rpo_met"]), n), _fmt(r["data_loss_max_s"]),
                _status(bool(r["rto_met"]), n), _fmt(r["rto_max_s"]), str(n)]

    header = ["VM", f"time within RPO {_fmt(s.objectives.rpo)}", "RPO in incidents", "worst data loss",
              f"RTO {_fmt(s.objectives.rto)}", "worst RTO", "unplanned incidents"]
    return Table(header, [row(r) for _, r in vms.iterrows()], [False, True, False, True, False, True, True],
                 caption="RPO and RTO objectives per VM", total=row(site),
                 note="Time within the RPO target is the share of the protected time when the newest recovery "
                      "point was at most the target old. An incident meets the RPO objective when its data loss "
                      "is within the target, and the RTO objective when service was back within the target; "
                      "an unrecoverable or unfinished incident meets neither.")


def _replication_table(results: Results) -> Table:
    s = results.scenario
    vms, site = _vm_rows(results)

    def row(r: pd.Series) -> list[str]:
        return [
            r["vm"], r["host"],
            _fmt(r["protected_at"]) if r["protected"] else "not protected",
            units.format_size(r["initial_bytes"]),
            _fmt(r["rpo_mean_s"]), _fmt(r["rpo_p95_s"]), _fmt(r["rpo_max_s"]),
            _pct(r["rpo_over_target"]),
            str(int(r["cycles_sent"])), str(int(r["cycles_missed"])),
            units.format_size(r["bytes_written"]), units.format_size(r["bytes_sent"]),
            str(r["health"]),
        ]

    header = ["VM", "host", "protected after", "initial copy", "RPO mean", "RPO p95", "RPO max",
              f"over {_fmt(s.objectives.rpo)}", "cycles sent", "cycles missed", "written", "uploaded", "health"]
    return Table(header, [row(r) for _, r in vms.iterrows()],
                 [False, False, True, True, True, True, True, True, True, True, True, True, False],
                 caption="Replication", total=row(site))


def _recovery_table(results: Results) -> Table:
    vms, site = _vm_rows(results)

    def row(r: pd.Series) -> list[str]:
        return [r["vm"], _pct(r["availability"], 3), _fmt(r["downtime_s"]), str(int(r["incidents"])),
                _fmt(r["data_loss_mean_s"]), _fmt(r["data_loss_max_s"]), _fmt(r["rto_mean_s"]), _fmt(r["rto_max_s"]),
                str(int(r["drills"])), _fmt(r["drill_rto_mean_s"])]

    header = ["VM", "availability", "downtime", "unplanned incidents", "data loss mean", "data loss max",
              "RTO mean", "RTO max", "drills", "drill RTO mean"]
    return Table(header, [row(r) for _, r in vms.iterrows()], [False] + [True] * 9, caption="Recovery",
                 total=row(site))


def _incidents_table(results: Results) -> Table:
    inc = results.incidents
    rows = []
    for _, r in inc.iterrows():
        detected = r["detected_at"] - r["failed_at"]
        back = _when_short(results, r["failback_done_at"]) if not _isnan(r["failback_done_at"]) else "-"
        rows.append([r["vm"], str(r["kind"]), _when_short(results, r["failed_at"]).removeprefix("on "),
                     _fmt(detected), _fmt(r["data_loss_s"]), _fmt(r["rto_s"]), _fmt(r["sla_rto_s"]),
                     _fmt(r["downtime_s"]), str(r["outcome"]), back.removeprefix("on ")])
    header = ["VM", "kind", "failed", "detected after", "data loss", "RTO", "SLA RTO", "downtime", "outcome",
              "failed back"]
    return Table(header, rows, [False, False, False, True, True, True, True, True, False, False],
                 caption="Incidents (planned maintenance moves included)",
                 note="RTO runs from the outage start (for corruption, its detection) to service restored; SLA "
                      "RTO from failover start to the VM running in the cloud, as the vendor's SLA measures it; "
                      "downtime adds the failback cutover.")


# --- when the RPO target is missed -------------------------------------------------------------------------------


def _measure(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Length of the union of sorted disjoint intervals ``[a_i, b_i)`` below each ``x``."""
    if len(a) == 0:
        return np.zeros(len(x))
    prefix = np.concatenate([[0.0], np.cumsum(b - a)])
    i = np.searchsorted(b, x, side="right")  # intervals ending at or before x
    partial = np.where(i < len(a), np.clip(x - a[np.minimum(i, len(a) - 1)], 0.0, None), 0.0)
    return prefix[i] + partial


def rpo_by_hour(results: Results) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Seconds over the RPO target and seconds with an RPO (protected), per hour of the week (Monday 00:00
    first, site clock), for each VM with an RPO curve and for the site (key ``"(site)"``): exact, from the
    breakpoints of ``results.rpo``."""
    s = results.scenario
    target = float(s.objectives.rpo)
    off = week_offset(s)
    first = -(off % 3600.0)
    n_edges = int(math.ceil((results.end - first) / 3600.0)) + 1
    raw_edges = first + 3600.0 * np.arange(n_edges)
    edges = np.clip(raw_edges, 0.0, results.end)
    slot = (int(round((first + off) / 3600.0)) + np.arange(n_edges - 1)) % 168
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rpo = results.rpo
    site_over, site_cov = np.zeros(168), np.zeros(168)
    for vm, g in rpo.groupby("vm", observed=True, sort=False):
        t = g["time"].to_numpy(dtype=float)
        v = g["rpo"].to_numpy(dtype=float)
        t0, t1, r0 = t[0::2], t[1::2], v[0::2]
        a = np.maximum(t0, t0 + target - r0)
        keep = a < t1
        over = np.bincount(slot, weights=np.diff(_measure(a[keep], t1[keep], edges)), minlength=168)
        cov = np.bincount(slot, weights=np.diff(_measure(t0, t1, edges)), minlength=168)
        out[str(vm)] = (over, cov)
        site_over += over
        site_cov += cov
    out[SITE] = (site_over, site_cov)
    return out


@dataclass
class BusyHours:
    days: str  # "weekdays", "weekends" or "every day"
    first_hour: int
    last_hour: int  # exclusive
    share: float  # of the time over target that falls in these hours
    rate: float  # time over target / time protected, during these hours

    @property
    def text(self) -> str:
        return f"{self.days} {self.first_hour:02d}:00-{self.last_hour:02d}:00"


def busy_hours(over: np.ndarray, cov: np.ndarray) -> BusyHours | None:
    """The hours of the day (on weekdays, weekends or every day) holding the most time over the RPO target."""
    total = over.sum()
    if not total > 0:
        return None
    weekday = over[:120].sum() / total
    if weekday >= 0.9:
        days, rows = "weekdays", slice(0, 5)
    elif weekday <= 0.1:
        days, rows = "weekends", slice(5, 7)
    else:
        days, rows = "every day", slice(0, 7)
    by_hour = over.reshape(7, 24)[rows].sum(axis=0)
    cov_hour = cov.reshape(7, 24)[rows].sum(axis=0)
    hot = by_hour >= 0.5 * by_hour.max()
    best: tuple[float, int, int] | None = None
    h = 0
    while h < 24:
        if hot[h]:
            e = h
            while e < 24 and hot[e]:
                e += 1
            weight = float(by_hour[h:e].sum())
            if best is None or weight > best[0]:
                best = (weight, h, e)
            h = e
        else:
            h += 1
    assert best is not None
    weight, h0, h1 = best
    covered = float(cov_hour[h0:h1].sum())
    return BusyHours(days, h0, h1, weight / total, weight / covered if covered > 0 else math.nan)


def _busy_table(results: Results, hours: dict[str, tuple[np.ndarray, np.ndarray]]) -> Table | None:
    rows = []
    total = None
    for name, (over, cov) in hours.items():
        b = busy_hours(over, cov)
        if b is None:
            continue
        row = [name, _fmt(float(over.sum())), _pct(over.sum() / cov.sum() if cov.sum() else math.nan),
               b.text, _pct(b.share, 0), _pct(b.rate)]
        if name == SITE:
            total = row
        else:
            rows.append(row)
    if not rows:
        return None
    return Table(["VM", "time over target", "share of protected time", "worst hours", "share of the time over "
                  "target", "over target during those hours"], rows, [False, True, True, False, True, True],
                 caption="When the RPO target is missed (site clock)", total=total,
                 note="Worst hours: the hours of the day (on weekdays, weekends or every day, whichever holds at "
                      "least 90 % of the time over target) with at least half the peak hour's time over target.")


# --- executive summary --------------------------------------------------------------------------------------------


def _lead(results: Results, hours: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """Headline sentences: protection, RPO with the bandwidth, when it is missed, incidents, objectives, drills."""
    s = results.scenario
    vms, site = _vm_rows(results)
    out: list[str] = []
    eligible = [vm.name for host, vm in s.vms() if host.supported and vm.protect]
    protected = vms[vms["protected"] & vms["vm"].isin(eligible)]
    if eligible and len(protected) == len(eligible):
        who = "The only protectable VM is" if len(eligible) == 1 else f"All {len(eligible)} protectable VMs are"
        out.append(f"{who} protected after {_fmt(site['protected_at'])}.")
    elif eligible:
        missing = [n for n in eligible if n not in set(protected["vm"])]
        out.append(f"{len(protected)} of {count(len(eligible), 'protectable VM')} are protected by the end of the "
                   f"run; not protected: {_names(missing)}.")
    else:
        out.append("No VM can be protected in this scenario.")

    target = _fmt(s.objectives.rpo)
    if len(protected) and not _isnan(site["rpo_over_target"]):
        ratio = saturation(results)
        link = f"With {units.format_rate(s.link.upload)} up"
        if ratio >= 1:
            link += f" (a saturated link: churn is {ratio:.0%} of its mean capacity)"
        text = f"{link}, the {target} RPO target is met {_pct(max(0.0, 1 - site['rpo_over_target']))} of the time"
        worst = vms[vms["protected"] & (vms["rpo_over_target"] > 0.01)].sort_values("rpo_over_target",
                                                                                   ascending=False)
        if len(worst):
            parts = [f"{r['vm']} exceeds it {_pct(r['rpo_over_target'])} of the time"
                     for _, r in worst.head(2).iterrows()]
            if len(worst) > 2:
                parts.append(f"{count(len(worst) - 2, 'other VM')} more than 1 %")
            text += "; " + ", ".join(parts)
        out.append(text + ".")
        name = str(worst.iloc[0]["vm"]) if len(worst) else None
        b = busy_hours(*hours[name]) if name in hours else None
        overall = hours[name][0].sum() / hours[name][1].sum() if b is not None else math.nan
        # worth a sentence only when concentrated: a part of the day holding much of it, missed more often then
        if b is not None and b.share >= 0.25 and b.last_hour - b.first_hour <= 12 and b.rate >= 1.5 * overall:
            out.append(f"{name} misses it most on {b.text}: {_pct(b.share, 0)} of its time over the target falls "
                       f"in those hours, when it is over the target {_pct(b.rate, 0)} of the time.")
    out.extend(_incident_sentences(results))
    if int(site["drills"]):
        out.append(f"{count(int(site['drills']), 'test failover')} (drills) measured an RTO of "
                   f"{_fmt(site['drill_rto_mean_s'])} on average.")
    return out


def _incident_sentences(results: Results) -> list[str]:
    s = results.scenario
    inc = results.incidents
    unplanned = inc[~inc["kind"].isin(PLANNED_KINDS)]
    planned = inc[inc["kind"].isin(PLANNED_KINDS)]
    out: list[str] = []
    if not len(inc):
        out.append("No failure hit a VM in this run." if s.failures else "No failures were simulated in this run.")
        return out
    events = list(unplanned.groupby(["kind", "failed_at"], sort=False))
    for (kind, _), g in events[:_MAX_EVENTS]:
        first = g.iloc[0]
        cause = _cause(results, first)
        head = _sentence(cause) if kind in ("host", "site") else f"{first['vm']}: {cause}"
        if len(g) > 1:
            head += f" ({count(len(g), 'VM')})"
        n = len(g)
        parts = []
        lost = g["data_loss_s"]
        if lost.notna().any():
            worst = float(lost.max())
            amount = "no data" if worst == 0 else f"{'up to ' if n > 1 else ''}{_fmt(worst)} of data"
            parts.append(f"it cost {amount}")
        back = g["rto_s"]
        if back.notna().any():
            parts.append(f"service was back {'within' if n > 1 else 'after'} {_fmt(float(back.max()))}")
        unrec = g["outcome"].astype(str).str.startswith("unrecoverable")
        if unrec.any():
            parts.append(f"{_names(g.loc[unrec, 'vm'])} could not be recovered")
        open_ = back.isna() & ~unrec
        if open_.any():
            parts.append(f"{_names(g.loc[open_, 'vm'])} not back by the end of the run")
        out.append(head + ": " + "; ".join(parts) + ".")
    if len(events) > _MAX_EVENTS:
        rest = sum(len(g) for _, g in events[_MAX_EVENTS:])
        out.append(f"{count(rest, 'more unplanned incident')} are listed under Incidents.")
    if len(unplanned):
        rto = s.objectives.rto
        late = unplanned[~(unplanned["rto_s"] <= rto)]
        if not len(late):
            out.append(f"The {_fmt(rto)} RTO target was met in every unplanned incident.")
        else:
            out.append(f"The {_fmt(rto)} RTO target was missed in {len(late)} of "
                       f"{count(len(unplanned), 'unplanned incident')} ({_names(late['vm'].unique())}).")
    for _, g in planned.groupby(["kind", "failed_at"], sort=False):
        what = _sentence(_cause(results, g.iloc[0]))
        lost = g["data_loss_s"].fillna(0).max()
        loss = "no data lost" if lost == 0 else f"up to {_fmt(lost)} of data lost"
        out.append(f"{what}: {count(len(g), 'VM')} moved to the cloud, {loss}, longest interruption "
                   f"{_fmt(float(g['rto_s'].max()))}.")
    return out


# --- assumptions ---------------------------------------------------------------------------------------------------


def _default_row(setting: str, value: Any, default: Any, basis: str) -> list[str]:
    shown = _describe(value)
    same = value == default
    return [setting, shown + (" (default)" if same else ""), _describe(default), basis]


def _assumptions(results: Results) -> tuple[Table, list[str]]:
    s = results.scenario
    rows = []
    rep0, obj0, steps0 = Replication(), Objectives(), FailoverSteps()
    efficiency0 = Link.model_fields["efficiency"].default
    rows.append(_default_row("replication.setup", s.replication.setup, rep0.setup,
                             "agent install and vault creation per host: an assumption"))
    rows.append(["link.efficiency", _pct(s.link.efficiency, 0) + (" (default)" if s.link.efficiency == efficiency0
                                                                   else ""), _pct(efficiency0, 0),
                 "share of the raw bandwidth left for payload after protocol overhead: an assumption"])
    rows.append(["link.compression", f"{s.link.compression:g}" + (" (default)" if s.link.compression == 1 else ""),
                 "1", "no compression unless the scenario gives a ratio"])
    rows.append(_default_row("objectives.rpo", s.objectives.rpo, obj0.rpo, "the planner's target"))
    rows.append(_default_row("objectives.rto", s.objectives.rto, obj0.rto, "the planner's target"))
    for step, basis in _STEP_BASIS.items():
        rows.append(_default_row(f"failover.{step}", getattr(s.failover, step), getattr(steps0, step), basis))
    kinds = {f.kind for f in s.failures}
    for kind, basis in _REPAIR_BASIS.items():
        given = sorted({_describe(f.repair_dist) for f in s.failures if f.kind == kind and f.repair is not None})
        uses_default = any(f.kind == kind and f.repair is None for f in s.failures)
        if kind not in kinds:
            shown = "no failure of this kind"
        else:
            shown = "; ".join(given + ([_describe(DEFAULT_REPAIR[kind]) + " (default)"] if uses_default else []))
        rows.append([f"repair of a {kind} failure", shown, _describe(DEFAULT_REPAIR[kind]), basis])
    corr = [f for f in s.failures if f.kind == "corruption"]
    shown = ("; ".join(sorted({_describe(f.detection_dist) + (" (default)" if f.detected_after is None else "")
                               for f in corr})) if corr else "no corruption")
    rows.append(["corruption noticed after", shown, _describe(DEFAULT_DETECTION),
                 "hours to days until someone notices: an assumption"])
    drill_default = Drill(vms="all", every=1.0).duration
    drills = "; ".join(sorted({_describe(d.duration) + (" (default)" if d.duration == drill_default else "")
                               for d in s.drills})) or "no drills"
    rows.append(["drills.duration", drills, _describe(drill_default), "a test failover kept up for checks"])
    window_default = Maintenance(host="h", at=0.0).window
    windows = "; ".join(sorted({_describe(m.window) + (" (default)" if m.window == window_default else "")
                                for m in s.maintenance})) or "no maintenance"
    rows.append(["maintenance.window", windows, _describe(window_default), "a maintenance window: an assumption"])
    for name, value, default in _policy_params(s):
        rows.append([f"policy {s.policy.name}: {name}", value + (" (default)" if value == default else ""), default,
                     "drsim/policies.py: operator reaction times are assumptions"])
    profiles = sorted({vm.churn.profile for _, vm in s.vms() if isinstance(vm.churn.profile, str)})
    for name in profiles:
        shape = PROFILES.get(name)
        peak = "" if shape is None else f", busiest {int(np.argmax(shape)):02d}:00"
        rows.append([f"churn profile {name}", "used", "-",
                     f"illustrative assumption (drsim/churn.py){peak}, not a measurement"])
    table = Table(["setting", "this run", "default", "basis"], rows, [False, False, False, False],
                  caption="Values used and their basis")
    retry = ", ".join(_fmt(x) for x in RETRY_BACKOFF)
    sources = [
        "Step durations, repair and detection times: defaults in drsim/recovery_config.py, typical values from the "
        "domain notes (cloud VM start 5-20 min, VM reboot about 5 min, host repair hours to days, site rebuild "
        "weeks); they are assumptions, not vendor figures. '(default)' marks a value the scenario did not change.",
        "Churn profiles (office, office-backup, nightly-batch, morning-batch) in drsim/churn.py are illustrative "
        "assumptions based on typical values (2-5 % of the disk a day, office hours), not measurements.",
        "Failover policy parameters: defaults in drsim/policies.py.",
        f"Health as the service reports it (drsim/model.py): warning when at least {_pct(WARN_MISSED_SHARE, 0)} of "
        f"the last {_fmt(HEALTH_WINDOW)} of cycles were missed or nothing replicated for over {_fmt(WARN_SILENCE)}; "
        f"critical when the pending log reaches {_pct(CRITICAL_LOG_SHARE, 0)} of the VM's disk size.",
        "Service limits (drsim/scenario.py): replication every "
        + ", ".join(_fmt(x) for x in SUPPORTED_INTERVALS)
        + f"; recovery points kept 0-24 h; app-consistent snapshots every 0-12 h; hosts need Windows Server 2012 R2 "
          f"or later; churn per VM supported up to {units.format_size(CHURN_LIMIT_STANDARD)}/s on standard storage.",
        f"After a link failure each transfer is retried {retry} after the failure, then every {_fmt(RETRY_EVERY)} "
        "(drsim/recovery.py).",
    ]
    return table, sources


# --- figures -------------------------------------------------------------------------------------------------------


def _figures(results: Results) -> list[ReportFigure]:
    import matplotlib


    out = []
    for spec in FIGURES:
        # names from the scenario are text, never mathtext: a VM named "$\\foo$" must not break the drawing
        with matplotlib.rc_context({"text.parse_math": False}):
            fig = getattr(plots, spec.function)(results)
            buf = io.BytesIO()
            # no "Software" chunk: the PNG carries no address and is the same on every run
            fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
        png = buf.getvalue()
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        out.append(ReportFigure(spec.title, spec.caption, spec.file, uri, png))
    return out


# --- rendering -----------------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~#$])")  # $: GitHub renders $...$ as math


def markdown_escape(value: Any) -> str:
    """Text safe in Markdown, in a table cell or a paragraph: markup characters backslash-escaped, line breaks
    made spaces."""
    text = " ".join(str(value).splitlines())
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_finalize(value: Any) -> Any:
    if isinstance(value, Markup):  # produced by the report itself (file names, links)
        return str(value)
    if value is None:
        return ""
    return markdown_escape(value)


@cache
def _environment(markdown: bool) -> jinja2.Environment:
    loader = jinja2.PackageLoader("drsim.views", "templates")
    if markdown:
        env = jinja2.Environment(loader=loader, autoescape=False, finalize=_md_finalize, keep_trailing_newline=True,
                                 trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    else:
        env = jinja2.Environment(
            loader=loader,
            # report.html.j2 ends in .j2, so .j2 is listed; any other name escapes too (default)
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "j2"), default_for_string=True,
                                                default=True),
            keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.globals["Markup"] = Markup
    return env


def report_context(results: Results, figures: list[ReportFigure] | None = None) -> dict[str, Any]:
    """Everything the templates show, formatted for people (figures drawn unless given)."""

    s = results.scenario
    hours = rpo_by_hour(results)
    brief, hosts = _brief(results)
    defaults, sources = _assumptions(results)
    return {
        "title": f"Disaster-recovery simulation: {s.name}",
        "name": s.name,
        "seed": results.seed,
        "version": __version__,
        "hash": scenario_hash(s, results.seed),
        "sections": SECTIONS,
        "heading": dict(SECTIONS),
        "brief": brief,
        "hosts": hosts,
        "lead": _lead(results, hours),
        "findings": findings(results),
        "compliance": _compliance_table(results),
        "busy": _busy_table(results, hours),
        "replication": _replication_table(results),
        "recovery": _recovery_table(results),
        "incident_lines": incident_lines(results),
        "incidents": _incidents_table(results),
        "figures": figures if figures is not None else _figures(results),
        "defaults": defaults,
        "sources": sources,
        "approximations": APPROXIMATIONS,
    }


def render_report(results: Results, figures: list[ReportFigure] | None = None) -> tuple[str, str]:
    """The report as (HTML, Markdown) text, without writing anything."""
    ctx = report_context(results, figures)
    html = _environment(False).get_template("report.html.j2").render(ctx)
    md = _environment(True).get_template("report.md.j2").render(ctx)
    return html, md


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_report(results: Results, folder: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` with its ``report-*.png`` figures into ``folder``
    (created if needed). Each file is written under a temporary name and renamed, so a file that exists is
    whole. Returns (HTML path, Markdown path)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures = _figures(results)
    html, md = render_report(results, figures)
    for fig in figures:
        _write_atomic(folder / fig.file, fig.png)
    _write_atomic(folder / MD_NAME, md.encode("utf-8"))
    _write_atomic(folder / HTML_NAME, html.encode("utf-8"))
    return folder / HTML_NAME, folder / MD_NAME


def write_report_from_folder(folder: str | Path, verify: bool = True) -> tuple[Path, Path]:
    """Rebuild the report of a run folder written by :func:`drsim.results.folders.write_run` (or ``drsim run``).

    The figures need the full results, which the folder's tables do not hold, so this **re-simulates**: it loads
    the folder's ``scenario.yaml`` (the scenario as run, every default filled in), checks that its hash with the
    seed of ``metadata.json`` is the recorded ``scenario_hash``, runs it with that seed (deterministic: identical
    tables) and, with ``verify``, checks that the new summary equals the stored ``summary.parquet`` (it would
    not if the drsim version changed the model). Then writes the report into the folder, as
    :func:`write_report`. Raises :class:`ReportError` when the folder is not a run folder or does not match.
    """

    folder = Path(folder)
    meta_path, scenario_path = folder / "metadata.json", folder / "scenario.yaml"
    if not meta_path.is_file() or not scenario_path.is_file():
        raise ReportError(f"{folder}: not a run folder (needs metadata.json and scenario.yaml, as written by "
                          "drsim run)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{meta_path}: cannot read it: {exc}") from None
    if not isinstance(meta, dict) or "seed" not in meta or "scenario_hash" not in meta:
        raise ReportError(f"{meta_path}: no seed and scenario hash: not the folder of a single run "
                          "(a sweep folder has no single run to report)")
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as exc:
        raise ReportError(str(exc)) from None
    seed = int(meta["seed"])
    found = scenario_hash(scenario, seed)
    if found != meta["scenario_hash"]:
        raise ReportError(f"{scenario_path}: its hash with seed {seed} is {found}, but metadata.json records "
                          f"{meta['scenario_hash']}: the scenario was changed after the run")
    results = simulate(scenario, seed=seed)
    stored = folder / "summary.parquet"
    if verify and stored.is_file():
        _check_same_summary(pd.read_parquet(stored), results.summary, meta, stored)
    return write_report(results, folder)


def _check_same_summary(stored: pd.DataFrame, fresh: pd.DataFrame, meta: dict[str, Any], path: Path) -> None:

    stored, fresh = stored.reset_index(drop=True), fresh.reset_index(drop=True)
    difference = None
    if list(stored.columns) != list(fresh.columns) or len(stored) != len(fresh):
        difference = "its columns or rows differ"
    else:
        for column in fresh.columns:
            a, b = stored[column], fresh[column]
            if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
                x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
                same = np.isclose(x, y, rtol=1e-9, atol=0.0) | (np.isnan(x) & np.isnan(y))
            else:
                same = (a.astype(str) == b.astype(str)).to_numpy()
            if not same.all():
                i = int(np.argmin(same))
                difference = (f"{column} of {fresh['vm'].iloc[i]} is {a.iloc[i]} in the folder and {b.iloc[i]} "
                              "re-simulated")
                break
    if difference is not None:
        then = (meta.get("versions") or {}).get("drsim", "?")
        raise ReportError(f"{path}: re-simulating does not reproduce the stored summary (run with drsim {then}, "
                          f"this is drsim {__version__}): {difference}. 'drsim report --no-verify' "
                          "(verify=False in Python) reports the re-simulated run anyway.")



# --- reports of experiments and plans ------------------------------------------------------------------------------
#
# Both are rendered by the generic templates document.html.j2 / document.md.j2 from a list of sections, each a list
# of blocks (paragraphs, lists, label/value pairs, tables, figures), with the same escaping as the run report.

DOCUMENT_HTML = "document.html.j2"
DOCUMENT_MD = "document.md.j2"


@dataclass
class Block:
    """One piece of a section: ``kind`` is p, lead, note, h3, ul (a list of texts), dl ((label, value) pairs),
    table (a :class:`Table`) or figure (a :class:`ReportFigure`, with its ``number``)."""

    kind: str
    value: Any
    number: int = 0


@dataclass
class Section:
    id: str
    heading: str
    blocks: list[Block] = field(default_factory=list)


def _draw(title: str, caption: str, file: str, draw: Any) -> ReportFigure:
    """Draw one figure (``draw()`` returns a matplotlib Figure) as PNG, as :func:`_figures` does."""
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        fig = draw()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    png = buf.getvalue()
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return ReportFigure(title, caption, file, uri, png)


def _figure_blocks(specs: Sequence[tuple[str, str, str, Any]]) -> tuple[list[Block], list[ReportFigure]]:
    """Figure blocks for (title, caption, file, draw) specs; a plot that raises ValueError (it does not apply to
    these data) is skipped with a note."""
    blocks: list[Block] = []
    drawn: list[ReportFigure] = []
    for title, caption, file, draw in specs:
        try:
            fig = _draw(title, caption, file, draw)
        except ValueError as exc:
            blocks.append(Block("note", f"{title}: not drawn ({exc})."))
            continue
        drawn.append(fig)
        blocks.append(Block("figure", fig, len(drawn)))
    if not specs:
        blocks.append(Block("p", "No figure applies."))
    return blocks, drawn


def _render_document(ctx: dict[str, Any]) -> tuple[str, str]:
    html = _environment(False).get_template(DOCUMENT_HTML).render(ctx)
    md = _environment(True).get_template(DOCUMENT_MD).render(ctx)
    return html, md


def _write_document(folder: Path, ctx: dict[str, Any], figures: list[ReportFigure]) -> tuple[Path, Path]:
    html, md = _render_document(ctx)
    folder.mkdir(parents=True, exist_ok=True)
    for fig in figures:
        _write_atomic(folder / fig.file, fig.png)
    _write_atomic(folder / MD_NAME, md.encode("utf-8"))
    _write_atomic(folder / HTML_NAME, html.encode("utf-8"))
    return folder / HTML_NAME, folder / MD_NAME


# Public names of the generic document machinery, for reports defined in other modules (drsim.views.risk_report).
def write_document(folder: Path, ctx: dict[str, Any], figures: list[ReportFigure]) -> tuple[Path, Path]:
    """Render ``ctx`` (title, meta, version, sections, footer) with the document templates into ``folder``."""
    return _write_document(folder, ctx, figures)


def figure_blocks(specs: Sequence[tuple[str, str, str, Any]]) -> tuple[list[Block], list[ReportFigure]]:
    """Figure blocks for (title, caption, file, draw) specs."""
    return _figure_blocks(specs)


def scenario_brief(scenario: Scenario) -> tuple[list[tuple[str, str]], Table]:
    """The scenario in brief: (label, value) pairs and the hosts table."""
    return _brief_of(scenario)


def _brief_of(scenario: Scenario) -> tuple[list[tuple[str, str]], Table]:
    """The run report's scenario in brief, without the run seed (an experiment or plan has one per replication)."""
    items, table = _brief(SimpleNamespace(scenario=scenario, seed=None))  # type: ignore[arg-type]  # reads both
    return [(label, value) for label, value in items if label != "Seed"], table


def _assumption_blocks(scenario: Scenario) -> list[Block]:
    defaults, sources = _assumptions(SimpleNamespace(scenario=scenario))  # type: ignore[arg-type]  # reads .scenario
    return [Block("p", "What the numbers rest on. Defaults are assumptions based on typical values, not "
                       "measurements; change them in the scenario file when better figures are known."),
            Block("table", defaults), Block("h3", "Sources"), Block("ul", sources),
            Block("h3", "Model approximations"), Block("ul", list(APPROXIMATIONS))]


def _seeds_text(seeds: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(s) for s in seeds[:limit])
    return shown + (f" and {len(seeds) - limit} more" if len(seeds) > limit else "")


def _value_text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class _SiteStats:
    """The site's aggregate of an experiment: (mean, ci95) per (point, metric)."""

    def __init__(self, exp: Any):
        agg = exp.aggregate
        agg = agg[agg["vm"] == SITE]
        self.stats = {(int(p), str(m)): (float(mean), float(half), int(n)) for p, m, mean, half, n
                      in zip(agg["point"], agg["metric"], agg["mean"], agg["ci95"], agg["n"], strict=True)}

    def mean(self, point: int, metric: str) -> float:
        return self.stats.get((point, metric), (math.nan, math.nan, 0))[0]

    def ci(self, point: int, metric: str) -> float:
        return self.stats.get((point, metric), (math.nan, math.nan, 0))[1]

    def n(self, point: int, metric: str) -> int:
        return self.stats.get((point, metric), (math.nan, math.nan, 0))[2]

    def dur(self, point: int, metric: str) -> str:
        m, half = self.mean(point, metric), self.ci(point, metric)
        if _isnan(m):
            return "-"
        return _fmt(m) + ("" if _isnan(half) else f" ± {_fmt(half)}")


def _point_label(exp: Any, point: int) -> str:
    settings = exp.points.iloc[point]
    text = ", ".join(f"{path} = {_value_text(settings[path])}" for path in exp.sweep)
    return f"point {point}" + (f" ({text})" if text else "")


def _objectives_met(exp: Any, st: _SiteStats, point: int) -> tuple[bool, bool]:
    """(RPO met, RTO met) at the site at a point: the RPO when the mean p95 RPO is within the RPO objective and
    every incident's data loss was within it in every replication; the RTO when every incident of every
    replication was restored within the RTO objective."""
    obj = exp.scenario_for(point).objectives
    rpo = st.mean(point, "rpo_p95_s")
    loss_ok = st.mean(point, "rpo_met")
    rto_ok = st.mean(point, "rto_met")
    rpo_met = not _isnan(rpo) and rpo <= obj.rpo and (_isnan(loss_ok) or loss_ok >= 1.0)
    rto_met = _isnan(rto_ok) or rto_ok >= 1.0
    return rpo_met, rto_met


def _extremes(exp: Any, st: _SiteStats, metric: str, what: str) -> str | None:
    points = [p for p in range(len(exp.points)) if not _isnan(st.mean(p, metric))]
    if not points:
        return None
    if len(points) == 1:
        return f"The site's mean {what} is {st.dur(points[0], metric)}."
    best = min(points, key=lambda p: st.mean(p, metric))
    worst = max(points, key=lambda p: st.mean(p, metric))
    if st.mean(best, metric) == st.mean(worst, metric):
        return f"The site's mean {what} is {st.dur(best, metric)} at every point."
    return (f"The site's mean {what} is lowest at {_point_label(exp, best)}: {st.dur(best, metric)}, and highest "
            f"at {_point_label(exp, worst)}: {st.dur(worst, metric)} (means ± 95 % confidence half-width).")


def _replications_text(exp: Any) -> str:
    """'20 replications', or '10 to 40 replications' when precision targets ran points to different counts."""
    per_point = exp.replications_per_point
    lo, hi = min(per_point), max(per_point)
    return count(hi, "replication") if lo == hi else f"{lo} to {hi} replications"


def _experiment_summary(exp: Any, st: _SiteStats) -> list[str]:
    n_points = len(exp.points)
    runs = sum(exp.replications_per_point)
    lines = [f"{count(n_points, 'sweep point')} x {_replications_text(exp)} = {count(runs, 'run')}"
             + (f"; {count(len(exp.failures), 'run')} failed and {'is' if len(exp.failures) == 1 else 'are'} "
                "left out (failures.parquet)." if len(exp.failures) else "; every run completed.")]
    met = {p: _objectives_met(exp, st, p) for p in range(n_points)}
    both = [p for p, (a, b) in met.items() if a and b]
    obj = exp.scenario.objectives
    target = f"the RPO ({_fmt(obj.rpo)}) and RTO ({_fmt(obj.rto)}) objectives"
    if len(both) == n_points:
        lines.append(f"Every point meets {target} at the site.")
    elif not both:
        lines.append(f"No point meets both {target} at the site.")
    else:
        lines.append(f"{len(both)} of {n_points} points {'meets' if len(both) == 1 else 'meet'} {target} at the site: "
                     + "; ".join(_point_label(exp, p) for p in both) + ".")
    rpo_only = [p for p, (a, _) in met.items() if not a]
    rto_only = [p for p, (_, b) in met.items() if not b]
    if rpo_only and len(rpo_only) < n_points:
        lines.append("The RPO objective is missed at " + "; ".join(_point_label(exp, p) for p in rpo_only) + ".")
    if rto_only and len(rto_only) < n_points:
        lines.append("The RTO objective is missed at " + "; ".join(_point_label(exp, p) for p in rto_only) + ".")
    for metric, what in (("rpo_p95_s", "p95 RPO"), ("downtime_s", "downtime")):
        text = _extremes(exp, st, metric, what)
        if text:
            lines.append(text)
    if n_points > 1:
        lines.append("Replication k runs with the same seed at every point (common random numbers), so the points "
                     "are compared on the same failure timeline and churn.")
    return lines


def _experiment_table(exp: Any, st: _SiteStats) -> Table:
    paths = list(exp.sweep)
    target = _fmt(exp.scenario.objectives.rpo)
    header = ["point", *paths, "runs", "RPO p95", f"time RPO > {target}", "availability", "downtime",
              "incidents", "worst RTO", "RPO objective", "RTO objective"]
    rows = []
    for p in range(len(exp.points)):
        settings = exp.points.iloc[p]
        incidents = st.mean(p, "incidents")
        rpo_met, rto_met = _objectives_met(exp, st, p)
        rows.append([str(p), *(_value_text(settings[path]) for path in paths), str(st.n(p, "downtime_s")),
                     st.dur(p, "rpo_p95_s"), _pct(st.mean(p, "rpo_over_target")),
                     _pct(st.mean(p, "availability"), 3), st.dur(p, "downtime_s"),
                     "-" if _isnan(incidents) else f"{incidents:.2f}", st.dur(p, "rto_max_s"),
                     "met" if rpo_met else "missed", "met" if rto_met else "missed"])
    numeric = [True, *(False for _ in paths), True, True, True, True, True, True, True, False, False]
    return Table(header, rows, numeric, caption="The site per sweep point (means over replications)",
                 note="Means over the replications of each point, ± the half-width of the 95 % confidence interval of "
                      "the mean (Student t). Worst RTO: the mean of each replication's longest unplanned restore. "
                      "RPO objective met: the mean p95 RPO is within the target and every incident's data loss was "
                      "within it in every replication; RTO objective met: every unplanned incident of every "
                      "replication was restored within the RTO objective. Per-VM rows are in aggregate.parquet.")


def _experiment_figures(exp: Any) -> list[tuple[str, str, str, Any]]:

    varied = [path for path, values in exp.sweep.items() if len({str(v) for v in values}) > 1]
    specs: list[tuple[str, str, str, Any]] = []
    if len(varied) == 1:
        x = varied[0]
        for metric, what, slug in (("rpo_p95_s", "p95 RPO", "rpo"), ("downtime_s", "downtime", "downtime")):
            specs.append((f"Site {what} against {x}",
                          f"The site's mean {what} at each value of {x}, with the 95 % confidence band of the mean; "
                          "the objective that applies is dashed.", f"report-sweep-{slug}.png",
                          lambda m=metric: plots.sweep_lines(exp, x, m)))
    elif len(varied) == 2:
        x, y = varied
        specs.append((f"Site p95 RPO over {x} and {y}",
                      "The site's mean p95 RPO at every point of the grid; cells missing the RPO objective are "
                      "hatched.", "report-sweep-heatmap.png", lambda: plots.sweep_heatmap(exp, x, y, "rpo_p95_s")))
    if "policy.name" in varied:
        specs.append(("Paired differences in downtime between policies",
                      "The mean difference in downtime of each policy against the first, per VM and for the site, "
                      "on the same seeds (common random numbers), with 95 % confidence intervals.",
                      "report-paired-downtime.png",
                      lambda: plots.paired_differences(exp, "policy.name", metric="downtime_s")))
    specs.append(("Distributions across replications at point 0",
                  "Empirical CDFs across the replications of point 0 of the site's p95 RPO, worst data loss, worst "
                  "RTO and downtime; the objective that applies is dashed.", "report-cdfs.png",
                  lambda: plots.replication_cdfs(exp, point=0)))
    specs.append(("Availability by VM at point 0",
                  "Availability of each VM and the site across the replications of point 0: mean with 95 % "
                  "confidence interval, and each replication as a dot.", "report-availability.png",
                  lambda: plots.availability_by_vm(exp, 0)))
    return specs


def experiment_report_context(exp: Any) -> tuple[dict[str, Any], list[ReportFigure]]:
    """The sections of an experiment's report, and its figures."""

    st = _SiteStats(exp)
    brief, hosts = _brief_of(exp.scenario)
    meta = exp.metadata()
    sweep_items = [(path, ", ".join(_value_text(v) for v in values)) for path, values in meta["sweep"].items()]
    sweep_items += [
        ("Points", str(len(exp.points))),
        ("Replications", f"{_replications_text(exp)} per point"),
        ("Experiment seed", str(exp.seed)),
        ("Run seeds", _seeds_text(exp.seeds) + " (replication k uses the same seed at every point)"),
        ("Runs", f"{meta['runs']}, {meta['failed_runs']} failed"),
        ("Executed", f"{exp.executor}, {count(exp.workers, 'worker')}, {exp.elapsed_s:.1f} s"),
    ]
    if not exp.sweep:
        sweep_items.insert(0, ("Swept settings", "none: replications of the scenario as it is"))
    fig_blocks, figures = _figure_blocks(_experiment_figures(exp))
    sections = [
        Section("scenario", "Scenario", [
            Block("p", "The base scenario; at each sweep point the swept settings replace its values."),
            Block("dl", brief), Block("table", hosts)]),
        Section("sweep", "Sweep", [Block("dl", sweep_items)]),
        Section("summary", "Summary", [Block("lead", line) for line in _experiment_summary(exp, st)]),
        Section("points", "Results per point", [Block("table", _experiment_table(exp, st))]),
        Section("figures", "Figures", fig_blocks),
        Section("assumptions", "Assumptions and sources", _assumption_blocks(exp.scenario)),
    ]
    ctx = {
        "title": f"Disaster-recovery experiment: {exp.scenario.name}",
        "meta": f"drsim {__version__} · experiment seed {exp.seed} · scenario hash {meta['scenario_hash']}",
        "version": __version__,
        "sections": sections,
        "footer": f"Generated by drsim {__version__}. Running the same scenario and sweep with experiment seed "
                  f"{exp.seed} gives the same tables.",
    }
    return ctx, figures


def write_experiment_report(exp: Any, folder: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (with its ``report-*.png`` figures) of an
    :class:`drsim.experiments.experiment.Experiment` into ``folder`` (the sweep folder written by
    :func:`drsim.experiments.experiment.write_experiment`). Returns (HTML path, Markdown path)."""
    ctx, figures = experiment_report_context(exp)
    return _write_document(Path(folder), ctx, figures)


# --- plan report ---------------------------------------------------------------------------------------------------


def _mbit(bytes_per_s: Any) -> str:
    return planner_mbit(float(bytes_per_s)) if not _isnan(bytes_per_s) else "-"


def _dur_ci(seconds: Any, ci: Any = math.nan) -> str:
    if _isnan(seconds):
        return "-"
    text = _fmt(float(seconds))
    return text + (f" ± {_fmt(float(ci))}" if not _isnan(ci) and math.isfinite(float(ci)) and ci > 0 else "")


def _plan_table(plan_df: pd.DataFrame) -> Table:
    pct = f"p{plan_df.attrs['percentile']:g}"
    header = ["VM", "batch", "mean churn", "required", "formula", "formula / required", f"{pct} RPO now",
              f"{pct} RPO at formula", f"{pct} RPO at required", "initial replication", "batch replication",
              "protected after"]
    rows, total = [], None
    for r in plan_df.itertuples(index=False):
        ratio = r.formula_ratio
        row = [str(r.vm), "" if pd.isna(r.batch) else str(r.batch), _mbit(r.mean_churn_Bps), _mbit(r.required_Bps),
               _mbit(r.formula_Bps), "-" if _isnan(ratio) or not math.isfinite(ratio) else f"{ratio:.2f}",
               _dur_ci(r.rpo_current_s, r.rpo_current_ci95_s), _dur_ci(r.rpo_formula_s),
               _dur_ci(r.rpo_required_s, r.rpo_required_ci95_s), _dur_ci(r.initial_replication_s),
               _dur_ci(r.batch_initial_replication_s), _dur_ci(r.protected_after_s)]
        if r.vm == SITE:
            total = row
        else:
            rows.append(row)
    return Table(header, rows, [False, True, *([True] * 10)], caption="Bandwidth per VM and for the site",
                 total=total,
                 note="required: the raw upload at which the VM (the site: every VM) meets the target on the shared "
                      "link. formula: the VM's term of the vendor's peak-churn sum. RPO columns: means over "
                      "replications (± 95 % confidence half-width) at the current, the formula's and the required "
                      "bandwidth; the site row shows the worst VM. Initial replication times at the site's required "
                      "bandwidth.")


def _plan_findings(plan_df: pd.DataFrame) -> list[str]:
    """The findings of :func:`drsim.experiments.planner.plan_text`, as sentences."""

    lines = plan_text(plan_df).splitlines()
    start = lines.index("Findings:") + 1 if "Findings:" in lines else len(lines)
    return [line[2:] if line.startswith("- ") else line for line in lines[start:] if line.strip()]


def plan_report_context(plan_df: pd.DataFrame, scenario: Scenario) -> tuple[dict[str, Any], list[ReportFigure]]:
    """The sections of a plan's report, and its figure."""

    a = plan_df.attrs
    if "rpo_s" not in a:
        raise ValueError("plan_df has no planner attrs: pass the DataFrame returned by drsim.plan")
    site = plan_df[plan_df["vm"] == SITE].iloc[0]
    pct = f"p{a['percentile']:g}"
    ratio = site["formula_ratio"]
    current = site["rpo_current_s"]
    answer = [
        ("Required bandwidth (site)", _mbit(site["required_Bps"])
         + ("" if _isnan(site["required_Bps"]) else f" (not met at {_mbit(site['required_low_Bps'])})")),
        ("Vendor formula bandwidth", _mbit(site["formula_Bps"])
         + ("" if _isnan(ratio) or not math.isfinite(ratio) else f", {ratio:.2f} x the required bandwidth")),
        ("Current upload", _mbit(a["current_upload_Bps"])),
        (f"Achievable {pct} RPO now (worst VM)", _dur_ci(current, site["rpo_current_ci95_s"])
         + ("" if _isnan(current) else " (meets the target)" if current <= a["rpo_s"] else " (misses the target)")),
        (f"{pct} RPO at the formula bandwidth (worst VM)", _dur_ci(site["rpo_formula_s"])),
        ("Initial replication at the required bandwidth", _dur_ci(site["initial_replication_s"])),
        ("Every VM protected after", _dur_ci(site["protected_after_s"])),
        ("Lower bound of the search", _mbit(a["lower_bound_Bps"])),
    ]
    request = [
        ("RPO target", f"{_fmt(a['rpo_s'])}, {a['percentile']:g} % of the time, every VM"),
        ("Measured", a["measured"]),
        ("Criterion", a["criterion_text"]),
        ("Replications", f"{a['replications']} per bandwidth (the same run seeds at every bandwidth)"),
        ("Experiment seed", str(a["experiment_seed"])),
        ("Tolerance", _mbit(a["tolerance_Bps"])),
        ("Simulated", f"{count(len(a['evaluations']), 'bandwidth')}, {count(a['runs'], 'run')}, "
                      f"{a['wall_time_s']:.1f} s"),
        ("Sizing scenario", a["sizing"]),
        ("Throttle", (a["throttle"] + "; the bandwidths are the raw uplink") if a["throttle"] else "none"),
        ("Formula", a["formula"]),
    ]
    brief, hosts = _brief_of(scenario)
    fig_blocks, figures = _figure_blocks([(
        "Planner search", "The RPO percentile judged at every simulated bandwidth for the worst VM (filled where the "
        "whole site met the target) and each VM; the target is dashed; vertical lines mark the required, the formula "
        "and the current bandwidth.", "report-planner-curve.png", lambda: plots.planner_curve(plan_df))])
    sections = [
        Section("answer", "Answer", [Block("dl", answer), Block("h3", "Findings"),
                                     Block("ul", _plan_findings(plan_df))]),
        Section("vms", "Per-VM plan", [Block("table", _plan_table(plan_df))]),
        Section("figures", "Figures", fig_blocks),
        Section("request", "Request and method", [Block("dl", request)]),
        Section("scenario", "Scenario", [
            Block("p", "The scenario as given; the planner sizes it without its failures, maintenance and drills."),
            Block("dl", brief), Block("table", hosts)]),
    ]
    ctx = {
        "title": f"Bandwidth plan: {a['scenario']}",
        "meta": f"drsim {__version__} · experiment seed {a['experiment_seed']} · RPO target {_fmt(a['rpo_s'])}",
        "version": __version__,
        "sections": sections,
        "footer": f"Generated by drsim {__version__}. The same scenario and request with experiment seed "
                  f"{a['experiment_seed']} gives the same plan.",
    }
    return ctx, figures


def write_plan_report(plan_df: pd.DataFrame, scenario: Scenario, folder: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (with ``report-planner-curve.png``) of a plan
    returned by :func:`drsim.plan` for ``scenario`` into ``folder`` (created if needed). Returns (HTML, Markdown)."""
    ctx, figures = plan_report_context(plan_df, scenario)
    return _write_document(Path(folder), ctx, figures)


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars as Python numbers, NaN and infinities as None, tuples as lists,
    anything else unknown as text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA:
        return None
    return str(value)


def write_plan_folder(plan_df: pd.DataFrame, scenario: Scenario, out_root: str | Path = "results") -> Path:
    """Write a plan into a new folder ``out_root/<scenario>/plan-<UTC time>/`` (a ``-2``... suffix if it exists),
    created atomically: ``plan.parquet`` (the table, without attrs), ``metadata.json`` (the attrs as JSON, NaN and
    infinities as null) and the plan report. Returns the folder."""
    from datetime import UTC


    now = datetime.now(UTC)

    def fill(tmp: Path) -> None:
        flat = pd.DataFrame(plan_df, copy=True)
        flat.attrs = {}
        flat.to_parquet(tmp / "plan.parquet", index=False)
        meta = {**json_safe(dict(plan_df.attrs)), "created_at": now.isoformat(timespec="seconds"),
                "versions": package_versions(),
                "units": {"time": "seconds", "rate": "bytes per second"}}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        write_plan_report(plan_df, scenario, tmp)

    return atomic_folder(Path(out_root) / scenario.name, f"plan-{now:%Y%m%d-%H%M%S}", fill)
