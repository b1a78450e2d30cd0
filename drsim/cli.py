"""The ``drsim`` command line.

``drsim run SCENARIO`` simulates a scenario, writes its tables to ``results/`` and prints a summary;
``drsim validate FILE...`` checks scenario files; ``drsim schema`` prints the scenario JSON Schema.

User mistakes (a bad scenario, an unwritable folder) print a located message and exit with status 2
(bad input) or 1 (cannot write), never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from drsim import __version__, load_scenario, simulate
from drsim.model.estimate import TOO_LARGE, size_problems
from drsim.results.findings import count, summary_text
from drsim.results.folders import write_run
from drsim.scenario.checks import scenario_warnings
from drsim.scenario.problems import ScenarioError, location_text
from drsim.scenario.schema import scenario_schema

EXIT_BAD_INPUT = 2
EXIT_CANNOT_WRITE = 1


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _load(path: str, experiment: bool = False, force: bool = True):
    """The valid scenario at ``path``; without ``force``, also small enough to run (drsim.model.estimate)."""
    try:
        return load_scenario(path, experiment=experiment, checks=() if force else (size_problems,))
    except ScenarioError as exc:
        n = len(exc.problems)
        if n == 1 and not exc.problems[0].loc and exc.problems[0].line is None:  # not found, not a file...
            _fail(f"error: {exc}", EXIT_BAD_INPUT)
        large = any(p.message.startswith(TOO_LARGE) for p in exc.problems)
        _fail(f"error: {path} is not a valid scenario ({n} problem{'s' if n > 1 else ''}):\n{exc}" if not large else
              f"error: {exc}\n{_FORCE}", EXIT_BAD_INPUT)


_FORCE = "give --force to run it anyway"
force_option = click.option("--force", is_flag=True, help="Run even past the size limits (events, memory) drsim "
                            "estimates before running; see README 'Limits'.")


def _progress_bar(unit: str, quiet: bool):
    """A terminal progress bar with rate and ETA (tqdm), or None when quiet or not writing to a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    class Bar(tqdm):
        def update_to(self, done: int, total: int) -> None:
            self.total = total
            self.update(done - self.n)

    return Bar(unit=f" {unit}", dynamic_ncols=True, file=sys.stderr)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="drsim")
def main() -> None:
    """drsim: simulate disaster recovery of Hyper-V VMs replicating to the cloud."""


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", "out", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which <scenario>/<run id>/ is created.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scenario's seed.")
@click.option("--csv", is_flag=True, help="Also write every table as CSV.")
@click.option("--no-save", is_flag=True, help="Print the summary only; write nothing.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the run folder.")
@click.option("--report", is_flag=True, help="Also write report.html and report.md into the run folder.")
@force_option
def run(scenario: str, out: str, seed: int | None, csv: bool, no_save: bool, quiet: bool, report: bool,
        force: bool) -> None:
    """Simulate SCENARIO (a YAML file) and write its tables."""
    s = _load(scenario, force=force)
    for w in scenario_warnings(s):
        click.echo(f"warning: {scenario}: {w}", err=True)
    if s.experiment is not None and not quiet:
        click.echo(f"note: {scenario}: the experiment section is for drsim sweep; drsim run simulates one run",
                   err=True)
    t0 = time.perf_counter()
    results = simulate(s, seed=seed)
    wall = time.perf_counter() - t0
    text = summary_text(results)
    if not quiet:
        click.echo(text)
        click.echo(f"\nsimulated in {wall:.2f} s")
    if no_save:
        return
    try:
        folder = write_run(results, out, csv=csv, extra={"wall_time_s": round(wall, 3)}, text=text)
    except OSError as exc:
        _fail(f"error: cannot write results under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"results: {folder}" if not quiet else str(folder))
    if report:
        from drsim.views.run_report import write_report

        try:
            html, md = write_report(results, folder)
        except OSError as exc:
            _fail(f"error: cannot write the report into {folder}: {exc.strerror or exc}; the run is saved whole "
                  f"there: write the report later with 'drsim report {folder}'", EXIT_CANNOT_WRITE)
        if not quiet:
            click.echo(f"report: {html}\nreport: {md}")


@main.command("report")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--no-verify", is_flag=True,
              help="Report the re-simulated run even if its summary differs from the stored one (e.g. a run made "
                   "by another drsim version).")
