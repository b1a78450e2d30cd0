"""Resynchronisation: what the service does when a VM's change log outgrows its disk.

The host keeps one change log per virtual disk. When a disk's log (the writes not yet in the cloud) reaches
50 % of that disk's size, the service marks the VM for resynchronisation (architecture; monitoring FAQ):
delta replication stops, and the resync starts outside office hours (the default) or at once. It compares
each disk's blocks with the replica by checksums, then sends only the blocks that differ, disk after disk;
when the last disk's blocks are in, the replica holds the VM as it was when the resync started (a recovery
point captured then) and delta replication resumes with the writes made meanwhile. A VM is marked too when the
change logs of its host's VMs outgrow the host's free space (``free_space``): replication pauses and needs a
resync (support matrix; checked at the VM's ticks once protected).

:class:`ResyncMixin` gives :class:`~drsim.model.replication.VMReplica` this behaviour: marking (at a tick once
protected; at the exact moment the log crosses the limit during initial replication, through the write curve's
inverse), the resync process, and stopping it when the VM moves. :func:`changed_blocks` is the assumption about
which blocks the pending writes changed. Each resync is an operation in the ``operations`` table (kind
``resync``: steps ``wait``, ``checksum disk k``, ``send disk k``) and its sends are ``resync`` transfers.

Imports only :mod:`drsim.model.codes`, :mod:`drsim.model.schedule`, :mod:`drsim.model.churn` and the scenario.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import simpy

from drsim.model.churn import week_offset
from drsim.model.codes import (
    C_CRASH,
    DOWN,
    H_CRITICAL,
    K_RESYNC,
    ONPREM,
    S_INITIAL,
    S_NOT_PROTECTED,
    S_PROTECTED,
    S_RESYNC,
)
from drsim.model.schedule import until_off_hours
from drsim.scenario.site import VM

if TYPE_CHECKING:
    from drsim.model.replication import VMReplica

__all__ = ["ResyncMixin", "changed_blocks", "vm_changed_blocks", "resync_threshold", "RESYNC_LOG_SHARE"]

RESYNC_LOG_SHARE = 0.50  # a disk's change log reaching this share of the disk's size marks the VM for resync


def changed_blocks(written: float, used: float, overwrite: str = "random") -> float:
    """Bytes of a disk that differ from its replica after ``written`` bytes of writes on ``used`` bytes of data.

    ``random``: the writes fall uniformly at random on the used blocks, so a block stays unchanged with
    probability exp(-written / used) and the expected changed bytes are used x (1 - exp(-written / used)).
    ``none``: no block is written twice: min(written, used). Never more than ``used`` (an assumption: the
    writes rewrite the disk's data; the used size does not grow).
    """
    if written <= 0.0 or used <= 0.0:
        return 0.0
    if overwrite == "none":
        return min(written, used)
    return used * -math.expm1(-written / used)


def vm_changed_blocks(vm: VM, written: float, overwrite: str = "random") -> float:
    """Bytes of ``vm``'s disks that differ from the other copy after ``written`` bytes of writes, each disk
    taking its share of the writes (:func:`changed_blocks` per disk)."""
    return sum(changed_blocks(written * share, d.copy_bytes, overwrite)
               for d, share in zip(vm.disks, vm.disk_shares, strict=True))


def resync_threshold(vm: VM) -> float:
    """The VM's pending bytes at which the first of its disks' logs reaches 50 % of that disk's size (each
    disk takes its share of the writes; inf if no disk is written)."""
    limits = [RESYNC_LOG_SHARE * d.size / share for d, share in zip(vm.disks, vm.disk_shares, strict=True)
              if share > 0]
    return min(limits) if limits else math.inf


class ResyncMixin:
    """Marking and running resynchronisations (mixed into :class:`~drsim.model.replication.VMReplica`)."""

    __slots__ = ()

    def _agent_up(self: VMReplica) -> bool:
        """Whether the VM's host (and its replication agent) runs."""
        rec = self.model.recovery
        return rec.site_faults == 0 and rec.host_faults[self.host.name] == 0

    def host_log_bytes(self: VMReplica, now: float) -> float:
        """Bytes of change logs on this VM's host now: per replicating VM, the writes the cloud does not hold
        yet (since the snapshot during initial replication; since its start during a resync)."""
        peers = self._host_peers
        if peers is None:
            peers = self._host_peers = [r for r in self.model.replicas if r.host is self.host and r.eligible]
        total = 0.0
        for r in peers:
            if r.service != ONPREM and r.service != DOWN:
                continue  # in the cloud: nothing logged on-premises
            if r.rep_state == S_RESYNC:
                total += r.writes(now) - r._w_cut
            elif r.rep_state in (S_INITIAL, S_PROTECTED):
                total += r.writes(now) - r._w_newest
        return total

    def _watch_initial(self: VMReplica, generation: int):
        """During initial replication, mark the VM when the log since the snapshot crosses the limit: wait
        for the moment the write curve reaches it, check (the VM may have been down meanwhile), repeat."""
        env = self.env
        try:
            while self._generation == generation and self.rep_state in (S_INITIAL, S_NOT_PROTECTED) \
                    and not self._resync_marked:
                deficit = self._w_newest + self.critical_bytes - self.writes(env.now)
                if deficit <= 0.0:
                    self.mark_resync(env.now)
                    return
                at = self.curve.time_of(self.curve(env.now) + deficit)
                if not math.isfinite(at):
                    return
                yield env.timeout(max(at - env.now, 1e-6))
        except simpy.Interrupt:
            return

    def mark_resync(self: VMReplica, now: float) -> None:
        """A disk's log reached its limit: stop delta replication and schedule the resync."""
        if self._resync_marked:
            return
        self._resync_marked = True
        self._resync_marked_at = now
        self.resyncs += 1
        if self._initial_inflight is not None:
            return  # copying the disks: the initial replication resyncs instead of its catch-up
        if self._inflight is not None:
            self.link.cancel(self._inflight)  # the delta (or catch-up) in flight is abandoned
            if self._inflight in self._paused:
                self._paused.remove(self._inflight)
            self._inflight = None
            self.stall_waiters()
        self._w_cut = self._w_newest  # everything since the newest point is pending again
        self.set_state(S_RESYNC)
        if self.state == S_RESYNC and self.points:
            self._set_health(H_CRITICAL, now)
        self._resync = self.env.process(self._resync_process())

    def _resync_process(self: VMReplica):
        try:
            yield from self.resync()
        except simpy.Interrupt:
            return  # the VM moved (failover) or was rebuilt

    def resync(self: VMReplica):
        """Run the resync: wait for off hours (unless immediate) and for the host, compare each disk's blocks
        and send those that differ, disk after disk; the point captured at the start is then available."""
        env = self.env
        cfg = self.model.scenario.replication.resync
        rec = self.model.recovery
        op = rec._new_op()
        self.set_state(S_RESYNC)
        marked = self._resync_marked_at
        if cfg.start == "off-hours":
            yield env.timeout(until_off_hours(self.model.scenario, env.now, week_offset(self.model.scenario)))
        while self.service != ONPREM or not self._agent_up():
            yield env.timeout(self.interval)  # down: the resync waits for the VM to run on its host again
        start = env.now
        rec.operations.append((self.vm.name, "resync", "wait", marked, start, 0.0, op))
        w = self.writes(start)
        pending = w - self._w_newest
        self._w_cut = w  # a new log takes the writes made from now on
        self._w_inflight = w
        if not self._ticking:  # a resync instead of the first catch-up: the interval phase starts here
            self._ticking = True
            self.tick_origin = env.now
            self.model.tick_every_interval(self)
        disks = self.vm.disks
        for k, (disk, share) in enumerate(zip(disks, self.vm.disk_shares, strict=True)):
            t0 = env.now
            yield env.timeout(disk.copy_bytes / cfg.checksum_rate)
            rec.operations.append((self.vm.name, "resync", f"checksum disk {k + 1}", t0, env.now, 0.0, op))
            while not self._agent_up():
                yield env.timeout(self.interval)
            nbytes = changed_blocks(pending * share, disk.copy_bytes, cfg.overwrite)
            t0 = env.now
            done = env.event()
            if k < len(disks) - 1:
                self._initial_inflight = self.link.start(self.index, K_RESYNC, nbytes, self.weight,
                                                         on_done=done.succeed)
                yield done
                self._initial_inflight = None
            else:  # the last disk's blocks complete the recovery point captured at the start
                def delivered(tr, done=done):
                    self._delivered(tr)
                    done.succeed()
                self._inflight = self.link.start(self.index, K_RESYNC, nbytes, self.weight, delivered, start,
                                                 C_CRASH)
                yield done
            rec.operations.append((self.vm.name, "resync", f"send disk {k + 1}", t0, env.now, nbytes, op))
        self._resync_marked = False
        self._resync = None

    def stop_resync(self: VMReplica) -> None:
        """Abandon a pending or running resync (the VM moves or is rebuilt); its transfers are cancelled."""
        self._resync_marked = False
        proc = self._resync
        self._resync = None
        if proc is not None and proc.is_alive and proc is not self.env.active_process:
            proc.interrupt("stopped")
