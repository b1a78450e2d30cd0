"""Exact statistics of piecewise-linear RPO curves.

Between two recovery points becoming available, the RPO grows with slope 1: a *segment* starts at RPO
``r0`` and lasts ``L`` seconds, ending at ``r0 + L``. Over a set of segments (one VM, or a whole site
pooled), the time spent with RPO above ``x`` is

    G(x) = sum_i clip(r0_i + L_i - max(r0_i, x), 0, L_i)  =  S(x; r0 + L) - S(x; r0),

where ``S(x; v) = sum over v_i > x of (v_i - x)``. ``G`` is piecewise linear in ``x`` with knots at the
segment ends, so the time-weighted mean, maximum, fraction of time above a target and any time
percentile are computed exactly (no sampling), in O(n log n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RPOStats", "rpo_stats", "time_above"]


@dataclass(frozen=True)
class RPOStats:
    """Time-weighted statistics of an RPO curve, in seconds (fraction for ``over_target``)."""

    mean: float
    p95: float
    max: float
    over_target: float
    duration: float


class _Tail:
    """S(x; v) = sum over v_i > x of (v_i - x), for many x at once."""

    def __init__(self, values: np.ndarray):
        self.v = np.sort(values)
        # suffix sums: tail_sum[k] = sum(v[k:])
        self.tail_sum = np.concatenate((np.cumsum(self.v[::-1])[::-1], [0.0]))

    def __call__(self, x: np.ndarray) -> np.ndarray:
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
    r0, length = r0[keep], length[keep]
    total = float(length.sum())
    if total <= 0:
        return RPOStats(np.nan, np.nan, np.nan, np.nan, 0.0)
    mean = float(np.sum((r0 + length / 2) * length) / total)
    r1 = r0 + length
    top = _Tail(r1)
    bottom = _Tail(r0)
    over = float((top(np.array([target])) - bottom(np.array([target])))[0] / total)
    # percentile: G(x) = (1 - q) * total, with G decreasing and piecewise linear between knots
    knots = np.unique(np.concatenate((r0, r1)))
    g = top(knots) - bottom(knots)
    want = (1 - q) * total
    # g is non-increasing in the knots; find the first knot where g <= want
    j = int(np.searchsorted(-g, -want, side="left"))
    if j == 0:
        p = float(knots[0])
    elif j >= len(knots):
        p = float(knots[-1])
    else:
        x0, x1, g0, g1 = knots[j - 1], knots[j], g[j - 1], g[j]
        p = float(x1 if g0 == g1 else x0 + (g0 - want) * (x1 - x0) / (g0 - g1))
    return RPOStats(mean=mean, p95=p, max=float(r1.max()), over_target=over, duration=total)
