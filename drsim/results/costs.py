"""The costs of a run: running costs (licence, cloud storage, compute, egress, the uplink) and the cost of its
incidents (downtime, lost work), per VM and for the site, monthly and per year, from a run's tables and a
:class:`~drsim.scenario.prices.PriceSheet` (:func:`costs_table`); and the price of expected annual downtime and
data loss (:func:`incident_cost`), for risk figures computed elsewhere.

**Items** (per replicating VM; money in the sheet's currency):

* ``licence``: the protection fee per VM per month; per year, the first year, with the free first days
  (``free_days``) deducted: ``12 * fee * (365 - free_days) / 365``.
* ``replica storage``: the replica disks' used size (GB = 2^30 bytes) x price per GB-month.
* ``recovery points``: the changes kept over the retention window, from the simulated churn: the log bytes the VM
  shipped (catch-up, deltas, final syncs, reverse replication) per second of its protected time x retention.
* ``compute``: hours the VM ran in the cloud in the run (in the cloud, failback synchronisation and failing back,
  and test-failover VMs' cloud time) scaled to a year, x the VM's price per hour.
* ``drill compute``: when the scenario has no drills of its own, the sheet's default drills (e.g. 4 a year x 7
  days) x the price per hour; with drills, their cloud time is in ``compute``.
* ``egress``: bytes downloaded on failback and restore (on the wire: / compression), scaled to a year, x price
  per GB.
* ``downtime`` and ``lost data``: the run's downtime hours and data-loss hours (the incidents' ``data_loss_s``)
  scaled to a year, x the business figures: the expected incident cost **of this run's incidents, scaled per
  year**, not a long-horizon estimate (pass long-horizon figures to :func:`incident_cost` instead).

Site rows (``vm == "(site)"``): each item summed over the VMs, and ``uplink``, the monthly price of the cheapest
listed tier at or above the scenario's upload (NaN when none is listed). Monthly figures are per year / 12
(except the licence: the fee). A year is 365 days.

**As summary columns** (:func:`with_cost_columns`, what a sweep's tidy and aggregate tables carry): per VM and for
the site, ``cost_<item>_per_year`` for every item (spaces as underscores: ``cost_replica_storage_per_year``) and
``cost_running_per_year``, ``cost_incidents_per_year``, ``cost_total_per_year``, all per year in the sheet's
currency (:data:`COST_METRICS`); a VM row has no uplink (NaN), and, as in :func:`totals`, an unlisted uplink
counts 0 in the site's running and total costs.

Imports :mod:`drsim.scenario` and, of this stage, the tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from drsim.results.tables import SITE, Results
from drsim.scenario.prices import GB, PriceSheet, load_price_sheet
from drsim.scenario.site import protectable
from drsim.scenario.units import DAY, HOUR

__all__ = ["costs_table", "run_costs", "incident_cost", "totals", "cost_columns", "with_cost_columns", "YEAR",
           "COST_COLUMNS", "COST_METRICS", "RUNNING", "INCIDENT"]

YEAR = 365 * DAY  #: seconds in a year
COST_COLUMNS = ("vm", "item", "quantity", "unit", "unit_price", "monthly", "per_year")
RUNNING = ("licence", "replica storage", "recovery points", "compute", "drill compute", "egress", "uplink")
INCIDENT = ("downtime", "lost data")
#: the summary's cost columns (:func:`cost_columns`), per year in the sheet's currency
COST_METRICS = (*(f"cost_{item.replace(' ', '_')}_per_year" for item in RUNNING + INCIDENT),
                "cost_running_per_year", "cost_incidents_per_year", "cost_total_per_year")
_LOG_KINDS = ("catchup", "delta", "final_sync", "reverse", "resync")  # transfers whose bytes a recovery point keeps
_CLOUD_STATES = ("in_cloud", "failback_sync", "failing_back")


def incident_cost(prices: PriceSheet, vm: str, downtime_h_per_year: float,
                  data_loss_h_per_year: float) -> tuple[float, float]:
    """(downtime cost, lost-data cost) per year of ``vm`` for expected hours per year of downtime and of lost
    work, at the sheet's business figures."""
    b = prices.business
    return downtime_h_per_year * b.downtime_rate(vm), data_loss_h_per_year * b.lost_data_per_hour


