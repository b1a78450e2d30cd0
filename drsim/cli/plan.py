"""drsim plan: the bandwidth planner.

Imports the API of every stage (lazily, inside the commands, so that drsim starts fast) and :mod:`drsim.cli.common`.
"""

from __future__ import annotations

import click

from drsim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_WRITE,
    FORCE_HINT,
    fail,
    force_option,
    load,
    main,
    on_executor,
)
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
              help="Stop when the bracket around the answer is this narrow, or --rel-tolerance of its upper end "
                   "when that is wider.")
@click.option("--rel-tolerance", default="1%", show_default=True, metavar="PERCENT",
              help="The bracket's width as a share of its upper end, used when wider than --tolerance; 0 for "
                   "--tolerance alone.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: one per core]; 1 runs in this process.")
@click.option("--dask", "dask", default=None, metavar="ADDRESS",
              help="Run the simulations on a Dask cluster, e.g. --dask tcp://scheduler:8786 (needs drsim[dask]).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Experiment seed [default: the scenario's].")
@click.option("--criterion", type=click.Choice(["upper", "mean"]), default="upper", show_default=True,
              help="Judge each bandwidth (or option) by the upper end of the 95 % confidence interval of the mean "
                   "over replications, or the mean.")
@click.option("--window", type=click.Choice(["steady", "protected"]), default="steady", show_default=True,
              help="Measure the RPO once every VM is protected, or over each VM's whole protected time.")
@click.option("--method", type=click.Choice(["fast", "full"]), default="fast", show_default=True,
              help="fast: steady state over two weeks, one replication far from the answer; full: every candidate "
                   "over the whole scenario, initial replication included.")
@click.option("--upload", "uploads", default=None, metavar="RATES",
              help="Options to compare, e.g. 10Mbit/s,20Mbit/s,50Mbit/s (priced by the sheet's uplink tiers).")
@click.option("--interval", "intervals", default=None, metavar="DURATIONS", help="Options to compare, e.g. 30s,5m.")
@click.option("--policy", "policies", default=None, metavar="NAMES", help="Options to compare, e.g. manual,automatic.")
@click.option("--prices", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="A price sheet merged over the bundled one (with --upload/--interval/--policy).")
@click.option("--deadline", default=None, metavar="DURATION",
              help="The upload at which every VM is protected within DURATION of the initial start (batches in the "
                   "order given), and a better batch order if there is one: instead of the bandwidth search, or "
                   "beside the options compared.")
@click.option("--incidents", type=click.Choice(["auto", "runs"]), default="auto", show_default=True,
              help="With options: the expected incident cost from the risk engine's annual figures where the option "
                   "has random failures and keeps up with its churn (auto), or from each option's runs scaled to a "
                   "year.")
@click.option("--figure", default=None, type=click.Path(dir_okay=False), metavar="FILE.png",
              help="With options: draw the cost/RPO frontier into FILE.png.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.option("--report", is_flag=True,
              help="Write the answer (plan.parquet, or options.parquet and/or deadline.parquet), metadata.json, "
                   "report.html and report.md into a new folder <out>/<scenario>/plan-<time>/.")