def report_command(folder: str, no_verify: bool) -> None:
    """Write report.html and report.md for a run FOLDER written by 'drsim run' (re-simulates it from its
    scenario.yaml and seed, and checks the result matches the stored tables)."""
    from drsim.views.report_folder import ReportError, write_report_from_folder

    try:
        html, md = write_report_from_folder(folder, verify=not no_verify)
    except ReportError as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        _fail(f"error: cannot write the report into {folder}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"report: {html}\nreport: {md}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check scenario FILES without running them."""
    from drsim.experiments.text import experiment_brief

    bad = 0
    for path in files:
        try:
            s = load_scenario(path, experiment=True)
        except ScenarioError as exc:
            bad += 1
            click.echo(f"error: {path}:\n{exc}" if len(exc.problems) > 1 else f"error: {exc}", err=True)
            continue
        size = [f"{location_text(p.loc)}: {p.message}; drsim run needs --force" for p in size_problems(s)]
        for w in scenario_warnings(s) + size:
            click.echo(f"warning: {path}: {w}", err=True)
        click.echo(f"ok: {path} ({s.name}: {count(len(s.vms()), 'VM')} on {count(len(s.site.hosts), 'host')}"
                   f"{experiment_brief(s)})")
    if bad:
        sys.exit(EXIT_BAD_INPUT)


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the schema to this file instead of standard output.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of scenario files (for editor autocompletion)."""
    text = json.dumps(scenario_schema(), indent=2)
    if output is None:
        click.echo(text)
    else:
        try:
            Path(output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            _fail(f"error: cannot write {output}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)


def _executor(workers: int | None, dask: str | None):
    """The executor the options ask for (None: the default process pool) and the Dask client to close."""
    from concurrent.futures import ThreadPoolExecutor

    from drsim.experiments.errors import ExperimentError
    from drsim.experiments.executors import connect_dask, process_pool

    if dask is not None:
        if workers is not None:
            _fail("error: --workers does not apply with --dask (the cluster's workers run the tasks)", EXIT_BAD_INPUT)
        try:
            client = connect_dask(dask)
        except ExperimentError as exc:
            _fail(f"error: --dask {dask}: {exc}", EXIT_BAD_INPUT)
        return client, client
    if workers == 1:
        return ThreadPoolExecutor(max_workers=1), None
    if workers is not None:
        return process_pool(workers), None
    return None, None


def _close(executor, client, interrupted: bool = False) -> None:
    from drsim.experiments.executors import stop_pool

    if client is not None:
        client.close()
    elif executor is not None:
        if interrupted:
            stop_pool(executor)
        else:
            executor.shutdown(cancel_futures=True)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
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
                   "<scenario>/sweep-<time>.incomplete/ (experiment.json, then parts/ as tasks finish), replaced "
                   "by sweep-<time>/ when the sweep completes; Ctrl-C leaves it in place for --resume.")
@click.option("--resume", "resume", default=None, type=click.Path(file_okay=False, exists=True),
              metavar="FOLDER",
              help="Resume an interrupted sweep (Ctrl-C, crash) from its sweep-<time>.incomplete FOLDER: give the "
                   "same SCENARIO and options; only the missing runs are computed, then the results go "
                   "to sweep-<time>/ beside FOLDER, which is removed. --out is ignored.")
@click.option("--no-save", is_flag=True, help="Print the site table only; write nothing.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the results folder.")
@click.option("--report", is_flag=True,
              help="Also write report.html and report.md into the sweep folder (ignored with --no-save).")
@force_option
def sweep(scenario: str, replications: int | None, settings: tuple[str, ...], ranges: tuple[str, ...],
          samples: int | None, precision: tuple[str, ...], max_replications: int | None, keep_runs: bool | None,
          workers: int | None, dask: str | None, seed: int | None, batch_size: int | None, out: str,
          resume: str | None, no_save: bool, quiet: bool, report: bool, force: bool) -> None:
    """Run replications of SCENARIO at every point of a sweep; write tidy and aggregate tables.

    The sweep is a full factorial grid (--set), a Latin hypercube (--lhs with --samples), or both crossed;
    the scenario file's experiment section gives the defaults of every option. Results stream to disk as they
    finish; an interrupted sweep leaves its sweep-<time>.incomplete folder, which the same command with
    --resume FOLDER completes.
    """
    from drsim.experiments.bounds import experiment_size_problem
    from drsim.experiments.errors import ExperimentError
    from drsim.experiments.executors import ExecutorFailed
    from drsim.experiments.precision import parse_precision
    from drsim.experiments.runner import run_experiment
    from drsim.experiments.settings import experiment_settings
    from drsim.experiments.settings_paths import parse_lhs_option, parse_set
    from drsim.experiments.sweep_folder import finish_experiment, incomplete_folder
    from drsim.experiments.text import aggregate_text, precision_text

    s = _load(scenario, experiment=True)
    grid: dict[str, list] = {}
    dims: dict[str, object] = {}
    targets = []
    try:
        for option, texts, parse, into in (("--set", settings, parse_set, grid), ("--lhs", ranges, parse_lhs_option,
                                                                                    dims)):
            for text in texts:
                path, values = parse(text)
                if path in into:
                    _fail(f"error: {option} {path} is given twice; list every value in one {option}", EXIT_BAD_INPUT)
                into[path] = values
        for text in precision:
            try:
                targets.append(parse_precision(text, scenario=s))
            except ExperimentError as exc:
                _fail(f"error: --precision {text}: {exc}", EXIT_BAD_INPUT)
        overrides = dict(replications=replications, sweep=grid if settings else None, seed=seed,
                         lhs=dims if ranges else None, samples=samples, precision=targets or None,
                         max_replications=max_replications, batch_size=batch_size, keep_runs=keep_runs)
        resolved = experiment_settings(s, **overrides)
        too_large = None if force else experiment_size_problem(s, resolved)
    except (ScenarioError, ExperimentError) as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    if too_large is not None:
        _fail(f"error: {scenario}: {too_large}\n{_FORCE}", EXIT_BAD_INPUT)
    for w in scenario_warnings(s):
        click.echo(f"warning: {w}", err=True)
    if resume is not None and no_save:
        _fail("error: --resume cannot be combined with --no-save", EXIT_BAD_INPUT)
    if resolved.keep_runs and no_save:
        _fail("error: --keep-runs writes every run's tables: it cannot be combined with --no-save", EXIT_BAD_INPUT)
    stream: Path | None = Path(resume) if resume is not None else None
    if stream is None and not no_save:
        try:
            stream = incomplete_folder(out, s.name)
        except OSError as exc:
            _fail(f"error: cannot write results under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    executor, client = _executor(workers, dask)
    bar = _progress_bar("replications", quiet)
    resume_hint = (f"finished runs are kept in {stream}; resume with the same command and --resume {stream}"
                   if stream is not None else "nothing was saved (--no-save)")
    interrupted = False
    try:
        exp = run_experiment(s, executor=executor, progress=bar.update_to if bar is not None else None,
                             out=stream, resume=resume is not None, **overrides)
    except (ScenarioError, ValueError) as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        _fail(f"error: cannot write results into {stream}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    except ExecutorFailed as exc:
        if bar is not None:
            bar.close()
            bar = None
        _fail(f"error: the executor failed ({exc}); {resume_hint}", EXIT_CANNOT_WRITE)
    except KeyboardInterrupt:
        interrupted = True
        if bar is not None:
            bar.close()
            bar = None
        click.echo(f"\ninterrupted: {resume_hint}" if stream is not None else "\ninterrupted", err=True)
        sys.exit(130)
    finally:
        if bar is not None:
            bar.close()
        _close(executor, client, interrupted)
    runs = sum(exp.replications_per_point)
    if not quiet:
        low, high = min(exp.replications_per_point), max(exp.replications_per_point)
        reps = count(high, "replication") if low == high else f"{low}-{high} replications"
        click.echo(f"{s.name}: {count(len(exp.points), 'point')} x {reps} = {count(runs, 'run')}, experiment seed "
                   f"{exp.seed}, {count(exp.workers, 'worker')}, {exp.elapsed_s:.2f} s\n")
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
    if no_save or stream is None:
        if report:
            click.echo("warning: --report is ignored with --no-save", err=True)
        return
    try:
        folder = finish_experiment(exp, stream)
    except OSError as exc:
        _fail(f"error: cannot write results into {stream}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"results: {folder}" if not quiet else str(folder))
    if report:
        from drsim.views.experiment_report import write_experiment_report

        try:
            html, md = write_experiment_report(exp, folder)
        except OSError as exc:
            _fail(f"error: cannot write the report into {folder}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        if not quiet:
            click.echo(f"report: {html}\nreport: {md}")


@main.command("plan")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--rpo", default=None, metavar="DURATION",
              help="RPO target, e.g. 15m [default: the scenario's objective].")
@click.option("--percentile", default=95.0, show_default=True, type=float,
              help="Share of the time (in percent) the target must be met, by every VM.")
@click.option("-n", "--replications", type=click.IntRange(min=1), default=10, show_default=True,
              help="Replications at every bandwidth (the same run seeds at each).")
@click.option("--tolerance", default="0.5Mbit/s", show_default=True, metavar="RATE",
              help="Stop when the bracket around the answer is this narrow.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: one per core]; 1 runs in this process.")
@click.option("--dask", "dask", default=None, metavar="ADDRESS",
              help="Run the simulations on a Dask cluster, e.g. --dask tcp://scheduler:8786 (needs drsim[dask]).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Experiment seed [default: the scenario's].")
@click.option("--criterion", type=click.Choice(["upper", "mean"]), default="upper", show_default=True,
              help="Judge each bandwidth by the upper end of the 95 % confidence interval of the mean, or the mean.")
@click.option("--window", type=click.Choice(["steady", "protected"]), default="steady", show_default=True,
              help="Measure the RPO once every VM is protected, or over each VM's whole protected time.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.option("--report", is_flag=True,
              help="Write plan.parquet, metadata.json, report.html and report.md into a new folder "
                   "<out>/<scenario>/plan-<time>/.")
@click.option("--out", "out", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which <scenario>/plan-<time>/ is created (with --report).")
@force_option
def plan_command(scenario: str, rpo: str | None, percentile: float, replications: int, tolerance: str,
                 workers: int | None, dask: str | None, seed: int | None, criterion: str, window: str, quiet: bool,
                 report: bool, out: str, force: bool) -> None:
    """Find the upload bandwidth that meets an RPO target for every VM of SCENARIO, by simulation."""
    from drsim.experiments.bounds import plan_size_problem
    from drsim.experiments.executors import ExecutorFailed
    from drsim.experiments.planner import PlanError, plan
    from drsim.experiments.planner_text import plan_text

    s = _load(scenario)
    too_large = None if force else plan_size_problem(s, replications)
    if too_large is not None:
        _fail(f"error: {scenario}: {too_large}\n{_FORCE}", EXIT_BAD_INPUT)
    executor, client = _executor(workers, dask)
    progress = None if quiet else (lambda message: click.echo(message, err=True))
    interrupted = False
    try:
        table = plan(s, rpo=rpo, percentile=percentile, replications=replications, tolerance=tolerance,
                     executor=executor, seed=seed, criterion=criterion, window=window, progress=progress)
    except (PlanError, ScenarioError) as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    except ExecutorFailed as exc:
        _fail(f"error: the executor failed ({exc})", EXIT_CANNOT_WRITE)
    except KeyboardInterrupt:
        interrupted = True
        click.echo("\ninterrupted: nothing was written", err=True)
        sys.exit(130)
    finally:
        _close(executor, client, interrupted)
    click.echo(plan_text(table))
    if report:
        from drsim.views.plan_report import write_plan_folder

        try:
            folder = write_plan_folder(table, s, out)
        except OSError as exc:
            _fail(f"error: cannot write the plan under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"\nresults: {folder}\nreport: {folder / 'report.html'}")
