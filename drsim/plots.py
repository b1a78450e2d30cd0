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

Units shown: times on the x axis in minutes, hours or days chosen from the span (or calendar dates when the
scenario has a ``start``), sizes in GiB, rates in Mbit/s. Colours come from the Okabe-Ito palette
(:data:`OKABE_ITO`), which stays distinguishable with the common forms of colour blindness.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from drsim.units import DAY, HOUR, MINUTE, format_duration

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.transforms import Transform

    from drsim.results import Results

__all__ = ["protection_timeline", "rpo_over_time", "link_usage", "incident_waterfall", "OKABE_ITO",
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
