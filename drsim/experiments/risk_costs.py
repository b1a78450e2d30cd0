"""The expected annual cost of incidents from the risk engine's figures: downtime and lost work per year, priced
with the business side of a price sheet, per VM and for the site, with 95 % confidence intervals
(:func:`incident_cost_table`).

**What is priced.** Per VM ``v`` and replication ``k``: its expected downtime per year ``D_kv`` (s) and its
expected data loss per year ``L_kv`` (s of writes lost: the time from the recovery point used to the failure),
the same per-replication values the annual figures :func:`~drsim.experiments.estimators.figures_table` averages.
Their cost per year is ``D_kv / 3600 * downtime_rate(v) + L_kv / 3600 * lost_data_per_hour``
(:func:`drsim.results.costs.incident_cost`: the downtime rate per VM, or the sheet's default; lost work per hour
the same for every VM). The site's cost per replication is the sum over VMs.

**Interval.** The cost is linear in the figures, so it is estimated replication by replication and its interval
is the figures' own: a Student t interval over the replications (over the years with one replication); where the
data loss comes from conditional Monte Carlo, the probe runs' part (the lost-data cost recomputed with each probe
run's steady-state RPO distribution alone) is added in quadrature, as for the data-loss figure. Intervals are cut
at 0.

**Not priced.** An incident with no recovery point to restore (``unrecoverable_per_year``) loses everything
written since the VM was protected: the engine gives no finite loss for it, so it is left out of the lost-data
cost (the table's ``attrs["unpriced"]`` counts them per year; the texts say so when there are any).

Imports :mod:`drsim.scenario` (prices, units), :mod:`drsim.results` (the incident price, the site row's name) and,
of this stage, the estimators and the steady state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from drsim.experiments.estimators import CONDITIONAL, PLAIN, Stacked, _Conditional, _mean_ci, _quadrature, _t_half
from drsim.experiments.steady import SteadyState
from drsim.results.costs import incident_cost
from drsim.results.tables import SITE
from drsim.scenario.prices import PriceSheet
from drsim.scenario.units import HOUR

__all__ = ["incident_cost_table", "INCIDENT_COST_COLUMNS", "INCIDENT_ITEMS"]

INCIDENT_ITEMS = ("downtime", "lost data", "incidents")  #: the rows per VM: each cost and their sum
#: columns of :func:`incident_cost_table` (money per year in the sheet's currency)
INCIDENT_COST_COLUMNS = ("vm", "item", "per_year", "low", "high", "estimator")


def _with_site(per_rep: np.ndarray) -> np.ndarray:
    """(replications x VMs) -> (replications x (VMs + site)), the site being the sum over VMs."""
    return np.concatenate((per_rep, per_rep.sum(axis=1, keepdims=True)), axis=1)


def _rates(names: Sequence[str], prices: PriceSheet) -> tuple[np.ndarray, np.ndarray]:
    """Per VM: money per second of downtime and per second of lost work."""
    down, lost = zip(*(incident_cost(prices, n, 1.0 / HOUR, 1.0 / HOUR) for n in names), strict=True)
    return np.array(down, dtype=float), np.array(lost, dtype=float)


def incident_cost_table(st: Stacked, names: Sequence[str], steady: SteadyState | None,
                        prices: PriceSheet) -> pd.DataFrame:
    """The expected cost per year of incidents (columns :data:`INCIDENT_COST_COLUMNS`): per VM and for the site,
    the rows ``downtime``, ``lost data`` and ``incidents`` (their sum), each with its 95 % interval [low, high]
    and the estimator of the figure it prices. ``steady`` given: the data loss by conditional Monte Carlo, as the
    annual figures. ``attrs``: currency, price date, the rates and ``unpriced`` (incidents per year, site, with
    no recovery point: not priced)."""
    n, years, _ = st.shape
    down_rate, lost_rate = _rates(names, prices)
    # downtime: per replication (and, for one replication, per year) and VM
    down_reps = st.downtime.sum(axis=1) / years * down_rate
    down_years = st.downtime[0] * down_rate
    if steady is None:
        lost_reps = st.loss_sum.sum(axis=1) / years * lost_rate
        lost_years = st.loss_sum[0] * lost_rate
        by_run = None
        loss_estimator = PLAIN
    else:
        cond = _Conditional(st, steady)
        means = np.nan_to_num(steady.mean.mean(axis=0))
        lost_reps = cond.loss(means) * lost_rate
        lost_years = (st.point_used[0] * means + st.loss_sum[0]) * lost_rate  # replication 0, year by year
        by_run = np.array([_with_site(cond.loss(steady.mean[r]).mean(axis=0, keepdims=True) * lost_rate)[0]
                           for r in range(len(steady.runs))])
        loss_estimator = CONDITIONAL
    rows: list[dict] = []

    def add(item: str, reps: np.ndarray, per_year: np.ndarray, probe: np.ndarray | None, estimator: str) -> None:
        mean, half = _mean_ci(_with_site(reps), _with_site(per_year))
        if probe is not None:
            half = _quadrature(half, _t_half(probe))
        for name, value, h in zip([*names, SITE], mean, half, strict=True):
            h = float(np.nan_to_num(h))
            rows.append({"vm": name, "item": item, "per_year": float(value), "low": max(float(value) - h, 0.0),
                         "high": float(value) + h, "estimator": estimator})

    add("downtime", down_reps, down_years, None, PLAIN)
    add("lost data", lost_reps, lost_years, by_run, loss_estimator)
    add("incidents", down_reps + lost_reps, down_years + lost_years, by_run,
        PLAIN if steady is None else f"{PLAIN} (downtime) and {CONDITIONAL} (lost data)")
    out = pd.DataFrame(rows, columns=list(INCIDENT_COST_COLUMNS))
    order = {name: i for i, name in enumerate([*names, SITE])}
    out = out.sort_values("vm", key=lambda v: v.map(order), kind="stable").reset_index(drop=True)
    out.attrs = {"currency": prices.currency, "price_date": str(prices.date),
                 "downtime_per_hour": {n: float(r * HOUR) for n, r in zip(names, down_rate, strict=True)},
                 "lost_data_per_hour": float(prices.business.lost_data_per_hour),
                 "unpriced": float(st.unrecoverable.sum() / (n * years))}
    return out
