"""The report of an experiment (:func:`drsim.experiments.runner.run_experiment`), written into its sweep
folder (:func:`drsim.experiments.sweep_folder.write_experiment`) by :func:`write_experiment_report`: the scenario in
brief, the sweep, a summary in plain words, the site's aggregate per point (means ± the 95 % confidence
half-width) and the experiment figures that apply to what was swept. Rendered by the generic templates
``document.html.j2`` and ``document.md.j2`` (sections of blocks) with the run report's escaping.

Imports :mod:`drsim.results` (counts, the site's name), :mod:`drsim.scenario.units`, the figures and
:mod:`drsim.views.rendering`, :mod:`drsim.views.brief` and :mod:`drsim.views.assumptions`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drsim.results.findings import count
from drsim.results.tables import SITE
from drsim.scenario import units
from drsim.version import __version__
from drsim.views import figures as plots
from drsim.views.assumptions import assumption_blocks
from drsim.views.brief import brief_of
from drsim.views.rendering import (
    Block,
    ReportFigure,
    Section,
    Table,
    figure_blocks,
    is_missing,
    percent,
    write_document,
)

__all__ = ["experiment_report_context", "write_experiment_report"]

_fmt = units.format_duration


def _seeds_text(seeds: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(s) for s in seeds[:limit])
    return shown + (f" and {len(seeds) - limit} more" if len(seeds) > limit else "")


def _value_text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class _SiteStats:
    """The site's aggregate of an experiment: (mean, ci95) per (point, metric)."""

    def __init__(self, exp: Any):
        agg = exp.aggregate
        agg = agg[agg["vm"] == SITE]
        self.stats = {(int(p), str(m)): (float(mean), float(half), int(n)) for p, m, mean, half, n
                      in zip(agg["point"], agg["metric"], agg["mean"], agg["ci95"], agg["n"], strict=True)}

    def mean(self, point: int, metric: str) -> float:
        return self.stats.get((point, metric), (math.nan, math.nan, 0))[0]

    def ci(self, point: int, metric: str) -> float:
        return self.stats.get((point, metric), (math.nan, math.nan, 0))[1]

    def n(self, point: int, metric: str) -> int:
        return self.stats.get((point, metric), (math.nan, math.nan, 0))[2]

    def money(self, point: int, metric: str) -> str:
        m, half = self.mean(point, metric), self.ci(point, metric)
        if is_missing(m):
            return "-"
        return f"{m:,.0f}" + ("" if is_missing(half) else f" ± {half:,.0f}")

    def dur(self, point: int, metric: str) -> str:
        m, half = self.mean(point, metric), self.ci(point, metric)
        if is_missing(m):
            return "-"
        return _fmt(m) + ("" if is_missing(half) else f" ± {_fmt(half)}")


def _point_label(exp: Any, point: int) -> str:
    settings = exp.points.iloc[point]
    text = ", ".join(f"{path} = {_value_text(settings[path])}" for path in exp.sweep)
    return f"point {point}" + (f" ({text})" if text else "")


def _objectives_met(exp: Any, st: _SiteStats, point: int) -> tuple[bool, bool]:
    """(RPO met, RTO met) at the site at a point: the RPO when the mean p95 RPO is within the RPO objective and
    every incident's data loss was within it in every replication; the RTO when every incident of every
    replication was restored within the RTO objective."""
    obj = exp.scenario_for(point).objectives
    rpo = st.mean(point, "rpo_p95_s")
    loss_ok = st.mean(point, "rpo_met")
    rto_ok = st.mean(point, "rto_met")
    rpo_met = not is_missing(rpo) and rpo <= obj.rpo and (is_missing(loss_ok) or loss_ok >= 1.0)
    rto_met = is_missing(rto_ok) or rto_ok >= 1.0
    return rpo_met, rto_met


def _extremes(exp: Any, st: _SiteStats, metric: str, what: str) -> str | None:
    points = [p for p in range(len(exp.points)) if not is_missing(st.mean(p, metric))]
    if not points:
        return None
    if len(points) == 1:
        return f"The site's mean {what} is {st.dur(points[0], metric)}."
    best = min(points, key=lambda p: st.mean(p, metric))
    worst = max(points, key=lambda p: st.mean(p, metric))
    if _fmt(st.mean(best, metric)) == _fmt(st.mean(worst, metric)):  # the same as shown: no lowest or highest
        return f"The site's mean {what} is {_fmt(st.mean(best, metric))} at every point."
    return (f"The site's mean {what} is lowest at {_point_label(exp, best)}: {st.dur(best, metric)}, and highest "
            f"at {_point_label(exp, worst)}: {st.dur(worst, metric)} (means ± 95 % confidence half-width).")


def _replications_text(exp: Any) -> str:
    """'20 replications', or '10 to 40 replications' when precision targets ran points to different counts."""
    per_point = exp.replications_per_point
    lo, hi = min(per_point), max(per_point)
    return count(hi, "replication") if lo == hi else f"{lo} to {hi} replications"


