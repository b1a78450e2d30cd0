"""The recovery points a VM has in the cloud during a run.

A recovery point *captures* the VM at the moment its log was cut and is *available* once its transfer
has reached the cloud. :class:`RecoveryPoints` keeps a VM's available points oldest first in flat arrays
(no Python object per point): a thousand VMs with a day of 5-minute points each stay a few megabytes,
and adding a point or pruning the oldest does not allocate.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

__all__ = ["RecoveryPoints"]

Point = tuple[float, float, int]  # (captured_at s, available_at s, consistency code)


class RecoveryPoints:
    """Available recovery points of one VM, oldest first, as ``(captured_at, available_at, consistency)``."""

    __slots__ = ("_captured", "_available", "_consistency", "_first")

    def __init__(self) -> None:
        self._captured = array("d")
        self._available = array("d")
        self._consistency = array("b")
        self._first = 0  # index of the oldest point kept (earlier slots are pruned, compacted now and then)

    def add(self, captured: float, available: float, consistency: int) -> None:
        """Add the newest point (captured and available times in s)."""
        self._captured.append(captured)
        self._available.append(available)
        self._consistency.append(consistency)

    def prune(self, before: float) -> None:
        """Drop the points captured before ``before`` (s), except the newest, which is always kept."""
        captured = self._captured
        first, last = self._first, len(captured) - 1
        while first < last and captured[first] < before:
            first += 1
        self._first = first
        if first >= 256 and 2 * first >= len(captured):  # compact: keep the arrays short
            del captured[:first]
            del self._available[:first]
            del self._consistency[:first]
            self._first = 0

    def clear(self) -> None:
        """Forget every point."""
        del self._captured[:]
        del self._available[:]
        del self._consistency[:]
        self._first = 0

    def __len__(self) -> int:
        return len(self._captured) - self._first

    def __getitem__(self, i: int) -> Point:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("recovery point index out of range")
        j = self._first + i
        return self._captured[j], self._available[j], self._consistency[j]

    def __iter__(self) -> Iterator[Point]:
        first = self._first
        return zip(self._captured[first:], self._available[first:], self._consistency[first:], strict=True)

    def __repr__(self) -> str:
        return f"<RecoveryPoints {len(self)}>"
