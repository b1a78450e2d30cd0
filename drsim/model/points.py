"""The recovery points a VM has in the cloud during a run.

A recovery point *captures* the VM at the moment its log was cut and is *available* once its transfer
has reached the cloud. Points older than the retention are pruned, except the newest, which is always
kept. :class:`RecoveryPoints` keeps a VM's points oldest first in flat arrays (no Python object per
point), so a thousand VMs with a day of 5-minute points each stay a few megabytes.

Pruning is lazy: adding a point only appends it. The pruning horizon (the newest point's availability
time minus the retention) never moves back, so the points kept are always those captured at or after
the current horizon, plus the newest: queries skip the older ones (a binary search), and the arrays are
compacted now and then. The result is the same as pruning at every delivery.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator

__all__ = ["RecoveryPoints"]

Point = tuple[float, float, int]  # (captured_at s, available_at s, consistency code)


class RecoveryPoints:
    """Available recovery points of one VM, oldest first, as ``(captured_at, available_at, consistency)``.

    ``retention`` (s): points captured more than this before the newest point became available are gone.
    Points must be added in order of availability, with increasing capture times.
    """

    __slots__ = ("retention", "_captured", "_available", "_consistency", "_compact_at")

    def __init__(self, retention: float) -> None:
        self.retention = retention
        self._captured = array("d")
        self._available = array("d")
        self._consistency = array("b")
        self._compact_at = 64  # compact when the arrays reach this length

    def add(self, captured: float, available: float, consistency: int) -> None:
        """Add the newest point (captured and available times in s)."""
        self._captured.append(captured)
        self._available.append(available)
        self._consistency.append(consistency)
        if len(self._captured) >= self._compact_at:
            self._compact()

    def _first(self) -> int:
        """Index of the oldest point kept."""
        captured = self._captured
        last = len(captured) - 1
        if last <= 0:
            return 0
        return min(bisect_left(captured, self._available[last] - self.retention), last)

    def _compact(self) -> None:
        first = self._first()
        if first:
            del self._captured[:first]
            del self._available[:first]
            del self._consistency[:first]
        self._compact_at = 2 * len(self._captured) + 64  # amortised O(1) per point

    def clear(self) -> None:
        """Forget every point."""
        del self._captured[:]
        del self._available[:]
        del self._consistency[:]
        self._compact_at = 64

    def __len__(self) -> int:
        return len(self._captured) - self._first()

    def __getitem__(self, i: int) -> Point:
        first = self._first()
        n = len(self._captured) - first
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("recovery point index out of range")
        j = first + i
        return self._captured[j], self._available[j], self._consistency[j]

    def __iter__(self) -> Iterator[Point]:
        first = self._first()
        return zip(self._captured[first:], self._available[first:], self._consistency[first:], strict=True)

    def __repr__(self) -> str:
        return f"<RecoveryPoints {len(self)}>"
