"""The WAN link as a fluid, fair-share (processor-sharing) server.

Active transfers share the payload capacity in proportion to their weights (upload threads per VM):
transfer *i* is served at ``C(t) * w_i / sum(w)`` bytes/s. The link is modelled as a fluid: nothing
happens between events, and events occur only when a transfer starts, finishes or is paused, or when
the capacity changes (throttle schedule, outage). No packets, no time steps.

Virtual time (as in generalized processor sharing) makes each change O(log n): ``V`` counts the bytes
each unit of weight has received; it grows at ``C(t) / sum(w)``. A transfer of ``s`` bytes and weight
``w`` arriving at virtual time ``V_a`` finishes when ``V`` reaches its tag ``V_a + s / w``; the tags
live in a heap, so the next finish is the heap's smallest tag.

Floating point: a timer set for a finish *forces* ``V`` up to that tag, so the transfer completes
exactly once even when rounding leaves ``V`` a hair short, and ties (equal tags) complete together;
``V`` is reset to 0 whenever the link is idle, so round-off cannot accumulate across busy periods.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

import simpy

from drsim.recorder import Table
from drsim.schedule import CapacitySchedule

__all__ = ["FluidLink", "Transfer"]


class Transfer:
    """One transfer on the link. Sizes in wire bytes, times in seconds."""

    __slots__ = ("vm", "kind", "data_bytes", "size", "weight", "tag", "queued_at", "finished_at",
                 "on_done", "active", "point", "served_before", "seq", "cancelled")

    def __init__(self, vm: int, kind: int, data_bytes: float, size: float, weight: float,
                 queued_at: float, on_done: Callable[[Transfer], Any] | None, point: float):
        self.vm = vm
        self.kind = kind
        self.data_bytes = data_bytes  # bytes of VM data carried (before compression)
        self.size = size  # wire bytes
        self.weight = weight
        self.tag = 0.0
        self.queued_at = queued_at
        self.finished_at = math.nan
        self.on_done = on_done
        self.active = False
        self.point = point  # capture time of the recovery point it carries, NaN if none
        self.served_before = 0.0  # wire bytes served in earlier (paused) stints
        self.seq = 0  # heap entry that is current (older entries are stale)
        self.cancelled = False  # abandoned by its owner: never resumed

    def __lt__(self, other: Transfer) -> bool:  # heap ties: never compared in practice
        return id(self) < id(other)


class FluidLink:
    """A fair-share link in one direction.

    ``schedule`` gives the payload capacity in bytes/s over time; ``compression`` divides the data bytes
    of every transfer. ``table`` (optional) records ``time, capacity, active, backlog`` at each change.
    """

    def __init__(self, env: simpy.Environment, schedule: CapacitySchedule, compression: float = 1.0,
                 table: Table | None = None, direction: int = 0):
        self.env = env
        self.schedule = schedule
        self.compression = compression
        self.up = True
        self._cap = schedule.at(env.now)
        self._next_cap = schedule.next_change(env.now)
        self._v = 0.0  # virtual time: wire bytes served per unit weight in this busy period
        self._t = env.now  # time at which _v was last brought up to date
        self._heap: list[tuple[float, int, Transfer]] = []
        self._seq = 0
        self._n = 0  # active transfers
        self._wsum = 0.0  # sum of active weights
        self._tagw = 0.0  # sum of tag * weight over active transfers (backlog = _tagw - _v * _wsum)
        self._timer_at = math.inf  # time of the pending timer (inf if none)
        self._timer: simpy.Event | None = None
        self._table = table
        self._direction = direction
        if table is not None:
            self._rec_time = table.column("time")
            self._rec_dir = table.column("direction")
            self._rec_cap = table.column("capacity")
            self._rec_active = table.column("active")
            self._rec_backlog = table.column("backlog")
        self._schedule_timer(env.now)
        self._record(env.now)

    # --- queries -----------------------------------------------------------------------------------

    @property
    def capacity(self) -> float:
        """Payload capacity now, bytes/s (0 while the link is down)."""
        return self._cap if self.up else 0.0

    @property
    def active(self) -> int:
        """Number of transfers sharing the link now."""
        return self._n

    def backlog(self) -> float:
        """Wire bytes still to send for the active transfers."""
        self._advance()
        return max(self._tagw - self._v * self._wsum, 0.0)

    def active_transfers(self) -> list[Transfer]:
        """The transfers sharing the link now."""
        return [entry[2] for entry in self._heap if _current(entry)]

    # --- changes ------------------------------------------------------------------------------------

    def start(self, vm: int, kind: int, data_bytes: float, weight: float = 1.0,
              on_done: Callable[[Transfer], Any] | None = None, point: float = math.nan) -> Transfer:
        """Start a transfer of ``data_bytes`` (before compression). ``on_done(transfer)`` runs when it ends."""
        size = data_bytes / self.compression
        tr = Transfer(vm, kind, data_bytes, size, weight, self.env.now, on_done, point)
        self._activate(tr, size)
        return tr

    def pause(self, tr: Transfer) -> float:
        """Take ``tr`` off the link, keeping what was sent. Returns the wire bytes left to send."""
        if not tr.active:
            return 0.0
        self._advance()
        left = max((tr.tag - self._v) * tr.weight, 0.0)
        tr.active = False
        tr.served_before = tr.size - left
        self._remove(tr)
        self._after_change()
        return left

    def cancel(self, tr: Transfer) -> None:
        """Abandon a transfer: it leaves the link and is never resumed."""
        self.pause(tr)
        tr.cancelled = True

    def resume(self, tr: Transfer) -> None:
        """Put a paused transfer back on the link; it continues where it stopped."""
        if tr.active or tr.cancelled or not math.isnan(tr.finished_at):
            return
        self._activate(tr, tr.size - tr.served_before)

    def set_up(self, up: bool) -> None:
        """Bring the link down (capacity 0: transfers stall) or back up."""
        if up == self.up:
            return
        self._advance()
        self.up = up
        self._after_change()

    # --- internals ----------------------------------------------------------------------------------

    def _activate(self, tr: Transfer, left: float) -> None:
        now = self.env.now
        if self._n == 0:  # idle: start a fresh busy period
            self._v = 0.0
            self._tagw = 0.0
            self._wsum = 0.0
        elif now > self._t and self.up:
            self._v += (now - self._t) * self._cap / self._wsum
        self._t = now
        weight = tr.weight
        tag = self._v + left / weight
        tr.tag = tag
        tr.active = True
        self._seq += 1
        seq = tr.seq = self._seq
        heap = self._heap
        heapq.heappush(heap, (tag, seq, tr))
        self._n += 1
        self._wsum += weight
        self._tagw += tag * weight
        # Every other finish moves later (the share per weight shrinks), so a pending timer is still early
        # enough unless the new transfer is the one to finish first.
        if heap[0][2] is tr or self._timer_at == math.inf:
            self._schedule_timer(now)
        self._record(now)

    def _remove(self, tr: Transfer) -> None:
        self._n -= 1
        if self._n == 0:
            self._wsum = 0.0
            self._tagw = 0.0
            self._heap.clear()
        else:
            self._wsum -= tr.weight
            self._tagw -= tr.tag * tr.weight

    def _advance(self) -> None:
        now = self.env.now
        if now > self._t:
            if self._n and self.up:
                self._v += (now - self._t) * self._cap / self._wsum
            self._t = now

    def _after_change(self) -> None:
        now = self.env.now
        self._schedule_timer(now)
        self._record(now)

    def _record(self, now: float) -> None:
        """Record the link's state at ``now``; several changes at one instant keep the last state only."""
        if self._table is None:
            return
        backlog = self._tagw - self._v * self._wsum if self._n else 0.0
        if backlog < 0.0:
            backlog = 0.0
        cap = self._cap if self.up else 0.0
        times = self._rec_time
        if times and times[-1] == now and self._rec_dir[-1] == self._direction:
            self._rec_cap[-1] = cap
            self._rec_active[-1] = self._n
            self._rec_backlog[-1] = backlog
            return
        times.append(now)
        self._rec_dir.append(self._direction)
        self._rec_cap.append(cap)
        self._rec_active.append(self._n)
        self._rec_backlog.append(backlog)

    def _head(self) -> Transfer | None:
        heap = self._heap
        while heap and not _current(heap[0]):
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def _schedule_timer(self, now: float) -> None:
        """Make sure a timer is pending no later than the next finish or capacity change (``_v`` is current).

        A pending timer that is *earlier* than needed is kept: it wakes the link, finds nothing due and
        sets the next one. This way a burst of arrivals at one instant costs one timer, not one each.
        """
        at = self._next_cap
        if self._n and self.up and self._cap > 0.0:
            heap = self._heap
            while not _current(heap[0]):
                heapq.heappop(heap)
            lag = heap[0][0] - self._v
            finish = now + lag * self._wsum / self._cap if lag > 0.0 else now
            if finish < at:
                at = finish
        if at >= self._timer_at or at == math.inf:
            return  # the pending timer comes first (or at the same time), or nothing will happen
        self._timer_at = at
        timer = self.env.timeout(at - now)
        self._timer = timer
        timer.callbacks.append(self._on_timer)

    def _on_timer(self, event: simpy.Event) -> None:
        if event is not self._timer:
            return  # superseded by an earlier timer
        self._timer = None
        self._timer_at = math.inf
        now = self.env.now
        up = self.up
        if now > self._t:
            if self._n and up:
                self._v += (now - self._t) * self._cap / self._wsum
            self._t = now
        changed = False
        next_cap = self._next_cap
        if next_cap != math.inf and (now >= next_cap or _close(now, next_cap)):
            boundary = max(now, next_cap)  # the timer may land an ulp before the boundary
            self._cap = self.schedule.at(boundary)
            self._next_cap = self.schedule.next_change(boundary)
            changed = True
        done: list[Transfer] = []
        if self._n and up and self._cap > 0.0:
            heap = self._heap
            while not _current(heap[0]):
                heapq.heappop(heap)
            tag = heap[0][0]
            lag = (tag - self._v) * self._wsum / self._cap  # seconds until the head finishes
            if lag <= max(1e-12 * (now + lag), 1e-9):
                # the head is due: snap V to its tag (guards round-off) and complete every tie
                if self._v < tag:
                    self._v = tag
                limit = self._v + 1e-12 * max(abs(self._v), 1.0)
                while heap:
                    entry = heap[0]
                    tr = entry[2]
                    if tr.seq != entry[1] or not tr.active:
                        heapq.heappop(heap)  # stale
                        continue
                    if entry[0] > limit:
                        break
                    heapq.heappop(heap)
                    tr.active = False
                    tr.finished_at = now
                    self._n -= 1
                    self._wsum -= tr.weight
                    self._tagw -= entry[0] * tr.weight
                    done.append(tr)
                if self._n == 0:  # idle: clear round-off
                    self._wsum = 0.0
                    self._tagw = 0.0
                    heap.clear()
        self._schedule_timer(now)
        if done or changed:
            self._record(now)
        for tr in done:
            if tr.on_done is not None:
                tr.on_done(tr)


def _current(entry: tuple[float, int, Transfer]) -> bool:
    """A heap entry is current if its transfer is active and was not re-queued since."""
    tr = entry[2]
    return tr.active and tr.seq == entry[1]


def _close(a: float, b: float) -> bool:
    """Equal up to round-off of simulated times (1e-12 relative, 1 ns absolute)."""
    return abs(a - b) <= max(1e-12 * max(abs(a), abs(b)), 1e-9)
