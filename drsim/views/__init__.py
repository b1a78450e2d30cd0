"""What people look at: figures of a run and of an experiment (matplotlib), and the HTML and Markdown reports
(Jinja2 templates in ``templates/``). Imports every earlier stage; nothing imports it but the CLI.

Figures: :mod:`~drsim.views.figures` (``drsim.plots``) gathers them from :mod:`~drsim.views.timeline_figures`,
:mod:`~drsim.views.replication_figures`, :mod:`~drsim.views.link_figures`, :mod:`~drsim.views.sweep_figures` and
:mod:`~drsim.views.experiment_figures`, which share :mod:`~drsim.views.style`, :mod:`~drsim.views.curves` (curves
reduced for drawing: envelopes of long runs) and :mod:`~drsim.views.selection` (which VMs a figure shows). Reports:
:mod:`~drsim.views.report` (``drsim.report``) gathers :mod:`~drsim.views.run_report` (with :mod:`~drsim.views.brief`,
:mod:`~drsim.views.run_summary`, :mod:`~drsim.views.run_tables`, :mod:`~drsim.views.rpo_hours` and
:mod:`~drsim.views.assumptions`), :mod:`~drsim.views.report_folder`, :mod:`~drsim.views.experiment_report` and
:mod:`~drsim.views.plan_report`, which share :mod:`~drsim.views.rendering`.
"""
