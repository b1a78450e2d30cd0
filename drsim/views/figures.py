"""Figures of one run, drawn with matplotlib from a :class:`drsim.Results`.

Each function takes the results (and options) and returns a :class:`matplotlib.figure.Figure`. Figures are
built with the object API (``Figure()``, not pyplot): nothing is shown or registered with pyplot, so they work
under any backend, including ``Agg`` on a server. In a notebook the returned figure displays itself; elsewhere
call ``fig.savefig("timeline.png")``.

==========================  ======================================================================
function                    shows
==========================  ======================================================================
:func:`protection_timeline` one row per VM: lifecycle states, health, incidents and drills
:func:`rpo_over_time`       the exact RPO sawtooth of each VM against the RPO target
:func:`link_usage`          link capacity, active transfers, backlog; initial-replication progress
:func:`incident_waterfall`  each incident's phases, from the failure to the end of the failback
==========================  ======================================================================

and of an experiment (:func:`drsim.experiments.runner.run_experiment`) or a plan (:func:`drsim.plan`):

==========================  ======================================================================
:func:`sweep_heatmap`       a metric's mean over two swept settings, with the objective's boundary
:func:`sweep_lines`         a metric's mean and 95 % confidence band against one swept setting
:func:`replication_cdfs`    CDFs across replications of RPO, data loss, RTO, downtime; objectives
:func:`planner_curve`       the planner's RPO percentile against bandwidth; required and formula
==========================  ======================================================================

Units shown: times on the x axis in minutes, hours or days chosen from the span (or calendar dates when the
scenario has a ``start``), sizes in GiB, rates in Mbit/s. Colours come from the Okabe-Ito palette
(:data:`OKABE_ITO`), which stays distinguishable with the common forms of colour blindness.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from drsim.experiments.statistics import t_975
from drsim.scenario import units
from drsim.scenario.units import DAY, HOUR, MINUTE, format_duration

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.transforms import Transform

    from drsim.experiments.outcome import Experiment
    from drsim.results.tables import Results

__all__ = ["protection_timeline", "rpo_over_time", "link_usage", "incident_waterfall", "sweep_heatmap", "sweep_lines",
           "replication_cdfs", "planner_curve", "paired_differences", "availability_by_vm", "OKABE_ITO",
           "STATE_COLORS", "HEALTH_HATCHES", "PHASE_COLORS"]

#: The Okabe-Ito palette (Okabe & Ito 2008), safe for the common forms of colour blindness.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
_P = OKABE_ITO
_LIGHT_GREY = "#DDDDDD"
_GREY = "#8C8C8C"

#: Colour of each lifecycle state in :func:`protection_timeline` (the order is the legend's).
STATE_COLORS: dict[str, str] = {
    "not_protected": _LIGHT_GREY,
    "unsupported": _GREY,
    "initial_replication": _P["sky_blue"],
    "protected": _P["bluish_green"],
    "down": _P["vermillion"],
    "failing_over": _P["orange"],
    "in_cloud": _P["blue"],
    "failback_sync": _P["reddish_purple"],
    "failing_back": _P["yellow"],
    "restoring": _P["black"],
}
#: Hatch of the health levels overlaid on the timeline (normal is not drawn).
HEALTH_HATCHES: dict[str, str] = {"warning": "////", "critical": "xxxx"}
#: Colour of each incident phase in :func:`incident_waterfall`.
PHASE_COLORS: dict[str, str] = {
    "detection": _P["vermillion"],
    "decision": _P["orange"],
    "waiting to start": _P["yellow"],
    "failover": _P["blue"],
    "down until repair": _GREY,
    "failback": _P["reddish_purple"],
}
_CURVE = _P["blue"]  # the RPO curve
_OVER = _P["vermillion"]  # time above the RPO target
_SERIES = [_P["blue"], _P["orange"], _P["bluish_green"], _P["vermillion"], _P["reddish_purple"], _P["sky_blue"],
           _P["black"], _P["yellow"]]  # one per VM, in this order, then again with another line style
_LINESTYLES = ["-", "--", ":", "-."]
_MIN_EDGE = 0.8  # points: the edge drawn around spans, so that a span of a few minutes in a month stays visible
_GIB = float(2**30)


# --- axes helpers ----------------------------------------------------------------------------------------


def _duration_unit(span: float) -> tuple[float, str]:
    """(seconds per unit, unit name) to show durations up to ``span`` seconds with readable numbers."""
    if span <= 2 * MINUTE:
        return 1.0, "s"
    if span <= 2 * HOUR:
        return MINUTE, "min"
    if span <= 2 * DAY:
        return HOUR, "h"
    return DAY, "d"


@dataclass(frozen=True)
class _TimeAxis:
    """Maps simulation seconds to x values: calendar dates (matplotlib date numbers) or a duration unit."""

    origin: float | None  # matplotlib date number of t = 0; None for durations since the start
    scale: float  # seconds per x unit
    label: str

    def __call__(self, seconds: float | np.ndarray | pd.Series) -> np.ndarray:
        x = np.asarray(seconds, dtype=float) / self.scale
        return x + self.origin if self.origin is not None else x

    def apply(self, ax: Axes, label: bool = True) -> None:
        if self.origin is not None:
            locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
            ax.xaxis.set_major_locator(locator)
            # every day tick names its month (the offset text alone would name only the last tick's)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
                locator, formats=["%Y", "%b", "%d %b", "%H:%M", "%H:%M", "%S.%f"],
                zero_formats=["", "%Y", "%d %b", "%d %b", "%H:%M", "%H:%M"],
                offset_formats=["", "%Y", "%Y", "%Y", "%d %b %Y", "%d %b %Y %H:%M"]))
        if label:
            ax.set_xlabel(self.label)


def _time_axis(results: Results) -> _TimeAxis:
    start = results.scenario.start
    if start is not None:
        return _TimeAxis(float(mdates.date2num(start)), DAY, "date and time (site local)")
    scale, unit = _duration_unit(results.end)
    return _TimeAxis(None, scale, f"time since start ({unit})")


def _when(results: Results, seconds: float) -> str:
    """A point in time for a label: a calendar date when the scenario has one, else the time since the start."""
    start = results.scenario.start
    if start is not None:
        return (pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")).strftime("%d %b %H:%M")
    return "t = " + format_duration(seconds)


def _vm_names(results: Results) -> list[str]:
    return [vm.name for _, vm in results.scenario.vms()]


def _first(names: Sequence[str], limit: int, what: str) -> tuple[list[str], str]:
    """The first ``limit`` names and a title suffix saying so when some are left out."""
    if limit < 1:
        raise ValueError(f"the number of {what} shown must be at least 1, got {limit}")
    shown = list(names[:limit])
    note = f" (first {len(shown)} of {len(names)} {what})" if len(names) > len(shown) else ""
    return shown, note


def _rects(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray | float, y1: np.ndarray | float) -> np.ndarray:
    """Vertices of axis-aligned rectangles, shape (n, 4, 2)."""
    x0, x1 = np.asarray(x0, dtype=float), np.asarray(x1, dtype=float)
    y0, y1 = np.broadcast_to(y0, x0.shape).astype(float), np.broadcast_to(y1, x0.shape).astype(float)
    return np.stack([np.column_stack(p) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], axis=1)


def _spans(ax: Axes, verts: np.ndarray, color: str, *, label: str, hatch: str | None = None,
           facecolor: str | None = None, alpha: float = 1.0, zorder: float = 2.0,
           transform: Transform | None = None, linewidth: float | None = None) -> PolyCollection:
    """Add rectangles as one collection, with an edge so that very short spans stay visible."""
    if linewidth is None:
        linewidth = _MIN_EDGE if hatch is None else 0.4
    coll = PolyCollection(verts, facecolors=color if facecolor is None else facecolor, edgecolors=color,
                          linewidths=linewidth, hatch=hatch, alpha=alpha, zorder=zorder, label=label)
    if transform is not None:
        coll.set_transform(transform)
    ax.add_collection(coll, autolim=False)
    return coll


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=_GREY)
    ax.set_yticks([])


# --- 1. protection timeline ------------------------------------------------------------------------------


def protection_timeline(results: Results, max_rows: int = 30) -> Figure:
    """Lifecycle of every VM over the run: one row per VM (in scenario order, the first ``max_rows``).

    Coloured spans are the states of ``results.states`` (not protected, initial replication, protected, down,
    failing over, in cloud, failback sync, failing back, restoring, unsupported); hatching over a span is the
    health reported while replicating (``results.health``: warning ``////``, critical ``xxxx``). A down triangle
    above a row marks a failure (``results.incidents.failed_at``), a diamond a test-failover drill (the start of
    its ``running`` step in ``results.operations``). The x axis is calendar time (site local) when the scenario
    has a ``start``, else the time since the start in minutes, hours or days.
    """
    names = _vm_names(results)
    shown, note = _first(names, max_rows, "VMs")
    row = {name: i for i, name in enumerate(shown)}
    ta = _time_axis(results)
    fig = Figure(figsize=(12, 1.9 + 0.42 * len(shown)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(f"{results.scenario.name}: protection timeline{note}", loc="left")
    handles: list[Patch | Line2D] = []
    half = 0.32  # half height of a state bar

    st = results.states
    st = st[st["vm"].isin(shown)]
    ys = st["vm"].astype(str).map(row).to_numpy(dtype=float)
    for state, color in STATE_COLORS.items():
        sel = (st["state"] == state).to_numpy()
        if not sel.any():
            continue
        y = ys[sel]
        verts = _rects(ta(st["start"].to_numpy()[sel]), ta(st["end"].to_numpy()[sel]), y - half, y + half)
        label = state.replace("_", " ")
        _spans(ax, verts, color, label=label)
        handles.append(Patch(facecolor=color, edgecolor=color, label=label))

    he = results.health
    he = he[he["vm"].isin(shown)]
    hy = he["vm"].astype(str).map(row).to_numpy(dtype=float)
    for level, hatch in HEALTH_HATCHES.items():
        sel = (he["health"] == level).to_numpy()
        if not sel.any():
            continue
        y = hy[sel]
        verts = _rects(ta(he["start"].to_numpy()[sel]), ta(he["end"].to_numpy()[sel]), y - half, y + half)
        _spans(ax, verts, _P["black"], facecolor="none", hatch=hatch, label=f"health {level}", zorder=3)
        handles.append(Patch(facecolor="white", edgecolor=_P["black"], hatch=hatch, label=f"health {level}"))

    marker_y = half + 0.1  # just above the bar (the y axis is inverted: rows go down)
    inc = results.incidents
    inc = inc[inc["vm"].isin(shown)]
    if len(inc):
        ax.plot(ta(inc["failed_at"].to_numpy()), inc["vm"].astype(str).map(row).to_numpy(dtype=float) - marker_y,
                linestyle="none", marker="v", markersize=7, color=_P["black"], markeredgecolor="white",
                markeredgewidth=0.6, zorder=4, label="failure")
        handles.append(Line2D([], [], linestyle="none", marker="v", markersize=7, color=_P["black"], label="failure"))
    ops = results.operations
    drills = ops[(ops["kind"] == "test_failover") & (ops["step"] == "running") & ops["target"].isin(shown)]
    if len(drills):
        ax.plot(ta(drills["start"].to_numpy()), drills["target"].astype(str).map(row).to_numpy(dtype=float) - marker_y,
                linestyle="none", marker="D", markersize=5.5, markerfacecolor="white", markeredgecolor=_P["black"],
                markeredgewidth=1.0, zorder=4, label="drill (test failover)")
        handles.append(Line2D([], [], linestyle="none", marker="D", markersize=5.5, markerfacecolor="white",
                              markeredgecolor=_P["black"], label="drill (test failover)"))

    ax.set_yticks(range(len(shown)), shown)
    ax.set_ylim(len(shown) - 0.5, -0.6)
    ax.set_xlim(ta(0.0), ta(results.end))
    ta.apply(ax)
    ax.grid(axis="x", color=_LIGHT_GREY, linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    if not shown:
        _no_data(ax, "no VMs")
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7), frameon=False,
                   fontsize="small")
    return fig


# --- 2. RPO over time ------------------------------------------------------------------------------------


def _rpo_runs(times: np.ndarray, values: np.ndarray) -> list[np.ndarray]:
    """Split one VM's RPO rows (two per linear piece) into polylines, one per stretch without a gap.

    Within a stretch a piece ends where the next starts, so the polyline drops vertically where a recovery
    point arrived; a gap (the VM was down or in the cloud) starts a new polyline."""
    if len(times) == 0:
        return []
    ends, starts = times[1:-1:2], times[2::2]
    gap = ~np.isclose(starts, ends, rtol=1e-12, atol=1e-6)
    cuts = 2 * (np.flatnonzero(gap) + 1)
    points = np.column_stack((times, values))
    return np.split(points, cuts)


def _above_target(times: np.ndarray, values: np.ndarray, target: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact intervals where the RPO exceeds ``target`` (slope 1 within each piece), merged."""
    t0, t1, r0, r1 = times[0::2], times[1::2], values[0::2], values[1::2]
    over = r1 > target
    a = t0[over] + np.maximum(target - r0[over], 0.0)
    b = t1[over]
    if len(a) == 0:
        return a, b
    new = np.ones(len(a), dtype=bool)
    new[1:] = a[1:] > b[:-1] + 1e-6
    return a[new], np.maximum.reduceat(b, np.flatnonzero(new))


def rpo_over_time(results: Results, vms: Sequence[str] | None = None, max_vms: int = 12) -> Figure:
    """The exact RPO curve of each VM (``results.rpo``), one panel per VM, against the RPO target.

    The RPO (y, in seconds, minutes, hours or days chosen from the values) is drawn piece by piece: it grows with
    slope 1 and drops when a recovery point arrives; it is not drawn where the VM was not replicating (before
    protection, down, in the cloud). The dashed line is ``scenario.objectives.rpo``; shading marks the exact
    times the RPO was above it. A rare peak far above the usual level (e.g. right after the initial
    replication) is cut at the top of the panel and its value written in the panel. ``vms`` selects VMs by name
    (default: every VM that has an RPO curve); the first ``max_vms`` are drawn.
    """
    names = _vm_names(results)
    rpo = results.rpo
    target = float(results.scenario.objectives.rpo)
    codes = rpo["vm"].cat.codes.to_numpy()
    categories = list(rpo["vm"].cat.categories)
    if vms is None:
        present = set(np.unique(codes).tolist())
        candidates = [n for n in names if n in categories and categories.index(n) in present]
    else:
        candidates = [vms] if isinstance(vms, str) else list(vms)
        unknown = [v for v in candidates if v not in names]
        if unknown:
            raise ValueError(f"unknown VM(s) {', '.join(map(repr, unknown))}; the run has: {', '.join(names)}")
    shown, note = _first(candidates, max_vms, "VMs")
    ta = _time_axis(results)
    title = f"{results.scenario.name}: RPO over time, target {format_duration(target)}{note}"
    if not shown:
        fig = Figure(figsize=(12, 3), layout="constrained")
        ax = fig.add_subplot()
        ax.set_title(title, loc="left")
        _no_data(ax, "no VM replicated: no RPO curve")
        ax.set_xlim(ta(0.0), ta(results.end))
        ta.apply(ax)
        return fig

    times_all, values_all = rpo["time"].to_numpy(), rpo["rpo"].to_numpy()
    data = {}
    tops = {}
    for name in shown:
        sel = codes == categories.index(name) if name in categories else np.zeros(len(codes), dtype=bool)
        t, r = times_all[sel], values_all[sel]
        data[name] = (t, r)
        if len(r):
            stats = results.rpo_stats(name)
            peak = float(r.max())
            top = max(min(peak * 1.05, max(2.0 * target, 1.5 * stats.p95)), 1.25 * target)  # target in view
            tops[name] = (top, peak, stats)
    scale, unit = _duration_unit(max([top for top, _, _ in tops.values()], default=2.0 * target))

    fig = Figure(figsize=(12, 1.0 + 1.45 * len(shown)), layout="constrained")
    axes = fig.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(title, x=0.01, ha="left")
    for ax, name in zip(axes, shown, strict=True):
        t, r = data[name]
        ax.set_title(name, loc="left", fontsize="medium", pad=3)
        ax.axhline(target / scale, color=_P["black"], linestyle="--", linewidth=1.0, zorder=3, label="target")
        if len(t) == 0:
            ax.text(0.5, 0.5, "no RPO curve (never replicated in this run)", transform=ax.transAxes, ha="center",
                    va="center", color=_GREY)
            ax.set_ylim(0, 2.0 * target / scale)
        else:
            a, b = _above_target(t, r, target)
            if len(a):
                _spans(ax, _rects(ta(a), ta(b), 0.0, 1.0), _OVER, alpha=0.35, zorder=1, label="above target",
                       transform=ax.get_xaxis_transform(), linewidth=1.2)
            runs = _rpo_runs(t, r)
            segs = [np.column_stack((ta(run[:, 0]), run[:, 1] / scale)) for run in runs]
            ax.add_collection(LineCollection(segs, colors=_CURVE, linewidths=0.9, zorder=2, label="RPO"),
                              autolim=False)
            top, peak, stats = tops[name]
            ax.set_ylim(0, top / scale)
            info = (f"mean {format_duration(stats.mean)} · p95 {format_duration(stats.p95)} · "
                    f"above target {stats.over_target:.1%} of the time")
            if peak > top * 1.001:
                info += f" · peak {format_duration(peak)} (off scale)"
            ax.set_title(info, loc="right", fontsize="small", pad=3)
        ax.set_ylabel(f"RPO ({unit})")
        ax.grid(axis="both", color=_LIGHT_GREY, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_xlim(ta(0.0), ta(results.end))
    for ax in axes:
        ta.apply(ax, label=ax is axes[-1])
    handles = [Line2D([], [], color=_CURVE, linewidth=1.2, label="RPO (time since the newest recovery point)"),
               Line2D([], [], color=_P["black"], linestyle="--", label=f"target {format_duration(target)}"),
               Patch(facecolor=_OVER, alpha=0.3, edgecolor=_OVER, label="above target")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize="small")
    return fig


# --- 3. link usage ---------------------------------------------------------------------------------------


def _extend(t: np.ndarray, v: np.ndarray, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Step data held to the end of the run."""
    if len(t) and t[-1] < end:
        return np.append(t, end), np.append(v, v[-1])
    return t, v


def _backlog_curve(t: np.ndarray, backlog: np.ndarray, capacity: np.ndarray,
                   end: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact backlog between the recorded changes: it drains at the capacity (wire bytes/s) until the next
    change (or until empty), then jumps to the recorded value. Three points per interval."""
    if len(t) == 0:
        return t, backlog
    nxt = np.append(t[1:], max(end, t[-1]))
    dt = nxt - t
    with np.errstate(divide="ignore", invalid="ignore"):
        empty_after = np.where(capacity > 0, backlog / capacity, np.inf)
    x = np.empty(3 * len(t))
    y = np.empty(3 * len(t))
    x[0::3], y[0::3] = t, backlog
    x[1::3] = t + np.minimum(empty_after, dt)
    y[1::3] = np.maximum(backlog - capacity * dt, 0.0)
    x[2::3], y[2::3] = nxt, y[1::3]
    return x, y


def link_usage(results: Results, direction: str = "upload", max_vms: int = 12) -> Figure:
    """The site's link in one ``direction`` over the run, and the initial replication's progress.

    Top: payload capacity in Mbit/s (the ``capacity`` column of ``results.link``: bytes/s after protocol
    overhead, before compression; 0 while the link is down), and on the right axis the backlog, GiB on the
    wire still to send for the active transfers. Middle: number of active transfers. Bottom: cumulative bytes
    (GiB, before compression) of each VM's initial replication (``results.transfers`` of kind ``initial``), the
    first ``max_vms`` VMs; each disk copy is drawn as a straight line from its start to its end (the fair share
    varies in between; the end points are exact); a dot marks when the VM became protected (after the
    catch-up delta). The x axis is calendar time or the time since the start.
    """
    if direction not in ("upload", "download"):
        raise ValueError(f"direction must be 'upload' or 'download', got {direction!r}")
    ta = _time_axis(results)
    link = results.link
    link = link[link["direction"] == direction]
    t = link["time"].to_numpy()
    cap_t, cap = _extend(t, link["capacity"].to_numpy() * 8 / 1e6, results.end)
    _, active = _extend(t, link["active"].to_numpy().astype(float), results.end)
    back_t, backlog = _backlog_curve(t, link["backlog"].to_numpy(), link["capacity"].to_numpy(), results.end)
    backlog = backlog / _GIB

    tr = results.transfers
    init = tr[(tr["kind"] == "initial") & (tr["direction"] == "upload")]
    vms_with_initial = set(init["vm"].astype(str))
    shown, note = _first([n for n in _vm_names(results) if n in vms_with_initial] or ["-"], max_vms, "VMs")

    fig = Figure(figsize=(12, 8), layout="constrained")
    ax_cap, ax_act, ax_init = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1, 2.2]})
    fig.suptitle(f"{results.scenario.name}: {direction} link usage", x=0.01, ha="left")

    x = ta(cap_t)
    ax_cap.plot(x, cap, drawstyle="steps-post", color=_P["blue"], linewidth=1.4, label="payload capacity")
    ax_cap.set_ylabel("capacity (Mbit/s)", color=_P["blue"])
    ax_cap.set_ylim(0, max(float(cap.max()) if len(cap) else 1.0, 1e-9) * 1.15)
    ax_back = ax_cap.twinx()
    ax_back.fill_between(ta(back_t), backlog, color=_P["orange"], alpha=0.35, linewidth=0, label="backlog")
    ax_back.plot(ta(back_t), backlog, color=_P["orange"], linewidth=0.8)
    ax_back.set_ylabel("backlog (GiB on the wire)", color=_P["orange"])
    ax_back.set_ylim(0, max(float(backlog.max()) if len(backlog) else 0.0, 1e-3) * 1.1)
    ax_cap.set_zorder(ax_back.get_zorder() + 1)  # the capacity line above the backlog area
    ax_cap.patch.set_visible(False)
    ax_cap.set_title("capacity and backlog", loc="left", fontsize="medium")
    ax_cap.legend(handles=[Line2D([], [], color=_P["blue"], linewidth=1.4, label="payload capacity (Mbit/s)"),
                           Patch(facecolor=_P["orange"], alpha=0.35, label="backlog (GiB on the wire, right axis)")],
                  loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize="small", frameon=False,
                  borderaxespad=0.2)

    ax_act.plot(x, active, drawstyle="steps-post", color=_P["bluish_green"], linewidth=0.9)
    ax_act.set_ylabel("transfers")
    ax_act.set_ylim(0, max(float(active.max()) if len(active) else 0.0, 1.0) * 1.15)
    ax_act.yaxis.get_major_locator().set_params(integer=True)
    ax_act.set_title("active transfers", loc="left", fontsize="medium")

    ax_init.set_title(f"initial replication progress{note}", loc="left", fontsize="medium")
    st = results.states
    prot = st[st["state"] == "protected"].groupby("vm", observed=True)["start"].min()
    for i, name in enumerate(n for n in shown if n in vms_with_initial):
        mine = init[init["vm"] == name].sort_values("started_at")
        color, style = _SERIES[i % len(_SERIES)], _LINESTYLES[(i // len(_SERIES)) % len(_LINESTYLES)]
        xs: list[float] = []
        ys: list[float] = []
        done = 0.0
        for start, finish, size in mine[["started_at", "finished_at", "bytes"]].itertuples(index=False):
            xs.append(start)
            ys.append(done / _GIB)
            if math.isnan(finish):  # still copying at the end of the run: progress unknown
                xs.append(results.end)
                ys.append(done / _GIB)
                break
            done += size
            xs.append(finish)
            ys.append(done / _GIB)
        ax_init.plot(ta(np.array(xs)), ys, color=color, linestyle=style, linewidth=1.6, label=name)
        if name in prot.index:
            ax_init.plot(ta(prot[name]), done / _GIB, marker="o", color=color, markersize=5, zorder=3)
    ax_init.set_ylabel("copied (GiB)")
    ax_init.set_ylim(bottom=0)
    if vms_with_initial:
        handles, labels = ax_init.get_legend_handles_labels()
        handles.append(Line2D([], [], linestyle="none", marker="o", color=_GREY, label="protected"))
        ax_init.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small",
                       frameon=False, title="VM", title_fontsize="small")
    else:
        _no_data(ax_init, "no initial replication in this run")
    for ax in (ax_cap, ax_act, ax_init):
        ax.grid(color=_LIGHT_GREY, linewidth=0.6)
        ax.set_axisbelow(True)
    ax_init.set_xlim(ta(0.0), ta(results.end))
    for ax in (ax_cap, ax_act, ax_init):
        ta.apply(ax, label=ax is ax_init)
    return fig


# --- 4. incident waterfall -------------------------------------------------------------------------------

_OUTAGE_MILESTONES = (("detected_at", "detection"), ("decision_at", "decision"),
                      ("failover_started_at", "waiting to start"), ("service_restored_at", "failover"))


def _incident_bars(inc: pd.Series) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]:
    """The phases of one incident as (phase, start, end) in seconds from the failure (outage side) and from the
    failback start (failback side); phases of zero length or with an unknown end are left out."""
    t0 = inc["failed_at"]
    outage = []
    prev = t0
    for col, phase in _OUTAGE_MILESTONES:
        v = inc[col]
        if math.isnan(v):
            continue
        if col == "service_restored_at" and math.isnan(inc["failover_started_at"]):
            phase = "down until repair"
        if v > prev:
            outage.append((phase, prev - t0, v - t0))
        prev = max(prev, v)
    back = []
    fs, fd = inc["failback_started_at"], inc["failback_done_at"]
    if not math.isnan(fs) and not math.isnan(fd) and fd > fs:
        back.append(("failback", 0.0, fd - fs))
    return outage, back


