"""What to buy: every combination of the options a planner lists (uploads, intervals, policies), simulated and
priced, with the two answers: the **cheapest option that meets the objectives** and the option with the **lowest
total expected annual cost** (:func:`compare_options`).

**Each option** is the scenario with that upload (the throttle scaled with it, as the planner does), interval and
policy, run ``replications`` times over its whole duration, failures included, with common random numbers (the same
run seeds for every option). Per run and VM: the ``percentile``-th time percentile of its RPO over its protected
time (exact, :func:`~drsim.experiments.bandwidth_runs.rpo_quantiles`; inf when the VM is never protected), the
site's lowest VM availability, and the costs (:func:`drsim.results.costs.costs_table`) with the price sheet: running
costs per year (licence, storage, compute, drills, egress and the uplink tier of that upload) and this run's
incidents (downtime and lost work) scaled to a year.

**Judged by the criterion**, as the bandwidth planner judges a bandwidth
(:class:`~drsim.experiments.bandwidth_runs._Point`): per VM, ``"upper"`` (the default) takes the upper end of
the 95 % confidence interval of the mean over the replications (mean + t(0.975, n - 1) * s / sqrt(n); the value
itself with one replication), ``"mean"`` the mean. An option **meets the objectives** when every VM was protected
in every replication and every VM's criterion is within the RPO target. ``rpo_stat_s`` is the worst VM's
criterion, ``rpo_mean_s`` the worst VM's mean.

**Expected incident cost.** ``incidents="auto"`` (the default) takes it from the risk engine
(:func:`drsim.experiments.risk.risk`, ``risk_years`` x ``risk_replications`` of the option's scenario, its
stochastic failures only, priced by :mod:`drsim.experiments.risk_costs`: the expected downtime and data loss per
year x the business prices, with a 95 % interval) where it can: when the scenario has stochastic failures
(``every:``) and the option's replication keeps up with its churn (else the risk engine would simulate every year
in full, which is refused). Otherwise, and with ``incidents="runs"``, it is the option's runs' own incidents scaled
to a year, averaged over the replications (scripted failures, maintenance and drills included; a month's incidents
are a noisy estimate of a year's). ``incident_basis`` says which, per option.

The lowest total (running + expected incident cost) is over every priced option, whether it meets the objectives
or not (a missed RPO costs only through the incidents it makes worse). An option whose upload matches no listed
uplink tier has an unknown price and is never chosen (its uplink cost is missing). Options whose running costs
are within half a currency unit a year of the cheapest count as equally cheap, and the one with the lowest RPO is
chosen; other ties go to the earlier option.

Imports :mod:`drsim.scenario`, :mod:`drsim.model`, :mod:`drsim.results` and, of this stage, the setting paths,
the planner's sizing helpers, the candidate statistics, the risk engine, the seeds and the executors.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np
import pandas as pd

from drsim.experiments.bandwidth_runs import _Point, criterion_text, rpo_quantiles
from drsim.experiments.executors import resolve_executor, shutdown, wait_first
from drsim.experiments.risk import NotKeepingUp, risk
from drsim.experiments.seeds import replication_seed
from drsim.experiments.settings_paths import apply_settings
from drsim.experiments.sizing import _eligible, scenario_at
from drsim.experiments.statistics import t_975
from drsim.model.site import SiteModel
from drsim.results.costs import costs_table, totals
from drsim.results.tables import Results
from drsim.scenario import units
from drsim.scenario.document import Scenario
from drsim.scenario.prices import PriceSheet

__all__ = ["compare_options", "OPTION_COLUMNS", "INCIDENTS"]

OPTION_COLUMNS = ("option", "upload_Bps", "interval_s", "policy", "rpo_stat_s", "rpo_mean_s", "availability_min",
                  "protected", "meets", "running_per_year", "incident_per_year", "incident_low", "incident_high",
                  "incident_basis", "total_per_year", "uplink_per_month")
INCIDENTS = ("auto", "runs")  #: where the expected incident cost comes from (see the module docstring)
RISK_YEARS = 20  #: the risk engine's horizon per option, years (assumption: with 50 replications, 1,000 years)
RISK_REPLICATIONS = 50  #: the risk engine's replications per option (assumption)


def _option_runs(scenario: Scenario, q: float, prices: PriceSheet, runs: list[tuple[int, int]]) -> list[dict]:
    """Worker task: ``runs`` of ``scenario``; per run each VM's RPO quantile, the availability and the costs."""
    names = [v.name for _, _, v in _eligible(scenario)]
    out = []
    for _k, seed in runs:
        model = SiteModel(scenario, seed)
        res = Results(model.run())
        summ = res.summary.set_index("vm").loc[names]
        quantiles = rpo_quantiles(res, np.array([model.vm_names.index(n) for n in names]), q)
        protected = summ["protected"].to_numpy(dtype=bool)
        costs = costs_table(res, prices)
        out.append({"quantile": np.where(protected, quantiles, np.inf),
                    "availability": float(summ["availability"].min()), "protected": bool(protected.all()),
                    "uplink": float(costs[costs["item"] == "uplink"]["monthly"].iloc[0]), **totals(costs)})
    return out


