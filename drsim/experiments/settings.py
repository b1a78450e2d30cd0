"""The settings of an experiment as it will run: the scenario file's ``experiment`` section, with the
arguments of :func:`~drsim.experiments.runner.run_experiment` (or the options of ``drsim sweep``) given over it
(:func:`experiment_settings`, :class:`ExperimentSettings`).

Imports :mod:`drsim.scenario` and, of this stage, the errors, the setting paths and the precision targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drsim.experiments.errors import ExperimentError
from drsim.experiments.precision import Precision, _precisions
from drsim.experiments.settings_paths import _normalise_sweep, _plain, parse_path
from drsim.scenario import Problem, ScenarioError
from drsim.scenario.document import ExperimentSection, Scenario
from drsim.scenario.fields import Choices, Range, parse_lhs

__all__ = ["ExperimentSettings", "experiment_settings", "DEFAULT_REPLICATIONS", "DEFAULT_MAX_REPLICATIONS"]

DEFAULT_REPLICATIONS = 10
DEFAULT_MAX_REPLICATIONS = 100  #: with precision, when neither max_replications nor more replications are given


@dataclass(frozen=True)
class ExperimentSettings:
    """An experiment as it will run: the scenario's ``experiment`` section with the arguments given over it.
    ``replications``: per point (with ``precision``: in the first round); ``max_replications``: the cap with
    ``precision`` (``replications`` without); ``batch_size``: None for automatic."""

    replications: int
    seed: int
    grid: dict[str, list[Any]]
    lhs: dict[str, Range | Choices]
    samples: int | None
    precision: tuple[Precision, ...]
    max_replications: int
    batch_size: int | None
    keep_runs: bool

    def record(self) -> dict[str, Any]:
        """The settings as plain data (for experiment.json and metadata.json)."""
        return {"replications": self.replications, "experiment_seed": self.seed, "sweep": _plain(self.grid),
                "lhs": {path: _plain(dim.describe()) for path, dim in self.lhs.items()}, "samples": self.samples,
                "precision": [p.describe() for p in self.precision],
                "max_replications": self.max_replications if self.precision else None, "keep_runs": self.keep_runs}


def _positive_int(value: Any, what: str, key: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ExperimentError(f"{what} must be a positive integer, got {value!r}", key)
    return int(value)


def experiment_settings(
    scenario: Scenario,
    replications: int | None = None,
    sweep: Mapping[str, Any] | None = None,
    seed: int | None = None,
    lhs: Mapping[str, Any] | None = None,
    samples: int | None = None,
    precision: str | Precision | Sequence[str | Precision] | Mapping[str, Any] | None = None,
    max_replications: int | None = None,
    batch_size: int | None = None,
    keep_runs: bool | None = None,
) -> ExperimentSettings:
    """Resolve an experiment's settings: each argument given (not None) replaces the same key of the scenario's
    ``experiment`` section, which replaces the default (10 replications, the scenario's seed, no sweep, no
    precision target, at most 100 replications with one, automatic batches, no per-run tables). ``sweep``,
    ``lhs`` and ``precision`` replace the section's whole grid, hypercube or list of targets. Raises
    :class:`ExperimentError` (or :class:`ScenarioError` for a bad path or range)."""
    section = scenario.experiment or ExperimentSection()

    def pick(arg: Any, key: str, default: Any) -> Any:
        if arg is not None:
            return arg
        value = getattr(section, key)
        return default if value is None else value

    n = _positive_int(pick(replications, "replications", DEFAULT_REPLICATIONS), "replications", "replications")
    exp_seed = pick(seed, "seed", scenario.seed)
    if isinstance(exp_seed, bool) or not isinstance(exp_seed, int | np.integer) or exp_seed < 0:
        raise ExperimentError(f"the experiment seed must be an integer, not negative, got {exp_seed!r}", "seed")
    grid = _normalise_sweep(sweep if sweep is not None else section.sweep)
    dims: dict[str, Range | Choices] = {}
    for path, raw in (lhs if lhs is not None else section.lhs).items():
        try:
            dims[path] = parse_lhs(raw)
        except ValueError as exc:
            raise ScenarioError([Problem(loc=parse_path(path, "lhs"), message=str(exc))], "lhs") from None
    # the section's samples and max_replications go with its own lhs and precision: dropped with them
    n_samples = samples if samples is not None else section.samples if lhs is None or dims else None
    if dims and n_samples is None:
        raise ExperimentError("a Latin hypercube needs its number of samples (samples=N; --samples N)", "lhs")
    if n_samples is not None and not dims:
        raise ExperimentError("samples is given but no Latin hypercube range is (lhs=...; --lhs PATH=LO..HI)",
                              "samples")
    if n_samples is not None:
        n_samples = _positive_int(n_samples, "the number of Latin hypercube samples", "samples")
    targets = _precisions(precision if precision is not None else section.precision, scenario)
    cap = max_replications if max_replications is not None else \
        section.max_replications if precision is None or targets else None
    if cap is not None and not targets:
        raise ExperimentError("max_replications applies only with a precision target (precision=...; --precision)",
                              "max_replications")
    if targets:
        if n < 2:
            raise ExperimentError("a precision target needs at least 2 replications in the first round (10 or "
                                  "more give steadier estimates of the spread)", "replications")
        cap = (_positive_int(cap, "max_replications", "max_replications") if cap is not None
               else max(DEFAULT_MAX_REPLICATIONS, n))
        if cap < n:
            raise ExperimentError(f"max_replications ({cap}) is below the first round's {n} replications",
                                  "max_replications")
    else:
        cap = n
    batch = pick(batch_size, "batch_size", None)
    if batch is not None:
        batch = _positive_int(batch, "batch_size", "batch_size")
    keep = bool(section.keep_runs if keep_runs is None else keep_runs)
    return ExperimentSettings(n, int(exp_seed), grid, dims, n_samples, targets, cap, batch, keep)
