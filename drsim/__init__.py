"""drsim: a discrete-event simulator of disaster recovery for Hyper-V VMs replicating to the cloud.

Quick start::

    import drsim
    scenario = drsim.load_scenario("scenarios/essentials-office.yaml")
    results = drsim.simulate(scenario, seed=1)
    results.summary          # one row per VM and a site row
    results.rpo              # exact breakpoints of each VM's RPO curve
    drsim.risk(scenario, years=100, replications=1000).figures   # annual risk with 95 % intervals

The package is built in layers, each importing only the ones before it (see ``docs/architecture.md``):
:mod:`drsim.scenario` (the input language) -> :mod:`drsim.model` (the SimPy world) -> :mod:`drsim.results`
(tables, metrics, findings, run folders) -> :mod:`drsim.experiments` (replications, sweeps, the planner) ->
:mod:`drsim.views` (figures and reports) -> :mod:`drsim.cli`. This module is the facade over all of them;
the experiment layer is imported on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drsim import _moved
from drsim.results.run import simulate
from drsim.results.tables import Results
from drsim.scenario.document import Scenario
from drsim.scenario.loading import Check, parse_scenario
from drsim.scenario.loading import load_scenario as _load_scenario
from drsim.scenario.problems import ScenarioError
from drsim.version import __version__

__all__ = ["simulate", "run_experiment", "load_scenario", "parse_scenario", "Scenario", "ScenarioError", "Results",
           "__version__", "plan", "risk"]

_moved.install()


def load_scenario(path: str | Path, experiment: bool = False, checks: Sequence[Check] = ()) -> Scenario:
    """Read and validate a scenario file. Raises :class:`ScenarioError` on any problem.

    ``experiment=True`` also checks the file's ``experiment`` section against the scenario, as ``drsim validate``
    and ``drsim sweep`` do: every sweep point is a valid scenario, the precision metrics and VMs exist (see
    :func:`drsim.experiments.section.section_problems`). ``checks`` are further checks of your own; every
    problem is located in the file like the others."""
    if experiment:
        from drsim.experiments.section import section_problems  # the facade imports the experiment layer lazily

        checks = (*checks, section_problems)
    return _load_scenario(path, checks)


def run_experiment(*args: Any, **kwargs: Any) -> Any:
    """Monte Carlo replications over a sweep; see :func:`drsim.experiments.runner.run_experiment`."""
    from drsim.experiments import run_experiment as run

    return run(*args, **kwargs)


def plan(*args: Any, **kwargs: Any) -> Any:
    """Bandwidth planner: the upload that meets an RPO target; see :func:`drsim.experiments.planner.plan`."""
    from drsim.experiments import plan as run

    return run(*args, **kwargs)


def risk(*args: Any, **kwargs: Any) -> Any:
    """Annual risk over a long horizon (data loss, downtime, nines, failovers, RTO); see
    :func:`drsim.experiments.risk.risk`."""
    from drsim.experiments.risk import risk as run

    return run(*args, **kwargs)
