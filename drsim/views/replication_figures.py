"""Figures of one run's replication: :func:`rpo_over_time` (the exact RPO sawtooth of each VM against the RPO
target) and :func:`link_usage` (link capacity, active transfers, backlog and the initial replication's progress).

Both take a :class:`drsim.Results` and return a :class:`matplotlib.figure.Figure` built with the object API
(nothing is shown or registered with pyplot). Imports matplotlib, numpy, :mod:`drsim.scenario.units` and
:mod:`drsim.views.style`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from drsim.scenario.units import format_duration
from drsim.views.style import (
    GIB,
    GREY,
    LIGHT_GREY,
    LINESTYLES,
    OKABE_ITO,
    SERIES,
    add_spans,
    duration_unit,
    first_shown,
    no_data,
    rects,
    time_axis,
    vm_names,
)

if TYPE_CHECKING:
    from drsim.results.tables import Results

__all__ = ["rpo_over_time", "link_usage"]

_P = OKABE_ITO
_CURVE = _P["blue"]  # the RPO curve
_OVER = _P["vermillion"]  # time above the RPO target


# --- RPO over time ------------------------------------------------------------------------------------


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
    names = vm_names(results)
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
    shown, note = first_shown(candidates, max_vms, "VMs")
    ta = time_axis(results)
    title = f"{results.scenario.name}: RPO over time, target {format_duration(target)}{note}"
    if not shown:
        fig = Figure(figsize=(12, 3), layout="constrained")
        ax = fig.add_subplot()
        ax.set_title(title, loc="left")
        no_data(ax, "no VM replicated: no RPO curve")
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
    scale, unit = duration_unit(max([top for top, _, _ in tops.values()], default=2.0 * target))

    fig = Figure(figsize=(12, 1.0 + 1.45 * len(shown)), layout="constrained")
    axes = fig.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(title, x=0.01, ha="left")
    for ax, name in zip(axes, shown, strict=True):
        t, r = data[name]
        ax.set_title(name, loc="left", fontsize="medium", pad=3)
        ax.axhline(target / scale, color=_P["black"], linestyle="--", linewidth=1.0, zorder=3, label="target")
        if len(t) == 0:
            ax.text(0.5, 0.5, "no RPO curve (never replicated in this run)", transform=ax.transAxes, ha="center",
                    va="center", color=GREY)
            ax.set_ylim(0, 2.0 * target / scale)
        else:
            a, b = _above_target(t, r, target)
            if len(a):
                add_spans(ax, rects(ta(a), ta(b), 0.0, 1.0), _OVER, alpha=0.35, zorder=1, label="above target",
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
        ax.grid(axis="both", color=LIGHT_GREY, linewidth=0.6)
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


# --- link usage ---------------------------------------------------------------------------------------


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
    ta = time_axis(results)
    link = results.link
    link = link[link["direction"] == direction]
    t = link["time"].to_numpy()
    cap_t, cap = _extend(t, link["capacity"].to_numpy() * 8 / 1e6, results.end)
    _, active = _extend(t, link["active"].to_numpy().astype(float), results.end)
    back_t, backlog = _backlog_curve(t, link["backlog"].to_numpy(), link["capacity"].to_numpy(), results.end)
    backlog = backlog / GIB

    tr = results.transfers
    init = tr[(tr["kind"] == "initial") & (tr["direction"] == "upload")]
    vms_with_initial = set(init["vm"].astype(str))
    shown, note = first_shown([n for n in vm_names(results) if n in vms_with_initial] or ["-"], max_vms, "VMs")

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
        color, style = SERIES[i % len(SERIES)], LINESTYLES[(i // len(SERIES)) % len(LINESTYLES)]
        xs: list[float] = []
        ys: list[float] = []
        done = 0.0
        for start, finish, size in mine[["started_at", "finished_at", "bytes"]].itertuples(index=False):
            xs.append(start)
            ys.append(done / GIB)
            if math.isnan(finish):  # still copying at the end of the run: progress unknown
                xs.append(results.end)
                ys.append(done / GIB)
                break
            done += size
            xs.append(finish)
            ys.append(done / GIB)
        ax_init.plot(ta(np.array(xs)), ys, color=color, linestyle=style, linewidth=1.6, label=name)
        if name in prot.index:
            ax_init.plot(ta(prot[name]), done / GIB, marker="o", color=color, markersize=5, zorder=3)
    ax_init.set_ylabel("copied (GiB)")
    ax_init.set_ylim(bottom=0)
    if vms_with_initial:
        handles, labels = ax_init.get_legend_handles_labels()
        handles.append(Line2D([], [], linestyle="none", marker="o", color=GREY, label="protected"))
        ax_init.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small",
                       frameon=False, title="VM", title_fontsize="small")
    else:
        no_data(ax_init, "no initial replication in this run")
    for ax in (ax_cap, ax_act, ax_init):
        ax.grid(color=LIGHT_GREY, linewidth=0.6)
        ax.set_axisbelow(True)
    ax_init.set_xlim(ta(0.0), ta(results.end))
    for ax in (ax_cap, ax_act, ax_init):
        ta.apply(ax, label=ax is ax_init)
    return fig
