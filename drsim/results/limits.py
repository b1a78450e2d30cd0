"""The service's churn limits checked against a run's simulated churn.

The support matrix gives the average churn the service supports per VM on each target storage tier
(:func:`drsim.scenario.site.churn_limit`). A planner needs to know whether the VM's churn stays within it most of
the time, not on average, so drsim judges the **95th percentile** of the simulated churn: the time-weighted
p95 of the VM's write rate over the run (its write curve is piecewise linear, so the rate is a step function and
the percentile is exact), and the peak. The same limit is applied to each disk's share of the churn. Rates in
bytes/s.

Imports the model's write curves (through the run's replicas), the scenario and :mod:`drsim.results.tables`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drsim.model.churn import WriteCurve
from drsim.results.tables import Results
from drsim.scenario.site import churn_limit

__all__ = ["ChurnCheck", "rate_percentile", "churn_checks", "churn_items", "churn_warnings"]


@dataclass(frozen=True)
class ChurnCheck:
    """A VM's simulated churn against the service's limit (bytes/s)."""

    vm: str
    p95: float
    peak: float
    limit: float
    disks_over: tuple[tuple[int, float], ...]  # (disk number from 1, its p95) for each disk over the limit

    @property
    def over(self) -> bool:
        return self.p95 > self.limit or bool(self.disks_over)


def rate_percentile(curve: WriteCurve, horizon: float, q: float = 0.95) -> tuple[float, float]:
    """The time-weighted ``q`` quantile and the maximum of the write rate of ``curve`` over [0, horizon] s."""
    times = np.asarray(curve.times)
    slopes = np.asarray(curve.slopes)
    ends = np.append(times[1:], np.inf)
    length = np.clip(np.minimum(ends, horizon) - times, 0.0, None)
    keep = length > 0
    rates, length = slopes[keep], length[keep]
    if not len(rates):
        return 0.0, 0.0
    order = np.argsort(rates, kind="stable")
    rates, length = rates[order], length[order]
    cum = np.cumsum(length)
    i = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(rates[min(i, len(rates) - 1)]), float(rates[-1])


def churn_checks(results: Results) -> list[ChurnCheck]:
    """Every protectable VM's p95 and peak churn against the limit of the scenario's target storage."""
    s = results.scenario
    limit = churn_limit(s.replication.target_storage, s.replication.io_size)
    out = []
    for r in results._model.replicas:
        if not r.eligible:
            continue
        p95, peak = rate_percentile(r.curve, results.end)
        disks = tuple((k, share * p95) for k, share in enumerate(r.vm.disk_shares, start=1) if share * p95 > limit)
        out.append(ChurnCheck(r.vm.name, p95, peak, limit, disks))
    return out


def _mb(rate: float) -> str:
    return f"{rate / 1e6:.2f} MB/s"


def churn_items(results: Results) -> list[tuple[str, str, str]]:
    """Per VM whose simulated churn is over the service's limit, worst (highest p95) first: (VM, the finding
    with its p95 and peak, a short detail)."""
    s = results.scenario
    disks = {vm.name: len(vm.disks) for _, vm in s.vms()}
    out = []
    for c in sorted((c for c in churn_checks(results) if c.over), key=lambda c: -c.p95):
        text = (f"{c.vm} writes {_mb(c.p95)} at the 95th percentile of the run (peak {_mb(c.peak)}), over the "
                f"{c.limit / 1e6:g} MB/s the service supports per VM on {s.replication.target_storage} storage "
                "(support matrix): the service would report it incompatible")
        if c.disks_over and disks[c.vm] > 1:
            over = ", ".join(f"disk {k} ({_mb(v)})" for k, v in c.disks_over)
            text += f"; each of these disks alone is over it: {over}"
        out.append((c.vm, text + ".", f"p95 {_mb(c.p95)}"))
    return out


def churn_warnings(results: Results) -> list[str]:
    """A finding for each VM whose simulated churn is over the service's limit, with its p95 and peak."""
    return [text for _, text, _ in churn_items(results)]