def _experiment_summary(exp: Any, st: _SiteStats) -> list[str]:
    n_points = len(exp.points)
    runs = sum(exp.replications_per_point)
    lines = [f"{count(n_points, 'sweep point')} x {_replications_text(exp)} = {count(runs, 'run')}"
             + (f"; {count(len(exp.failures), 'run')} failed and {'is' if len(exp.failures) == 1 else 'are'} "
                "left out (failures.parquet)." if len(exp.failures) else "; every run completed.")]
    met = {p: _objectives_met(exp, st, p) for p in range(n_points)}
    both = [p for p, (a, b) in met.items() if a and b]
    obj = exp.scenario.objectives
    target = f"the RPO ({_fmt(obj.rpo)}) and RTO ({_fmt(obj.rto)}) objectives"
    if len(both) == n_points:
        lines.append(f"Every point meets {target} at the site.")
    elif not both:
        lines.append(f"No point meets both {target} at the site.")
    else:
        lines.append(f"{len(both)} of {n_points} points {'meets' if len(both) == 1 else 'meet'} {target} at the site: "
                     + "; ".join(_point_label(exp, p) for p in both) + ".")
    if len(both) < n_points:  # say which objective fails where
        for k, (name, why) in enumerate((("RPO", "the mean p95 RPO above the target or an incident's data loss "
                                                 "beyond it"),
                                         ("RTO", "an unplanned incident not restored within the target"))):
            missed = [p for p, ok in met.items() if not ok[k]]
            where = ("at every point" if len(missed) == n_points else "at no point" if not missed
                     else "at " + "; ".join(_point_label(exp, p) for p in missed))
            lines.append(f"The {name} objective is missed {where}" + (f" ({why})." if missed else "."))
    for metric, what in (("rpo_p95_s", "p95 RPO"), ("downtime_s", "downtime")):
        text = _extremes(exp, st, metric, what)
        if text:
            lines.append(text)
    priced = [p for p in both if not is_missing(st.mean(p, "cost_total_per_year"))]
    if n_points > 1 and priced:
        cur = exp.prices.currency if getattr(exp, "prices", None) is not None else ""
        cheapest = min(priced, key=lambda p: st.mean(p, "cost_total_per_year"))
        lines.append(f"Of the points that meet both objectives, {_point_label(exp, cheapest)} costs least: "
                     f"{st.money(cheapest, 'cost_total_per_year')} {cur} a year in all (running costs and the runs' "
                     "incidents scaled to a year; mean ± 95 % confidence half-width).")
    if n_points > 1:
        lines.append("Replication k runs with the same seed at every point (common random numbers), so the points "
                     "are compared on the same failure timeline and churn.")
    return lines


def _experiment_table(exp: Any, st: _SiteStats) -> Table:
    paths = list(exp.sweep)
    target = _fmt(exp.scenario.objectives.rpo)
    currency = exp.prices.currency if getattr(exp, "prices", None) is not None else ""
    header = ["point", *paths, "runs", "RPO p95", f"time RPO > {target}", "availability", "downtime",
              "incidents", "worst RTO", "RPO objective", "RTO objective", "running cost / year",
              "incident cost / year", "total cost / year"]
    rows = []
    for p in range(len(exp.points)):
        settings = exp.points.iloc[p]
        incidents = st.mean(p, "incidents")
        rpo_met, rto_met = _objectives_met(exp, st, p)
        rows.append([str(p), *(_value_text(settings[path]) for path in paths), str(st.n(p, "downtime_s")),
                     st.dur(p, "rpo_p95_s"), percent(st.mean(p, "rpo_over_target")),
                     percent(st.mean(p, "availability"), 3), st.dur(p, "downtime_s"),
                     "-" if is_missing(incidents) else f"{incidents:.2f}", st.dur(p, "rto_max_s"),
                     "met" if rpo_met else "missed", "met" if rto_met else "missed",
                     st.money(p, "cost_running_per_year"), st.money(p, "cost_incidents_per_year"),
                     st.money(p, "cost_total_per_year")])
    numeric = [True, *(False for _ in paths), True, True, True, True, True, True, True, False, False, True, True,
               True]
    return Table(header, rows, numeric, caption="The site per sweep point (means over replications)",
                 note="Means over the replications of each point, ± the half-width of the 95 % confidence interval of "
                      "the mean (Student t). Worst RTO: the mean of each replication's longest unplanned restore. "
                      "RPO objective met: the mean p95 RPO is within the target and every incident's data loss was "
                      "within it in every replication; RTO objective met: every unplanned incident of every "
                      "replication was restored within the RTO objective. Costs per year in "
                      f"{currency or 'the price sheet currency'}"
                      + (f" (prices of {exp.prices.date})" if getattr(exp, "prices", None) is not None else "")
                      + ": running costs (licence, storage, compute, egress, the uplink tier) and the runs' "
                      "incidents (downtime, lost data) scaled to a year; every item per VM is in aggregate.parquet "
                      "(cost_*_per_year). Per-VM rows are in aggregate.parquet.")