def _per_vm_sum(df: pd.DataFrame, key: str, values: np.ndarray | pd.Series) -> dict[str, float]:
    if df.empty:
        return {}
    return pd.Series(np.asarray(values, dtype=float), index=df[key].astype(str).to_numpy()).groupby(level=0).sum() \
        .to_dict()


def costs_table(results: Results, prices: PriceSheet) -> pd.DataFrame:
    """The run's costs (columns :data:`COST_COLUMNS`; ``quantity`` in ``unit``, ``unit_price`` in currency per
    unit, ``monthly`` and ``per_year`` in currency). ``attrs``: currency, the sheet's date and what was scaled."""
    s = results.scenario
    span = float(s.duration)
    scale = YEAR / span  # run -> year
    summary = results.summary.set_index("vm")
    link = s.link
    tr = results.transfers
    kind = tr["kind"].astype(str)
    log = tr[kind.isin(_LOG_KINDS) & tr["finished_at"].notna()]
    logged = _per_vm_sum(log, "vm", log["bytes"])
    down = tr[kind.isin(("failback", "restore"))]
    downloaded = _per_vm_sum(down, "vm", down["bytes"] / link.compression)
    st = results.states
    cloud = st[st["state"].astype(str).isin(_CLOUD_STATES)]
    cloud_s = _per_vm_sum(cloud, "vm", cloud["end"] - cloud["start"])
    ops = results.operations
    tests = ops[(ops["kind"].astype(str) == "test_failover") & (ops["step"].astype(str) == "cloud_time")]
    for vm, seconds in _per_vm_sum(tests, "target", tests["end"] - tests["start"]).items():
        cloud_s[vm] = cloud_s.get(vm, 0.0) + seconds
    inc = results.incidents
    lost_s = _per_vm_sum(inc, "vm", inc["data_loss_s"].fillna(0.0))
    lic = prices.licence
    drills = prices.drills
    retention = s.replication.retention
    rows: list[dict] = []

    def add(vm: str, item: str, quantity: float, unit: str, unit_price: float, per_year: float,
            monthly: float | None = None) -> None:
        rows.append({"vm": vm, "item": item, "quantity": quantity, "unit": unit, "unit_price": unit_price,
                     "monthly": per_year / 12 if monthly is None else monthly, "per_year": per_year})

    for host, vm in s.vms():
        if not protectable(host, vm):
            continue
        n = vm.name
        add(n, "licence", 1.0, "VM", lic.per_vm_month, 12 * lic.per_vm_month * max(0.0, 365 - lic.free_days) / 365,
            monthly=lic.per_vm_month)
        used_gb = vm.copy_bytes / GB
        add(n, "replica storage", used_gb, "GB-month", prices.storage.replica_gb_month,
            12 * used_gb * prices.storage.replica_gb_month)
        protected_at = float(summary.at[n, "protected_at"]) if n in summary.index else math.nan
        protected_s = span - protected_at if math.isfinite(protected_at) else 0.0
        kept = logged.get(n, 0.0) / protected_s * retention if protected_s > 0 else 0.0
        add(n, "recovery points", kept / GB, "GB-month", prices.storage.recovery_points_gb_month,
            12 * kept / GB * prices.storage.recovery_points_gb_month)
        rate = prices.compute.rate(n)
        hours = cloud_s.get(n, 0.0) / HOUR * scale
        add(n, "compute", hours, "h/year", rate, hours * rate)
        drill_h = 0.0 if s.drills else drills.per_year * drills.days * 24
        add(n, "drill compute", drill_h, "h/year", rate, drill_h * rate)
        gb = downloaded.get(n, 0.0) / GB * scale
        add(n, "egress", gb, "GB/year", prices.egress.per_gb, gb * prices.egress.per_gb)
        down_h = float(summary.at[n, "downtime_s"]) / HOUR * scale if n in summary.index else 0.0
        lost_h = lost_s.get(n, 0.0) / HOUR * scale
        cost_down, cost_lost = incident_cost(prices, n, down_h, lost_h)
        add(n, "downtime", down_h, "h/year", prices.business.downtime_rate(n), cost_down)
        add(n, "lost data", lost_h, "h/year", prices.business.lost_data_per_hour, cost_lost)
    df = pd.DataFrame(rows, columns=list(COST_COLUMNS))
    site = df.groupby("item", sort=False)[["quantity", "monthly", "per_year"]].sum().reset_index()
    site["vm"], site["unit"], site["unit_price"] = SITE, df.groupby("item", sort=False)["unit"].first().values, np.nan
    tier = prices.uplink.price(link.upload)
    uplink = pd.DataFrame([{"vm": SITE, "item": "uplink", "quantity": link.upload * 8 / 1e6, "unit": "Mbit/s",
                            "unit_price": tier, "monthly": tier, "per_year": 12 * tier}])
    df = pd.concat([df, site[list(COST_COLUMNS)], uplink], ignore_index=True)
    df.attrs = {"currency": prices.currency, "price_date": str(prices.date),
                "scaled": f"compute, egress, downtime and lost data: this run's {span / DAY:g} days scaled to a "
                          "year; incidents are this run's, not a long-horizon estimate",
                "licence": f"per year: the first year, {lic.free_days} days free"}
    return df


