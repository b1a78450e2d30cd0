"""The curves behind the replication figures, reduced to what a figure can show: the RPO curve's stretches and its exact
time above a target, its steady part (without the start-up of each stretch, until the VM caught up), the backlog between
the link's records, and min/max envelopes per time bin for runs too long to draw piece by piece.

Why envelopes: a 30-day run at a 5-minute interval has 8,640 RPO teeth per VM; across a 12-inch figure
(about 1,100 pixels) that is under one pixel a tooth, and the sawtooth fills in as a solid block. Above
:data:`DETAIL_LIMIT` pieces in view the figures draw instead, per time bin, the exact minimum and maximum of
the curve (:func:`bin_extremes`): the bin is the shortest of :data:`BIN_WIDTHS` that gives at most
:data:`MAX_BINS` bins over the span (:func:`envelope_bin`: an hour for a month, three hours for 45 days, a day
for a few years), aligned on the site's clock when the scenario has a ``start``. The exact detail of any window
stays available (``window=`` of the figures); :func:`window_around_peak` finds the hour around the worst steady
RPO.

Times in seconds since the start of the run. Imports numpy and :mod:`drsim.scenario.units`; no figure module.
"""

from __future__ import annotations

import math

import numpy as np

from drsim.scenario.units import DAY, HOUR, MINUTE, WEEK

__all__ = ["DETAIL_LIMIT", "MAX_BINS", "BIN_WIDTHS", "rpo_runs", "above_target", "backlog_curve", "steady_pieces",
           "envelope_bin", "bin_edges", "bin_extremes", "step_pieces", "worst_piece", "window_around_peak"]

#: Pieces (teeth of the sawtooth, steps of a count) in view above which a figure draws an envelope: about
#: 2.7 pixels a piece across a 12-inch figure at 100 dpi, where a sawtooth still reads (a measurement: the
#: office run's 8,640 teeth in 30 days render solid; 288 teeth in a day render as teeth).
DETAIL_LIMIT = 400
#: At most this many envelope bins across a figure (an hour per bin for a 30-day run): about 1.5 pixels a bin at
#: 100 dpi, where a band (unlike a sawtooth) still reads; an assumption, checked on the office run's figures.
MAX_BINS = 750
#: The bin widths an envelope chooses from, shortest first (seconds).
BIN_WIDTHS = (MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, WEEK)


def rpo_runs(times: np.ndarray, values: np.ndarray) -> list[np.ndarray]:
    """Split one VM's RPO rows (two per linear piece) into polylines (arrays of (time, value) rows), one per
    stretch without a gap.

    Within a stretch a piece ends where the next starts, so the polyline drops vertically where a recovery
    point arrived; a gap (the VM was down or in the cloud) starts a new polyline."""
    if len(times) == 0:
        return []
    ends, starts = times[1:-1:2], times[2::2]
    gap = ~np.isclose(starts, ends, rtol=1e-12, atol=1e-6)
    cuts = 2 * (np.flatnonzero(gap) + 1)
    points = np.column_stack((times, values))
    return np.split(points, cuts)


