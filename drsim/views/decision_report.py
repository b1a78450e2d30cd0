"""The report of a planner's decisions other than the bandwidth search: the **option comparison**
(:func:`drsim.experiments.options.compare_options`: the cheapest option that meets the objectives, the lowest total
expected annual cost, every option's RPO, availability and costs, the cost/RPO frontier figure) and the **deadline
plan** (:func:`drsim.experiments.deadline.deadline_bandwidth`: the upload at which every VM is protected by the
deadline, each VM's time to protection, the suggested batch order, a figure of both orders). One folder holds
whichever were computed (:func:`write_decision_folder`): ``options.parquet``, ``deadline.parquet`` (per VM),
``metadata.json`` (the requests and answers), ``report.html``, ``report.md`` and its figures. Rendered by the
generic templates with the run report's escaping.

Imports pandas, matplotlib, :mod:`drsim.experiments` (the plan's Mbit/s), :mod:`drsim.results` (folders),
:mod:`drsim.scenario`, the options figure, the style, :mod:`drsim.views.rendering` and :mod:`drsim.views.brief`.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from drsim.experiments.planner_text import mbit, tolerance_text
from drsim.results.findings import count
from drsim.results.folders import atomic_folder, package_versions
from drsim.scenario import units
from drsim.scenario.document import Scenario
from drsim.version import __version__
from drsim.views.brief import brief_of
from drsim.views.options_figure import options_frontier
from drsim.views.rendering import Block, ReportFigure, Section, Table, figure_blocks, json_safe, write_document
from drsim.views.style import OKABE_ITO, duration_unit

__all__ = ["decision_report_context", "write_decision_report", "write_decision_folder", "deadline_figure",
           "FIGURE_FILES"]

FIGURE_FILES = {"options": "report-options-frontier.png", "deadline": "report-deadline.png"}
_fmt = units.format_duration


def _money(x: float, cur: str) -> str:
    return "-" if not math.isfinite(x) else f"{x:,.0f} {cur}".rstrip()


def _batches_text(batches: list[list[str]]) -> str:
    return "; ".join(f"{k}: {', '.join(b)}" for k, b in enumerate(batches, start=1))


# --- options ---------------------------------------------------------------------------------------------------


def _option_row(options: pd.DataFrame, label: str | None) -> pd.Series | None:
    if label is None:
        return None
    rows = options[options["option"] == label]
    return None if rows.empty else rows.iloc[0]


def _options_sections(options: pd.DataFrame) -> tuple[list[Section], list[tuple[str, str, str, Any]]]:
    a = options.attrs
    cur = a.get("currency", "")
    pct = f"p{a['percentile']:g}"
    cheapest, lowest = _option_row(options, a.get("cheapest")), _option_row(options, a.get("lowest_total"))
    answer = [
        ("Cheapest option that meets the objectives",
         "none of those priced" if cheapest is None else
         f"{cheapest['option']}: running costs {_money(cheapest['running_per_year'], cur)} a year, worst VM's {pct} "
         f"RPO {_fmt(cheapest['rpo_stat_s'])} ({a.get('criterion_text', 'mean')})"),
        ("Lowest total expected annual cost",
         "none priced" if lowest is None else
         f"{lowest['option']}: {_money(lowest['total_per_year'], cur)} a year (running "
         f"{_money(lowest['running_per_year'], cur)}, expected incidents {_money(lowest['incident_per_year'], cur)}"
         + (f" [{lowest['incident_low']:,.0f}, {lowest['incident_high']:,.0f}]"
            if lowest['incident_high'] > lowest['incident_low'] else "") + f"; {lowest['incident_basis']})"),
    ]
    if a.get("unpriced"):
        answer.append(("No uplink tier listed for",
                       "; ".join(a["unpriced"]) + " (prices: uplink: tiers): never chosen"))
    bases = list(dict.fromkeys(options["incident_basis"]))
    rows = []
    for k, r in enumerate(options.itertuples(index=False), start=1):
        incidents = _money(r.incident_per_year, cur)
        if r.incident_high > r.incident_low:
            incidents += f" [{r.incident_low:,.0f}, {r.incident_high:,.0f}]"
        rpo = (f"{_fmt(r.rpo_stat_s)} (mean {_fmt(r.rpo_mean_s)})" if np.isfinite(r.rpo_stat_s)
               else "never protected")
        rows.append([str(k), r.option, rpo, f"{r.availability_min:.4%}", "yes" if r.meets else "no",
                     _money(r.running_per_year, cur) + ("" if np.isfinite(r.uplink_per_month) else " + uplink?"),
                     incidents, _money(r.total_per_year, cur), *([r.incident_basis] if len(bases) > 1 else [])])
    header = ["#", "option", f"worst VM's {pct} RPO", "lowest availability", "meets", "running / year",
              "expected incidents / year", "total / year", *(["incidents from"] if len(bases) > 1 else [])]
    table = Table(header, rows, [True, False, True, True, False, True, True, True, False][:len(header)],
                  caption=f"Options compared ({a['replications']} replications each, failures included; prices of "
                          f"{a['price_date']}, {cur})",
                  note=f"An option meets the objectives when every VM is protected in every replication and every "
                       f"VM's {pct} RPO over its protected time, judged by the {a.get('criterion_text', 'mean')} "
                       f"(shown first; the mean in brackets), is within the {_fmt(a['rpo_s'])} target. Running "
                       "costs: licence (the first 31 days free), replica and recovery-point storage, compute, drills, "
                       "egress and the uplink tier of the upload. Expected incidents: the risk engine's expected "
                       "annual downtime and data loss priced with the sheet's business figures (95 % interval) where "
                       "the option has random failures and keeps up with its churn, else the runs' own incidents "
                       "scaled to a year" + (" (column 'incidents from')." if len(bases) > 1
                                             else f"; here for every option: {bases[0]}."))
    figure = ("Options: cost against RPO",
              f"Running cost per year (filled where the option meets the objectives) against the worst VM's {pct} "
              "RPO as judged; the square is running + expected incident cost with its 95 % interval; the cheapest "
              "option that meets the objectives and the lowest total are marked; the RPO target is dashed.",
              FIGURE_FILES["options"], lambda: options_frontier(options))
    return [Section("options", "Options", [Block("dl", answer), Block("table", table)])], [figure]


# --- deadline --------------------------------------------------------------------------------------------------


def deadline_figure(result: dict[str, Any]) -> Figure:
    """Each VM's time to protection at the deadline bandwidth with the batches as given (bars, grouped by batch)
    and, when one is suggested, with the batches smallest first (diamonds); the deadline dashed."""
    names = [n for batch in result["batches"] for n in batch]
    given = np.array([result["protected_after_s"][n] for n in names])
    alt = result.get("suggested_protected_after_s") or {}
    top = max([float(result["deadline_s"]), *given[np.isfinite(given)], *alt.values()])
    scale, unit = duration_unit(top)
    fig = Figure(figsize=(8, max(3.0, 0.45 * len(names) + 2.0)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(names))[::-1]
    batch_of = {n: k for k, batch in enumerate(result["batches"]) for n in batch}
    colors = [OKABE_ITO["sky_blue"], OKABE_ITO["orange"], OKABE_ITO["bluish_green"], OKABE_ITO["reddish_purple"]]
    ax.barh(y, given / scale, color=[colors[batch_of[n] % len(colors)] for n in names], edgecolor="black",
            linewidth=0.5, label="batches as given (colour: batch)")
    if result.get("suggested_batches"):
        ax.plot([alt[n] / scale for n in names], y, "D", color="black", markerfacecolor="white",
                label="batches smallest first (suggested)")
    ax.axvline(float(result["deadline_s"]) / scale, linestyle="--", color="black", linewidth=1,
               label=f"deadline {_fmt(float(result['deadline_s']))}")
    ax.set_yticks(y, names)
    ax.set_xlabel(f"time to protection from the initial start ({unit})")
    ax.set_title(f"{result.get('scenario', '')}: initial replication at {mbit(result['required_Bps'])}")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    return fig


def _deadline_sections(result: dict[str, Any]) -> tuple[list[Section], list[tuple[str, str, str, Any]]]:
    deadline = float(result["deadline_s"])
    answer = [
        ("Upload for every VM protected by the deadline",
         f"{mbit(result['required_Bps'])} (not at {mbit(result['not_at_Bps'])}): every VM protected within "
         f"{_fmt(deadline)} of the initial start in every replication"),
        ("Batches as given", _batches_text(result["batches"]) + f"; mean time to protection "
                                                              f"{_fmt(result['mean_wait_s'])}"),
        ("Suggested batch order",
         _batches_text(result["suggested_batches"]) + f" (smallest first): mean time to protection "
                                                      f"{_fmt(result['suggested_mean_wait_s'])} instead of "
                                                      f"{_fmt(result['mean_wait_s'])}"
         if result.get("suggested_batches") else "the order given: running the batches smallest first does not "
                                                  "lower the mean time to protection"),
    ]
    alt = result.get("suggested_protected_after_s") or {}
    rows = []
    for k, batch in enumerate(result["batches"], start=1):
        for n in batch:
            rows.append([n, str(k), _fmt(result["protected_after_s"][n]),
                         _fmt(alt[n]) if n in alt else "-"])
    table = Table(["VM", "batch", "protected after (given order)", "protected after (smallest first)"], rows,
                  [False, True, True, True],
                  caption=f"Time to protection at {mbit(result['required_Bps'])} (mean of "
                          f"{count(result.get('replications', 1), 'replication')})",
                  note="Runs of the sizing scenario (no failures, maintenance or drills; the throttle scaled with the "
                       "uplink) from the initial start to the deadline, with common random numbers; a bandwidth "
                       "meets the deadline when every VM is protected within it in every replication (bisection to "
                       f"{tolerance_text(result) if 'tolerance_Bps' in result else mbit(math.nan)}).")
    figure = ("Initial replication by the deadline",
              "Each VM's time to protection at the deadline bandwidth with the batches as given (bars; colour: "
              "batch) and, where suggested, smallest batch first (diamonds); the deadline is dashed.",
              FIGURE_FILES["deadline"], lambda: deadline_figure(result))
    return [Section("deadline", "Initial replication by a deadline", [Block("dl", answer), Block("table", table)])], \
        [figure]


# --- the document and the folder ---------------------------------------------------------------------------------


def decision_report_context(scenario: Scenario, options: pd.DataFrame | None = None,
                            deadline: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[ReportFigure]]:
    """The sections of the report of ``options`` and/or ``deadline`` for ``scenario``, and its figures."""
    if options is None and deadline is None:
        raise ValueError("nothing to report: give the options compared or the deadline plan")
    sections: list[Section] = []
    specs: list[tuple[str, str, str, Any]] = []
    for part, build in ((options, _options_sections), (deadline, _deadline_sections)):
        if part is not None:
            more, figs = build(part)
            sections += more
            specs += figs
    fig_blocks, figures = figure_blocks(specs)
    brief, hosts = brief_of(scenario)
    sections += [
        Section("figures", "Figures", fig_blocks),
        Section("scenario", "Scenario", [Block("p", "The scenario as given."), Block("dl", brief),
                                         Block("table", hosts)]),
    ]
    asked = " and ".join(w for w, p in (("options", options), ("deadline", deadline)) if p is not None)
    seed = options.attrs.get("seed", scenario.seed) if options is not None else scenario.seed
    ctx = {"title": f"What to buy: {scenario.name}", "meta": f"drsim {__version__} · {asked}",
           "version": __version__, "sections": sections,
           "footer": f"Generated by drsim {__version__}. The same scenario, request and seed {seed} give the same "
                     "answers."}
    return ctx, figures


def write_decision_report(folder: str | Path, scenario: Scenario, options: pd.DataFrame | None = None,
                          deadline: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (with its PNG figures) into ``folder``."""
    ctx, figures = decision_report_context(scenario, options, deadline)
    return write_document(Path(folder), ctx, figures)


