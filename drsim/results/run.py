"""One run: simulate a scenario into result tables (:func:`simulate`).

Imports the scenario loader, the model and :mod:`drsim.results.tables`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from drsim.model.site import SiteModel
from drsim.model.tally import DEFAULT_RESOLUTION
from drsim.results.running import recorder_tables
from drsim.results.tables import Results
from drsim.scenario.document import Scenario
from drsim.scenario.loading import load_scenario

__all__ = ["simulate"]


def simulate(scenario: Scenario | str | Path, seed: int | None = None, tables: Iterable[str] | None = None,
             resolution: float = DEFAULT_RESOLUTION) -> Results:
    """Run one replication of ``scenario`` (a :class:`Scenario` or a path to a YAML file).

    ``seed`` overrides the scenario's seed. The same scenario and seed always give identical tables.

    ``tables``: the result tables to keep (None: all; the summary is always kept), e.g. ``("summary",
    "incidents", "operations", "states")``. Per-cycle rows no kept table needs are not recorded, so a run of
    decades stays small in memory; the summary then comes from running statistics (its RPO percentile within
    ``resolution`` seconds, everything else as the tables give it, to rounding). Raises ValueError for an unknown
    table name.
    """
    keep, running, kept = recorder_tables(tables)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return Results(SiteModel(scenario, seed, keep=keep, running=running, resolution=resolution).run(), kept)
