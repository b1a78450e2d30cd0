"""The report of a risk computation (:func:`drsim.risk`): ``report.html`` (self-contained) and ``report.md`` with
its figures beside it, written with the generic document templates of :mod:`drsim.views.report`.

Sections: the answer (the site's annual figures with their intervals, in plain words, and the expected annual
cost of incidents); the figures per VM; the cost of incidents per VM and site (with intervals); the exceedance
curve and availability per VM; the method (engine, the estimator behind each figure and its
interval, the conditions checked, the steady state of replication); notes; the scenario in brief.

Imports :mod:`drsim.views.report` (document machinery, read only), :mod:`drsim.views.risk_figures`, and the risk
result's modules.
"""

from __future__ import annotations

from pathlib import Path

from drsim.experiments.estimators import METRICS
from drsim.experiments.risk import Risk, years_simulated
from drsim.experiments.risk_output import cost_lines, figure_text, money_text, probability_text
from drsim.results.findings import count
from drsim.scenario.units import format_duration
from drsim.version import __version__
from drsim.views import risk_figures
from drsim.views.brief import brief_of as scenario_brief
from drsim.views.rendering import Block, Section, Table, figure_blocks, write_document

__all__ = ["write_risk_report", "risk_report_context", "FIGURE_FILES"]

SITE = "(site)"
FIGURE_FILES = ("report-exceedance.png", "report-nines.png")
_SHORT = {"data_loss_per_year_s": "data loss / year", "p_loss_over_rpo": "P(loss > RPO)", "p_loss_over_1h":
          "P(loss > 1 h)", "p_loss_over_1d": "P(loss > 1 d)", "downtime_per_year_s": "downtime / year",
          "availability": "availability", "nines": "nines", "failovers_per_year": "failovers / year",
          "incidents_per_year": "incidents / year", "rto_met_share": "RTO met", "unrecoverable_per_year":
          "unrecoverable / year"}


def _cell(result: Risk, metric: str, vm: str = SITE) -> str:
    row = result.figures[(result.figures["vm"] == vm) & (result.figures["metric"] == metric)].iloc[0]
    return figure_text(row["value"], row["low"], row["high"], row["unit"])


def _answer(result: Risk) -> list[tuple[str, str]]:
    s = result.scenario
    rpo, rto = format_duration(s.objectives.rpo), format_duration(s.objectives.rto)
    return [
        ("Expected data loss per year (all VMs)", _cell(result, "data_loss_per_year_s")),
        (f"A year with a loss above the RPO target ({rpo}) on some VM", _cell(result, "p_loss_over_rpo")),
        ("A year with a loss above 1 hour", _cell(result, "p_loss_over_1h")),
        ("A year with a loss above 1 day", _cell(result, "p_loss_over_1d")),
        ("Expected downtime per year (all VMs)", _cell(result, "downtime_per_year_s")),
        ("Availability (mean over VMs)", f"{_cell(result, 'availability')}, {_cell(result, 'nines')} nines"),
        ("Unplanned failovers per year", _cell(result, "failovers_per_year")),
        (f"Incidents restored within the RTO ({rto})", _cell(result, "rto_met_share")),
        *([("Expected cost of incidents per year (site)",
            money_text(*result.cost(), result.prices.currency if result.prices is not None else ""))]
          if not result.costs.empty else []),
    ]


def _cost_table(result: Risk) -> Table:
    cur = result.prices.currency if result.prices is not None else ""
    names = [n for n in dict.fromkeys(result.costs["vm"]) if n != SITE]
    items = ("downtime", "lost data", "incidents")

    def cells(vm: str) -> list[str]:
        return [money_text(*result.cost(item, vm)) for item in items]

    b = result.prices.business if result.prices is not None else None
    rates = ("" if b is None else f" Prices of {result.prices.date}: downtime {b.downtime_per_hour:,.2f} {cur} "
             "per VM-hour" + (f" ({', '.join(f'{k}: {v:,.2f}' for k, v in b.vms.items())})" if b.vms else "")
             + f", lost work {b.lost_data_per_hour:,.2f} {cur} per hour ({b.source}).")
    return Table(["VM", f"downtime cost / year ({cur})", f"lost data cost / year ({cur})",
                  f"incident cost / year ({cur})"], [[n, *cells(n)] for n in names], [False, True, True, True],
                 caption="Expected annual cost of incidents, with 95 % confidence intervals",
                 total=[SITE, *cells(SITE)],
                 note="The expected downtime and data loss per year of the figures above, priced with the price "
                      "sheet's business figures, replication by replication; the interval is the figures' (with the "
                      "probe runs' part for a data loss by conditional Monte Carlo). Incidents with no recovery point "
                      "are not priced." + rates)


def _lead(result: Risk) -> list[str]:
    f = result.figures
    site = f[f["vm"] == SITE].set_index("metric")["value"]
    rpo = format_duration(result.scenario.objectives.rpo)
    out = [f"Over {result.years} years, replicated {result.replications} times ({years_simulated(result):,.0f} "
           f"simulated years), the site loses on average {format_duration(site['data_loss_per_year_s'])} of writes a "
           f"year in all (summed over VMs) and is down {format_duration(site['downtime_per_year_s'])} a year in all."]
    p = site["p_loss_over_rpo"]
    if p > 0:
        out.append(f"About one year in {max(1, round(1 / p)):,} holds a loss above the {rpo} RPO target on some VM "
                   f"({probability_text(p)} a year).")
    else:
        out.append(f"No simulated year holds a loss above the {rpo} RPO target.")
    out += cost_lines(result)
    if result.notes:
        out.append("Read the notes below: " + result.notes[0])
    return out


