"""The figure of a run's link: :func:`link_usage` (capacity, backlog and active transfers in one direction, and
the initial replication's progress). Over a long run the backlog and the active transfers are drawn as their
exact min/max per hour (or day...), as the RPO is in :mod:`drsim.views.replication_figures`; ``window=`` draws
any window exactly (e.g. :func:`drsim.views.replication_figures.worst_window`, the worst RPO's hour).

Takes a :class:`drsim.Results` and returns a :class:`matplotlib.figure.Figure` built with the object API (nothing
is shown or registered with pyplot). Imports matplotlib, numpy and the views' :mod:`~drsim.views.style`,
:mod:`~drsim.views.curves` and :mod:`~drsim.views.selection`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from drsim.views.curves import DETAIL_LIMIT, backlog_curve, bin_extremes, step_pieces
from drsim.views.selection import initial_choice
from drsim.views.style import (
    GIB,
    GREY,
    LIGHT_GREY,
    LINESTYLES,
    OKABE_ITO,
    SERIES,
    envelope_edges,
    minmax_band,
    no_data,
    per_bin,
    rows_near,
    run_window,
    time_axis,
    time_label,
    vm_names,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from drsim.results.tables import Results
    from drsim.views.style import TimeAxis

__all__ = ["link_usage"]

_P = OKABE_ITO


def _extend(t: np.ndarray, v: np.ndarray, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Step data held to the end of the run."""
    if len(t) and t[-1] < end:
        return np.append(t, end), np.append(v, v[-1])
    return t, v


