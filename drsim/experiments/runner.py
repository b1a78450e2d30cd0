"""Running an experiment: :func:`run_experiment` runs independent replications of every point of a sweep on any
:class:`concurrent.futures.Executor` (or a Dask ``distributed.Client``) and returns an
:class:`~drsim.experiments.outcome.Experiment`. The scenario file's ``experiment`` section gives the defaults of
every argument (:mod:`drsim.experiments.settings`); the points come from :mod:`drsim.experiments.design`, the run
seeds from :mod:`drsim.experiments.seeds` (common random numbers), the rounds of a precision target from
:mod:`drsim.experiments.precision`, and with ``out`` the runs stream to a folder as
:mod:`drsim.experiments.storage` describes, from which an interrupted experiment resumes.

**Execution.** Replications of one point are batched into tasks (``batch_size`` runs each); at most
``max_in_flight`` tasks are submitted at a time. The tables are sorted by (point, replication, the run's row
order), so they are identical row for row whatever the executor and the number of workers.

Imports :mod:`drsim.scenario`, :mod:`drsim.model`, :mod:`drsim.results` and the modules of this stage before
it: errors, seeds, design, precision, settings, storage, executors, the outcome and the sweep folder.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pandas as pd

from drsim.experiments.design import _Point, design
from drsim.experiments.errors import ExperimentError
from drsim.experiments.executors import (
    ExecutorFailed,
    executor_failure,
    resolve_executor,
    shutdown,
    stop_pool,
    wait_first,
)
from drsim.experiments.outcome import Experiment
from drsim.experiments.precision import Precision, _next_targets, _precision_status
from drsim.experiments.seeds import replication_seed
from drsim.experiments.settings import ExperimentSettings, experiment_settings
from drsim.experiments.storage import (
    _experiment_record,
    _load_parts,
    _Outcome,
    _without_lost_runs,
    _write_part,
    _write_runs,
)
from drsim.experiments.sweep_folder import finish_experiment, stream_folder
from drsim.model.site import SiteModel
from drsim.results.costs import costs_table, with_cost_columns
from drsim.results.folders import table_bytes
from drsim.results.ownership import release
from drsim.results.tables import Results
from drsim.scenario import load_scenario
from drsim.scenario.document import Scenario
from drsim.scenario.prices import PriceSheet, load_price_sheet

__all__ = ["run_experiment"]


def _run_batch(point: int, scenario: Scenario, runs: list[tuple[int, int]], keep_runs: bool = False,
               prices: PriceSheet | None = None) -> tuple[int, list[_Outcome]]:
    """Worker task: the replications ``runs`` ((replication, seed) pairs) of one sweep point.

    Returns ``(point, outcomes)``, one :class:`_Outcome` per run: its summary with the cost columns
    (:func:`~drsim.results.costs.with_cost_columns`, priced with ``prices``, default the point's sheet); with
    ``keep_runs`` each carries every table as Parquet contents (encoded here, in the worker)."""
    out = []
    sheet = prices if prices is not None else load_price_sheet(None, scenario.prices)
    for rep, seed in runs:
        try:
            results = Results(SiteModel(scenario, seed).run())
            tables = None
            if keep_runs:
                tables = table_bytes(results)
            summary = with_cost_columns(results.summary, costs_table(results, sheet))
            out.append(_Outcome(rep, seed, summary, tables=tables))
        except Exception as exc:
            out.append(_Outcome(rep, seed, None, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    return point, out


def _tasks(todo: Sequence[Sequence[int]], batch_size: int) -> Iterator[tuple[int, list[int]]]:
    """Batches of ``todo[p]`` (the replications to run at each point) in replication-block order, so every
    point advances together."""
    longest = max((len(t) for t in todo), default=0)
    for start in range(0, longest, batch_size):
        for p, reps in enumerate(todo):
            batch = list(reps[start:start + batch_size])
            if batch:
                yield p, batch


def _auto_batch(runs: int, workers: int) -> int:
    """About four tasks per worker, at most 32 runs each."""
    return max(1, min(32, math.ceil(runs / (4 * workers))))


def run_experiment(
    scenario: Scenario | str | Path,
    replications: int | None = None,
    sweep: Mapping[str, Any] | None = None,
    executor: Executor | Any | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    max_in_flight: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    *,
    lhs: Mapping[str, Any] | None = None,
    samples: int | None = None,
    precision: str | Precision | Sequence[str | Precision] | Mapping[str, Any] | None = None,
    max_replications: int | None = None,
    keep_runs: bool | None = None,
    on_folder: Callable[[Path], None] | None = None,
) -> Experiment:
    """Run replications of every point of a sweep and return an :class:`~drsim.experiments.outcome.Experiment`.

    ``sweep``: dotted path -> list of values, a full factorial grid. ``lhs``: dotted path -> range (``"LO..HI"``
    with units, ``":log"`` after it for a log scale, or ``{low, high, scale}``) or list of choices, a Latin
    hypercube of ``samples`` samples (drawn from the experiment seed; see
    :func:`~drsim.experiments.design.latin_hypercube`), crossed with the grid. ``replications``: per point [10].
    ``precision``: targets such as ``"rpo_p95_s=30s"`` (see :func:`~drsim.experiments.precision.parse_precision`):
    replications then run in rounds until every target is reached at every point, at most ``max_replications``
    per point [100, or ``replications`` if more]. ``keep_runs``: also write every run's full tables into ``out``
    (large: several MB per run of a month). An argument left at None takes the value of the scenario's
    ``experiment`` section, else the default.

    ``executor``: any :class:`concurrent.futures.Executor`, or a Dask ``distributed.Client`` (default: a process
    pool with one worker per core, shut down at the end). ``seed``: the experiment seed (default: the
    scenario's). ``batch_size``: runs per task (default: about four tasks per worker, at most 32 runs).
    ``max_in_flight``: tasks submitted at once (default: twice the workers). ``progress(done, total)`` is called
    as runs finish (``total`` grows with each round of a precision target).

    ``out``: the output root, as the command line's ``--out``: the experiment streams into a new folder
    ``out/<scenario>/sweep-<UTC time>.incomplete/`` (see :mod:`drsim.experiments.storage`), which becomes
    ``out/<scenario>/sweep-<UTC time>/`` (``experiment.folder``) when it completes, as ``drsim sweep`` writes it.
    Nothing else under ``out`` is touched (an empty ``*.incomplete`` folder, as
    :func:`~drsim.experiments.sweep_folder.incomplete_folder` makes, is streamed into itself). ``on_folder(folder)``
    is called with the streaming folder once it exists. ``resume=True`` continues an interrupted experiment,
    running only the missing replications: ``out`` is then its streaming folder (the one that holds
    ``experiment.json``), or the output root, under which the latest interrupted sweep of the same experiment is
    resumed. It raises
    :class:`~drsim.experiments.errors.ExperimentError` (a ``ValueError``) if that folder holds a different
    experiment, is in use by another drsim process, or holds anything drsim did not write there.

    **Costs.** Every run's summary rows carry its costs per year (the ``cost_*_per_year`` columns of
    :func:`~drsim.results.costs.with_cost_columns`), priced with the point's sheet: the bundled price sheet with
    the point's ``prices:`` section merged over it (so ``--set prices.business.downtime_per_hour=...`` sweeps a
    price). The aggregate table then gives their mean and 95 % confidence half-width per point, beside the RPO.

    Every point is validated before anything runs: a bad path or value raises :class:`ScenarioError`. When the
    executor itself fails (a worker process dies, the scheduler is lost)
    :class:`~drsim.experiments.executors.ExecutorFailed` is raised; the finished runs are kept in the streaming
    folder, and ``resume=True`` completes it.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    settings = experiment_settings(scenario, replications, sweep, seed, lhs, samples, precision, max_replications,
                                   batch_size, keep_runs)
    points = design(scenario, settings.grid, settings.lhs, settings.samples, settings.seed)
    seeds = [replication_seed(settings.seed, k) for k in range(settings.replications)]
    sheets = [load_price_sheet(None, pt.scenario.prices) for pt in points]

    results: dict[tuple[int, int], pd.DataFrame] = {}
    failed: list[tuple[int, int, int, str, str]] = []
    root = Path(out) if out is not None else None
    if resume and root is None:
        raise ExperimentError("resume=True needs out, the folder of the interrupted experiment (or its output root)")
    if settings.keep_runs and root is None:
        raise ExperimentError("keep_runs needs out, the folder to write every run's tables into")
    folder: Path | None = None
    handle = None
    if root is not None:
        folder, handle = stream_folder(root, scenario.name,
                                       _experiment_record(scenario, settings, points, seeds, sheets), resume)
    try:
        if folder is not None and resume:
            results, failed = _load_parts(folder)
            if settings.keep_runs:
                results = _without_lost_runs(folder, results)
        if folder is not None and on_folder is not None:
            on_folder(folder)
        exp = _run(scenario, settings, points, seeds, results, failed, executor, max_in_flight, progress, folder,
                   sheets)
        if folder is not None:
            exp.folder = finish_experiment(exp, folder)
        return exp
    finally:
        if handle is not None:
            release(handle)


