"""Figures of an experiment's replications and of a bandwidth plan: :func:`replication_cdfs` (CDFs across
replications of RPO, data loss, RTO and downtime, with the objectives), :func:`availability_by_vm` (each VM's
availability across replications at one sweep point) and :func:`planner_curve` (the planner's RPO percentile
against bandwidth, with the required and the formula's bandwidth).

Each returns a :class:`matplotlib.figure.Figure` built with the object API. Imports matplotlib, numpy, pandas,
:mod:`drsim.scenario.units` and :mod:`drsim.views.style`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from drsim.scenario.units import format_duration
from drsim.views.selection import Choice, choose
from drsim.views.style import (
    GREY,
    LIGHT_GREY,
    LINESTYLES,
    MBIT,
    OKABE_ITO,
    SERIES,
    SITE,
    axis_label,
    default_objective,
    duration_unit,
    first_shown,
    metric_name,
    objective_kind,
    objective_line,
    plain_log_ticks,
    value_format,
)

if TYPE_CHECKING:
    from drsim.experiments.outcome import Experiment

__all__ = ["replication_cdfs", "availability_by_vm", "planner_curve"]

_P = OKABE_ITO


def _point_label(exp: Experiment, point: int) -> str:
    settings = exp.points.loc[exp.points["point"] == point].iloc[0]
    return ", ".join(f"{p}={settings[p]}" for p in exp.sweep) or "scenario"


def replication_cdfs(exp: Experiment,
                     metrics: Sequence[str] = ("rpo_p95_s", "data_loss_max_s", "rto_max_s", "downtime_s"),
                     vm: str = SITE, point: int | Sequence[int] | None = None, max_points: int = 8) -> Figure:
    """Empirical CDFs across replications (``exp.tidy``) of each of ``metrics`` for ``vm`` (default the site),
    one panel per metric, one step line per sweep point (``point``: one point or several; default every point,
    the first ``max_points``), the points in one legend below the panels. NaN values (e.g. the data loss of a
    replication without incidents) are left out. The objective that applies to the metric (the RPO
    objective for RPO and data loss, the RTO objective for RTO and downtime) is a dashed vertical line.
    Durations in seconds, minutes, hours or days chosen per panel.
    """
    tidy = exp.tidy
    tidy = tidy[tidy["vm"] == vm]
    if tidy.empty:
        raise ValueError(f"no VM {vm!r} in the experiment's tables")
    points = list(exp.points["point"]) if point is None else [point] if isinstance(point, int | np.integer) \
        else list(point)
    shown, note = first_shown(points, max_points, "points")
    metrics = list(metrics)
    missing = [m for m in metrics if m not in tidy.columns]
    if missing:
        raise ValueError(f"no metric {', '.join(map(repr, missing))} in the experiment's tables")
    ncols = 2 if len(metrics) > 1 else 1
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(6 * ncols, 3.4 * nrows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    who = "site" if vm == SITE else vm
    fig.suptitle(f"{exp.scenario.name}: distributions over {exp.replications} replications ({who}){note}",
                 x=0.01, ha="left")
    for ax, metric in zip(axes, metrics, strict=False):
        target = default_objective(exp.scenario, metric)
        values = tidy.loc[tidy["point"].isin(shown), metric].to_numpy(dtype=float)
        scale, unit, _ = value_format(metric, np.append(values, [] if target is None else [target]))
        drawn = 0
        for k, p in enumerate(shown):
            v = np.sort(tidy.loc[tidy["point"] == p, metric].to_numpy(dtype=float))
            v = v[np.isfinite(v)]
            if not len(v):
                continue
            color, style = SERIES[k % len(SERIES)], LINESTYLES[(k // len(SERIES)) % len(LINESTYLES)]
            xs = np.concatenate(([v[0]], v)) / scale
            ys = np.arange(len(v) + 1) / len(v)
            ax.step(xs, ys, where="post", color=color, linestyle=style, linewidth=1.6, gid="cdf",
                    label=f"{_point_label(exp, p)} (n={len(v)})")
            drawn += 1
        if target is not None:
            objective_line(ax, target, scale, vertical=True, label="objective")
            ax.annotate(f"{objective_kind(metric).upper()} objective {format_duration(target)} ",
                        (target / scale, 0.98), xycoords=("data", "axes fraction"), ha="right", va="bottom",
                        fontsize="small", rotation=90, rotation_mode="anchor")
        if not drawn:
            ax.text(0.5, 0.5, "no values (e.g. no incidents)", transform=ax.transAxes, ha="center", va="center",
                    color=GREY)
        ax.set_xlabel(axis_label(metric, unit, vm))
        ax.set_ylabel("share of replications ≤ x")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(left=0)
        ax.grid(color=LIGHT_GREY, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(metric_name(metric), loc="left", fontsize="medium")
    for ax in axes[len(metrics):]:
        ax.set_axis_off()
    handles = [Line2D([], [], color=SERIES[k % len(SERIES)],
                      linestyle=LINESTYLES[(k // len(SERIES)) % len(LINESTYLES)], linewidth=1.6,
                      label=_point_label(exp, p) if exp.sweep else "replications")
               for k, p in enumerate(shown)]
    handles.append(Line2D([], [], color=_P["black"], linestyle="--", linewidth=1.2, label="objective"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), frameon=False,
               fontsize="small")
    return fig


def planner_curve(plan_df: pd.DataFrame, vms: bool = True, max_vms: int = 8) -> Figure:
    """The bandwidth planner's search (``drsim.plan``): the RPO percentile judged at every simulated bandwidth
    (``plan_df.attrs["evaluations"]``), for the worst VM (thick line; filled markers where the whole site met the
    target, open where it missed) and, with ``vms``, each VM (thin lines): the ``max_vms`` most demanding (the
    highest required bandwidth, then the highest RPO at the lowest bandwidth), a note saying how many are left
    out (the worst-VM line covers them all). The lines join the bandwidths judged with every replication; those
    the fast search simulated with fewer (to steer it: one replication's value, or the criterion predicted from a
    few) are small grey diamonds. The target is a dashed horizontal line; vertical lines mark the required
    bandwidth (the answer), the vendor formula's bandwidth and the current upload. A bandwidth at which a VM was
    never protected has no finite RPO: it is drawn as a triangle at the top of the panel. Bandwidths in Mbit/s;
    the RPO in a unit chosen from the target (minutes for a 15-minute target), on a log scale (plain numbers on
    the axis) when it spans more than a factor 20.
    """
    a = plan_df.attrs
    if "evaluations" not in a:
        raise ValueError("plan_df has no 'evaluations' in its attrs: pass the DataFrame returned by drsim.plan")
    evals = sorted(a["evaluations"], key=lambda e: e["upload_Bps"])
    bw = np.array([e["upload_Bps"] for e in evals], dtype=float) / MBIT
    names = list(evals[0]["rpo_stat_s"]) if evals else []
    per_vm = {n: np.array([e["rpo_stat_s"][n] for e in evals], dtype=float) for n in names}
    worst = np.max(np.vstack(list(per_vm.values())), axis=0) if names else np.array([])
    met = np.array([bool(e["site_met"]) for e in evals])
    # the fast search steers with fewer replications: the curves join the bandwidths judged with all of them
    full = np.array([e.get("replications", a["replications"]) >= a["replications"] for e in evals], dtype=bool)
    all_fewer = not full.any()  # a search that never came near an answer: every point steered it
    if all_fewer:
        full[:] = True
    target = float(a["rpo_s"])
    pct = f"p{a['percentile']:g}"
    finite = np.concatenate([v[np.isfinite(v)] for v in per_vm.values()] + [np.array([target])])
    scale, unit = duration_unit(2 * target)  # readable around the target (the y axis is often logarithmic)
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.add_subplot()
    top = float(finite.max()) / scale * 1.6
    log = float(finite.max()) / max(float(finite.min()), 1e-9) > 20
    note = ""
    if vms and len(names) > 1:
        choice = _demanding_vms(plan_df, per_vm, max_vms)
        note = choice.title(85)
        for k, n in enumerate(choice.ordered(names)):
            v = per_vm[n] / scale
            ax.plot(bw[full], np.where(np.isfinite(v), v, np.nan)[full], color=SERIES[(k + 1) % len(SERIES)],
                    linestyle=LINESTYLES[(k // len(SERIES)) % len(LINESTYLES)], linewidth=0.9, alpha=0.8,
                    label=n, gid="vm-curve")
    w = worst / scale
    fin = np.isfinite(w) & full
    ax.plot(bw[fin], w[fin], color=_P["black"], linewidth=2.0, label="worst VM",
            gid="site-curve", zorder=4)
    ax.plot(bw[fin & met], w[fin & met], linestyle="none", marker="o", color=_P["bluish_green"],
            markeredgecolor=_P["black"], markersize=7, label="site meets the target", zorder=5)
    ax.plot(bw[fin & ~met], w[fin & ~met], linestyle="none", marker="o", markerfacecolor="white",
            markeredgecolor=_P["vermillion"], markeredgewidth=1.6, markersize=7, label="site misses it", zorder=5)
    steer = np.isfinite(w) & ~full
    if steer.any():
        ax.plot(bw[steer], w[steer], linestyle="none", marker="D", markerfacecolor=LIGHT_GREY,
                markeredgecolor=GREY, markersize=4.5, zorder=4, gid="steering",
                label="fewer replications (steered the search)")
    never = ~np.isfinite(w)
    if never.any():
        ax.plot(bw[never], np.full(int(never.sum()), top / 1.15), linestyle="none", marker="^",
                color=_P["vermillion"], markersize=8, label="a VM never protected", zorder=5, gid="unbounded")
    ax.axhline(target / scale, color=_P["black"], linestyle="--", linewidth=1.2, gid="objective",
               label=f"target: {pct} ≤ {format_duration(target)}")
    site = plan_df[plan_df["vm"] == SITE]
    marks = []
    if len(site):
        s = site.iloc[0]
        marks = [("required", s["required_Bps"], _P["bluish_green"], "-"),
                 ("formula", s["formula_Bps"], _P["orange"], "-."),
                 ("current", a.get("current_upload_Bps", math.nan), _P["sky_blue"], ":")]
    for what, value, color, style in marks:
        if value is not None and math.isfinite(value):
            ax.axvline(value / MBIT, color=color, linestyle=style, linewidth=2.0, gid=f"{what}-bandwidth",
                       label=f"{what}: {value / MBIT:.2f} Mbit/s", zorder=3)
    if log:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)  # plain numbers: reports draw with mathtext off
        ax.set_ylim(float(finite.min()) / scale / 1.5, top)
    else:
        ax.set_ylim(0, top)
    ax.set_xlim(left=0)
    ax.set_xlabel("upload bandwidth (Mbit/s, raw uplink)")
    ax.set_ylabel(f"{pct} RPO in the {a.get('window', 'steady')} window ({unit})")
    ax.grid(color=LIGHT_GREY, linewidth=0.6, which="both")
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    reps = f"{a['replications']} replication{'s' if a['replications'] != 1 else ''}"
    fewer = int((~full).sum())
    count = (f"{len(evals)} bandwidths, each with fewer than {reps}" if all_fewer else
             f"{int(full.sum())} bandwidths × {reps}" + (f", {fewer} with fewer" if fewer else ""))
    ax.set_title(f"{a['scenario']}: {pct} RPO against bandwidth ({count})\n"
                 f"judged by {a['criterion_text']}" + note, loc="left", fontsize="medium")
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _demanding_vms(plan_df: pd.DataFrame, per_vm: dict[str, np.ndarray], limit: int) -> Choice:
    """The VMs of a plan drawn as thin lines: the highest required bandwidth first (never met: first of all),
    then the highest RPO at the lowest bandwidth."""
    rows = plan_df[plan_df["vm"] != SITE].set_index("vm")
    names = list(per_vm)
    required = [float(rows["required_Bps"].get(n, np.nan)) if "required_Bps" in rows else np.nan for n in names]
    first = [float(v[0]) if len(v) else np.nan for v in per_vm.values()]
    order = np.lexsort((np.arange(len(names)), -np.nan_to_num(first, nan=np.inf),
                        -np.nan_to_num(required, nan=np.inf)))
    return choose([names[i] for i in order], limit, "VMs",
                  "the most demanding (highest required bandwidth) as thin lines",
                  lambda rest: ", all under the worst-VM line")


def availability_by_vm(exp: Experiment, point: int = 0, max_vms: int = 30) -> Figure:
    """Availability of each VM and the site across replications at one sweep ``point``: the mean (in %) with its
    95 % confidence interval, and each replication's value as a dot. The interval is cut at 100 % (availability
    cannot exceed it; the legend says when a whisker was cut). With more than ``max_vms`` VMs, the least available
    are shown (a note says how many are left out and how available they were); the site is always the last row.
    """
    agg = exp.aggregate
    rows = agg[(agg["point"] == point) & (agg["metric"] == "availability")]
    if rows.empty:
        raise ValueError(f"no availability for sweep point {point!r}")
    rows = rows.set_index("vm")
    vm_rows = rows.drop(index=SITE, errors="ignore")
    ranked = list(vm_rows["mean"].sort_values(kind="stable").index)
    choice = choose(ranked, max_vms, "VMs", "the least available first",
                    lambda rest: f", each at least {float(vm_rows.loc[rest, 'mean'].min()) * 100:.3f} % available")
    names = [*choice.ordered(list(vm_rows.index)), *([SITE] if SITE in rows.index else [])]
    rows = rows.loc[names]
    tidy = exp.tidy[(exp.tidy["point"] == point) & exp.tidy["vm"].isin(names)]
    fig = Figure(figsize=(8, 0.4 * len(names) + 2.0), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(names))
    mean = rows["mean"].to_numpy(dtype=float) * 100
    half = rows["ci95"].fillna(0.0).to_numpy(dtype=float) * 100
    lower, upper = np.minimum(half, mean), np.minimum(half, 100.0 - mean)  # availability is within [0, 100] %
    cut = bool((upper < half - 1e-12).any())
    ax.barh(y, mean, xerr=np.vstack((lower, upper)), color=OKABE_ITO["bluish_green"], height=0.6,
            error_kw={"ecolor": "#333333", "capsize": 3}, label="mean, 95 % CI" + (" (cut at 100 %)" if cut else ""))
    for i, name in enumerate(names):
        values = tidy.loc[tidy["vm"] == name, "availability"].to_numpy() * 100
        ax.plot(values, np.full(len(values), y[i]), "o", color="#333333", markersize=3,
                label="replications" if i == 0 else None)
    low = float(np.nanmin([*(mean - lower), *(tidy["availability"].to_numpy() * 100)]))
    left = max(0.0, min(low - (100 - low) * 0.2, 99.9))  # at least 0.1 % of the axis in view
    ax.set_xlim(left, 100.0 + (100.0 - left) * 0.03)  # room for the caps and dots at 100 %
    ax.xaxis.get_major_formatter().set_useOffset(False)  # 99.95, not 0.05 + 9.99e1
    ax.axvline(100.0, color=GREY, linewidth=0.8, zorder=0)
    ax.set_yticks(y, [str(n) for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("availability (%)")
    title = f"{exp.scenario.name}: availability ({_point_label(exp, point)}, {exp.replications} replications)"
    ax.set_title(title + choice.title(95), loc="left")
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize="small")
    ax.grid(axis="x", color="#dddddd")
    return fig