@click.option("--out", "out", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which <scenario>/plan-<time>/ is created (with --report).")
@force_option
def plan_command(scenario: str, rpo: str | None, percentile: float, replications: int, tolerance: str,
                 rel_tolerance: str, workers: int | None, dask: str | None, seed: int | None, criterion: str,
                 window: str, method: str, uploads: str | None, intervals: str | None, policies: str | None,
                 prices: str | None, deadline: str | None, incidents: str, figure: str | None, quiet: bool,
                 report: bool, out: str, force: bool) -> None:
    """Find the upload bandwidth that meets an RPO target for every VM of SCENARIO, by simulation; with
    --upload/--interval/--policy lists, compare those options by cost instead; with --deadline, the upload that
    protects every VM in time."""
    if uploads or intervals or policies or deadline is not None:
        _plan_decisions(scenario, rpo, percentile, replications, tolerance, rel_tolerance, workers, dask, seed,
                        criterion, uploads, intervals, policies, prices, deadline, incidents, figure, quiet, report,
                        out)
        return
    from drsim.experiments.bounds import plan_size_problem
    from drsim.experiments.planner import PlanError, plan
    from drsim.experiments.planner_text import plan_text

    s = load(scenario)
    too_large = None if force else plan_size_problem(s, replications)
    if too_large is not None:
        fail(f"error: {scenario}: {too_large}\n{FORCE_HINT}", EXIT_BAD_INPUT)
    progress = None if quiet else (lambda message: click.echo(message, err=True))
    with on_executor(workers, dask, bad=(PlanError, ScenarioError)) as executor:
        table = plan(s, rpo=rpo, percentile=percentile, replications=replications, tolerance=tolerance,
                     executor=executor, seed=seed, criterion=criterion, window=window, progress=progress,
                     method=method, rel_tolerance=rel_tolerance)
    click.echo(plan_text(table))
    if report:
        from drsim.views.plan_report import write_plan_folder

        try:
            folder = write_plan_folder(table, s, out)
        except OSError as exc:
            fail(f"error: cannot write the plan under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"\nresults: {folder}\nreport: {folder / 'report.html'}\nreport: {folder / 'report.md'}")


def _print_deadline(name: str, r: dict) -> None:
    from drsim.experiments.planner_text import mbit

    fmt = units.format_duration
    click.echo(f"{name}: every VM protected within {fmt(r['deadline_s'])} of the initial start from "
               f"{mbit(r['required_Bps'])} (not at {mbit(r['not_at_Bps'])}); batches as given: "
               + "; ".join(", ".join(b) for b in r["batches"]))
    for vm, t in r["protected_after_s"].items():
        click.echo(f"  {vm}: protected after {fmt(t)}")
    if r["suggested_batches"]:
        click.echo("suggested batch order (smallest first): " + "; ".join(", ".join(b) for b in r["suggested_batches"])
                   + f": mean time to protection {fmt(r['suggested_mean_wait_s'])} instead of {fmt(r['mean_wait_s'])}")


def _plan_decisions(scenario: str, rpo: str | None, percentile: float, replications: int, tolerance: str,
                    rel_tolerance: str, workers: int | None, dask: str | None, seed: int | None, criterion: str,
                    uploads: str | None, intervals: str | None, policies: str | None, prices: str | None,
                    deadline: str | None, incidents: str, figure: str | None, quiet: bool, report: bool,
                    out: str) -> None:
    """drsim plan with option lists (drsim.experiments.options) and/or --deadline (drsim.experiments.deadline)."""
    from drsim.experiments.deadline import deadline_bandwidth
    from drsim.experiments.options import compare_options
    from drsim.experiments.planner import PlanError, parse_tolerances
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
        limit = units.parse_duration(deadline) if deadline is not None else None
    except ValueError as exc:
        fail(f"error: --deadline: {exc}", EXIT_BAD_INPUT)
    try:
        tol, rel = parse_tolerances(tolerance, rel_tolerance)
    except PlanError as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    compare = bool(ups or ivs or pols)
    try:
        sheet = load_price_sheet(prices, s.prices) if compare else None
    except ScenarioError as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    progress = None if quiet else (lambda message: click.echo(message, err=True))
    table = result = None
    with on_executor(workers, dask, bad=(ScenarioError,)) as executor:
        if compare:
            table = compare_options(s, sheet, ups, ivs, pols, rpo=target[0] if target else None,
                                    percentile=percentile, replications=replications, seed=seed, executor=executor,
                                    progress=progress, criterion=criterion, incidents=incidents)
        if limit is not None:
            result = deadline_bandwidth(s, limit, tol, replications, seed, executor, rel)
    if table is not None:
        click.echo(options_text(table))
    if result is not None:
        if table is not None:
            click.echo("")
        _print_deadline(s.name, result)
    if figure and table is not None:
        try:
            options_frontier(table).savefig(figure, dpi=110)
        except OSError as exc:
            fail(f"error: cannot write {figure}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"figure: {figure}")
    if report:
        from drsim.views.decision_report import write_decision_folder

        try:
            folder = write_decision_folder(s, out, table, result)
        except OSError as exc:
            fail(f"error: cannot write the plan under {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"\nresults: {folder}\nreport: {folder / 'report.html'}\nreport: {folder / 'report.md'}")
