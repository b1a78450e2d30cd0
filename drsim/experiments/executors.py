"""Where experiment tasks run: process pools, any ``concurrent.futures`` executor, or a Dask client.

:func:`resolve_executor` turns what the user gave (nothing, an executor, a ``distributed.Client``) into an
executor to submit to; :func:`process_pool` makes the default pool, whose workers leave Ctrl-C to the parent;
:func:`stop_pool` stops it at once after an interruption; :func:`wait_first` waits for results in a way Ctrl-C
can interrupt; :func:`executor_failure` tells a failure of the executor from a failure of the runs;
:func:`connect_dask` connects to a Dask scheduler.

Imports, of drsim, only the experiment stage's errors.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterable
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    CancelledError,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from typing import Any

from drsim.experiments.errors import ExperimentError

__all__ = ["ExecutorFailed", "resolve_executor", "process_pool", "stop_pool", "shutdown", "wait_first",
           "executor_failure", "connect_dask"]


class ExecutorFailed(RuntimeError):
    """The executor could not run the tasks (a worker process died, the Dask scheduler was lost...). The runs
    that finished are kept in the experiment's folder, so the experiment can be resumed."""


def connect_dask(address: str, timeout: float = 10.0) -> Any:
    """A ``distributed.Client`` connected to the Dask scheduler at ``address`` (e.g. ``tcp://host:8786``), for
    the command line: distributed's own log messages below CRITICAL are silenced from then on. Raises
    :class:`~drsim.experiments.errors.ExperimentError` when ``distributed`` is not installed or the scheduler
    cannot be reached within ``timeout`` seconds."""
    try:
        from distributed import Client
    except ImportError:
        raise ExperimentError("running on Dask needs the 'distributed' package: pip install 'drsim[dask]'") from None
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ExperimentError(f"cannot reach the Dask scheduler at {address}: {type(exc).__name__}: "
                              f"{str(exc).strip() or 'no answer'} (is it running, and is the address "
                              "tcp://HOST:PORT?)") from None
    # When the scheduler goes away, distributed logs its own tracebacks (lost connections, failed reconnects)
    # around drsim's message, which already says what failed and how to resume: keep only its critical messages.
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return client


def _is_dask_client(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "distributed" and hasattr(obj, "get_executor")


def _dask_workers(client: Any) -> int:
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:
        return 1


_POLL = 0.25  # s: how often a blocked wait for results wakes up


def wait_first(futures: Iterable[Future]) -> set[Future]:
    """The futures that are done, waiting until at least one is. The wait wakes up every few tenths of a second:
    a signal such as Ctrl-C is handled only when the main thread runs, and a pool's own threads may take it."""
    while True:
        finished, _ = wait(futures, timeout=_POLL, return_when=FIRST_COMPLETED)
        if finished:
            return finished


def _leave_ctrl_c_to_the_parent() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes whose workers ignore Ctrl-C (SIGINT).

    A terminal sends Ctrl-C to every process of the command. A worker interrupted while it holds the pool's
    queue leaves the pool unable to stop (the command hangs); with the workers deaf to it, the parent alone
    is interrupted, and it cancels the queued tasks and stops the workers (see :func:`stop_pool`)."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_leave_ctrl_c_to_the_parent)


def stop_pool(pool: Executor) -> None:
    """Stop at once after an interruption: cancel what is queued and end the workers of a process pool
    (what they were computing is lost; what was written is kept)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # ProcessPoolExecutor's; gone after shutdown
    shutdown(pool, cancel=True)
    for process in workers:
        if process.is_alive():
            process.terminate()


def resolve_executor(executor: Any) -> tuple[Executor, int, bool, str]:
    """(the executor to submit to, its number of workers, whether it is ours to shut down, its name). A Dask
    ``distributed.Client`` is used through its ``concurrent.futures`` interface (``get_executor``)."""
    if executor is None:
        n = os.cpu_count() or 1
        return process_pool(n), n, True, "ProcessPoolExecutor"
    if _is_dask_client(executor):
        address = getattr(getattr(executor, "scheduler", None), "address", None) or "?"
        return executor.get_executor(pure=False), _dask_workers(executor), True, f"dask.distributed ({address})"
    client = getattr(executor, "_client", None)
    if client is not None and _is_dask_client(client):
        return executor, _dask_workers(client), False, f"dask.distributed ({client.scheduler.address})"
    n = getattr(executor, "_max_workers", None)
    return executor, n if isinstance(n, int) and n > 0 else (os.cpu_count() or 1), False, type(executor).__name__


def shutdown(pool: Executor, cancel: bool) -> None:
    """Shut ``pool`` down: wait for its tasks, or with ``cancel`` cancel what is queued and do not wait."""
    try:
        pool.shutdown(wait=not cancel, cancel_futures=cancel)
    except TypeError:  # executors without cancel_futures (Dask's): shutdown(wait=False) cancels
        pool.shutdown(wait=not cancel)


_EXECUTOR_ERRORS = ("KilledWorker", "CommClosedError", "FutureCancelledError", "CancelledError")


def executor_failure(exc: BaseException) -> bool:
    """Whether a task failed because the executor did (worker lost, scheduler gone), not because of its runs."""
    return isinstance(exc, BrokenExecutor | CancelledError | OSError | TimeoutError) \
        or type(exc).__name__ in _EXECUTOR_ERRORS
