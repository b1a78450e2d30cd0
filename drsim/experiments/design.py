"""The design of an experiment: its sweep points. A full factorial grid of scenario settings
(``{"link.upload": ["10Mbit/s", "20Mbit/s"], "policy.name": ["manual", "automatic"]}``), a Latin hypercube over
ranges and choices (``{"link.upload": "10Mbit/s..50Mbit/s", "replication.interval": ["30s", "5m"]}`` with a
number of samples), or both crossed: every sample of the hypercube at every point of the grid.

Imports :mod:`drsim.scenario` and, of this stage, the errors, the seeds and the setting paths.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from drsim.experiments.errors import ExperimentError
from drsim.experiments.seeds import lhs_seed_sequence
from drsim.experiments.settings_paths import _label, _normalise_sweep, apply_settings, parse_path
from drsim.scenario import Problem, ScenarioError
from drsim.scenario.document import Scenario
from drsim.scenario.fields import Range, parse_lhs

__all__ = ["design", "latin_hypercube", "sweep_points", "SAMPLE"]

SAMPLE = "sample"  #: column of the Latin hypercube sample index
_RESERVED = ("point", "replication", "vm", "host", SAMPLE)  # table columns; seed: apply_settings says why


def latin_hypercube(dims: Mapping[str, Any], samples: int, seed: int) -> list[dict[str, Any]]:
    """``samples`` points of a Latin hypercube over ``dims`` (path -> :class:`~drsim.scenario.fields.Range` or
    :class:`~drsim.scenario.fields.Choices`, or as written: see :func:`~drsim.scenario.fields.parse_lhs`). For
    each dimension in turn, the unit interval is cut into ``samples`` equal strata, one uniform draw is taken in
    each and the strata are shuffled; a draw ``u`` becomes ``dim.at(u)``. So every range is covered evenly (one
    sample in each 1/``samples`` of it, of its logarithm for a log range) and each choice is drawn
    ``samples / len(choices)`` times, give or take one.

    The draws come from ``numpy.random.default_rng(lhs_seed_sequence(seed))`` (never the global random state): the
    same seed, dimensions in the same order and number of samples give the same design. Returns one mapping per
    sample: path -> value (in base units for a range, as given for choices)."""
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 1:
        raise ExperimentError(f"the number of Latin hypercube samples must be a positive integer, got {samples!r}")
    samples = int(samples)
    rng = np.random.default_rng(lhs_seed_sequence(seed))
    columns = []
    for dim in map(parse_lhs, dims.values()):
        u = (rng.permutation(samples) + rng.random(samples)) / samples
        columns.append([dim.at(float(x)) for x in u])
    return [dict(zip(dims, values, strict=True)) for values in zip(*columns, strict=True)] if columns \
        else [{} for _ in range(samples)]


class _Point(NamedTuple):
    """One sweep point: the settings applied to the scenario (path -> value as in a scenario file), the validated
    scenario, the values shown in the tables (path -> value; base units for Latin hypercube ranges) and the
    index of its Latin hypercube sample (None without one)."""

    settings: dict[str, Any]
    scenario: Scenario
    values: dict[str, Any]
    sample: int | None


def _check_paths(paths: Sequence[str], source: str) -> None:
    for path in paths:
        parse_path(path, source)
        if path in _RESERVED:
            raise ScenarioError([Problem(loc=(), message=f"{path!r} cannot be swept")], source)


def _shown(value: Any) -> str:
    return str(_label(value))


def design(scenario: Scenario, sweep: Mapping[str, Any] | None = None,
           lhs: Mapping[str, Any] | None = None, samples: int | None = None,
           seed: int = 0) -> list[_Point]:
    """The points of an experiment: every point of the full factorial grid ``sweep`` (the last path varies
    fastest), and at each of them every sample of the Latin hypercube over ``lhs`` (``samples`` samples drawn
    with the experiment ``seed``; see :func:`latin_hypercube`): the same samples at every grid point. Every point
    is validated; a bad path or value raises :class:`ScenarioError` naming the point."""
    grid = _normalise_sweep(sweep)
    dims = {path: parse_lhs(dim) for path, dim in (lhs or {}).items()}
    _check_paths(list(grid), "sweep")
    _check_paths(list(dims), "lhs")
    both = [path for path in grid if path in dims]
    if both:
        raise ScenarioError([Problem(loc=parse_path(both[0]), message="is both in the grid and in the Latin "
                                     "hypercube: sweep it in one of them")], "sweep")
    draws: list[dict[str, Any] | None] = list(latin_hypercube(dims, samples or 0, seed)) if dims else [None]
    points: list[_Point] = []
    for combo in itertools.product(*grid.values()):
        fixed = dict(zip(grid, combo, strict=True))
        for k, draw in enumerate(draws):
            settings, values = dict(fixed), {p: _label(v) for p, v in fixed.items()}
            shown = {p: _shown(v) for p, v in fixed.items()}
            for path, value in (draw or {}).items():
                dim = dims[path]
                settings[path] = dim.setting(value)
                values[path] = _label(value)
                shown[path] = dim.format(value) if isinstance(dim, Range) else _shown(value)
            text = ", ".join(f"{p}={v}" for p, v in shown.items())
            source = f"sweep point {len(points)} ({text})" if text else "sweep"
            sc = apply_settings(scenario, settings, source=source) if settings else scenario
            points.append(_Point(settings, sc, values, None if draw is None else k))
    return points


def sweep_points(scenario: Scenario, sweep: Mapping[str, Any] | None) -> list[tuple[dict[str, Any], Scenario]]:
    """Every point of the full factorial grid, in order (the last path varies fastest): its settings and its
    validated scenario. Without a sweep, one point: the scenario itself."""
    return [(pt.settings, pt.scenario) for pt in design(scenario, sweep)]
