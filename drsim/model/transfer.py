"""One transfer on a link: :class:`Transfer`, what it carries (VM data in bytes, the recovery point, if
any) and where it stands (its virtual finish tag, paused, finished or cancelled).

The :class:`~drsim.model.link.FluidLink` that carries it sets its state; its owner (a VM's replication, an
operation) reads it. Sizes in wire bytes, times in seconds.

Imports nothing of drsim.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["Transfer"]


class Transfer:
    """One transfer on the link. Sizes in wire bytes, times in seconds."""

    __slots__ = ("vm", "kind", "data_bytes", "size", "weight", "tag", "queued_at", "finished_at",
                 "on_done", "passive", "active", "point", "consistency", "served_before", "seq", "cancelled")

    def __init__(self, vm: int, kind: int, data_bytes: float, size: float, weight: float,
                 queued_at: float, on_done: Callable[[Transfer], Any] | None, point: float,
                 consistency: int = 0, passive: bool = False):
        self.vm = vm
        self.kind = kind
        self.data_bytes = data_bytes  # bytes of VM data carried (before compression)
        self.size = size  # wire bytes
        self.weight = weight
        self.tag = 0.0
        self.queued_at = queued_at
        self.finished_at = math.nan
        self.on_done = on_done
        self.passive = passive  # on_done may run after the finish instant (see drsim.model.link)
        self.active = False
        self.point = point  # capture time of the recovery point it carries, NaN if none
        self.consistency = consistency  # of that point (a code of drsim.model.site.CONSISTENCY; 0: none)
        self.served_before = 0.0  # wire bytes served in earlier (paused) stints
        self.seq = 0  # heap entry that is current (older entries are stale)
        self.cancelled = False  # abandoned by its owner: never resumed

