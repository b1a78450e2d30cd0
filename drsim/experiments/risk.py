"""Risk over years: annual data loss, downtime and nines, by Monte Carlo over long horizons (:func:`risk`).

``risk(scenario, years=100, replications=1000)`` answers a planner's questions about rare events: how much data
will we lose per year, how likely is a year with a loss above the RPO target, an hour, a day; how much downtime,
how many nines, how many failovers, how often is the RTO met. Per VM and for the site, each with a 95 %
confidence interval and the estimator behind it.

Steps:

1. The scenario over the horizon keeps its stochastic failures (:func:`~drsim.experiments.horizon.risk_scenario`).
2. Probe runs (:mod:`drsim.experiments.steady`) measure the steady state of replication and check that every VM
   keeps up with its churn.
3. The engine (:mod:`drsim.experiments.horizon`): ``conditional`` (the slow time scale simulated over the whole
   horizon, data loss by conditional Monte Carlo from the steady state) where its conditions hold
   (:func:`conditional_conditions`), else ``windows`` (every failure simulated in full in a window, the quiet
   stretches skipped); ``full`` (the whole horizon in full) when replication does not keep up, as skipping then
   would be wrong. ``method="auto"`` chooses; a method asked for whose conditions fail falls back, and says so.
4. The estimators (:mod:`drsim.experiments.estimators`), and the expected annual cost of incidents priced from
   them with the price sheet's business figures (:mod:`drsim.experiments.risk_costs`).

Replication ``k`` runs with the seed :func:`~drsim.experiments.seeds.replication_seed` gives (as in sweeps),
so it sees the same failure timeline with every engine, and ``drsim run --seed`` on the horizon's scenario
repeats it in full. Tasks run on any executor (a process pool by default, or a Dask client).

Imports :mod:`drsim.scenario`, :mod:`drsim.model`, :mod:`drsim.results` and this stage's modules.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drsim.experiments.annual import YEAR, AnnualRecord
from drsim.experiments.estimators import CONDITIONAL, PLAIN, SAMPLED, Stacked, exceedance_table, figures_table
from drsim.experiments.executors import (
    ExecutorFailed,
    executor_failure,
    resolve_executor,
    shutdown,
    stop_pool,
    wait_first,
)
from drsim.experiments.horizon import HorizonPlan, risk_scenario, simulate_horizon
from drsim.experiments.risk_costs import incident_cost_table
from drsim.experiments.seeds import replication_seed
from drsim.experiments.steady import ProbeRun, SteadyState, probe_run, probe_seed, rpo_grid, steady_state
from drsim.model.policies import make_policy
from drsim.scenario import load_scenario
from drsim.scenario.distributions import Exponential
from drsim.scenario.document import Scenario
from drsim.scenario.prices import PriceSheet, load_price_sheet
from drsim.scenario.site import protectable
from drsim.scenario.units import DAY, HOUR

__all__ = ["risk", "Risk", "conditional_conditions", "METHODS", "RiskError", "NotKeepingUp"]

METHODS = ("auto", "conditional", "windows", "full")
_ENGINE = {"conditional": "slow", "windows": "windows", "full": "full"}
_POLICIES = ("manual", "automatic", "threshold", "wait-for-repair")


class RiskError(ValueError):
    """A risk computation that cannot run as asked (bad years, replications or method)."""


class NotKeepingUp(RiskError):
    """Replication does not keep up with churn, and the full simulation it would need was not allowed."""


def conditional_conditions(scenario: Scenario) -> list[tuple[str, bool]]:
    """The conditions under which a failure's data loss is the RPO at its instant, with the time-weighted
    distribution of the steady state: (condition, holds) pairs."""
    kinds = {f.kind for f in scenario.failures if f.every is not None}
    poisson = all(isinstance(f.every, Exponential) for f in scenario.failures if f.every is not None)
    point = getattr(make_policy(scenario.policy, scenario).params, "point", "latest")
    return [
        ("failures hit hosts or the whole site only (a VM's own crash leaves its agent sending; a link outage or "
         "corruption changes what a later failure loses)", kinds <= {"host", "site"}),
        ("failures arrive as Poisson processes (exponential time between failures), independent of replication",
         poisson),
        (f"the policy is one of {', '.join(_POLICIES)} (a recovery plan moves running VMs with a final sync; a "
         "custom policy may act on anything)", scenario.policy.name in _POLICIES),
        ("the policy's recovery point is 'latest' or 'latest-processed' (the newest point at the failure, as the "
         "agent is down)", point in ("latest", "latest-processed")),
    ]


@dataclass
class Risk:
    """The annual risk of a scenario (see :func:`risk`). ``figures``: one row per (VM or ``(site)``, metric) with
    value, low, high (95 % interval), unit and estimator; ``exceedance``: P(a year holds a loss above x) per VM and
    site at every x of a grid (s) with its interval; ``steady``: the steady-state RPO per VM (probe runs)."""

    scenario: Scenario  # over the horizon, as simulated
    years: int
    replications: int
    seed: int
    method: str  # the engine used: conditional, windows or full
    figures: pd.DataFrame
    exceedance: pd.DataFrame
    steady: pd.DataFrame
    estimators: dict[str, str]
    conditions: list[tuple[str, bool]]
    notes: list[str]
    plan: HorizonPlan
    elapsed_s: float
    workers: int
    executor: str
    probe_runs: int = 0
    replication_notes: list[tuple[int, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # s of wall time per phase: probe, replications, figures
    #: the expected annual cost of incidents (:func:`~drsim.experiments.risk_costs.incident_cost_table`)
    costs: pd.DataFrame = field(default_factory=pd.DataFrame)
    prices: PriceSheet | None = None

    def cost(self, item: str = "incidents", vm: str = "(site)") -> tuple[float, float, float]:
        """(per year, low, high) of an incident cost (``downtime``, ``lost data`` or ``incidents``, their sum),
        in the price sheet's currency."""
        row = self.costs[(self.costs["vm"] == vm) & (self.costs["item"] == item)]
        if row.empty:
            raise KeyError(f"no cost {item!r} for {vm!r}")
        r = row.iloc[0]
        return float(r["per_year"]), float(r["low"]), float(r["high"])

    def value(self, metric: str, vm: str = "(site)") -> float:
        """A figure's value (e.g. ``value("availability")``)."""
        row = self.figures[(self.figures["vm"] == vm) & (self.figures["metric"] == metric)]
        if row.empty:
            raise KeyError(f"no figure {metric!r} for {vm!r}")
        return float(row["value"].iloc[0])

    def interval(self, metric: str, vm: str = "(site)") -> tuple[float, float]:
        """A figure's 95 % interval (low, high)."""
        row = self.figures[(self.figures["vm"] == vm) & (self.figures["metric"] == metric)].iloc[0]
        return float(row["low"]), float(row["high"])

    def metadata(self) -> dict[str, Any]:
        return {"scenario": self.scenario.name, "years": self.years, "replications": self.replications,
                "experiment_seed": self.seed, "method": self.method, "estimators": self.estimators,
                "conditions": [{"condition": c, "holds": h} for c, h in self.conditions], "notes": self.notes,
                "plan_s": {k: v for k, v in vars(self.plan).items()}, "probe_runs": self.probe_runs,
                "elapsed_s": round(self.elapsed_s, 3), "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
                "workers": self.workers, "executor": self.executor,
                "seeding": "replication k runs with seed SeedSequence(experiment_seed, spawn_key=(k,))",
                "costs": None if self.prices is None else {
                    "currency": self.prices.currency, "price_date": str(self.prices.date),
                    "downtime_per_hour": self.costs.attrs.get("downtime_per_hour"),
                    "lost_data_per_hour": self.costs.attrs.get("lost_data_per_hour"),
                    "unrecoverable_per_year_not_priced": self.costs.attrs.get("unpriced"),
                    "basis": "expected downtime and data loss per year (the annual figures, per replication) x the "
                             "price sheet's business figures; interval as the figures' (drsim.experiments."
                             "risk_costs)"}}


