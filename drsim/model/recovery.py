"""Failures, failover and failback: what happens to each VM when things break.

:class:`Recovery` injects the failure timeline (:mod:`drsim.model.failures`) into a running
:class:`~drsim.model.site.SiteModel`, opens an :class:`~drsim.model.incidents.Incident` per failure per
affected VM, asks the failover policy (:mod:`drsim.model.policies`) what to do through a
:class:`~drsim.model.context.Context`, and runs the operations it decides on, step by step
(:mod:`drsim.model.operations`): unplanned failover, failback, restore, planned failover for maintenance,
test failover (drills) and recovery plans (:mod:`drsim.model.plans`). Every step is recorded in the
``operations`` table; every incident's milestones, data loss, RTO and downtime in the ``incidents`` table.

Rules (the product's contract; see the README):

* A VM is *down* while it runs nowhere; its writes stop. On-prem it can run only when its host and the
  site are up and no guest failure is active.
* Unplanned failover needs a protected VM. Data loss = failure time - capture time of the recovery point
  used (for corruption: detection time - capture time, the writes since that point are discarded).
* Corruption with no clean recovery point within retention (or of a VM not yet protected) loses the VM's data:
  it is down from the detection to the end of the run, and its data loss counts from t = 0.
* Planned failover shuts the VM down, sends the whole pending log, then starts in the cloud: no data loss;
  downtime = shutdown + final sync + start + client reconnection.
* Test failover starts a copy in an isolated network: production and replication are untouched.
* Failback (failover/failback overview): checksums of the disks, then the changed blocks, while the cloud VM
  serves (``before-shutdown``), or the whole disks after its shutdown (``during-failover``, or lost disks), over
  the download link; then it switches over; replication resumes without a full copy.
* A recovery plan shuts its running VMs down, prepares all of them at once, then starts its groups in order
  (:mod:`drsim.model.plans`); clients reconnect through the cloud network's VPNs (:mod:`drsim.model.network`).

Imports only :mod:`drsim.model` modules below the site (failures, incidents, context, operations, plans,
policies, codes, replication, network, schedule, churn) and the scenario.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from drsim.model.churn import week_offset
from drsim.model.codes import DOWN, FAILING_BACK, IN_CLOUD, ONPREM, REPLICATING
from drsim.model.context import Context
from drsim.model.failures import FailureEvent
from drsim.model.incidents import Incident
from drsim.model.network import CloudNetwork
from drsim.model.operations import Operations
from drsim.model.plans import Plans
from drsim.model.policies import make_policy
from drsim.model.replication import VMReplica
from drsim.model.schedule import until_off_hours
from drsim.scenario.units import MINUTE

if TYPE_CHECKING:
    from drsim.model.link import FluidLink
    from drsim.model.site import SiteModel
    from drsim.model.transfer import Transfer

__all__ = ["Recovery", "RETRY_BACKOFF", "RETRY_EVERY"]

#: the agent retries a failed transfer after waits of 1, 2, 4, 8 and 10 minutes (1, 3, 7, 15 and 25 minutes after the
#: failure), then every 30 minutes (vendor documentation; title and date not recorded)
RETRY_BACKOFF = (1 * MINUTE, 2 * MINUTE, 4 * MINUTE, 8 * MINUTE, 10 * MINUTE)
RETRY_EVERY = 30 * MINUTE

NAN = math.nan


def _next_retry(failed_at: float, now: float) -> float:
    """The first retry time at or after ``now`` for a transfer that failed at ``failed_at``."""
    t = failed_at
    for step in RETRY_BACKOFF:
        t += step
        if t >= now:
            return t
    return t + math.ceil(max(now - t, 0.0) / RETRY_EVERY) * RETRY_EVERY


class Recovery(Operations, Plans):
    """Failures and operations of one run (attached to a :class:`SiteModel` as ``model.recovery``)."""

    def __init__(self, model: SiteModel):
        self.model = model
        self.env = model.env
        self.scenario = model.scenario
        self.steps = model.scenario.failover
        self.policy = make_policy(self.scenario.policy, self.scenario)
        self.ctx = Context(self)
        self.by_name: dict[str, VMReplica] = {r.vm.name: r for r in model.replicas}
        self.dashboard = next((r for r in model.replicas if r.vm.dashboard), None)
        self.host_faults = {h.name: 0 for h in self.scenario.site.hosts}
        self.maintenance = {h.name: 0 for h in self.scenario.site.hosts}  # windows under way, from their start
        self.site_faults = 0
        self.link_faults = 0
        self.link_down_since = NAN
        self.quota = simpy.Resource(self.env, self.steps.quota) if self.steps.quota else None
        self.network = CloudNetwork(self)
        self.incidents: list[Incident] = []
        self.operations: list[tuple] = []
        self.open: dict[str, Incident] = {}
        self.lost: set[str] = set()  # VMs whose data is lost (no clean point): down to the end of the run
        self._ops = 0
        self._plans_running: set[str] = set()
        self._plan_group: dict[str, int] = {}  # the group a running plan is at
        self._failbacks: dict[str, simpy.Process] = {}
        self._moving: dict[str, Any] = {}  # VM name -> its transfer in flight in an operation
        # transfers stalled by a link outage whose retry came while the link was down again: retried (on the
        # back-off schedule of their first failure) when the link comes back
        self._retry_later: list[tuple[FluidLink, Transfer, float]] = []
        self._rngs: dict[tuple[str, ...], np.random.Generator] = {}
        self.timeline = model.timeline  # drawn before the run (or injected) by the model
        for ev in self.timeline:
            self.env.process(self._failure(ev))
        for i, drill in enumerate(self.scenario.drills):
            self.env.process(self._drills(i, drill))
        for m in self.scenario.maintenance:
            self.env.process(self._maintenance(m))

    # --- helpers ------------------------------------------------------------------------------------

    def rng(self, *names: str) -> np.random.Generator:
        key = tuple(names)
        if key not in self._rngs:
            self._rngs[key] = self.model.streams.get(*names)
        return self._rngs[key]

    def incident_rng(self, what: str, inc: Incident) -> np.random.Generator:
        """A stream for one incident's draws: changing one incident's course never shifts another's draws."""
        return self.rng(what, inc.vm, inc.kind, repr(inc.failed_at))

    def onprem_available(self, r: VMReplica) -> bool:
        """Whether ``r`` can run on-prem: no failure of its site, host or guest is active and its host is not
        under maintenance (from the window's start: a VM shut down for it is not restarted before its end)."""
        return not self.onprem_failed(r) and self.maintenance[r.host.name] == 0

    def onprem_failed(self, r: VMReplica) -> bool:
        """Whether a failure of ``r``'s site, host or guest is active (or its host is off for maintenance)."""
        return self.site_faults > 0 or self.host_faults[r.host.name] > 0 or r.vm_faults > 0

    def _open_incident(self, r: VMReplica, kind: str, failed_at: float, ev: FailureEvent | None) -> Incident:
        inc = Incident(vm=r.vm.name, kind=kind, failed_at=failed_at, event=ev)
        self.incidents.append(inc)
        self.open[r.vm.name] = inc
        return inc

    def _close(self, r: VMReplica, inc: Incident, outcome: str) -> None:
        inc.outcome = outcome
        inc.closed = True
        if self.open.get(r.vm.name) is inc:
            del self.open[r.vm.name]

    def until_off_hours(self, now: float) -> float:
        return until_off_hours(self.scenario, now, week_offset(self.scenario))

    # --- failures -----------------------------------------------------------------------------------

    def _affected(self, ev: FailureEvent) -> list[VMReplica]:
        if ev.kind == "site":
            return list(self.model.replicas)
        if ev.kind == "host":
            return [r for r in self.model.replicas if r.host.name in ev.targets]
        return [self.by_name[n] for n in ev.targets]

    def _failure(self, ev: FailureEvent):
        env = self.env
        yield env.timeout(ev.start)
        if ev.kind == "link":
            self._link_down()
            yield env.timeout(ev.repair)
            self._link_up()
            return
        if ev.kind == "corruption":
            yield env.timeout(ev.detection)
            for r in self._affected(ev):
                self._corruption_detected(r, ev)
            return
        affected = self._affected(ev)
        if ev.kind == "site":
            self.site_faults += 1
            self._link_down()
        for h in (ev.targets if ev.kind == "host" else ()):
            self.host_faults[h] += 1
        for r in affected:
            if ev.kind == "vm":
                r.vm_faults += 1
            self._vm_fails(r, ev)
        yield env.timeout(ev.repair)
        if ev.kind == "site":
            self.site_faults -= 1
            self._link_up()
        for h in (ev.targets if ev.kind == "host" else ()):
            self.host_faults[h] -= 1
        for r in affected:
            if ev.kind == "vm":
                r.vm_faults -= 1
            self._onprem_back(r)

    def _vm_fails(self, r: VMReplica, ev: FailureEvent) -> None:
        if ev.disks_lost:
            r.disks_lost = True
        failback = self._failbacks.get(r.vm.name)
        if failback is not None and failback.is_alive:
            failback.interrupt("on-prem failed")  # the target of the failback is gone: abort it
        if ev.kind in ("host", "site"):
            r.pause_replication()  # the host's agent is down with it
        if r.service != ONPREM:
            return  # already down or in the cloud: the earlier incident covers it
        inc = self._open_incident(r, ev.kind, self.env.now, ev)
        r.set_service(DOWN)
        self.policy.on_failure(self.ctx, inc)

    def _onprem_back(self, r: VMReplica) -> None:
        """A cause of on-prem unavailability ended; act if none is left."""
        if not self.onprem_available(r) or r.vm.name in self.lost:
            return
        inc = self.open.get(r.vm.name)
        if r.service == DOWN and inc is not None and math.isnan(inc.failover_started_at):
            if not inc.restarting:
                self.env.process(self._restart_onprem(r, inc))
        elif r.service == DOWN and inc is None:
            self.env.process(self._restart_onprem(r, None))
        elif r.service == IN_CLOUD and inc is not None:
            self._repaired_in_cloud(r, inc)
        elif r.service == ONPREM:
            r.resume_replication()

    def _repaired_in_cloud(self, r: VMReplica, inc: Incident) -> None:
        if inc.planned:
            self.start_failback(inc)
        else:
            self.policy.on_repair(self.ctx, inc)

    def _link_down(self) -> None:
        self.link_faults += 1
        if self.link_faults == 1:
            self.link_down_since = self.env.now
            self.model.upload.set_up(False)
            self.model.download.set_up(False)
            for r in self.model.replicas:  # a 'latest' failover stops waiting for a delta that cannot arrive
                r.stall_waiters()

    def _link_up(self) -> None:
        self.link_faults -= 1
        if self.link_faults:
            return
        failed_at = self.link_down_since
        now = self.env.now
        waiting, self._retry_later = self._retry_later, []
        for link in (self.model.upload, self.model.download):
            stalled = link.active_transfers()
            for tr in stalled:
                link.pause(tr)
            link.set_up(True)
            waiting += [(link, tr, max(failed_at, tr.queued_at)) for tr in stalled]
        for link, tr, first_failure in waiting:  # each agent retries on its back-off schedule
            at = _next_retry(first_failure, now)
            self.env.timeout(at - now).callbacks.append(
                lambda _ev, link=link, tr=tr, first=first_failure: self._retry(link, tr, first))
        self.operations.append(("link", "outage", "retry", failed_at, now, 0.0, self._new_op()))

    def _retry(self, link: FluidLink, tr: Transfer, first_failure: float) -> None:
        """An agent retries a transfer stalled by a link outage, unless it was abandoned or its host is down;
        if the link is down again, it retries once the link is back."""
        if tr.cancelled or not math.isnan(tr.finished_at):
            return
        if self.link_faults:
            self._retry_later.append((link, tr, first_failure))
            return
        r = self.model.replicas[tr.vm]
        if link is self.model.upload and not (self.site_faults == 0 and self.host_faults[r.host.name] == 0):
            r._paused.append(tr)  # resumed with the host
            return
        link.resume(tr)

    def _corruption_detected(self, r: VMReplica, ev: FailureEvent) -> None:
        now = self.env.now
        clean = [p for p in r.available_points(now) if p[0] < ev.start]
        earlier = self.open.get(r.vm.name)
        inc = Incident(vm=r.vm.name, kind="corruption", failed_at=ev.start, event=ev, detected_at=now,
                       corrupt_since=ev.start, clean_point=clean[-1] if clean else None)
        self.incidents.append(inc)
        failback = self._failbacks.get(r.vm.name)
        failing_back = failback is not None and failback.is_alive  # from its first step, while still serving
        if (r.service == IN_CLOUD and not failing_back and earlier is not None
                and earlier.recovery_point_captured_at >= ev.start):
            # the VM runs in the cloud from a point captured after the corruption began: switch to a clean one
            inc.decision_at = now
            if inc.clean_point is None:
                inc.closed = True
                inc.outcome = "unrecoverable: no clean recovery point within retention"
                return
            self.env.process(self._switch_point(r, inc))
            return
        if earlier is not None or r.service != ONPREM:
            # the VM is already down or in the cloud for another incident: its recovery must use a clean point
            inc.decision_at = now
            if earlier is not None:
                earlier.corrupt_since = min(earlier.corrupt_since, ev.start) if math.isfinite(
                    earlier.corrupt_since) else ev.start
                earlier.clean_point = inc.clean_point
            inc.closed = True
            inc.outcome = f"handled by the open {earlier.kind if earlier else 'earlier'} incident"
            return
        if r.rep_state not in REPLICATING or not clean:
            inc.decision_at = now
            inc.outcome = ("unrecoverable: no clean recovery point within retention" if r.rep_state in REPLICATING
                           else "unrecoverable: not protected")
            self._data_lost(r, inc)
            return
        self.open[r.vm.name] = inc
        r.set_service(DOWN)  # taken offline for recovery
        self.policy.on_failure(self.ctx, inc)

    def _data_lost(self, r: VMReplica, inc: Incident) -> None:
        """Nothing clean to recover ``r`` from: its data is lost. The VM is taken offline and stays down to the
        end of the run (rebuilding it from another source is outside the model); its data loss is every write
        the run knows of, counted from t = 0 (a lower bound: data from before the run is lost too)."""
        inc.data_loss_s = inc.outage_start
        self.open[r.vm.name] = inc  # open: down until the end, when finish() counts its downtime
        self.lost.add(r.vm.name)
        r.drop_replication()
        r.set_service(DOWN)

    # --- decisions ----------------------------------------------------------------------------------

    def decided_to_wait(self, inc: Incident) -> None:
        r = self.by_name[inc.vm]
        if inc.kind == "corruption" and r.service == DOWN and not inc.restarting:
            self.env.process(self._restart_onprem(r, inc))  # restore the clean point on-prem

    def start_failover(self, inc: Incident, point: str) -> simpy.Process | None:
        """Start an unplanned failover; the process, or None if it is impossible or already done."""
        r = self.by_name[inc.vm]
        if r.service != DOWN or inc.vm in self.lost or not self._claim_failover(r, inc):
            return None
        op = self._new_op()
        self._via_portal(r.vm.name, "failover", op)
        self.network.failover_starts()
        return self.env.process(self._failover(r, inc, point, op))

    # --- end of run ---------------------------------------------------------------------------------

    def finish(self) -> None:
        """Close the incidents still open at the end of the run."""
        end = self.scenario.duration
        for inc in self.incidents:
            if inc.closed:
                continue
            r = self.by_name[inc.vm]
            if math.isnan(inc.service_restored_at):
                inc.charge(inc.outage_start, end)
            elif r.service == FAILING_BACK:
                inc.charge(r.state_since, end)  # the failback cutover still running
            if inc.outcome == "open" or inc.outcome.startswith("waiting"):
                inc.outcome = "still down at the end" if not r.service_up else "in the cloud at the end"
            elif inc.outcome.startswith(("failed over", "planned failover")) and "by the end" not in inc.outcome:
                inc.outcome += ", not failed back by the end"
