"""Bandwidth planner: the minimum upload bandwidth that meets an RPO target, found by simulation.

:func:`plan` answers the Deployment-Planner questions for a scenario:

* **required bandwidth**: the smallest raw upload bandwidth at which every protected VM's RPO stays within the
  target for the given percentile of its protected time, and the same for each VM on its own (the link stays
  shared: a VM's requirement is the site bandwidth at which *that* VM meets the target);
* the **initial-replication time** per VM and per batch at the site's required bandwidth;
* the **achievable RPO percentile** at the scenario's current bandwidth (and at the formula's bandwidth);
* the bandwidth a **reconstruction of the vendor planner's formula** (p95 of hourly churn x 1.3) would give, so
  one sees where it under- or over-provisions.

What is measured at each bandwidth, and the criterion over replications: :mod:`drsim.experiments.bandwidth_runs`.
The sizing scenario, the throttle (scaled with the uplink) and the formula: :mod:`drsim.experiments.sizing`.

**Search.** Bisection over bandwidth, with common random numbers (replication ``k`` runs with the same seed
:func:`drsim.experiments.seeds.replication_seed` at every bandwidth, so the estimates are paired). Lower end of
each bracket: the bandwidth whose mean payload capacity equals the mean churn, mean churn / compression /
efficiency / mean throttle share (below it the backlog grows without bound); not simulated. Upper end: the
smallest simulated bandwidth that meets the target; the first candidates are the current and the formula
bandwidths, then the largest bandwidth tried is doubled until the target is met (at most :data:`MAX_DOUBLINGS`
times). Each bracket (the site's and every VM's) is halved until its width is at most a tolerance
(``tolerance``, or ``rel_tolerance`` times its upper end when wider); the answer is
its upper end, a simulated bandwidth that met the target, at most that tolerance above the largest one shown to
fail (or the lower bound). A VM's answer is a site bandwidth, so its lower bound is the higher of its own and the
site's; a bandwidth below a lower bound never counts as meeting the target. Brackets are halved together: one
simulated bandwidth serves every bracket whose middle half it falls in. The search assumes the metric falls as the
bandwidth grows.

**Fast search** (``method="fast"``, the default): the runs start with every VM protected
(:class:`~drsim.model.site.SiteModel` ``start_protected``) and last
:func:`~drsim.experiments.sizing.steady_window_length` (two weeks with a weekly pattern, a week with a daily one,
two days without any); one replication a candidate steers the search far from the answer, and every
replication, judged by the criterion, is run at each candidate near it
(:func:`~drsim.experiments.plan_search.fast_search`, which interpolates where the criterion crosses the target;
the current and the formula bandwidths get :data:`FEW_REPLICATIONS`, judged by the criterion predicted for all of
them; :class:`~drsim.experiments.plan_search.Candidates` tops a bandwidth up with the same seeds); a deterministic
scenario (:func:`is_deterministic`) gets one replication. Only the site's bracket is refined; each VM's is read
from the simulated bandwidths. Initial replication times come from one run at the answer simulated only until
every VM is protected (:func:`~drsim.experiments.bandwidth_runs._initial_runs`: the full-length run's times,
without its weeks of cycles after). The README says why the answer is the full search's (``method="full"``).

The old path ``drsim.planner`` gives this module, so the planner's names kept elsewhere (:func:`plan_text`, the
sizing helpers and the formula's constants) are importable from here too.

Imports :mod:`drsim.scenario`, :mod:`drsim.results` and, of this stage, the request, the seeds, the executors, the
sizing, the search, the runs at one bandwidth and the plan's text.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import pandas as pd

from drsim.experiments.bandwidth_runs import _initial_runs, _Point, criterion_text
from drsim.experiments.executors import resolve_executor, shutdown, stop_pool
from drsim.experiments.plan_request import (
    DEFAULT_REL_TOLERANCE,
    DEFAULT_TOLERANCE,
    PlanError,
    check_request,
    parse_tolerances,
    tolerance_at,
)
from drsim.experiments.plan_search import Candidates, bracket, fast_search
from drsim.experiments.planner_text import mbit, plan_text
from drsim.experiments.seeds import replication_seed
from drsim.experiments.sizing import (
    DAILY_WINDOW,
    FLAT_WINDOW,
    FORMULA_GROWTH,
    FORMULA_PERCENTILE,
    STEADY_WINDOW,
    _batches,
    _eligible,
    _steady_window,
    formula_bandwidth,
    hourly_rates,
    scenario_at,
    sizing_bounds,
    sizing_scenario,
    steady_window_length,
    throttle_share,
)
from drsim.results.tables import SITE
from drsim.scenario import units
from drsim.scenario.churn import mean_rate
from drsim.scenario.document import Scenario
from drsim.scenario.loading import load_scenario
from drsim.scenario.site import protectable

__all__ = ["plan", "plan_text", "PlanError", "sizing_scenario", "scenario_at", "throttle_share",
           "formula_bandwidth", "hourly_rates", "FORMULA_GROWTH", "FORMULA_PERCENTILE", "DEFAULT_TOLERANCE",
           "DEFAULT_REL_TOLERANCE", "parse_tolerances",
           "MAX_DOUBLINGS", "COLUMNS", "steady_window_length", "STEADY_WINDOW", "DAILY_WINDOW", "FLAT_WINDOW"]

MAX_DOUBLINGS = 16  #: doublings of the upper bound before giving up on a VM
FEW_REPLICATIONS = 3  #: the fast planner's replications at the current and formula bandwidths (assumption)
NEAR_TOLERANCES = 2  #: a bracket at most this many tolerances wide is near the answer: every replication
_MAX_ROUNDS = 200

#: Columns of the plan table (rates in bytes/s, durations in seconds).
COLUMNS = ("vm", "host", "batch", "mean_churn_Bps", "required_Bps", "required_low_Bps", "formula_Bps",
           "formula_ratio", "rpo_current_s", "rpo_current_ci95_s", "rpo_formula_s", "missed_formula",
           "rpo_required_s", "rpo_required_ci95_s", "initial_replication_s", "batch_initial_replication_s",
           "protected_after_s")


class _InitRuns:
    """The full-length run the fast planner reads initial replication times from (arrays: run x VM)."""

    def __init__(self, data: dict[str, np.ndarray]):
        self.data = data


def is_deterministic(scenario: Scenario) -> bool:
    """Whether the fast planner's runs of ``scenario`` draw nothing at random, so one replication is exact: no
    replicating VM's churn has a random hourly variation (``variation: 0``; a replayed trace, a profile and a
    weekend factor are deterministic). The sizing scenario has no failures, maintenance or drills and the
    steady-state runs skip the agent's setup time, the only other random draws of a run."""
    return all(v.churn.trace is not None or v.churn.variation == 0 for _, _, v in _eligible(scenario))