def _probe_batch(scenario: Scenario, seeds: list[int], weeks: int, warmup: float,
                 grid: np.ndarray) -> list[ProbeRun]:
    return [probe_run(scenario, s, weeks, warmup, grid) for s in seeds]


def _replication_batch(engine: str, scenario: Scenario, seeds: list[int], plan: HorizonPlan) -> list[AnnualRecord]:
    return [simulate_horizon(engine, scenario, s, plan) for s in seeds]


def _run_tasks(pool: Any, tasks: list[tuple[Callable, tuple]], limit: int,
               done: Callable[[int, Any], None]) -> None:
    """Run ``fn(*args)`` for every task on ``pool`` with at most ``limit`` in flight; ``done(i, result)``."""
    pending: dict[Future, int] = {}
    queue = list(enumerate(tasks))
    queue.reverse()
    while queue or pending:
        while queue and len(pending) < limit:
            i, (fn, args) = queue.pop()
            pending[pool.submit(fn, *args)] = i
        for fut in wait_first(pending):
            i = pending.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:
                if executor_failure(exc):
                    raise ExecutorFailed(f"{type(exc).__name__}: {exc}") from exc
                raise
            done(i, result)


def _steady_table(steady: SteadyState, target: float) -> pd.DataFrame:
    g = steady.grid
    i = int(np.argmin(np.abs(g - target)))
    mean, top, above = steady.mean, steady.max, steady.above
    return pd.DataFrame({"vm": steady.names, "rpo_mean_s": np.nanmean(mean, axis=0),
                         "rpo_max_s": np.nanmax(top, axis=0), "rpo_over_target": np.nanmean(above[:, :, i], axis=0),
                         "protected_at_s": np.nanmean([r.protected_at for r in steady.runs], axis=0)})


