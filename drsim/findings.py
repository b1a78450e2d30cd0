"""Plain-language findings and the terminal summary of a run.

:func:`findings` reads a run's tables and says what a planner should notice: VMs not protected in time,
a link that cannot keep up with churn, RPO targets missed, health warnings. :func:`summary_text` lays out
the per-VM table printed by ``drsim run``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from drsim import units
from drsim.churn import mean_rate
from drsim.results import SITE, Results
from drsim.scenario import scenario_warnings

__all__ = ["findings", "summary_text", "saturation", "count"]


def saturation(results: Results) -> float:
    """Long-run mean churn of the protected VMs (wire bytes/s) over the link's mean payload capacity.

    At 1 or more, replication cannot keep up: backlog and RPO grow without bound.
    """
    s = results.scenario
    churn = sum(mean_rate(s, vm) for host, vm in s.vms() if host.supported and vm.protect)
    churn /= s.link.compression
    link = results.link
    up = link[link["direction"] == "upload"]
    times = np.append(up["time"].to_numpy(), results.end)
    caps = up["capacity"].to_numpy()
    spans = np.diff(times)
    # the throttle repeats weekly: average the capacity over whole weeks when the run is long enough
    capacity = float(np.sum(caps * spans) / spans.sum()) if spans.sum() > 0 else float(caps[0])
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


def findings(results: Results) -> list[str]:
    """What a planner should notice in this run, most important first."""
    s = results.scenario
    out: list[str] = []
    summ = results.summary
    vms = summ[summ["vm"] != SITE]
    site = summ[summ["vm"] == SITE].iloc[0]
    target = s.objectives.rpo
    eligible = {vm.name for host, vm in s.vms() if host.supported and vm.protect}

    ratio = saturation(results)
    if ratio >= 1:
        out.append(
            f"The link is saturated: the VMs write {ratio:.0%} of what the link can carry on average, so "
            "replication cannot keep up with churn; RPO grows without bound. Add bandwidth, compression "
            "or reduce churn."
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
        what = "The only protectable VM is" if len(eligible) == 1 else f"All {len(eligible)} protectable VMs are"
        out.append(f"{what} protected after {_when(results, site['protected_at'])}.")
    for host, vm in s.vms():
        if not host.supported:
            out.append(f"{vm.name} cannot be protected: host {host.name} runs {host.os} (2012 R2 or later needed).")

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
    for vm in prot["vm"]:
        h = health[health["vm"] == vm]
        crit = h[h["health"] == "critical"]
        warn = h[h["health"] == "warning"]
        if len(crit):
            out.append(f"{vm} reached critical health (pending log >= 50 % of its disk: resynchronisation "
                       f"required) for {units.format_duration(float((crit['end'] - crit['start']).sum()))}.")
        elif len(warn):
            times = "once" if len(warn) == 1 else f"{len(warn)} times"
            out.append(f"{vm} was in warning health {times}, "
                       f"{units.format_duration(float((warn['end'] - warn['start']).sum()))} in all.")
    out.extend("Note: " + w for w in scenario_warnings(s) if "cannot be protected" not in w)
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
    notes = findings(results)
    if notes:
        lines.append("")
        lines.append("Findings:")
        lines.extend(f"- {n}" for n in notes)
    return "\n".join(lines)
