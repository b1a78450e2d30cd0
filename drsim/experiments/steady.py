"""The steady state of replication: probe runs, the conditions for skipping quiet stretches, RPO distributions.

A *probe run* simulates the scenario in full without failures, maintenance or drills: its initial replication,
then ``weeks`` whole weeks of steady replication after a warm-up (whole weeks, so every time of the week weighs
the same). From each run come, per VM, the exact time-weighted distribution of the RPO curve over those weeks (its
mean and the share of time above every value of a grid), its maximum, and whether replication keeps up.

**Keeping up** (checked on every run; skipping quiet stretches assumes it): the long-run wire churn of the protected
VMs is below the uplink's mean payload capacity; every VM is protected within ``init_limit``; no VM reaches
critical health (resynchronisation) in the measured weeks; and no VM's RPO grows from week to week (the last week's
lowest RPO is within two intervals of the first week's, its mean at most twice the first week's plus an interval).

**Joint state.** When one failure takes several VMs down at once (a host, the site), the largest of their losses is
the largest of their RPOs at that instant: ``max_v RPO_v(t) = t - min_v c_v(t)``, with ``c_v`` the capture time of
the newest point of VM ``v``, again piecewise linear with slope 1 (:func:`curve_pieces` gives it exactly for any set
of VMs). As the sets a simulation produces are many (a host's VMs less those restarted before their failover),
:meth:`SteadyState.sample_losses` reads the joint state off the probe runs at uniformly drawn instants instead.

Imports :mod:`drsim.model`, :mod:`drsim.results` and :mod:`drsim.scenario`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drsim.model.codes import H_CRITICAL
from drsim.model.site import SiteModel
from drsim.results.metrics import time_above
from drsim.scenario.churn import mean_rate
from drsim.scenario.document import Scenario
from drsim.scenario.site import protectable
from drsim.scenario.units import DAY, HOUR, WEEK, format_duration

__all__ = ["SteadyState", "ProbeRun", "probe_run", "probe_seed", "rpo_grid", "steady_state", "curve_pieces"]

_PROBE_KEY = 0x50524F  # "PRO": spawn key of the probe runs' seeds


def probe_seed(seed: int, r: int) -> int:
    """The run seed of probe run ``r`` of a risk experiment with seed ``seed``."""
    seq = np.random.SeedSequence(seed, spawn_key=(_PROBE_KEY, r))
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def rpo_grid(target: float) -> np.ndarray:
    """RPO values (s) at which distributions are kept: 10 s to 60 days on a log scale, the RPO target, 1 h, 1 d."""
    return np.unique(np.concatenate((np.geomspace(10.0, 60 * DAY, 121), [target, HOUR, DAY])))


@dataclass
class ProbeRun:
    """What one probe run found (times in s; arrays per VM in file order)."""

    seed: int
    protected: bool  # every protectable VM was protected within the limit
    capacity: float  # mean payload capacity of the uplink, bytes/s
    protected_at: np.ndarray
    start: float = np.nan  # the measured weeks: [start, end)
    end: float = np.nan
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    max: np.ndarray = field(default_factory=lambda: np.zeros(0))
    above: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # share of time above each grid value
    problems: list[str] = field(default_factory=list)  # why replication does not keep up, if it does not
    points: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # per VM: (available, captured)


def curve_pieces(points: list[tuple[np.ndarray, np.ndarray]], start: float, end: float) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
    """The pieces ``(r0, length)`` over ``[start, end)`` of ``max_v RPO_v(t)`` for VMs whose recovery points are
    ``points`` (per VM: availability and capture times, in order; each VM has a point available at ``start``)."""
    if len(points) == 1:
        avail, cap = points[0]
        first = int(np.searchsorted(avail, start, side="right")) - 1
        inside = np.flatnonzero((avail > start) & (avail < end))
        t0 = np.concatenate(([start], avail[inside]))
        c = np.concatenate(([cap[first]], cap[inside]))
    else:
        steps = []
        for avail, cap in points:
            first = int(np.searchsorted(avail, start, side="right")) - 1
            inside = np.flatnonzero((avail > start) & (avail < end))
            steps.append((np.concatenate(([start], avail[inside])), np.concatenate(([cap[first]], cap[inside]))))
        t0, c = _lower_envelope(steps)
    t1 = np.append(t0[1:], end)
    return t0 - c, t1 - t0


def _lower_envelope(steps: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The minimum of step functions (breakpoint times from a common start, values from each breakpoint on),
    as one step function, by merging them in pairs (O(n log k) for k functions of n breakpoints in all)."""
    while len(steps) > 1:
        merged = []
        for i in range(0, len(steps) - 1, 2):
            (ta, ca), (tb, cb) = steps[i], steps[i + 1]
            t = np.union1d(ta, tb)
            c = np.minimum(ca[np.searchsorted(ta, t, side="right") - 1], cb[np.searchsorted(tb, t, side="right") - 1])
            change = np.concatenate(([True], c[1:] != c[:-1]))
            merged.append((t[change], c[change]))
        if len(steps) % 2:
            merged.append(steps[-1])
        steps = merged
    return steps[0]