def risk(scenario: Scenario | str | Path, years: int = 100, replications: int = 1000, seed: int | None = None,
         method: str = "auto", executor: Any = None, probe_runs: int = 6, probe_weeks: int = 3,
         batch_size: int | None = None, progress: Callable[[int, int], None] | None = None,
         prices: PriceSheet | str | Path | None = None, allow_full: bool = True) -> Risk:
    """Annual risk figures of ``scenario`` over ``years`` years, from ``replications`` replications.

    ``method``: ``auto`` (conditional Monte Carlo where its conditions hold, else windows), ``conditional``,
    ``windows`` or ``full`` (see the module docstring). ``seed``: the experiment seed (default the scenario's).
    ``executor``: a ``concurrent.futures`` executor or a Dask client (default a process pool, one worker per
    core). ``probe_runs`` runs of ``probe_weeks`` weeks measure the steady state. ``progress(done, total)`` is
    called as replications finish. ``prices``: the price sheet that prices the incidents (``Risk.costs``): a
    :class:`~drsim.scenario.prices.PriceSheet`, or a file merged over the bundled sheet (then the scenario's
    ``prices:`` section over it); default the bundled sheet with the scenario's section. ``allow_full=False``
    raises :class:`NotKeepingUp` (after the probe runs) instead of simulating every replication in full when
    replication does not keep up with churn.
    """
    t_start = time.perf_counter()
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if not (isinstance(years, int) and years >= 1):
        raise RiskError(f"years must be a whole number of at least 1, got {years!r}")
    if replications < 1 or probe_runs < 2 or probe_weeks < 2:
        raise RiskError("replications must be at least 1, probe runs and weeks at least 2")
    if method not in METHODS:
        raise RiskError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    seed = scenario.seed if seed is None else seed
    sheet = prices if isinstance(prices, PriceSheet) else load_price_sheet(prices, scenario.prices)
    horizon = risk_scenario(scenario, years)
    notes = []
    left_out = [what for what, items in (("scripted failures", [f for f in scenario.failures if f.at is not None]),
                                         ("maintenance", scenario.maintenance), ("drills", scenario.drills)) if items]
    if left_out:
        notes.append(f"left out: {', '.join(left_out)} (one-off events of the scenario's month; the horizon has "
                     "its stochastic failures only)")
    if not horizon.failures:
        notes.append("the scenario has no stochastic failures: every figure is zero")
    pool, workers, owned, name = resolve_executor(executor)
    limit = 2 * workers
    try:
        grid = rpo_grid(scenario.objectives.rpo)
        probes: list[ProbeRun | None] = [None] * probe_runs
        seeds = [probe_seed(seed, r) for r in range(probe_runs)]

        def got_probe(i: int, runs: list[ProbeRun]) -> None:
            probes[i] = runs[0]

        _run_tasks(pool, [(_probe_batch, (horizon, [s], probe_weeks, DAY, grid)) for s in seeds], limit, got_probe)
        timings = {"probe": time.perf_counter() - t_start}
        steady = steady_state([vm.name for _, vm in horizon.vms()], grid, probes)  # type: ignore[arg-type]
        conditions = conditional_conditions(horizon)
        engine = _choose(method, steady, conditions, notes, horizon)
        if engine == "full" and not allow_full and method != "full":
            raise NotKeepingUp("replication does not keep up with churn (" + "; ".join(steady.problems) + "): the "
                               "risk figures would need every replication simulated in full")
        plan = _plan(horizon, steady)
        records: list[AnnualRecord | None] = [None] * replications
        run_seeds = [replication_seed(seed, k) for k in range(replications)]
        size = batch_size or max(1, min(50, math.ceil(replications / (4 * workers))))
        batches = [list(range(k, min(k + size, replications))) for k in range(0, replications, size)]
        finished = 0

        def got(i: int, recs: list[AnnualRecord]) -> None:
            nonlocal finished
            for k, rec in zip(batches[i], recs, strict=True):
                records[k] = rec
            finished += len(recs)
            if progress is not None:
                progress(finished, replications)

        _run_tasks(pool, [(_replication_batch, (_ENGINE[engine], horizon, [run_seeds[k] for k in b], plan))
                          for b in batches], limit, got)
        timings["replications"] = time.perf_counter() - t_start - timings["probe"]
    except KeyboardInterrupt:
        if owned:
            stop_pool(pool)
            owned = False
        raise
    finally:
        if owned:
            shutdown(pool, cancel=False)
    stacked = Stacked.of(records)  # type: ignore[arg-type]
    names = steady.names
    cond = steady if engine == "conditional" else None
    exceed = exceedance_table(stacked, names, grid, cond, seed)
    figures = figures_table(stacked, names, exceed, scenario.objectives.rpo, scenario.objectives.rto, cond)
    costs = incident_cost_table(stacked, names, cond, sheet)
    if costs.attrs["unpriced"] > 0 and sheet.business.lost_data_per_hour > 0:
        notes.append(f"{costs.attrs['unpriced']:.3g} incidents a year have no recovery point to restore (everything "
                     "since protection is lost): their lost data is not priced, so the incident cost is a lower "
                     "bound")
    rep_notes = [(k, n) for k, rec in enumerate(records) for n in rec.notes]  # type: ignore[union-attr]
    if rep_notes:
        notes.append(f"{len({k for k, _ in rep_notes})} of {replications} replications did not return to their "
                     f"steady state after a failure and were simulated in full from there (first: replication "
                     f"{rep_notes[0][0]}: {rep_notes[0][1]})")
    elapsed = time.perf_counter() - t_start
    timings["figures"] = elapsed - timings["probe"] - timings["replications"]
    return Risk(horizon, years, replications, seed, engine, figures, exceed,
                _steady_table(steady, scenario.objectives.rpo), _estimators(engine), conditions, notes, plan,
                elapsed, workers, name, probe_runs, rep_notes, timings, costs, sheet)


