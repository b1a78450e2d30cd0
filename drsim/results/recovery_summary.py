"""The recovery side of a run's summary: availability, downtime, incidents, data loss, RTO, the objectives met
and drills, per VM and for the site (:func:`recovery_summary`).

Imports :mod:`drsim.results.columns`, the site row's name, and :mod:`drsim.results.tables` for hints only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from drsim.results.columns import all_within
from drsim.scenario.site import SITE_ROW as SITE

if TYPE_CHECKING:
    from drsim.results.tables import Results

__all__ = ["recovery_summary", "PLANNED_KINDS"]

#: incident kinds that are planned moves (maintenance, a plan's healthy VMs), not failures
PLANNED_KINDS = ("maintenance", "plan")  # incidents that are moves, not failures


def recovery_summary(results: Results, names: list[str], downtime: pd.Series) -> pd.DataFrame:
    """Per VM and site: availability, downtime, incidents, data loss, RTO, objectives met, drills. ``downtime``:
    seconds each VM's service was down (by VM name)."""
    s = results.scenario
    inc = results.incidents
    unplanned = inc[~inc["kind"].isin(PLANNED_KINDS)]
    g = unplanned.groupby("vm")
    ops = results.operations
    drills = ops[(ops["kind"] == "test_failover") & (ops["step"] == "running")]
    drill_rto = (drills["end"] - drills["start"]).groupby(drills["target"])
    out = pd.DataFrame(index=pd.Index(names, name="vm"))
    out["availability"] = 1.0 - downtime / results.end
    out["downtime_s"] = downtime
    out["incidents"] = g.size().reindex(names).fillna(0).astype(int)
    out["data_loss_mean_s"] = g["data_loss_s"].mean().reindex(names)
    out["data_loss_max_s"] = g["data_loss_s"].max().reindex(names)
    out["rto_mean_s"] = g["rto_s"].mean().reindex(names)
    out["rto_max_s"] = g["rto_s"].max().reindex(names)
    objectives = s.objectives
    out["rto_met"] = all_within(unplanned, "rto_s", objectives.rto, names)
    out["rpo_met"] = all_within(unplanned, "data_loss_s", objectives.rpo, names)
    out["drills"] = drills.groupby("target").size().reindex(names).fillna(0).astype(int)
    out["drill_rto_mean_s"] = drill_rto.mean().reindex(names)
    site = {
        "availability": float(out["availability"].mean()),
        "downtime_s": float(out["downtime_s"].sum()),
        "incidents": int(len(unplanned)),
        "data_loss_mean_s": float(unplanned["data_loss_s"].mean()) if len(unplanned) else np.nan,
        "data_loss_max_s": float(unplanned["data_loss_s"].max()) if len(unplanned) else np.nan,
        "rto_mean_s": float(unplanned["rto_s"].mean()) if len(unplanned) else np.nan,
        "rto_max_s": float(unplanned["rto_s"].max()) if len(unplanned) else np.nan,
        "rto_met": bool(out["rto_met"].all()),
        "rpo_met": bool(out["rpo_met"].all()),
        "drills": int(out["drills"].sum()),
        "drill_rto_mean_s": float((drills["end"] - drills["start"]).mean()) if len(drills) else np.nan,
    }
    out.loc[SITE] = pd.Series(site)
    return out