def above_target(times: np.ndarray, values: np.ndarray, target: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact intervals (starts, ends) where the RPO exceeds ``target`` (slope 1 within each piece), merged."""
    t0, t1, r0, r1 = times[0::2], times[1::2], values[0::2], values[1::2]
    over = r1 > target
    a = t0[over] + np.maximum(target - r0[over], 0.0)
    b = t1[over]
    if len(a) == 0:
        return a, b
    new = np.ones(len(a), dtype=bool)
    new[1:] = a[1:] > b[:-1] + 1e-6
    return a[new], np.maximum.reduceat(b, np.flatnonzero(new))


def backlog_curve(t: np.ndarray, backlog: np.ndarray, capacity: np.ndarray,
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


def steady_pieces(times: np.ndarray, values: np.ndarray, target: float) -> np.ndarray:
    """Which pieces (rows ``2k`` and ``2k + 1``) of one VM's RPO curve are steady, not start-up.

    Each stretch of the curve (from protection, or from a return after a failure) starts with the age of the
    point the VM started with (the initial copy, the image it came back on), and the deltas queued meanwhile
    keep it high for a while. The start-up lasts until the VM has caught up: up to the first piece that starts
    at or below ``target`` (a recovery point arrived that young); when a stretch never catches up, only its
    first piece is start-up (the VM cannot keep up: that is its steady state)."""
    n = len(times) // 2
    steady = np.ones(n, dtype=bool)
    if n == 0:
        return steady
    ends, starts = times[1:-1:2], times[2::2]
    first = np.flatnonzero(np.r_[True, ~np.isclose(starts, ends, rtol=1e-12, atol=1e-6)])
    young = values[0::2] <= target
    for a, b in zip(first, np.r_[first[1:], n], strict=True):
        caught = np.flatnonzero(young[a:b])
        steady[a:a + (int(caught[0]) if len(caught) else 1)] = False
    return steady


# --- envelopes ---------------------------------------------------------------------------------------------


def envelope_bin(span: float) -> float:
    """The bin width (seconds) of an envelope over ``span`` seconds: the shortest of :data:`BIN_WIDTHS` with at
    most :data:`MAX_BINS` bins (the longest for longer spans)."""
    for width in BIN_WIDTHS:
        if span / width <= MAX_BINS:
            return width
    return BIN_WIDTHS[-1]


def bin_edges(start: float, end: float, width: float, phase: float = 0.0) -> np.ndarray:
    """Edges of bins of ``width`` seconds covering [``start``, ``end``]: at ``phase + k * width`` (``phase``:
    where the site's clock has a whole hour or day, so that bins are clock hours or days), the first and the
    last cut to ``start`` and ``end``."""
    if not end > start:
        raise ValueError(f"an envelope needs end > start, got [{start}, {end}]")
    k0 = math.floor((start - phase) / width)
    inner = phase + width * np.arange(k0 + 1, math.ceil((end - phase) / width))
    inner = inner[(inner > start) & (inner < end)]
    return np.concatenate(([start], inner, [end]))


def bin_extremes(t0: np.ndarray, t1: np.ndarray, v0: np.ndarray, v1: np.ndarray,
             edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact (min, max) per bin of a curve made of linear pieces from (``t0``, ``v0``) to (``t1``, ``v1``):
    each piece is cut at the bin edges and its values at the cuts taken (a linear piece has its extremes at its
    ends). Pieces of zero length hold no time and count for nothing; a bin no piece covers is NaN. The pieces
    may come in any order and overlap (several VMs)."""
    t0, t1 = np.asarray(t0, dtype=float), np.asarray(t1, dtype=float)
    v0, v1 = np.asarray(v0, dtype=float), np.asarray(v1, dtype=float)
    nb = len(edges) - 1
    lo, hi = np.full(nb, np.nan), np.full(nb, np.nan)
    keep = (t1 > t0) & (t1 > edges[0]) & (t0 < edges[-1])
    if not keep.any():
        return lo, hi
    t0, t1, v0, v1 = t0[keep], t1[keep], v0[keep], v1[keep]
    i0 = np.clip(np.searchsorted(edges, t0, side="right") - 1, 0, nb - 1)
    i1 = np.clip(np.searchsorted(edges, t1, side="left") - 1, 0, nb - 1)
    count = i1 - i0 + 1
    piece = np.repeat(np.arange(len(t0)), count)
    first = np.repeat(np.cumsum(count) - count, count)
    b = np.repeat(i0, count) + (np.arange(len(piece)) - first)
    slope = (v1 - v0) / (t1 - t0)
    a = np.maximum(t0[piece], edges[b])
    z = np.minimum(t1[piece], edges[b + 1])
    va = v0[piece] + slope[piece] * (a - t0[piece])
    vz = v0[piece] + slope[piece] * (z - t0[piece])
    order = np.argsort(b, kind="stable")
    b, small, large = b[order], np.minimum(va, vz)[order], np.maximum(va, vz)[order]
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    lo[b[starts]] = np.minimum.reduceat(small, starts)
    hi[b[starts]] = np.maximum.reduceat(large, starts)
    return lo, hi


def step_pieces(t: np.ndarray, v: np.ndarray, end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A step function (``v[i]`` from ``t[i]`` until ``t[i + 1]``, the last held to ``end``) as pieces
    (t0, t1, value) for :func:`bin_extremes`."""
    t = np.asarray(t, dtype=float)
    t1 = np.append(t[1:], max(end, t[-1])) if len(t) else t
    return t, t1, np.asarray(v, dtype=float)


# --- the worst moment -------------------------------------------------------------------------------------


def worst_piece(times: np.ndarray, values: np.ndarray, target: float) -> int | None:
    """Index of the piece whose end has the highest RPO among the steady pieces (:func:`steady_pieces`; among
    all when none is steady); None without pieces. Ties: the earliest."""
    n = len(times) // 2
    if n == 0:
        return None
    ends = values[1::2]
    steady = steady_pieces(times, values, target)
    pool = np.flatnonzero(steady) if steady.any() else np.arange(n)
    return int(pool[np.argmax(ends[pool])])


def window_around_peak(times: np.ndarray, values: np.ndarray, end: float, target: float,
                       width: float = HOUR) -> tuple[float, float]:
    """A window centred on the highest steady RPO of this curve (:func:`worst_piece`) and kept within
    [0, ``end``]: around the whole excursion above ``target`` that holds the peak (from the moment the RPO rose
    above the target to the moment it came back below), else around the piece that reaches it; ``width``
    seconds, or 1.5 times the excursion when that is longer, so that the normal sawtooth shows on both sides."""
    k = worst_piece(times, values, target)
    if k is None:
        raise ValueError("no RPO curve: nothing to zoom on")
    a, b = float(times[2 * k]), float(times[2 * k + 1])
    starts, ends = above_target(times, values, target)
    holds = np.flatnonzero((starts <= b) & (ends >= b))
    if len(holds):
        a, b = float(starts[holds[0]]), float(ends[holds[0]])
    w = min(max(width, 1.5 * (b - a)), end)
    lo = min(max(a - (w - (b - a)) / 2, 0.0), end - w)
    return lo, lo + w
