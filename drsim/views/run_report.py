"""The report of one run: its sections (:data:`SECTIONS`) and figures (:data:`FIGURES`), the context the
templates ``report.html.j2`` and ``report.md.j2`` show (:func:`report_context`), and :func:`write_report`, which
writes ``report.html`` (one file: figures embedded as base64 PNG data URIs, CSS inline, no script and no external
address, so it opens offline and prints) and ``report.md`` (the same content in Markdown, with the figures saved
beside it as ``report-*.png`` and linked relatively).

The sections: the scenario in brief (:mod:`drsim.views.brief`); an executive summary in plain words
(:mod:`drsim.views.run_summary`, then the findings of :func:`drsim.results.findings.findings`); objective
compliance per VM and when the RPO target is missed (:mod:`drsim.views.run_tables`,
:mod:`drsim.views.rpo_hours`); per-VM replication and recovery tables; the incidents (table and the lines of
:func:`drsim.results.findings.incident_lines`); the costs (:mod:`drsim.views.costs_view`); the four figures of
:mod:`drsim.views.figures` (five for a run too long to draw the RPO tooth by tooth: the RPO around the worst
moment in detail); and the assumptions and sources behind the defaults used (:mod:`drsim.views.assumptions`).

Imports :mod:`drsim.results` (findings), :mod:`drsim.scenario.document` (the scenario hash), the figures and the
report modules named above.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from drsim.results.costs import run_costs
from drsim.results.findings import findings, incident_lines
from drsim.results.tables import Results
from drsim.scenario.document import scenario_hash
from drsim.version import __version__
from drsim.views import figures as plots
from drsim.views.assumptions import APPROXIMATIONS, assumptions
from drsim.views.brief import scenario_brief
from drsim.views.costs_view import costs_report_table
from drsim.views.rendering import ReportFigure, draw_figure, environment, write_files
from drsim.views.replication_figures import drawn_as_envelope
from drsim.views.rpo_hours import busy_table, rpo_by_hour
from drsim.views.run_summary import lead_sentences
from drsim.views.run_tables import compliance_table, incidents_table, recovery_table, replication_table

__all__ = ["SECTIONS", "FIGURES", "DETAIL_FIGURES", "FigureSpec", "report_context", "render_report", "write_report"]

#: (anchor id, heading) of every section, in order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("scenario", "Scenario"),
    ("summary", "Executive summary"),
    ("compliance", "Objective compliance"),
    ("vms", "Per-VM results"),
    ("incidents", "Incidents"),
    ("costs", "Costs"),
    ("figures", "Figures"),
    ("assumptions", "Assumptions and sources"),
)


@dataclass(frozen=True)
class FigureSpec:
    function: str  # name in drsim.views.figures
    title: str
    file: str  # PNG written beside report.md
    caption: str


#: The figures of the report, drawn by the :mod:`drsim.views.figures` function of the same name.
FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("protection_timeline", "Protection timeline", "report-protection-timeline.png",
               "One row per VM: lifecycle states over the run, health warnings hatched, failures (triangles) and "
               "drills (diamonds) marked. With many VMs, the worst are shown (the title says how many are left "
               "out and how they fared)."),
    FigureSpec("rpo_over_time", "RPO over time", "report-rpo-over-time.png",
               "The RPO of each VM against the RPO target, time above the target shaded: the exact sawtooth, or "
               "over a long run its minimum and maximum per hour or day. Each VM's mean, p95 and share above the "
               "target are over its whole protected time, start-up included (the summary's steady-state columns "
               "leave the start-up out). With many VMs, the worst are shown."),
    FigureSpec("link_usage", "Link usage", "report-link-usage.png",
               "Upload capacity (throttle schedule), active transfers and backlog (over a long run: their minimum "
               "and maximum per hour or day); initial-replication progress."),
    FigureSpec("incident_waterfall", "Incident waterfall", "report-incident-waterfall.png",
               "Each incident from the failure to service restored, and its failback; RTO target ticks. With many "
               "incidents, the longest outages are shown (the title says how many are left out)."),
)
#: Added after the RPO figure when the run is too long to draw the RPO tooth by tooth (that figure then shows its
#: min and max per hour or day): the exact curve around the worst moment.
DETAIL_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("rpo_detail", "RPO around the worst moment", "report-rpo-detail.png",
               "The exact RPO sawtooth in the hour (or longer) around the highest RPO after start-up, for the VM "
               "it belongs to and the VMs with the highest RPO then."),
)


# --- figures ---------------------------------------------------------------------------------------------------


def _figures(results: Results) -> list[ReportFigure]:
    """The figures of :data:`FIGURES` (and :data:`DETAIL_FIGURES` after the RPO figure for a long run), drawn
    from ``results``."""
    specs = list(FIGURES)
    if drawn_as_envelope(results):
        at = next(i for i, s in enumerate(specs) if s.function == "rpo_over_time") + 1
        specs[at:at] = DETAIL_FIGURES
    return [draw_figure(spec.title, spec.caption, spec.file, partial(getattr(plots, spec.function), results))
            for spec in specs]


def report_context(results: Results, figures: list[ReportFigure] | None = None,
                   costs: pd.DataFrame | None = None) -> dict[str, Any]:
    """Everything the templates show, formatted for people (figures drawn unless given; costs at the bundled price
    sheet with the scenario's ``prices:`` section unless given)."""

    s = results.scenario
    hours = rpo_by_hour(results)
    brief, hosts = scenario_brief(results)
    defaults, sources = assumptions(results)
    return {
        "title": f"Disaster-recovery simulation: {s.name}",
        "name": s.name,
        "seed": results.seed,
        "version": __version__,
        "hash": scenario_hash(s, results.seed),
        "sections": SECTIONS,
        "heading": dict(SECTIONS),
        "brief": brief,
        "hosts": hosts,
        "lead": lead_sentences(results, hours),
        "findings": findings(results),
        "compliance": compliance_table(results),
        "busy": busy_table(results, hours),
        "replication": replication_table(results),
        "recovery": recovery_table(results),
        "incident_lines": incident_lines(results),
        "incidents": incidents_table(results),
        "costs": costs_report_table(costs if costs is not None else run_costs(results)),
        "figures": figures if figures is not None else _figures(results),
        "defaults": defaults,
        "sources": sources,
        "approximations": APPROXIMATIONS,
    }


def render_report(results: Results, figures: list[ReportFigure] | None = None,
                  costs: pd.DataFrame | None = None) -> tuple[str, str]:
    """The report as (HTML, Markdown) text, without writing anything."""
    ctx = report_context(results, figures, costs)
    html = environment(False).get_template("report.html.j2").render(ctx)
    md = environment(True).get_template("report.md.j2").render(ctx)
    return html, md


def write_report(results: Results, folder: str | Path, costs: pd.DataFrame | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` with its ``report-*.png`` figures into ``folder``
    (created if needed). Each file is written under a temporary name and renamed, so a file that exists is
    whole. Returns (HTML path, Markdown path)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures = _figures(results)
    html, md = render_report(results, figures, costs)
    return write_files(folder, html, md, figures)
