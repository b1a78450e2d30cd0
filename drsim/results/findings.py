"""Plain-language findings and the terminal summary of a run.

:func:`findings` reads a run's tables and says what a planner should notice: VMs not protected in time, a link that
cannot keep up with churn, RPO targets missed, health warnings, incidents. A finding about many VMs is one line
naming the worst few (``41 VMs were in warning health at least once; worst: ...``). :func:`summary_text` lays out
the per-VM tables printed by ``drsim run`` (and saved as ``summary.txt``, control characters in names escaped); for
a big site it shows the VMs that matter most (:func:`drsim.results.ranking.rank_vms`) and says where every VM is.

Also: VMs the service refuses (support matrix), resynchronisations, churn over the service's limit (judged on the
simulated churn's 95th percentile, :mod:`drsim.results.limits`), operations triggered through the cloud portal and
the VPNs clients reconnected through.

Imports :mod:`drsim.results` (tables, ranking, wording, limits), :mod:`drsim.scenario` (units, warnings, mean churn,
the site's limits).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from drsim.results.limits import churn_items
from drsim.results.ranking import rank_vms
from drsim.results.tables import PLANNED_KINDS, SITE, Results
from drsim.results.wording import cause, count, incident_lines, names_text, text_table, when, when_short
from drsim.scenario import units
from drsim.scenario.checks import scenario_warnings
from drsim.scenario.churn import mean_rate
from drsim.scenario.quoting import printable
from drsim.scenario.site import churn_limit, protectable

__all__ = ["findings", "summary_text", "saturation", "count", "incident_lines", "text_table", "protected_after",
           "GROUP_AT"]

# the names these helpers had when they lived here
_cause, _when, _when_short = cause, when, when_short

GROUP_AT = 4  #: a finding about this many VMs or more is one line that names the worst ones
_WORST = 3  # VMs named in a grouped finding
_fmt = units.format_duration


def saturation(results: Results) -> float:
    """Long-run mean churn of the protected VMs (wire bytes/s) over the link's mean payload capacity.

    At 1 or more, replication cannot keep up: backlog and RPO grow until the VMs need resynchronisation.
    """
    s = results.scenario
    churn = sum(mean_rate(s, vm) for host, vm in s.vms() if protectable(host, vm))
    churn /= s.link.compression
    capacity = results._model.upload.schedule.weekly_mean()  # the throttle schedule, outages left out
    return churn / capacity if capacity > 0 else math.inf


def protected_after(results: Results, protected_at: float) -> float:
    """Seconds from the start of protection (``replication.initial.start``) to ``protected_at`` (from t = 0)."""
    return protected_at - results.scenario.initial_start_offset()


def _grouped(out: list[str], items: list[tuple[str, str, str]], group: Callable[[int], str]) -> None:
    """``items``: (VM, the finding about it alone, a short detail), worst first. Few: one line each; many: one
    line, ``group(n)``, naming the worst."""
    if len(items) < GROUP_AT:
        out.extend(long for _, long, _ in items)
    elif items:
        worst = ", ".join(f"{vm} ({short})" for vm, _, short in items[:_WORST])
        out.append(f"{group(len(items))}; worst: {worst}.")


def _summary(results: Results) -> pd.DataFrame:
    """The run's summary; where the steady-state RPO was not computed (a run that kept no per-cycle tables: its
    running statistics do not split off the start-up), the whole protected time's statistics stand in for it."""
    summ = results.summary
    lean = summ["rpo_steady_mean_s"].isna() & summ["rpo_mean_s"].notna()
    if lean.any():
        summ = summ.copy()
        for steady, whole in (("rpo_steady_mean_s", "rpo_mean_s"), ("rpo_steady_p95_s", "rpo_p95_s"),
                              ("rpo_steady_max_s", "rpo_max_s"), ("rpo_steady_over_target", "rpo_over_target")):
            summ.loc[lean, steady] = summ.loc[lean, whole]
    return summ


