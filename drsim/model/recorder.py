"""Compact recording of simulation events.

A :class:`Table` packs its rows one after another into a single ``bytearray`` with a fixed binary layout
(``struct``), and reads them back as numpy columns through a matching structured dtype. Recording a row
costs two C calls and no Python object is kept per row, so a month of 1,000 VMs stays small in memory
and cheap to record. Categorical columns (VM, kind, outcome...) are stored as small integer codes
against a list of labels and become pandas categoricals when the table is turned into a DataFrame.

Hot code binds the two calls once and packs a row in column order::

    extend, pack = table.buffer.extend, table.pack
    extend(pack(vm, time, nbytes))

Elsewhere ``table.append(vm, time, nbytes)`` does the same.

A table need not keep its rows: with ``keep=False`` its buffer is a :class:`Sink` that drops them (long runs
that want only the summary stay small in memory), and an ``observer`` sees every row as it is recorded (the
running statistics of :mod:`drsim.model.tally` are fed this way). The hot code above works unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

__all__ = ["Table", "Recorder", "Sink", "FLOAT", "INT", "COUNT", "CODE"]

# column types: struct format characters (standard sizes, native byte order, no padding)
FLOAT = "d"  # 8-byte float
INT = "q"  # 8-byte signed integer
COUNT = "i"  # 4-byte signed integer (counts that stay small, such as transfers on a link)
CODE = "h"  # 2-byte categorical code (index into a label list)


def _numpy_type(code: str) -> np.dtype:
    size = struct.calcsize("=" + code)
    kind = "f" if code in "efd" else ("u" if code.isupper() else "i")
    return np.dtype(f"={kind}{size}")


class Sink:
    """A buffer that keeps nothing: the rows of a table that is not kept are dropped as they come."""

    __slots__ = ()

    def extend(self, data: bytes) -> None:
        pass

    def __iadd__(self, data: bytes) -> Sink:
        return self

    def __setitem__(self, index: object, data: bytes) -> None:
        pass

    def __len__(self) -> int:
        return 0


_NOTHING = b""


def _drop(*row: float | int) -> bytes:
    return _NOTHING


class Table:
    """A growing table of typed columns, stored row by row.

    ``keep=False``: rows are dropped (the table stays empty); ``observer(*row)``: called with every row; it
    returns ``b""`` (then it serves as the ``pack`` of a table that keeps nothing).
    """

    def __init__(self, name: str, columns: dict[str, str], labels: dict[str, list[str]] | None = None,
                 keep: bool = True, observer: Callable[..., object] | None = None):
        self.name = name
        self.dtypes: dict[str, str] = dict(columns)
        layout = struct.Struct("=" + "".join(columns.values()))
        #: whether rows are kept
        self.kept = keep
        #: the rows, packed (a :class:`Sink` when they are not kept)
        self.buffer: bytearray | Sink = bytearray() if keep else Sink()
        #: ``pack(v1, v2, ...)``: the bytes of one row (values in column order)
        self.pack = _packer(layout.pack if keep else _drop, observer, keep)
        #: bytes per row
        self.row_size = layout.size
        self._dtype = np.dtype([(c, _numpy_type(t)) for c, t in columns.items()])
        #: for categorical columns: the label of each code
        self.labels: dict[str, list[str]] = labels or {}

    def append(self, *row: float | int) -> None:
        """Append one row (values in column order)."""
        self.buffer += self.pack(*row)

    def __len__(self) -> int:
        return len(self.buffer) // self.row_size

    def records(self) -> np.ndarray:
        """The rows as a numpy structured array: a read-only view of the buffer, no copy. While a view is
        alive the table cannot grow (a ``bytearray`` refuses to resize an exported buffer): read tables
        after the run. A table that does not keep its rows gives no rows."""
        if not self.kept:
            return np.empty(0, dtype=self._dtype)
        records = np.frombuffer(self.buffer, dtype=self._dtype)
        records.flags.writeable = False
        return records

    def arrays(self) -> dict[str, np.ndarray]:
        """Columns as numpy arrays (read-only views of the buffer, see :meth:`records`)."""
        rec = self.records()
        return {name: rec[name] for name in self.dtypes}

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame (its own copy of the data); categorical columns get their labels."""
        data: dict[str, object] = {}
        for name, values in self.arrays().items():
            if name in self.labels:
                data[name] = pd.Categorical.from_codes(values.astype(np.int16), categories=self.labels[name])
            else:
                data[name] = values.copy()
        return pd.DataFrame(data)


def _packer(pack: Callable[..., bytes], observer: Callable[..., object] | None, keep: bool) -> Callable[..., bytes]:
    if observer is None:
        return pack
    if not keep:
        return observer  # type: ignore[return-value]  # an observer returns b"" (see Table)

    def observed(*row: float | int) -> bytes:
        observer(*row)
        return pack(*row)

    return observed


class Recorder:
    """All tables of one run, by name. ``keep``: the names of the tables that keep their rows (None: all);
    ``observers``: a function per table name that sees every row of that table."""

    def __init__(self, keep: Iterable[str] | None = None,
                 observers: dict[str, Callable[..., object]] | None = None) -> None:
        self.tables: dict[str, Table] = {}
        self.keep = None if keep is None else frozenset(keep)
        self.observers = dict(observers or {})

    def table(self, name: str, columns: dict[str, str], labels: dict[str, list[str]] | None = None) -> Table:
        if name in self.tables:
            raise ValueError(f"table {name!r} exists")
        t = Table(name, columns, labels, self.keep is None or name in self.keep, self.observers.get(name))
        self.tables[name] = t
        return t

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]