def incident_waterfall(results: Results, max_incidents: int = 30) -> Figure:
    """Each incident's phases as consecutive bars (one row per incident, the first ``max_incidents``).

    Left panel, time since the failure: detection (failure to ``detected_at``), decision (to ``decision_at``),
    waiting to start (to ``failover_started_at``), failover (to ``service_restored_at``); "down until repair"
    when the service came back without a failover. A black tick on each row is the RTO target counted from
    where that incident's RTO starts (the failure; for corruption, its detection). Right panel, time since the
    failback started: the failback (to ``failback_done_at``); the time spent in the cloud in between is written
    beside it. Each row's text gives the RTO, the data loss (failure time minus the capture time of the recovery
    point used) and any outcome other than a completed failover. Durations in seconds, minutes, hours or days
    chosen from the longest bar of each panel.
    """
    inc = results.incidents
    rto_target = float(results.scenario.objectives.rto)
    title = f"{results.scenario.name}: incidents, failure to failback"
    if len(inc) == 0:
        fig = Figure(figsize=(13, 2.0), layout="constrained")
        ax = fig.add_subplot()
        fig.suptitle(title, x=0.01, ha="left")
        _no_data(ax, "no incidents in this run")
        ax.set_axis_off()
        return fig
    shown_idx, note = _first(list(range(len(inc))), max_incidents, "incidents")
    inc = inc.iloc[shown_idx]
    n = len(inc)
    fig = Figure(figsize=(13, 2.0 + 0.5 * n), layout="constrained")
    ax_out, ax_back = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [2.6, 1]})
    fig.suptitle(title + note, x=0.01, ha="left")
    ax_out.set_title("outage: failure to service restored", loc="left", fontsize="medium")
    ax_back.set_title("failback", loc="left", fontsize="medium")

    rows = [(_incident_bars(r), r) for _, r in inc.iterrows()]
    rto_from = [_rto_origin(r) for _, r in rows]
    out_max = max([e for (out, _), _ in rows for _, _, e in out] + [f + rto_target for f in rto_from])
    back_max = max([e for (_, back), _ in rows for _, _, e in back], default=HOUR)
    o_scale, o_unit = _duration_unit(out_max)
    b_scale, b_unit = _duration_unit(back_max)
    height = 0.6
    used: dict[str, str] = {}
    for i, ((out, back), r) in enumerate(rows):
        for ax, bars, scale in ((ax_out, out, o_scale), (ax_back, back, b_scale)):
            for phase, a, b in bars:
                color = PHASE_COLORS[phase]
                ax.barh(i, (b - a) / scale, left=a / scale, height=height, color=color, edgecolor=color,
                        linewidth=_MIN_EDGE, gid=f"incident-{i}", zorder=2)
                used[phase] = color
        tick = rto_from[i] + rto_target
        ax_out.vlines(tick / o_scale, i - 0.42, i + 0.42, color=_P["black"], linewidth=1.6, zorder=3)
        end = out[-1][2] if out else 0.0
        ax_out.text(max(end, tick) / o_scale, i, _incident_text(r), va="center", ha="left", fontsize="small",
                    zorder=4, clip_on=True)
        fs = r["failback_started_at"]
        if not math.isnan(fs) and not math.isnan(r["service_restored_at"]):
            cloud = f"after {format_duration(fs - r['service_restored_at'])} in the cloud"
            ax_back.text((back[0][2] if back else 0.0) / b_scale, i, "  " + cloud, va="center", ha="left",
                         fontsize="small")
        elif not math.isnan(r["service_restored_at"]) and r["outcome"] in ("failed over", "planned failover"):
            ax_back.text(0.0, i, "  in the cloud at the end of the run", va="center", ha="left",
                         fontsize="small", color=_GREY)

    labels = [f"{r['vm']} · {r['kind']} · {_when(results, r['failed_at'])}" for _, r in rows]
    ax_out.set_yticks(range(n), labels)
    ax_out.set_ylim(n - 0.5, -0.5)
    ax_out.set_xlim(0, out_max / o_scale * 1.75)  # room for the text
    ax_back.set_xlim(0, back_max / b_scale * 2.4)
    ax_out.set_xlabel(f"time since failure ({o_unit})")
    ax_back.set_xlabel(f"time since failback start ({b_unit})")
    for ax in (ax_out, ax_back):
        ax.grid(axis="x", color=_LIGHT_GREY, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(axis="y", length=0)
    handles = [Patch(facecolor=c, edgecolor=c, label=p) for p, c in PHASE_COLORS.items() if p in used]
    handles.append(Line2D([], [], color=_P["black"], linewidth=1.6, label=f"RTO target {format_duration(rto_target)}"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, fontsize="small")
    return fig


def _rto_origin(r: pd.Series) -> float:
    """Seconds from the failure to where the incident's RTO starts (the failure; for corruption, its detection)."""
    if not (math.isnan(r["rto_s"]) or math.isnan(r["service_restored_at"])):
        return float(r["service_restored_at"] - r["rto_s"] - r["failed_at"])
    if r["kind"] == "corruption" and not math.isnan(r["detected_at"]):
        return float(r["detected_at"] - r["failed_at"])
    return 0.0


def _incident_text(r: pd.Series) -> str:
    """The RTO and data loss of an incident, and on a second line any outcome other than a completed move."""
    parts = []
    if not math.isnan(r["rto_s"]):
        parts.append(f"RTO {format_duration(r['rto_s'])}")
    loss = r["data_loss_s"]
    if loss == 0:
        parts.append("no data loss")
    elif not math.isnan(loss):
        parts.append(f"data loss {format_duration(loss)}")
    lines = [" · ".join(parts)] if parts else []
    if r["outcome"] not in ("failed over", "planned failover"):
        lines += textwrap.wrap(str(r["outcome"]), width=44)
    return "\n".join("  " + line for line in lines)


# === figures of experiments and plans ====================================================================
#
# :func:`sweep_heatmap`     a metric's mean over two swept parameters, with the objective's boundary
# :func:`sweep_lines`       a metric's mean and 95 % confidence band against one swept parameter
# :func:`replication_cdfs`  empirical CDFs across replications of RPO, data loss, RTO and downtime
# :func:`planner_curve`     the planner's RPO percentile against bandwidth, required and formula marked

_SITE = "(site)"
_MBIT = 1e6 / 8  # bytes/s per Mbit/s
_METRIC_NAMES: dict[str, str] = {
    "rpo_mean_s": "mean RPO", "rpo_p95_s": "p95 RPO", "rpo_max_s": "max RPO",
    "data_loss_mean_s": "mean data loss", "data_loss_max_s": "max data loss",
    "rto_mean_s": "mean RTO", "rto_max_s": "max RTO", "downtime_s": "downtime",
    "protected_at": "protected after", "initial_replication_s": "initial replication",
    "drill_rto_mean_s": "mean drill RTO", "availability": "availability", "rpo_over_target": "time over RPO target",
    "rto_met": "RTO met (share of replications)", "rpo_met": "RPO met (share of replications)",
    "protected": "protected (share of replications)", "incidents": "incidents", "drills": "drills",
    "cycles_sent": "cycles sent", "cycles_missed": "cycles missed", "bytes_written": "bytes written",
    "bytes_sent": "bytes sent", "initial_bytes": "initial copy",
}
_SHARES = {"availability", "rpo_over_target", "rto_met", "rpo_met", "protected"}


def _metric_name(metric: str) -> str:
    return _METRIC_NAMES.get(metric, metric.replace("_", " "))


def _is_duration(metric: str) -> bool:
    return metric.endswith("_s") or metric == "protected_at"


def _objective_kind(metric: str) -> str | None:
    """Which objective applies to a duration metric: ``rpo`` (RPO, data loss), ``rto`` (RTO, downtime) or None."""
    if not _is_duration(metric):
        return None
    if metric.startswith(("rpo_", "data_loss_")):
        return "rpo"
    if metric.startswith(("rto_", "downtime", "drill_rto")):
        return "rto"
    return None


def _default_objective(scenario, metric: str) -> float | None:
    kind = _objective_kind(metric)
    return None if kind is None else float(getattr(scenario.objectives, kind))


def _value_format(metric: str, values: np.ndarray) -> tuple[float, str, Callable[[float], str]]:
    """(divisor, unit shown on the axis, formatter of one value in human units) for a metric."""
    finite = values[np.isfinite(values)]
    top = float(np.abs(finite).max()) if len(finite) else 0.0
    if _is_duration(metric):
        scale, unit = _duration_unit(top)
        return scale, unit, lambda v: "-" if not math.isfinite(v) else format_duration(v)
    if metric in _SHARES:
        return 0.01, "%", lambda v: "-" if not math.isfinite(v) else f"{v:.1%}" if metric != "availability" \
            else f"{v:.3%}"
    if metric.startswith("bytes") or metric.endswith("_bytes"):
        return _GIB, "GiB", lambda v: "-" if not math.isfinite(v) else f"{v / _GIB:.3g} GiB"
    return 1.0, "", lambda v: "-" if not math.isfinite(v) else f"{v:.3g}"


def _axis_label(metric: str, unit: str, vm: str) -> str:
    who = "site" if vm == _SITE else vm
    return f"{_metric_name(metric)}, {who}" + (f" ({unit})" if unit else "")


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
            return nums / _MBIT, f"{path} (Mbit/s)"
        scale, unit = _duration_unit(float(nums.max()) if len(nums) else 0.0)
        return nums / scale, f"{path} ({unit})"
    return None, path


def _check_other_paths(exp: Experiment, used: Sequence[str]) -> None:
    others = [p for p in exp.sweep if p not in used and len(_sweep_values(exp, p)) > 1]
    if others:
        raise ValueError(f"the experiment also sweeps {', '.join(others)}: a figure over {', '.join(used)} would "
                         "mix its points; run (or select) an experiment with one value of each other path")


def _site_or_vm(exp: Experiment, vm: str) -> pd.DataFrame:
    agg = exp.aggregate
    mine = agg[agg["vm"] == vm]
    if mine.empty:
        raise ValueError(f"no VM {vm!r} in the experiment's tables (VMs: {', '.join(map(str, agg['vm'].unique()))})")
    return mine


def _objective_line(ax: Axes, value: float, scale: float, *, vertical: bool, label: str) -> None:
    kw = dict(color=_P["black"], linestyle="--", linewidth=1.2, label=label, gid="objective", zorder=3)
    if vertical:
        ax.axvline(value / scale, **kw)
    else:
        ax.axhline(value / scale, **kw)


def sweep_heatmap(exp: Experiment, x: str, y: str, metric: str = "rpo_p95_s", vm: str = _SITE,
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
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.patches import Rectangle

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
    target = _default_objective(exp.scenario, metric) if objective is None else _parse_objective(objective)
    scale, unit, fmt = _value_format(metric, mean.ravel())

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
    ax.set_facecolor(_LIGHT_GREY)
    cbar = fig.colorbar(img, ax=ax, shrink=0.9)
    cbar.set_label("mean " + _axis_label(metric, unit, vm))
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
        goal = format_duration(target) if _is_duration(metric) else fmt(target)
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
    who = "site" if vm == _SITE else vm
    ax.set_title(f"{exp.scenario.name}: {_metric_name(metric)} ({who}), mean of {exp.replications} "
                 f"replication{'s' if exp.replications != 1 else ''}", loc="left", fontsize="medium")
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False,
                   fontsize="small")
    return fig


def _colormap(name: str) -> Any:
    """A registered colour map by name (``cividis``, ``viridis``...)."""
    import matplotlib

    return matplotlib.colormaps[name]


def _parse_objective(objective: float | str) -> float:

    return float(units.parse_duration(objective)) if isinstance(objective, str) else float(objective)


def sweep_lines(exp: Experiment, x: str, metric: str, vm: str = _SITE, by: str | None = None) -> Figure:
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
        raise ValueError("by must be another swept path than x")
    _check_other_paths(exp, (x,) if by is None else (x, by))
    agg = _site_or_vm(exp, vm)
    agg = agg[agg["metric"] == metric]
    if agg.empty:
        raise ValueError(f"no metric {metric!r} in the experiment's aggregate table")
    target = _default_objective(exp.scenario, metric)
    scale, unit, _ = _value_format(metric, np.append(agg["mean"].to_numpy(dtype=float),
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
        color, style = _SERIES[k % len(_SERIES)], _LINESTYLES[(k // len(_SERIES)) % len(_LINESTYLES)]
        label = "mean" if bv is None else f"{by} = {bv}"
        ax.plot(px, pm, color=color, linestyle=style, marker="o", linewidth=1.6, label=label, gid="mean")
        ax.fill_between(px, pm - ph, pm + ph, color=color, alpha=0.2, linewidth=0, gid="ci95")
    if target is not None:
        _objective_line(ax, target, scale, vertical=False,
                        label=f"{_objective_kind(metric).upper()} objective {format_duration(target)}")
    if xnum is None:
        ax.set_xticks(positions, [str(v) for v in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_axis_label(metric, unit, vm))
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.grid(color=_LIGHT_GREY, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(f"{exp.scenario.name}: {_metric_name(metric)}, mean and 95 % CI over {exp.replications} "
                 "replications", loc="left", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return fig


def _point_label(exp: Experiment, point: int) -> str:
    settings = exp.points.loc[exp.points["point"] == point].iloc[0]
    return ", ".join(f"{p}={settings[p]}" for p in exp.sweep) or "scenario"


def replication_cdfs(exp: Experiment,
                     metrics: Sequence[str] = ("rpo_p95_s", "data_loss_max_s", "rto_max_s", "downtime_s"),
                     vm: str = _SITE, point: int | Sequence[int] | None = None, max_points: int = 8) -> Figure:
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
    shown, note = _first(points, max_points, "points")
    metrics = list(metrics)
    missing = [m for m in metrics if m not in tidy.columns]
    if missing:
        raise ValueError(f"no metric {', '.join(map(repr, missing))} in the experiment's tables")
    ncols = 2 if len(metrics) > 1 else 1
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(6 * ncols, 3.4 * nrows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    who = "site" if vm == _SITE else vm
    fig.suptitle(f"{exp.scenario.name}: distributions over {exp.replications} replications ({who}){note}",
                 x=0.01, ha="left")
    for ax, metric in zip(axes, metrics, strict=False):
        target = _default_objective(exp.scenario, metric)
        values = tidy.loc[tidy["point"].isin(shown), metric].to_numpy(dtype=float)
        scale, unit, _ = _value_format(metric, np.append(values, [] if target is None else [target]))
        drawn = 0
        for k, p in enumerate(shown):
            v = np.sort(tidy.loc[tidy["point"] == p, metric].to_numpy(dtype=float))
            v = v[np.isfinite(v)]
            if not len(v):
                continue
            color, style = _SERIES[k % len(_SERIES)], _LINESTYLES[(k // len(_SERIES)) % len(_LINESTYLES)]
            xs = np.concatenate(([v[0]], v)) / scale
            ys = np.arange(len(v) + 1) / len(v)
            ax.step(xs, ys, where="post", color=color, linestyle=style, linewidth=1.6, gid="cdf",
                    label=f"{_point_label(exp, p)} (n={len(v)})")
            drawn += 1
        if target is not None:
            _objective_line(ax, target, scale, vertical=True, label="objective")
            ax.annotate(f"{_objective_kind(metric).upper()} objective {format_duration(target)} ",
                        (target / scale, 0.98), xycoords=("data", "axes fraction"), ha="right", va="bottom",
                        fontsize="small", rotation=90, rotation_mode="anchor")
        if not drawn:
            ax.text(0.5, 0.5, "no values (e.g. no incidents)", transform=ax.transAxes, ha="center", va="center",
                    color=_GREY)
        ax.set_xlabel(_axis_label(metric, unit, vm))
        ax.set_ylabel("share of replications ≤ x")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(left=0)
        ax.grid(color=_LIGHT_GREY, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(_metric_name(metric), loc="left", fontsize="medium")
    for ax in axes[len(metrics):]:
        ax.set_axis_off()
    handles = [Line2D([], [], color=_SERIES[k % len(_SERIES)],
                      linestyle=_LINESTYLES[(k // len(_SERIES)) % len(_LINESTYLES)], linewidth=1.6,
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
    bw = np.array([e["upload_Bps"] for e in evals], dtype=float) / _MBIT
    names = list(evals[0]["rpo_stat_s"]) if evals else []
    per_vm = {n: np.array([e["rpo_stat_s"][n] for e in evals], dtype=float) for n in names}
    worst = np.max(np.vstack(list(per_vm.values())), axis=0) if names else np.array([])
    met = np.array([bool(e["site_met"]) for e in evals])
    target = float(a["rpo_s"])
    pct = f"p{a['percentile']:g}"
    finite = np.concatenate([v[np.isfinite(v)] for v in per_vm.values()] + [np.array([target])])
    scale, unit = _duration_unit(2 * target)  # readable around the target (the y axis is often logarithmic)
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.add_subplot()
    top = float(finite.max()) / scale * 1.6
    log = float(finite.max()) / max(float(finite.min()), 1e-9) > 20
    if vms and len(names) > 1:
        for k, n in enumerate(names[:len(_SERIES) * len(_LINESTYLES)]):
            v = per_vm[n] / scale
            ax.plot(bw, np.where(np.isfinite(v), v, np.nan), color=_SERIES[(k + 1) % len(_SERIES)],
                    linestyle=_LINESTYLES[(k // len(_SERIES)) % len(_LINESTYLES)], linewidth=0.9, alpha=0.8,
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
    site = plan_df[plan_df["vm"] == _SITE]
    marks = []
    if len(site):
        s = site.iloc[0]
        marks = [("required", s["required_Bps"], _P["bluish_green"], "-"),
                 ("formula", s["formula_Bps"], _P["orange"], "-."),
                 ("current", a.get("current_upload_Bps", math.nan), _P["sky_blue"], ":")]
    for what, value, color, style in marks:
        if value is not None and math.isfinite(value):
            ax.axvline(value / _MBIT, color=color, linestyle=style, linewidth=2.0, gid=f"{what}-bandwidth",
                       label=f"{what}: {value / _MBIT:.2f} Mbit/s", zorder=3)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(float(finite.min()) / scale / 1.5, top)
    else:
        ax.set_ylim(0, top)
    ax.set_xlim(left=0)
    ax.set_xlabel("upload bandwidth (Mbit/s, raw uplink)")
    ax.set_ylabel(f"{pct} RPO in the {a.get('window', 'steady')} window ({unit})")
    ax.grid(color=_LIGHT_GREY, linewidth=0.6, which="both")
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(f"{a['scenario']}: {pct} RPO against bandwidth ({len(evals)} bandwidths × "
                 f"{a['replications']} replication{'s' if a['replications'] != 1 else ''})\n"
                 f"judged by {a['criterion_text']}", loc="left", fontsize="medium")
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
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
    names = list(vms) if vms is not None else [v for v in tidy["vm"].unique() if v != _SITE] + [_SITE]
    others = [v for v in values if v != baseline]
    table = tidy.pivot_table(index=["vm", "replication"], columns=path, values=metric, aggfunc="first")
    scale, unit = (_duration_unit(float(np.nanmax(np.abs(table.to_numpy())) or 1.0)) if _is_duration(metric)
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
    ax.set_xlabel(f"paired difference of {_metric_name(metric)}" + (f" ({unit})" if unit else ""))
    ax.set_title(f"{exp.scenario.name}: {path} against {baseline} ({exp.replications} paired replications, 95 % CI)",
                 loc="left")
    ax.legend(loc="lower right", frameon=False)
    ax.grid(axis="x", color="#dddddd")
    return fig


def availability_by_vm(exp: Experiment, point: int = 0) -> Figure:
    """Availability of each VM and the site across replications at one sweep ``point``: the mean (in %) with its
    95 % confidence interval, and each replication's value as a dot."""
    agg = exp.aggregate
    rows = agg[(agg["point"] == point) & (agg["metric"] == "availability")]
    if rows.empty:
        raise ValueError(f"no availability for sweep point {point!r}")
    names = [v for v in rows["vm"] if v != _SITE] + [_SITE]
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