def findings(results: Results) -> list[str]:
    """What a planner should notice in this run, most important first."""
    s = results.scenario
    out: list[str] = []
    summ = _summary(results)
    vms = summ[summ["vm"] != SITE]
    site = summ[summ["vm"] == SITE].iloc[0]
    target = s.objectives.rpo
    eligible = {vm.name for host, vm in s.vms() if protectable(host, vm)}

    ratio = saturation(results)
    if ratio >= 1:
        out.append(
            f"The link is saturated: the VMs write {ratio:.0%} of what the link can carry on average, so "
            "replication cannot keep up with churn; the change logs grow until the VMs need resynchronisation. "
            "Add bandwidth (or a WAN optimiser) or reduce churn."
        )
    elif ratio >= 0.8:
        out.append(f"The link is nearly saturated: churn uses {ratio:.0%} of its mean capacity; bursts will "
                   "cause missed cycles.")

    unprotected = vms[(~vms["protected"]) & vms["vm"].isin(eligible)]
    if len(unprotected):
        out.append(f"Not protected by the end of the run ({_fmt(s.duration)}): "
                   f"{names_text(unprotected['vm'].tolist(), 10)}. Failover is impossible for them until initial "
                   "replication completes.")
    elif eligible:
        n = len(eligible)
        what = {1: "The only protectable VM is", 2: "Both protectable VMs are"}.get(n, f"All {n} protectable VMs are")
        after = protected_after(results, site["protected_at"])
        text = f"{what} protected after {_fmt(after)}"
        if after != site["protected_at"]:
            text += " from the start of protection (replication.initial.start)"
        if s.start is not None:
            text += f" ({when_short(results, site['protected_at']).removeprefix('on ')})"
        out.append(text + ".")
    old = [(vm.name, host) for host, vm in s.vms() if not host.supported]
    _grouped(out, [(name, f"{name} cannot be protected: host {host.name} runs {host.os} (2012 R2 or later needed).",
                    host.os) for name, host in old],
             lambda n: f"{n} VMs cannot be protected: their hosts run Windows Server older than 2012 R2")
    refused = [(vm.name, f"{vm.name} cannot be protected: {why} (support matrix).", why)
               for host, vm in s.vms() if host.supported and vm.protect for why in vm.unsupported_reasons()]
    _grouped(out, refused, lambda n: f"{n} VMs cannot be protected: the service refuses their disks (support matrix)")

    prot = vms[vms["protected"]]
    if len(prot) and not math.isnan(site["rpo_steady_over_target"]):
        met = max(0.0, 1 - site["rpo_steady_over_target"])
        out.append(f"Site-wide, the {_fmt(target)} RPO target is met {met:.1%} of the protected time after start-up.")
        over = prot[prot["rpo_steady_over_target"] > 0.01].sort_values("rpo_steady_over_target", ascending=False)
        _grouped(out, [(r["vm"], f"{r['vm']} exceeds the RPO target {r['rpo_steady_over_target']:.1%} of the time "
                                 f"(p95 {_fmt(r['rpo_steady_p95_s'])}, worst {_fmt(r['rpo_steady_max_s'])}).",
                        f"{r['rpo_steady_over_target']:.1%}, worst {_fmt(r['rpo_steady_max_s'])}")
                       for _, r in over.iterrows()],
                 lambda n: f"{n} VMs exceed the RPO target more than 1% of the time")
        total = prot["cycles_sent"] + prot["cycles_missed"]
        share = prot["cycles_missed"] / total.clip(lower=1)
        busy = prot.assign(share=share)[prot["cycles_missed"] > 0.05 * total.clip(lower=1)]
        _grouped(out, [(r["vm"], f"{r['vm']} missed {r['cycles_missed']} of {r['cycles_sent'] + r['cycles_missed']} "
                                 "replication cycles (a transfer was still running at the next interval).",
                        f"{r['share']:.0%}") for _, r in busy.sort_values("share", ascending=False).iterrows()],
                 lambda n: f"{n} VMs missed more than 5% of their replication cycles (a transfer was still running "
                           "at the next interval)")
    _health_findings(results, vms, prot, out)
    _incident_findings(results, out)
    out.extend(_operation_paths(results))
    over = churn_items(results)  # judged on the simulated churn's p95: the mean's note is then left out
    limit = churn_limit(s.replication.target_storage, s.replication.io_size)
    _grouped(out, over, lambda n: f"{n} VMs write more than the {limit / 1e6:g} MB/s the service supports per VM on "
                                  f"{s.replication.target_storage} storage at the 95th percentile of the run (support "
                                  "matrix): the service would report them incompatible")
    out.extend("Note: " + w for w in scenario_warnings(s)
               if "cannot be protected" not in w and "exceeds the link" not in w and not (over and "mean churn" in w))
    return out


