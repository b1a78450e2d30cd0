"""Figures of a run, of an experiment and of a plan, drawn with matplotlib: the public figures module
(``drsim.plots``), which gathers the functions and constants of the modules that draw them.

Each function takes the results (and options) and returns a :class:`matplotlib.figure.Figure`. Figures are
built with the object API (``Figure()``, not pyplot): nothing is shown or registered with pyplot, so they work
under any backend, including ``Agg`` on a server. In a notebook the returned figure displays itself; elsewhere
call ``fig.savefig("timeline.png")``.

==========================  ======================================================================
function                    shows
==========================  ======================================================================
:func:`protection_timeline` one row per VM: lifecycle states, health, incidents and drills
:func:`rpo_over_time`       the RPO of each VM against the RPO target: the exact sawtooth, or its
                            min/max per hour (or day) over a long run
:func:`rpo_detail`          the exact sawtooth around the worst moment (:func:`worst_window`)
:func:`link_usage`          link capacity, active transfers, backlog; initial-replication progress
:func:`incident_waterfall`  each incident's phases, from the failure to the end of the failback
==========================  ======================================================================

(in :mod:`drsim.views.timeline_figures`, :mod:`drsim.views.replication_figures` and
:mod:`drsim.views.link_figures`)

and of an experiment (:func:`drsim.experiments.runner.run_experiment`) or a plan (:func:`drsim.plan`):

==========================  ======================================================================
:func:`sweep_heatmap`       a metric's mean over two swept settings, with the objective's boundary
:func:`sweep_lines`         a metric's mean and 95 % confidence band against one swept setting
:func:`paired_differences`  paired differences between the values of a swept setting, 95 % CI
:func:`replication_cdfs`    CDFs across replications of RPO, data loss, RTO, downtime; objectives
:func:`availability_by_vm`  each VM's availability across replications at one sweep point
:func:`planner_curve`       the planner's RPO percentile against bandwidth; required and formula
==========================  ======================================================================

(in :mod:`drsim.views.sweep_figures` and :mod:`drsim.views.experiment_figures`)

Units shown: times on the x axis in minutes, hours or days chosen from the span (or calendar dates when the
scenario has a ``start``), sizes in GiB, rates in Mbit/s. Colours come from the Okabe-Ito palette
(:data:`OKABE_ITO`), which stays distinguishable with the common forms of colour blindness; the palette, the
state and phase colours and the axis helpers are in :mod:`drsim.views.style`.

Imports only the figure modules of :mod:`drsim.views` and their style; nothing of its own.
"""

from __future__ import annotations

from drsim.views.curves import above_target as _above_target  # noqa: F401
from drsim.views.curves import backlog_curve as _backlog_curve  # noqa: F401
from drsim.views.experiment_figures import availability_by_vm, planner_curve, replication_cdfs
from drsim.views.link_figures import link_usage
from drsim.views.replication_figures import rpo_detail, rpo_over_time, worst_window
from drsim.views.style import HEALTH_HATCHES, OKABE_ITO, PHASE_COLORS, STATE_COLORS
from drsim.views.sweep_figures import LINE_FROM, paired_differences, sweep_heatmap, sweep_lines
from drsim.views.timeline_figures import incident_waterfall, protection_timeline

__all__ = ["protection_timeline", "rpo_over_time", "rpo_detail", "worst_window", "link_usage", "incident_waterfall",
           "sweep_heatmap", "sweep_lines",
           "replication_cdfs", "planner_curve", "paired_differences", "availability_by_vm", "OKABE_ITO",
           "STATE_COLORS", "HEALTH_HATCHES", "PHASE_COLORS", "LINE_FROM"]
# _above_target and _backlog_curve, the exact curves behind the RPO and the link figures, are imported too:
# the tests check them as plots._above_target and plots._backlog_curve.
