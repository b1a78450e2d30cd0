"""Figures of one run's RPO: :func:`rpo_over_time` (the RPO of each VM against the RPO target: the exact
sawtooth, or its min/max envelope per hour or day when the run is too long to draw tooth by tooth),
:func:`rpo_detail` (the exact sawtooth around the worst moment) and :func:`worst_window` (where that is).

Detail on demand: ``rpo_over_time(results, window=(start, end))`` and ``link_usage(results, window=...)``
(:mod:`drsim.views.link_figures`) draw the exact curves of any window (times in seconds since the start,
durations like ``"16d2h"``, or dates when the scenario has a ``start``); ``worst_window(results)`` is the hour
around the highest RPO after start-up.

The figures take a :class:`drsim.Results` and return a :class:`matplotlib.figure.Figure` built with the object
API (nothing is shown or registered with pyplot). Imports matplotlib, numpy, :mod:`drsim.scenario.units` and the
views' :mod:`~drsim.views.style`, :mod:`~drsim.views.curves` and :mod:`~drsim.views.selection`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from drsim.scenario.units import HOUR, format_duration, parse_duration
from drsim.views.curves import DETAIL_LIMIT, above_target, bin_extremes, rpo_runs, window_around_peak, worst_piece
from drsim.views.selection import rpo_choice
from drsim.views.style import (
    GREY,
    LIGHT_GREY,
    OKABE_ITO,
    add_spans,
    duration_unit,
    envelope_edges,
    first_shown,
    minmax_band,
    no_data,
    per_bin,
    rects,
    run_window,
    time_axis,
    time_label,
    vm_names,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from drsim.results.tables import Results
    from drsim.views.style import TimeAxis

__all__ = ["rpo_over_time", "rpo_detail", "worst_window", "drawn_as_envelope"]

_P = OKABE_ITO
_CURVE = _P["blue"]  # the RPO curve
_OVER = _P["vermillion"]  # time above the RPO target


# --- curves ----------------------------------------------------------------------------------------------


def _curves(results: Results) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each VM's RPO rows (times, values), two per piece; only VMs with a curve."""
    rpo = results.rpo
    codes = rpo["vm"].cat.codes.to_numpy()
    categories = list(rpo["vm"].cat.categories)
    times, values = rpo["time"].to_numpy(), rpo["rpo"].to_numpy()
    bounds = np.searchsorted(codes, np.arange(len(categories) + 1))  # rows are sorted by VM
    return {name: (times[a:b], values[a:b]) for name, a, b in zip(categories, bounds[:-1], bounds[1:], strict=True)
            if b > a}