def _health_findings(results: Results, vms: pd.DataFrame, prot: pd.DataFrame, out: list[str]) -> None:
    resynced = vms[vms["resyncs"] > 0].sort_values("resync_s", ascending=False)
    _grouped(out, [(r["vm"], f"{r['vm']} needed {count(int(r['resyncs']), 'resync')}; it was unprotected for "
                             f"{_fmt(r['resync_s'])} (a disk's change log reached 50 % of the disk: delta "
                             "replication stopped until its blocks were compared and the changed ones sent).",
                    f"{count(int(r['resyncs']), 'resync')}, {_fmt(r['resync_s'])}") for _, r in resynced.iterrows()],
             lambda n: f"{n} VMs needed resynchronisation (a disk's change log reached 50 % of the disk: delta "
                       "replication stopped until the changed blocks were sent)")
    # a resync is critical health throughout: the VMs above are not told again
    crit = prot[(prot["worst_health"] == "critical") & (prot["resyncs"] == 0)].sort_values("worst_health_s",
                                                                                             ascending=False)
    _grouped(out, [(r["vm"], f"{r['vm']} reached critical health (pending log >= 50 % of its disk: "
                             f"resynchronisation required) for {_fmt(r['worst_health_s'])}.",
                    _fmt(r["worst_health_s"])) for _, r in crit.iterrows()],
             lambda n: f"{n} VMs reached critical health (pending log >= 50 % of the disk: resynchronisation "
                       "required)")
    warn = prot[prot["worst_health"] == "warning"].sort_values("worst_health_s", ascending=False)
    spells = results.health_totals()["warnings"]  # (from the running statistics when the table was not kept)
    items = []
    for _, r in warn.iterrows():
        n = int(spells.get(r["vm"], 0))
        times = "once" if n == 1 else f"{n} times"
        items.append((r["vm"], f"{r['vm']} was in warning health {times}, {_fmt(r['worst_health_s'])} in all.",
                      f"{times}, {_fmt(r['worst_health_s'])}"))
    _grouped(out, items, lambda n: f"{n} VMs were in warning health at least once")


