"""Figures of the annual risk of a scenario (:func:`drsim.risk`), drawn with matplotlib's object API.

==========================  ======================================================================
function                    shows
==========================  ======================================================================
:func:`exceedance_curve`    the annual probability of losing more than x of data, against x (log scales),
                            per VM and for the site, with the 95 % interval of the site's curve
:func:`nines_by_vm`         availability per VM and for the site, as nines, with 95 % intervals
==========================  ======================================================================

Each returns a :class:`matplotlib.figure.Figure`; colours are the Okabe-Ito palette of :mod:`drsim.views.figures`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from drsim.scenario.units import DAY, HOUR, MINUTE, WEEK, format_duration
from drsim.views.figures import OKABE_ITO

if TYPE_CHECKING:
    from drsim.experiments.risk import Risk

__all__ = ["exceedance_curve", "nines_by_vm"]

SITE = "(site)"
_SERIES = [OKABE_ITO[c] for c in ("blue", "orange", "bluish_green", "vermillion", "reddish_purple", "sky_blue",
                                  "yellow")]
_STYLES = ["-", "--", ":", "-."]
_TICKS = [10.0, MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 6 * HOUR, DAY, WEEK, 30 * DAY]


def exceedance_curve(result: Risk, max_vms: int = 12) -> Figure:
    """P(a year holds a data loss above x) against x, log-log: the site (black, with its 95 % band) and up to
    ``max_vms`` VMs; the RPO target, 1 h and 1 d are marked. A curve stops where its probability is zero (under the
    conditional estimator: beyond the largest RPO of the steady state)."""
    ex = result.exceedance
    fig = Figure(figsize=(9, 5.2), layout="constrained")
    ax = fig.add_subplot()
    site = ex[ex["vm"] == SITE].sort_values("x_s")
    positive = ex.loc[ex["p"] > 0, "p"]
    floor = max(float(positive.min()) / 3, 1e-9) if len(positive) else 1e-6
    x = site["x_s"].to_numpy()
    ax.fill_between(x, np.maximum(site["low"].to_numpy(), floor), np.maximum(site["high"].to_numpy(), floor),
                    where=site["high"].to_numpy() > 0, color="#BBBBBB", alpha=0.6, lw=0, label="site, 95 % interval")
    names = [n for n in dict.fromkeys(ex["vm"]) if n != SITE]
    for i, name in enumerate(names[:max_vms]):
        vm = ex[ex["vm"] == name].sort_values("x_s")
        p = vm["p"].to_numpy()
        ax.plot(vm["x_s"].to_numpy()[p > 0], p[p > 0], color=_SERIES[i % len(_SERIES)],
                ls=_STYLES[(i // len(_SERIES)) % len(_STYLES)], lw=1.4, label=name)
    p = site["p"].to_numpy()
    ax.plot(x[p > 0], p[p > 0], color="black", lw=2.4, label="site (any VM)")
    rpo = result.scenario.objectives.rpo
    for value, label in ((rpo, f"RPO target {format_duration(rpo)}"), (HOUR, "1 h"), (DAY, "1 d")):
        ax.axvline(value, color=OKABE_ITO["vermillion"] if value == rpo else "#888888", lw=1, ls="--")
        ax.annotate(label, (value, 1), xycoords=("data", "axes fraction"), xytext=(-3, -4), rotation=90,
                    ha="right", va="top", textcoords="offset points", fontsize=8, color="#444444")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x.min(), x.max())
    top = float(np.nanmax(ex["high"])) if len(ex) else 1.0
    low_y, high_y = floor, min(1.0, max(top, floor * 10)) * 1.5
    ax.set_ylim(low_y, high_y)
    decades = [10.0**k for k in range(math.floor(math.log10(low_y)), 1) if low_y <= 10.0**k <= high_y]
    ax.set_yticks(decades)
    ax.set_yticklabels([_percent(d) for d in decades])
    ax.set_xticks([t for t in _TICKS if x.min() <= t <= x.max()])
    ax.set_xticklabels([format_duration(t) for t in _TICKS if x.min() <= t <= x.max()])
    ax.minorticks_off()
    ax.set_xlabel("data loss x (time since the newest usable recovery point)")
    ax.set_ylabel("P(a year holds a loss above x)")
    ax.grid(True, which="major", color="#E5E5E5")
    more = f" (first {max_vms} VMs)" if len(names) > max_vms else ""
    ax.set_title(f"{result.scenario.name}: annual probability of losing more than x{more}; "
                 f"{result.replications} x {result.years} years, {result.method}", fontsize=10)
    ax.legend(fontsize=8, loc="lower left", ncols=2)
    return fig


def _percent(p: float) -> str:
    """A power of ten as a percentage: 1 -> 100%, 0.001 -> 0.1%, 1e-6 -> 0.0001%."""
    digits = max(0, -round(math.log10(p * 100)))
    return f"{100 * p:.{digits}f}%"


def nines_by_vm(result: Risk, max_vms: int = 30) -> Figure:
    """Availability per VM and for the site as nines (-log10 of the unavailability) with 95 % intervals; the
    downtime per year is written beside each bar."""
    f = result.figures
    nines = f[f["metric"] == "nines"].set_index("vm")
    down = f[f["metric"] == "downtime_per_year_s"].set_index("vm")["value"]
    names = [n for n in dict.fromkeys(f["vm"]) if n != SITE][:max_vms] + [SITE]
    fig = Figure(figsize=(8, 0.9 + 0.38 * len(names)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(names))[::-1]
    vals = np.array([nines.loc[n, "value"] for n in names], dtype=float)
    finite = np.where(np.isfinite(vals), vals, np.nan)
    cap = np.nanmax(finite) * 1.15 if np.isfinite(finite).any() else 6.0
    shown = np.where(np.isfinite(vals), vals, cap)
    colors = ["black" if n == SITE else OKABE_ITO["blue"] for n in names]
    ax.barh(y, shown, color=colors, height=0.6)
    lo = np.array([nines.loc[n, "low"] for n in names], dtype=float)
    hi = np.array([nines.loc[n, "high"] for n in names], dtype=float)
    hi = np.where(np.isfinite(hi), hi, cap)
    ax.errorbar(shown, y, xerr=[np.clip(shown - lo, 0, None), np.clip(hi - shown, 0, None)], fmt="none",
                ecolor=OKABE_ITO["vermillion"], capsize=3, lw=1.2)
    for yi, n, v in zip(y, names, shown, strict=True):
        ax.annotate(f"{format_duration(float(down[n])) if down[n] > 0 else 'no'} down / year", (v, yi),
                    xytext=(6, -3), textcoords="offset points", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_xlim(0, cap * 1.35)
    ax.set_xlabel("nines of availability: 2 = 99 %, 3 = 99.9 %, 4 = 99.99 %")
    ax.set_title(f"{result.scenario.name}: availability per VM (95 % intervals)", fontsize=10)
    ax.grid(True, axis="x", color="#E5E5E5")
    return fig
