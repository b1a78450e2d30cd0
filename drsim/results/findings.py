"""Plain-language findings and the terminal summary of a run.

:func:`findings` reads a run's tables and says what a planner should notice: VMs not protected in time,
a link that cannot keep up with churn, RPO targets missed, health warnings. :func:`summary_text` lays out
the per-VM table printed by ``drsim run``.
"""

from __future__ import annotations

import math

import pandas as pd

from drsim.results.limits import churn_warnings
from drsim.results.tables import PLANNED_KINDS, SITE, Results
from drsim.scenario import units
from drsim.scenario.checks import scenario_warnings
from drsim.scenario.churn import mean_rate
from drsim.scenario.site import protectable

__all__ = ["findings", "summary_text", "saturation", "count", "incident_lines", "text_table"]


def saturation(results: Results) -> float:
    """Long-run mean churn of the protected VMs (wire bytes/s) over the link's mean payload capacity.

    At 1 or more, replication cannot keep up: backlog and RPO grow without bound.
    """
    s = results.scenario
    churn = sum(mean_rate(s, vm) for host, vm in s.vms() if protectable(host, vm))
    churn /= s.link.compression
    capacity = results._model.upload.schedule.weekly_mean()  # the throttle schedule, outages left out
    return churn / capacity if capacity > 0 else math.inf


def count(n: int, noun: str) -> str:
    """``count(1, 'VM')`` -> ``'1 VM'``; ``count(2, 'VM')`` -> ``'2 VMs'``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _when(results: Results, t: float) -> str:
    text = units.format_duration(t)
    if results.scenario.start is not None and math.isfinite(t):
        stamp = pd.Timestamp(results.scenario.start) + pd.Timedelta(seconds=t)
        text += f" ({stamp:%a %d %b %H:%M})"
    return text


def _recovery_table(results: Results) -> list[str]:
    s = results.scenario
    fmt = units.format_duration
    header = ("VM", "availability", "downtime", "incidents", "worst data loss", "worst RTO",
              f"RPO {fmt(s.objectives.rpo)}", f"RTO {fmt(s.objectives.rto)}", "drills", "drill RTO")
    rows = []
    for _, r in results.summary.iterrows():
        rows.append((r["vm"], f"{r['availability']:.4%}", fmt(r["downtime_s"]), str(r["incidents"]),
                     fmt(r["data_loss_max_s"]), fmt(r["rto_max_s"]), "met" if r["rpo_met"] else "MISSED",
                     "met" if r["rto_met"] else "MISSED", str(r["drills"]), fmt(r["drill_rto_mean_s"])))
    return text_table(header, rows)


def text_table(header: tuple, rows: list[tuple]) -> list[str]:
    """A plain-text table: the header, a rule and the rows, columns as wide as their widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def fmt(row: tuple) -> str:
        return "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                         for i, (x, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    return [fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def findings(results: Results) -> list[str]:
    """What a planner should notice in this run, most important first."""
    s = results.scenario
    out: list[str] = []
    summ = results.summary
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
        names = ", ".join(unprotected["vm"])
        out.append(f"Not protected by the end of the run ({units.format_duration(s.duration)}): {names}. "
                   "Failover is impossible for them until initial replication completes.")
    elif eligible:
        n = len(eligible)
        what = {1: "The only protectable VM is", 2: "Both protectable VMs are"}.get(n, f"All {n} protectable VMs are")
        out.append(f"{what} protected after {_when(results, site['protected_at'])}.")
    for host, vm in s.vms():
        if not host.supported:
            out.append(f"{vm.name} cannot be protected: host {host.name} runs {host.os} (2012 R2 or later needed).")
        elif vm.protect:
            out.extend(f"{vm.name} cannot be protected: {why} (support matrix)." for why in vm.unsupported_reasons())

    prot = vms[vms["protected"]]
    if len(prot) and not math.isnan(site["rpo_over_target"]):
        met = max(0.0, 1 - site["rpo_over_target"])
        out.append(f"Site-wide, the {units.format_duration(target)} RPO target is met {met:.1%} of the protected time.")
        for _, row in prot.sort_values("rpo_over_target", ascending=False).iterrows():
            if row["rpo_over_target"] > 0.01:
                out.append(f"{row['vm']} exceeds the RPO target {row['rpo_over_target']:.1%} of the time "
                           f"(p95 {units.format_duration(row['rpo_p95_s'])}, "
                           f"worst {units.format_duration(row['rpo_max_s'])}).")
            if row["cycles_missed"] > 0.05 * max(row["cycles_sent"] + row["cycles_missed"], 1):
                total = row["cycles_sent"] + row["cycles_missed"]
                out.append(f"{row['vm']} missed {row['cycles_missed']} of {total} replication cycles "
                           "(a transfer was still running at the next interval).")

    health = results.health
    for vm in vms[vms["resyncs"] > 0]["vm"]:
        row = vms[vms["vm"] == vm].iloc[0]
        n = int(row["resyncs"])
        out.append(f"{vm} needed {count(n, 'resync')}; it was unprotected for {units.format_duration(row['resync_s'])} "
                   "(a disk's change log reached 50 % of the disk: delta replication stopped until its blocks were "
                   "compared and the changed ones sent).")
    for vm in prot["vm"]:
        h = health[health["vm"] == vm]
        crit = h[h["health"] == "critical"]
        warn = h[h["health"] == "warning"]
        if vm in set(vms[vms["resyncs"] > 0]["vm"]):
            continue
        if len(crit):
            out.append(f"{vm} reached critical health (pending log >= 50 % of its disk: resynchronisation "
                       f"required) for {units.format_duration(float((crit['end'] - crit['start']).sum()))}.")
        elif len(warn):
            times = "once" if len(warn) == 1 else f"{len(warn)} times"
            out.append(f"{vm} was in warning health {times}, "
                       f"{units.format_duration(float((warn['end'] - warn['start']).sum()))} in all.")
    inc = results.incidents
    fmt = units.format_duration
    for _, row in inc[inc["outcome"].str.startswith("unrecoverable")].iterrows():
        reason = row["outcome"].split(":", 1)[1].strip()
        out.append(f"{row['vm']} could NOT be recovered after its {row['kind']} failure: {reason}."
                   + (" Longer retention or faster detection would have kept a clean point."
                      if "retention" in reason else ""))
    unplanned = inc[~inc["kind"].isin(PLANNED_KINDS)]
    late = unplanned[unplanned["rto_s"] > s.objectives.rto]
    for _, row in late.iterrows():
        sla = row["sla_rto_s"]
        how = f" (SLA-measured failover {fmt(sla)})" if sla == sla else " (no failover: it was repaired on site)"
        out.append(f"{row['vm']} missed the {fmt(s.objectives.rto)} RTO target: service back after "
                   f"{fmt(row['rto_s'])}{how}.")
    for _, row in unplanned[unplanned["rto_s"].isna() & ~unplanned["outcome"].str.startswith("handled")].iterrows():
        if not row["outcome"].startswith("unrecoverable"):
            out.append(f"{row['vm']} missed the {fmt(s.objectives.rto)} RTO target: its {row['kind']} incident "
                       f"ended '{row['outcome']}'.")
    lossy = unplanned[unplanned["data_loss_s"] > s.objectives.rpo]
    for _, row in lossy.iterrows():
        out.append(f"{row['vm']} lost {fmt(row['data_loss_s'])} of data in its {row['kind']} incident, above the "
                   f"{fmt(s.objectives.rpo)} RPO target.")
    out.extend(_operation_paths(results))
    over = churn_warnings(results)
    out.extend(over)
    out.extend("Note: " + w for w in scenario_warnings(s)
               if "cannot be protected" not in w and not (over and "mean churn" in w))
    return out


