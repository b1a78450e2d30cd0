"""Figures of an experiment's sweep (:func:`drsim.experiments.runner.run_experiment`): a metric against the
swept settings. :func:`sweep_heatmap` (a metric's mean over two swept settings, with the objective's boundary),
:func:`sweep_lines` (a metric's mean and 95 % confidence band against one swept setting) and
:func:`paired_differences` (paired differences between the values of one swept setting, on common random
numbers), and the helpers that read swept values as numbers on an axis.

Each returns a :class:`matplotlib.figure.Figure` built with the object API. Imports matplotlib, numpy, pandas,
:mod:`drsim.scenario.units`, :func:`drsim.experiments.statistics.t_975` and :mod:`drsim.views.style`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from drsim.experiments.statistics import t_975
from drsim.scenario import units
from drsim.scenario.units import format_duration
from drsim.views.selection import choose
from drsim.views.style import (
    LIGHT_GREY,
    LINESTYLES,
    MBIT,
    OKABE_ITO,
    SERIES,
    SITE,
    axis_label,
    default_objective,
    duration_unit,
    is_duration,
    metric_bounds,
    metric_name,
    objective_kind,
    objective_line,
    plain_log_ticks,
    value_format,
)

if TYPE_CHECKING:
    from drsim.experiments.outcome import Experiment

__all__ = ["sweep_heatmap", "sweep_lines", "paired_differences"]

_P = OKABE_ITO
_HATCH = "#333333"  # hatching of the cells missing the objective, visible on light and dark cells


def _sweep_values(exp: Experiment, path: str) -> list[Any]:
    """The values of a swept path as they appear in the tables, in sweep order."""
    if path not in exp.sweep:
        swept = ", ".join(exp.sweep) or "nothing"
        raise ValueError(f"{path!r} is not swept in this experiment (swept: {swept})")
    seen: list[Any] = []
    for v in exp.points[path]:
        if v not in seen:
            seen.append(v)
    return seen


def _numeric_axis(path: str, values: Sequence[Any]) -> tuple[np.ndarray | None, str]:
    """Swept values as numbers on an axis with a unit: rates in Mbit/s, durations in s/min/h/d, plain numbers as
    they are; (None, label) when they are not all of one of these kinds (then they are shown as categories)."""

    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=float), path
    for parse, kind in ((units.parse_rate, "rate"), (units.parse_duration, "duration")):
        try:
            nums = np.array([parse(v) for v in values], dtype=float)
        except Exception:
            continue
        if kind == "rate":
            return nums / MBIT, f"{path} (Mbit/s)"
        scale, unit = duration_unit(float(nums.max()) if len(nums) else 0.0)
        return nums / scale, f"{path} ({unit})"
    return None, path


def _check_other_paths(exp: Experiment, used: Sequence[str]) -> None:
    others = [p for p in exp.sweep if p not in used and len(_sweep_values(exp, p)) > 1]
    if others:
        raise ValueError(f"the experiment also sweeps {', '.join(others)}: a figure over {', '.join(used)} would "
                         f"mix its points; give sweep_lines by={others[0]!r} for one line per value of it (it takes "
                         "one more path), or run (or select) an experiment with one value of each other path")


def _site_or_vm(exp: Experiment, vm: str) -> pd.DataFrame:
    agg = exp.aggregate
    mine = agg[agg["vm"] == vm]
    if mine.empty:
        raise ValueError(f"no VM {vm!r} in the experiment's tables (VMs: {', '.join(map(str, agg['vm'].unique()))})")
    return mine


def sweep_heatmap(exp: Experiment, x: str, y: str, metric: str = "rpo_p95_s", vm: str = SITE,
                  objective: float | str | None = None) -> Figure:
    """The mean over replications of ``metric`` (a column of the summary; default the p95 RPO) for ``vm``
    (default the site) at every point of a sweep over the paths ``x`` (columns) and ``y`` (rows), their values as
    given and in sweep order. Each cell is annotated with the mean in human units (and the 95 % confidence
    half-width when there are several replications).

    The objective (``objective``: seconds or a duration like ``"15m"``; default the scenario's RPO objective for
    RPO and data-loss metrics, its RTO objective for RTO and downtime metrics, none otherwise) splits the cells:
    those whose mean misses it (is above it) are hatched, and a thick line is drawn along the boundary between
    cells meeting and missing it (the objective's contour on the grid). Colours are anchored on the objective
    (:func:`_cell_colours`): a diverging map, white at the objective (a black bar on the colour scale), blue
    below, red above, so that differences far below the objective look alike and only the distance from it
    stands out; without an objective, ``cividis`` from 0. The experiment must sweep no other path (or only one
    value of it).
    """
    if x == y:
        raise ValueError("x and y must be two different swept paths")
    xs, ys = _sweep_values(exp, x), _sweep_values(exp, y)
    _check_other_paths(exp, (x, y))
    agg = _site_or_vm(exp, vm)
    agg = agg[agg["metric"] == metric]
    if agg.empty:
        raise ValueError(f"no metric {metric!r} in the experiment's aggregate table")
    mean = np.full((len(ys), len(xs)), np.nan)
    half = np.full((len(ys), len(xs)), np.nan)
    for xv, yv, m, h in zip(agg[x], agg[y], agg["mean"], agg["ci95"], strict=True):
        mean[ys.index(yv), xs.index(xv)] = m
        half[ys.index(yv), xs.index(xv)] = h
    target = default_objective(exp.scenario, metric) if objective is None else _parse_objective(objective)
    scale, unit, fmt = value_format(metric, mean.ravel())

    fig = Figure(figsize=(2.0 + 1.5 * len(xs), 1.9 + 0.75 * len(ys)), layout="constrained")
    ax = fig.add_subplot()
    shown = mean / scale
    norm, cmap = _cell_colours(metric, shown, None if target is None else target / scale)
    img = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=norm, aspect="auto", origin="lower",
                    interpolation="nearest")
    ax.set_facecolor(LIGHT_GREY)
    cbar = fig.colorbar(img, ax=ax, shrink=0.9)
    cbar.set_label("mean " + axis_label(metric, unit, vm))
    if isinstance(norm, LogNorm):
        plain_log_ticks(cbar.ax.yaxis)  # plain numbers: reports draw with mathtext off
    if target is not None:
        cbar.ax.axhline(target / scale, color=_P["black"], linewidth=2.0, gid="colorbar-target")
    for i in range(len(ys)):
        for j in range(len(xs)):
            m = mean[i, j]
            text = fmt(m)
            if math.isfinite(half[i, j]) and half[i, j] > 0 and math.isfinite(m):
                text += f"\n± {fmt(half[i, j])}"
            r, g, b, _ = cmap(norm(m / scale)) if math.isfinite(m) else (1.0, 1.0, 1.0, 1.0)
            light = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45  # a dark cell: white text
            ax.text(j, i, text, ha="center", va="center", fontsize="small", gid="cell",
                    color="white" if light else _P["black"])
    handles: list[Patch | Line2D] = []
    if target is not None:
        miss = np.where(np.isfinite(mean), mean > target * (1 + 1e-12), True)
        for i, j in zip(*np.nonzero(miss), strict=True):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="none", edgecolor=_HATCH,
                                   hatch="//", linewidth=0, gid="misses-objective", zorder=2))
        segments = []
        for i in range(len(ys)):
            for j in range(len(xs)):
                if j + 1 < len(xs) and miss[i, j] != miss[i, j + 1]:
                    segments.append([(j + 0.5, i - 0.5), (j + 0.5, i + 0.5)])
                if i + 1 < len(ys) and miss[i, j] != miss[i + 1, j]:
                    segments.append([(j - 0.5, i + 0.5), (j + 0.5, i + 0.5)])
        ax.add_collection(LineCollection(segments, colors=_P["black"], linewidths=3.0, gid="objective-boundary",
                                         zorder=4))
        goal = format_duration(target) if is_duration(metric) else fmt(target)
        handles.append(Line2D([], [], color=_P["black"], linewidth=3.0,
                              label=f"objective {goal}: boundary (and the bar on the colour scale)"))
        handles.append(Patch(facecolor="white", edgecolor=_HATCH, hatch="//",
                             label=f"misses it (mean above {goal})"))
    xnum, xlabel = _numeric_axis(x, xs)
    ynum, ylabel = _numeric_axis(y, ys)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(-0.5, len(ys) - 0.5)
    who = "site" if vm == SITE else vm
    ax.set_title(f"{exp.scenario.name}: {metric_name(metric)} ({who}), mean of {exp.replications} "
                 f"replication{'s' if exp.replications != 1 else ''}", loc="left", fontsize="medium")
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=1 if len(xs) < 4 else len(handles), frameon=False,
                   fontsize="small")
    return fig


def _colormap(name: str) -> Any:
    """A registered colour map by name (``cividis``, ``viridis``...)."""
    return matplotlib.colormaps[name]


def _cell_colours(metric: str, values: np.ndarray, target: float | None) -> tuple[Normalize, Any]:
    """The colour scale of the heatmap's cells (``values`` and ``target`` in the unit shown).

    With a target: a diverging map (``RdBu_r``, colour-blind safe in ColorBrewer's rating) centred on it, blue
    below (meets), red above (misses), white at the target; linear from 0 to the target and from the target to
    twice it (or the largest value), or logarithmic and symmetric around the target (the largest value a factor
    k above it, a k-th of it at the bottom) when the values reach more than 20 times it. So 4.90 and 5.05
    minutes against a 15-minute target are the same light blue: the difference does not matter.
    Without a target: ``cividis`` from 0 (counts, durations, sizes, shares) or from the smallest value
    (availability) to the largest, on a log scale when they span more than a factor 20."""
    finite = values[np.isfinite(values)]
    if target is not None and target > 0:
        top = max(2.0 * target, float(finite.max()) if len(finite) else 0.0)
        if top / target > 20:
            k = top / target
            return LogNorm(target / k, target * k, clip=True), _colormap("RdBu_r")
        return TwoSlopeNorm(target, vmin=min(0.0, float(finite.min()) if len(finite) else 0.0), vmax=top), \
            _colormap("RdBu_r")
    if not len(finite):
        return Normalize(0, 1), _colormap("cividis")
    lo, hi = float(finite.min()), float(finite.max())
    if lo > 0 and hi / lo > 20:
        return LogNorm(lo, hi), _colormap("cividis")
    if metric != "availability" and lo >= 0:
        lo = 0.0
    return Normalize(lo, hi if hi > lo else lo + 1.0), _colormap("cividis")


def _parse_objective(objective: float | str) -> float:
    return float(units.parse_duration(objective)) if isinstance(objective, str) else float(objective)


#: From this many swept values up, :func:`sweep_lines` joins the means by a line with a confidence band; with
#: fewer, each mean is a point with its error bar and nothing is drawn between (a line between two or three
#: points would suggest the values between them are known). An assumption: with five or more values a reader sees
#: a trend the band qualifies.
LINE_FROM = 5


def sweep_lines(exp: Experiment, x: str, metric: str, vm: str = SITE, by: str | None = None) -> Figure:
    """The mean over replications of ``metric`` for ``vm`` (default the site) against the swept path ``x``, with
    the 95 % confidence interval of the mean (mean ± ``ci95``); one series per value of the swept path ``by``
    (in sweep order), or a single one. With :data:`LINE_FROM` (5) or more values of ``x`` a series is a line
    with a band; with fewer, points with error bars, not joined (the series of ``by`` are shifted sideways a
    little so that their bars do not hide each other). Rates on the x axis in Mbit/s and durations in minutes,
    hours or days (other values as categories, in sweep order); durations on the y axis likewise. The objective
    that applies to the metric (RPO for RPO and data loss, RTO for RTO and downtime) is a dashed line. The
    experiment must sweep no other path (or only one value of it).
    """
    xs = _sweep_values(exp, x)
    bys = _sweep_values(exp, by) if by is not None else [None]
    if by == x:
        raise ValueError(f"by={by!r} is x: give by= another swept path than x, or leave it out for one line")
    _check_other_paths(exp, (x,) if by is None else (x, by))
    agg = _site_or_vm(exp, vm)
    agg = agg[agg["metric"] == metric]
    if agg.empty:
        raise ValueError(f"no metric {metric!r} in the experiment's aggregate table")
    target = default_objective(exp.scenario, metric)
    scale, unit, _ = value_format(metric, np.append(agg["mean"].to_numpy(dtype=float),
                                                     [] if target is None else [target]))
    xnum, xlabel = _numeric_axis(x, xs)
    positions = xnum if xnum is not None else np.arange(len(xs), dtype=float)
    few = len(xs) < LINE_FROM
    spread = float(np.ptp(positions)) if len(positions) > 1 and np.ptp(positions) > 0 else 1.0
    step = (0.02 * spread if xnum is not None else 0.08) if len(bys) > 1 else 0.0

    floor, ceiling = (b / scale for b in metric_bounds(metric))
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.add_subplot()
    for k, bv in enumerate(bys):
        mine = agg if bv is None else agg[agg[by] == bv]
        mean = np.full(len(xs), np.nan)
        half = np.full(len(xs), np.nan)
        for xv, m, h in zip(mine[x], mine["mean"], mine["ci95"], strict=True):
            mean[xs.index(xv)], half[xs.index(xv)] = m, h
        order = np.argsort(positions, kind="stable")
        px, pm, ph = positions[order], mean[order] / scale, np.nan_to_num(half[order]) / scale
        color, style = SERIES[k % len(SERIES)], LINESTYLES[(k // len(SERIES)) % len(LINESTYLES)]
        label = "mean" if bv is None else f"{by} = {bv}"
        down, up = np.minimum(ph, pm - floor), np.minimum(ph, ceiling - pm)  # cut where the metric cannot go
        hit = [f"{b:g}" + (" %" if unit == "%" else "") for b, part in ((floor, down), (ceiling, up))
               if (part < ph - 1e-12).any()]
        cut = f" (cut at {' and '.join(hit)})" if hit else ""
        if few:
            bars = ax.errorbar(px + (k - (len(bys) - 1) / 2) * step, pm, yerr=np.vstack((down, up)),
                               linestyle="none", marker="o", color=color, capsize=4, elinewidth=1.4,
                               label=f"{label}, 95 % CI{cut}")
            bars.lines[0].set_gid("mean")
            for line in bars.lines[2]:
                line.set_gid("ci95")
        else:
            ax.plot(px, pm, color=color, linestyle=style, marker="o", linewidth=1.6, label=label, gid="mean")
            ax.fill_between(px, pm - down, pm + up, color=color, alpha=0.2, linewidth=0, gid="ci95",
                            label=f"95 % CI (band){cut}" if k == 0 else None)
    if target is not None:
        objective_line(ax, target, scale, vertical=False,
                        label=f"{objective_kind(metric).upper()} objective {format_duration(target)}")
    if xnum is None:
        ax.set_xticks(positions, [str(v) for v in xs])
        ax.set_xlim(-0.5, len(xs) - 0.5)
    elif few:
        ax.set_xticks(positions, [f"{v:g}" for v in positions])  # only the swept values are known
        ax.set_xlim(positions.min() - 0.15 * spread, positions.max() + 0.15 * spread)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(axis_label(metric, unit, vm))
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.grid(color=LIGHT_GREY, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    handles, labels = ax.get_legend_handles_labels()  # the series first, the objective last
    order = sorted(range(len(handles)), key=lambda i: getattr(handles[i], "get_gid", lambda: None)() == "objective")
    how = "points with error bars" if few else "line and band"
    ax.set_title(f"{exp.scenario.name}: {metric_name(metric)}, mean and 95 % CI over {exp.replications} "
                 f"replications ({how})", loc="left", fontsize="medium")
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize="small", frameon=False)
    return fig


def paired_differences(exp: Experiment, path: str = "policy.name", baseline: Any = None,
                       metric: str = "downtime_s", vms: Sequence[str] | None = None, max_vms: int = 20) -> Figure:
    """Paired differences of ``metric`` between each value of the swept ``path`` and ``baseline`` (default: the
    first value), per VM and for the site: the mean over replications of (value - baseline) on the same seeds
    (common random numbers), with its 95 % confidence interval (Student t). Durations in automatic units.
    ``vms`` names the VMs (default: every VM, then the site); beyond ``max_vms`` VMs the largest differences are
    shown and a note says how many are left out and how large their differences were.

    Pairing by replication removes the failure timeline's noise from the comparison: the interval is much
    narrower than the two unpaired ones.
    """

    values = _sweep_values(exp, path)
    _check_other_paths(exp, [path])
    if len(values) < 2:
        raise ValueError(f"{path!r} has one value: nothing to compare")
    baseline = values[0] if baseline is None else baseline
    if baseline not in values:
        raise ValueError(f"baseline {baseline!r} is not one of the values of {path!r}: {values}")
    tidy = exp.tidy
    others = [v for v in values if v != baseline]
    table = tidy.pivot_table(index=["vm", "replication"], columns=path, values=metric, aggfunc="first")
    if vms is not None:  # as named, in that order
        choice = choose(list(vms), max_vms, "VMs", "the first named")
        names = choice.shown
    else:  # the largest mean absolute differences first, then the site
        size = (table[others].sub(table[baseline], axis=0).abs().groupby(level="vm").mean().max(axis=1)
                .drop(index=SITE, errors="ignore").fillna(-1.0))
        choice = choose(list(size.sort_values(ascending=False, kind="stable").index), max_vms, "VMs",
                        "the largest differences first",
                        lambda rest: f", each within ± {format_duration(max(float(size[rest].max()), 0.0))}"
                        if is_duration(metric) else "")
        names = [*choice.ordered([v for v in tidy["vm"].unique() if v != SITE]), SITE]
    scale, unit = (duration_unit(float(np.nanmax(np.abs(table.to_numpy())) or 1.0)) if is_duration(metric)
                   else (1.0, ""))
    fig = Figure(figsize=(8, 0.45 * len(names) * len(others) + 1.8), layout="constrained")
    ax = fig.add_subplot()
    colors = list(OKABE_ITO.values())
    y = np.arange(len(names))
    height = 0.8 / len(others)
    for k, other in enumerate(others):
        means, halves = [], []
        for name in names:
            d = (table.loc[name, other] - table.loc[name, baseline]).dropna().to_numpy() if name in table.index \
                else np.array([])
            n = len(d)
            means.append(d.mean() / scale if n else np.nan)
            halves.append(float(t_975(n - 1) * d.std(ddof=1) / np.sqrt(n)) / scale if n > 1 else np.nan)
        pos = y + (k - (len(others) - 1) / 2) * height
        ax.barh(pos, means, height=height * 0.9, xerr=halves, color=colors[(k + 1) % len(colors)],
                error_kw={"ecolor": "#333333", "capsize": 3}, label=f"{other} - {baseline}")
    ax.axvline(0.0, color="#333333", linewidth=1)
    ax.set_yticks(y, [str(n) for n in names])
    ax.invert_yaxis()
    ax.set_xlabel(f"paired difference of {metric_name(metric)}" + (f" ({unit})" if unit else ""))
    ax.set_title(f"{exp.scenario.name}: {path} against {baseline} ({exp.replications} paired replications, 95 % CI)"
                 + choice.title(95), loc="left")
    fig.legend(loc="outside lower center", ncols=min(len(others), 4), frameon=False)  # never over a bar
    ax.grid(axis="x", color="#dddddd")
    return fig