def _choose(method: str, steady: SteadyState, conditions: Sequence[tuple[str, bool]], notes: list[str],
            horizon: Scenario) -> str:
    """The engine for ``method``, falling back (with a note) where its conditions fail."""
    if not steady.keeps_up:
        if method != "full":
            eligible = sum(1 for host, vm in horizon.vms() if protectable(host, vm))
            cycles = eligible * horizon.duration / horizon.replication.interval
            notes.append("replication does not keep up with churn (" + "; ".join(steady.problems) + "): quiet "
                         "stretches cannot be skipped, so every replication is simulated in full over the whole "
                         f"horizon (slow: about {cycles / 1e6:.2g} million replication cycles per replication)")
        return "full"
    failed = [c for c, held in conditions if not held]
    if method in ("auto", "conditional") and failed:
        if method == "conditional":
            notes.append("conditional Monte Carlo does not apply: " + "; ".join(failed) + ". Used windows instead.")
        else:
            notes.append("data loss by plain simulation in windows around each failure, as conditional Monte Carlo "
                         "needs: " + "; ".join(failed))
        return "windows"
    return "conditional" if method == "auto" else method


def _plan(horizon: Scenario, steady: SteadyState) -> HorizonPlan:
    """Warm-up: twice the largest steady RPO (a failure's state depends on transfers started within it), at least
    two hours and four intervals, in whole hours. The slow engine follows the throttle until every probe run's
    initial replication was over twice over, plus a week."""
    top = float(np.nanmax(steady.max)) if steady.runs and steady.keeps_up else 0.0
    warmup = math.ceil(max(2 * top, 2 * HOUR, 4 * horizon.replication.interval) / HOUR) * HOUR
    done = max((float(np.nanmax(r.protected_at)) for r in steady.runs if r.protected), default=30 * DAY)
    return HorizonPlan(warmup=warmup, throttle_until=2 * done + 7 * DAY)


def _estimators(engine: str) -> dict[str, str]:
    slow = ("simulation of the failure timeline, policy decisions, failover and failback over the whole horizon "
            "(replication left out: it does not change them under the conditions)")
    by = {"conditional": slow, "windows": "simulation in full of a window around each failure (quiet stretches "
          "skipped)", "full": "simulation in full of the whole horizon"}[engine]
    if engine != "conditional":
        return {"data loss (expected, probabilities, exceedance)": f"{PLAIN}: " + by,
                "downtime, availability, nines, failovers, incidents, RTO": f"{PLAIN}: " + by}
    return {"data loss per VM (expected, probabilities, exceedance)": f"{CONDITIONAL}: each recovery from a "
            "recovery point loses the RPO at the failure, distributed as the steady-state RPO curve (probe runs), "
            "given the simulated failures and recoveries",
            "data loss of the site (probabilities, exceedance; its expected loss is the VMs' sum)": f"{SAMPLED}: "
            "per failure, the chance that the largest loss among the VMs it hit exceeds x, from 32 instants at "
            "which their RPOs are read jointly off the probe runs",
            "downtime, availability, nines, failovers, incidents, RTO": f"{PLAIN}: " + by}


def years_simulated(result: Risk) -> float:
    """Simulated years in all (replications x horizon)."""
    return result.replications * result.scenario.duration / YEAR
