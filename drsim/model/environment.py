"""The SimPy environment that settles a deferring link: :class:`FluidEnvironment`.

Before each event it lets one fluid resource (a :class:`~drsim.model.link.FluidLink` created with
``defer=True``) complete, each at its own finish time, the transfers that finish before that event and
that nobody waits for, so they need no SimPy event of their own (see :meth:`FluidLink.settle
<drsim.model.link.FluidLink.settle>` and the link's module docstring). Times in seconds.

Imports nothing of drsim.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import simpy

__all__ = ["FluidEnvironment"]

INF = math.inf


class FluidEnvironment(simpy.Environment):
    """A SimPy environment that lets one fluid resource catch up before each event.

    Before processing the next event (at time ``t``), it calls the function registered with
    :meth:`before_events` with ``t``, so it can complete what happens up to ``t`` without events of its
    own (see :meth:`FluidLink.settle`). That function may schedule an event at a time up to ``t``; it is
    processed first.
    """

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self._settle: Callable[[float], None] | None = None

    def before_events(self, settle: Callable[[float], None]) -> None:
        """Call ``settle(t)`` before every event, with ``t`` the time of that event (inf if none is left)."""
        if self._settle is not None:
            raise ValueError("a FluidEnvironment settles one resource: another is registered already")
        self._settle = settle

    def step(self) -> None:
        if self._settle is not None:
            queue = self._queue
            self._settle(queue[0][0] if queue else INF)
        super().step()

