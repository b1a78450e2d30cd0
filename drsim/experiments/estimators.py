"""Annual risk figures from many replications of a long horizon, with 95 % confidence intervals.

Input: one :class:`~drsim.experiments.annual.AnnualRecord` per replication (``years x VMs`` arrays) and, for the
conditional estimator, the :class:`~drsim.experiments.steady.SteadyState` of the probe runs.

**Plain simulation.** A figure is counted in the simulated years. Means per year (data loss, downtime, failovers,
incidents): the mean over replications of each replication's mean per year, with a Student t interval over the
replications (over the years when there is one replication). Probabilities that a year holds a loss above ``x``:
the share of simulated years, with a Wilson score interval over all simulated years (which stays honest when no
year had such a loss: [0, about 3.7/N] for N years).

**Conditional Monte Carlo** (a VM's data loss, where its conditions hold). The slow time scale is simulated (who
fails, when, who fails over or is restored from a recovery point); the loss of such an incident of VM ``v`` is the
RPO at the failure instant. Failures that arrive as a Poisson process independent of replication see the time
average (PASTA), so that loss has the time-weighted distribution of the steady-state RPO curve, known exactly from
the probe runs: mean ``m_v`` and ``p_v(x) = P_t(RPO_v > x)``. Each simulated year's loss figures are replaced by
their expectation given its failures: expected loss ``K m_v`` for ``K`` such incidents; probability of a loss above
``x``: ``1 - (1 - p_v(x))^K``. An incident without a recovery point (unrecoverable) counts as a loss above every
``x``. This has a far smaller variance than counting rare losses, and is exact where the conditions hold. Its
interval adds two independent parts in quadrature: the t interval over replications (the failure timeline's
randomness) and the probe's (the figure recomputed from each probe run's distribution alone: their spread over
the square root of the number of runs, with a t quantile).

**The site's probabilities** under the slow time scale: a failure that hits several VMs at once loses, on each,
the RPO at the same instant, so their losses are correlated. The same conditioning applies with the largest loss
among the VMs hit: its probability of exceeding ``x`` is the exact probability of the VM most likely to exceed it
plus the chance that another exceeds it when that one does not, estimated per failure from instants drawn over the
probe runs' measured weeks, at which the VMs' RPOs are read jointly (:func:`site_exceedance`). Its interval is
made as the VMs' (the t interval over replications, which includes the drawing of instants, and the probe's
part). The site's expected loss is the sum of the VMs' (expectations add whatever the correlation).

Other figures: availability = 1 - downtime / time (site: mean over VMs, as in a run's summary), its nines =
-log10(1 - availability); the share of incidents that meet the RTO is a ratio estimator (interval by the delta
method over replications).

Imports :mod:`drsim.experiments` (t quantile, annual records, steady state).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from drsim.experiments.annual import YEAR, AnnualRecord
from drsim.experiments.statistics import t_975
from drsim.experiments.steady import SteadyState
from drsim.scenario.units import DAY, HOUR

__all__ = ["Stacked", "figures_table", "exceedance_table", "METRICS", "PLAIN", "CONDITIONAL", "wilson"]

SITE = "(site)"
PLAIN = "simulation"
CONDITIONAL = "conditional Monte Carlo"
SAMPLED = "conditional Monte Carlo, joint losses sampled from the steady state"
_SAMPLE_KEY = 0x534D50  # "SMP": spawn key of the joint-loss draws
_Z = 1.959963984540054

#: (metric, what it is, unit)
METRICS: tuple[tuple[str, str, str], ...] = (
    ("data_loss_per_year_s", "expected data loss per year (VM-seconds of writes; site: sum over VMs)", "s"),
    ("p_loss_over_rpo", "probability that a year holds a loss above the RPO target", "probability"),
    ("p_loss_over_1h", "probability that a year holds a loss above 1 hour", "probability"),
    ("p_loss_over_1d", "probability that a year holds a loss above 1 day", "probability"),
    ("downtime_per_year_s", "expected downtime per year (site: sum over VMs)", "s"),
    ("availability", "availability (site: mean over VMs)", "share"),
    ("nines", "availability as nines, -log10(1 - availability)", "nines"),
    ("failovers_per_year", "unplanned failovers per year", "count"),
    ("incidents_per_year", "incidents (outages from failures) per year", "count"),
    ("rto_met_share", "share of incidents restored within the RTO objective", "share"),
    ("unrecoverable_per_year", "incidents with no recovery point to restore, per year", "count"),
)


@dataclass
class Stacked:
    """Replications' records stacked: arrays ``replications x years x VMs``."""

    incidents: np.ndarray
    rto_met: np.ndarray
    failovers: np.ndarray
    downtime: np.ndarray
    loss_sum: np.ndarray
    loss_max: np.ndarray
    site_loss_max: np.ndarray  # replications x years
    unrecoverable: np.ndarray
    point_used: np.ndarray
    events: list[list[tuple[int, tuple[int, ...]]]]

    @classmethod
    def of(cls, records: Sequence[AnnualRecord]) -> Stacked:
        fields = ("incidents", "rto_met", "failovers", "downtime", "loss_sum", "loss_max", "site_loss_max",
                  "unrecoverable", "point_used")
        arrays = {f: np.stack([getattr(r, f) for r in records]) for f in fields}
        return cls(**arrays, events=[r.events for r in records])

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.incidents.shape  # type: ignore[return-value]


