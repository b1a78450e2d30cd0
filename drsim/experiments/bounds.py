"""How large an experiment or a plan is before it starts, and the limits past which ``drsim sweep`` and ``drsim
plan`` ask before running (:func:`experiment_size_problem`, :func:`plan_size_problem`).

An experiment runs every point of its design times its replications (with a precision target, up to
``max_replications``): ``-n 100000000`` or ``--samples 100000000`` asks for a hundred million runs, which no
machine finishes and whose tables alone fill the memory. The size is the number of runs times the estimate of
one run (:func:`drsim.model.estimate.estimate_run`) at the largest point that can be told without building the
design: the scenario itself, every point of the grid (up to :data:`MAX_POINTS_ESTIMATED`), and each range of
the Latin hypercube at its two ends.

Imports :mod:`drsim.scenario`, :mod:`drsim.model.estimate` and, of this stage, the settings, the setting paths
and the sizing scenario.
"""

from __future__ import annotations

import itertools
import math

from drsim.experiments.settings import ExperimentSettings
from drsim.experiments.settings_paths import apply_settings
from drsim.experiments.sizing import sizing_scenario
from drsim.model import estimate as run_size
from drsim.model.estimate import EVENTS_PER_SECOND, RunEstimate, estimate_run, size_problem
from drsim.scenario import ScenarioError, units
from drsim.scenario.document import Scenario
from drsim.scenario.fields import Range
from drsim.scenario.problems import location_text

__all__ = ["experiment_size_problem", "plan_size_problem", "MAX_EXPERIMENT_EVENTS", "MAX_POINTS_ESTIMATED",
           "BYTES_PER_RUN_ROW", "PLAN_BANDWIDTHS"]

#: Most events an experiment or a plan may take in all without being asked for. [assumption: about 4 hours of one
#: core at the measured 65,000 events/s (drsim.model.estimate.EVENTS_PER_SECOND); a few hours on a workstation]
MAX_EXPERIMENT_EVENTS = 1_000_000_000
#: Grid points whose scenarios are estimated one by one (beyond that, the scenario itself stands for them).
MAX_POINTS_ESTIMATED = 1000
#: Memory an experiment keeps per run and VM (its rows of the tidy table, the seeds and the task), bytes.
#: [assumption, rounded up from the tidy table's 30 columns of 8 bytes and pandas' overhead]
BYTES_PER_RUN_ROW = 1000
#: Bandwidths a plan simulates. [assumption: the plan of essentials-office simulates 22 (README, "Bandwidth
#: planner"); about twice that allows for more VMs and a finer tolerance]
PLAN_BANDWIDTHS = 40


def _count(x: float) -> str:
    return f"{x:,.0f}" if x < 1e10 else f"{x:.2g}"


def _point_scenarios(scenario: Scenario, settings: ExperimentSettings) -> list[tuple[str, Scenario]]:
    """The scenarios whose runs can be estimated without the design: the scenario, the grid's points (when there
    are few) and each Latin hypercube range at its ends (or each of its choices)."""
    out = [("the scenario", scenario)]
    variants: list[dict] = []
    if math.prod(len(v) for v in settings.grid.values()) <= MAX_POINTS_ESTIMATED:
        variants += [dict(zip(settings.grid, combo, strict=True))
                     for combo in itertools.product(*settings.grid.values())]
    for path, dim in settings.lhs.items():
        ends = [dim.low, dim.high] if isinstance(dim, Range) else list(dim.values)[:MAX_POINTS_ESTIMATED]
        variants += [{path: dim.setting(v)} for v in ends]
    for values in variants:
        if not values:
            continue
        try:
            out.append((", ".join(f"{p}={v}" for p, v in values.items()), apply_settings(scenario, values)))
        except ScenarioError:
            continue  # a bad point is reported when the design is built
    return out


def _largest(scenario: Scenario, settings: ExperimentSettings) -> tuple[str, RunEstimate]:
    estimates = [(where, estimate_run(s)) for where, s in _point_scenarios(scenario, settings)]
    return max(estimates, key=lambda e: max(e[1].events / run_size.MAX_EVENTS, e[1].bytes / run_size.MAX_BYTES))


def _total_problem(what: str, runs: float, per: RunEstimate, rows_per_run: float) -> str | None:
    events = runs * per.events
    memory = runs * rows_per_run * BYTES_PER_RUN_ROW + per.bytes
    over = []
    if events > MAX_EXPERIMENT_EVENTS:
        over.append(f"about {_count(events)} events in all (the limit is {_count(MAX_EXPERIMENT_EVENTS)}; about "
                    f"{units.format_duration(events / EVENTS_PER_SECOND)} on one core)")
    if memory > run_size.MAX_BYTES:
        over.append(f"about {units.format_size(memory)} of memory for its tables (the limit is "
                    f"{units.format_size(run_size.MAX_BYTES)})")
    if not over:
        return None
    return f"{what}, of about {_count(per.events)} events each: {' and '.join(over)}"


def experiment_size_problem(scenario: Scenario, settings: ExperimentSettings) -> str | None:
    """Why this experiment needs asking for, or None: a run at one of its points is too large
    (:func:`drsim.model.estimate.size_problem`), or all its runs together pass :data:`MAX_EXPERIMENT_EVENTS` or
    :data:`~drsim.model.estimate.MAX_BYTES` (each read when called)."""
    points = math.prod(len(v) for v in settings.grid.values()) * (settings.samples or 1)
    runs = points * settings.max_replications
    where, per = _largest(scenario, settings)
    problem = size_problem(per)
    if problem is not None:
        return f"{where}: {location_text(problem.loc)}: {problem.message}"
    reps = f"up to {settings.max_replications:,}" if settings.precision else f"{settings.max_replications:,}"
    return _total_problem(f"the experiment runs {_count(runs)} times ({_count(points)} point"
                          f"{'s' if points != 1 else ''} x {reps} replications)", runs, per, len(scenario.vms()) + 1)


def plan_size_problem(scenario: Scenario, replications: int) -> str | None:
    """Why this plan needs asking for, or None: a run of its sizing scenario is too large, or
    ``replications`` at each of about :data:`PLAN_BANDWIDTHS` bandwidths pass the limits."""
    per = estimate_run(sizing_scenario(scenario))
    problem = size_problem(per)
    if problem is not None:
        return f"{location_text(problem.loc)}: {problem.message}"
    return _total_problem(f"the plan runs about {_count(replications * PLAN_BANDWIDTHS)} times ({_count(replications)} "
                          f"replications at about {PLAN_BANDWIDTHS} bandwidths)", replications * PLAN_BANDWIDTHS, per,
                          len(scenario.vms()) + 1)