def _distribution(r0: np.ndarray, length: np.ndarray, grid: np.ndarray) -> tuple[float, float, np.ndarray]:
    total = float(length.sum())
    mean = float((np.sum(r0 * length) + np.sum(length * length) / 2) / total)
    return mean, float((r0 + length).max()), time_above(r0, length, grid) / total


def probe_run(scenario: Scenario, seed: int, weeks: int, warmup: float, grid: np.ndarray) -> ProbeRun:
    """One probe run of ``scenario`` (a risk scenario: failures are ignored) with run seed ``seed``."""
    eligible = [protectable(host, vm) for host, vm in scenario.vms()]
    copy = sum(vm.copy_bytes for (host, vm), e in zip(scenario.vms(), eligible, strict=True) if e)
    probe = scenario.model_copy(update={"duration": 1.0})  # only to read the uplink's schedule
    capacity = SiteModel(probe, seed, keep=(), timeline=[]).upload.schedule.weekly_mean()
    init_limit = 3 * copy / scenario.link.compression / capacity + 7 * DAY
    length = init_limit + warmup + weeks * WEEK
    m = SiteModel(scenario.model_copy(update={"duration": length}), seed, keep=("transfers", "health"), timeline=[])
    t = 0.0
    while t < init_limit and not all(r.protected_at == r.protected_at for r in m.replicas if r.eligible):
        t += DAY
        m.advance(t)
    protected_at = np.array([r.protected_at for r in m.replicas])
    run = ProbeRun(seed, False, capacity, protected_at)
    churn = sum(mean_rate(scenario, vm) for (host, vm), e in zip(scenario.vms(), eligible, strict=True) if e)
    wire = churn / scenario.link.compression
    if wire >= capacity:
        run.problems.append(f"the protected VMs write {wire / capacity:.0%} of the uplink's mean payload capacity: "
                            "replication cannot keep up")
    if np.isnan(protected_at[eligible]).any():
        run.problems.append(f"initial replication does not finish within {init_limit / DAY:.0f} days")
        return run
    run.protected = True
    run.start = float(np.nanmax(protected_at)) + warmup
    run.end = run.start + weeks * WEEK
    m.advance(run.end)
    tr = m.recorder["transfers"].arrays()
    keep = ~np.isnan(tr["point"]) & ~np.isnan(tr["finished_at"])
    vm, avail, cap = tr["vm"][keep], tr["finished_at"][keep], tr["point"][keep]
    order = np.lexsort((avail, vm))
    vm, avail, cap = vm[order], avail[order], cap[order]
    bounds = np.searchsorted(vm, np.arange(len(eligible) + 1))
    means, maxes, above = [], [], []
    for v in range(len(eligible)):
        a, c = avail[bounds[v]:bounds[v + 1]], cap[bounds[v]:bounds[v + 1]]
        if not eligible[v]:
            run.points.append((a[:0], c[:0]))
            means.append(np.nan)
            maxes.append(np.nan)
            above.append(np.full(len(grid), np.nan))
            continue
        first = max(int(np.searchsorted(a, run.start, side="right")) - 1, 0)
        last = int(np.searchsorted(a, run.end, side="left"))
        run.points.append((a[first:last].copy(), c[first:last].copy()))
        r0, length = curve_pieces([run.points[-1]], run.start, run.end)
        mean, top, share = _distribution(r0, length, grid)
        means.append(mean)
        maxes.append(top)
        above.append(share)
        _check_growth(run, m.replicas[v].vm.name, r0, length, scenario.replication.interval)
    run.mean, run.max, run.above = np.array(means), np.array(maxes), np.array(above)
    health = m.recorder["health"].arrays()
    critical = (health["health"] == H_CRITICAL) & (health["end"] > run.start)
    crit_now = [r.vm.name for r in m.replicas if r.eligible and r.health == H_CRITICAL]
    if critical.any() or crit_now:
        names = sorted({m.vm_names[i] for i in health["vm"][critical]} | set(crit_now))
        verb = "reaches" if len(names) == 1 else "reach"
        run.problems.append(f"{', '.join(names)} {verb} critical health (resynchronisation) in steady state")
    return run


