"""The interval ticker: :class:`Ticker` ticks every replica of one interval length with one SimPy timer.

Imports nothing of drsim at run time (the replica for hints).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import simpy

if TYPE_CHECKING:
    from drsim.model.replication import VMReplica

__all__ = ["Ticker"]


class Ticker:
    """Ticks every member ``interval`` seconds after it joined, then every ``interval`` seconds.

    All members share one interval, so the next ticks, kept in a queue, are always in time order: members
    that tick (or join) at t next tick at t + interval, no earlier than any tick already queued. The queue
    holds groups: members due at the same instant (VMs whose initial replications ended together) tick in
    one event, in the order they joined. One timer waits for the head group; there is no SimPy event per
    member waiting, so the event queue stays short however many VMs replicate.
    """

    __slots__ = ("env", "interval", "_queue")

    def __init__(self, env: simpy.Environment, interval: float):
        self.env = env
        self.interval = interval
        self._queue: deque[tuple[float, list[VMReplica]]] = deque()  # (next tick time s, members), in time order

    def join(self, replica: VMReplica) -> None:
        """Tick ``replica`` from one interval after now."""
        idle = not self._queue
        self._add(self.env.now + self.interval, [replica])
        if idle:
            self._wait()

    def _add(self, at: float, members: list[VMReplica]) -> None:
        queue = self._queue
        if queue and queue[-1][0] == at:
            queue[-1][1].extend(members)
        else:
            queue.append((at, members))

    def _wait(self) -> None:
        """Set the timer for the head group."""
        self.env.timeout(self._queue[0][0] - self.env.now).callbacks.append(self._fire)

    def _fire(self, event: simpy.Event) -> None:
        now = self.env.now
        due, members = self._queue.popleft()
        for r in members:
            r._tick(now)
        self._add(due + self.interval, members)
        self._wait()
