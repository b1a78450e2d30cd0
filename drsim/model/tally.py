"""Running statistics of a run, fed as events happen: a summary without keeping per-cycle rows.

A long run that keeps only its summary cannot afford the per-cycle tables (transfers, cycles, the RPO curve,
the link) that the summary is normally computed from. :class:`RunTally` keeps, per VM, what the summary needs
and nothing that grows with the number of cycles:

* :class:`RPOTally`: the RPO curve's linear pieces as they close (a piece ends when a recovery point arrives or
  the VM stops replicating on-premises; the RPO has slope 1 on a piece), reduced to running sums: protected time
  ``sum L``, ``sum r0 L`` and ``sum L^2`` (the exact time-weighted mean is ``(sum r0 L + sum L^2 / 2) / sum L``),
  the maximum, the time above the RPO target, and an exact *histogram of the ends*: for a grid of RPO values
  ``k h`` (``h`` the resolution, 1 s by default) the count and the sum of the piece tops minus those of the
  piece bottoms in each cell. From it the time spent above any grid value is exact (see
  :func:`drsim.results.metrics.histogram_level`), so a time percentile is found to within ``h``.
* counters fed by the recorder's tables (their ``observer``): cycles sent and missed, bytes sent over the
  upload (initial copies apart too), time in each lifecycle state and health level.

The pieces follow the rules of :class:`drsim.results.tables.Results`: the RPO is defined while the VM's shown
state is *protected*; a piece starts when such an interval starts (if a point is available) or when a point
arrives within it, and ends at the next arrival or the end of the interval. Memory per VM: the histogram, one
cell per ``h`` seconds up to the largest RPO seen.

Imports nothing else of drsim.
"""

from __future__ import annotations

import math
from array import array

__all__ = ["RPOTally", "RunTally", "DEFAULT_RESOLUTION"]

_NOTHING = b""
DEFAULT_RESOLUTION = 1.0  #: s: cell width of the RPO histogram (percentiles are exact to within it)


class RPOTally:
    """Running exact statistics of one VM's RPO curve (seconds)."""

    __slots__ = ("resolution", "target", "newest", "start", "length", "sum_r0l", "sum_l2", "max", "above",
                 "counts", "sums")

    def __init__(self, target: float, resolution: float = DEFAULT_RESOLUTION):
        self.resolution = resolution
        self.target = target  # s: the RPO objective (time above it is counted)
        self.newest = math.nan  # capture time of the newest available point
        self.start = math.nan  # start of the open piece (NaN: none open)
        self.length = 0.0  # protected time with a point, s
        self.sum_r0l = 0.0
        self.sum_l2 = 0.0
        self.max = -math.inf
        self.above = 0.0  # s spent with RPO above the target
        self.counts = array("d")  # per cell: tops minus bottoms
        self.sums = array("d")  # per cell: sum of tops minus sum of bottoms

    # --- events ---------------------------------------------------------------------------------------

    def point(self, at: float, captured: float, protected: bool) -> None:
        """A recovery point captured at ``captured`` became available at ``at``; ``protected``: the VM is in a
        protected interval."""
        if protected:
            if self.start == self.start:
                self._piece(self.start, at, self.newest)
            self.start = at
        self.newest = captured

    def begin(self, at: float) -> None:
        """A protected interval starts at ``at``."""
        if self.newest == self.newest:
            self.start = at

    def end(self, at: float) -> None:
        """The protected interval ends at ``at``."""
        if self.start == self.start:
            self._piece(self.start, at, self.newest)
            self.start = math.nan

    def _piece(self, t0: float, t1: float, c: float) -> None:
        if not t1 > t0:
            return
        r0 = t0 - c
        length = t1 - t0
        top = r0 + length
        self.length += length
        self.sum_r0l += r0 * length
        self.sum_l2 += length * length
        if top > self.max:
            self.max = top
        x = self.target
        if top > x:
            self.above += top - (r0 if r0 > x else x)
        h = self.resolution
        low, high = int(r0 / h), int(top / h)  # values are not negative: truncation is the floor
        counts, sums = self.counts, self.sums
        if high >= len(counts):
            grow = max(high + 1 - len(counts), len(counts) // 2, 64)
            counts.frombytes(bytes(8 * grow))
            sums.frombytes(bytes(8 * grow))
        counts[low] -= 1.0
        sums[low] -= r0
        counts[high] += 1.0
        sums[high] += top


class RunTally:
    """Everything the summary needs, kept as a run goes (one instance per run, ``n`` VMs).

    Its methods are the recorder tables' observers: :meth:`transfer` (``transfers``), :meth:`missed_tick`
    (``missed_ticks``), :meth:`state` (``states``), :meth:`health` (``health``); each takes the table's row and
    returns ``b""`` (the bytes a table that keeps nothing stores).
    ``states`` and ``health`` are the number of state and health codes.
    """

    def __init__(self, n: int, target: float, states: int, health: int, delta_kind: int, initial_kind: int,
                 resolution: float = DEFAULT_RESOLUTION):
        self.rpo = [RPOTally(target, resolution) for _ in range(n)]
        self.cycles_sent = [0] * n
        self.cycles_missed = [0] * n
        self.bytes_sent = [0.0] * n
        self.initial_bytes = [0.0] * n
        self.state_time = [[0.0] * states for _ in range(n)]
        self.health_time = [[0.0] * health for _ in range(n)]
        self.health_spells = [[0] * health for _ in range(n)]
        self._delta = delta_kind
        self._initial = initial_kind

    def observers(self) -> dict[str, object]:
        """The observer of each recorder table, by table name."""
        return {"transfers": self.transfer, "missed_ticks": self.missed_tick, "states": self.state,
                "health": self.health}

    def transfer(self, vm: int, kind: int, direction: int, nbytes: float, queued_at: float, finished_at: float,
                 point: float, consistency: int) -> bytes:
        if direction != 0:
            return _NOTHING  # replication counts the upload only
        if kind == self._delta:
            self.cycles_sent[vm] += 1
        if finished_at == finished_at:
            self.bytes_sent[vm] += nbytes
            if kind == self._initial:
                self.initial_bytes[vm] += nbytes
        return _NOTHING

    def missed_tick(self, vm: int, time: float) -> bytes:
        self.cycles_missed[vm] += 1
        return _NOTHING

    def state(self, vm: int, state: int, start: float, end: float) -> bytes:
        self.state_time[vm][state] += end - start
        return _NOTHING

    def health(self, vm: int, health: int, start: float, end: float) -> bytes:
        self.health_time[vm][health] += end - start
        self.health_spells[vm][health] += 1
        return _NOTHING
