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


def planner_curve(plan_df: pd.DataFrame, vms: bool = True) -> Figure:
    """The bandwidth planner's search (``drsim.plan``): the RPO percentile judged at every simulated bandwidth
    (``plan_df.attrs["evaluations"]``), for the worst VM (thick line; filled markers where the whole site met the
    target, open where it missed) and, with ``vms``, each VM (thin lines). The target is a dashed horizontal
    line; vertical lines mark the required bandwidth (the answer), the vendor formula's bandwidth and the
    current upload. A bandwidth at which a VM was never protected has no finite RPO: it is drawn as a triangle
    at the top of the panel. Bandwidths in Mbit/s; the RPO in a unit chosen from the target (minutes for a
    15-minute target), on a log scale when it spans more than a factor 20.
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
    target = float(a["rpo_s"])
    pct = f"p{a['percentile']:g}"
    finite = np.concatenate([v[np.isfinite(v)] for v in per_vm.values()] + [np.array([target])])
    scale, unit = duration_unit(2 * target)  # readable around the target (the y axis is often logarithmic)
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.add_subplot()
    top = float(finite.max()) / scale * 1.6
    log = float(finite.max()) / max(float(finite.min()), 1e-9) > 20
    if vms and len(names) > 1:
        for k, n in enumerate(names[:len(SERIES) * len(LINESTYLES)]):
            v = per_vm[n] / scale
            ax.plot(bw, np.where(np.isfinite(v), v, np.nan), color=SERIES[(k + 1) % len(SERIES)],
                    linestyle=LINESTYLES[(k // len(SERIES)) % len(LINESTYLES)], linewidth=0.9, alpha=0.8,
                    label=n, gid="vm-curve")
    w = worst / scale
    fin = np.isfinite(w)
    ax.plot(bw[fin], w[fin], color=_P["black"], linewidth=2.0, label="worst VM",
            gid="site-curve", zorder=4)
    ax.plot(bw[fin & met], w[fin & met], linestyle="none", marker="o", color=_P["bluish_green"],
            markeredgecolor=_P["black"], markersize=7, label="site meets the target", zorder=5)
    ax.plot(bw[fin & ~met], w[fin & ~met], linestyle="none", marker="o", markerfacecolor="white",
            markeredgecolor=_P["vermillion"], markeredgewidth=1.6, markersize=7, label="site misses it", zorder=5)
    if (~fin).any():
        ax.plot(bw[~fin], np.full(int((~fin).sum()), top / 1.15), linestyle="none", marker="^",
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
        ax.set_ylim(float(finite.min()) / scale / 1.5, top)
    else:
        ax.set_ylim(0, top)
    ax.set_xlim(left=0)
    ax.set_xlabel("upload bandwidth (Mbit/s, raw uplink)")
    ax.set_ylabel(f"{pct} RPO in the {a.get('window', 'steady')} window ({unit})")
    ax.grid(color=LIGHT_GREY, linewidth=0.6, which="both")
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(f"{a['scenario']}: {pct} RPO against bandwidth ({len(evals)} bandwidths × "
                 f"{a['replications']} replication{'s' if a['replications'] != 1 else ''})\n"
                 f"judged by {a['criterion_text']}", loc="left", fontsize="medium")
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def availability_by_vm(exp: Experiment, point: int = 0) -> Figure:
    """Availability of each VM and the site across replications at one sweep ``point``: the mean (in %) with its
    95 % confidence interval, and each replication's value as a dot."""
    agg = exp.aggregate
    rows = agg[(agg["point"] == point) & (agg["metric"] == "availability")]
    if rows.empty:
        raise ValueError(f"no availability for sweep point {point!r}")
    names = [v for v in rows["vm"] if v != SITE] + [SITE]
    rows = rows.set_index("vm").loc[names]
    tidy = exp.tidy[exp.tidy["point"] == point]
    fig = Figure(figsize=(8, 0.4 * len(names) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(names))
    ax.barh(y, rows["mean"] * 100, xerr=rows["ci95"].fillna(0.0) * 100, color=OKABE_ITO["bluish_green"],
            height=0.6, error_kw={"ecolor": "#333333", "capsize": 3}, label="mean, 95 % CI")
    for i, name in enumerate(names):
        values = tidy.loc[tidy["vm"] == name, "availability"].to_numpy() * 100
        ax.plot(values, np.full(len(values), y[i]), "o", color="#333333", markersize=3,
                label="replications" if i == 0 else None)
    low = float(np.nanmin([rows["mean"].min() * 100, *(tidy["availability"].to_numpy() * 100)]))
    ax.set_xlim(max(0.0, low - (100 - low) * 0.2 - 0.01), 100.0)
    ax.set_yticks(y, [str(n) for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("availability (%)")
    ax.set_title(f"{exp.scenario.name}: availability ({_point_label(exp, point)}, {exp.replications} replications)",
                 loc="left")
    ax.legend(loc="lower left", frameon=False)
    ax.grid(axis="x", color="#dddddd")
    return fig
