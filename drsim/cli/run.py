"""drsim run, report, validate, schema and cleanup: one run, its report, checking scenario files, the JSON Schema, and
the leftovers of stopped runs.

Imports the API of every stage (lazily, inside the commands, so that drsim starts fast) and :mod:`drsim.cli.common`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from drsim import load_scenario, simulate
from drsim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_WRITE,
    SCREEN_VMS,
    fail,
    force_option,
    load,
    main,
    note_leftovers,
    write_workbook,
)
from drsim.model.estimate import size_problems
from drsim.results.findings import count, summary_text
from drsim.results.folders import write_run
from drsim.results.tables import TABLES
from drsim.scenario.checks import located_warnings
from drsim.scenario.problems import ScenarioError, location_text
from drsim.scenario.schema import scenario_schema


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

    s = load(scenario, force=force)
    kept = None if tables is None else [t.strip() for t in tables.split(",") if t.strip()]
    try:
        recorder_tables(kept)
    except ValueError as exc:
        fail(f"error: --tables {tables}: {exc}", EXIT_BAD_INPUT)
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
        note_leftovers(out)
    t0 = time.perf_counter()
    results = simulate(s, seed=seed, tables=kept)
    wall = time.perf_counter() - t0
    from drsim.results.costs import run_costs
    from drsim.views.costs_view import costs_text

    costs = None
    if kept is None or "transfers" in kept:  # the costs read the transfers (storage of points, egress)
        try:
            costs = run_costs(results, prices)
        except ScenarioError as exc:
            fail(f"error: {exc}", EXIT_BAD_INPUT)
    cost_lines = costs_text(costs) if costs is not None else "Costs: not computed (they need the transfers table)"
    # every VM, for summary.txt; the terminal shows those that matter most
    text = summary_text(results) + "\n\n" + cost_lines
    if not quiet:
        click.echo(summary_text(results, SCREEN_VMS, "of a saved run (without --no-save)" if no_save else
                                "in the run folder"))
        big = len(s.vms()) > SCREEN_VMS  # a big site's screen shows the summary; its costs are in the files
        click.echo("\n" + ("Costs: in costs.parquet and summary.txt" if big and costs is not None else cost_lines))
        click.echo(f"\nsimulated in {wall:.2f} s")
    if no_save:
        return
    try:
        folder = write_run(results, out, csv=csv, extra={"wall_time_s": round(wall, 3)}, text=text,
                           costs=costs)
    except OSError as exc:
        fail(f"error: cannot write results under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"results: {folder}" if not quiet else str(folder))
    if report:
        from drsim.views.run_report import write_report

        try:
            html, md = write_report(results, folder, costs)
        except OSError as exc:
            fail(f"error: cannot write the report into {folder}: {exc.strerror or exc}; the run is saved whole "
                  f"there: write the report later with 'drsim report {folder}'", EXIT_CANNOT_WRITE)
        if not quiet:
            click.echo(f"report: {html}\nreport: {md}")
    if xlsx:
        write_workbook(folder)


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
        write_workbook(folder)
        return

    try:
        html, md = write_report_from_folder(folder, verify=not no_verify)
    except ReportError as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        fail(f"error: cannot write the report into {folder}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"report: {html}\nreport: {md}")


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
        for p in size_problems(s):
            click.echo(f"warning: {path}: {location_text(p.loc)}: {p.message}; drsim run needs --force", err=True)
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
            fail(f"error: cannot write {output}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"wrote the JSON Schema of scenario files to {output}; for editor autocompletion, put "
                   f"'# yaml-language-server: $schema={output}' at the top of a scenario file")
