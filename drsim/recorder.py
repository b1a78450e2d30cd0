"""Columnar recording of simulation events.

A :class:`Table` holds one ``array.array`` per column: appending a row costs a few machine words, with
no Python object per row, so a month of 1,000 VMs stays small in memory. Categorical columns (VM,
kind, outcome...) are stored as small integer codes against a shared list of labels and become
pandas categoricals when the table is turned into a DataFrame.

Hot code binds a column's ``append`` once (``add_time = table.column("time").append``) and calls it.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd

__all__ = ["Table", "Recorder"]

# array typecodes used for columns
FLOAT = "d"
INT = "q"
CODE = "h"  # categorical code (index into a label list)


class Table:
    """A growing table of typed columns."""

    def __init__(self, name: str, columns: dict[str, str], labels: dict[str, list[str]] | None = None):
        self.name = name
        self.columns: dict[str, array] = {c: array(t) for c, t in columns.items()}
        #: for categorical columns: the label of each code
        self.labels: dict[str, list[str]] = labels or {}

    def column(self, name: str) -> array:
        return self.columns[name]

    def append(self, *row: float | int) -> None:
        """Append one row (values in column order). Convenient, not the fastest path."""
        for col, value in zip(self.columns.values(), row, strict=True):
            col.append(value)

    def __len__(self) -> int:
        first = next(iter(self.columns.values()))
        return len(first)

    def arrays(self) -> dict[str, np.ndarray]:
        """Columns as numpy arrays (views of the buffers, no copy)."""
        out = {}
        for name, col in self.columns.items():
            out[name] = np.frombuffer(col, dtype=np.dtype(col.typecode)) if len(col) else np.empty(
                0, dtype=np.dtype(col.typecode))
        return out

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame; categorical columns get their labels."""
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
