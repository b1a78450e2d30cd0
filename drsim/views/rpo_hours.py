"""When the RPO target is missed, by hour of the week: :func:`rpo_by_hour` (exact seconds over the target and
seconds protected per hour, per VM and for the site, from the breakpoints of ``results.rpo``),
:func:`busy_hours` (the part of the day holding most of it) and the report's table of it.

Imports numpy, :func:`drsim.model.churn.week_offset` (the site clock), :mod:`drsim.results.tables`,
:mod:`drsim.scenario.units` and :mod:`drsim.views.rendering`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drsim.model.churn import week_offset
from drsim.results.tables import SITE, Results
from drsim.scenario import units
from drsim.views.rendering import Table, percent

__all__ = ["rpo_by_hour", "BusyHours", "busy_hours", "busy_table"]

_fmt = units.format_duration


def _measure(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Length of the union of sorted disjoint intervals ``[a_i, b_i)`` below each ``x``."""
    if len(a) == 0:
        return np.zeros(len(x))
    prefix = np.concatenate([[0.0], np.cumsum(b - a)])
    i = np.searchsorted(b, x, side="right")  # intervals ending at or before x
    partial = np.where(i < len(a), np.clip(x - a[np.minimum(i, len(a) - 1)], 0.0, None), 0.0)
    return prefix[i] + partial


def rpo_by_hour(results: Results) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Seconds over the RPO target and seconds with an RPO (protected), per hour of the week (Monday 00:00
    first, site clock), for each VM with an RPO curve and for the site (key ``"(site)"``): exact, from the
    breakpoints of ``results.rpo``."""
    s = results.scenario
    target = float(s.objectives.rpo)
    off = week_offset(s)
    first = -(off % 3600.0)
    n_edges = int(math.ceil((results.end - first) / 3600.0)) + 1
    raw_edges = first + 3600.0 * np.arange(n_edges)
    edges = np.clip(raw_edges, 0.0, results.end)
    slot = (int(round((first + off) / 3600.0)) + np.arange(n_edges - 1)) % 168
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rpo = results.rpo
    site_over, site_cov = np.zeros(168), np.zeros(168)
    for vm, g in rpo.groupby("vm", observed=True, sort=False):
        t = g["time"].to_numpy(dtype=float)
        v = g["rpo"].to_numpy(dtype=float)
        t0, t1, r0 = t[0::2], t[1::2], v[0::2]
        a = np.maximum(t0, t0 + target - r0)
        keep = a < t1
        over = np.bincount(slot, weights=np.diff(_measure(a[keep], t1[keep], edges)), minlength=168)
        cov = np.bincount(slot, weights=np.diff(_measure(t0, t1, edges)), minlength=168)
        out[str(vm)] = (over, cov)
        site_over += over
        site_cov += cov
    out[SITE] = (site_over, site_cov)
    return out


@dataclass
class BusyHours:
    days: str  # "weekdays", "weekends" or "every day"
    first_hour: int
    last_hour: int  # exclusive
    share: float  # of the time over target that falls in these hours
    rate: float  # time over target / time protected, during these hours

    @property
    def text(self) -> str:
        return f"{self.days} {self.first_hour:02d}:00-{self.last_hour:02d}:00"


def busy_hours(over: np.ndarray, cov: np.ndarray) -> BusyHours | None:
    """The hours of the day (on weekdays, weekends or every day) holding the most time over the RPO target."""
    total = over.sum()
    if not total > 0:
        return None
    weekday = over[:120].sum() / total
    if weekday >= 0.9:
        days, rows = "weekdays", slice(0, 5)
    elif weekday <= 0.1:
        days, rows = "weekends", slice(5, 7)
    else:
        days, rows = "every day", slice(0, 7)
    by_hour = over.reshape(7, 24)[rows].sum(axis=0)
    cov_hour = cov.reshape(7, 24)[rows].sum(axis=0)
    hot = by_hour >= 0.5 * by_hour.max()
    best: tuple[float, int, int] | None = None
    h = 0
    while h < 24:
        if hot[h]:
            e = h
            while e < 24 and hot[e]:
                e += 1
            weight = float(by_hour[h:e].sum())
            if best is None or weight > best[0]:
                best = (weight, h, e)
            h = e
        else:
            h += 1
    assert best is not None
    weight, h0, h1 = best
    covered = float(cov_hour[h0:h1].sum())
    return BusyHours(days, h0, h1, weight / total, weight / covered if covered > 0 else math.nan)


def busy_table(results: Results, hours: dict[str, tuple[np.ndarray, np.ndarray]]) -> Table | None:
    rows = []
    total = None
    for name, (over, cov) in hours.items():
        b = busy_hours(over, cov)
        if b is None:
            continue
        row = [name, _fmt(float(over.sum())), percent(over.sum() / cov.sum() if cov.sum() else math.nan),
               b.text, percent(b.share, 0), percent(b.rate)]
        if name == SITE:
            total = row
        else:
            rows.append(row)
    if not rows:
        return None
    return Table(["VM", "time over target", "share of protected time", "worst hours", "share of the time over "
                  "target", "over target during those hours"], rows, [False, True, True, False, True, True],
                 caption="When the RPO target is missed (site clock)", total=total,
                 note="Worst hours: the hours of the day (on weekdays, weekends or every day, whichever holds at "
                      "least 90 % of the time over target) with at least half the peak hour's time over target.")
