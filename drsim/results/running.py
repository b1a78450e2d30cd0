"""Which tables a run keeps, and its summary from running statistics when the per-cycle rows are gone.

``simulate(scenario, tables=("summary", "incidents"))`` keeps only the tables asked for: the model's recorder
tables that none of them needs drop their rows (:class:`drsim.model.recorder.Sink`), so memory no longer grows
with the number of cycles. The summary (always kept) then comes from the run's
:class:`~drsim.model.tally.RunTally`: the RPO statistics from running sums and the exact histogram of piece ends
(mean, maximum and share over the target equal the table-based values to rounding; percentiles are within the
histogram's resolution, 1 s by default), cycle and byte counts, and time per state and health level.

Imports :mod:`drsim.model` and :mod:`drsim.results.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from drsim.model.codes import HEALTH
from drsim.model.tally import RunTally
from drsim.results.metrics import RPOStats, histogram_stats

__all__ = ["NEEDS", "ALWAYS", "recorder_tables", "tally_rpo_stats", "kept_tables", "tally_time", "tally_health"]

#: the recorder tables each result table is built from
NEEDS: dict[str, tuple[str, ...]] = {
    "summary": (), "incidents": (), "operations": (), "transfers": ("transfers",), "recovery_points": ("transfers",),
    "cycles": ("transfers", "missed_ticks"), "states": ("states",), "health": ("health",),
    "rpo": ("transfers", "states"), "link": ("link",),
}
ALWAYS = ("summary",)  #: kept whatever is asked
_TABLE_SUMMARY = frozenset({"transfers", "missed_ticks", "states", "health"})  # what the table-based summary reads


def recorder_tables(tables: Iterable[str] | None) -> tuple[frozenset[str] | None, bool, tuple[str, ...]]:
    """For the result ``tables`` asked for (None: all): the recorder tables to keep (None: all), whether a
    running summary is needed (some table the summary is built from is dropped), and the result tables kept (in
    the order of :data:`NEEDS`). Raises ValueError for an unknown table name."""
    if tables is None:
        return None, False, tuple(NEEDS)
    asked = set(tables) | set(ALWAYS)
    unknown = sorted(asked - set(NEEDS))
    if unknown:
        raise ValueError(f"unknown table {unknown[0]!r}; the tables are {', '.join(NEEDS)}")
    # the states and health changes are always kept: few rows (one per change, not per cycle), and the summary's
    # downtime and worst health read them
    keep = frozenset(r for t in asked for r in NEEDS[t]) | {"states", "health"}
    return keep, not keep >= _TABLE_SUMMARY, tuple(t for t in NEEDS if t in asked)


def kept_tables(keep: frozenset[str] | None) -> tuple[str, ...]:
    """The result tables a run can give when its recorder kept ``keep`` (None: all)."""
    return tuple(t for t, needs in NEEDS.items() if keep is None or set(needs) <= keep)


def tally_rpo_stats(tally: RunTally, vms: Sequence[int]) -> RPOStats:
    """Time-weighted RPO statistics of the VMs ``vms`` pooled (one VM: its own), from the running sums."""
    parts = [tally.rpo[i] for i in vms]
    if not parts:
        return RPOStats(np.nan, np.nan, np.nan, np.nan, 0.0)
    size = max(len(t.counts) for t in parts)
    counts, sums = np.zeros(size), np.zeros(size)
    for t in parts:
        n = len(t.counts)
        counts[:n] += np.frombuffer(t.counts, dtype=float)
        sums[:n] += np.frombuffer(t.sums, dtype=float)
    return histogram_stats(sum(t.length for t in parts), sum(t.sum_r0l for t in parts),
                           sum(t.sum_l2 for t in parts), max(t.max for t in parts), sum(t.above for t in parts),
                           counts, sums, parts[0].resolution)


def tally_time(per_vm: list[list[float]], names: Sequence[str], codes: Iterable[int]) -> pd.Series:
    """Seconds each VM spent in the states (or health levels) ``codes``, from a tally's per-VM times."""
    codes = list(codes)
    return pd.Series([sum(row[c] for c in codes) for row in per_vm], index=pd.Index(list(names), name="vm"),
                     dtype=float)


def tally_health(tally: RunTally, names: Sequence[str]) -> pd.DataFrame:
    """Per VM: seconds in warning and critical health and the number of spells of each."""
    w, c = HEALTH.index("warning"), HEALTH.index("critical")
    return pd.DataFrame({"warning_s": tally_time(tally.health_time, names, [w]),
                         "critical_s": tally_time(tally.health_time, names, [c]),
                         "warnings": [t[w] for t in tally.health_spells],
                         "criticals": [t[c] for t in tally.health_spells]}, index=pd.Index(list(names), name="vm"))
