"""Initial replication against a deadline: the upload at which every replicating VM is protected within a given
time from the start of protection, with the batches in the order given (:func:`deadline_bandwidth`), and a
suggested batch order when a VM waits longer than necessary.

**Runs.** The sizing scenario (no failures, maintenance or drills; the throttle scaled with the uplink), cut to the
initial start plus the deadline (a run needs to go no further), run ``replications`` times with common random
numbers (setup times are random). A bandwidth meets the deadline when every VM is protected within it in every
replication. Bisection from the bandwidth that copies the used data of all VMs in the deadline at the mean
throttled payload rate (a lower bound: churn also competes), doubling until one meets, until the bracket is at most
``tolerance`` wide (or ``rel_tolerance`` times its upper end, if wider); the answer is its upper end.

**Batch order.** Batches run one after the other and share the link within a batch, so a batch of small VMs
queued behind a large one waits for it. At the answer, the batches are also run shortest first (by used size, a
shortest-processing-time order, which minimises the mean time to protection on one shared resource); when that
lowers the mean time to protection, the suggestion is returned with both means.

Imports :mod:`drsim.scenario` and, of this stage, the setting paths, the sizing helpers, the search's tolerance,
the runs at one bandwidth, the seeds and the executors.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor
from typing import Any

import numpy as np

from drsim.experiments.bandwidth_runs import _plan_runs
from drsim.experiments.executors import resolve_executor, shutdown
from drsim.experiments.plan_request import tolerance_at
from drsim.experiments.seeds import replication_seed
from drsim.experiments.settings_paths import apply_settings
from drsim.experiments.sizing import _batches, _eligible, scenario_at, sizing_scenario, throttle_share
from drsim.scenario.document import Scenario

__all__ = ["deadline_bandwidth"]

_MAX_STEPS = 60


def _protected_after(pool: Executor, scenario: Scenario, upload: float, seeds: list[int]) -> np.ndarray:
    """Seconds from the initial start to each VM's protection (run x VM; inf when not within the run)."""
    sc = scenario_at(scenario, upload)
    futs = [pool.submit(_plan_runs, sc, 0.95, "protected", [(k, s)]) for k, s in enumerate(seeds)]
    rows = [f.result()[0][1]["protected_at"] for f in futs]
    out = np.vstack(rows) - scenario.initial_start_offset()
    return np.where(np.isfinite(out), out, np.inf)


def deadline_bandwidth(scenario: Scenario, deadline: float, tolerance: float = 0.5e6 / 8, replications: int = 3,
                       seed: int | None = None, executor: Executor | None = None,
                       rel_tolerance: float = 0.01) -> dict[str, Any]:
    """The upload (bytes/s) at which every replicating VM is protected within ``deadline`` seconds of the initial
    start: ``{"required_Bps", "not_at_Bps", "protected_after_s" (per VM, mean at the answer), "batches" (as
    given), "suggested_batches" (None when the given order is as good), "mean_wait_s", "suggested_mean_wait_s",
    "suggested_protected_after_s" (per VM, with the batches smallest first; empty when not simulated), and the
    request: "scenario", "deadline_s", "replications", "tolerance_Bps", "rel_tolerance", and the bracket's width
    allowed at the answer, "bracket_tolerance_Bps"}``."""
    base = sizing_scenario(scenario)
    end = base.initial_start_offset() + float(deadline)
    if end < base.duration:
        base = apply_settings(base, {"duration": f"{end!r}s"}, source="deadline")
    exp_seed = scenario.seed if seed is None else int(seed)
    seeds = [replication_seed(exp_seed, k) for k in range(int(replications))]
    eligible = _eligible(base)
    names = [v.name for _, _, v in eligible]
    used = {v.name: float(v.copy_bytes) for _, _, v in eligible}
    link = base.link
    lower = sum(used.values()) / float(deadline) / (link.compression * link.efficiency * throttle_share(base))
    pool, _w, own, _ = resolve_executor(executor)
    try:
        cache: dict[float, np.ndarray] = {}

        def meets(b: float) -> bool:
            if b not in cache:
                cache[b] = _protected_after(pool, base, b, seeds)
            return bool((cache[b] <= deadline).all())

        lo, hi = lower, lower
        steps = 0
        while not meets(hi) and steps < _MAX_STEPS:
            lo, hi, steps = hi, hi * 2, steps + 1
        while hi - lo > tolerance_at(tolerance, rel_tolerance, hi) and steps < _MAX_STEPS:
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if meets(mid) else (mid, hi)
            steps += 1
        at = cache[hi]
        batch_of = _batches(base, names)
        given = [[n for n in names if batch_of[n] == k] for k in sorted(set(batch_of.values()))]
        suggested = sorted(given, key=lambda batch: sum(used[n] for n in batch))
        mean_wait = float(np.mean(at))
        result: dict[str, Any] = {
            "required_Bps": hi, "not_at_Bps": lo, "deadline_s": float(deadline),
            "protected_after_s": dict(zip(names, map(float, at.mean(axis=0)), strict=True)),
            "batches": given, "suggested_batches": None, "mean_wait_s": mean_wait, "suggested_mean_wait_s": math.nan,
            "suggested_protected_after_s": {}, "scenario": scenario.name, "replications": len(seeds),
            "tolerance_Bps": float(tolerance), "rel_tolerance": float(rel_tolerance),
            "bracket_tolerance_Bps": tolerance_at(tolerance, rel_tolerance, hi),
        }
        if len(given) > 1 and suggested != given:
            alt = apply_settings(base, {"replication.initial.batches": suggested}, source="deadline")
            alt_at = _protected_after(pool, alt, hi, seeds)
            alt_wait = float(np.mean(alt_at))
            result["suggested_mean_wait_s"] = alt_wait
            result["suggested_protected_after_s"] = dict(zip(names, map(float, alt_at.mean(axis=0)), strict=True))
            if alt_wait < mean_wait * 0.99:
                result["suggested_batches"] = suggested
    finally:
        if own:
            shutdown(pool, cancel=True)
    return result