def _options(scenario: Scenario, uploads: Sequence[float], intervals: Sequence[float],
             policies: Sequence[str]) -> list[tuple[str, float, float, str, Scenario]]:
    out = []
    for b, t, p in itertools.product(uploads or [scenario.link.upload], intervals or [scenario.replication.interval],
                                     policies or [scenario.policy.name]):
        sc = scenario_at(scenario, float(b))
        changes: dict[str, Any] = {}
        if t != sc.replication.interval:
            changes["replication.interval"] = f"{float(t)!r}s"
        if p != sc.policy.name:
            changes["policy.name"] = p
        if changes:
            sc = apply_settings(sc, changes, source="plan options")
        label = f"{units.format_rate(b)}, every {units.format_duration(t)}, {p}"
        out.append((label, float(b), float(t), p, sc))
    return out


def _judge(runs: list[dict], target: float, criterion: str) -> tuple[float, float, bool]:
    """(worst VM's criterion, worst VM's mean, whether every VM meets the target) over ``runs``."""
    point = _Point(math.nan, {"quantile": np.vstack([r["quantile"] for r in runs])}, target, criterion)
    return float(np.max(point.stat)), float(np.max(point.mean)), point.site_met


def _risk_incidents(sc: Scenario, prices: PriceSheet, years: int, replications: int, seed: int,
                    pool: Executor) -> tuple[float, float, float, str] | None:
    """(expected incident cost per year, low, high, basis) of an option from the risk engine; None where it
    cannot give it (no stochastic failures; replication does not keep up)."""
    if not any(f.every is not None for f in sc.failures):
        return None
    try:
        r = risk(sc, years=years, replications=replications, seed=seed, executor=pool, prices=prices,
                 allow_full=False)
    except NotKeepingUp:
        return None
    value, low, high = r.cost()
    return value, low, high, f"risk: {r.method}, {years} years x {replications}"


def _cheapest(meeting: pd.DataFrame) -> str | None:
    """The option of least running cost; options within half a currency unit a year of it (the same price as
    shown, differing only by cents of storage) go to the lowest RPO, then the earlier."""
    if meeting.empty:
        return None
    low = float(meeting["running_per_year"].min())
    tied = meeting[meeting["running_per_year"] <= low + 0.5]
    return str(tied.loc[tied["rpo_stat_s"].idxmin(), "option"])


