"""drsim sweep: Monte Carlo replications over a grid and/or a Latin hypercube, resumable.

Imports the API of every stage (lazily, inside the commands, so that drsim starts fast) and :mod:`drsim.cli.common`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from drsim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_WRITE,
    FORCE_HINT,
    executor_for,
    fail,
    force_option,
    load,
    main,
    note_leftovers,
    progress_bar,
)
from drsim.results.findings import count
from drsim.scenario.checks import located_warnings
from drsim.scenario.problems import ScenarioError


@main.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False))
@click.option("-n", "--replications", type=click.IntRange(min=1), default=None,
              help="Replications of every sweep point (with --precision: of the first round) "
                   "[the experiment section's, else 10].")
@click.option("--set", "settings", multiple=True, metavar="PATH=V1,V2,...",
              help="Vary a scenario setting, e.g. --set link.upload=10Mbit/s,20Mbit/s (repeatable: full grid). "
                   "Replaces the experiment section's sweep.")
@click.option("--lhs", "ranges", multiple=True, metavar="PATH=LO..HI|PATH=V1,V2,...",
              help="A Latin hypercube dimension: a range with units, e.g. --lhs link.upload=10Mbit/s..50Mbit/s "
                   "(':log' after it for a log scale), or choices, e.g. --lhs replication.interval=30s,5m "
                   "(repeatable; crossed with the --set grid). Replaces the experiment section's lhs.")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="Latin hypercube samples (needed with --lhs).")
@click.option("--precision", "precision", multiple=True, metavar="[METRIC[@VM]=]TOL",
              help="Add replications in rounds until the 95 % confidence half-width of METRIC (default "
                   "rpo_p95_s) for VM (default the site) is at most TOL at every point, e.g. --precision "
                   "rpo_p95=30s, --precision availability@Essentials=0.1%, --precision downtime_s=10%rel "
                   "(relative to the mean). Repeatable: every target must be met.")
@click.option("--max-replications", type=click.IntRange(min=2), default=None,
              help="With --precision: at most this many replications per point [100, or -n if more].")
@click.option("--keep-runs/--no-keep-runs", "keep_runs", default=None,
              help="Also save every run's full tables (transfers, cycles, rpo...) in runs/point-P/replication-K/ "
                   "of the sweep folder: large (several MB per run of a month).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: one per core]; 1 runs in this process.")
@click.option("--dask", "dask", default=None, metavar="ADDRESS",
              help="Run the tasks on a Dask cluster, e.g. --dask tcp://scheduler:8786 (needs drsim[dask]; drsim "
                   "must be installed on the workers).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Experiment seed [default: the scenario's]; replication k uses the same run seed at every point.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Replications per task.")
@click.option("--out", "out", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which <scenario>/sweep-<time>/ is created. Runs stream into "
                   "<scenario>/sweep-<time>.incomplete/ (experiment.json, then parts/ as tasks finish), renamed "
                   "sweep-<time>/ when the sweep completes; Ctrl-C leaves it in place for --resume.")
@click.option("--resume", "resume", default=None, type=click.Path(file_okay=False, exists=True),
              metavar="FOLDER",
              help="Resume an interrupted sweep (Ctrl-C, crash) from its sweep-<time>.incomplete FOLDER, which "
                   "records the experiment: 'drsim sweep --resume FOLDER' alone (or with the same SCENARIO and "
                   "options, which are checked against it); or from the output folder FOLDER (the latest "
                   "interrupted sweep of the same experiment under it). Only the missing runs are computed, then "
                   "the folder is renamed sweep-<time>/. --out is ignored. drsim cleanup lists interrupted sweeps.")
@click.option("--prices", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="A price sheet (YAML) merged over the bundled one for every point; the scenario's prices: "
                   "section and --set prices.* go over it (recorded in the sweep's scenario.yaml).")
@click.option("--no-save", is_flag=True, help="Print the site table only; write nothing.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the results folder.")
@click.option("--report", is_flag=True,
              help="Also write report.html and report.md into the sweep folder (ignored with --no-save).")
@force_option
def sweep(scenario: str, replications: int | None, settings: tuple[str, ...], ranges: tuple[str, ...],
          samples: int | None, precision: tuple[str, ...], max_replications: int | None, keep_runs: bool | None,
          workers: int | None, dask: str | None, seed: int | None, batch_size: int | None, out: str,
          resume: str | None, prices: str | None, no_save: bool, quiet: bool, report: bool, force: bool) -> None:
    """Run replications of SCENARIO at every point of a sweep; write tidy and aggregate tables.

    The sweep is a full factorial grid (--set), a Latin hypercube (--lhs with --samples), or both crossed;
    the scenario file's experiment section gives the defaults of every option. Results stream to disk as they
    finish; an interrupted sweep leaves its sweep-<time>.incomplete folder, which 'drsim sweep --resume FOLDER'
    completes.
    """
    from drsim.experiments.bounds import experiment_size_problem
    from drsim.experiments.errors import ExperimentError
    from drsim.experiments.executors import ExecutorFailed, close_executor
    from drsim.experiments.precision import parse_precision
    from drsim.experiments.resuming import check_resumable, finished_runs, recorded_request
    from drsim.experiments.runner import run_experiment
    from drsim.experiments.settings import experiment_settings
    from drsim.experiments.settings_paths import parse_lhs_option, parse_set
    from drsim.experiments.storage import EXPERIMENT_FILE
    from drsim.experiments.text import aggregate_text, precision_text

    if scenario is None and resume is None:
        fail("error: give SCENARIO (or --resume FOLDER alone to complete an interrupted sweep)", EXIT_BAD_INPUT)
    try:  # --resume FOLDER alone: the scenario and settings the folder records
        s, recorded = (load(scenario, experiment=True), {}) if scenario else recorded_request(resume)
    except ExperimentError as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    if prices is not None and not scenario:
        fail("error: --prices: the folder records the prices its sweep ran with; resume with --resume FOLDER alone, "
             "or give SCENARIO and --prices too, to check them against the folder", EXIT_BAD_INPUT)
    if prices is not None:  # into the scenario itself: every point, its folder and a resume price alike
        from drsim.scenario.prices import prices_with_file

        try:
            s = s.model_copy(update={"prices": prices_with_file(prices, s.prices)})
        except ScenarioError as exc:
            fail(f"error: {exc}", EXIT_BAD_INPUT)
    grid: dict[str, list] = {}
    dims: dict[str, object] = {}
    targets = []
    try:
        for option, texts, parse, into in (("--set", settings, parse_set, grid), ("--lhs", ranges, parse_lhs_option,
                                                                                    dims)):
            for text in texts:
                path, values = parse(text)
                if path in into:
                    fail(f"error: {option} {path} is given twice; list every value in one {option}", EXIT_BAD_INPUT)
                into[path] = values
        for text in precision:
            try:
                targets.append(parse_precision(text, scenario=s))
            except ExperimentError as exc:
                fail(f"error: --precision {text}: {exc}", EXIT_BAD_INPUT)
        overrides = dict(replications=replications, sweep=grid if settings else None, seed=seed,
                         lhs=dims if ranges else None, samples=samples, precision=targets or None,
                         max_replications=max_replications, batch_size=batch_size, keep_runs=keep_runs)
        overrides = {k: recorded.get(k) if v is None else v for k, v in overrides.items()}
        resolved = experiment_settings(s, **overrides)
        too_large = None if force else experiment_size_problem(s, resolved)
        streaming = resume is not None and (Path(resume) / EXPERIMENT_FILE).is_file()  # not an output root
        if streaming:
            check_resumable(resume, s, resolved)  # the differences in plain lines
        reused = finished_runs(resume) if streaming else 0
    except (ScenarioError, ExperimentError) as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    if too_large is not None:
        fail(f"error: {scenario}: {too_large}\n{FORCE_HINT}", EXIT_BAD_INPUT)
    for w in located_warnings(s):
        click.echo(f"warning: {w}", err=True)
    if resume is not None and no_save:
        fail("error: --resume cannot be combined with --no-save", EXIT_BAD_INPUT)
    if resolved.keep_runs and no_save:
        fail("error: --keep-runs writes every run's tables: it cannot be combined with --no-save", EXIT_BAD_INPUT)
    streams: list[Path] = []  # the folder the runs stream into, once it exists
    target = None if no_save else Path(resume if resume is not None else out)
    if resume is None and not quiet and not no_save:
        note_leftovers(out)
    executor, client = executor_for(workers, dask)
    bar = progress_bar("replications", quiet)

    def resume_hint() -> str:
        return (f"finished runs are kept in {streams[0]}; resume with: drsim sweep --resume {streams[0]}"
                if streams else "nothing was saved" + (" (--no-save)" if no_save else ""))

    interrupted = False
    try:
        exp = run_experiment(s, executor=executor, progress=bar.update_to if bar is not None else None,
                             out=target, resume=resume is not None, on_folder=streams.append, **overrides)
    except (ScenarioError, ValueError) as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        fail(f"error: cannot write results {f'into {streams[0]}' if streams else f'under {target}'}: "
              f"{exc.strerror or exc}", EXIT_CANNOT_WRITE)
    except ExecutorFailed as exc:
        if bar is not None:
            bar.close()
            bar = None
        fail(f"error: the executor failed ({exc}); {resume_hint()}", EXIT_CANNOT_WRITE)
    except KeyboardInterrupt:
        interrupted = True
        if bar is not None:
            bar.close()
            bar = None
        click.echo(f"\ninterrupted: {resume_hint()}" if streams else "\ninterrupted", err=True)
        sys.exit(130)
    finally:
        if bar is not None:
            bar.close()
        close_executor(executor, client, interrupted)
    runs = sum(exp.replications_per_point)
    if not quiet:
        low, high = min(exp.replications_per_point), max(exp.replications_per_point)
        reps = count(high, "replication") if low == high else f"{low}-{high} replications"
        click.echo(f"{s.name}: {count(len(exp.points), 'point')} x {reps} = {count(runs, 'run')}, experiment seed "
                   f"{exp.seed}, {count(exp.workers, 'worker')}, {exp.elapsed_s:.2f} s\n")
        if resume is not None:
            click.echo(f"resumed {resume}: reused {count(min(reused, runs), 'finished run')} of {runs}, ran "
                       f"{max(runs - reused, 0)}\n")
        click.echo(aggregate_text(exp))
        click.echo("\nmeans over replications (± 95 % confidence half-width); per-VM rows in aggregate.parquet")
        if exp.precision:
            click.echo(precision_text(exp))
    if exp.precision_reached is False:
        click.echo("warning: the precision target was not reached everywhere within --max-replications "
                   f"{exp.config.max_replications} (see above)", err=True)
    if len(exp.failures):
        first = exp.failures.iloc[0]
        click.echo(f"warning: {count(len(exp.failures), 'run')} of {runs} failed (see failures.parquet); first: "
                   f"point {first['point']} replication {first['replication']} seed {first['seed']}: "
                   f"{first['error']}", err=True)
    folder = exp.folder
    if folder is None:
        if report:
            click.echo("warning: --report is ignored with --no-save", err=True)
        return
    click.echo(f"results: {folder}" if not quiet else str(folder))
    if report:
        from drsim.views.experiment_report import write_experiment_report

        try:
            html, md = write_experiment_report(exp, folder)
        except OSError as exc:
            fail(f"error: cannot write the report into {folder}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        if not quiet:
            click.echo(f"report: {html}\nreport: {md}")
