"""The checks of a scenario's ``experiment`` section that need the rest of the scenario: precision targets,
keys that go together, and every sweep point, which must be a valid scenario.

``drsim validate`` and ``drsim sweep`` run :func:`section_problems` through
``load_scenario(path, experiment=True)``. Imports :mod:`drsim.scenario` and, of this stage, the errors, the setting
paths, the design, the precision targets and the settings.
"""

from __future__ import annotations

from collections.abc import Mapping

from drsim.experiments.design import _check_paths, design
from drsim.experiments.errors import ExperimentError
from drsim.experiments.precision import parse_precision
from drsim.experiments.settings import experiment_settings
from drsim.experiments.settings_paths import parse_path
from drsim.scenario import Problem, ScenarioError, location_text
from drsim.scenario.document import Scenario

__all__ = ["section_problems"]


def _section_loc(problem: Problem, paths: Mapping[str, str]) -> tuple[tuple[str | int, ...], str]:
    """Where in the experiment section a point's problem belongs (the swept path it is in, else the section)
    and its message."""
    best = None
    for path, key in paths.items():
        loc = parse_path(path)
        if problem.loc[:len(loc)] == loc and (best is None or len(loc) > len(best[0])):
            best = (loc, ("experiment", key, path))
    if best is None:
        place = location_text(problem.loc)
        return ("experiment",), (f"{place}: " if place else "") + problem.message
    inner = problem.loc[len(best[0]):]
    return best[1], (f"{location_text(inner)}: " if inner else "") + problem.message


def section_problems(scenario: Scenario) -> list[Problem]:
    """The problems of the scenario's ``experiment`` section that need the rest of the scenario: precision
    targets (metric, VM, tolerance), keys that go together (``samples`` and ``lhs``...), and every sweep point
    (the grid crossed with the Latin hypercube's samples), which must be a valid scenario. Each problem is
    located at the section's key it comes from (e.g. ``experiment.sweep.link.upload``)."""
    section = scenario.experiment
    if section is None:
        return []
    problems = [Problem(loc=("experiment", "sweep", path), message="no values to sweep")
                for path, values in section.sweep.items() if not values]
    for key in section.precision:
        try:
            parse_precision(str(key), section.precision[key], scenario)
        except ExperimentError as exc:
            problems.append(Problem(loc=("experiment", "precision", key), message=str(exc)))
    for kind, paths in (("sweep", section.sweep), ("lhs", section.lhs)):
        for path in paths:
            try:
                _check_paths([path], kind)
            except ScenarioError as exc:
                problems.append(Problem(loc=("experiment", kind, path), message=exc.problems[0].message))
    if problems:
        return problems
    try:
        settings = experiment_settings(scenario)
    except ExperimentError as exc:
        return [Problem(loc=("experiment", exc.key) if exc.key else ("experiment",), message=str(exc))]
    except ScenarioError as exc:
        return [Problem(loc=("experiment", "lhs", location_text(p.loc)), message=p.message) for p in exc.problems]
    paths = {**dict.fromkeys(settings.grid, "sweep"), **dict.fromkeys(settings.lhs, "lhs")}
    try:
        design(scenario, settings.grid, settings.lhs, settings.samples, settings.seed)
    except ScenarioError as exc:
        for p in exc.problems:
            loc, message = _section_loc(p, paths)
            where = (exc.source or "").removeprefix("sweep")
            problems.append(Problem(loc=loc, message=message + (f" (at{where})" if where and loc == ("experiment",)
                                                                  else "")))
    return problems
