"""The WAN link as a fluid, fair-share (processor-sharing) server.

Active transfers share the payload capacity in proportion to their weights (upload threads per VM):
transfer *i* is served at ``C(t) * w_i / sum(w)`` bytes/s. The link is modelled as a fluid: nothing
happens between changes, and the link does work only when a transfer starts, finishes or is paused, or
when the capacity changes (throttle schedule, outage). No packets, no time steps.

Virtual time (as in generalized processor sharing) makes each change O(log n): ``V`` counts the bytes
each unit of weight has received; it grows at ``C(t) / sum(w)``. A transfer of ``s`` bytes and weight
``w`` arriving at virtual time ``V_a`` finishes when ``V`` reaches its tag ``V_a + s / w``; the tags
live in a heap, so the next finish is the heap's smallest tag, and its time follows from the capacity
and the active weights.

**Finishes without events.** Most finishes only update bookkeeping (a delta's recovery point becomes
available). A transfer started with ``passive=True`` promises that its ``on_done`` callback does not
interact with SimPy (it schedules, triggers and waits for nothing), so the callback need not run at the
finish instant. A link created with ``defer=True`` in a :class:`FluidEnvironment`, which calls
:meth:`FluidLink.settle` before every event, completes passive transfers in finish order, each at its exact
finish time (``finished_at``, which the callback reads instead of ``env.now``), before any event at that
time or later is processed. Everything that runs in the simulation runs inside an event, so it sees the
same state as if each finish had been an event of its own, without the cost of one SimPy event per
transfer. A passive finish at the same instant as an event counts as before it. Other transfers (someone
waits for them) are events: a timer at their finish, ordered with other events at that instant as SimPy
orders them. Such a transfer behind passive ones gets its timer when settle() reaches it, which is never
late, as settle() runs before every event. One link per environment may defer (settling two links one
after the other could let the first run past a timer the second sets); others time every transfer.

Floating point: completing a transfer *forces* ``V`` up to its tag, so it completes exactly once even
when rounding leaves ``V`` a hair short, and ties (equal tags) complete together; ``V`` is reset to 0
whenever the link is idle, so round-off cannot accumulate across busy periods.

Recording: the link writes one ``transfers`` row per transfer when it leaves the link for good (finished
or cancelled; :meth:`FluidLink.close` writes those still open at the end of the run) and one ``link``
row per instant at which its state changed.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

import simpy

from drsim.model.environment import FluidEnvironment
from drsim.model.recorder import Table
from drsim.model.schedule import CapacitySchedule
from drsim.model.transfer import Transfer

__all__ = ["FluidLink"]

INF = math.inf


class FluidLink:
    """A fair-share link in one direction.

    ``schedule`` gives the payload capacity in bytes/s over time; ``compression`` divides the data bytes
    of every transfer. ``table`` (optional) records ``time, direction, capacity, active, backlog`` at each
    change; ``transfers`` (optional) records ``vm, kind, direction, bytes, queued_at, finished_at, point,
    consistency`` for every transfer. ``direction`` is the code written in both. ``defer``: complete passive
    transfers without events (``env`` must be a :class:`FluidEnvironment`; see the module docstring).
    """

    def __init__(self, env: simpy.Environment, schedule: CapacitySchedule, compression: float = 1.0,
                 table: Table | None = None, direction: int = 0, transfers: Table | None = None,
                 defer: bool = False):
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
        self._timer_at = INF  # time of the pending timer (inf if none)
        self._timer: simpy.Event | None = None
        self._defer = defer  # passive finishes complete in settle()
        if defer:
            if not isinstance(env, FluidEnvironment):
                raise TypeError("a link that defers finishes needs a FluidEnvironment")
            env.before_events(self.settle)
        self._direction = direction
        self._table = table
        if table is not None:
            self._rec_extend, self._rec_pack, self._rec_buffer = table.buffer.extend, table.pack, table.buffer
        self._rec_at = math.nan  # time of this link's last row in the link table
        self._rec_end = -1  # length of the table's buffer just after that row
        self._dirty = False  # the state changed at _t and its row is not written yet (settle writes it)
        self._transfers = transfers
        if transfers is not None:
            self._tr_extend, self._tr_pack = transfers.buffer.extend, transfers.pack
        self._held: list[Transfer] = []  # paused transfers (not cancelled): still open
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
              on_done: Callable[[Transfer], Any] | None = None, point: float = math.nan,
              consistency: int = 0, passive: bool = False) -> Transfer:
        """Start a transfer of ``data_bytes`` (before compression) for VM code ``vm``.

        ``on_done(transfer)`` runs when it ends; with ``passive=True`` it promises not to interact with
        SimPy and may run later than the finish (see the module docstring): it must read the finish time
        from ``transfer.finished_at``. ``point`` and ``consistency`` describe the recovery point the
        transfer carries, if any (they are only recorded).
        """
        size = data_bytes / self.compression
        tr = Transfer(vm, kind, data_bytes, size, weight, self.env.now, on_done, point, consistency,
                      passive and self._defer)
        self._activate(tr, size)
        return tr

    def make_urgent(self, tr: Transfer) -> None:
        """From now on, ``tr``'s ``on_done`` runs at its finish instant (someone waits for it)."""
        if tr.passive:
            tr.passive = False
            if tr.active:
                self._schedule_timer(self.env.now)

    def pause(self, tr: Transfer) -> float:
        """Take ``tr`` off the link, keeping what was sent. Returns the wire bytes left to send."""
        if not tr.active:
            return 0.0
        self._advance()
        left = max((tr.tag - self._v) * tr.weight, 0.0)
        tr.active = False
        tr.served_before = tr.size - left
        self._remove(tr)
        self._held.append(tr)
        self._after_change()
        return left

    def cancel(self, tr: Transfer) -> None:
        """Abandon a transfer: it leaves the link, is never resumed, and is recorded unfinished."""
        if tr.cancelled or not math.isnan(tr.finished_at):
            return  # already abandoned, or finished
        self.pause(tr)
        if tr in self._held:
            self._held.remove(tr)
        tr.cancelled = True
        self.record(tr)

    def resume(self, tr: Transfer) -> None:
        """Put a paused transfer back on the link; it continues where it stopped."""
        if tr.active or tr.cancelled or not math.isnan(tr.finished_at):
            return
        self._held.remove(tr)
        self._activate(tr, tr.size - tr.served_before)

    def set_up(self, up: bool) -> None:
        """Bring the link down (capacity 0: transfers stall) or back up."""
        if up == self.up:
            return
        self._advance()
        self.up = up
        self._after_change()

    def record(self, tr: Transfer) -> None:
        """Write ``tr``'s row in the transfers table (done by the link itself when a transfer finishes or
        is cancelled; call it for a transfer that never went on the link, such as an empty one)."""
        if self._transfers is not None:
            self._tr_extend(self._tr_pack(tr.vm, tr.kind, self._direction, tr.data_bytes, tr.queued_at,
                                          tr.finished_at, tr.point, tr.consistency))

    def close(self) -> None:
        """End of the run: record the transfers still open (in flight or paused) as unfinished. A closed link
        records nothing more (a process finalised later cannot add rows)."""
        if self._dirty:
            self._write_row(self._t)
        for entry in self._heap:
            if _current(entry):
                self.record(entry[2])
        for tr in self._held:
            self.record(tr)
        self._transfers = None
        self._table = None

    def settle(self, until: float) -> None:
        """Complete, in order and each at its own finish time, the passive transfers that finish no later
        than ``until`` (s), the time of the next event. Stops at the first finish that is not passive and
        makes sure a timer is set for it. Called by :class:`FluidEnvironment` before every event.

        It first writes the link row of the last instant at which the link changed: with settle() there
        is one row per instant, however many changes it saw (a burst of arrivals at a tick)."""
        if self._dirty:
            self._write_row(self._t)
        if not self._n or not self.up:
            return
        cap = self._cap
        if cap <= 0.0:
            return
        heap = self._heap
        while self._n:
            entry = heap[0]
            tr = entry[2]
            if tr.seq != entry[1] or not tr.active:
                heapq.heappop(heap)  # stale
                continue
            tag = entry[0]
            lag = tag - self._v
            finish = self._t + lag * self._wsum / cap if lag > 0.0 else self._t
            if finish > until:
                return
            if not tr.passive or until == INF:
                # an event at its finish: it is waited for, or nothing else is left to move the clock on
                self._set_timer(finish, self.env.now)
                return
            heapq.heappop(heap)
            self._v = tag
            self._t = finish
            self._complete(tr, finish)
            self._write_row(finish)
            self.record(tr)
            if tr.on_done is not None:
                tr.on_done(tr)

    # --- internals ----------------------------------------------------------------------------------

    def _activate(self, tr: Transfer, left: float) -> None:
        now = self.env.now
        if self._n == 0:  # idle: start a fresh busy period
            self._v = 0.0
            self._tagw = 0.0
            self._wsum = 0.0
        elif now > self._t:
            if self.up:
                self._v += (now - self._t) * self._cap / self._wsum
        elif now < self._t:
            raise RuntimeError(f"the link's state at {self._t!r} s is ahead of the clock at {now!r} s")
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
        # enough unless the new transfer is the one to finish first and needs a timer (not passive).
        if heap[0][2] is tr and not tr.passive:
            self._schedule_timer(now)
        self._record(now)

    def _complete(self, tr: Transfer, at: float) -> None:
        """``tr`` (already off the heap) finished at ``at``."""
        tr.active = False
        tr.finished_at = at
        self._remove(tr)

    def _remove(self, tr: Transfer) -> None:
        """Take an inactive ``tr`` out of the sums (clearing round-off when the link goes idle)."""
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
        elif now < self._t:
            raise RuntimeError(f"the link's state at {self._t!r} s is ahead of the clock at {now!r} s")

    def _after_change(self) -> None:
        now = self.env.now
        self._schedule_timer(now)
        self._record(now)

    def _record(self, now: float) -> None:
        """Record the link's state at ``now`` (``_t``), now or, with settle(), before the next event."""
        if self._table is None:
            return
        if self._defer:
            self._dirty = True
        else:
            self._write_row(now)

    def _write_row(self, now: float) -> None:
        """Write the link row at ``now``; several changes at one instant keep the last state only."""
        self._dirty = False
        if self._table is None:
            return
        backlog = self._tagw - self._v * self._wsum if self._n else 0.0
        if backlog < 0.0:
            backlog = 0.0
        row = self._rec_pack(now, self._direction, self._cap if self.up else 0.0, self._n, backlog)
        buffer = self._rec_buffer
        if now == self._rec_at and len(buffer) == self._rec_end:
            buffer[-len(row):] = row  # our own row at this instant is the last one: overwrite it
        else:
            self._rec_extend(row)
            self._rec_at = now
            self._rec_end = len(buffer)

    def _schedule_timer(self, now: float) -> None:
        """Make sure a timer is pending no later than the next capacity change and the next finish that
        needs one (``_v`` is current at ``_t``). Passive finishes need none: :meth:`settle` completes them.

        A pending timer that is *earlier* than needed is kept: it wakes the link, finds nothing due and
        sets the next one. This way a burst of arrivals at one instant costs one timer, not one each.
        """
        at = self._next_cap
        if self._n and self.up and self._cap > 0.0:
            head = self._head_entry()
            if not head[2].passive:
                lag = head[0] - self._v
                finish = self._t + lag * self._wsum / self._cap if lag > 0.0 else self._t
                if finish < at:
                    at = finish
        self._set_timer(at, now)

    def _set_timer(self, at: float, now: float) -> None:
        """Make sure the link wakes up at ``at`` or earlier."""
        if at >= self._timer_at or at == INF:
            return  # the pending timer comes first (or at the same time), or nothing needs one
        self._timer_at = at
        timer = self.env.timeout(max(at - now, 0.0))
        self._timer = timer
        timer.callbacks.append(self._on_timer)

    def _head_entry(self) -> tuple[float, int, Transfer]:
        """The heap entry of the transfer that finishes first (stale entries on top are dropped; ``_n > 0``)."""
        heap = self._heap
        while not _current(heap[0]):
            heapq.heappop(heap)
        return heap[0]

    def _on_timer(self, event: simpy.Event) -> None:
        if event is not self._timer:
            return  # superseded by an earlier timer
        self._timer = None
        self._timer_at = INF
        now = self.env.now
        up = self.up
        self._advance()
        changed = False
        next_cap = self._next_cap
        if next_cap != INF and (now >= next_cap or _close(now, next_cap)):
            boundary = max(now, next_cap)  # the timer may land an ulp before the boundary
            self._cap = self.schedule.at(boundary)
            self._next_cap = self.schedule.next_change(boundary)
            changed = True
        done: list[Transfer] = []
        if self._n and up and self._cap > 0.0:
            heap = self._heap
            tag = self._head_entry()[0]
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
                    self._complete(tr, now)
                    done.append(tr)
        self._schedule_timer(now)
        if done or changed:
            self._record(now)
        for tr in done:
            self.record(tr)
            if tr.on_done is not None:
                tr.on_done(tr)


def _current(entry: tuple[float, int, Transfer]) -> bool:
    """A heap entry is current if its transfer is active and was not re-queued since."""
    tr = entry[2]
    return tr.active and tr.seq == entry[1]


def _close(a: float, b: float) -> bool:
    """Equal up to round-off of simulated times (1e-12 relative, 1 ns absolute)."""
    return abs(a - b) <= max(1e-12 * max(abs(a), abs(b)), 1e-9)
