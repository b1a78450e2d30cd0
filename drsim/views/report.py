"""The reports drsim writes, gathered in one module (``drsim.report`` is this module): a run's report, rebuilt
from a run folder too, an experiment's and a plan's. Each is a self-contained HTML file and a Markdown version.

==================================  ==========================================================================
function                            writes
==================================  ==========================================================================
:func:`write_report`                ``report.html`` and ``report.md`` (with ``report-*.png``) of a
                                    :class:`drsim.Results` (:mod:`drsim.views.run_report`)
:func:`write_report_from_folder`    the same for a run folder, re-simulated from its ``scenario.yaml`` and
                                    seed and checked against its summary (:mod:`drsim.views.report_folder`)
:func:`write_experiment_report`     the report of an experiment into its sweep folder
                                    (:mod:`drsim.views.experiment_report`)
:func:`write_plan_report`           the report of a bandwidth plan (:mod:`drsim.views.plan_report`)
:func:`write_plan_folder`           a whole plan folder: ``plan.parquet``, ``metadata.json`` and the report
==================================  ==========================================================================

``report.html`` is one file: figures embedded as base64 PNG data URIs, CSS inline, no script and no external
address, so it opens offline and prints; ``report.md`` has the same content in Markdown, with the figures saved
beside it as ``report-*.png`` and linked relatively.

Both formats are rendered with Jinja2 templates from ``drsim/views/templates`` (:mod:`drsim.views.rendering`).
The HTML template is autoescaped, so a VM named ``<script>alert(1)</script>`` appears as text; in the Markdown
template every value is escaped by the environment's ``finalize`` (backslash before
``\\ ` * _ [ ] < > | & ~ # $``), so names cannot break a table or become markup. Values the report itself
produces (image file names, data URIs) are marked safe explicitly.

Imports only the report modules of :mod:`drsim.views`; nothing of its own.
"""

from __future__ import annotations

from drsim.views.assumptions import APPROXIMATIONS
from drsim.views.experiment_report import experiment_report_context, write_experiment_report
from drsim.views.plan_report import plan_report_context, write_plan_folder, write_plan_report
from drsim.views.rendering import (
    HTML_NAME,
    MD_NAME,
    Block,
    ReportFigure,
    Section,
    Table,
    json_safe,
    markdown_escape,
)
from drsim.views.report_folder import ReportError, write_report_from_folder
from drsim.views.rpo_hours import BusyHours, busy_hours, rpo_by_hour
from drsim.views.run_report import FIGURES, SECTIONS, FigureSpec, render_report, report_context, write_report

__all__ = ["write_report", "write_report_from_folder", "render_report", "report_context", "ReportError",
           "SECTIONS", "FIGURES", "HTML_NAME", "MD_NAME", "markdown_escape", "write_experiment_report",
           "experiment_report_context", "write_plan_report", "plan_report_context", "write_plan_folder", "json_safe",
           "APPROXIMATIONS", "Block", "BusyHours", "FigureSpec", "ReportFigure", "Section", "Table", "busy_hours",
           "rpo_by_hour"]
