"""The VMs of a run in order of what a planner must look at first (:func:`rank_vms`), for summaries and figures
that show only some VMs of a big site.

The order, most important first: protectable VMs never protected; VMs whose data was lost (no clean recovery
point); VMs with unplanned incidents that missed an objective, then with any unplanned incident, then by
downtime; then by the steady-state RPO (the share of time over the target, then the worst value); then by the
worst health reached. VMs that cannot replicate (unsupported host, ``protect: false``) come last. Ties keep the
file order.

Imports pandas and :mod:`drsim.results.tables`.
"""

from __future__ import annotations

import math

import pandas as pd

from drsim.results.tables import PLANNED_KINDS, SITE, Results
from drsim.scenario.site import protectable

__all__ = ["rank_vms", "HEALTH_ORDER"]

#: worst health reached, as a rank (higher is worse); anything else (not protected, unsupported) is 0
HEALTH_ORDER = {"normal": 1, "warning": 2, "critical": 3}


def _nan_low(x: float) -> float:
    return -math.inf if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def rank_vms(results: Results) -> list[str]:
    """Every VM's name (not the ``(site)`` row), most important first (see the module documentation)."""
    s = results.scenario
    eligible = {vm.name for host, vm in s.vms() if protectable(host, vm)}
    summ = results.summary
    vms = summ[summ["vm"] != SITE]
    inc = results.incidents
    unplanned = inc[~inc["kind"].isin(PLANNED_KINDS)]
    lost = set(unplanned.loc[unplanned["outcome"].astype(str).str.startswith("unrecoverable"), "vm"])
    obj = s.objectives
    missed = ~((unplanned["rto_s"] <= obj.rto) & (unplanned["data_loss_s"] <= obj.rpo))
    missed_by_vm = missed.groupby(unplanned["vm"].astype(object)).sum()
    count_by_vm = unplanned.groupby(unplanned["vm"].astype(object)).size()

    def key(item: tuple[int, pd.Series]) -> tuple:
        order, row = item
        name = row["vm"]
        if name not in eligible:
            return (1, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0, order)
        return (0, -int(not row["protected"]), -int(name in lost), -int(missed_by_vm.get(name, 0)),
                -int(count_by_vm.get(name, 0)), -_nan_low(row["downtime_s"]),
                -_nan_low(row["rpo_steady_over_target"]),
                -_nan_low(row["rpo_steady_max_s"]), -HEALTH_ORDER.get(str(row["worst_health"]), 0), order)

    rows = sorted(enumerate(r for _, r in vms.iterrows()), key=key)
    return [str(r["vm"]) for _, r in rows]