def totals(costs: pd.DataFrame) -> dict[str, float]:
    """The site's running, incident and total cost per year (NaN items, such as an unlisted uplink, count 0)."""
    site = costs[costs["vm"] == SITE].set_index("item")["per_year"].fillna(0.0)
    running = float(site.reindex(RUNNING).fillna(0.0).sum())
    incident = float(site.reindex(INCIDENT).fillna(0.0).sum())
    return {"running_per_year": running, "incident_per_year": incident, "total_per_year": running + incident}


def cost_columns(costs: pd.DataFrame) -> pd.DataFrame:
    """One row per VM and ``(site)`` of a :func:`costs_table` (index ``vm``), with the :data:`COST_METRICS`
    columns: each item per year, and the running, incident and total cost per year (a NaN item counts 0 in the
    sums, as in :func:`totals`)."""
    wide = costs.set_index(["vm", "item"])["per_year"].unstack("item").reindex(columns=list(RUNNING + INCIDENT))
    out = pd.DataFrame(index=wide.index)
    out.index.name = "vm"
    for item in RUNNING + INCIDENT:
        out[f"cost_{item.replace(' ', '_')}_per_year"] = wide[item].astype(float)
    out["cost_running_per_year"] = wide[list(RUNNING)].fillna(0.0).sum(axis=1)
    out["cost_incidents_per_year"] = wide[list(INCIDENT)].fillna(0.0).sum(axis=1)
    out["cost_total_per_year"] = out["cost_running_per_year"] + out["cost_incidents_per_year"]
    return out


def with_cost_columns(summary: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """``summary`` (a run's summary table) with the :data:`COST_METRICS` columns of ``costs`` appended, matched
    by ``vm`` (NaN for a VM that does not replicate, so has no costs)."""
    cols = cost_columns(costs)
    out = summary.copy()
    keys = out["vm"].astype(str)
    for name in COST_METRICS:
        out[name] = keys.map(cols[name]).astype(float).to_numpy()
    return out


def run_costs(results: Results, prices_file: str | None = None) -> pd.DataFrame:
    """:func:`costs_table` at the bundled sheet, with ``prices_file`` and then the scenario's ``prices:`` section
    merged over it."""
    return costs_table(results, load_price_sheet(prices_file, results.scenario.prices))
