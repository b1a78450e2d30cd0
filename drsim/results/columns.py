"""Summary columns computed from a run's raw tables: the health reached (worst and end of run), the steady-state
RPO beside the start-up, and whether every incident met an objective. :class:`drsim.results.tables.Results`
assembles the summary from them.

Imports numpy, pandas, the model's health codes and :mod:`drsim.results.metrics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drsim.model.codes import HEALTH, K_CATCHUP, K_RESYNC, S_INITIAL
from drsim.results.metrics import RPOStats

__all__ = ["worst_health", "end_health", "startup_points", "steady_columns", "all_within", "union_length"]


def worst_health(health: dict[str, np.ndarray], n_vm: int) -> tuple[list[int], list[float]]:
    """From the ``health`` table's arrays (vm, health, start, end): per VM, then for the site, the worst health
    code judged during the run (-1: never judged) and the seconds spent in it (the site: the time at least one
    VM was in the site's worst health)."""
    vm, code = health["vm"].astype(np.int64), health["health"].astype(np.int64)
    t0, t1 = health["start"], health["end"]
    worst = np.full(n_vm, -1, dtype=np.int64)
    np.maximum.at(worst, vm, code)
    mine = code == worst[vm]
    seconds = np.bincount(vm[mine], weights=(t1 - t0)[mine], minlength=n_vm)
    codes = [int(c) for c in worst] + [int(worst.max()) if n_vm else -1]
    out = [float(x) if c >= 0 else np.nan for x, c in zip(seconds, codes[:-1], strict=True)]
    at_site = code == codes[-1]
    out.append(union_length(t0[at_site], t1[at_site]) if codes[-1] >= 0 else np.nan)
    return codes, out


def end_health(values: list[int]) -> str:
    """The site's health at the end of the run from its protectable VMs' codes (-1: not judged)."""
    judged = [v for v in values if v >= 0]
    if not judged:
        return "not protected"
    return HEALTH[max(judged)] if len(judged) == len(values) else f"{HEALTH[max(judged)]} (some not replicating)"


def startup_points(kinds: np.ndarray, vm: np.ndarray, available: np.ndarray,
                   states: dict[str, np.ndarray]) -> np.ndarray:
    """Per delivered recovery point (sorted by VM, then time available; ``kinds`` their transfer kinds): whether it
    ended an initial replication, its newest point marking the start-up until the next point arrives. That is a
    catch-up, or the resync that replaced it (a disk's log reached its limit during the copy): a resync point with
    no earlier point of its VM since the VM's last ``initial_replication`` interval (of the ``states`` arrays)
    began."""
    startup = kinds == K_CATCHUP
    resync = np.flatnonzero(kinds == K_RESYNC)
    if len(resync):
        init = states["state"] == S_INITIAL
        init_vm, init_start = states["vm"][init], states["start"][init]
        for i in resync.tolist():
            v = vm[i]
            starts = init_start[(init_vm == v) & (init_start <= available[i])]
            if len(starts) and (i == 0 or vm[i - 1] != v or available[i - 1] < starts.max()):
                startup[i] = True
    return startup


def steady_columns(steady: RPOStats, startup_ends: np.ndarray) -> dict[str, float]:
    """The steady-state RPO columns, and the worst RPO of the start-up (the largest end of its segments)."""
    return {"rpo_steady_mean_s": steady.mean, "rpo_steady_p95_s": steady.p95, "rpo_steady_max_s": steady.max,
            "rpo_steady_over_target": steady.over_target,
            "rpo_startup_max_s": float(startup_ends.max()) if len(startup_ends) else np.nan}


def union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    """Seconds covered by the union of the intervals [starts, ends)."""
    if not len(starts):
        return 0.0
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], np.maximum.accumulate(ends[order])
    # a new run of overlapping intervals starts where an interval begins after every earlier one ended
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > e[:-1]
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, len(s) - 1)
    return float((e[last] - s[first]).sum())


def all_within(incidents: pd.DataFrame, column: str, limit: float, names: list[str]) -> pd.Series:
    """Per VM of ``names``: every incident's ``column`` known and at most ``limit`` (NaN: still down,
    unrecoverable, or never measured); True for a VM without incidents."""
    values = incidents[column]
    ok = (values.notna() & (values <= limit)).groupby(incidents["vm"].astype(object)).all()
    return ok.reindex(names, fill_value=True).astype(bool)
