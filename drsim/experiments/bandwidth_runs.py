"""The replications of the bandwidth planner at one candidate upload: the worker task that runs them and
measures each replicating VM's RPO percentile (:func:`_plan_runs`), their statistics against the target
(:class:`_Point`), and the worker task that times the initial replication at the answer (:func:`_initial_runs`).

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
from drsim.model.codes import K_DELTA
from drsim.model.site import SiteModel
from drsim.results.metrics import rpo_stats
from drsim.results.tables import Results
from drsim.scenario.document import Scenario

__all__ = ["rpo_quantiles", "criterion_text"]


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
        model = SiteModel(scenario, seed, start_protected=start_protected)
        res = Results(model.run())
        replicas = [r for r in model.replicas if r.eligible]  # the summary's figures, without the summary
        protected_at = np.array([r.protected_at for r in replicas], dtype=float)
        started = np.array([r.initial_started_at for r in replicas], dtype=float)
        steady = bool(np.isfinite(protected_at).all())
        start = float(protected_at.max()) if steady and window == "steady" else -math.inf
        idx = np.array([model.vm_names.index(n) for n in names])
        quant = rpo_quantiles(res, idx, q, start)
        quant[~np.isfinite(protected_at)] = np.inf
        # cycles since the start: a sent one is a delta upload queued then, a missed one a missed tick
        tr, mt = model.recorder["transfers"].arrays(), model.recorder["missed_ticks"].arrays()
        sent = (tr["kind"] == K_DELTA) & (tr["direction"] == 0) & (tr["queued_at"] >= start)
        n_vm = len(model.vm_names)
        n_missed = np.bincount(mt["vm"][mt["time"] >= start], minlength=n_vm)[idx].astype(float)
        total = np.bincount(tr["vm"][sent], minlength=n_vm)[idx] + n_missed
        with np.errstate(divide="ignore", invalid="ignore"):
            missed = np.where(total > 0, n_missed / total, np.nan)
        out.append((rep, {
            "quantile": quant,
            "protected_at": protected_at,
            "initial_s": protected_at - started,
            "missed": missed,
            "steady": np.full(len(names), float(steady)),
        }))
    return out


def rpo_quantiles(res: Results, codes: np.ndarray, q: float, start: float = -math.inf) -> np.ndarray:
    """The exact ``q`` time quantile (s) of the RPO of the VMs with file-order indices ``codes``, over the run from
    ``start`` (s; the pieces cut there: the RPO at ``start`` is r0 + (start - t0)), from the run's RPO pieces
    (:func:`drsim.results.metrics.rpo_stats`); inf for a VM with no RPO then."""
    seg_codes, t0, r0, length = res.rpo_segments()
    if start > -math.inf:
        cut = np.maximum(start - t0, 0.0)
        r0, length = r0 + np.minimum(cut, length), np.maximum(length - cut, 0.0)
    out = np.full(len(codes), np.inf)
    for j, code in enumerate(codes):
        sel = (seg_codes == code) & (length > 0)
        if sel.any():
            value = rpo_stats(r0[sel], length[sel], res.scenario.objectives.rpo, q=q).p95
            out[j] = value if math.isfinite(value) else np.inf
    return out


def criterion_text(criterion: str, replications: int) -> str:
    """How a bandwidth or an option is judged over ``replications``, in words (the plan's and options' texts)."""
    if replications <= 1:
        return "the single replication's value"
    return ("upper end of the 95 % confidence interval of the mean over replications" if criterion == "upper"
            else "mean over replications")


def _initial_runs(scenario: Scenario, runs: list[tuple[int, int]],
                  step: float = 86400.0) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Worker task: the initial replication of ``runs`` ((replication, seed) pairs) of ``scenario``, each run
    simulated only until its last replicating VM is protected (in steps of ``step`` seconds; at most the
    scenario's duration): the run up to then is the full-length run's, event for event, so the times are the
    same, without the weeks of delta cycles after. Per replicating VM (scenario order): ``protected_at`` (s from
    t = 0) and ``initial_s`` (s from its initial start to protection), NaN when not within the duration, as in
    the summary table."""
    out = []
    for rep, seed in runs:
        model = SiteModel(scenario, seed)
        replicas = [r for r in model.replicas if r.eligible]
        now = 0.0
        while now < model.horizon and any(r.protected_at != r.protected_at for r in replicas):
            now = min(now + step, model.horizon)
            model.advance(now)
        at = np.array([r.protected_at for r in replicas], dtype=float)
        started = np.array([r.initial_started_at for r in replicas], dtype=float)
        out.append((rep, {"protected_at": at, "initial_s": at - started}))
    return out


