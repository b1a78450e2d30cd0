"""The look shared by every figure: the colour-blind-safe palette, the colours of states and phases, and the
axis helpers (time axes, duration units, spans, metric names and units, objective lines).

Colours come from the Okabe-Ito palette (:data:`OKABE_ITO`), which stays distinguishable with the common forms
of colour blindness. Times on an x axis are calendar dates (site local) when the scenario has a ``start``, else
the time since the start in seconds, minutes, hours or days chosen from the span; sizes in GiB, rates in Mbit/s.

Also the windows of a run a figure may draw (``window=(start, end)``: seconds, durations or dates) and the bins
of min/max envelopes on the site's clock (:mod:`drsim.views.curves` computes them).

Imports matplotlib, numpy, pandas, :mod:`drsim.scenario.units`, :mod:`drsim.results.tables` and
:mod:`drsim.views.curves`; every figure module imports it, it imports no figure module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.ticker import Formatter, LogLocator

from drsim.results.tables import SITE
from drsim.scenario.units import DAY, HOUR, MINUTE, WEEK, format_duration, parse_duration
from drsim.views.curves import bin_edges, envelope_bin

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.transforms import Transform

    from drsim.results.tables import Results
    from drsim.scenario.document import Scenario

__all__ = ["OKABE_ITO", "STATE_COLORS", "HEALTH_HATCHES", "PHASE_COLORS", "LIGHT_GREY", "GREY", "SERIES",
           "LINESTYLES", "MIN_EDGE", "GIB", "MBIT", "SITE", "duration_unit", "TimeAxis", "time_axis", "time_label",
           "vm_names", "first_shown", "rects", "add_spans", "no_data", "PlainLogFormatter", "plain_log_ticks",
           "run_seconds", "run_window", "envelope_edges", "per_bin", "rows_near", "minmax_band",
           "metric_name", "metric_bounds", "is_duration", "objective_kind", "default_objective", "value_format",
           "axis_label", "objective_line"]

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
LIGHT_GREY = "#DDDDDD"
GREY = "#8C8C8C"

#: Colour of each lifecycle state in :func:`protection_timeline` (the order is the legend's).
STATE_COLORS: dict[str, str] = {
    "not_protected": LIGHT_GREY,
    "unsupported": GREY,
    "initial_replication": _P["sky_blue"],
    "protected": _P["bluish_green"],
    "down": _P["vermillion"],
    "failing_over": _P["orange"],
    "in_cloud": _P["blue"],
    "failback_sync": _P["reddish_purple"],
    "failing_back": _P["yellow"],
    "restoring": _P["black"],
    "resync": "#882255",  # Paul Tol's "wine" (his colour-blind-safe muted scheme): unprotected, not down
}
#: Hatch of the health levels overlaid on the timeline (normal is not drawn).
HEALTH_HATCHES: dict[str, str] = {"warning": "////", "critical": "xxxx"}
#: Colour of each incident phase in :func:`incident_waterfall`.
PHASE_COLORS: dict[str, str] = {
    "detection": _P["vermillion"],
    "decision": _P["orange"],
    "waiting to start": _P["yellow"],
    "failover": _P["blue"],
    "down until repair": GREY,
    "failback": _P["reddish_purple"],
}
#: Colours of series (one per VM, sweep value or point), in this order, then again with the next line style.
SERIES = [_P["blue"], _P["orange"], _P["bluish_green"], _P["vermillion"], _P["reddish_purple"], _P["sky_blue"],
          _P["black"], _P["yellow"]]
LINESTYLES = ["-", "--", ":", "-."]
MIN_EDGE = 0.8  # points: the edge drawn around spans, so that a span of a few minutes in a month stays visible
GIB = float(2**30)


# --- axes helpers ----------------------------------------------------------------------------------------


def duration_unit(span: float) -> tuple[float, str]:
    """(seconds per unit, unit name) to show durations up to ``span`` seconds with readable numbers."""
    if span <= 2 * MINUTE:
        return 1.0, "s"
    if span <= 2 * HOUR:
        return MINUTE, "min"
    if span <= 2 * DAY:
        return HOUR, "h"
    return DAY, "d"


@dataclass(frozen=True)
class TimeAxis:
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


def time_axis(results: Results) -> TimeAxis:
    start = results.scenario.start
    if start is not None:
        return TimeAxis(float(mdates.date2num(start)), DAY, "date and time (site local)")
    scale, unit = duration_unit(results.end)
    return TimeAxis(None, scale, f"time since start ({unit})")


def time_label(results: Results, seconds: float) -> str:
    """A point in time for a label: a calendar date when the scenario has one, else the time since the start."""
    start = results.scenario.start
    if start is not None:
        return (pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")).strftime("%d %b %H:%M")
    return "t = " + format_duration(seconds)


def vm_names(results: Results) -> list[str]:
    return [vm.name for _, vm in results.scenario.vms()]


def first_shown(names: Sequence[str], limit: int, what: str) -> tuple[list[str], str]:
    """The first ``limit`` names and a title suffix saying so when some are left out."""
    if limit < 1:
        raise ValueError(f"the number of {what} shown must be at least 1, got {limit}")
    shown = list(names[:limit])
    note = f" (first {len(shown)} of {len(names)} {what})" if len(names) > len(shown) else ""
    return shown, note


def rects(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray | float, y1: np.ndarray | float) -> np.ndarray:
    """Vertices of axis-aligned rectangles, shape (n, 4, 2)."""
    x0, x1 = np.asarray(x0, dtype=float), np.asarray(x1, dtype=float)
    y0, y1 = np.broadcast_to(y0, x0.shape).astype(float), np.broadcast_to(y1, x0.shape).astype(float)
    return np.stack([np.column_stack(p) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], axis=1)


def add_spans(ax: Axes, verts: np.ndarray, color: str, *, label: str, hatch: str | None = None,
           facecolor: str | None = None, alpha: float = 1.0, zorder: float = 2.0,
           transform: Transform | None = None, linewidth: float | None = None) -> PolyCollection:
    """Add rectangles as one collection, with an edge so that very short spans stay visible."""
    if linewidth is None:
        linewidth = MIN_EDGE if hatch is None else 0.4
    coll = PolyCollection(verts, facecolors=color if facecolor is None else facecolor, edgecolors=color,
                          linewidths=linewidth, hatch=hatch, alpha=alpha, zorder=zorder, label=label)
    if transform is not None:
        coll.set_transform(transform)
    ax.add_collection(coll, autolim=False)
    return coll


def no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=GREY)
    ax.set_yticks([])


class PlainLogFormatter(Formatter):
    """Tick labels of a logarithmic axis as plain numbers ("0.5", "10", "2,000"), never mathtext.

    Matplotlib's default log labels are mathtext (``$\\mathdefault{10^{2}}$``); the reports draw with
    ``text.parse_math`` off (names from a scenario are text), which would show them raw. Major ticks (the
    decades) are always labelled; minor ticks are labelled at 2 and 5 when the axis spans at most two decades,
    at every tick when it spans at most one (so that a short axis keeps a few labels)."""

    def __init__(self, minor: bool = False):
        self.minor = minor

    def __call__(self, x: float, pos: int | None = None) -> str:
        if not (x > 0 and math.isfinite(x)):
            return ""
        if self.minor:
            lo, hi = sorted(self.axis.get_view_interval()) if self.axis is not None else (1.0, 10.0)
            decades = math.log10(hi / lo) if lo > 0 else math.inf
            mantissa = round(x / 10 ** math.floor(math.log10(x) + 1e-9), 6)
            if decades > 2 or (decades > 1 and mantissa not in (2.0, 5.0)):
                return ""
        return f"{x:,.0f}" if x >= 1000 else f"{x:g}"


def plain_log_ticks(axis: Any) -> None:
    """Give a logarithmic ``axis`` (``ax.yaxis``, a colour bar's axis) decade ticks with plain labels
    (:class:`PlainLogFormatter`) and unlabelled or plainly labelled ticks in between."""
    axis.set_major_locator(LogLocator(base=10))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10)))
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter(minor=True))


# --- windows of a run and envelopes -----------------------------------------------------------------------

_BIN_NAMES = {HOUR: "hour", DAY: "day", WEEK: "week"}


def run_seconds(results: Results, value: Any) -> float:
    """A time of the run in seconds since its start: a number (seconds), a duration (``"16d2h"``) or, when the
    scenario has a ``start``, a date and time (``"2026-03-18 09:00"``, a datetime)."""
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            pass
    start = results.scenario.start
    if start is None:
        raise ValueError(f"the ends of a window are seconds or durations since the start (this scenario has no "
                         f"start date), got {value!r}")
    try:
        return float((pd.Timestamp(value) - pd.Timestamp(start)).total_seconds())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the ends of a window are seconds, durations or dates, got {value!r}") from exc


def run_window(results: Results, window: Sequence[Any] | None) -> tuple[float, float]:
    """(start, end) in seconds of a figure's ``window`` (two times of :func:`run_seconds`), cut to the run; the
    whole run when None."""
    if window is None:
        return 0.0, float(results.end)
    if isinstance(window, str) or len(window) != 2:
        raise ValueError(f"window must be (start, end), got {window!r}")
    a, b = (run_seconds(results, w) for w in window)
    a, b = max(a, 0.0), min(b, float(results.end))
    if not b > a:
        raise ValueError(f"the window {window!r} holds no time of the run (0 to {format_duration(results.end)})")
    return a, b


def envelope_edges(results: Results, start: float, end: float) -> tuple[np.ndarray, float]:
    """Envelope bin edges over [start, end] and the bin width, on the site's clock (whole hours, midnight,
    Monday midnight) when the scenario has a ``start``."""
    width = envelope_bin(end - start)
    phase = 0.0
    if results.scenario.start is not None:
        ts = pd.Timestamp(results.scenario.start)
        into = (ts - ts.normalize()).total_seconds() + (ts.dayofweek * DAY if width >= WEEK else 0.0)
        phase = (-into) % width
    return bin_edges(start, end, width, phase), width


def per_bin(width: float) -> str:
    """"per hour", "per day", "per 3 h": the bin of an envelope, for a title or a legend."""
    return "per " + _BIN_NAMES.get(width, format_duration(width))


def rows_near(x: np.ndarray, start: float, end: float) -> slice:
    """The rows of sorted ``x`` that draw [start, end]: those inside and one on each side."""
    return slice(max(int(np.searchsorted(x, start, side="left")) - 1, 0),
                 int(np.searchsorted(x, end, side="right")) + 1)


def minmax_band(ax: Axes, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, color: str, gid: str) -> None:
    """A min/max envelope over bins with edges ``x`` (``gid``: its top line; ``gid-band``: the band): the band
    between ``lo`` and ``hi``, and the maximum as a step line; NaN bins (no data) are left empty."""
    ax.fill_between(x, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color=color, alpha=0.35,
                    linewidth=0, zorder=2, gid=f"{gid}-band")
    ax.plot(x, np.append(hi, hi[-1]), drawstyle="steps-post", color=color, linewidth=0.9, zorder=2, gid=gid)


# --- metrics of experiments: names, units, objectives ------------------------------------------------------

MBIT = 1e6 / 8  # bytes/s per Mbit/s
METRIC_NAMES: dict[str, str] = {
    "rpo_mean_s": "mean RPO", "rpo_p95_s": "p95 RPO", "rpo_max_s": "max RPO",
    "data_loss_mean_s": "mean data loss", "data_loss_max_s": "max data loss",
    "rto_mean_s": "mean RTO", "rto_max_s": "max RTO", "downtime_s": "downtime",
    "protected_at": "protected after", "initial_replication_s": "initial replication",
    "drill_rto_mean_s": "mean drill RTO", "availability": "availability", "rpo_over_target": "time over RPO target",
    "rto_met": "RTO met (share of replications)", "rpo_met": "RPO met (share of replications)",
    "protected": "protected (share of replications)", "incidents": "incidents", "drills": "drills",
    "cycles_sent": "cycles sent", "cycles_missed": "cycles missed", "bytes_written": "bytes written",
    "bytes_sent": "bytes sent", "initial_bytes": "initial copy", "resyncs": "resyncs", "resync_s": "time in resync",
}
SHARES = {"availability", "rpo_over_target", "rto_met", "rpo_met", "protected"}


def metric_bounds(metric: str) -> tuple[float, float]:
    """The values a metric can take (in its own units): every summary metric is at least 0 (durations, counts,
    sizes, shares) and a share at most 1, so a confidence interval drawn past them is cut there."""
    return 0.0, 1.0 if metric in SHARES else math.inf


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def is_duration(metric: str) -> bool:
    return metric.endswith("_s") or metric == "protected_at"


def objective_kind(metric: str) -> str | None:
    """Which objective applies to a duration metric: ``rpo`` (RPO, data loss), ``rto`` (RTO, downtime) or None."""
    if not is_duration(metric):
        return None
    if metric.startswith(("rpo_", "data_loss_")):
        return "rpo"
    if metric.startswith(("rto_", "downtime", "drill_rto")):
        return "rto"
    return None


def default_objective(scenario: Scenario, metric: str) -> float | None:
    kind = objective_kind(metric)
    return None if kind is None else float(getattr(scenario.objectives, kind))


def value_format(metric: str, values: np.ndarray) -> tuple[float, str, Callable[[float], str]]:
    """(divisor, unit shown on the axis, formatter of one value in human units) for a metric."""
    finite = values[np.isfinite(values)]
    top = float(np.abs(finite).max()) if len(finite) else 0.0
    if is_duration(metric):
        scale, unit = duration_unit(top)
        return scale, unit, lambda v: "-" if not math.isfinite(v) else format_duration(v)
    if metric in SHARES:
        return 0.01, "%", lambda v: "-" if not math.isfinite(v) else f"{v:.1%}" if metric != "availability" \
            else f"{v:.3%}"
    if metric.startswith("bytes") or metric.endswith("_bytes"):
        return GIB, "GiB", lambda v: "-" if not math.isfinite(v) else f"{v / GIB:.3g} GiB"
    return 1.0, "", lambda v: "-" if not math.isfinite(v) else f"{v:.3g}"


def axis_label(metric: str, unit: str, vm: str) -> str:
    who = "site" if vm == SITE else vm
    return f"{metric_name(metric)}, {who}" + (f" ({unit})" if unit else "")


def objective_line(ax: Axes, value: float, scale: float, *, vertical: bool, label: str) -> None:
    kw = dict(color=_P["black"], linestyle="--", linewidth=1.2, label=label, gid="objective", zorder=3)
    if vertical:
        ax.axvline(value / scale, **kw)
    else:
        ax.axhline(value / scale, **kw)
