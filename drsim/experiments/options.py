"""What to buy: every combination of the options a planner lists (uploads, intervals, policies), simulated and
priced, with the two answers: the **cheapest option that meets the objectives** and the option with the **lowest
total expected annual cost** (:func:`compare_options`).

**Each option** is the scenario with that upload (the throttle scaled with it, as the planner does), interval and
policy, run ``replications`` times over its whole duration, failures included, with common random numbers (the
same run seeds for every option). Per run: the worst VM's ``percentile``-th time percentile of the RPO over its
protected time (:func:`drsim.experiments.bandwidth_runs._plan_runs`, ``window="protected"``), the site's lowest VM
availability, and the costs (:func:`drsim.results.costs.costs_table`) with the price sheet: running costs per year
(licence, storage, compute, drills, egress and the uplink tier of that upload) and incident costs per year (this
run's downtime and lost work, scaled to a year). Over the runs: means.

**Meets the objectives** when the mean worst-VM RPO percentile is within the RPO target and every VM was
protected. The lowest total is over every priced option, whether it meets the objectives or not (a missed RPO
costs only through the incidents it makes worse). An option whose upload matches no listed uplink tier has an
unknown price and is never chosen (its uplink cost is missing). Ties go to the earlier option.

Imports :mod:`drsim.scenario`, :mod:`drsim.model`, :mod:`drsim.results` and, of this stage, the setting paths,
the planner's sizing helpers, the runs at one bandwidth, the seeds and the executors.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np
import pandas as pd

from drsim.experiments.executors import resolve_executor, shutdown, wait_first
from drsim.experiments.seeds import replication_seed
from drsim.experiments.settings_paths import apply_settings
from drsim.experiments.sizing import _eligible, scenario_at
from drsim.model.site import SiteModel
from drsim.results.costs import costs_table, totals
from drsim.results.metrics import rpo_stats
from drsim.results.tables import Results
from drsim.scenario import units
from drsim.scenario.document import Scenario
from drsim.scenario.prices import PriceSheet

__all__ = ["compare_options", "OPTION_COLUMNS"]

OPTION_COLUMNS = ("option", "upload_Bps", "interval_s", "policy", "rpo_stat_s", "availability_min",
                  "protected", "meets", "running_per_year", "incident_per_year", "total_per_year",
                  "uplink_per_month")


def _option_runs(scenario: Scenario, q: float, prices: PriceSheet, runs: list[tuple[int, int]]) -> list[dict]:
    """Worker task: ``runs`` of ``scenario``; per run the worst VM's RPO quantile, availability and costs."""
    names = [v.name for _, _, v in _eligible(scenario)]
    out = []
    for _k, seed in runs:
        res = Results(SiteModel(scenario, seed).run())
        summ = res.summary.set_index("vm").loc[names]
        rpo = res.rpo
        t, v = rpo["time"].to_numpy(), rpo["rpo"].to_numpy()
        codes = rpo["vm"].astype(str).to_numpy()[0::2]
        r0, length = v[0::2], t[1::2] - t[0::2]
        from_metrics = _quantiles(codes, r0, length, names, q, res.scenario.objectives.rpo)
        protected = bool(summ["protected"].all())
        costs = costs_table(res, prices)
        out.append({"rpo": float(np.max(from_metrics)) if protected else math.inf,
                    "availability": float(summ["availability"].min()), "protected": protected,
                    "uplink": float(costs[costs["item"] == "uplink"]["monthly"].iloc[0]), **totals(costs)})
    return out


def _quantiles(codes: np.ndarray, r0: np.ndarray, length: np.ndarray, names: list[str], q: float,
               target: float) -> np.ndarray:
    """Per VM, the exact ``q`` time quantile of its RPO pieces (:func:`drsim.results.metrics.rpo_stats`)."""
    out = np.full(len(names), math.inf)
    for j, n in enumerate(names):
        sel = (codes == n) & (length > 0)
        if sel.any():
            out[j] = rpo_stats(r0[sel], length[sel], target, q=q).p95
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


def compare_options(scenario: Scenario, prices: PriceSheet, uploads: Sequence[float] = (),
                    intervals: Sequence[float] = (), policies: Sequence[str] = (), rpo: float | None = None,
                    percentile: float = 95.0, replications: int = 3, seed: int | None = None,
                    executor: Executor | None = None,
                    progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """One row per option (columns :data:`OPTION_COLUMNS`; rates bytes/s, durations s, money per year in the
    sheet's currency). ``attrs``: ``cheapest`` (the label of the cheapest option that meets the objectives, or
    None), ``lowest_total`` (the lowest running + incident cost), the request and the currency."""
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
        for (label, b, t, p, _sc), futs in zip(options, futures, strict=True):
            runs = []
            for f in futs:
                wait_first([f])
                runs += f.result()
            mean = {key: float(np.mean([r[key] for r in runs])) for key in
                    ("rpo", "availability", "running_per_year", "incident_per_year", "total_per_year", "uplink")}
            protected = all(r["protected"] for r in runs)
            rows.append({"option": label, "upload_Bps": b, "interval_s": t, "policy": p,
                         "rpo_stat_s": mean["rpo"], "availability_min": mean["availability"],
                         "protected": protected, "meets": protected and mean["rpo"] <= target,
                         "running_per_year": mean["running_per_year"], "incident_per_year": mean["incident_per_year"],
                         "total_per_year": mean["total_per_year"], "uplink_per_month": mean["uplink"]})
    finally:
        if own:
            shutdown(pool, cancel=True)
    df = pd.DataFrame(rows, columns=list(OPTION_COLUMNS))
    priced = df[np.isfinite(df["uplink_per_month"])]
    meeting = priced[priced["meets"]]
    df.attrs = {
        "scenario": scenario.name, "rpo_s": target, "percentile": float(percentile), "replications": len(seeds),
        "currency": prices.currency, "price_date": str(prices.date),
        "cheapest": None if meeting.empty else str(meeting.loc[meeting["running_per_year"].idxmin(), "option"]),
        "lowest_total": None if priced.empty else str(priced.loc[priced["total_per_year"].idxmin(), "option"]),
        "unpriced": [str(o) for o in df.loc[~np.isfinite(df["uplink_per_month"]), "option"]],
    }
    return df