class _Point:
    """The replications at one bandwidth: arrays (replication x VM).

    ``n_target``: the replications the criterion is defined over. With fewer (the fast planner far from the
    answer), ``stat`` is the criterion **predicted** for ``n_target`` replications: the mean, plus for
    ``"upper"`` t(0.975, n_target - 1) * s / sqrt(n_target) with s the standard deviation of the replications
    at hand (the mean alone with one); ``ci95`` stays the interval of the replications at hand. With a
    ``reference`` (the quantiles, replications x VMs, of another bandwidth that has all ``n_target``
    replications, with the same seeds), the prediction is paired instead (common random numbers): the reference's
    mean over all its replications plus the difference of the two means over the replications at hand, and the
    reference's half-width scaled by the ratio of the two spreads over the replications at hand (a spread from
    two or three values alone is far noisier than that ratio of paired spreads)."""

    def __init__(self, upload: float, data: dict[str, np.ndarray], target: float, criterion: str,
                 n_target: int | None = None, reference: np.ndarray | None = None):
        self.upload = upload
        self.data = data
        q = data["quantile"]
        n = q.shape[0]
        n_target = max(n, n_target or n)
        if reference is not None and n < n_target and reference.shape[0] >= n_target and np.isfinite(q).all() \
                and np.isfinite(reference).all():
            self._paired(q, reference[:n_target], target, criterion)
            return
        with np.errstate(invalid="ignore"):
            self.mean = q.mean(axis=0)
            if n >= 2:
                finite = np.isfinite(q).all(axis=0)
                std = np.where(finite, q.std(axis=0, ddof=1), np.nan)
                self.ci95 = np.where(finite, float(t_975(n - 1)) * std / math.sqrt(n), np.inf)
                half = np.where(finite, float(t_975(n_target - 1)) * std / math.sqrt(n_target), np.inf)
            else:
                self.ci95 = np.full(q.shape[1], np.nan)
                half = self.ci95
        stat = self.mean + np.nan_to_num(half, nan=0.0) if criterion == "upper" else self.mean
        self.stat = np.where(np.isnan(stat), np.inf, stat)
        self.met = self.stat <= target

    def _paired(self, q: np.ndarray, ref: np.ndarray, target: float, criterion: str) -> None:
        n, m = q.shape[0], ref.shape[0]
        self.mean = q.mean(axis=0)
        if n >= 2:
            self.ci95 = float(t_975(n - 1)) * q.std(axis=0, ddof=1) / math.sqrt(n)
        else:
            self.ci95 = np.full(q.shape[1], np.nan)
        predicted = ref.mean(axis=0) + (self.mean - ref[:n].mean(axis=0))
        half = float(t_975(m - 1)) * ref.std(axis=0, ddof=1) / math.sqrt(m)
        if n >= 2:  # the spread scaled by the ratio of the two spreads over the same replications
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = q.std(axis=0, ddof=1) / ref[:n].std(axis=0, ddof=1)
            half = np.where(np.isfinite(ratio), half * ratio, float(t_975(m - 1)) * q.std(axis=0, ddof=1)
                            / math.sqrt(m))
        self.stat = predicted + half if criterion == "upper" else predicted
        self.met = self.stat <= target

    @property
    def site_met(self) -> bool:
        return bool(self.met.all())
