"""How drsim recognises the folders it is writing and tells whether one is in use.

A folder drsim writes under a temporary name (``.incomplete-*`` beside a run, sweep or plan folder, ``.replication-
<k>-*`` beside a kept run) holds a marker file, ``.drsim-incomplete`` (JSON: the drsim version, the process id and
host, the time it started, the folder it becomes), from the moment it is made until just before it is renamed.
The writing process holds an exclusive lock on the marker (``flock``) while it writes: the lock goes with the
process, so a folder whose marker is not locked was left by a process that stopped (killed, crashed, power cut).
An experiment's streaming folder is locked the same way through its ``experiment.json``.

On systems without ``fcntl`` (Windows) nothing is locked and every folder counts as not in use (assumption: one
drsim at a time writes under an output folder there).

Imports, of drsim, only the version.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from drsim.version import __version__

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["MARKER", "hold_marker", "drop_marker", "read_marker", "lock", "release", "in_use"]

MARKER = ".drsim-incomplete"


def lock(handle: IO[Any]) -> bool:
    """Take an exclusive lock on the open file ``handle`` without waiting: False if another open file holds it.
    The lock lasts until the file is closed or the process ends, however it ends."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def release(handle: IO[Any]) -> None:
    """Release the lock taken with :func:`lock` and close ``handle``. Unlocking first matters: a process forked
    meanwhile (a pool worker) shares the open file, and would otherwise hold the lock until it exits."""
    if fcntl is not None and not handle.closed:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    handle.close()


def in_use(path: Path) -> bool:
    """Whether a running process holds the lock on the file ``path`` (False if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            return not lock(handle)
    except OSError:
        return False


def hold_marker(folder: Path, becomes: str) -> IO[str]:
    """Write drsim's marker into the new temporary ``folder`` (which becomes ``becomes``) and lock it; keep the
    returned file open while the folder is written, then call :func:`drop_marker`."""
    handle = open(folder / MARKER, "w", encoding="utf-8")  # noqa: SIM115 - held open on purpose
    lock(handle)
    handle.write(json.dumps({"drsim": __version__, "pid": os.getpid(), "host": platform.node(),
                             "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "becomes": becomes}))
    handle.flush()
    return handle


def drop_marker(folder: Path, handle: IO[str]) -> None:
    """Remove the marker of ``folder`` (just before it is renamed into place) and release its lock."""
    (folder / MARKER).unlink(missing_ok=True)
    release(handle)


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a temporary folder, or None if it has none (or it cannot be read)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