def _vm_table(result: Risk) -> Table:
    f = result.figures
    names = [n for n in dict.fromkeys(f["vm"]) if n != SITE]
    metrics = [m for m, _, _ in METRICS]
    rows = [[n, *(_cell(result, m, n) for m in metrics)] for n in names]
    return Table(["VM", *(_SHORT[m] for m in metrics)], rows, [False, *([True] * len(metrics))],
                 caption="Annual figures per VM and for the site, with 95 % confidence intervals",
                 total=[SITE, *(_cell(result, m) for m in metrics)],
                 note="Data loss is VM-seconds of writes lost (the time from the recovery point used to the failure); "
                      "the site row sums losses and downtime over VMs, averages availability, and counts a year "
                      "with a loss above x on any VM.")


def _steady_table(result: Risk) -> Table:
    st = result.steady
    rows = [[r.vm, format_duration(r.rpo_mean_s) if r.rpo_mean_s == r.rpo_mean_s else "-",
             format_duration(r.rpo_max_s) if r.rpo_max_s == r.rpo_max_s else "-",
             probability_text(r.rpo_over_target), format_duration(r.protected_at_s)
             if r.protected_at_s == r.protected_at_s else "-"] for r in st.itertuples()]
    return Table(["VM", "RPO mean", "RPO max", "time above the RPO target", "protected after"], rows,
                 [False, True, True, True, True], caption=f"Steady state of replication ({result.probe_runs} probe "
                 "runs, whole weeks after every VM is protected)")


def risk_report_context(result: Risk) -> tuple[dict, list]:
    """The sections of a risk report, and its figures."""
    fig_blocks, figures = figure_blocks([
        ("Exceedance curve", "The annual probability that a year holds a data loss above x, for the site (any VM; "
         "grey band: its 95 % interval) and each VM, on log scales. A curve ends where its probability is zero.",
         FIGURE_FILES[0], lambda: risk_figures.exceedance_curve(result)),
        ("Availability per VM", "Nines of availability per VM and for the site (mean over VMs), with 95 % "
         "intervals; the expected downtime per year beside each bar.", FIGURE_FILES[1],
         lambda: risk_figures.nines_by_vm(result)),
    ])
    method = [("Engine", result.method), ("Horizon", f"{count(result.years, 'year')} x "
                                                     f"{count(result.replications, 'replication')}"),
              ("Experiment seed", str(result.seed)),
              ("Warm-up before a window's first failure", format_duration(result.plan.warmup)),
              ("Computed in", f"{result.elapsed_s:.1f} s on {count(result.workers, 'worker')} ({result.executor})")]
    estimators = [f"{what}: {how}" for what, how in result.estimators.items()]
    conditions = [f"{'holds' if ok else 'does not hold'}: {c}" for c, ok in result.conditions]
    intervals = ("Intervals: means per year by a Student t interval over the replications; probabilities counted "
                 "in simulated years by a Wilson score interval over the years; conditional Monte Carlo adds, in "
                 "quadrature, the spread of the figure recomputed from each probe run's RPO distribution; "
                 "availability from the downtime's interval; the RTO share by the delta method.")
    brief, hosts = scenario_brief(result.scenario)
    sections = [
        Section("answer", "Answer", [*(Block("lead", t) for t in _lead(result)), Block("dl", _answer(result))]),
        Section("vms", "Per-VM figures", [Block("table", _vm_table(result))]),
        *([Section("costs", "Cost of incidents", [Block("table", _cost_table(result))])]
          if not result.costs.empty else []),
        Section("figures", "Figures", fig_blocks),
        Section("method", "Method", [Block("dl", method), Block("h3", "Estimators"), Block("ul", estimators),
                                     Block("p", intervals), Block("h3", "Conditions of conditional Monte Carlo"),
                                     Block("ul", conditions), Block("table", _steady_table(result))]),
        Section("notes", "Notes", [Block("ul", result.notes or ["None."])]),
        Section("scenario", "Scenario", [
            Block("p", "The scenario over the horizon, as simulated: its stochastic failures only."),
            Block("dl", brief), Block("table", hosts)]),
    ]
    ctx = {"title": f"Risk over years: {result.scenario.name}",
           "meta": f"drsim {__version__} · {result.replications} x {result.years} years · experiment seed "
                   f"{result.seed} · {result.method}",
           "version": __version__, "sections": sections,
           "footer": f"Generated by drsim {__version__}. The same scenario, horizon, replications, method and "
                     f"experiment seed {result.seed} give the same figures."}
    return ctx, figures


def write_risk_report(result: Risk, folder: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` (with its PNG figures) of ``result`` into ``folder``."""
    ctx, figures = risk_report_context(result)
    return write_document(Path(folder), ctx, figures)
