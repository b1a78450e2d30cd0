"""Figures of one run told along each VM's life: :func:`protection_timeline` (one row per VM: lifecycle states,
health, failures and drills) and :func:`incident_waterfall` (each incident's phases, from the failure to the end
of its failback).

Both take a :class:`drsim.Results` and return a :class:`matplotlib.figure.Figure` built with the object API
(nothing is shown or registered with pyplot). Imports matplotlib, pandas, :mod:`drsim.scenario.units`
and :mod:`drsim.views.style`.
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from drsim.scenario.units import HOUR, format_duration
from drsim.views.selection import incident_choice, timeline_choice
from drsim.views.style import (
    GREY,
    HEALTH_HATCHES,
    LIGHT_GREY,
    MIN_EDGE,
    OKABE_ITO,
    PHASE_COLORS,
    STATE_COLORS,
    add_spans,
    duration_unit,
    no_data,
    rects,
    time_axis,
    time_label,
    vm_names,
)

if TYPE_CHECKING:
    from drsim.results.tables import Results

__all__ = ["protection_timeline", "incident_waterfall"]

_P = OKABE_ITO


# --- protection timeline ------------------------------------------------------------------------------


def protection_timeline(results: Results, max_rows: int = 30) -> Figure:
    """Lifecycle of every VM over the run: one row per VM, in scenario order. With more than ``max_rows`` VMs, the
    worst are shown (still in scenario order, so that the VMs of a host stay together): never protected,
    unsupported, then by incidents, downtime, worst health and time above the RPO target after start-up
    (:func:`drsim.views.selection.timeline_choice`); the title says how many are left out and how they fared.

    Coloured spans are the states of ``results.states`` (not protected, initial replication, protected, down,
    failing over, in cloud, failback sync, failing back, restoring, resync, unsupported); hatching over a span is the
    health reported while replicating (``results.health``: warning ``////``, critical ``xxxx``). A down triangle
    above a row marks a failure (``results.incidents.failed_at``), a diamond a test-failover drill (the start of
    its ``running`` step in ``results.operations``). The x axis is calendar time (site local) when the scenario
    has a ``start``, else the time since the start in minutes, hours or days.
    """
    names = vm_names(results)
    choice = timeline_choice(results, max_rows)
    shown, note = [n for n in names if n in set(choice.shown)], choice.title(115)  # rows in scenario order
    row = {name: i for i, name in enumerate(shown)}
    ta = time_axis(results)
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
        verts = rects(ta(st["start"].to_numpy()[sel]), ta(st["end"].to_numpy()[sel]), y - half, y + half)
        label = state.replace("_", " ")
        add_spans(ax, verts, color, label=label)
        handles.append(Patch(facecolor=color, edgecolor=color, label=label))

    he = results.health
    he = he[he["vm"].isin(shown)]
    hy = he["vm"].astype(str).map(row).to_numpy(dtype=float)
    for level, hatch in HEALTH_HATCHES.items():
        sel = (he["health"] == level).to_numpy()
        if not sel.any():
            continue
        y = hy[sel]
        verts = rects(ta(he["start"].to_numpy()[sel]), ta(he["end"].to_numpy()[sel]), y - half, y + half)
        add_spans(ax, verts, _P["black"], facecolor="none", hatch=hatch, label=f"health {level}", zorder=3)
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
    ax.grid(axis="x", color=LIGHT_GREY, linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    if not shown:
        no_data(ax, "no VMs")
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7), frameon=False,
                   fontsize="small")
    return fig


# --- incident waterfall -------------------------------------------------------------------------------

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
    """Each incident's phases as consecutive bars (one row per incident, in time order; with more than
    ``max_incidents``, the longest outages: never restored first, then by RTO and data loss, the title saying
    how many are left out and their longest RTO and data loss).

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
        no_data(ax, "no incidents in this run")
        ax.set_axis_off()
        return fig
    choice = incident_choice(inc, max_incidents)
    inc = inc.iloc[sorted(choice.shown)]  # in time order
    note = choice.title(125)
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
    o_scale, o_unit = duration_unit(out_max)
    b_scale, b_unit = duration_unit(back_max)
    height = 0.6
    used: dict[str, str] = {}
    for i, ((out, back), r) in enumerate(rows):
        for ax, bars, scale in ((ax_out, out, o_scale), (ax_back, back, b_scale)):
            for phase, a, b in bars:
                color = PHASE_COLORS[phase]
                ax.barh(i, (b - a) / scale, left=a / scale, height=height, color=color, edgecolor=color,
                        linewidth=MIN_EDGE, gid=f"incident-{i}", zorder=2)
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
                         fontsize="small", color=GREY)

    labels = [f"{r['vm']} · {r['kind']} · {time_label(results, r['failed_at'])}" for _, r in rows]
    ax_out.set_yticks(range(n), labels)
    ax_out.set_ylim(n - 0.5, -0.5)
    ax_out.set_xlim(0, out_max / o_scale * 1.75)  # room for the text
    ax_back.set_xlim(0, back_max / b_scale * 2.4)
    ax_out.set_xlabel(f"time since failure ({o_unit})")
    ax_back.set_xlabel(f"time since failback start ({b_unit})")
    for ax in (ax_out, ax_back):
        ax.grid(axis="x", color=LIGHT_GREY, linewidth=0.6)
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
