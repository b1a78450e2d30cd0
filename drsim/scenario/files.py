"""Reading the user's files safely (:func:`read_regular_file`): only a regular file, and only up to a size.

A path given as a scenario or a churn trace may name something that is not a file to read whole: ``/dev/zero``
never ends, a named pipe blocks until someone writes to it, a directory has no text. The file is opened without
blocking, checked to be a regular file through the open handle (so it cannot be swapped between check and
read) and read up to a limit; past it, nothing more is read.

Imports nothing of drsim.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FileRefused", "read_regular_file"]


class FileRefused(ValueError):
    """A file that is missing, not a regular file, too large or unreadable. ``str()`` says which (``"not found"``,
    ``"not a regular file: ..."``, ``"too large: ..."``) without the path: the caller names the file.
    ``missing`` is true when nothing is at the path."""

    def __init__(self, message: str, missing: bool = False):
        super().__init__(message)
        self.missing = missing


def read_regular_file(path: str | Path, limit: int, what: str, hint: str = "") -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them. ``what`` names the kind of file in
    messages (``"a scenario"``), ``hint`` gives a sense of the usual size. Raises :class:`FileRefused`."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise FileRefused("not found", missing=True) from None
    except IsADirectoryError:
        raise FileRefused(f"a folder, not {what}") from None
    except OSError as exc:
        raise FileRefused(f"cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise FileRefused(f"a folder, not {what}")
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"not a regular file: a device, a pipe or a socket cannot be read as {what}")
        if info.st_size > limit:
            raise FileRefused(_too_large(info.st_size, limit, what, hint))
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise FileRefused(f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:  # it grew while being read
        raise FileRefused(_too_large(len(data), limit, what, hint))
    return data


def _too_large(size: int, limit: int, what: str, hint: str) -> str:
    return f"too large: it holds {size:,} bytes; {what} holds at most {limit:,}" + (f" ({hint})" if hint else "")
