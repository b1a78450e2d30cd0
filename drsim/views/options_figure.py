"""The frontier of the planner's options (:func:`drsim.experiments.options.compare_options`): cost per year
against the worst VM's RPO percentile as judged, one numbered marker per option, the options that meet the
objectives filled, the total with the incident cost's interval, the cheapest that meets them and the lowest total
cost marked, the RPO target as a dashed line (:func:`options_frontier`); and the options in words
(:func:`options_text`).

Imports :mod:`drsim.scenario` and, of this stage, the style.
"""

from __future__ import annotations

import math
from textwrap import fill

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from drsim.scenario.units import format_duration
from drsim.views.style import OKABE_ITO, duration_unit, plain_log_ticks

__all__ = ["options_frontier", "options_text"]


def options_frontier(options: pd.DataFrame) -> Figure:
    """Running cost per year (x) against the worst VM's RPO percentile as judged (y) for every option, numbered
    (the numbers are listed under the plot); the total expected cost (running + incidents) as a second, open
    marker joined to it, with the incident cost's 95 % interval. The y axis is logarithmic when the RPOs span more
    than a factor of 20."""
    a = options.attrs
    target = float(a["rpo_s"])
    rpo = options["rpo_stat_s"].to_numpy(dtype=float)
    finite = rpo[np.isfinite(rpo) & (rpo > 0)]
    top = max(target, float(finite.max()) if finite.size else target)
    log = finite.size > 0 and top / min(target, float(finite.min())) > 20
    scale, unit = duration_unit(math.sqrt(top * float(finite.min())) if log else 2 * top)
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    ax = fig.add_subplot()
    y = np.where(np.isfinite(rpo), rpo, np.nan) / scale
    run = options["running_per_year"].to_numpy(dtype=float)
    tot = options["total_per_year"].to_numpy(dtype=float)
    meets = options["meets"].to_numpy(dtype=bool)
    for xi, ti, yi in zip(run, tot, y, strict=True):
        ax.plot([xi, ti], [yi, yi], color="0.6", linewidth=0.8)
    ax.plot(run[meets], y[meets], "o", color=OKABE_ITO["bluish_green"], markeredgecolor="black",
            label="running cost, meets the objectives")
    ax.plot(run[~meets], y[~meets], "o", markerfacecolor="white", markeredgecolor=OKABE_ITO["vermillion"],
            label="running cost, misses them")
    low = run + options["incident_low"].to_numpy(dtype=float) if "incident_low" in options else tot
    high = run + options["incident_high"].to_numpy(dtype=float) if "incident_high" in options else tot
    ax.errorbar(tot, y, xerr=[np.maximum(tot - low, 0), np.maximum(high - tot, 0)], fmt="s",
                markerfacecolor="none", markeredgecolor=OKABE_ITO["blue"], ecolor=OKABE_ITO["blue"],
                elinewidth=0.8, capsize=3, label="running + expected incident cost (95 % interval)")
    labels = list(options["option"])
    for k, (xi, yi) in enumerate(zip(run, y, strict=True)):
        if np.isfinite(yi):
            ax.annotate(str(k + 1), (xi, yi), textcoords="offset points", xytext=(-4 - 5 * (k % 2), 5 + 6 * (k % 2)),
                        fontsize=8, ha="right")
    for key, marker, text in (("cheapest", "*", "cheapest that meets the objectives"),
                              ("lowest_total", "D", "lowest total expected cost")):
        if a.get(key) in labels:
            k = labels.index(a[key])
            x = run[k] if key == "cheapest" else tot[k]
            ax.plot([x], [y[k]], marker, markersize=15 if marker == "*" else 10, markerfacecolor="none",
                    markeredgecolor="black", markeredgewidth=1.3, linestyle="none",
                    label=f"{text}: {k + 1}")
    ax.margins(x=0.15, y=0.1)
    if log:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    else:
        ax.set_ylim(bottom=0)
    ax.axhline(target / scale, linestyle="--", color="black", linewidth=1,
               label=f"RPO target {format_duration(target)}")
    ax.set_xlabel(f"cost per year ({a.get('currency', '')})")
    judged = "upper 95 % CI of the mean" if a.get("criterion", "mean") == "upper" else "mean"
    ax.set_ylabel(f"worst VM's p{a['percentile']:g} RPO, {judged} ({unit})")
    ax.set_title(f"{a['scenario']}: options, cost against RPO")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, frameon=False)
    names = "   ".join(f"{k + 1}: {label}".replace(" ", "\u00a0") for k, label in enumerate(labels))  # unbroken
    fig.text(0.5, 0.005, fill(names, 130), ha="center", va="bottom", fontsize=7)
    fig.get_layout_engine().set(h_pad=0.35)
    return fig


def options_text(options: pd.DataFrame) -> str:
    """The options compared, as ``drsim plan --upload ...`` prints them, and the two answers."""
    a = options.attrs
    cur = a.get("currency", "")
    pct = f"p{a['percentile']:g}"
    lines = [f"{a['scenario']}: options for a {format_duration(a['rpo_s'])} RPO at {pct}, every VM "
             f"({a['replications']} replications each, failures included; prices of {a['price_date']})",
             f"judged by: {a.get('criterion_text', 'mean over replications')} of each VM's {pct} RPO", ""]
    head = ("option", f"worst {pct} RPO", "min availability", "meets", "running/year", "incidents/year",
            "total/year", "incidents from")
    rows = []
    for r in options.itertuples(index=False):
        rpo = format_duration(r.rpo_stat_s) if np.isfinite(r.rpo_stat_s) else "never protected"
        incidents = f"{r.incident_per_year:,.0f} {cur}"
        if np.isfinite(r.incident_low) and r.incident_high > r.incident_low:
            incidents = f"{r.incident_per_year:,.0f} [{r.incident_low:,.0f}, {r.incident_high:,.0f}] {cur}"
        rows.append((r.option, rpo, f"{r.availability_min:.4%}", "yes" if r.meets else "no",
                     f"{r.running_per_year:,.0f} {cur}" + ("" if np.isfinite(r.uplink_per_month) else " + uplink?"),
                     incidents, f"{r.total_per_year:,.0f} {cur}", r.incident_basis))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for k, row in enumerate([head, *rows]):
        lines.append("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"- Cheapest option that meets the objectives: {a['cheapest'] or 'none of those priced'}.")
    lines.append(f"- Lowest total expected annual cost (running + expected incident cost, from the risk engine's "
                 f"annual figures where the option has random failures and keeps up, else its runs' incidents "
                 f"scaled per year): {a['lowest_total'] or 'none priced'}.")
    if a.get("unpriced"):
        lines.append("- No uplink tier listed for: " + "; ".join(a["unpriced"]) + " (prices: uplink: tiers).")
    return "\n".join(lines)