def wilson(successes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score 95 % interval (low, high) of a proportion of ``n`` trials."""
    p = np.asarray(successes, dtype=float) / n
    denom = 1 + _Z**2 / n
    centre = (p + _Z**2 / (2 * n)) / denom
    half = _Z * np.sqrt(p * (1 - p) / n + _Z**2 / (4 * n * n)) / denom
    low = np.where(p <= 0, 0.0, np.clip(centre - half, 0, 1))  # exact ends, not a rounding away from them
    high = np.where(p >= 1, 1.0, np.clip(centre + half, 0, 1))
    return low, high


def _t_half(per_rep: np.ndarray) -> np.ndarray:
    """Half-width of the t interval of the mean over axis 0 (NaN with fewer than two values)."""
    n = per_rep.shape[0]
    if n < 2:
        return np.full(per_rep.shape[1:], np.nan)
    return t_975(n - 1) * per_rep.std(axis=0, ddof=1) / math.sqrt(n)


def _mean_ci(per_rep: np.ndarray, per_year: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, half-width) of per-replication values; with one replication, over its years (``per_year``)."""
    if per_rep.shape[0] >= 2:
        return per_rep.mean(axis=0), _t_half(per_rep)
    return per_rep.mean(axis=0), _t_half(per_year)


class _Conditional:
    """Conditional estimates of the loss figures, for a steady state's distributions ``mean``/``above``."""

    def __init__(self, st: Stacked, steady: SteadyState):
        self.st = st
        self.steady = steady
        n, years, vms = st.shape
        self.years = years
        # per VM, the number of years (of each replication) with K conditional losses and no unrecoverable one
        self.kmax = int(st.point_used.max()) if st.point_used.size else 0
        clean = st.unrecoverable == 0
        self.counts = np.zeros((vms, n, self.kmax + 1))
        for k in range(1, self.kmax + 1):
            self.counts[:, :, k] = ((st.point_used == k) & clean).sum(axis=1).T
        self.sure = (~clean).sum(axis=1).T.astype(float)  # vms x n: years holding a loss above every x

    def loss(self, means: np.ndarray) -> np.ndarray:
        """Expected loss per year, per replication and VM (n x VMs), for steady means ``means`` (VMs)."""
        st = self.st
        return (st.point_used.sum(axis=1) * np.nan_to_num(means) + st.loss_sum.sum(axis=1)) / self.years

    def exceed_vm(self, v: int, above: np.ndarray) -> np.ndarray:
        """P(a year holds a loss above each grid value) of VM ``v``, per replication (n x grid)."""
        keep = np.power.outer(1 - np.nan_to_num(above), np.arange(self.kmax + 1))  # grid x K
        years_k = self.counts[v] @ (1 - keep.T)  # n x grid
        return (years_k + self.sure[v][:, None]) / self.years


def _quadrature(half_a: np.ndarray, half_b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.nan_to_num(half_a) ** 2 + np.nan_to_num(half_b) ** 2)


def _probe_half(values: np.ndarray) -> np.ndarray:
    """Half-width from per-probe-run recomputations (axis 0): t(R-1) * spread / sqrt(R)."""
    return _t_half(values)


def _rows(names: Sequence[str]) -> list[str]:
    return [*names, SITE]


def _plain_exceed(loss_max: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share of years (all replications pooled) with a loss above each grid value, with its Wilson interval."""
    values = np.sort(loss_max.ravel())
    hits = len(values) - np.searchsorted(values, grid, side="right")
    low, high = wilson(hits, len(values))
    return hits / len(values), low, high


def exceedance_table(st: Stacked, names: Sequence[str], grid: np.ndarray, steady: SteadyState | None,
                     seed: int = 0) -> pd.DataFrame:
    """P(a year holds a loss above x) per VM and for the site, at every ``grid`` value x (s): columns vm, x_s,
    p, low, high, estimator. ``steady`` given: the conditional estimator for VMs and sampled joint losses for the
    site (``seed`` seeds the draws), else plain counting."""
    frames = []
    if steady is None:
        for v, name in enumerate(names):
            p, low, high = _plain_exceed(st.loss_max[:, :, v], grid)
            frames.append(pd.DataFrame({"vm": name, "x_s": grid, "p": p, "low": low, "high": high}))
        p, low, high = _plain_exceed(st.site_loss_max, grid)
        frames.append(pd.DataFrame({"vm": SITE, "x_s": grid, "p": p, "low": low, "high": high}))
        out = pd.concat(frames, ignore_index=True)
        out["estimator"] = PLAIN
        return out
    cond = _Conditional(st, steady)
    above = steady.above  # runs x VMs x grid
    for v, name in enumerate(names):
        per_rep = cond.exceed_vm(v, above[:, v].mean(axis=0))
        by_run = np.array([cond.exceed_vm(v, above[r, v]).mean(axis=0) for r in range(len(steady.runs))])
        frames.append(_ci_frame(name, grid, per_rep, by_run))
    frames.append(_ci_frame(SITE, grid, *site_exceedance(st, steady, grid, seed)))
    out = pd.concat(frames, ignore_index=True)
    out["estimator"] = np.where(out["vm"] == SITE, SAMPLED, CONDITIONAL)
    return out


def site_exceedance(st: Stacked, steady: SteadyState, grid: np.ndarray, seed: int,
                    instants: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """P(a year holds a loss above each grid value on any VM), per replication (n x grid), when the slow time
    scale was simulated; and the same figure's mean over replications recomputed with each probe run's exact
    distributions (runs x grid, for the probe's part of the interval; the sampled term is shared).

    For a failure event that hit the VMs S, the chance that the largest loss exceeds x is
    ``p_v*(x) + P(RPO_v* <= x < max_S RPO)``, with v* the VM of S most likely to exceed x: the first term exact
    (steady state), the second estimated from ``instants`` instants drawn uniformly over the probe runs' measured
    weeks, at each of which the VMs' RPOs are read jointly (the state a Poisson failure sees). Unbiased, and never
    below any VM's own probability. A year's probability is then ``1 - prod(1 - q_e(x))`` over its events (1 with
    an unrecoverable incident)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SAMPLE_KEY,)))
    n, years, _ = st.shape
    variants = [steady.above.mean(axis=0), *steady.above]  # VMs x grid: pooled, then each run's
    variants = [np.nan_to_num(a) for a in variants]
    sure = (st.unrecoverable.sum(axis=2) > 0) | (st.site_loss_max == np.inf)
    flat = [(k, y, vms) for k, events in enumerate(st.events) for y, vms in events if not sure[k, y]]
    flat.sort(key=lambda event: len(event[2]))  # chunks of events of similar size
    totals = np.zeros((len(variants), n, len(grid)))
    if flat:
        keys = np.array([k * years + y for k, y, _ in flat])
        unique, inverse = np.unique(keys, return_inverse=True)
        logs = np.zeros((len(variants), len(flat), len(grid)))
        lo = 0
        padded = [np.vstack((a, np.full(a.shape[1], -1.0))) for a in variants]  # row -1: no VM
        widths = np.array([len(vms) for _, _, vms in flat])
        while lo < len(flat):
            width = int(widths[lo])
            size = max(1, 1_000_000 // (width * max(instants, len(grid))))  # events per chunk: bounded memory
            chunk = flat[lo:min(lo + size, int(np.searchsorted(widths, width, side="right")))]
            index = np.full((len(chunk), width), -1)
            for e, (_, _, vms) in enumerate(chunk):
                index[e, :len(vms)] = vms
            losses = steady.sample_losses(index, instants, rng)  # events x VMs x instants
            star = padded[0][index].argmax(axis=1)  # events x grid: the VM most likely to exceed each x
            own = np.take_along_axis(losses, star[:, :, None], axis=1)  # events x grid x instants
            top = losses.max(axis=1)[:, None, :]
            extra = ((own <= grid[None, :, None]) & (top > grid[None, :, None])).mean(axis=2)
            vm_star = np.take_along_axis(index, star, axis=1)  # events x grid
            for a, above in enumerate(padded):  # the exact term with each variant's distributions
                exact = above[vm_star, np.arange(len(grid))[None, :]]
                with np.errstate(divide="ignore"):
                    logs[a, lo:lo + len(chunk)] = np.maximum(np.log1p(-np.minimum(exact + extra, 1.0)), -800.0)
            lo += len(chunk)
        for a in range(len(variants)):
            per_year = np.zeros((len(unique), len(grid)))
            np.add.at(per_year, inverse, logs[a])
            np.add.at(totals[a], unique // years, 1 - np.exp(per_year))
    per_rep = (totals + sure.sum(axis=1)[None, :, None]) / years
    return per_rep[0], per_rep[1:].mean(axis=1)


def _ci_frame(name: str, grid: np.ndarray, per_rep: np.ndarray, by_run: np.ndarray) -> pd.DataFrame:
    p = per_rep.mean(axis=0)
    half = _quadrature(_t_half(per_rep), _probe_half(by_run))
    return pd.DataFrame({"vm": name, "x_s": grid, "p": p, "low": np.clip(p - half, 0, 1),
                         "high": np.clip(p + half, 0, 1)})


def figures_table(st: Stacked, names: Sequence[str], exceed: pd.DataFrame, rpo: float, rto: float,
                  steady: SteadyState | None) -> pd.DataFrame:
    """Every annual figure per VM and for the site: columns vm, metric, value, low, high, unit, estimator.
    ``exceed`` is :func:`exceedance_table`'s output (its grid holds the RPO target, 1 h and 1 d)."""
    n, years, vms = st.shape
    rows: list[dict] = []

    def add(metric: str, values: np.ndarray, half: np.ndarray, estimator: str, lo: float = -np.inf,
            hi: float = np.inf) -> None:
        unit = next(u for m, _, u in METRICS if m == metric)
        for name, val, h in zip(_rows(names), values, half, strict=True):
            rows.append({"vm": name, "metric": metric, "value": float(val), "low": float(np.clip(val - h, lo, hi)),
                         "high": float(np.clip(val + h, lo, hi)), "unit": unit, "estimator": estimator})

    def per_year(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(per replication, per year) values for VMs and the site: sums over years / years."""
        reps = np.concatenate((x.sum(axis=1), x.sum(axis=(1, 2))[:, None]), axis=1) / years
        yrs = np.concatenate((x[0], x[0].sum(axis=1)[:, None]), axis=1)
        return reps, yrs

    # data loss
    if steady is None:
        mean, half = _mean_ci(*per_year(st.loss_sum))
        add("data_loss_per_year_s", mean, half, PLAIN, 0)
    else:
        cond = _Conditional(st, steady)
        reps = cond.loss(steady.mean.mean(axis=0))
        reps = np.concatenate((reps, reps.sum(axis=1)[:, None]), axis=1)
        by_run = []
        for r in range(len(steady.runs)):
            x = cond.loss(steady.mean[r]).mean(axis=0)
            by_run.append(np.append(x, x.sum()))
        mean = reps.mean(axis=0)
        add("data_loss_per_year_s", mean, _quadrature(_t_half(reps), _probe_half(np.array(by_run))), CONDITIONAL, 0)
    for metric, x in (("p_loss_over_rpo", rpo), ("p_loss_over_1h", HOUR), ("p_loss_over_1d", DAY)):
        sel = exceed[np.isclose(exceed["x_s"], x)].drop_duplicates("vm").set_index("vm").reindex(_rows(names))
        for name, r in sel.iterrows():
            rows.append({"vm": name, "metric": metric, "value": r["p"], "low": r["low"], "high": r["high"],
                         "unit": "probability", "estimator": r["estimator"]})
    # downtime and availability
    down_reps, down_years = per_year(st.downtime)
    mean, half = _mean_ci(down_reps, down_years)
    add("downtime_per_year_s", mean, half, PLAIN, 0)
    scale = np.append(np.full(vms, YEAR), vms * YEAR)
    avail, ahalf = 1 - mean / scale, half / scale
    add("availability", avail, ahalf, PLAIN, 0, 1)
    with np.errstate(divide="ignore"):
        nines = -np.log10(1 - avail)
        # no downtime at all (no interval either): infinitely many nines, bounds included
        lo, hi = -np.log10(np.clip(1 - (avail - ahalf), 0, 1)), -np.log10(np.clip(1 - (avail + ahalf), 0, 1))
    for name, val, low, high in zip(_rows(names), nines, lo, hi, strict=True):
        rows.append({"vm": name, "metric": "nines", "value": float(val), "low": float(max(low, 0)),
                     "high": float(high), "unit": "nines", "estimator": PLAIN})
    for metric, x in (("failovers_per_year", st.failovers), ("incidents_per_year", st.incidents),
                      ("unrecoverable_per_year", st.unrecoverable)):
        mean, half = _mean_ci(*per_year(x))
        add(metric, mean, half, PLAIN, 0)
    # RTO: a ratio of sums over replications
    met, total = per_year(st.rto_met)[0], per_year(st.incidents)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = met.sum(axis=0) / total.sum(axis=0)
        resid = met - share * total
        half = (t_975(n - 1) * np.sqrt((resid**2).sum(axis=0) / (n * (n - 1))) / total.mean(axis=0)
                if n >= 2 else np.full(len(share), np.nan))
    add("rto_met_share", share, half, PLAIN, 0, 1)
    order = {m: i for i, (m, _, _) in enumerate(METRICS)}
    out = pd.DataFrame(rows)
    out["_order"] = out["metric"].map(order)
    vm_order = {name: i for i, name in enumerate(_rows(names))}
    out["_vm"] = out["vm"].map(vm_order)
    return out.sort_values(["_vm", "_order"], kind="stable").drop(columns=["_order", "_vm"]).reset_index(drop=True)