def _changes(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step data without the records that repeat the value before them (the same curve, fewer points)."""
    keep = np.r_[True, v[1:] != v[:-1]] if len(v) else np.zeros(0, dtype=bool)
    return t[keep], v[keep]


def link_usage(results: Results, direction: str = "upload", max_vms: int = 12, *,
               window: Sequence[Any] | None = None, envelope: bool | None = None) -> Figure:
    """The site's link in one ``direction`` over the run, and the initial replication's progress.

    Top: payload capacity in Mbit/s (the ``capacity`` column of ``results.link``: bytes/s after protocol
    overhead, before compression; 0 while the link is down), and on the right axis the backlog, GiB on the
    wire still to send for the active transfers. Middle: number of active transfers. When that number changes
    more than :data:`~drsim.views.curves.DETAIL_LIMIT` times in view, the backlog and the active transfers
    are drawn as their exact min/max per hour (or per day...: a band, its top as a line), as in
    :func:`rpo_over_time`; ``envelope`` forces one mode, ``window=(start, end)`` draws a window (e.g.
    :func:`worst_window`) without the bottom panel. Bottom: cumulative bytes (GiB, before compression) of each
    VM's initial replication (``results.transfers`` of kind ``initial``); with more than ``max_vms`` VMs, the last
    to be protected (a note says how many are left out); each disk copy is drawn as a straight line from its start
    to its end (the fair share varies in between; the end points are exact); a dot marks when the VM became
    protected (after the catch-up delta). The x axis is calendar time or the time since the start.
    """
    if direction not in ("upload", "download"):
        raise ValueError(f"direction must be 'upload' or 'download', got {direction!r}")
    start, end = run_window(results, window)
    ta = time_axis(results)
    link = results.link
    link = link[link["direction"] == direction]
    t = link["time"].to_numpy()
    capacity = link["capacity"].to_numpy()
    cap_t, cap = _extend(*_changes(t, capacity * 8 / 1e6), results.end)
    act_t, active = _extend(*_changes(t, link["active"].to_numpy().astype(float)), results.end)
    back_t, backlog = backlog_curve(t, link["backlog"].to_numpy(), capacity, results.end)
    backlog = backlog / GIB
    steps = int(np.searchsorted(act_t, end, side="right") - np.searchsorted(act_t, start, side="left"))
    use_envelope = steps > DETAIL_LIMIT if envelope is None else bool(envelope)
    edges, width = envelope_edges(results, start, end) if use_envelope else (None, 0.0)

    panels = 2 if window is not None else 3
    fig = Figure(figsize=(12, 8 if panels == 3 else 5.5), layout="constrained")
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [2.2, 1, 2.2][:panels]})[:, 0]
    ax_cap, ax_act = axes[0], axes[1]
    title = f"{results.scenario.name}: {direction} link usage"
    if window is not None:
        title += f", {time_label(results, start)} to {time_label(results, end)}"
    if use_envelope:
        title += f", backlog and transfers min to max {per_bin(width)}"
    fig.suptitle(title, x=0.01, ha="left")

    near = rows_near(cap_t, start, end)
    ax_cap.plot(ta(cap_t[near]), cap[near], drawstyle="steps-post", color=_P["blue"], linewidth=1.4,
                label="payload capacity")
    ax_cap.set_ylabel("capacity (Mbit/s)", color=_P["blue"])
    ax_cap.set_ylim(0, max(float(cap.max()) if len(cap) else 1.0, 1e-9) * 1.15)
    ax_back = ax_cap.twinx()
    near = rows_near(back_t, start, end)
    bx, by = back_t[near], backlog[near]
    if edges is None:
        ax_back.fill_between(ta(bx), by, color=_P["orange"], alpha=0.35, linewidth=0, label="backlog")
        ax_back.plot(ta(bx), by, color=_P["orange"], linewidth=0.8, gid="backlog")
        top = float(by.max()) if len(by) else 0.0
    else:
        _, hi = bin_extremes(bx[:-1], bx[1:], by[:-1], by[1:], edges)
        minmax_band(ax_back, ta(edges), np.zeros_like(hi), hi, _P["orange"], gid="backlog-envelope")
        top = float(np.nanmax(hi)) if np.isfinite(hi).any() else 0.0
    ax_back.set_ylabel("backlog (GiB on the wire)", color=_P["orange"])
    ax_back.set_ylim(0, max(top, 1e-3) * 1.1)
    ax_cap.set_zorder(ax_back.get_zorder() + 1)  # the capacity line above the backlog area
    ax_cap.patch.set_visible(False)
    ax_cap.set_title("capacity and backlog", loc="left", fontsize="medium")
    ax_cap.legend(handles=[Line2D([], [], color=_P["blue"], linewidth=1.4, label="payload capacity (Mbit/s)"),
                           Patch(facecolor=_P["orange"], alpha=0.35, label="backlog (GiB on the wire, right axis)")],
                  loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize="small", frameon=False,
                  borderaxespad=0.2)

    near = rows_near(act_t, start, end)
    if edges is None:
        ax_act.plot(ta(act_t[near]), active[near], drawstyle="steps-post", color=_P["bluish_green"], linewidth=0.9,
                    gid="active")
        most = float(active[near].max()) if len(active[near]) else 0.0
    else:
        t0, t1, v = step_pieces(act_t[near], active[near], results.end)
        lo, hi = bin_extremes(t0, t1, v, v, edges)
        minmax_band(ax_act, ta(edges), lo, hi, _P["bluish_green"], gid="active-envelope")
        most = float(np.nanmax(hi)) if np.isfinite(hi).any() else 0.0
    ax_act.set_ylabel("transfers")
    ax_act.set_ylim(0, max(most, 1.0) * 1.15)
    ax_act.yaxis.get_major_locator().set_params(integer=True)
    ax_act.set_title("active transfers" + (f" (min to max {per_bin(width)})" if edges is not None else ""),
                     loc="left", fontsize="medium")
    if panels == 3:
        _initial_progress(results, axes[2], ta, max_vms)
    for ax in axes:
        ax.grid(color=LIGHT_GREY, linewidth=0.6)
        ax.set_axisbelow(True)
    axes[-1].set_xlim(ta(start), ta(end))
    for ax in axes:
        ta.apply(ax, label=ax is axes[-1])
    return fig


def _initial_progress(results: Results, ax: Axes, ta: TimeAxis, max_vms: int) -> None:
    """The bottom panel of :func:`link_usage`: each shown VM's initial replication, GiB copied over time."""
    tr = results.transfers
    init = tr[(tr["kind"] == "initial") & (tr["direction"] == "upload")]
    with_initial = set(init["vm"].astype(str))
    st = results.states
    prot = st[st["state"] == "protected"].groupby("vm", observed=True)["start"].min()
    prot.index = prot.index.astype(str)
    candidates = [n for n in vm_names(results) if n in with_initial]
    choice = initial_choice(prot, candidates, max_vms, lambda s: time_label(results, s))
    ax.set_title("initial replication progress" + choice.title(150), loc="left",
                 fontsize="medium")
    for i, name in enumerate(choice.ordered(candidates)):
        mine = init[init["vm"] == name].sort_values("started_at")
        color, style = SERIES[i % len(SERIES)], LINESTYLES[(i // len(SERIES)) % len(LINESTYLES)]
        xs: list[float] = []
        ys: list[float] = []
        done = 0.0
        for begin, finish, size in mine[["started_at", "finished_at", "bytes"]].itertuples(index=False):
            xs.append(begin)
            ys.append(done / GIB)
            if math.isnan(finish):  # still copying at the end of the run: progress unknown
                xs.append(results.end)
                ys.append(done / GIB)
                break
            done += size
            xs.append(finish)
            ys.append(done / GIB)
        ax.plot(ta(np.array(xs)), ys, color=color, linestyle=style, linewidth=1.6, label=name)
        if name in prot.index:
            ax.plot(ta(prot[name]), done / GIB, marker="o", color=color, markersize=5, zorder=3)
    ax.set_ylabel("copied (GiB)")
    ax.set_ylim(bottom=0)
    if candidates:
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], linestyle="none", marker="o", color=GREY, label="protected"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False,
                  title="VM", title_fontsize="small")
    else:
        no_data(ax, "no initial replication in this run")
