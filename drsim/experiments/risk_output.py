"""A risk result for people and for disk: the terminal text (:func:`risk_text`) and the results folder
(:func:`write_risk`).

The folder ``<out>/<scenario>/risk-<UTC time>/`` is written atomically (temporary name, then rename) and holds
``figures.parquet`` (one row per VM or ``(site)`` and metric: value, 95 % interval, unit, estimator),
``exceedance.parquet`` (P(a year holds a loss above x) on a grid of x, per VM and site), ``steady.parquet`` (the
steady-state RPO of the probe runs), ``costs.parquet`` (the expected annual cost of incidents per VM and site:
downtime, lost data and their sum, with 95 % intervals, in the price sheet's currency), ``scenario.yaml`` (the
scenario over the horizon, as simulated) and ``metadata.json`` (request, method, estimators, conditions, notes,
seeds, timing, the prices used, versions).

Imports :mod:`drsim.results` (folders, text tables), :mod:`drsim.scenario` and :mod:`drsim.experiments.risk`.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import yaml

from drsim.experiments.risk import Risk, years_simulated
from drsim.results.findings import count, text_table
from drsim.results.folders import atomic_folder, package_versions
from drsim.scenario.document import scenario_to_dict
from drsim.scenario.units import format_duration

__all__ = ["risk_text", "write_risk", "probability_text", "figure_text", "money_text", "cost_lines"]

SITE = "(site)"


def probability_text(p: float) -> str:
    """A probability as a percentage with two significant digits (``0`` for zero)."""
    if p != p:
        return "-"
    if p < 5e-11:
        return "0"
    if p >= 1:
        return "100%"
    pct = 100 * p
    digits = max(0, 1 - math.floor(math.log10(pct))) if pct < 10 else 1
    return f"{pct:.{min(digits, 8)}f}%"


def _duration(x: float) -> str:
    if x != x:
        return "-"
    return format_duration(x) if x > 0 else "0 s"


def _nines(x: float) -> str:
    return "-" if x != x else ("inf" if math.isinf(x) else f"{x:.2f}")


def figure_text(value: float, low: float, high: float, unit: str) -> str:
    """``value [low, high]`` in the metric's unit."""
    fmt = {"s": _duration, "probability": probability_text, "share": lambda v: probability_text(v) if v == v and
           v < 0.999 else (f"{100 * v:.4f}%" if v == v else "-"), "nines": _nines,
           "count": lambda v: "-" if v != v else f"{v:.3g}"}[unit]
    if value != value:
        return "-"
    if low != low or high != high:
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def money_text(value: float, low: float = math.nan, high: float = math.nan, currency: str = "") -> str:
    """``1,234 [1,100, 1,400] USD``: money rounded to whole units, with its interval when known."""
    if value != value:
        return "-"
    unit = f" {currency}" if currency else ""
    if low != low or high != high:
        return f"{value:,.0f}{unit}"
    return f"{value:,.0f} [{low:,.0f}, {high:,.0f}]{unit}"


def cost_lines(result: Risk) -> list[str]:
    """The expected annual cost of incidents in words: the site's total, downtime and lost data, and why it is
    zero when the price sheet states no business cost."""
    if result.costs.empty or result.prices is None:
        return []
    cur = result.prices.currency
    total, down, lost = (result.cost(item) for item in ("incidents", "downtime", "lost data"))
    b = result.prices.business
    line = (f"Expected cost of incidents per year (site): {money_text(*total, cur)}: downtime "
            f"{money_text(*down, cur)}, lost data {money_text(*lost, cur)} (prices of {result.prices.date})")
    if not (b.downtime_per_hour or b.vms or b.lost_data_per_hour):
        line += ("; zero because the price sheet states no cost of downtime or lost work (prices: business: "
                 "downtime_per_hour, lost_data_per_hour)")
    return [line]