def _incident_findings(results: Results, out: list[str]) -> None:
    s = results.scenario
    inc = results.incidents
    lost = inc[inc["outcome"].str.startswith("unrecoverable")]
    items = []
    for _, row in lost.iterrows():
        reason = row["outcome"].split(":", 1)[1].strip()
        down = (f" Its data is lost: down {_fmt(row['downtime_s'])}, to the end of the run."
                if math.isnan(row["service_restored_at"]) else "")
        items.append((row["vm"], f"{row['vm']} could NOT be recovered after its {row['kind']} failure: {reason}."
                      + down + (" Longer retention or faster detection would have kept a clean point."
                                if "retention" in reason else ""), reason))
    _grouped(out, items, lambda n: f"{n} VMs could NOT be recovered: their data is lost")
    unplanned = inc[~inc["kind"].isin(PLANNED_KINDS)]
    rto = _fmt(s.objectives.rto)
    late = unplanned[unplanned["rto_s"] > s.objectives.rto].sort_values("rto_s", ascending=False)
    items = []
    for _, row in late.iterrows():
        sla = row["sla_rto_s"]
        how = f" (SLA-measured failover {_fmt(sla)})" if sla == sla else " (no failover: it was repaired on site)"
        items.append((row["vm"], f"{row['vm']} missed the {rto} RTO target: service back after "
                                 f"{_fmt(row['rto_s'])}{how}.", f"back after {_fmt(row['rto_s'])}"))
    _grouped(out, items, lambda n: f"{n} incidents missed the {rto} RTO target")
    still = unplanned[unplanned["rto_s"].isna() & ~unplanned["outcome"].str.startswith(("handled", "unrecoverable"))]
    _grouped(out, [(row["vm"], f"{row['vm']} missed the {rto} RTO target: its {row['kind']} incident ended "
                               f"'{row['outcome']}'.", row["outcome"]) for _, row in still.iterrows()],
             lambda n: f"{n} incidents missed the {rto} RTO target without service restored")
    lossy = unplanned[(unplanned["data_loss_s"] > s.objectives.rpo)
                      & ~unplanned["outcome"].str.startswith("unrecoverable")]
    _grouped(out, [(row["vm"], f"{row['vm']} lost {_fmt(row['data_loss_s'])} of data in its {row['kind']} incident, "
                               f"above the {_fmt(s.objectives.rpo)} RPO target.", _fmt(row["data_loss_s"]))
                   for _, row in lossy.sort_values("data_loss_s", ascending=False).iterrows()],
             lambda n: f"{n} incidents lost more data than the {_fmt(s.objectives.rpo)} RPO target")


def _operation_paths(results: Results) -> list[str]:
    """Which operations went through the cloud portal, and how clients reached the failed-over VMs."""
    ops = results.operations
    out = []
    portal = ops[ops["step"] == "triggered via the portal"]
    if len(portal):
        what = [f"the {k.replace('_', ' ')} of {t}" if k != "plan" else f"the recovery plan {t}"
                for t, k in zip(portal["target"], portal["kind"], strict=True)]
        out.append("Through the cloud portal (the Essentials dashboard was down): "
                   + names_text(list(dict.fromkeys(what)), 10) + ".")
    for path in ("site-to-site", "point-to-site"):
        rows = ops[ops["step"] == f"vpn: {path}"]
        if not len(rows):
            continue
        setups = ops[(ops["kind"] == "vpn") & (ops["step"] == f"{path} setup")]
        how = "" if not len(setups) else (
            f", set up during the incident in {_fmt(float(setups['end'].iloc[0] - setups['start'].iloc[0]))} "
            f"({when_short(results, float(setups['start'].iloc[0]))})")
        waited = rows[rows["end"] > rows["start"]]
        if path == "site-to-site" and not len(setups) and not len(waited):
            continue  # the usual path, in place beforehand: nothing to notice
        longest = float((waited["end"] - waited["start"]).max()) if len(waited) else 0.0
        wait = f"; clients waited up to {_fmt(longest)} for it" if len(waited) else ""
        out.append(f"Clients reached {names_text(list(dict.fromkeys(rows['target'])), 10)} in the cloud through the "
                   f"{path} VPN{how}{wait}.")
    return out


def _recovery_table(results: Results, rows_of: pd.DataFrame) -> list[str]:
    s = results.scenario
    header = ("VM", "availability", "downtime", "incidents", "worst data loss", "worst RTO",
              f"RPO {_fmt(s.objectives.rpo)}", f"RTO {_fmt(s.objectives.rto)}", "drills", "drill RTO")
    rows = []

    def judged(ok: bool, incidents: int) -> str:
        return "-" if incidents == 0 else "met" if ok else "MISSED"  # no incident: nothing to judge

    for _, r in rows_of.iterrows():
        n = int(r["incidents"])
        rows.append((r["vm"], f"{r['availability']:.4%}", _fmt(r["downtime_s"]), str(n),
                     _fmt(r["data_loss_max_s"]), _fmt(r["rto_max_s"]), judged(r["rpo_met"], n),
                     judged(r["rto_met"], n), str(r["drills"]), _fmt(r["drill_rto_mean_s"])))
    return [*text_table(header, rows),
            f"RPO {_fmt(s.objectives.rpo)}, RTO {_fmt(s.objectives.rto)}: met when every unplanned incident's data "
            "loss and time to service were within them; '-': no incident to judge."]