def _check_growth(run: ProbeRun, name: str, r0: np.ndarray, length: np.ndarray, interval: float) -> None:
    """Flag a VM whose RPO grows from the first measured week to the last (replication falling behind): a VM that
    keeps up comes back to a low RPO every week (its backlog clears), so the lowest RPO of the last week is within
    two intervals of the first week's, and the weekly mean does not double."""
    t0 = run.start + np.concatenate(([0.0], np.cumsum(length)[:-1]))
    first, last = t0 < run.start + WEEK, t0 >= run.end - WEEK
    if not first.any() or not last.any():
        return

    def stats(sel: np.ndarray) -> tuple[float, float]:
        r, ln = r0[sel], length[sel]
        return float(r.min()), float((np.sum(r * ln) + np.sum(ln * ln) / 2) / ln.sum())

    (low1, mean1), (low2, mean2) = stats(first), stats(last)
    if low2 > low1 + 2 * interval or mean2 > 2 * mean1 + interval:
        f = format_duration
        run.problems.append(f"{name}'s RPO grows from week to week (lowest {f(low1)} and mean {f(mean1)} in the "
                            f"first week, {f(low2)} and {f(mean2)} in the last): replication falls behind")


@dataclass
class SteadyState:
    """Probe runs combined. Per VM (file order) and run: ``mean`` RPO (s), ``max`` RPO, ``above`` (share of time
    above each value of ``grid``); joint distributions of sets of VMs through :meth:`exceedance`."""

    names: list[str]
    grid: np.ndarray
    runs: list[ProbeRun]
    _joint: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def keeps_up(self) -> bool:
        return all(r.protected and not r.problems for r in self.runs)

    @property
    def problems(self) -> list[str]:
        """Why replication does not keep up: each kind of problem once (the first probe run's figures), by the text
        before its figures."""
        first: dict[str, str] = {}
        for p in (p for r in self.runs for p in r.problems):
            first.setdefault(p.split(" (")[0], p)
        return list(first.values())

    @property
    def mean(self) -> np.ndarray:  # runs x VMs
        return np.array([r.mean for r in self.runs])

    @property
    def max(self) -> np.ndarray:
        return np.array([r.max for r in self.runs])

    @property
    def above(self) -> np.ndarray:  # runs x VMs x grid
        return np.array([r.above for r in self.runs])

    def sample_losses(self, index: np.ndarray, instants: int, rng: np.random.Generator) -> np.ndarray:
        """Losses (s) of failure events at ``instants`` instants each, drawn uniformly over the probe runs'
        measured weeks: the joint state of the VMs at a Poisson failure (PASTA), so losses of VMs hit together are
        correlated as at one instant. ``index``: events x VM slots, the VM indices each event hit, padded with -1.
        Returns events x VM slots x instants (-inf in padded slots)."""
        events, width = index.shape
        out = np.full((events, width, instants), -np.inf)
        e, w = np.nonzero(index >= 0)
        if not len(e):
            return out
        runs = len(self.runs)
        run = rng.integers(0, runs, (events, instants))
        starts = np.array([r.start for r in self.runs])
        spans = np.array([r.end - r.start for r in self.runs])
        at = starts[run] + rng.random((events, instants)) * spans[run]
        key = (index[e, w][:, None] * runs + run[e]).ravel()  # (VM, run) of every (slot, instant)
        times = at[e].ravel()
        slot_e, slot_w = np.repeat(e, instants), np.repeat(w, instants)
        slot_j = np.tile(np.arange(instants), len(e))
        order = np.argsort(key, kind="stable")
        keys, firsts = np.unique(key[order], return_index=True)
        for k, lo, hi in zip(keys.tolist(), firsts.tolist(), [*firsts[1:].tolist(), len(order)], strict=True):
            v, r = divmod(k, runs)
            avail, cap = self.runs[r].points[v]
            sel = order[lo:hi]
            t = times[sel]
            out[slot_e[sel], slot_w[sel], slot_j[sel]] = t - cap[np.searchsorted(avail, t, side="right") - 1]
        return out


def steady_state(names: list[str], grid: np.ndarray, runs: list[ProbeRun]) -> SteadyState:
    """The probe runs ``runs`` combined (in the order of their index)."""
    return SteadyState(list(names), grid, list(runs))
