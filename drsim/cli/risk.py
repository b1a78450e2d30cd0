"""drsim risk: annual data loss, downtime and availability over years.

Imports the API of every stage (lazily, inside the commands, so that drsim starts fast) and :mod:`drsim.cli.common`.
"""

from __future__ import annotations

from pathlib import Path

import click

from drsim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_WRITE,
    fail,
    load,
    main,
    on_executor,
    progress_bar,
)
from drsim.scenario.checks import located_warnings
from drsim.scenario.problems import ScenarioError


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
@click.option("--prices", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="A price sheet (YAML) merged over the bundled one, to price the incidents; the scenario's prices: "
                   "section goes over it.")
@click.option("--out", "out", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which <scenario>/risk-<time>/ is created.")
@click.option("--no-save", is_flag=True, help="Print the figures only; write nothing.")
@click.option("--report", is_flag=True, help="Also write report.html and report.md (with the exceedance curve).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the results folder.")
def risk_command(scenario: str, years: int, replications: int, seed: int | None, method: str, probe_runs: int,
                 probe_weeks: int, workers: int | None, dask: str | None, prices: str | None, out: str,
                 no_save: bool, report: bool, quiet: bool) -> None:
    """Annual risk of SCENARIO over YEARS: data loss per year, the chance of a year with a loss above the RPO
    target, 1 hour and 1 day, downtime, availability (nines), failovers and the RTO met, per VM and for the site,
    with 95 % confidence intervals and an exceedance curve; and the expected annual cost of incidents (downtime
    and lost data at the price sheet's business figures)."""
    from drsim.experiments.risk import RiskError, risk
    from drsim.experiments.risk_output import risk_text, write_risk
    from drsim.scenario.prices import load_price_sheet

    s = load(scenario)
    try:
        sheet = load_price_sheet(prices, s.prices)
    except ScenarioError as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    for w in located_warnings(s):
        click.echo(f"warning: {w}", err=True)
    if report and no_save:
        click.echo("warning: --report is ignored with --no-save", err=True)
    bar = progress_bar("replications", quiet)
    try:
        with on_executor(workers, dask, bad=(RiskError, ScenarioError), failed="; nothing was written") as executor:
            result = risk(s, years=years, replications=replications, seed=seed, method=method, executor=executor,
                          probe_runs=probe_runs, probe_weeks=probe_weeks,
                          progress=bar.update_to if bar is not None else None, prices=sheet)
    finally:
        if bar is not None:
            bar.close()
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
        fail(f"error: cannot write results under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"\nresults: {folder}" if not quiet else str(folder))
    if report and not quiet:
        click.echo(f"report: {folder / 'report.html'}\nreport: {folder / 'report.md'}")
