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

from drsim import __version__, simulate
from drsim.findings import count, summary_text
from drsim.output import write_run
from drsim.scenario import ScenarioError, load_scenario, scenario_schema, scenario_warnings

EXIT_BAD_INPUT = 2
EXIT_CANNOT_WRITE = 1


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _load(path: str):
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        n = len(exc.problems)
        _fail(f"error: {path} is not a valid scenario ({n} problem{'s' if n > 1 else ''}):\n{exc}", EXIT_BAD_INPUT)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="drsim")
def main() -> None:
    """drsim: simulate disaster recovery of Hyper-V VMs replicating to the cloud."""


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", "out", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which results/<scenario>/<run id>/ is created.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scenario's seed.")
@click.option("--csv", is_flag=True, help="Also write every table as CSV.")
@click.option("--no-save", is_flag=True, help="Print the summary only; write nothing.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the run folder.")
def run(scenario: str, out: str, seed: int | None, csv: bool, no_save: bool, quiet: bool) -> None:
    """Simulate SCENARIO (a YAML file) and write its tables."""
    s = _load(scenario)
    for w in scenario_warnings(s):
        click.echo(f"warning: {w}", err=True)
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


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check scenario FILES without running them."""
    bad = 0
    for path in files:
        try:
            s = load_scenario(path)
        except ScenarioError as exc:
            bad += 1
            click.echo(f"error: {path}:\n{exc}" if len(exc.problems) > 1 else f"error: {exc}", err=True)
            continue
        for w in scenario_warnings(s):
            click.echo(f"warning: {path}: {w}", err=True)
        click.echo(f"ok: {path} ({s.name}: {count(len(s.vms()), 'VM')} on {count(len(s.site.hosts), 'host')})")
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
