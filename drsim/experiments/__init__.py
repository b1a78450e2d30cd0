"""Many runs: Monte Carlo replications and their seeds, sweep designs (grid, Latin hypercube), precision
targets, execution (process pools, Dask), storage and resume, aggregation, the bandwidth planner, and the annual
risk over long horizons (:mod:`~drsim.experiments.risk`).

Imports :mod:`drsim.scenario`, :mod:`drsim.model` and :mod:`drsim.results`. The names below are the stage's
public API (they were ``drsim.experiment`` and ``drsim.planner`` before 0.2).

The modules, each importing only those above it in this list: ``errors``, ``seeds``, ``statistics``,
``settings_paths`` (dotted paths, ``--set``), ``design`` (grid and Latin hypercube), ``precision``, ``settings``
(the ``experiment`` section with the arguments over it), ``executors``, ``storage`` (streaming and resuming),
``outcome`` (:class:`Experiment`), ``sweep_folder`` (the experiment's folder: streamed, resumed, finished),
``runner`` (:func:`run_experiment`), ``leftovers`` (what stopped runs left under an output folder), ``text``,
``section`` (the checks of the ``experiment`` section); the planner: ``sizing``, ``bandwidth_runs``,
``planner_text``, ``planner`` (:func:`plan`).
"""

from drsim.experiments.design import latin_hypercube, sweep_points
from drsim.experiments.errors import ExperimentError
from drsim.experiments.executors import ExecutorFailed, connect_dask, process_pool, stop_pool
from drsim.experiments.outcome import Experiment
from drsim.experiments.planner import PlanError, plan
from drsim.experiments.planner_text import plan_text
from drsim.experiments.precision import Precision, parse_precision, summary_metrics
from drsim.experiments.risk import Risk, RiskError, risk
from drsim.experiments.risk_output import risk_text, write_risk
from drsim.experiments.runner import run_experiment
from drsim.experiments.section import section_problems
from drsim.experiments.seeds import lhs_seed_sequence, replication_seed
from drsim.experiments.settings import ExperimentSettings, experiment_settings
from drsim.experiments.settings_paths import apply_settings, parse_lhs_option, parse_path, parse_set
from drsim.experiments.statistics import aggregate, t_975
from drsim.experiments.storage import read_run
from drsim.experiments.sweep_folder import finish_experiment, incomplete_folder, write_experiment
from drsim.experiments.text import aggregate_text, precision_text

__all__ = ["Experiment", "run_experiment", "replication_seed", "sweep_points", "apply_settings", "parse_path",
           "parse_set", "aggregate", "t_975", "write_experiment", "aggregate_text", "incomplete_folder",
           "finish_experiment", "latin_hypercube", "lhs_seed_sequence", "parse_lhs_option", "Precision",
           "parse_precision", "summary_metrics", "ExperimentSettings", "experiment_settings",
           "ExperimentError", "ExecutorFailed", "connect_dask", "precision_text", "read_run", "process_pool",
           "stop_pool", "PlanError", "plan", "plan_text", "section_problems",
           "risk", "Risk", "RiskError", "risk_text", "write_risk"]