def _names(items: list[str]) -> str:
    return ", ".join(dict.fromkeys(items))


def _operation_paths(results: Results) -> list[str]:
    """Which operations went through the cloud portal, and how clients reached the failed-over VMs."""
    ops = results.operations
    out = []
    fmt = units.format_duration
    portal = ops[ops["step"] == "triggered via the portal"]
    if len(portal):
        what = [f"the {k.replace('_', ' ')} of {t}" if k != "plan" else f"the recovery plan {t}"
                for t, k in zip(portal["target"], portal["kind"], strict=True)]
        out.append("Through the cloud portal (the Essentials dashboard was down): " + _names(what) + ".")
    for path in ("site-to-site", "point-to-site"):
        rows = ops[ops["step"] == f"vpn: {path}"]
        if not len(rows):
            continue
        setups = ops[(ops["kind"] == "vpn") & (ops["step"] == f"{path} setup")]
        how = "" if not len(setups) else (
            f", set up during the incident in {fmt(float(setups['end'].iloc[0] - setups['start'].iloc[0]))} "
            f"({_when_short(results, float(setups['start'].iloc[0]))})")
        waited = rows[rows["end"] > rows["start"]]
        if path == "site-to-site" and not len(setups) and not len(waited):
            continue  # the usual path, in place beforehand: nothing to notice
        longest = float((waited["end"] - waited["start"]).max()) if len(waited) else 0.0
        wait = f"; clients waited up to {fmt(longest)} for it" if len(waited) else ""
        out.append(f"Clients reached {_names(list(rows['target']))} in the cloud through the {path} VPN{how}{wait}.")
    return out