def _health_cell(r: pd.Series) -> str:
    worst = str(r["worst_health"])
    seconds = r["worst_health_s"]
    return f"{worst} {_fmt(seconds)}" if worst in ("warning", "critical") and seconds == seconds else worst


def summary_text(results: Results, max_vms: int | None = None, where: str = "in the run folder") -> str:
    """The per-VM tables, incidents and findings, as printed by ``drsim run``. With ``max_vms``, a site with more
    VMs shows only the ``max_vms`` that matter most (:func:`~drsim.results.ranking.rank_vms`, in that order) and
    their incidents (at most 10 lines), and says where every VM is: ``summary.txt`` and ``summary.parquet``
    ``where``."""
    s = results.scenario
    target = s.objectives.rpo
    summ = _summary(results)
    vms = summ[summ["vm"] != SITE]
    cut = max_vms is not None and len(vms) > max_vms
    if cut:
        order = {name: k for k, name in enumerate(rank_vms(results)[:max_vms])}
        vms = vms[vms["vm"].isin(order)].sort_values("vm", key=lambda c: c.map(order))
    shown = pd.concat([vms, summ[summ["vm"] == SITE]])
    header = ("VM", "host", "protected after", "RPO mean", "p95", "max", f"> {_fmt(target)}", "start-up",
              "missed", "worst health")
    rows = []
    for _, r in shown.iterrows():
        rows.append((
            printable(r["vm"]), printable(r["host"]),
            _fmt(protected_after(results, r["protected_at"])) if r["protected"] else "not protected",
            _fmt(r["rpo_steady_mean_s"]), _fmt(r["rpo_steady_p95_s"]), _fmt(r["rpo_steady_max_s"]),
            "-" if math.isnan(r["rpo_steady_over_target"]) else f"{r['rpo_steady_over_target']:.1%}",
            _fmt(r["rpo_startup_max_s"]), str(r["cycles_missed"]), _health_cell(r),
        ))
    lines = [
        f"{s.name}: {count(len(s.vms()), 'VM')} on {count(len(s.site.hosts), 'host')}, "
        f"{_fmt(s.duration)} simulated, seed {results.seed}",
        f"link: {units.format_rate(s.link.upload)} up / {units.format_rate(s.link.download)} down, "
        f"replication every {_fmt(s.replication.interval)}, RPO target {_fmt(target)}",
        "",
        *text_table(header, rows, left=2),
        "RPO: the steady state, from each VM's first recovery point cut after protection; start-up: the worst RPO "
        "before it.",
    ]
    offset = s.initial_start_offset()
    if offset > 0:
        lines.append(f"protected after: from the start of protection (replication.initial.start, {_fmt(offset)} "
                     "into the run).")
    if cut:
        lines.append(f"Showing the {len(vms)} of {count(len(summ) - 1, 'VM')} that matter most (never protected, "
                     f"lost data, incidents, worst RPO first); every VM: summary.txt and summary.parquet {where}.")
    inc = results.incidents
    if len(inc) or len(results.operations):
        lines += ["", *_recovery_table(results, shown), ""]
        lines.append("Incidents:" if len(inc) else "Incidents: none")
        mine = inc[inc["vm"].isin(set(vms["vm"]))] if cut else inc
        told = incident_lines(results, mine.head(10) if cut else mine)
        lines.extend(f"- {line}" for line in told)
        if len(told) < len(inc):
            lines.append(f"- ... and {count(len(inc) - len(told), 'more incident')}: every one in summary.txt and "
                         f"incidents.parquet {where}.")
    notes = findings(results)
    if notes:
        lines += ["", "Findings:", *(f"- {n}" for n in notes)]
    # names may hold newlines, carriage returns, bells or bidirectional overrides: escaped, they cannot rewrite
    # what a terminal or summary.txt shows
    return "\n".join(printable(line) for line in lines)
