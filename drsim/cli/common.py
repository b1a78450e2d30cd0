"""What every drsim command shares: the command group (:func:`main`), exit codes, located failure messages, loading a
scenario, the --force option, the progress bar, the note on leftovers of stopped runs, the executor a
--workers/--dask option asks for (:func:`on_executor`: opened, closed, its failures as messages), and the Excel
workbook.

Imports the API of every stage (lazily, inside the commands, so that drsim starts fast).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from drsim import __version__, load_scenario
from drsim.model.estimate import TOO_LARGE, size_problems
from drsim.scenario.problems import ScenarioError

EXIT_BAD_INPUT = 2


EXIT_CANNOT_WRITE = 1


SCREEN_VMS = 12  # VMs in the terminal summary of a big run (the run folder's summary.txt has them all)


def fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def load(path: str, experiment: bool = False, force: bool = True):
    """The valid scenario at ``path``; without ``force``, also small enough to run (drsim.model.estimate)."""
    try:
        return load_scenario(path, experiment=experiment, checks=() if force else (size_problems,))
    except ScenarioError as exc:
        n = len(exc.problems)
        if n == 1 and not exc.problems[0].loc and exc.problems[0].line is None:  # not found, not a file...
            fail(f"error: {exc}", EXIT_BAD_INPUT)
        large = any(p.message.startswith(TOO_LARGE) for p in exc.problems)
        fail(f"error: {path} is not a valid scenario ({n} problem{'s' if n > 1 else ''}):\n{exc}" if not large else
              f"error: {exc}\n{FORCE_HINT}", EXIT_BAD_INPUT)


FORCE_HINT = "give --force to run it anyway"


force_option = click.option("--force", is_flag=True, help="Run even past the size limits (events, memory) drsim "
                            "estimates before running; see README 'Limits'.")


def progress_bar(unit: str, quiet: bool):
    """A terminal progress bar with rate and ETA (tqdm), or None when quiet or not writing to a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    class Bar(tqdm):
        def update_to(self, done: int, total: int) -> None:
            self.total = total
            self.update(done - self.n)

    return Bar(unit=f" {unit}", dynamic_ncols=True, file=sys.stderr)


def note_leftovers(out: str) -> None:
    """Tell the user what interrupted or killed runs left under ``out`` (not those still running)."""
    from drsim.experiments.leftovers import leftovers_note

    if (note := leftovers_note(out)) is not None:
        click.echo(note, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="drsim")
def main() -> None:
    """drsim: simulate disaster recovery of Hyper-V VMs replicating to the cloud."""


def write_workbook(folder: str | Path) -> None:
    from drsim.views.workbook import WorkbookError, write_workbook

    try:
        path = write_workbook(folder)
    except WorkbookError as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        fail(f"error: cannot write the workbook into {folder}: {exc.strerror or exc}", EXIT_CANNOT_WRITE)
    click.echo(f"workbook: {path}")


def executor_for(workers: int | None, dask: str | None):
    """The executor the options ask for (None: the default process pool) and the Dask client to close."""
    from concurrent.futures import ThreadPoolExecutor

    from drsim.experiments.errors import ExperimentError
    from drsim.experiments.executors import connect_dask, process_pool

    if dask is not None:
        if workers is not None:
            fail("error: --workers does not apply with --dask (the cluster's workers run the tasks)", EXIT_BAD_INPUT)
        try:
            client = connect_dask(dask)
        except ExperimentError as exc:
            fail(f"error: --dask {dask}: {exc}", EXIT_BAD_INPUT)
        return client, client
    if workers == 1:
        return ThreadPoolExecutor(max_workers=1), None
    if workers is not None:
        return process_pool(workers), None
    return None, None


@contextmanager
def on_executor(workers: int | None, dask: str | None, bad: tuple[type[BaseException], ...] = (),
                failed: str = "") -> Iterator[object]:
    """The executor ``--workers``/``--dask`` ask for, for the ``with`` block's work, closed on the way out.
    In the block, an exception of ``bad`` (the request's own errors) exits 2 with its message, a failed executor
    exits 1 (``failed`` is added to its message), and Ctrl-C exits 130 saying that nothing was written."""
    from drsim.experiments.executors import ExecutorFailed, close_executor

    executor, client = executor_for(workers, dask)
    interrupted = False
    try:
        yield executor
    except bad as exc:
        fail(f"error: {exc}", EXIT_BAD_INPUT)
    except ExecutorFailed as exc:
        fail(f"error: the executor failed ({exc}){failed}", EXIT_CANNOT_WRITE)
    except KeyboardInterrupt:
        interrupted = True
        click.echo("\ninterrupted: nothing was written", err=True)
        sys.exit(130)
    finally:
        close_executor(executor, client, interrupted)
