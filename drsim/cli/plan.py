"""drsim plan: the bandwidth planner.

Imports the API of every stage (lazily, inside the commands, so that drsim starts fast) and :mod:`drsim.cli.common`.
"""

from __future__ import annotations

import sys

import click

from drsim.cli.common import EXIT_BAD_INPUT, EXIT_CANNOT_WRITE, FORCE_HINT, executor_for, fail, force_option, load, main
from drsim.scenario import units
from drsim.scenario.problems import ScenarioError


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

    s = load(scenario)
    too_large = None if force else plan_size_problem(s, replications)
    if too_large is not None:
        fail(f"error: {scenario}: {too_large}\n{FORCE_HINT}", EXIT_BAD_INPUT)
    executor, client = executor_for(workers, dask)
    progress = None if quiet else (lambda message: click.echo(message, err=True))
    interrupted = False
    try:
        table = plan(s, rpo=rpo, percentile=percentile, replications=replications, tolerance=tolerance,
                     executor=executor, seed=seed, criterion=criterion, window=window, progress=progress,
                     method=method)
    except (PlanError, ScenarioError) as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    except ExecutorFailed as exc:
        fail(f"error: the executor failed ({exc})", EXIT_CANNOT_WRITE)
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
            fail(f"error: cannot write the plan under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"\nresults: {folder}\nreport: {folder / 'report.html'}\nreport: {folder / 'report.md'}")


def _plan_deadline(scenario: str, deadline: str, tolerance: str, replications: int, workers: int | None,
                   dask: str | None, seed: int | None) -> None:
    """drsim plan --deadline: the upload that protects every VM in time (drsim.experiments.deadline)."""
    from drsim.experiments.deadline import deadline_bandwidth
    from drsim.experiments.executors import close_executor
    from drsim.experiments.planner_text import mbit

    s = load(scenario)
    try:
        limit, tol = units.parse_duration(deadline), units.parse_rate(tolerance)
    except ValueError as exc:
        fail(f"error: --deadline/--tolerance: {exc}", EXIT_BAD_INPUT)
    executor, client = executor_for(workers, dask)
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

    s = load(scenario)

    def split(text: str | None, parse, what: str) -> list:
        try:
            return [parse(x.strip()) for x in (text or "").split(",") if x.strip()]
        except ValueError as exc:
            fail(f"error: {what}: {exc}", EXIT_BAD_INPUT)

    ups = split(uploads, units.parse_rate, "--upload")
    ivs = split(intervals, units.parse_duration, "--interval")
    pols = split(policies, str, "--policy")
    target = split(rpo, units.parse_duration, "--rpo")
    try:
        sheet = load_price_sheet(prices, s.prices)
    except ScenarioError as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    executor, client = executor_for(workers, dask)
    progress = None if quiet else (lambda message: click.echo(message, err=True))
    try:
        table = compare_options(s, sheet, ups, ivs, pols, rpo=target[0] if target else None, percentile=percentile,
                                replications=replications, seed=seed, executor=executor, progress=progress)
    except ScenarioError as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    finally:
        close_executor(executor, client)
    click.echo(options_text(table))
    if figure:
        try:
            options_frontier(table).savefig(figure, dpi=110)
        except OSError as exc:
            fail(f"error: cannot write {figure}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"figure: {figure}")
