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
from drsim.results.tables import TABLES
from drsim.scenario import units
from drsim.scenario.checks import located_warnings
from drsim.scenario.problems import ScenarioError
from drsim.scenario.schema import scenario_schema

EXIT_BAD_INPUT = 2
EXIT_CANNOT_WRITE = 1
SCREEN_VMS = 12  # VMs in the terminal summary of a big run (the run folder's summary.txt has them all)


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


def _note_leftovers(out: str) -> None:
    """Tell the user what interrupted or killed runs left under ``out`` (not those still running)."""
    from drsim.experiments.leftovers import leftovers_note

    if (note := leftovers_note(out)) is not None:
        click.echo(note, err=True)


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
@click.option("--xlsx", is_flag=True, help="Also write report.xlsx (an Excel workbook) into the run folder.")
@force_option
@click.option("--tables", "tables", default=None, metavar="NAME,NAME,...",
              help="Keep only these tables, e.g. --tables summary,incidents,operations,states (the summary is "
                   "always kept; it is computed as the run goes when per-cycle tables are left out, so memory "
                   "stays small on long runs). Tables: " + ", ".join(TABLES) + " [all].")
@click.option("--prices", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="A price sheet (YAML) merged over the bundled one; the scenario's prices: section goes over it.")
def run(scenario: str, out: str, seed: int | None, csv: bool, no_save: bool, quiet: bool, report: bool,
        xlsx: bool, force: bool, tables: str | None, prices: str | None) -> None:
    """Simulate SCENARIO (a YAML file) and write its tables."""
    from drsim.results.running import recorder_tables
    from drsim.results.size import LONG_RUN, run_size, size_text

    s = _load(scenario, force=force)
    kept = None if tables is None else [t.strip() for t in tables.split(",") if t.strip()]
    try:
        recorder_tables(kept)
    except ValueError as exc:
        _fail(f"error: --tables {tables}: {exc}", EXIT_BAD_INPUT)
    for w in located_warnings(s):
        click.echo(f"warning: {w}", err=True)
    if s.experiment is not None and not quiet:
        click.echo(f"note: {scenario}: the experiment section is for drsim sweep; drsim run simulates one run",
                   err=True)
    size = run_size(s, kept)
    if s.duration > LONG_RUN or size.memory > 1e9:
        click.echo(size_text(size, s), err=True)
    if report and kept is not None and set(size.kept) != set(TABLES):
        click.echo("warning: --report needs every table; no report is written with --tables (run 'drsim report' "
                   "on the folder later: it simulates the run again in full)", err=True)
        report = False
    if not quiet and not no_save:
        _note_leftovers(out)
    t0 = time.perf_counter()
    results = simulate(s, seed=seed, tables=kept)
    wall = time.perf_counter() - t0
    from drsim.results.costs import run_costs
    from drsim.views.costs_view import costs_text

    try:
        costs = run_costs(results, prices)
    except ScenarioError as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    # every VM, for summary.txt; the terminal shows those that matter most
    text = summary_text(results) + "\n\n" + costs_text(costs)
    if not quiet:
        click.echo(summary_text(results, SCREEN_VMS, "of a saved run (without --no-save)" if no_save else
                                "in the run folder"))
        click.echo("\n" + costs_text(costs))
        click.echo(f"\nsimulated in {wall:.2f} s")
    if no_save:
        return
    try:
        folder = write_run(results, out, csv=csv, extra={"wall_time_s": round(wall, 3)}, text=text,
                           costs=costs)
    except OSError as exc:
        _fail(f"error: cannot write results under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"results: {folder}" if not quiet else str(folder))
    if report:
        from drsim.views.run_report import write_report

        try:
            html, md = write_report(results, folder, costs)
        except OSError as exc:
            _fail(f"error: cannot write the report into {folder}: {exc.strerror or exc}; the run is saved whole "
                  f"there: write the report later with 'drsim report {folder}'", EXIT_CANNOT_WRITE)
        if not quiet:
            click.echo(f"report: {html}\nreport: {md}")
    if xlsx:
        _write_workbook(folder)


@main.command("report")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--no-verify", is_flag=True,
              help="Report the re-simulated run even if its summary differs from the stored one (e.g. a run made "
                   "by another drsim version).")
