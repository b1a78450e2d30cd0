"""The simulation model: a site's VMs replicating to the cloud over a shared link.

:class:`SiteModel` builds everything a scenario describes on one ``simpy.Environment``: the upload and
download :class:`~drsim.model.link.FluidLink`, and one :class:`VMReplica` per VM. Protection is enabled at the
scenario's initial start: each host installs its agent (setup time), then initial replication runs
batch by batch. Each VM then cuts its log every interval and ships it as a delta.

``start_protected=True`` skips setup and initial replication (the steady state, as the fast planner sizes it):
every replicating VM is protected at t = 0 with a first recovery point captured and available at t = 0 and an
empty log (an empty catch-up transfer at t = 0), and ticks from t = interval. Every VM's ticks are then aligned,
a planning assumption that is at least as demanding on a shared link as the staggered ticks that follow a real
initial replication (the deltas of all VMs queue together).

The model writes events into the :class:`~drsim.model.recorder.Recorder`; :mod:`drsim.results.tables` turns them
into tables. Events occur only where something changes: interval ticks, transfer starts and ends,
capacity changes.

Options for long horizons (the defaults give the run a scenario describes):

* ``keep``: the recorder tables that keep their rows (others drop them) and ``running=True``: a
  :class:`~drsim.model.tally.RunTally` keeps what the summary needs as the run goes (bounded memory).
* ``protected_from``: start each VM protected (a first recovery point, no initial replication) at the given time
  (the steady protected state; the long-horizon engine's windows start this way, with each VM's tick phase).
* ``replicate=False``: no delta cycles, churn as a weekly pattern and the throttle settled after
  ``throttle_until`` (:mod:`drsim.model.longrun`): the slow time scale alone (failures, repairs, failover,
  failback) over decades, with events only where something happens.
* ``timeline``: the failure timeline to inject (drawn before the run otherwise).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Sequence

import numpy as np

from drsim.model.churn import build_curve, week_offset
from drsim.model.codes import CONSISTENCY, DIRECTIONS, HEALTH, K_DELTA, K_INITIAL, KINDS, STATES
from drsim.model.environment import FluidEnvironment
from drsim.model.failures import FailureEvent, failure_timeline
from drsim.model.link import FluidLink
from drsim.model.longrun import SettledSchedule, periodic_curve
from drsim.model.recorder import CODE, COUNT, FLOAT, Recorder
from drsim.model.recovery import Recovery
from drsim.model.replication import Ticker, VMReplica
from drsim.model.schedule import CapacitySchedule
from drsim.model.streams import Streams
from drsim.model.tally import DEFAULT_RESOLUTION, RunTally
from drsim.scenario.document import Scenario

__all__ = ["SiteModel"]


class SiteModel:
    """One simulated run of a scenario. Call :meth:`run`, then read :attr:`recorder`.

    ``seed`` overrides the scenario's (an integer or a ``numpy.random.SeedSequence``); the other options are in
    the module docstring. ``protected_from`` gives, per VM in file order, the time (s) it starts protected (NaN:
    it does not; the VMs that cannot be protected never are); ``resolution`` is the RPO histogram's cell (s) of
    a running summary. ``start_protected`` starts every VM that can be protected protected at t = 0 (the
    steady state, as the fast planner asks).
    """

    def __init__(self, scenario: Scenario, seed: int | np.random.SeedSequence | None = None, *,
                 keep: Iterable[str] | None = None, running: bool = False,
                 protected_from: Sequence[float] | None = None, replicate: bool = True,
                 throttle_until: float = math.inf, timeline: Iterable[FailureEvent] | None = None,
                 resolution: float = DEFAULT_RESOLUTION, start_protected: bool = False):
        self.scenario = scenario
        self.start_protected = start_protected
        self.seed = scenario.seed if seed is None else seed
        self.streams = Streams(self.seed)
        self.env = FluidEnvironment()  # delta deliveries complete without events of their own
        self.horizon = scenario.duration
        self.replicate = replicate
        self.vm_names = [vm.name for _, vm in scenario.vms()]
        self.tally = (RunTally(len(self.vm_names), scenario.objectives.rpo, len(STATES), len(HEALTH), K_DELTA,
                               K_INITIAL, resolution) if running else None)
        self.recorder = Recorder(keep, self.tally.observers() if self.tally is not None else None)
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
        if not replicate and not up_schedule.is_constant:
            up_schedule = SettledSchedule(up_schedule, throttle_until)
        self.upload = FluidLink(self.env, up_schedule, lk.compression, link_table, 0, self.transfers, defer=True)
        self.download = FluidLink(self.env, CapacitySchedule.constant(lk.download * lk.efficiency),
                                  lk.compression, link_table, 1, self.transfers)
        self.replicas: list[VMReplica] = []
        self._ticker = Ticker(self.env, scenario.replication.interval)
        for i, (host, vm) in enumerate(scenario.vms()):
            if replicate:
                curve = build_curve(scenario, vm, self.streams.get("churn", vm.name), self.horizon)
            else:
                curve = periodic_curve(scenario, vm)
            r = VMReplica(self, i, host, vm, curve)
            if self.tally is not None:
                r.rpo_tally = self.tally.rpo[i]
            self.replicas.append(r)
        if start_protected and protected_from is None:
            protected_from = [0.0] * len(self.replicas)
        if protected_from is None:
            self.env.process(self._enable_protection())
        else:
            for r, at in zip(self.replicas, protected_from, strict=True):
                if r.eligible and at == at:
                    self.env.timeout(at).callbacks.append(lambda _ev, r=r: r.start_protected())
        # failures and failover act on the replicas built above
        self.timeline = list(timeline) if timeline is not None else failure_timeline(scenario, self.streams)
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

    def _start_protected(self):
        """Every replicating VM protected at t = 0: an empty catch-up carries its first recovery point."""
        for r in self.replicas:
            if r.eligible:
                r.start_protected()
        yield self.env.timeout(0)

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
        """Tick ``replica`` every interval from now on (the scenario has one interval: one :class:`Ticker`).
        Without replication (``replicate=False``) there are no cycles: nothing ticks."""
        if self.replicate:
            self._ticker.join(replica)

    def run(self) -> SiteModel:
        """Run to the end of the scenario's duration and close open intervals."""
        self.advance(self.horizon)
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.recovery.finish()
        finally:
            if was_enabled:
                gc.enable()
        for r in self.replicas:
            r.finish(self.horizon)
        self.upload.close()
        self.download.close()
        return self

    def advance(self, until: float) -> None:
        """Run up to ``until`` seconds (no later than the horizon), leaving intervals open: :meth:`run` may go on.

        The cyclic garbage collector is paused meanwhile: the model allocates millions of short-lived
        events that reference counting frees at once, and scanning them costs about a third of the run
        time at a thousand VMs. It is restored (and run once) afterwards.
        """
        until = min(until, self.horizon)
        if until <= self.env.now:
            return
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.env.run(until=until)
        finally:
            if was_enabled:
                gc.enable()
                gc.collect(0)