def _cause(results: Results, inc: pd.Series) -> str:
    s = results.scenario
    host = next((h.name for h, vm in s.vms() if vm.name == inc["vm"]), "?")
    when = _when_short(results, inc["failed_at"])
    return {
        "host": f"host {host} failed {when}",
        "site": f"the site went down {when}",
        "vm": f"the VM crashed {when}",
        "corruption": f"its data was corrupted {when}, noticed {_when_short(results, inc['detected_at'])}",
        "maintenance": f"planned maintenance of host {host} {when}",
        "plan": f"moved by its recovery plan {when}",
    }.get(inc["kind"], f"{inc['kind']} failure {when}")


def _when_short(results: Results, t: float) -> str:
    """``day 10 09:12`` (calendar: ``Wed 18 Mar 09:12``)."""
    if not math.isfinite(t):
        return "-"
    if results.scenario.start is not None:
        stamp = pd.Timestamp(results.scenario.start) + pd.Timedelta(seconds=t)
        return f"on {stamp:%a %d %b %H:%M}"
    day, rest = divmod(t, 86400.0)
    return f"on day {int(day)} {int(rest // 3600):02d}:{int(rest % 3600 // 60):02d}"


def incident_lines(results: Results) -> list[str]:
    """One plain-language line per incident, in time order."""
    out = []
    fmt = units.format_duration
    for _, inc in results.incidents.iterrows():
        text = f"{inc['vm']}: {_cause(results, inc)}; "
        outcome = inc["outcome"]
        if outcome.startswith(("failed over", "planned failover")):
            age = ("no data lost" if inc["data_loss_s"] == 0
                   else f"from a point {fmt(inc['data_loss_s'])} old")
            text += f"failed over to the cloud ({age}); service back after {fmt(inc['rto_s'])}"
            if math.isfinite(inc["failback_done_at"]):
                text += f"; failed back {_when_short(results, inc['failback_done_at'])}"
            else:
                text += "; still in the cloud at the end"
            if "(" in outcome:  # what the outcome notes (no app-consistent point, final sync interrupted)
                text += "; " + outcome[outcome.index("(") + 1:outcome.rindex(")")]
        elif outcome == "waited for repair" or outcome == "down for maintenance":
            text += f"no failover; back on-premises after {fmt(inc['rto_s'])}"
        elif outcome == "restored from the cloud":
            text += (f"disks lost; restored from a recovery point {fmt(inc['data_loss_s'])} old; back after "
                     f"{fmt(inc['rto_s'])}")
        elif outcome.startswith("unrecoverable"):
            text += outcome.upper().split(":")[0] + ":" + outcome.split(":", 1)[1]
        else:
            text += outcome
        out.append(text + ".")
    return out


def summary_text(results: Results) -> str:
    """The per-VM summary table and findings, as printed by ``drsim run``."""
    s = results.scenario
    target = s.objectives.rpo
    summ = results.summary
    header = ("VM", "host", "protected after", "RPO mean", "p95", "max", f"> {units.format_duration(target)}",
              "missed", "health")
    rows = []
    for _, r in summ.iterrows():
        rows.append((
            r["vm"],
            r["host"],
            units.format_duration(r["protected_at"]) if r["protected"] else "not protected",
            units.format_duration(r["rpo_mean_s"]),
            units.format_duration(r["rpo_p95_s"]),
            units.format_duration(r["rpo_max_s"]),
            "-" if math.isnan(r["rpo_over_target"]) else f"{r['rpo_over_target']:.1%}",
            str(r["cycles_missed"]),
            r["health"],
        ))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = [
        f"{s.name}: {count(len(s.vms()), 'VM')} on {count(len(s.site.hosts), 'host')}, "
        f"{units.format_duration(s.duration)} simulated, "
        f"seed {results.seed}",
        f"link: {units.format_rate(s.link.upload)} up / {units.format_rate(s.link.download)} down, "
        f"replication every {units.format_duration(s.replication.interval)}, "
        f"RPO target {units.format_duration(target)}",
        "",
    ]

    def fmt(row: tuple) -> str:
        return "  ".join(str(x).ljust(w) if i < 2 else str(x).rjust(w)
                         for i, (x, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    lines.append(fmt(header))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(fmt(r) for r in rows)
    if len(results.incidents) or len(results.operations):
        lines.append("")
        lines.extend(_recovery_table(results))
        lines.append("")
        lines.append("Incidents:" if len(results.incidents) else "Incidents: none")
        lines.extend(f"- {line}" for line in incident_lines(results))
    notes = findings(results)
    if notes:
        lines.append("")
        lines.append("Findings:")
        lines.extend(f"- {n}" for n in notes)
    return "\n".join(lines)