_bracket = bracket  # the search's bracket, read off the simulated bandwidths (drsim.experiments.plan_search)


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
    method: str = "fast",
    rel_tolerance: str | float = DEFAULT_REL_TOLERANCE,
) -> pd.DataFrame:
    """Size the upload for an RPO target met ``percentile`` % of the protected time by every VM.

    ``rpo``: the target (``"15m"`` or seconds; default: the scenario's objective). ``percentile``: in percent
    (95, not 0.95). ``replications``: runs per bandwidth (common random numbers: the same run seeds at every
    bandwidth). ``tolerance``: the width of the final bracket (``"0.5Mbit/s"`` or bytes/s), or ``rel_tolerance``
    (``"1%"`` or 0.01) times the bracket's upper end when that is wider (0: the absolute tolerance alone).
    ``executor``: any :class:`concurrent.futures.Executor` or a Dask ``distributed.Client`` (default: a process
    pool with one worker per core, shut down at the end). ``seed``: the experiment seed (default: the scenario's).
    ``criterion``: ``"upper"`` (the upper end of the 95 % confidence interval of the mean over replications) or
    ``"mean"``. ``window``: ``"steady"`` (RPO measured once every VM is protected) or ``"protected"`` (over each
    VM's whole protected time).
    ``progress(message)`` is called as the search advances (with an estimate of the time left).
    ``method``: ``"fast"`` (the steady state over a two-week window, one replication far from the answer; the
    default) or ``"full"`` (every candidate over the whole scenario, initial replication included).

    Returns one row per replicating VM and a ``(site)`` row (columns :data:`COLUMNS`; rates in bytes/s,
    durations in seconds); ``attrs`` holds the request, the method and every simulated bandwidth. See the
    module documentation for the method. Raises :class:`PlanError` for a request that cannot be answered.
    """
    t_start = time.perf_counter()
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    target, pct, tol, rel = check_request(scenario, rpo, percentile, tolerance, rel_tolerance, replications,
                                          criterion, window, method)
    n_rep = int(replications)
    q = pct / 100
    interval = scenario.replication.interval
    eligible = _eligible(scenario)
    names = [v.name for _, _, v in eligible]
    hosts = [h.name for _, h, _ in eligible]
    exp_seed = scenario.seed if seed is None else int(seed)
    deterministic = method == "fast" and is_deterministic(scenario)
    if deterministic:
        n_rep = 1  # every replication would give the same runs
    seeds = [replication_seed(exp_seed, k) for k in range(n_rep)]

    base = sizing_scenario(scenario)
    link = base.link
    current = float(link.upload)
    share = throttle_share(base)
    churn = np.array([mean_rate(base, v) for _, _, v in eligible])
    capacity_per_bps = link.compression * link.efficiency * share  # payload bytes/s per raw byte/s, long run
    lower_vm = churn / capacity_per_bps
    lower_site = float(churn.sum() / capacity_per_bps)
    formula, bound = sizing_bounds(base, seeds)  # bound: VMs that resync at some interval whatever the bandwidth
    always = [b for b in bound if b[1] >= b[3]]
    if always:
        size = units.format_size
        raise PlanError("; ".join(
            f"{name}: it writes {size(mean)} in an average {units.format_duration(interval)} interval, at least the "
            f"{size(limit)} at which a disk's change log reaches half the disk: it needs resynchronisation between "
            "two cuts at any bandwidth" for name, mean, _peak, limit in always)
            + "; shorten the interval, or check the disks' sizes and churn")
    formula_vm = np.array([formula[n] for n in names])
    formula_site = float(formula_vm.sum())

    pool, workers, own, _ = resolve_executor(executor)
    fast = method == "fast"
    run_base = _steady_window(base) if fast else base
    cands = Candidates(pool, workers, lambda b: scenario_at(run_base, b), seeds, q, window, target, criterion,
                       fast, progress, mbit)
    points = cands.points
    few = n_rep if not fast else min(n_rep, FEW_REPLICATIONS)

    keys: list[tuple[str, Callable[[_Point], bool], float]] = [(SITE, lambda p: p.site_met, lower_site)]
    for j, name in enumerate(names):  # a VM's answer is a site bandwidth: the link must carry the site's churn
        keys.append((name, lambda p, j=j: bool(p.met[j]), max(float(lower_vm[j]), lower_site)))

    init_point = None
    cap = max(current, formula_site, lower_site, 1.0) * 2.0**MAX_DOUBLINGS
    try:
        cands.evaluate({current: few, formula_site: few})
        if fast:
            fast_search(cands, lower_site, tol, rel, few, q * interval, cap, _MAX_ROUNDS)
        while not fast and cands.rounds < _MAX_ROUNDS:
            top = max(points)
            doubling = False
            brackets = []
            wanted: dict[float, int] = {}
            widest = 0.0
            for _key, met, lower in (keys[:1] if fast else keys):  # fast: the VMs' brackets are not refined
                lo, hi = _bracket(points, met, lower)
                if math.isinf(hi):
                    doubling = doubling or top < max(current, formula_site, lower_site, 1.0) * 2.0**MAX_DOUBLINGS
                    continue
                width = hi - (0.0 if math.isnan(lo) else lo)
                t = tolerance_at(tol, rel, hi)
                widest = max(widest, width / t)
                close = width <= NEAR_TOLERANCES * t
                if close:  # near the answer: the bracket's simulated ends get every replication
                    for b in (lo, hi):
                        if b in points and cands.count(b) < n_rep:
                            wanted[b] = n_rep
                if math.isnan(lo):
                    if hi > t:
                        brackets.append((hi / 2, hi, True, close))
                elif width > t:
                    brackets.append((lo, hi, False, close))
            if doubling:
                wanted.setdefault(2 * max(top, lower_site), few)
            for lo, hi, down, close in sorted(brackets, key=lambda x: x[0] - x[1]):
                reps = n_rep if close else few
                if down:
                    wanted[lo] = max(wanted.get(lo, 0), reps)
                    continue
                w = hi - lo
                inside = [b for b in wanted if lo + w / 4 <= b <= hi - w / 4]
                if inside:
                    wanted[inside[0]] = max(wanted[inside[0]], reps)
                else:
                    wanted[(lo + hi) / 2] = reps
            if not any(cands.count(b) < n for b, n in wanted.items()):
                break
            missing = sum(max(n - cands.count(b), 0) for b, n in wanted.items())
            cands.evaluate(wanted, runs_later=math.log2(max(widest, 1.0)) * missing)
        site_hi = _bracket(points, keys[0][1], lower_site)[1]
        if fast and math.isfinite(site_hi):  # initial replication: one run at the answer, until all are protected
            if progress is not None:
                progress(f"initial replication at {mbit(site_hi)}: one run until every VM is protected")
            init_runs = pool.submit(_initial_runs, scenario_at(base, site_hi), [(0, seeds[0])]).result()
            init_point = {key: value[None, :] for key, value in init_runs[0][1].items()}
    except KeyboardInterrupt:
        if own:
            stop_pool(pool)
        raise
    finally:
        if own:
            shutdown(pool, cancel=True)
    rounds = cands.rounds

    # ------------------------------------------------------------------------------------------------
    # The table
    results = {key: _bracket(points, met, lower) for key, met, lower in keys}
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

    init_src = at_required if init_point is None or at_required is None else _InitRuns(init_point)
    init_s = col_mean(init_src, "initial_s")
    prot_after = col_mean(init_src, "protected_at") - offset
    batch_s = np.full(len(names), np.nan)
    site_init = site_after = np.nan
    if at_required is not None:
        pa = init_src.data["protected_at"]
        started = pa - init_src.data["initial_s"]
        per_batch: dict[int, float] = {}
        for k in sorted(set(batch_of.values())):
            cols = [j for j, n in enumerate(names) if batch_of[n] == k]
            per_batch[k] = float(np.mean(pa[:, cols].max(axis=1) - started[:, cols].min(axis=1)))
        batch_s = np.array([per_batch[batch_of[n]] for n in names])
        site_init = float(np.mean(pa.max(axis=1) - started.min(axis=1)))
        site_after = float(np.mean(pa.max(axis=1))) - offset
        short = [b for b in (site_lo, site_hi) if b in points and cands.count(b) < n_rep]
        if site_hi - site_lo > tolerance_at(tol, rel, site_hi) * (1 + 1e-9) or short:
            notes.append(f"the search stopped after {rounds} rounds before its bracket closed: the answer is between "
                         f"{mbit(site_lo)} and {mbit(site_hi)}, " + ("judged with fewer than every replication at "
                         + " and ".join(mbit(b) for b in short) if short else "wider than the tolerance"))
    else:
        notes.append(f"no simulated bandwidth up to {mbit(max(points))} met the target for every VM"
                     + (f" (the search stopped after {rounds} rounds)" if rounds >= _MAX_ROUNDS else ""))
    for name, _mean, peak, limit in bound:
        notes.append(f"{name}: its busiest {units.format_duration(interval)} interval writes "
                     f"{units.format_size(peak)}, at least the {units.format_size(limit)} at which a disk's change log "
                     "reaches half the disk: it needs a resynchronisation then at any bandwidth")
    skipped = [v.name for h, v in scenario.vms() if not protectable(h, v)]
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
        at_own = points.get(hi)  # the VM's RPO at its own required bandwidth
        rows.append({
            "vm": name, "host": hosts[j], "batch": batch_of[name], "mean_churn_Bps": float(churn[j]),
            "required_Bps": hi if math.isfinite(hi) else math.nan, "required_low_Bps": lo,
            "formula_Bps": float(formula_vm[j]),
            "rpo_current_s": float(finite(at_current.mean)[j]), "rpo_current_ci95_s": float(at_current.ci95[j]),
            "rpo_formula_s": float(finite(at_formula.mean)[j]),
            "missed_formula": float(np.nanmean(at_formula.data["missed"][:, j]))
            if np.isfinite(at_formula.data["missed"][:, j]).any() else math.nan,
            "rpo_required_s": float(finite(at_own.mean)[j]) if at_own else math.nan,
            "rpo_required_ci95_s": float(at_own.ci95[j]) if at_own else math.nan,
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
        "rel_tolerance": rel,
        "bracket_tolerance_Bps": tolerance_at(tol, rel, site_hi),
        "criterion": criterion,
        "criterion_text": criterion_text(criterion, n_rep),
        "window": window,
        "measured": f"per VM, the {pct:g}th time percentile of the RPO (exact) "
                    + ("in the steady state, once every VM is protected" if window == "steady"
                       else "over its whole protected time"),
        "current_upload_Bps": current,
        "lower_bound_Bps": lower_site,
        "formula_meets": at_formula.site_met,
        "throttle_share": share,
        "throttle": None if throttle is None else (
            f"kept, scaled with the uplink: work hours {throttle.work_limit / current:.0%} of it, off hours "
            f"{(throttle.off_limit if throttle.off_limit is not None else current) / current:.0%}"),
        "sizing": "failures, maintenance and drills removed",
        "formula": f"a reconstruction of the vendor planner's sizing (its algorithm is unpublished): "
                   f"p{FORMULA_PERCENTILE:g} of hourly churn x {FORMULA_GROWTH} growth, summed over the protected "
                   "VMs, / compression / efficiency",
        "evaluations": [{"upload_Bps": b, "site_met": p.site_met, "replications": int(p.data["quantile"].shape[0]),
                         "rpo_mean_s": dict(zip(names, map(float, p.mean), strict=True)),
                         "rpo_stat_s": dict(zip(names, map(float, p.stat), strict=True))}
                        for b, p in sorted(points.items())],
        "runs": cands.runs,
        "method": method,
        "deterministic": deterministic,
        "window_s": float(run_base.duration),
        "rounds": rounds,
        "notes": notes,
        "wall_time_s": round(time.perf_counter() - t_start, 3),
    }
    return df
