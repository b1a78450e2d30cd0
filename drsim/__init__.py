"""drsim: a discrete-event simulator of disaster recovery for Hyper-V VMs replicating to the cloud.

Quick start::

    import drsim
    scenario = drsim.load_scenario("scenarios/essentials-office.yaml")
    results = drsim.simulate(scenario, seed=1)
    results.summary          # one row per VM and a site row
    results.rpo              # exact breakpoints of each VM's RPO curve
"""

from __future__ import annotations

from pathlib import Path

from drsim.model import SiteModel
from drsim.results import Results
from drsim.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

__version__ = "0.1.0"

__all__ = ["simulate", "run_experiment", "load_scenario", "parse_scenario", "Scenario", "ScenarioError", "Results",
           "__version__", "plan"]


def run_experiment(*args, **kwargs):
    """Monte Carlo replications over a sweep; see :func:`drsim.experiment.run_experiment`."""
    from drsim.experiment import run_experiment as run

    return run(*args, **kwargs)


def plan(*args, **kwargs):
    """Bandwidth planner: the upload that meets an RPO target; see :func:`drsim.planner.plan`."""
    from drsim.planner import plan as run

    return run(*args, **kwargs)


def simulate(scenario: Scenario | str | Path, seed: int | None = None) -> Results:
    """Run one replication of ``scenario`` (a :class:`Scenario` or a path to a YAML file).

    ``seed`` overrides the scenario's seed. The same scenario and seed always give identical tables.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return Results(SiteModel(scenario, seed).run())
