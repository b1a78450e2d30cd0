"""The simulation model: a site's VMs replicating to the cloud over a shared link.

:class:`SiteModel` builds everything a scenario describes on one ``simpy.Environment``: the upload and
download :class:`~drsim.model.link.FluidLink`, and one :class:`VMReplica` per VM. Protection is enabled at the
scenario's initial start: each host installs its agent (setup time), then initial replication runs
batch by batch. Each VM then cuts its log every interval and ships it as a delta.

The model writes events into the :class:`~drsim.model.recorder.Recorder`; :mod:`drsim.results.tables` turns them
into tables. Events occur only where something changes: interval ticks, transfer starts and ends,
capacity changes.
"""

from __future__ import annotations

import gc

from drsim.model.churn import build_curve, week_offset
from drsim.model.codes import CONSISTENCY, DIRECTIONS, HEALTH, KINDS, STATES
from drsim.model.environment import FluidEnvironment
from drsim.model.link import FluidLink
from drsim.model.recorder import CODE, COUNT, FLOAT, Recorder
from drsim.model.recovery import Recovery
from drsim.model.replication import Ticker, VMReplica
from drsim.model.schedule import CapacitySchedule
from drsim.model.streams import Streams
from drsim.scenario.document import Scenario

__all__ = ["SiteModel"]


class SiteModel:
    """One simulated run of a scenario. Call :meth:`run`, then read :attr:`recorder`."""

    def __init__(self, scenario: Scenario, seed: int | None = None):
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.streams = Streams(self.seed)
        self.env = FluidEnvironment()  # delta deliveries complete without events of their own
        self.horizon = scenario.duration
        self.recorder = Recorder()
        self.vm_names = [vm.name for _, vm in scenario.vms()]
        labels = {"vm": self.vm_names}
        rec = self.recorder
        self.transfers = rec.table(
            "transfers",
            {"vm": CODE, "kind": CODE, "direction": CODE, "bytes": FLOAT, "queued_at": FLOAT,
             "finished_at": FLOAT, "point": FLOAT, "consistency": CODE},
            {**labels, "kind": KINDS, "direction": DIRECTIONS, "consistency": CONSISTENCY},
        )
        # ticks that found the previous transfer in flight; a sent cycle is its delta transfer
        self.missed_ticks = rec.table("missed_ticks", {"vm": CODE, "time": FLOAT}, labels)
        self.states = rec.table("states", {"vm": CODE, "state": CODE, "start": FLOAT, "end": FLOAT},
                                {**labels, "state": STATES})
        self.health = rec.table("health", {"vm": CODE, "health": CODE, "start": FLOAT, "end": FLOAT},
                                {**labels, "health": HEALTH})
        link_table = rec.table(
            "link",
            {"time": FLOAT, "direction": CODE, "capacity": FLOAT, "active": COUNT, "backlog": FLOAT},
            {"direction": DIRECTIONS},
        )
        lk = scenario.link
        if lk.throttle is not None:
            t = lk.throttle
            up_schedule = CapacitySchedule.weekly(
                lk.upload, t.work_limit, t.off_limit if t.off_limit is not None else lk.upload,
                t.weekday_numbers, t.work_hours, week_offset(scenario), lk.efficiency,
            )
        else:
            up_schedule = CapacitySchedule.constant(lk.upload * lk.efficiency)
        self.upload = FluidLink(self.env, up_schedule, lk.compression, link_table, 0, self.transfers, defer=True)
        self.download = FluidLink(self.env, CapacitySchedule.constant(lk.download * lk.efficiency),
                                  lk.compression, link_table, 1, self.transfers)
        self.replicas: list[VMReplica] = []
        self._ticker = Ticker(self.env, scenario.replication.interval)
        for i, (host, vm) in enumerate(scenario.vms()):
            curve = build_curve(scenario, vm, self.streams.get("churn", vm.name), self.horizon)
            self.replicas.append(VMReplica(self, i, host, vm, curve))
        self.env.process(self._enable_protection())
        # failures and failover act on the replicas built above
        self.recovery = Recovery(self)

    def _enable_protection(self):
        """Agent install and vault creation per host, then initial replication batch by batch."""
        env = self.env
        yield env.timeout(self.scenario.initial_start_offset())
        setup = self.scenario.replication.setup
        host_ready = {
            h.name: env.timeout(setup.sample(self.streams.get("setup", h.name))) for h in self.scenario.site.hosts
        }
        for batch in self._batches():
            runs = []
            for r in batch:
                r._initial = env.process(r.initial_replication(host_ready[r.host.name]))
                runs.append(r._initial)
            yield env.all_of(runs)

    def _batches(self) -> list[list[VMReplica]]:
        by_name = {r.vm.name: r for r in self.replicas}
        eligible = [r for r in self.replicas if r.eligible]
        names = self.scenario.replication.initial.batches
        if names is None:
            return [eligible] if eligible else []
        batches = [[by_name[n] for n in batch if by_name[n].eligible] for batch in names]
        listed = {n for batch in names for n in batch}
        rest = [r for r in eligible if r.vm.name not in listed]
        if rest:
            batches.append(rest)  # VMs in no batch go last, together
        return [b for b in batches if b]

    def tick_every_interval(self, replica: VMReplica) -> None:
        """Tick ``replica`` every interval from now on (the scenario has one interval: one :class:`Ticker`)."""
        self._ticker.join(replica)

    def run(self) -> SiteModel:
        """Run to the end of the scenario's duration and close open intervals.

        The cyclic garbage collector is paused during the run: the model allocates millions of short-lived
        events that reference counting frees at once, and scanning them costs about a third of the run
        time at a thousand VMs. It is restored (and run once) afterwards.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.env.run(until=self.horizon)
            self.recovery.finish()
        finally:
            if was_enabled:
                gc.enable()
                gc.collect(0)
        for r in self.replicas:
            r.finish(self.horizon)
        self.upload.close()
        self.download.close()
        return self