def compare_options(scenario: Scenario, prices: PriceSheet, uploads: Sequence[float] = (),
                    intervals: Sequence[float] = (), policies: Sequence[str] = (), rpo: float | None = None,
                    percentile: float = 95.0, replications: int = 3, seed: int | None = None,
                    executor: Executor | None = None, progress: Callable[[str], None] | None = None,
                    criterion: str = "upper", incidents: str = "auto", risk_years: int = RISK_YEARS,
                    risk_replications: int = RISK_REPLICATIONS) -> pd.DataFrame:
    """One row per option (columns :data:`OPTION_COLUMNS`; rates bytes/s, durations s, money per year in the
    sheet's currency). ``criterion``: ``"upper"`` or ``"mean"`` (see the module docstring); ``incidents``:
    ``"auto"`` (the risk engine's expected annual figures where it can, else the runs) or ``"runs"``.
    ``attrs``: ``cheapest`` (the label of the cheapest option that meets the objectives, or None),
    ``lowest_total`` (the lowest running + expected incident cost), the request and the currency."""
    if criterion not in ("upper", "mean"):
        raise ValueError(f"criterion: 'upper' or 'mean', got {criterion!r}")
    if incidents not in INCIDENTS:
        raise ValueError(f"incidents: one of {', '.join(INCIDENTS)}, got {incidents!r}")
    target = float(scenario.objectives.rpo if rpo is None else rpo)
    q = float(percentile) / 100
    exp_seed = scenario.seed if seed is None else int(seed)
    seeds = [replication_seed(exp_seed, k) for k in range(int(replications))]
    options = _options(scenario, uploads, intervals, policies)
    pool, _workers, own, _ = resolve_executor(executor)
    if progress is not None:
        progress(f"simulating {len(options)} options x {len(seeds)} replications ({len(options) * len(seeds)} runs)")
    try:
        futures = [[pool.submit(_option_runs, sc, q, prices, [(k, s)]) for k, s in enumerate(seeds)]
                   for *_, sc in options]
        rows = []
        for (label, b, t, p, sc), futs in zip(options, futures, strict=True):
            runs = []
            for f in futs:
                wait_first([f])
                runs += f.result()
            mean = {key: float(np.mean([r[key] for r in runs])) for key in
                    ("availability", "running_per_year", "incident_per_year", "uplink")}
            protected = all(r["protected"] for r in runs)
            stat, rpo_mean, met = _judge(runs, target, criterion)
            expected = None
            if incidents == "auto":
                if progress is not None:
                    progress(f"{label}: incidents over {risk_years} years x {risk_replications} (risk engine)")
                expected = _risk_incidents(sc, prices, risk_years, risk_replications, exp_seed, pool)
            if expected is None:
                inc = [r["incident_per_year"] for r in runs]
                half = (float(t_975(len(inc) - 1)) * float(np.std(inc, ddof=1)) / math.sqrt(len(inc))
                        if len(inc) > 1 else 0.0)
                expected = (mean["incident_per_year"], max(mean["incident_per_year"] - half, 0.0),
                            mean["incident_per_year"] + half,
                            f"runs: {len(runs)} x {units.format_duration(sc.duration)}, scaled to a year")
            rows.append({"option": label, "upload_Bps": b, "interval_s": t, "policy": p,
                         "rpo_stat_s": stat, "rpo_mean_s": rpo_mean, "availability_min": mean["availability"],
                         "protected": protected, "meets": protected and met,
                         "running_per_year": mean["running_per_year"], "incident_per_year": expected[0],
                         "incident_low": expected[1], "incident_high": expected[2], "incident_basis": expected[3],
                         "total_per_year": mean["running_per_year"] + expected[0], "uplink_per_month": mean["uplink"]})
    finally:
        if own:
            shutdown(pool, cancel=True)
    df = pd.DataFrame(rows, columns=list(OPTION_COLUMNS))
    priced = df[np.isfinite(df["uplink_per_month"])]
    meeting = priced[priced["meets"]]
    df.attrs = {
        "scenario": scenario.name, "rpo_s": target, "percentile": float(percentile), "replications": len(seeds),
        "criterion": criterion,
        "criterion_text": criterion_text(criterion, len(seeds)),
        "incidents": incidents, "currency": prices.currency, "price_date": str(prices.date),
        "cheapest": _cheapest(meeting),
        "lowest_total": None if priced.empty else str(priced.loc[priced["total_per_year"].idxmin(), "option"]),
        "unpriced": [str(o) for o in df.loc[~np.isfinite(df["uplink_per_month"]), "option"]],
    }
    return df
