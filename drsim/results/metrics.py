"""Exact statistics of piecewise-linear RPO curves.

Between two recovery points becoming available, the RPO grows with slope 1: a *segment* starts at RPO
``r0`` and lasts ``L`` seconds, ending at ``r0 + L``. Over a set of segments (one VM, or a whole site
pooled), the time spent with RPO above ``x`` is

    G(x) = sum_i clip(r0_i + L_i - max(r0_i, x), 0, L_i)  =  S(x; r0 + L) - S(x; r0),

where ``S(x; v) = sum over v_i > x of (v_i - x)``. ``G`` is piecewise linear in ``x`` with knots at the
segment ends, so the time-weighted mean, maximum and fraction of time above a target are computed
exactly, and any time percentile by bisection on G to float resolution (no sampling), in O(n log n).

A run that does not keep its pieces (:mod:`drsim.model.tally`) keeps running sums and, per cell ``[k h, (k+1) h)``
of RPO values, the count and the sum of the piece tops minus those of the piece bottoms. Then
``G(k h) = sum over cells j >= k of (sums_j - k h counts_j)`` exactly (values at ``k h`` contribute nothing), and
:func:`histogram_stats` interpolates the percentile between grid points: within ``h`` of the exact value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RPOStats", "rpo_stats", "time_above", "histogram_stats"]


@dataclass(frozen=True)
class RPOStats:
    """Time-weighted statistics of an RPO curve, in seconds (fraction for ``over_target``)."""

    mean: float
    p95: float
    max: float
    over_target: float
    duration: float


class _Tail:
    """S(x; v) = sum over v_i > x of (v_i - x), evaluated in O(log n) on sorted values."""

    def __init__(self, values: np.ndarray, own: bool = False):
        """``own``: ``values`` is a temporary the tail may sort in place."""
        if own:
            values.sort()
            self.v = values
        else:
            self.v = np.sort(values)
        # suffix sums: tail_sum[k] = sum(v[k:])
        self.tail_sum = np.zeros(len(self.v) + 1)
        np.cumsum(self.v[::-1], out=self.tail_sum[-2::-1] if len(self.v) else self.tail_sum[:0])

    def __call__(self, x: float | np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.v, x, side="right")
        return self.tail_sum[k] - x * (len(self.v) - k)


def time_above(r0: np.ndarray, length: np.ndarray, x: float | np.ndarray) -> np.ndarray:
    """Seconds spent with RPO strictly above ``x`` (exact)."""
    x = np.asarray(x, dtype=float)
    return _Tail(r0 + length)(x) - _Tail(r0)(x)


def rpo_stats(r0: np.ndarray, length: np.ndarray, target: float, q: float = 0.95) -> RPOStats:
    """Statistics of the segments ``(r0, length)``; ``q`` is the time percentile reported as p95."""
    r0 = np.asarray(r0, dtype=float)
    length = np.asarray(length, dtype=float)
    keep = length > 0
    if not keep.all():
        r0, length = r0[keep], length[keep]
    total = float(length.sum())
    if total <= 0:
        return RPOStats(np.nan, np.nan, np.nan, np.nan, 0.0)
    # numpy's own pairwise sums, not a BLAS dot product: BLAS rounds differently with its thread count, and
    # the tables must not depend on where a run was computed
    mean = float((np.sum(r0 * length) + np.sum(length * length) / 2) / total)
    top = _Tail(r0 + length, own=True)
    bottom = _Tail(r0)

    def above(x: float) -> float:
        return float(top(x) - bottom(x))

    over = above(target) / total
    p = _level(top, bottom, (1 - q) * total, float(bottom.v[0]), float(top.v[-1]))
    return RPOStats(mean=mean, p95=p, max=float(top.v[-1]), over_target=over, duration=total)


def _level(top: _Tail, bottom: _Tail, want: float, lo: float, hi: float, probes: int = 64) -> float:
    """The smallest x in [lo, hi] with G(x) = top(x) - bottom(x) <= ``want`` (G continuous, non-increasing,
    piecewise linear with knots at the values of ``top`` and ``bottom``; G(hi) <= want).

    The bracket is cut at ``probes`` points at a time (one vectorised evaluation) until no knot lies strictly
    inside it; G is linear there, so the answer is interpolated exactly.
    """
    if float(top(lo) - bottom(lo)) <= want:
        return lo
    for _ in range(64):
        knots = (np.searchsorted(top.v, hi, side="left") - np.searchsorted(top.v, lo, side="right")
                 + np.searchsorted(bottom.v, hi, side="left") - np.searchsorted(bottom.v, lo, side="right"))
        if knots <= 0:
            break
        xs = np.linspace(lo, hi, probes + 2)[1:-1]
        k = int(np.count_nonzero(top(xs) - bottom(xs) > want))  # G is non-increasing: a prefix is above
        new_lo = float(xs[k - 1]) if k > 0 else lo
        new_hi = float(xs[k]) if k < probes else hi
        if new_lo == lo and new_hi == hi:
            break  # float resolution
        lo, hi = new_lo, new_hi
    g_lo, g_hi = float(top(lo) - bottom(lo)), float(top(hi) - bottom(hi))
    if g_lo <= g_hi:
        return hi
    return min(max(lo + (g_lo - want) / (g_lo - g_hi) * (hi - lo), lo), hi)


def histogram_stats(length: float, sum_r0l: float, sum_l2: float, top: float, above: float, counts: np.ndarray,
                    sums: np.ndarray, resolution: float, q: float = 0.95) -> RPOStats:
    """Statistics from running sums (see the module docstring): protected time ``length`` (s), ``sum r0 L``,
    ``sum L^2``, the maximum ``top``, the time ``above`` the target (s), and the histogram of piece ends
    (``counts``, ``sums`` per cell of ``resolution`` s). Mean, maximum and share over the target are exact; the
    ``q`` time percentile is within ``resolution``."""
    if not length > 0:
        return RPOStats(np.nan, np.nan, np.nan, np.nan, 0.0)
    mean = (sum_r0l + sum_l2 / 2) / length
    c = np.asarray(counts, dtype=float)
    s = np.asarray(sums, dtype=float)
    suffix_c = np.zeros(len(c) + 1)
    suffix_s = np.zeros(len(s) + 1)
    suffix_c[:-1] = np.cumsum(c[::-1])[::-1]
    suffix_s[:-1] = np.cumsum(s[::-1])[::-1]
    x = resolution * np.arange(len(c) + 1)
    g = suffix_s - x * suffix_c  # time above each grid value
    want = (1 - q) * length
    k = int(np.argmax(g <= want))  # G is non-increasing and G(last) = 0
    if k == 0:
        p = 0.0
    else:
        g0, g1 = g[k - 1], g[k]
        p = float(x[k - 1] + (g0 - want) / (g0 - g1) * resolution) if g0 > g1 else float(x[k])
    return RPOStats(mean=float(mean), p95=min(p, float(top)), max=float(top), over_target=above / length,
                    duration=float(length))