def _table(result: Risk, metrics: list[tuple[str, str]]) -> list[str]:
    f = result.figures
    names = [*dict.fromkeys(f["vm"])]
    rows = []
    for name in names:
        sel = f[f["vm"] == name].set_index("metric")
        rows.append((name, *(figure_text(*sel.loc[m, ["value", "low", "high"]], sel.loc[m, "unit"])
                            for m, _ in metrics)))
    return text_table(("VM", *(h for _, h in metrics)), rows)


def risk_text(result: Risk) -> str:
    """What ``drsim risk`` prints: the request, the method, two tables (data loss; availability), the estimators,
    the conditions and the notes."""
    s = result.scenario
    rpo = format_duration(s.objectives.rpo)
    lines = [f"{s.name}: risk over {count(result.years, 'year')} x {count(result.replications, 'replication')} "
             f"({years_simulated(result):,.0f} simulated years), experiment seed {result.seed}, "
             f"{count(result.workers, 'worker')}, {result.elapsed_s:.2f} s",
             f"method: {result.method}; values with 95 % confidence intervals [low, high]", ""]
    lines += _table(result, [("data_loss_per_year_s", "data loss / year"),
                             ("p_loss_over_rpo", f"P(year loss > {rpo})"), ("p_loss_over_1h", "P(> 1 h)"),
                             ("p_loss_over_1d", "P(> 1 d)")])
    lines.append("")
    lines += _table(result, [("downtime_per_year_s", "downtime / year"), ("availability", "availability"),
                             ("nines", "nines"), ("failovers_per_year", "failovers / year"),
                             ("rto_met_share", f"RTO {format_duration(s.objectives.rto)} met")])
    costs = cost_lines(result)
    if costs:
        lines += [""] + costs
        names = [n for n in dict.fromkeys(result.costs["vm"]) if n != SITE]
        if len(names) > 1:
            cur = result.prices.currency if result.prices is not None else ""
            rows = [(n, *(money_text(*result.cost(item, n), cur) for item in ("downtime", "lost data", "incidents")))
                    for n in [*names, SITE]]
            lines += text_table(("VM", "downtime cost / year", "lost data cost / year", "incident cost / year"), rows)
    lines += ["", "Estimators:"]
    lines += [f"- {what}: {how}" for what, how in result.estimators.items()]
    held = [c for c, ok in result.conditions if ok]
    failed = [c for c, ok in result.conditions if not ok]
    if result.method == "conditional":
        lines.append("- conditions (all hold): " + "; ".join(held))
    elif failed:
        lines.append("- conditional Monte Carlo not used, as it needs: " + "; ".join(failed))
    if result.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in result.notes]
    return "\n".join(lines)


def write_risk(result: Risk, out_root: str | Path = "results", fill_extra=None) -> Path:
    """Write ``result`` into a new folder ``out_root/<scenario>/risk-<UTC time>/`` (see the module docstring);
    ``fill_extra(folder)`` may add files (a report) before the folder is renamed into place. Returns it."""
    now = datetime.now(UTC)

    def fill(tmp: Path) -> None:
        result.figures.to_parquet(tmp / "figures.parquet", index=False)
        result.exceedance.to_parquet(tmp / "exceedance.parquet", index=False)
        result.steady.to_parquet(tmp / "steady.parquet", index=False)
        costs = result.costs.copy()
        costs.attrs = {}
        costs.to_parquet(tmp / "costs.parquet", index=False)
        with open(tmp / "scenario.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump(scenario_to_dict(result.scenario, result.seed), f, sort_keys=False, allow_unicode=True)
        meta = {**result.metadata(), "created_at": now.isoformat(timespec="seconds"), "versions": package_versions(),
                "units": {"time": "seconds", "probability": "per year"}}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        if fill_extra is not None:
            fill_extra(tmp)

    return atomic_folder(Path(out_root) / result.scenario.name, f"risk-{now:%Y%m%d-%H%M%S}", fill)
