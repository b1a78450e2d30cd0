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
"""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd

__all__ = ["Table", "Recorder", "FLOAT", "INT", "COUNT", "CODE"]

# column types: struct format characters (standard sizes, native byte order, no padding)
FLOAT = "d"  # 8-byte float
INT = "q"  # 8-byte signed integer
COUNT = "i"  # 4-byte signed integer (counts that stay small, such as transfers on a link)
CODE = "h"  # 2-byte categorical code (index into a label list)


def _numpy_type(code: str) -> np.dtype:
    size = struct.calcsize("=" + code)
    kind = "f" if code in "efd" else ("u" if code.isupper() else "i")
    return np.dtype(f"={kind}{size}")


class Table:
    """A growing table of typed columns, stored row by row."""

    def __init__(self, name: str, columns: dict[str, str], labels: dict[str, list[str]] | None = None):
        self.name = name
        self.dtypes: dict[str, str] = dict(columns)
        layout = struct.Struct("=" + "".join(columns.values()))
        #: the rows, packed
        self.buffer = bytearray()
        #: ``pack(v1, v2, ...)``: the bytes of one row (values in column order)
        self.pack = layout.pack
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
        after the run."""
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


class Recorder:
    """All tables of one run, by name."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}

    def table(self, name: str, columns: dict[str, str], labels: dict[str, list[str]] | None = None) -> Table:
        if name in self.tables:
            raise ValueError(f"table {name!r} exists")
        t = Table(name, columns, labels)
        self.tables[name] = t
        return t

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]
