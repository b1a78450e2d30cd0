"""drsim init and drsim trace: a scenario from the site's inventory, and churn traces from counter logs.

Imports the API of every stage (lazily, inside the commands, so that drsim starts fast) and :mod:`drsim.cli.common`.
"""

from __future__ import annotations

from pathlib import Path

import click

from drsim.cli.common import EXIT_BAD_INPUT, EXIT_CANNOT_WRITE, fail, main
from drsim.scenario.problems import ScenarioError


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
        fail(f"error: {out} exists: give another file with -o, or --force to replace it", EXIT_BAD_INPUT)
    try:
        inv = read_inventory(inventory)
        logs = [read_counter_log(c, timezone) for c in counters]
    except (InventoryError, CounterLogError) as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        made = scaffold_scenario(inv, out, name, logs, timezone, duration)
        atomic_write(out, lambda tmp: tmp.write_text(made.text, encoding="utf-8"))
    except ScenarioError as exc:
        fail(f"error: the scenario made from {inventory} is not valid:\n{exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        fail(f"error: cannot write {out}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
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
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    if seconds["step"] is not None and seconds["step"] <= 0:
        fail("error: --step must be above 0", EXIT_BAD_INPUT)
    if output is not None and Path(output).exists() and not force:
        fail(f"error: {output} exists: give another file with -o, or --force to replace it", EXIT_BAD_INPUT)
    try:
        if not columns:
            click.echo(log_text(read_counter_log(log, timezone)))
            return
        made = counter_trace(log, columns, seconds["step"], rewrite, seconds["max_gap"], timezone)
    except CounterLogError as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    click.echo(trace_text(made, log, columns))
    if output is not None:
        try:
            atomic_write(Path(output), lambda tmp: write_trace_csv(made, str(tmp)))
        except OSError as exc:
            fail(f"error: cannot write {output}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
        click.echo(f"wrote {output} (timestamp in seconds from {made.first}, bytes per step)")
