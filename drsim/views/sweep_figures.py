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
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from drsim.experiments.statistics import t_975
from drsim.scenario import units
from drsim.scenario.units import format_duration
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
    metric_name,
    objective_kind,
    objective_line,
    value_format,
)

if TYPE_CHECKING:
    from drsim.experiments.outcome import Experiment

__all__ = ["sweep_heatmap", "sweep_lines", "paired_differences"]

_P = OKABE_ITO


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
    cells meeting and missing it (the objective's contour on the grid). Colours: the ``cividis`` map
    (colour-blind safe), on a log scale when the means span more than a factor 20. The experiment must sweep
    no other path (or only one value of it).
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
    finite = shown[np.isfinite(shown)]
    norm: Normalize
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 20:
        norm = LogNorm(finite.min(), finite.max())
    else:
        norm = Normalize(*(finite.min(), finite.max()) if len(finite) else (0, 1))
    cmap = _colormap("cividis")
    img = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=norm, aspect="auto", origin="lower",
                    interpolation="nearest")
    ax.set_facecolor(LIGHT_GREY)
    cbar = fig.colorbar(img, ax=ax, shrink=0.9)
    cbar.set_label("mean " + axis_label(metric, unit, vm))
    for i in range(len(ys)):
        for j in range(len(xs)):
            m = mean[i, j]
            text = fmt(m)
            if math.isfinite(half[i, j]) and half[i, j] > 0 and math.isfinite(m):
                text += f"\n± {fmt(half[i, j])}"
            light = math.isfinite(m) and norm(m / scale) < 0.55
            ax.text(j, i, text, ha="center", va="center", fontsize="small", gid="cell",
                    color="white" if light else _P["black"])
    handles: list[Patch | Line2D] = []
    if target is not None:
        miss = np.where(np.isfinite(mean), mean > target * (1 + 1e-12), True)
        for i, j in zip(*np.nonzero(miss), strict=True):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="none", edgecolor=_P["vermillion"],
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
        handles.append(Line2D([], [], color=_P["black"], linewidth=3.0, label=f"objective {goal}: boundary"))
        handles.append(Patch(facecolor="white", edgecolor=_P["vermillion"], hatch="//",
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
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False,
                   fontsize="small")
    return fig


def _colormap(name: str) -> Any:
    """A registered colour map by name (``cividis``, ``viridis``...)."""
    return matplotlib.colormaps[name]


def _parse_objective(objective: float | str) -> float:
    return float(units.parse_duration(objective)) if isinstance(objective, str) else float(objective)


def sweep_lines(exp: Experiment, x: str, metric: str, vm: str = SITE, by: str | None = None) -> Figure:
    """The mean over replications of ``metric`` for ``vm`` (default the site) against the swept path ``x``, with
    a band for the 95 % confidence interval of the mean (mean ± ``ci95``); one line per value of the swept path
    ``by`` (in sweep order), or a single line. Rates on the x axis in Mbit/s and durations in minutes, hours or
    days (other values as categories, in sweep order); durations on the y axis likewise. The objective that
    applies to the metric (RPO for RPO and data loss, RTO for RTO and downtime) is a dashed line. The experiment
    must sweep no other path (or only one value of it).
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
        ax.plot(px, pm, color=color, linestyle=style, marker="o", linewidth=1.6, label=label, gid="mean")
        ax.fill_between(px, pm - ph, pm + ph, color=color, alpha=0.2, linewidth=0, gid="ci95")
    if target is not None:
        objective_line(ax, target, scale, vertical=False,
                        label=f"{objective_kind(metric).upper()} objective {format_duration(target)}")
    if xnum is None:
        ax.set_xticks(positions, [str(v) for v in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(axis_label(metric, unit, vm))
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.grid(color=LIGHT_GREY, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(f"{exp.scenario.name}: {metric_name(metric)}, mean and 95 % CI over {exp.replications} "
                 "replications", loc="left", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return fig


def paired_differences(exp: Experiment, path: str = "policy.name", baseline: Any = None,
                       metric: str = "downtime_s", vms: Sequence[str] | None = None) -> Figure:
    """Paired differences of ``metric`` between each value of the swept ``path`` and ``baseline`` (default: the
    first value), per VM and for the site: the mean over replications of (value - baseline) on the same seeds
    (common random numbers), with its 95 % confidence interval (Student t). Durations in automatic units.

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
    names = list(vms) if vms is not None else [v for v in tidy["vm"].unique() if v != SITE] + [SITE]
    others = [v for v in values if v != baseline]
    table = tidy.pivot_table(index=["vm", "replication"], columns=path, values=metric, aggfunc="first")
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
    ax.set_title(f"{exp.scenario.name}: {path} against {baseline} ({exp.replications} paired replications, 95 % CI)",
                 loc="left")
    ax.legend(loc="lower right", frameon=False)
    ax.grid(axis="x", color="#dddddd")
    return fig
