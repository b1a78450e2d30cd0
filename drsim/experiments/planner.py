"""Bandwidth planner: the minimum upload bandwidth that meets an RPO target, found by simulation.

:func:`plan` answers the Deployment-Planner questions for a scenario:

* **required bandwidth**: the smallest raw upload bandwidth at which every protected VM's RPO stays within the
  target for the given percentile of its protected time, and the same for each VM on its own (the link stays
  shared: a VM's requirement is the site bandwidth at which *that* VM meets the target);
* the **initial-replication time** per VM and per batch at the site's required bandwidth;
* the **achievable RPO percentile** at the scenario's current bandwidth (and at the formula's bandwidth);
* the bandwidth the vendor planner's **peak-churn formula** would give, so one sees where it under- or
  over-provisions.

**What is measured.** For each VM and replication, the ``percentile``-th time percentile of the RPO curve,
computed exactly from the run's RPO segments with :func:`drsim.results.metrics.rpo_stats` (``rpo_p95_s`` of the summary,
generalised to any percentile), over the **steady state**: from the moment the last replicating VM is protected
to the end of the run. The RPO exists only while a VM is protected, so its own initial replication is always
excluded; the steady window also leaves out the days when VMs already protected share the link with the initial
copies of later batches, a one-off that would otherwise make the answer depend on the run's duration. (When the
site's initial replication does not finish within the run, each VM is measured over its own protected time, and
the site fails.) ``window="protected"`` measures over each VM's whole protected time instead, exactly as the
summary's ``rpo_p95_s``. Over the replications, the criterion is by default the **upper end of the 95 %
confidence interval of the mean** (mean + t(0.975, n - 1) * std / sqrt(n), as in the sweep tables; the value
itself with one replication); ``criterion="mean"`` uses the mean. A VM not protected by the end of a replication
fails.

**Sizing scenario.** Failures, maintenance and drills are removed (they interrupt replication or the RPO curve;
sizing is for normal operation). Everything else is kept: churn, interval, batches, setup, compression,
efficiency, duration.

**Throttle.** Kept, scaled with the uplink: at a candidate upload ``B`` the throttle limits are the scenario's
limits times ``B / current upload``, so the throttle keeps the same *share* of the uplink (e.g. half of it
during office hours). The answer is the raw uplink bandwidth under the scenario's throttle schedule.

**Search.** Bisection over bandwidth, with common random numbers (replication ``k`` runs with the same seed
:func:`drsim.experiments.experiment.replication_seed` at every bandwidth, so the estimates are paired). Lower end of each
bracket: the bandwidth whose mean payload capacity equals the mean churn, mean churn / compression / efficiency /
mean throttle share (below it the backlog grows without bound); not simulated. Upper end: the smallest simulated
bandwidth that meets the target; the first candidates are the current and the formula bandwidths, then the
largest bandwidth tried is doubled until the target is met (at most :data:`MAX_DOUBLINGS` times). Each bracket
(the site's and every VM's) is halved until its width is at most ``tolerance``; the answer is its upper end, a
simulated bandwidth that met the target, at most ``tolerance`` above the largest one shown to fail (or the lower
bound). Brackets are halved together: one simulated bandwidth serves every bracket whose middle half it falls
in. The search assumes the metric falls as the bandwidth grows.

**Formula.** The vendor planner's sizing: per VM, the 95th percentile of its hourly write rate (hours aligned to
the calendar, over the run's duration, pooled over the replications' write curves) times 1.3 growth; summed over
the protected VMs; divided by compression and efficiency. It ignores the throttle, the link sharing, bursts
within the hour and missed cycles.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drsim.experiments.executors import (
    ExecutorFailed,
    executor_failure,
    resolve_executor,
    shutdown,
    stop_pool,
    wait_first,
)
from drsim.experiments.experiment import apply_settings, replication_seed, t_975
from drsim.model.churn import build_curve, week_offset
from drsim.model.site import SiteModel
from drsim.model.streams import Streams
from drsim.results.findings import count, text_table
from drsim.results.metrics import rpo_stats
from drsim.results.tables import SITE, Results
from drsim.scenario import units
from drsim.scenario.churn import mean_rate
from drsim.scenario.document import Scenario
from drsim.scenario.loading import load_scenario

__all__ = ["plan", "plan_text", "PlanError", "sizing_scenario", "scenario_at", "throttle_share",
           "formula_bandwidth", "hourly_rates", "FORMULA_GROWTH", "FORMULA_PERCENTILE", "DEFAULT_TOLERANCE",
           "MAX_DOUBLINGS", "COLUMNS"]

FORMULA_GROWTH = 1.3  #: the vendor planner's growth factor
FORMULA_PERCENTILE = 95.0  #: the vendor planner's percentile of hourly churn
DEFAULT_TOLERANCE = 0.5e6 / 8  #: 0.5 Mbit/s, in bytes/s
MAX_DOUBLINGS = 16  #: doublings of the upper bound before giving up on a VM
_MAX_ROUNDS = 200

#: Columns of the plan table (rates in bytes/s, durations in seconds).
COLUMNS = ("vm", "host", "batch", "mean_churn_Bps", "required_Bps", "required_low_Bps", "formula_Bps",
           "formula_ratio", "rpo_current_s", "rpo_current_ci95_s", "rpo_formula_s", "missed_formula",
           "rpo_required_s", "rpo_required_ci95_s", "initial_replication_s", "batch_initial_replication_s",
           "protected_after_s")


class PlanError(ValueError):
    """A planning request that cannot be answered (bad target, percentile or tolerance)."""


# ----------------------------------------------------------------------------------------------------
# The sizing scenario


def _rate_text(bytes_per_s: float) -> str:
    """A rate as scenario text that parses back to exactly the same float."""
    return f"{float(bytes_per_s)!r}B/s"


def sizing_scenario(scenario: Scenario) -> Scenario:
    """``scenario`` without failures, maintenance and drills (sizing is for normal operation)."""
    if not (scenario.failures or scenario.maintenance or scenario.drills):
        return scenario
    return apply_settings(scenario, {"failures": [], "maintenance": [], "drills": []}, source="plan")


def scenario_at(scenario: Scenario, upload: float) -> Scenario:
    """``scenario`` with an upload of ``upload`` bytes/s; throttle limits scaled by ``upload / current upload``."""
    link = scenario.link
    if upload == link.upload:
        return scenario
    settings: dict[str, Any] = {"link.upload": _rate_text(upload)}
    if link.throttle is not None:
        factor = upload / link.upload
        settings["link.throttle.work_limit"] = _rate_text(link.throttle.work_limit * factor)
        if link.throttle.off_limit is not None:
            settings["link.throttle.off_limit"] = _rate_text(link.throttle.off_limit * factor)
    return apply_settings(scenario, settings, source=f"plan at {units.format_rate(upload)}")


def throttle_share(scenario: Scenario) -> float:
    """Mean share of the raw uplink the throttle leaves over a week (1 without a throttle)."""
    link = scenario.link
    t = link.throttle
    if t is None:
        return 1.0
    work = len(t.weekday_numbers) * (t.work_hours[1] - t.work_hours[0]) / units.WEEK
    off_limit = t.off_limit if t.off_limit is not None else link.upload
    return work * min(1.0, t.work_limit / link.upload) + (1 - work) * min(1.0, off_limit / link.upload)


def _eligible(scenario: Scenario) -> list[tuple[int, Any, Any]]:
    """(index among all VMs, host, VM) of every VM that replicates."""
    return [(i, h, v) for i, (h, v) in enumerate(scenario.vms()) if h.supported and v.protect]


def _batches(scenario: Scenario, names: list[str]) -> dict[str, int]:
    """1-based initial-replication batch of each replicating VM (as the model orders them)."""
    listed = scenario.replication.initial.batches
    if listed is None:
        return dict.fromkeys(names, 1)
    out: dict[str, int] = {}
    k = 0
    for batch in listed:
        members = [n for n in batch if n in names]
        if members:
            k += 1
            out.update(dict.fromkeys(members, k))
    rest = [n for n in names if n not in out]
    out.update(dict.fromkeys(rest, k + 1))
    return out


# ----------------------------------------------------------------------------------------------------
# The peak-churn formula


def hourly_rates(scenario: Scenario, vm: Any, seed: int) -> np.ndarray:
    """Mean write rate (bytes/s) of each whole calendar hour of the run, from the write curve the model builds
    for ``vm`` with run seed ``seed`` (one window over the run if it is shorter than an hour)."""
    horizon = scenario.duration
    curve = build_curve(scenario, vm, Streams(seed).get("churn", vm.name), horizon)
    offset = week_offset(scenario)
    first = math.ceil(offset / units.HOUR) * units.HOUR - offset
    n = int(math.floor((horizon - first) / units.HOUR + 1e-9))
    edges = first + units.HOUR * np.arange(n + 1) if n >= 1 else np.array([0.0, horizon])
    times = np.asarray(curve.times)
    i = np.searchsorted(times, edges, side="right") - 1
    written = np.asarray(curve.cumulative)[i] + np.asarray(curve.slopes)[i] * (edges - times[i])
    return np.diff(written) / np.diff(edges)


def formula_bandwidth(scenario: Scenario, seeds: list[int] | None = None) -> dict[str, float]:
    """The vendor planner's sizing per replicating VM (bytes/s of raw upload): the 95th percentile of its hourly
    write rate, pooled over the write curves of ``seeds`` (default: the scenario's seed), times 1.3, divided by
    compression and efficiency. The site's is the sum."""
    seeds = seeds or [scenario.seed]
    link = scenario.link
    out = {}
    for _, _, vm in _eligible(scenario):
        rates = np.concatenate([hourly_rates(scenario, vm, s) for s in seeds])
        peak = float(np.percentile(rates, FORMULA_PERCENTILE))
        out[vm.name] = peak * FORMULA_GROWTH / link.compression / link.efficiency
    return out


# ----------------------------------------------------------------------------------------------------
# Simulation of one bandwidth


def _plan_runs(scenario: Scenario, q: float, window: str,
               runs: list[tuple[int, int]]) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Worker task: run ``runs`` ((replication, seed) pairs) of ``scenario``. Per replicating VM (in scenario
    order): the ``q`` time quantile of its RPO over the measured window (inf when the VM is never protected),
    protected_at, initial_replication_s and the share of missed cycles; ``steady``: whether every replicating
    VM was protected (the steady state was reached).

    ``window="steady"`` measures from the moment the last replicating VM is protected (the end of the site's
    initial replication; the VM's own protected time when that never happens in the run); ``"protected"`` over
    the VM's whole protected time, like the summary's ``rpo_p95_s``."""
    names = [v.name for _, _, v in _eligible(scenario)]
    out = []
    for rep, seed in runs:
        res = Results(SiteModel(scenario, seed).run())
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


def _bracket(points: dict[float, _Point], met: Callable[[_Point], bool], lower: float) -> tuple[float, float]:
    """(lo, hi) from the simulated points: hi is the smallest bandwidth that met (inf if none), lo the largest
    below it that failed, or the lower bound when none did (NaN when even that is at or above hi)."""
    ups = sorted(points)
    good = [b for b in ups if met(points[b])]
    hi = good[0] if good else math.inf
    bad = [b for b in ups if b < hi and not met(points[b])]
    if bad:
        return bad[-1], hi
    return (lower, hi) if lower < hi else (math.nan, hi)


# ----------------------------------------------------------------------------------------------------
# The planner


def _parse(value: Any, parser: Callable[[Any], float], what: str) -> float:
    try:
        return parser(value) if isinstance(value, str) else float(value)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{what}: {exc}") from None


def plan(
    scenario: Scenario | str | Path,
    rpo: str | float | None = None,
    percentile: float = 95.0,
    replications: int = 10,
    tolerance: str | float = DEFAULT_TOLERANCE,
    executor: Executor | None = None,
    seed: int | None = None,
    criterion: str = "upper",
    window: str = "steady",
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Size the upload for an RPO target met ``percentile`` % of the protected time by every VM.

    ``rpo``: the target (``"15m"`` or seconds; default: the scenario's objective). ``percentile``: in percent
    (95, not 0.95). ``replications``: runs per bandwidth (common random numbers: the same run seeds at every
    bandwidth). ``tolerance``: the width of the final bracket (``"0.5Mbit/s"`` or bytes/s). ``executor``: any
    :class:`concurrent.futures.Executor` or a Dask ``distributed.Client`` (default: a process pool with one worker
    per core, shut down at the end). ``seed``: the experiment seed (default: the scenario's). ``criterion``:
    ``"upper"`` (the upper end of the 95 % confidence interval of the mean over replications) or ``"mean"``.
    ``window``: ``"steady"`` (RPO measured once every VM is protected) or ``"protected"`` (over each VM's whole
    protected time).
    ``progress(message)`` is called as the search advances.

    Returns one row per replicating VM and a ``(site)`` row (columns :data:`COLUMNS`; rates in bytes/s,
    durations in seconds); ``attrs`` holds the request, the method and every simulated bandwidth. See the
    module documentation for the method. Raises :class:`PlanError` for a request that cannot be answered.
    """
    t_start = time.perf_counter()
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    target = _parse(scenario.objectives.rpo if rpo is None else rpo, units.parse_duration, "--rpo")
    if not (math.isfinite(target) and target > 0):
        raise PlanError(f"--rpo: the RPO target must be a positive duration, got {rpo!r}")
    try:
        pct = float(percentile)
    except (TypeError, ValueError):
        raise PlanError(f"--percentile: expected a number of percent like 95, got {percentile!r}") from None
    if not 1 < pct <= 100:
        raise PlanError(f"--percentile: give the percentile of time in percent, above 1 and at most 100 "
                        f"(e.g. 95, not 0.95), got {percentile!r}")
    tol = _parse(tolerance, units.parse_rate, "--tolerance")
    if not (math.isfinite(tol) and tol > 0):
        raise PlanError(f"--tolerance: expected a positive rate like '0.5Mbit/s', got {tolerance!r}")
    if int(replications) < 1:
        raise PlanError(f"--replications: at least 1, got {replications!r}")
    if criterion not in ("upper", "mean"):
        raise PlanError(f"criterion: 'upper' or 'mean', got {criterion!r}")
    if window not in ("steady", "protected"):
        raise PlanError(f"window: 'steady' or 'protected', got {window!r}")
    n_rep = int(replications)
    q = pct / 100
    interval = scenario.replication.interval
    if target <= q * interval:
        raise PlanError(f"--rpo: a {units.format_duration(target)} RPO cannot be met {pct:g} % of the time when "
                        f"replicating every {units.format_duration(interval)} at any bandwidth: the RPO is at least "
                        f"the time since the last cut, above {units.format_duration(q * interval)} for that share "
                        "of the time; shorten the interval or loosen the target")
    eligible = _eligible(scenario)
    if not eligible:
        raise PlanError(f"{scenario.name}: no VM replicates (every VM has protect: false or an unsupported host)")
    names = [v.name for _, _, v in eligible]
    hosts = [h.name for _, h, _ in eligible]
    exp_seed = scenario.seed if seed is None else int(seed)
    seeds = [replication_seed(exp_seed, k) for k in range(n_rep)]

    base = sizing_scenario(scenario)
    link = base.link
    current = float(link.upload)
    share = throttle_share(base)
    churn = np.array([mean_rate(base, v) for _, _, v in eligible])
    capacity_per_bps = link.compression * link.efficiency * share  # payload bytes/s per raw byte/s, long run
    lower_vm = churn / capacity_per_bps
    lower_site = float(churn.sum() / capacity_per_bps)
    formula = formula_bandwidth(base, seeds)
    formula_vm = np.array([formula[n] for n in names])
    formula_site = float(formula_vm.sum())

    pool, workers, own, _ = resolve_executor(executor)
    points: dict[float, _Point] = {}

    def evaluate(uploads: list[float]) -> None:
        uploads = sorted({float(b) for b in uploads if float(b) not in points})
        if not uploads:
            return
        if progress is not None:
            progress("simulating " + ", ".join(mbit(b) for b in uploads) + f" ({n_rep} replication"
                     + ("s" if n_rep != 1 else "") + " each)")
        chunk = max(1, min(n_rep, math.ceil(n_rep * len(uploads) / (2 * workers))))
        futures = []
        for b in uploads:
            sc = scenario_at(base, b)
            for start in range(0, n_rep, chunk):
                runs = [(k, seeds[k]) for k in range(start, min(start + chunk, n_rep))]
                futures.append((b, pool.submit(_plan_runs, sc, q, window, runs)))
        collected: dict[float, dict[int, dict[str, np.ndarray]]] = {b: {} for b in uploads}
        try:
            for b, fut in futures:
                wait_first([fut])  # wakes up now and then, so Ctrl-C is noticed
                for rep, data in fut.result():
                    collected[b][rep] = data
        except BaseException as exc:
            for _, fut in futures:
                fut.cancel()
            if isinstance(exc, Exception) and executor_failure(exc):
                raise ExecutorFailed(f"{type(exc).__name__}: {str(exc) or 'the executor stopped'}") from exc
            raise
        for b in uploads:
            reps = collected[b]
            data = {key: np.vstack([reps[k][key] for k in range(n_rep)]) for key in reps[0]}
            points[b] = _Point(b, data, target, criterion)

    keys: list[tuple[str, Callable[[_Point], bool], float]] = [(SITE, lambda p: p.site_met, lower_site)]
    for j, name in enumerate(names):
        keys.append((name, lambda p, j=j: bool(p.met[j]), float(lower_vm[j])))

    rounds = 0
    try:
        evaluate([current, formula_site])
        while rounds < _MAX_ROUNDS:
            rounds += 1
            top = max(points)
            doubling = False
            brackets = []
            for _key, met, lower in keys:
                lo, hi = _bracket(points, met, lower)
                if math.isinf(hi):
                    doubling = doubling or top < max(current, formula_site, lower_site, 1.0) * 2.0**MAX_DOUBLINGS
                elif math.isnan(lo):
                    if hi > tol:
                        brackets.append((hi / 2, hi, True))
                elif hi - lo > tol:
                    brackets.append((lo, hi, False))
            wanted: list[float] = []
            if doubling:
                wanted.append(2 * max(top, lower_site))
            for lo, hi, down in sorted(brackets, key=lambda x: x[0] - x[1]):
                if down:
                    wanted.append(lo)
                    continue
                w = hi - lo
                if not any(lo + w / 4 <= b <= hi - w / 4 for b in wanted):
                    wanted.append((lo + hi) / 2)
            if not wanted:
                break
            evaluate(wanted)
    except KeyboardInterrupt:
        if own:
            stop_pool(pool)
        raise
    finally:
        if own:
            shutdown(pool, cancel=True)

    # ------------------------------------------------------------------------------------------------
    # The table
    results: dict[str, tuple[float, float]] = {}
    for key, met, lower in keys:
        lo, hi = _bracket(points, met, lower)
        results[key] = (0.0 if math.isnan(lo) else lo, hi)
    site_lo, site_hi = results[SITE]
    notes = []
    at_required = points.get(site_hi)
    at_current = points[current]
    at_formula = points[formula_site]
    batch_of = _batches(base, names)
    offset = base.initial_start_offset()

    def col_mean(p: _Point | None, key: str) -> np.ndarray:
        if p is None:
            return np.full(len(names), np.nan)
        with np.errstate(invalid="ignore"):
            return np.nanmean(p.data[key], axis=0) if np.isfinite(p.data[key]).any() else np.full(len(names), np.nan)

    def finite(x: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(x), x, np.nan)

    init_s = col_mean(at_required, "initial_s")
    prot_after = col_mean(at_required, "protected_at") - offset
    batch_s = np.full(len(names), np.nan)
    site_init = site_after = np.nan
    if at_required is not None:
        pa = at_required.data["protected_at"]
        started = pa - at_required.data["initial_s"]
        per_batch: dict[int, float] = {}
        for k in sorted(set(batch_of.values())):
            cols = [j for j, n in enumerate(names) if batch_of[n] == k]
            per_batch[k] = float(np.mean(pa[:, cols].max(axis=1) - started[:, cols].min(axis=1)))
        batch_s = np.array([per_batch[batch_of[n]] for n in names])
        site_init = float(np.mean(pa.max(axis=1) - started.min(axis=1)))
        site_after = float(np.mean(pa.max(axis=1))) - offset
    else:
        notes.append(f"no simulated bandwidth up to {mbit(max(points))} met the target for every VM")
    skipped = [v.name for h, v in scenario.vms() if not (h.supported and v.protect)]
    if skipped:
        notes.append(f"not replicated, so not sized: {', '.join(skipped)}")
    unsteady = int((at_current.data["steady"][:, 0] == 0).sum())
    if unsteady and window == "steady":
        notes.append(f"at the current {mbit(current)} the initial replication does not finish within the run in "
                     f"{unsteady} of {n_rep} replications: there the RPO is measured over each VM's protected time")
    for key, (_lo, hi) in results.items():
        if math.isinf(hi) and key != SITE:
            notes.append(f"{key}: the target was not met up to {mbit(max(points))}")

    def worst(p: _Point | None) -> tuple[float, float]:
        """Mean and confidence half-width of the VM with the highest criterion value."""
        if p is None:
            return math.nan, math.nan
        j = int(np.argmax(p.stat))
        return float(finite(p.mean)[j]), float(finite(p.ci95)[j])

    rows = []
    for j, name in enumerate(names):
        lo, hi = results[name]
        rows.append({
            "vm": name, "host": hosts[j], "batch": batch_of[name], "mean_churn_Bps": float(churn[j]),
            "required_Bps": hi if math.isfinite(hi) else math.nan, "required_low_Bps": lo,
            "formula_Bps": float(formula_vm[j]),
            "rpo_current_s": float(finite(at_current.mean)[j]), "rpo_current_ci95_s": float(at_current.ci95[j]),
            "rpo_formula_s": float(finite(at_formula.mean)[j]),
            "missed_formula": float(np.nanmean(at_formula.data["missed"][:, j]))
            if np.isfinite(at_formula.data["missed"][:, j]).any() else math.nan,
            "rpo_required_s": float(finite(at_required.mean)[j]) if at_required else math.nan,
            "rpo_required_ci95_s": float(at_required.ci95[j]) if at_required else math.nan,
            "initial_replication_s": float(init_s[j]), "batch_initial_replication_s": float(batch_s[j]),
            "protected_after_s": float(prot_after[j]),
        })
    cur_mean, cur_ci = worst(at_current)
    req_mean, req_ci = worst(at_required)
    form_mean, _ = worst(at_formula)
    form_missed = at_formula.data["missed"]
    rows.append({
        "vm": SITE, "host": "", "batch": math.nan, "mean_churn_Bps": float(churn.sum()),
        "required_Bps": site_hi if math.isfinite(site_hi) else math.nan, "required_low_Bps": site_lo,
        "formula_Bps": formula_site,
        "rpo_current_s": cur_mean, "rpo_current_ci95_s": cur_ci, "rpo_formula_s": form_mean,
        "missed_formula": float(np.nanmean(form_missed)) if np.isfinite(form_missed).any() else math.nan,
        "rpo_required_s": req_mean, "rpo_required_ci95_s": req_ci,
        "initial_replication_s": site_init, "batch_initial_replication_s": math.nan, "protected_after_s": site_after,
    })
    df = pd.DataFrame(rows)
    df["batch"] = df["batch"].astype("Int64")
    # a VM's formula figure is its term of the site's sum, not a link size: the ratio is the site's only
    df["formula_ratio"] = np.where(df["vm"] == SITE, df["formula_Bps"] / df["required_Bps"], np.nan)
    df = df[list(COLUMNS)]
    throttle = link.throttle
    df.attrs = {
        "scenario": scenario.name,
        "rpo_s": target,
        "percentile": pct,
        "replications": n_rep,
        "experiment_seed": exp_seed,
        "run_seeds": seeds,
        "tolerance_Bps": tol,
        "criterion": criterion,
        "criterion_text": ("upper end of the 95 % confidence interval of the mean over replications"
                           if criterion == "upper" and n_rep > 1 else "mean over replications"
                           if n_rep > 1 else "the single replication's value"),
        "window": window,
        "measured": f"per VM, the {pct:g}th time percentile of the RPO (exact) "
                    + ("in the steady state, once every VM is protected" if window == "steady"
                       else "over its whole protected time"),
        "current_upload_Bps": current,
        "lower_bound_Bps": lower_site,
        "throttle_share": share,
        "throttle": None if throttle is None else (
            f"kept, scaled with the uplink: work hours {throttle.work_limit / current:.0%} of it, off hours "
            f"{(throttle.off_limit if throttle.off_limit is not None else current) / current:.0%}"),
        "sizing": "failures, maintenance and drills removed",
        "formula": f"p{FORMULA_PERCENTILE:g} of hourly churn x {FORMULA_GROWTH} growth, summed over the protected "
                   "VMs, / compression / efficiency",
        "evaluations": [{"upload_Bps": b, "site_met": p.site_met,
                         "rpo_mean_s": dict(zip(names, map(float, p.mean), strict=True)),
                         "rpo_stat_s": dict(zip(names, map(float, p.stat), strict=True))}
                        for b, p in sorted(points.items())],
        "runs": len(points) * n_rep,
        "rounds": rounds,
        "notes": notes,
        "wall_time_s": round(time.perf_counter() - t_start, 3),
    }
    return df


# ----------------------------------------------------------------------------------------------------
# Text


def mbit(bytes_per_s: float) -> str:
    if bytes_per_s is None or not math.isfinite(bytes_per_s):
        return "-"
    mbit = bytes_per_s * 8 / 1e6
    if mbit < 0.1:
        return units.format_rate(bytes_per_s)
    return f"{mbit:.2f} Mbit/s" if mbit < 100 else f"{mbit:.1f} Mbit/s"


def _dur(seconds: float, ci: float = math.nan) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    text = units.format_duration(seconds)
    return f"{text} ± {units.format_duration(ci)}" if math.isfinite(ci) and ci > 0 else text


def plan_text(df: pd.DataFrame) -> str:
    """The plan as printed by ``drsim plan``: the table and what it means."""

    a = df.attrs
    target = units.format_duration(a["rpo_s"])
    pct = f"p{a['percentile']:g}"
    lines = [
        f"{a['scenario']}: upload for a {target} RPO {a['percentile']:g} % of the time, every VM",
        f"measured: {a['measured']}; criterion: {a['criterion_text']}",
        f"{count(a['replications'], 'replication')} per bandwidth (same run seeds at every bandwidth), "
        f"tolerance {mbit(a['tolerance_Bps'])}; {count(len(a['evaluations']), 'bandwidth')} simulated "
        f"({count(a['runs'], 'run')}) in {a['wall_time_s']:.1f} s",
        f"sizing scenario: {a['sizing']}; throttle "
        + (a["throttle"] + " (the bandwidths are the raw uplink)" if a["throttle"] else "none"),
        "",
    ]
    header = ("VM", "batch", "mean churn", "required", "formula", "formula/req", f"{pct} now",
              f"{pct} at formula", f"{pct} at required", "initial repl.", "batch repl.", "protected after")
    rows = []
    for r in df.itertuples(index=False):
        ratio = r.formula_ratio
        rows.append((
            r.vm, "" if pd.isna(r.batch) else str(r.batch), mbit(r.mean_churn_Bps), mbit(r.required_Bps),
            mbit(r.formula_Bps), "-" if not math.isfinite(ratio) else f"{ratio:.2f}",
            _dur(r.rpo_current_s, r.rpo_current_ci95_s), _dur(r.rpo_formula_s), _dur(r.rpo_required_s),
            _dur(r.initial_replication_s), _dur(r.batch_initial_replication_s), _dur(r.protected_after_s),
        ))
    lines += text_table(header, rows)
    site = df[df["vm"] == SITE].iloc[0]
    vms = df[df["vm"] != SITE]
    lines.append("")
    lines += [
        "required: the raw upload at which the VM (the site: every VM) meets the target on the shared link.",
        f"formula: the VM's term of the vendor's peak-churn sum (p{FORMULA_PERCENTILE:g} of hourly churn x "
        f"{FORMULA_GROWTH} / compression / efficiency).",
        f"{pct}: means over replications at the current {mbit(a['current_upload_Bps'])} (± 95 % CI half-width), "
        "the formula's and the required bandwidth;",
        "the site row shows the worst VM. Initial replication times at the site's required bandwidth.",
        f"Lower bound of the search (mean churn / compression / efficiency / throttle share): "
        f"{mbit(a['lower_bound_Bps'])}.",
    ]
    lines.append("")
    lines.append("Findings:")
    req = site["required_Bps"]
    if math.isfinite(req):
        lines.append(f"- Every VM meets a {target} RPO {a['percentile']:g} % of the time from {mbit(req)} "
                     f"(not at {mbit(site['required_low_Bps'])}"
                     + (", the lower bound" if site["required_low_Bps"] == a["lower_bound_Bps"] else "") + ").")
        ratio = site["formula_ratio"]
        verdict = ("over-provisions" if ratio > 1 else "under-provisions")
        lines.append(f"- The peak-churn formula gives {mbit(site['formula_Bps'])}: it {verdict} by "
                     f"{abs(ratio - 1):.0%}; at that bandwidth the worst VM's {pct} RPO is "
                     f"{_dur(site['rpo_formula_s'])}"
                     + (f" and {site['missed_formula']:.1%} of cycles are missed" if site["missed_formula"] > 0
                        else "") + ".")
        lines.append(f"- At {mbit(req)} the initial replication takes {_dur(site['initial_replication_s'])}; "
                     f"every VM is protected after {_dur(site['protected_after_s'])}.")
        batches = vms.dropna(subset=["batch"]).groupby("batch", sort=True)
        if batches.ngroups > 1:
            parts = [f"{int(k)}: {', '.join(g['vm'])} {_dur(float(g['batch_initial_replication_s'].iloc[0]))}"
                     for k, g in batches]
            lines.append("- Batches at that bandwidth: " + "; ".join(parts) + ".")
    now = site["rpo_current_s"]
    meets = math.isfinite(now) and now <= a["rpo_s"]
    lines.append(f"- At the current {mbit(a['current_upload_Bps'])} the worst VM's {pct} RPO is {_dur(now)} "
                 + ("(meets the target)." if meets else "(misses the target)."))
    for note in a["notes"]:
        lines.append(f"- {note}.")
    return "\n".join(lines)