def write_decision_folder(scenario: Scenario, out_root: str | Path = "results", options: pd.DataFrame | None = None,
                          deadline: dict[str, Any] | None = None) -> Path:
    """Write a new folder ``out_root/<scenario>/plan-<UTC time>/`` (a ``-2``... suffix if it exists), created
    atomically, with ``options.parquet`` (the options table), ``deadline.parquet`` (per VM: batch, time to
    protection in the given and the suggested order, s), ``metadata.json`` (the options' attrs and the deadline
    plan, NaN as null) and the report. Returns the folder."""
    now = datetime.now(UTC)

    def fill(tmp: Path) -> None:
        meta: dict[str, Any] = {"scenario": scenario.name, "created_at": now.isoformat(timespec="seconds"),
                                "versions": package_versions(),
                                "units": {"time": "seconds", "rate": "bytes per second", "money": "per year"}}
        if options is not None:
            flat = pd.DataFrame(options, copy=True)
            flat.attrs = {}
            flat.to_parquet(tmp / "options.parquet", index=False)
            meta["options"] = json_safe(dict(options.attrs))
        if deadline is not None:
            alt = deadline.get("suggested_protected_after_s") or {}
            rows = [{"vm": n, "batch": k, "protected_after_s": deadline["protected_after_s"][n],
                     "suggested_protected_after_s": alt.get(n, math.nan)}
                    for k, batch in enumerate(deadline["batches"], start=1) for n in batch]
            pd.DataFrame(rows).to_parquet(tmp / "deadline.parquet", index=False)
            meta["deadline"] = json_safe(dict(deadline))
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        write_decision_report(tmp, scenario, options, deadline)

    return atomic_folder(Path(out_root) / scenario.name, f"plan-{now:%Y%m%d-%H%M%S}", fill)