def _experiment_figures(exp: Any) -> list[tuple[str, str, str, Any]]:

    varied = [path for path, values in exp.sweep.items() if len({str(v) for v in values}) > 1]
    specs: list[tuple[str, str, str, Any]] = []
    if len(varied) == 1:
        x = varied[0]
        for metric, what, slug in (("rpo_p95_s", "p95 RPO", "rpo"), ("downtime_s", "downtime", "downtime")):
            specs.append((f"Site {what} against {x}",
                          f"The site's mean {what} at each value of {x} with the 95 % confidence interval of the mean "
                          f"(a band with {plots.LINE_FROM} values or more; points with error bars below that, since "
                          "nothing is known between them); the objective that applies is dashed.",
                          f"report-sweep-{slug}.png",
                          lambda m=metric: plots.sweep_lines(exp, x, m)))
    elif len(varied) == 2:
        x, y = varied
        specs.append((f"Site p95 RPO over {x} and {y}",
                      "The site's mean p95 RPO at every point of the grid; colours centred on the RPO objective "
                      "(white; blue below, red above), cells missing it hatched.", "report-sweep-heatmap.png",
                      lambda: plots.sweep_heatmap(exp, x, y, "rpo_p95_s")))
    if "policy.name" in varied:
        specs.append(("Paired differences in downtime between policies",
                      "The mean difference in downtime of each policy against the first, per VM and for the site, "
                      "on the same seeds (common random numbers), with 95 % confidence intervals.",
                      "report-paired-downtime.png",
                      lambda: plots.paired_differences(exp, "policy.name", metric="downtime_s")))
    specs.append(("Distributions across replications at point 0",
                  "Empirical CDFs across the replications of point 0 of the site's p95 RPO, worst data loss, worst "
                  "RTO and downtime; the objective that applies is dashed.", "report-cdfs.png",
                  lambda: plots.replication_cdfs(exp, point=0)))
    specs.append(("Availability by VM at point 0",
                  "Availability of each VM and the site across the replications of point 0: mean with 95 % "
                  "confidence interval (cut at 100 %), and each replication as a dot; with many VMs, the least "
                  "available.", "report-availability.png",
                  lambda: plots.availability_by_vm(exp, 0)))
    return specs


def experiment_report_context(exp: Any) -> tuple[dict[str, Any], list[ReportFigure]]:
    """The sections of an experiment's report, and its figures."""

    st = _SiteStats(exp)
    brief, hosts = brief_of(exp.scenario)
    meta = exp.metadata()
    sweep_items = [(path, ", ".join(_value_text(v) for v in values)) for path, values in meta["sweep"].items()]
    sweep_items += [
        ("Points", str(len(exp.points))),
        ("Replications", f"{_replications_text(exp)} per point"),
        ("Experiment seed", str(exp.seed)),
        ("Run seeds", _seeds_text(exp.seeds) + " (replication k uses the same seed at every point)"),
        ("Runs", f"{meta['runs']}, {meta['failed_runs']} failed"),
        ("Executed", f"{exp.executor}, {count(exp.workers, 'worker')}, {exp.elapsed_s:.1f} s"),
    ]
    if not exp.sweep:
        sweep_items.insert(0, ("Swept settings", "none: replications of the scenario as it is"))
    fig_blocks, figures = figure_blocks(_experiment_figures(exp))
    sections = [
        Section("scenario", "Scenario", [
            Block("p", "The base scenario; at each sweep point the swept settings replace its values."),
            Block("dl", brief), Block("table", hosts)]),
        Section("sweep", "Sweep", [Block("dl", sweep_items)]),
        Section("summary", "Summary", [Block("lead", line) for line in _experiment_summary(exp, st)]),
        Section("points", "Results per point", [Block("table", _experiment_table(exp, st))]),
        Section("figures", "Figures", fig_blocks),
        Section("assumptions", "Assumptions and sources", assumption_blocks(exp.scenario)),
    ]
    ctx = {
        "title": f"Disaster-recovery experiment: {exp.scenario.name}",
        "meta": f"drsim {__version__} · experiment seed {exp.seed} · scenario hash {meta['scenario_hash']}",
        "version": __version__,
        "sections": sections,
        "footer": f"Generated by drsim {__version__}. Running the same scenario and sweep with experiment seed "
                  f"{exp.seed} gives the same tables.",
    }
    return ctx, figures


def write_experiment_report(exp: Any, folder: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (with its ``report-*.png`` figures) of an
    :class:`drsim.experiments.outcome.Experiment` into ``folder`` (the sweep folder written by
    :func:`drsim.experiments.sweep_folder.write_experiment`). Returns (HTML path, Markdown path)."""
    ctx, figures = experiment_report_context(exp)
    return write_document(Path(folder), ctx, figures)