def _run(scenario: Scenario, settings: ExperimentSettings, points: list[_Point], seeds: list[int],
         results: dict[tuple[int, int], pd.DataFrame], failed: list[tuple[int, int, int, str, str]],
         executor: Executor | Any | None, max_in_flight: int | None, progress: Callable[[int, int], None] | None,
         folder: Path | None, sheets: list[PriceSheet]) -> Experiment:
    """Run the missing replications of every point (all but ``results`` and ``failed``), streaming each task's
    rows into ``folder`` (if given)."""
    done = set(results) | {(f[0], f[1]) for f in failed}

    pool, workers, own, executor_name = resolve_executor(executor)
    limit = max(1, int(max_in_flight) if max_in_flight is not None else 2 * workers)
    targets = [settings.replications] * len(points)
    first_batch: int | None = None
    rounds = 0
    t0 = time.perf_counter()
    pending: dict[Future, tuple[int, list[int]]] = {}

    def collect(fut: Future) -> None:
        p, reps = pending.pop(fut)
        try:
            _, outcomes = fut.result()
        except Exception as exc:
            if executor_failure(exc):
                raise ExecutorFailed(f"{type(exc).__name__}: {str(exc) or 'the executor stopped'}") from exc
            # the task itself failed (e.g. could not be pickled): every run of it failed
            text = f"{type(exc).__name__}: {exc}"
            tb = "".join(traceback.format_exception(exc))
            outcomes = [_Outcome(k, seeds[k], None, text, tb) for k in reps]
        if folder is not None:
            if settings.keep_runs:
                _write_runs(folder, p, points[p], outcomes)
            _write_part(folder, p, reps[0], outcomes)
        for o in outcomes:
            if o.summary is not None:
                results[(p, o.replication)] = o.summary
            else:
                failed.append((p, o.replication, o.seed, o.error or "", o.traceback or ""))
            done.add((p, o.replication))
        if progress is not None:
            progress(sum(1 for q, k in done if k < targets[q]), sum(targets))

    try:
        while True:
            rounds += 1
            seeds.extend(replication_seed(settings.seed, k) for k in range(len(seeds), max(targets)))
            todo = [[k for k in range(n) if (p, k) not in done] for p, n in enumerate(targets)]
            size = settings.batch_size or _auto_batch(sum(map(len, todo)), workers)
            size = max(1, min(size, max(map(len, todo), default=1) or 1))
            first_batch = first_batch or size
            for p, reps in _tasks(todo, size):
                while len(pending) >= limit:
                    finished = wait_first(pending)
                    for fut in finished:
                        collect(fut)
                fut = pool.submit(_run_batch, p, points[p].scenario, [(k, seeds[k]) for k in reps],
                                  settings.keep_runs, sheets[p])
                pending[fut] = (p, reps)
            while pending:
                finished = wait_first(pending)
                for fut in finished:
                    collect(fut)
            if not settings.precision:
                break
            status = _precision_status(results, targets, settings.precision)
            following = _next_targets(status, targets, settings.max_replications)
            if following == targets:
                break
            targets = following
    except BaseException as exc:
        for fut in pending:
            fut.cancel()
        if own:
            (stop_pool if isinstance(exc, KeyboardInterrupt) else lambda p: shutdown(p, cancel=True))(pool)
        raise
    if own:
        shutdown(pool, cancel=False)
    elapsed = time.perf_counter() - t0
    status = _precision_status(results, targets, settings.precision) if settings.precision else None
    kept = {key: df for key, df in results.items() if key[1] < targets[key[0]]}
    lost = [f for f in failed if f[1] < targets[f[0]]]
    return Experiment(scenario, settings, points, seeds[:max(targets)], kept, lost, targets, status, rounds,
                      elapsed, workers, first_batch or 1, executor_name, sheets[0] if sheets else None)