def _in_window(t: np.ndarray, r: np.ndarray, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """The pieces (row pairs) that overlap [start, end]."""
    keep = np.repeat((t[1::2] > start) & (t[0::2] < end), 2)
    return t[keep], r[keep]


# --- RPO over time -----------------------------------------------------------------------------------------


def worst_window(results: Results, vm: str | None = None, width: float | str = HOUR) -> tuple[float, float]:
    """(start, end), seconds since the start, of the window around the highest RPO after start-up of ``vm`` (default:
    the VM where it is highest): centred on the whole time above the RPO target around that peak (or on the peak's
    piece when it stays below the target), ``width`` long (an hour by default) or 1.5 times that time when longer.
    After start-up: each stretch of the curve is counted from the moment the VM caught up after starting or coming
    back (:func:`drsim.views.curves.steady_pieces`). Pass it as ``window=`` to :func:`rpo_over_time` or
    :func:`link_usage`."""
    curves = _curves(results)
    pool = curves
    if vm is not None:
        if vm not in vm_names(results):
            raise ValueError(f"unknown VM {vm!r}; the run has: {', '.join(vm_names(results))}")
        pool = {vm: curves[vm]} if vm in curves else {}
    target = float(results.scenario.objectives.rpo)
    peaks = {n: float(r[2 * k + 1]) for n, (t, r) in pool.items() if (k := worst_piece(t, r, target)) is not None}
    if not peaks:
        raise ValueError(f"no RPO curve{' for ' + vm if vm else ''}: nothing to zoom on")
    name = max(peaks, key=lambda n: peaks[n])  # the first in scenario order on a tie
    t, r = curves[name]
    return window_around_peak(t, r, float(results.end), target, parse_duration(width))


def rpo_detail(results: Results, vms: Sequence[str] | None = None, max_vms: int = 4,
               width: float | str = HOUR) -> Figure:
    """The exact RPO sawtooth in the window of :func:`worst_window` (an hour around the highest RPO after
    start-up), for the VM it belongs to and the VMs with the highest RPO in that window (``max_vms`` in all), or
    for ``vms``: the detail that :func:`rpo_over_time` summarises as an envelope over a long run."""
    if vms is None:
        start, end = worst_window(results, None, width)
        inside = {n: _in_window(t, r, start, end)[1] for n, (t, r) in _curves(results).items()}
        peak = {n: float(r.max()) for n, r in inside.items() if len(r)}
        vms = sorted(peak, key=lambda n: -peak[n])[:max_vms]  # the worst VM first: its peak is the highest
    else:
        vms = [vms] if isinstance(vms, str) else list(vms)
        start, end = worst_window(results, vms[0], width)
    return _rpo_figure(results, vms, max_vms, (start, end), False, "the worst RPO after start-up in detail")


def rpo_over_time(results: Results, vms: Sequence[str] | None = None, max_vms: int = 12, *,
                  window: Sequence[Any] | None = None, envelope: bool | None = None) -> Figure:
    """The RPO curve of each VM (``results.rpo``), one panel per VM, against the RPO target.

    Exact drawing: the RPO (y, in seconds, minutes, hours or days chosen from the values) is drawn piece by
    piece; it grows with slope 1 and drops when a recovery point arrives; it is not drawn where the VM was not
    replicating (before protection, down, in the cloud). Envelope: when a panel would hold more than
    :data:`~drsim.views.curves.DETAIL_LIMIT` pieces (a month at a 5-minute interval holds 8,640, which render
    as a solid block), the exact minimum and maximum of the RPO per hour (per day, or another bin chosen from
    the span, :func:`~drsim.views.curves.envelope_bin`) are drawn as a band with its top as a line; the title
    says so. ``envelope`` forces one (True) or the other (False); ``window=(start, end)`` (seconds or
    durations since the start, or dates) draws that window only, usually exactly: see :func:`worst_window` and
    :func:`rpo_detail` for the detail around the worst moment.

    The dashed line is ``scenario.objectives.rpo``; shading marks the exact times the RPO was above it (in both
    modes). A rare peak far above the usual level (e.g. right after the initial replication) is cut at the top of
    the panel and its value written in the panel. ``vms`` selects VMs by name (the first ``max_vms`` drawn);
    by default every VM with an RPO curve, and when more than ``max_vms`` have one the worst are drawn, worst
    first (the most time above the target after start-up, then incidents, then the highest RPO after start-up:
    :func:`drsim.views.selection.rpo_choice`), and the title says how many are left out and how they fared.
    """
    return _rpo_figure(results, vms, max_vms, window, envelope, "RPO over time")


def drawn_as_envelope(results: Results, vms: Sequence[str] | None = None, max_vms: int = 12) -> bool:
    """Whether :func:`rpo_over_time` (these arguments, the whole run) draws envelopes rather than the sawtooth: a
    report then adds :func:`rpo_detail`."""
    shown, _, curves = _shown(results, vms, max_vms)
    return max([len(curves[n][0]) // 2 for n in shown if n in curves], default=0) > DETAIL_LIMIT


def _shown(results: Results, vms: Sequence[str] | None,
           max_vms: int) -> tuple[list[str], str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The VMs an RPO figure shows, the note saying which are left out (title lines), and every VM's curve."""
    names = vm_names(results)
    curves = _curves(results)
    if vms is None:
        candidates = [n for n in names if n in curves]
        choice = rpo_choice(results, candidates, max_vms)
        shown, note = choice.ordered(candidates), choice.title(160)
    else:
        candidates = [vms] if isinstance(vms, str) else list(vms)
        unknown = [v for v in candidates if v not in names]
        if unknown:
            raise ValueError(f"unknown VM(s) {', '.join(map(repr, unknown))}; the run has: {', '.join(names)}")
        shown, note = first_shown(candidates, max_vms, "VMs")
        note = "\n" + note.strip(" ()") if note else ""
    return shown, note, curves


def _rpo_figure(results: Results, vms: Sequence[str] | None, max_vms: int, window: Sequence[Any] | None,
                envelope: bool | None, heading: str) -> Figure:
    """:func:`rpo_over_time` and :func:`rpo_detail`, titled ``heading``."""
    target = float(results.scenario.objectives.rpo)
    shown, note, curves = _shown(results, vms, max_vms)
    start, end = run_window(results, window)
    ta = time_axis(results)
    data = {n: _in_window(*curves[n], start, end) if n in curves else (np.empty(0), np.empty(0)) for n in shown}
    pieces = max([len(t) // 2 for t, _ in data.values()], default=0)
    use_envelope = pieces > DETAIL_LIMIT if envelope is None else bool(envelope)
    edges, width = envelope_edges(results, start, end) if use_envelope else (None, 0.0)
    title = f"{results.scenario.name}: {heading}, target {format_duration(target)}"
    if window is not None:
        title += f", {time_label(results, start)} to {time_label(results, end)}"
    if use_envelope:
        title += f", min to max {per_bin(width)} ({pieces:,} teeth per VM: too many to draw one by one)"
    title += note
    if not shown:
        fig = Figure(figsize=(12, 3), layout="constrained")
        ax = fig.add_subplot()
        ax.set_title(title, loc="left")
        no_data(ax, "no VM replicated: no RPO curve")
        ax.set_xlim(ta(start), ta(end))
        ta.apply(ax)
        return fig

    tops = {}
    for name, (_, r) in data.items():
        if len(r):
            stats = results.rpo_stats(name)
            peak = float(r.max())
            top = peak * 1.05 if window is not None else min(peak * 1.05, max(2.0 * target, 1.5 * stats.p95))
            tops[name] = (max(top, 1.25 * target), peak, stats)  # the target in view
    scale, unit = duration_unit(max([top for top, _, _ in tops.values()], default=2.0 * target))

    fig = Figure(figsize=(12, 1.0 + 1.45 * len(shown) + 0.25 * title.count("\n")), layout="constrained")
    axes = fig.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(title, x=0.01, ha="left", fontsize="medium")
    for ax, name in zip(axes, shown, strict=True):
        t, r = data[name]
        ax.set_title(name, loc="left", fontsize="medium", pad=3)
        ax.axhline(target / scale, color=_P["black"], linestyle="--", linewidth=1.0, zorder=3, label="target")
        if len(t) == 0:
            ax.text(0.5, 0.5, "no RPO curve (never replicated in this run)" if name not in curves else
                    "not replicating in this window", transform=ax.transAxes, ha="center", va="center", color=GREY)
            ax.set_ylim(0, 2.0 * target / scale)
        else:
            _draw_rpo(ax, ta, t, r, target, scale, edges)
            top, peak, stats = tops[name]
            ax.set_ylim(0, top / scale)
            info = (f"over its protected time: mean {format_duration(stats.mean)} · p95 "
                    f"{format_duration(stats.p95)} · above target {stats.over_target:.1%}")
            if peak > top * 1.001:
                info += f" · peak {format_duration(peak)} (off scale)"
            ax.set_title(info, loc="right", fontsize="small", pad=3)
        ax.set_ylabel(f"RPO ({unit})")
        ax.grid(axis="both", color=LIGHT_GREY, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_xlim(ta(start), ta(end))
    for ax in axes:
        ta.apply(ax, label=ax is axes[-1])
    curve = (Patch(facecolor=_CURVE, alpha=0.35, edgecolor=_CURVE, label=f"RPO, min to max {per_bin(width)}")
             if use_envelope else Line2D([], [], color=_CURVE, linewidth=1.2,
                                         label="RPO (time since the newest recovery point)"))
    handles = [curve, Line2D([], [], color=_P["black"], linestyle="--", label=f"target {format_duration(target)}"),
               Patch(facecolor=_OVER, alpha=0.3, edgecolor=_OVER, label="above target")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize="small")
    return fig


def _draw_rpo(ax: Axes, ta: TimeAxis, t: np.ndarray, r: np.ndarray, target: float, scale: float,
              edges: np.ndarray | None) -> None:
    """One VM's RPO in a panel: the time above the target shaded, and the curve exactly (``edges`` None) or as
    its min/max envelope over the bins of ``edges``."""
    a, b = above_target(t, r, target)
    if len(a):
        add_spans(ax, rects(ta(a), ta(b), 0.0, 1.0), _OVER, alpha=0.35, zorder=1, label="above target",
                  transform=ax.get_xaxis_transform(), linewidth=1.2)
    if edges is None:
        segs = [np.column_stack((ta(run[:, 0]), run[:, 1] / scale)) for run in rpo_runs(t, r)]
        ax.add_collection(LineCollection(segs, colors=_CURVE, linewidths=0.9, zorder=2, label="RPO", gid="rpo"),
                          autolim=False)
        return
    lo, hi = bin_extremes(t[0::2], t[1::2], r[0::2], r[1::2], edges)
    minmax_band(ax, ta(edges), lo / scale, hi / scale, _CURVE, gid="rpo-envelope")
