"""Many runs: Monte Carlo replications and their seeds, sweep designs (grid, Latin hypercube), precision
targets, execution (process pools, Dask), storage and resume, aggregation, the bandwidth planner, and the annual
risk over long horizons (:mod:`~drsim.experiments.risk`).

Imports :mod:`drsim.scenario`, :mod:`drsim.model` and :mod:`drsim.results`. The names below are the stage's
public API (they were ``drsim.experiment`` and ``drsim.planner`` before 0.2).
"""

from drsim.experiments.executors import ExecutorFailed, process_pool, stop_pool
from drsim.experiments.experiment import *  # noqa: F403
from drsim.experiments.experiment import __all__ as _experiment_names
from drsim.experiments.planner import PlanError, plan, plan_text
from drsim.experiments.risk import Risk, RiskError, risk
from drsim.experiments.risk_output import risk_text, write_risk
from drsim.experiments.section import section_problems

__all__ = [*_experiment_names, "ExecutorFailed", "process_pool", "stop_pool", "PlanError", "plan", "plan_text",
           "section_problems", "risk", "Risk", "RiskError", "risk_text", "write_risk"]
