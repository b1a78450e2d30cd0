"""Where experiment tasks run: process pools, any ``concurrent.futures`` executor, or a Dask client.

:func:`resolve_executor` turns what the user gave (nothing, an executor, a ``distributed.Client``) into an
executor to submit to; :func:`process_pool` makes the default pool, whose workers leave Ctrl-C to the parent
and exit when it dies;
:func:`stop_pool` stops it at once after an interruption; :func:`wait_first` waits for results in a way Ctrl-C
can interrupt; :func:`executor_failure` tells a failure of the executor from a failure of the runs;
:func:`connect_dask` connects to a Dask scheduler.

Imports, of drsim, only the experiment stage's errors.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
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
           "executor_failure", "connect_dask", "close_executor"]


class ExecutorFailed(RuntimeError):
    """The executor could not run the tasks (a worker process died, the Dask scheduler was lost...). The runs
    that finished are kept in the experiment's folder, so the experiment can be resumed."""


def connect_dask(address: str, timeout: float = 10.0) -> Any:
    """A ``distributed.Client`` connected to the Dask scheduler at ``address`` (e.g. ``tcp://host:8786``), for
    the command line: the log messages of distributed and tornado below CRITICAL are silenced from then on. Raises
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
    # tornado, its event loop, logs the futures cancelled at that moment ("Exception in callback ...") too.
    for name in ["distributed", "tornado", *logging.root.manager.loggerDict]:
        if name.split(".")[0] in ("distributed", "tornado"):
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


_WATCH = 0.2  # s: how often a pool worker checks that its parent is alive


def _watch_parent(parent: int, period: float = _WATCH) -> None:
    """Worker thread: end this process as soon as its parent ``parent`` (a process id) is gone."""
    while True:
        time.sleep(period)
        if os.getppid() != parent:  # re-parented: the parent ended, however it ended
            os._exit(1)


def _worker_start(owner: int) -> None:
    """Pool worker initializer: ignore Ctrl-C (see :func:`process_pool`) and exit when the parent process dies.

    A worker waits for tasks on a pipe whose other end its siblings also hold, so when the parent is killed
    (SIGKILL, SIGTERM, a crash) it would wait for ever. A daemon thread polls the parent process id every
    0.2 s: when the worker has been re-parented, the parent is gone and the worker exits. The parent is the
    parent process at start-up (``owner``, the pool's process, with the fork and spawn start methods; the
    forkserver, which itself exits when ``owner`` does, with forkserver). POSIX only: on Windows a process is not
    re-parented, so this watch does not apply there (not tested on Windows)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.name != "posix":
        return
    parent = os.getppid()
    if parent != owner:
        try:
            os.kill(owner, 0)
        except ProcessLookupError:  # the owner died before this worker started
            os._exit(1)
        except OSError:
            pass
    threading.Thread(target=_watch_parent, args=(parent,), name="drsim-watch-parent", daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes whose workers ignore Ctrl-C (SIGINT) and exit when the parent dies.

    A terminal sends Ctrl-C to every process of the command. A worker interrupted while it holds the pool's
    queue leaves the pool unable to stop (the command hangs); with the workers deaf to it, the parent alone
    is interrupted, and it cancels the queued tasks and stops the workers (see :func:`stop_pool`). A parent
    killed outright cannot stop its workers: each watches its parent and exits within a fraction of a second
    of its death (see :func:`_worker_start`)."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_worker_start, initargs=(os.getpid(),))


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


def close_executor(executor: Executor | None, client: Any = None, interrupted: bool = False) -> None:
    """Close what the command line opened: the Dask ``client`` if any, else the ``executor`` (at once with
    :func:`stop_pool` after an interruption)."""
    if client is not None:
        client.close()
    elif executor is not None:
        if interrupted:
            stop_pool(executor)
        else:
            executor.shutdown(cancel_futures=True)


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
