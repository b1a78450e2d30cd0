"""The replications of the bandwidth planner at one candidate upload: the worker task that runs them and
measures each replicating VM's RPO percentile (:func:`_plan_runs`), and their statistics against the target
(:class:`_Point`).

**What is measured.** For each VM and replication, the ``percentile``-th time percentile of the RPO curve,
computed exactly from the run's RPO segments with :func:`drsim.results.metrics.rpo_stats` (``rpo_p95_s`` of the
summary, generalised to any percentile), over the **steady state**: from the moment the last replicating VM is
protected to the end of the run. The RPO exists only while a VM is protected, so its own initial replication is
always excluded; the steady window also leaves out the days when VMs already protected share the link with the
initial copies of later batches, a one-off that would otherwise make the answer depend on the run's duration.
(When the site's initial replication does not finish within the run, each VM is measured over its own protected
time, and the site fails.) ``window="protected"`` measures over each VM's whole protected time instead, exactly
as the summary's ``rpo_p95_s``. Over the replications, the criterion is by default the **upper end of the 95 %
confidence interval of the mean** (mean + t(0.975, n - 1) * std / sqrt(n), as in the sweep tables; the value
itself with one replication); ``criterion="mean"`` uses the mean. A VM not protected by the end of a replication
fails.

Imports :mod:`drsim.scenario`, :mod:`drsim.model`, :mod:`drsim.results` and, of this stage, the statistics and
the planner's sizing.
"""

from __future__ import annotations

import math

import numpy as np

from drsim.experiments.sizing import _eligible
from drsim.experiments.statistics import t_975
from drsim.model.site import SiteModel
from drsim.results.metrics import rpo_stats
from drsim.results.tables import Results
from drsim.scenario.document import Scenario

__all__: list[str] = []


def _plan_runs(scenario: Scenario, q: float, window: str, runs: list[tuple[int, int]],
               start_protected: bool = False) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Worker task: run ``runs`` ((replication, seed) pairs) of ``scenario``. Per replicating VM (in scenario
    order): the ``q`` time quantile of its RPO over the measured window (inf when the VM is never protected),
    protected_at, initial_replication_s and the share of missed cycles; ``steady``: whether every replicating
    VM was protected (the steady state was reached).

    ``window="steady"`` measures from the moment the last replicating VM is protected (the end of the site's
    initial replication; the VM's own protected time when that never happens in the run); ``"protected"`` over
    the VM's whole protected time, like the summary's ``rpo_p95_s``. ``start_protected``: every VM protected at
    t = 0 (the fast planner's steady state, :class:`~drsim.model.site.SiteModel`); the window is then the run."""
    names = [v.name for _, _, v in _eligible(scenario)]
    out = []
    for rep, seed in runs:
        res = Results(SiteModel(scenario, seed, start_protected=start_protected).run())
        summ = res.summary.set_index("vm")
        protected_at = summ.loc[names, "protected_at"].to_numpy(dtype=float)
        steady = bool(np.isfinite(protected_at).all())
        start = float(protected_at.max()) if steady and window == "steady" else -math.inf
        rpo = res.rpo
        codes = rpo["vm"].cat.codes.to_numpy()[0::2]
        cats = list(rpo["vm"].cat.categories)
        t = rpo["time"].to_numpy()
        v = rpo["rpo"].to_numpy()
        t0, r0, length = t[0::2], v[0::2], t[1::2] - t[0::2]
        if start > -math.inf:  # cut the pieces to [start, end): the RPO at start is r0 + (start - t0)
            cut = np.maximum(start - t0, 0.0)
            r0, length = r0 + np.minimum(cut, length), np.maximum(length - cut, 0.0)
        quant = np.full(len(names), np.inf)
        for j, name in enumerate(names):
            sel = (codes == cats.index(name)) & (length > 0)
            if bool(summ.at[name, "protected"]) and sel.any():
                value = rpo_stats(r0[sel], length[sel], res.scenario.objectives.rpo, q=q).p95
                quant[j] = value if math.isfinite(value) else np.inf
        cy = res.cycles
        cy = cy[cy["time"] >= start]
        cy_codes = cy["vm"].cat.codes.to_numpy()
        cy_missed = (cy["outcome"] == "missed").to_numpy()
        idx = np.array([cats.index(n) for n in names])
        total = np.bincount(cy_codes, minlength=len(cats))[idx].astype(float)
        n_missed = np.bincount(cy_codes[cy_missed], minlength=len(cats))[idx].astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            missed = np.where(total > 0, n_missed / total, np.nan)
        out.append((rep, {
            "quantile": quant,
            "protected_at": protected_at,
            "initial_s": summ.loc[names, "initial_replication_s"].to_numpy(dtype=float),
            "missed": missed,
            "steady": np.full(len(names), float(steady)),
        }))
    return out


class _Point:
    """The replications at one bandwidth: arrays (replication x VM)."""

    def __init__(self, upload: float, data: dict[str, np.ndarray], target: float, criterion: str):
        self.upload = upload
        self.data = data
        q = data["quantile"]
        n = q.shape[0]
        with np.errstate(invalid="ignore"):
            self.mean = q.mean(axis=0)
            if n >= 2:
                finite = np.isfinite(q).all(axis=0)
                std = np.where(finite, q.std(axis=0, ddof=1), np.nan)
                self.ci95 = np.where(finite, float(t_975(n - 1)) * std / math.sqrt(n), np.inf)
            else:
                self.ci95 = np.full(q.shape[1], np.nan)
        stat = self.mean + np.nan_to_num(self.ci95, nan=0.0) if criterion == "upper" else self.mean
        self.stat = np.where(np.isnan(stat), np.inf, stat)
        self.met = self.stat <= target

    @property
    def site_met(self) -> bool:
        return bool(self.met.all())
