"""The costs of a run in words and tables: the summary's cost section (:func:`costs_text`) and the report's
(:func:`costs_markdown`), from a costs table (:func:`drsim.results.costs.costs_table`).

Imports :mod:`drsim.results` and, of this stage, the table type of the reports.
"""

from __future__ import annotations

import math

import pandas as pd

from drsim.results.costs import totals
from drsim.results.findings import text_table
from drsim.results.tables import SITE
from drsim.views.rendering import Table

__all__ = ["costs_text", "costs_markdown", "costs_report_table"]


def _money(value: float, currency: str) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:,.2f} {currency}"


def _site_rows(costs: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    cur = costs.attrs.get("currency", "")
    site = costs[costs["vm"] == SITE]
    return [(r.item, f"{r.quantity:,.1f} {r.unit}", _money(r.monthly, cur), _money(r.per_year, cur))
            for r in site.itertuples(index=False)]


def _notes(costs: pd.DataFrame) -> list[str]:
    a = costs.attrs
    t = totals(costs)
    cur = a.get("currency", "")
    lines = [f"Running costs {_money(t['running_per_year'], cur)} a year; incidents "
             f"{_money(t['incident_per_year'], cur)}; total {_money(t['total_per_year'], cur)}.",
             f"Prices of {a.get('price_date')} ({a.get('licence')}); {a.get('scaled')}."]
    if costs[(costs["vm"] == SITE) & (costs["item"] == "uplink")]["monthly"].isna().all():
        lines.append("No uplink tier at or above the scenario's upload is listed (prices: uplink: tiers).")
    return lines


def costs_text(costs: pd.DataFrame) -> str:
    """The site's costs, item by item, as printed after a run's summary."""
    lines = ["Costs (site):"]
    lines += text_table(("item", "quantity", "monthly", "per year"), _site_rows(costs))
    lines += _notes(costs)
    return "\n".join(lines)


def costs_markdown(costs: pd.DataFrame) -> str:
    """The report's cost section (Markdown): the site's items and the notes."""
    lines = ["## Costs", "", "| item | quantity | monthly | per year |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _site_rows(costs)]
    lines += [""] + _notes(costs)
    return "\n".join(lines)


def costs_report_table(costs: pd.DataFrame) -> Table:
    """The report's Costs section: the site's items, with the totals and the basis as its note."""
    return Table(header=["item", "quantity", "monthly", "per year"], rows=[list(r) for r in _site_rows(costs)],
                 numeric=[False, True, True, True], caption=f"Costs of the site ({costs.attrs.get('currency', '')})",
                 note=" ".join(_notes(costs)))
