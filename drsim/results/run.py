"""One run: simulate a scenario into result tables (:func:`simulate`).

Imports the scenario loader, the model and :mod:`drsim.results.tables`.
"""

from __future__ import annotations

from pathlib import Path

from drsim.model.site import SiteModel
from drsim.results.tables import Results
from drsim.scenario.document import Scenario
from drsim.scenario.loading import load_scenario

__all__ = ["simulate"]


def simulate(scenario: Scenario | str | Path, seed: int | None = None) -> Results:
    """Run one replication of ``scenario`` (a :class:`Scenario` or a path to a YAML file).

    ``seed`` overrides the scenario's seed. The same scenario and seed always give identical tables.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return Results(SiteModel(scenario, seed).run())