@click.option("--xlsx", is_flag=True,
              help="Write report.xlsx instead (summary, VMs, incidents; a plan folder's plan), from the stored tables "
                   "without re-simulating.")
def report_command(folder: str, no_verify: bool, xlsx: bool) -> None:
    """Write report.html and report.md for a run FOLDER written by 'drsim run' (re-simulates it from its
    scenario.yaml and seed, and checks the result matches the stored tables); with --xlsx, an Excel workbook of a
    run or plan folder."""
    from drsim.views.report_folder import ReportError, write_report_from_folder

    if xlsx:
        _write_workbook(folder)
        return

    try:
        html, md = write_report_from_folder(folder, verify=not no_verify)
    except ReportError as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        _fail(f"error: cannot write the report into {folder}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"report: {html}\nreport: {md}")


def _write_workbook(folder: str | Path) -> None:
    from drsim.views.workbook import WorkbookError, write_workbook

    try:
        path = write_workbook(folder)
    except WorkbookError as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        _fail(f"error: cannot write the workbook into {folder}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"workbook: {path}")


@main.command()
@click.argument("root", default="results", type=click.Path(file_okay=False, exists=True))
@click.option("--remove", is_flag=True, help="Remove the folders listed as removable, after asking.")
@click.option("-y", "--yes", is_flag=True, help="With --remove: do not ask.")
def cleanup(root: str, remove: bool, yes: bool) -> None:
    """List what interrupted or killed runs left under ROOT [results]: interrupted sweeps (with how to resume
    them) and half-written folders. --remove removes those that are drsim's own and not in use."""
    from drsim.experiments.leftovers import find_leftovers, leftovers_text, remove_leftover

    items = find_leftovers(root)
    click.echo(leftovers_text(items, root))
    removable = [i for i in items if i.removable]
    if remove and removable:
        if not yes:
            click.confirm(f"remove {count(len(removable), 'folder')}?", abort=True, err=True)
        for item in removable:
            remove_leftover(item)
            click.echo(f"removed: {item.path}")


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
        for w in located_warnings(s):
            click.echo(f"warning: {w}", err=True)
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
        click.echo(f"wrote the JSON Schema of scenario files to {output}; for editor autocompletion, put "
                   f"'# yaml-language-server: $schema={output}' at the top of a scenario file")


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
        _fail("error: give SCENARIO (or --resume FOLDER alone to complete an interrupted sweep)", EXIT_BAD_INPUT)
    try:  # --resume FOLDER alone: the scenario and settings the folder records
        s, recorded = (_load(scenario, experiment=True), {}) if scenario else recorded_request(resume)
    except ExperimentError as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
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
        overrides = {k: recorded.get(k) if v is None else v for k, v in overrides.items()}
        resolved = experiment_settings(s, **overrides)
        too_large = None if force else experiment_size_problem(s, resolved)
        streaming = resume is not None and (Path(resume) / EXPERIMENT_FILE).is_file()  # not an output root
        if streaming:
            check_resumable(resume, s, resolved)  # the differences in plain lines
        reused = finished_runs(resume) if streaming else 0
    except (ScenarioError, ExperimentError) as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    if too_large is not None:
        _fail(f"error: {scenario}: {too_large}\n{_FORCE}", EXIT_BAD_INPUT)
    for w in located_warnings(s):
        click.echo(f"warning: {w}", err=True)
    if resume is not None and no_save:
        _fail("error: --resume cannot be combined with --no-save", EXIT_BAD_INPUT)
    if resolved.keep_runs and no_save:
        _fail("error: --keep-runs writes every run's tables: it cannot be combined with --no-save", EXIT_BAD_INPUT)
    streams: list[Path] = []  # the folder the runs stream into, once it exists
    target = None if no_save else Path(resume if resume is not None else out)
    if resume is None and not quiet and not no_save:
        _note_leftovers(out)
    executor, client = _executor(workers, dask)
    bar = _progress_bar("replications", quiet)

    def resume_hint() -> str:
        return (f"finished runs are kept in {streams[0]}; resume with: drsim sweep --resume {streams[0]}"
                if streams else "nothing was saved" + (" (--no-save)" if no_save else ""))

    interrupted = False
    try:
        exp = run_experiment(s, executor=executor, progress=bar.update_to if bar is not None else None,
                             out=target, resume=resume is not None, on_folder=streams.append, **overrides)
    except (ScenarioError, ValueError) as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        _fail(f"error: cannot write results {f'into {streams[0]}' if streams else f'under {target}'}: "
              f"{exc.strerror or exc}", EXIT_CANNOT_WRITE)
    except ExecutorFailed as exc:
        if bar is not None:
            bar.close()
            bar = None
        _fail(f"error: the executor failed ({exc}); {resume_hint()}", EXIT_CANNOT_WRITE)
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
@click.option("--method", type=click.Choice(["fast", "full"]), default="fast", show_default=True,
              help="fast: steady state over two weeks, few replications far from the answer; full: every candidate "
                   "over the whole scenario, initial replication included.")
@click.option("--upload", "uploads", default=None, metavar="RATES",
              help="Options to compare, e.g. 10Mbit/s,20Mbit/s,50Mbit/s (priced by the sheet's uplink tiers).")
@click.option("--interval", "intervals", default=None, metavar="DURATIONS", help="Options to compare, e.g. 30s,5m.")
@click.option("--policy", "policies", default=None, metavar="NAMES", help="Options to compare, e.g. manual,automatic.")
@click.option("--prices", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="A price sheet merged over the bundled one (with --upload/--interval/--policy).")
@click.option("--deadline", default=None, metavar="DURATION",
              help="Instead: the upload at which every VM is protected within DURATION of the initial start "
                   "(batches in the order given), and a better batch order if there is one.")
@click.option("--figure", default=None, type=click.Path(dir_okay=False), metavar="FILE.png",
              help="With options: draw the cost/RPO frontier into FILE.png.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.option("--report", is_flag=True,
              help="Write plan.parquet, metadata.json, report.html and report.md into a new folder "
                   "<out>/<scenario>/plan-<time>/.")
@click.option("--out", "out", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which <scenario>/plan-<time>/ is created (with --report).")
@force_option
def plan_command(scenario: str, rpo: str | None, percentile: float, replications: int, tolerance: str,
                 workers: int | None, dask: str | None, seed: int | None, criterion: str, window: str,
                 method: str, uploads: str | None, intervals: str | None, policies: str | None, prices: str | None,
                 deadline: str | None, figure: str | None, quiet: bool, report: bool, out: str,
                 force: bool) -> None:
    """Find the upload bandwidth that meets an RPO target for every VM of SCENARIO, by simulation; with
    --upload/--interval/--policy lists, compare those options by cost instead."""
    if deadline is not None:
        _plan_deadline(scenario, deadline, tolerance, replications, workers, dask, seed)
        return
    if uploads or intervals or policies:
        _plan_options(scenario, rpo, percentile, replications, workers, dask, seed, uploads, intervals, policies,
                    prices, figure, quiet)
        return
    from drsim.experiments.bounds import plan_size_problem
    from drsim.experiments.executors import ExecutorFailed, close_executor
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
                     executor=executor, seed=seed, criterion=criterion, window=window, progress=progress,
                     method=method)
    except (PlanError, ScenarioError) as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    except ExecutorFailed as exc:
        _fail(f"error: the executor failed ({exc})", EXIT_CANNOT_WRITE)
    except KeyboardInterrupt:
        interrupted = True
        click.echo("\ninterrupted: nothing was written", err=True)
        sys.exit(130)
    finally:
        close_executor(executor, client, interrupted)
    click.echo(plan_text(table))
    if report:
        from drsim.views.plan_report import write_plan_folder

        try:
            folder = write_plan_folder(table, s, out)
        except OSError as exc:
            _fail(f"error: cannot write the plan under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"\nresults: {folder}\nreport: {folder / 'report.html'}\nreport: {folder / 'report.md'}")


def _plan_deadline(scenario: str, deadline: str, tolerance: str, replications: int, workers: int | None,
                   dask: str | None, seed: int | None) -> None:
    """drsim plan --deadline: the upload that protects every VM in time (drsim.experiments.deadline)."""
    from drsim.experiments.deadline import deadline_bandwidth
    from drsim.experiments.executors import close_executor
    from drsim.experiments.planner_text import mbit

    s = _load(scenario)
    try:
        limit, tol = units.parse_duration(deadline), units.parse_rate(tolerance)
    except ValueError as exc:
        _fail(f"error: --deadline/--tolerance: {exc}", EXIT_BAD_INPUT)
    executor, client = _executor(workers, dask)
    try:
        r = deadline_bandwidth(s, limit, tol, replications, seed, executor)
    finally:
        close_executor(executor, client)
    fmt = units.format_duration
    click.echo(f"{s.name}: every VM protected within {fmt(limit)} of the initial start from {mbit(r['required_Bps'])} "
               f"(not at {mbit(r['not_at_Bps'])}); batches as given: "
               + "; ".join(", ".join(b) for b in r["batches"]))
    for vm, t in r["protected_after_s"].items():
        click.echo(f"  {vm}: protected after {fmt(t)}")
    if r["suggested_batches"]:
        click.echo("suggested batch order (smallest first): " + "; ".join(", ".join(b) for b in r["suggested_batches"])
                   + f": mean time to protection {fmt(r['suggested_mean_wait_s'])} instead of {fmt(r['mean_wait_s'])}")


def _plan_options(scenario: str, rpo: str | None, percentile: float, replications: int, workers: int | None,
                  dask: str | None, seed: int | None, uploads: str | None, intervals: str | None,
                  policies: str | None, prices: str | None, figure: str | None, quiet: bool) -> None:
    """drsim plan with option lists: simulate and price every combination (drsim.experiments.options)."""
    from drsim.experiments.executors import close_executor
    from drsim.experiments.options import compare_options
    from drsim.scenario.prices import load_price_sheet
    from drsim.views.options_figure import options_frontier, options_text

    s = _load(scenario)

    def split(text: str | None, parse, what: str) -> list:
        try:
            return [parse(x.strip()) for x in (text or "").split(",") if x.strip()]
        except ValueError as exc:
            _fail(f"error: {what}: {exc}", EXIT_BAD_INPUT)

    ups = split(uploads, units.parse_rate, "--upload")
    ivs = split(intervals, units.parse_duration, "--interval")
    pols = split(policies, str, "--policy")
    target = split(rpo, units.parse_duration, "--rpo")
    try:
        sheet = load_price_sheet(prices, s.prices)
    except ScenarioError as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    executor, client = _executor(workers, dask)
    progress = None if quiet else (lambda message: click.echo(message, err=True))
    try:
        table = compare_options(s, sheet, ups, ivs, pols, rpo=target[0] if target else None, percentile=percentile,
                                replications=replications, seed=seed, executor=executor, progress=progress)
    except ScenarioError as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    finally:
        close_executor(executor, client)
    click.echo(options_text(table))
    if figure:
        try:
            options_frontier(table).savefig(figure, dpi=110)
        except OSError as exc:
            _fail(f"error: cannot write {figure}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"figure: {figure}")


@main.command("init")
@click.option("--inventory", required=True, type=click.Path(dir_okay=False), metavar="FILE.csv",
              help="The hypervisor's inventory CSV (one row per virtual disk; the README gives the PowerShell line).")
@click.option("--counters", multiple=True, type=click.Path(dir_okay=False), metavar="LOG.csv",
              help="A performance-counter log (typeperf/relog CSV; repeatable, e.g. one per host): VMs whose disks "
                   "all have a Hyper-V Virtual Storage Device write counter in it replay it as their churn.")
@click.option("--timezone", default=None, metavar="ZONE",
              help="The IANA time zone of the counter log's local timestamps, e.g. Europe/Berlin.")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="The scenario file to write [<inventory name>.yaml].")
@click.option("--name", default=None, help="The scenario name [the output file's name, else the inventory's].")
@click.option("--duration", default="30d", show_default=True, metavar="DURATION", help="The simulated period.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
def init_command(inventory: str, counters: tuple[str, ...], timezone: str | None, output: str | None,
                 name: str | None, duration: str, force: bool) -> None:
    """Write a scenario file from the site's inventory (and a counter log), ready to edit."""
    from drsim.results.folders import atomic_write
    from drsim.scenario.inventory import InventoryError, read_inventory
    from drsim.scenario.perfmon import CounterLogError, read_counter_log
    from drsim.scenario.scaffold import next_steps_text, scaffold_scenario, scenario_name

    out = Path(output or f"{scenario_name(name or Path(inventory).stem)}.yaml")
    name = name or (out.stem if output else None)
    if out.exists() and not force:
        _fail(f"error: {out} exists: give another file with -o, or --force to replace it", EXIT_BAD_INPUT)
    try:
        inv = read_inventory(inventory)
        logs = [read_counter_log(c, timezone) for c in counters]
    except (InventoryError, CounterLogError) as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        made = scaffold_scenario(inv, out, name, logs, timezone, duration)
        atomic_write(out, lambda tmp: tmp.write_text(made.text, encoding="utf-8"))
    except ScenarioError as exc:
        _fail(f"error: the scenario made from {inventory} is not valid:\n{exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        _fail(f"error: cannot write {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    for note in made.notes:
        click.echo(f"warning: {note}", err=True)
    click.echo(next_steps_text(made, out, inventory, counters))


@main.command("trace")
@click.argument("log", type=click.Path(dir_okay=False))
@click.option("-c", "--columns", multiple=True, metavar="PATTERN",
              help="Counter paths of one VM's writes, summed; * matches any text (repeatable). Without it, the "
                   "log's columns are listed.")
@click.option("--step", default=None, metavar="DURATION", help="Resample to this step [the log's interval, >= 1m].")
@click.option("--rewrite", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Share of the bytes written that are new (write throughput overstates churn when blocks are "
                   "rewritten within an interval).")
@click.option("--max-gap", default=None, metavar="DURATION", help="Longest gap filled by interpolation [15m].")
@click.option("--timezone", default=None, metavar="ZONE", help="IANA time zone of the log, e.g. Europe/Berlin.")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="Write the trace as a timestamp,bytes CSV.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
def trace_command(log: str, columns: tuple[str, ...], step: str | None, rewrite: float, max_gap: str | None,
                  timezone: str | None, output: str | None, force: bool) -> None:
    """List the counters of a performance-counter LOG (typeperf/relog CSV), or make a VM's churn trace from it."""
    from drsim.results.folders import atomic_write
    from drsim.scenario.counters import counter_trace, log_text, trace_text, write_trace_csv
    from drsim.scenario.perfmon import CounterLogError, read_counter_log
    from drsim.scenario.units import parse_duration

    try:
        seconds = {k: parse_duration(v) if v is not None else None for k, v in (("step", step), ("max_gap", max_gap))}
    except ValueError as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    if seconds["step"] is not None and seconds["step"] <= 0:
        _fail("error: --step must be above 0", EXIT_BAD_INPUT)
    if output is not None and Path(output).exists() and not force:
        _fail(f"error: {output} exists: give another file with -o, or --force to replace it", EXIT_BAD_INPUT)
    try:
        if not columns:
            click.echo(log_text(read_counter_log(log, timezone)))
            return
        made = counter_trace(log, columns, seconds["step"], rewrite, seconds["max_gap"], timezone)
    except CounterLogError as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    click.echo(trace_text(made, log, columns))
    if output is not None:
        try:
            atomic_write(Path(output), lambda tmp: write_trace_csv(made, str(tmp)))
        except OSError as exc:
            _fail(f"error: cannot write {output}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"wrote {output} (timestamp in seconds from {made.first}, bytes per step)")


@main.command("risk")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--years", type=click.IntRange(min=1), default=100, show_default=True, help="Horizon in years.")
@click.option("-n", "--replications", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Replications of the horizon.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Experiment seed [default: the scenario's].")
@click.option("--method", type=click.Choice(["auto", "conditional", "windows", "full"]), default="auto",
              show_default=True,
              help="conditional: the slow time scale simulated, data loss from the steady state (conditional Monte "
                   "Carlo); windows: each failure simulated in full in a window, quiet stretches skipped; full: the "
                   "whole horizon in full; auto: conditional where its conditions hold, else windows.")
@click.option("--probe-runs", type=click.IntRange(min=2), default=6, show_default=True,
              help="Failure-free runs that measure the steady state of replication.")
@click.option("--probe-weeks", type=click.IntRange(min=2), default=3, show_default=True,
              help="Weeks measured by each probe run.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: one per core]; 1 runs in this process.")
@click.option("--dask", "dask", default=None, metavar="ADDRESS",
              help="Run the replications on a Dask cluster, e.g. --dask tcp://scheduler:8786 (needs drsim[dask]).")
@click.option("--out", "out", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which <scenario>/risk-<time>/ is created.")
@click.option("--no-save", is_flag=True, help="Print the figures only; write nothing.")
@click.option("--report", is_flag=True, help="Also write report.html and report.md (with the exceedance curve).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the results folder.")
def risk_command(scenario: str, years: int, replications: int, seed: int | None, method: str, probe_runs: int,
                 probe_weeks: int, workers: int | None, dask: str | None, out: str, no_save: bool, report: bool,
                 quiet: bool) -> None:
    """Annual risk of SCENARIO over YEARS: data loss per year, the chance of a year with a loss above the RPO
    target, 1 hour and 1 day, downtime, availability (nines), failovers and the RTO met, per VM and for the site,
    with 95 % confidence intervals and an exceedance curve."""
    from drsim.experiments.executors import ExecutorFailed, close_executor
    from drsim.experiments.risk import RiskError, risk
    from drsim.experiments.risk_output import risk_text, write_risk

    s = _load(scenario)
    for w in located_warnings(s):
        click.echo(f"warning: {w}", err=True)
    if report and no_save:
        click.echo("warning: --report is ignored with --no-save", err=True)
    executor, client = _executor(workers, dask)
    bar = _progress_bar("replications", quiet)
    interrupted = False
    try:
        result = risk(s, years=years, replications=replications, seed=seed, method=method, executor=executor,
                      probe_runs=probe_runs, probe_weeks=probe_weeks,
                      progress=bar.update_to if bar is not None else None)
    except (RiskError, ScenarioError) as exc:
        _fail(f"error: {exc}", EXIT_BAD_INPUT)
    except ExecutorFailed as exc:
        _fail(f"error: the executor failed ({exc}); nothing was written", EXIT_CANNOT_WRITE)
    except KeyboardInterrupt:
        interrupted = True
        click.echo("\ninterrupted: nothing was written", err=True)
        sys.exit(130)
    finally:
        if bar is not None:
            bar.close()
        close_executor(executor, client, interrupted)
    if not quiet:
        click.echo(risk_text(result))
    if no_save:
        return

    def add_report(folder: Path) -> None:
        from drsim.views.risk_report import write_risk_report

        write_risk_report(result, folder)

    try:
        folder = write_risk(result, out, add_report if report else None)
    except OSError as exc:
        _fail(f"error: cannot write results under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"\nresults: {folder}" if not quiet else str(folder))
    if report and not quiet:
        click.echo(f"report: {folder / 'report.html'}\nreport: {folder / 'report.md'}")
