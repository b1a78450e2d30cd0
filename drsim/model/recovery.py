"""Failures, failover and failback: what happens to each VM when things break.

:class:`Recovery` injects the failure timeline (:mod:`drsim.model.failures`) into a running
:class:`~drsim.model.site.SiteModel`, opens an :class:`Incident` per failure per affected VM, asks the failover
policy (:mod:`drsim.model.policies`) what to do through a :class:`Context`, and runs the operations it decides
on, step by step: unplanned failover, failback, restore, planned failover for maintenance, test failover
(drills) and recovery plans. Every step is recorded in the ``operations`` table; every incident's
milestones, data loss, RTO and downtime in the ``incidents`` table.

Rules (the product's contract; see the README):

* A VM is *down* while it runs nowhere; its writes stop. On-prem it can run only when its host and the
  site are up and no guest failure is active.
* Unplanned failover needs a protected VM. Data loss = failure time - capture time of the recovery point
  used (for corruption: detection time - capture time, the writes since that point are discarded).
* Planned failover shuts the VM down, sends the whole pending log, then starts in the cloud: no data loss;
  downtime = shutdown + final sync + start + client reconnection.
* Test failover starts a copy in an isolated network: production and replication are untouched.
* Failback copies back the changes made in the cloud (the whole image when the on-prem disks were lost)
  over the download link, then switches over; replication resumes without a full copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from drsim.model.churn import week_offset
from drsim.model.failures import FailureEvent, resolve_time
from drsim.model.policies import make_policy
from drsim.model.replication import (
    C_APP,
    DOWN,
    FAILBACK_SYNC,
    FAILING_BACK,
    FAILING_OVER,
    IN_CLOUD,
    K_FAILBACK,
    K_RESTORE,
    ONPREM,
    RESTORING,
    S_PROTECTED,
    STATES,
    VMReplica,
)
from drsim.scenario.distributions import Distribution
from drsim.scenario.units import DAY, HOUR, MINUTE, WEEK

if TYPE_CHECKING:
    from drsim.model.link import FluidLink, Transfer
    from drsim.model.site import SiteModel

__all__ = ["Recovery", "Context", "Incident", "RETRY_BACKOFF", "INCIDENT_COLUMNS", "OPERATION_COLUMNS"]

#: the agent retries a failed transfer after 1, 2, 4, 8 and 10 minutes, then every 30 minutes
RETRY_BACKOFF = (1 * MINUTE, 2 * MINUTE, 4 * MINUTE, 8 * MINUTE, 10 * MINUTE)
RETRY_EVERY = 30 * MINUTE

INCIDENT_COLUMNS = ("vm", "kind", "failed_at", "detected_at", "decision_at", "failover_started_at",
                    "service_restored_at", "failback_started_at", "failback_done_at",
                    "recovery_point_captured_at", "data_loss_s", "rto_s", "sla_rto_s", "downtime_s", "outcome")
OPERATION_COLUMNS = ("target", "kind", "step", "start", "end", "bytes", "operation")

NAN = math.nan


@dataclass
class Incident:
    """One failure as it affected one VM. Times in seconds from t = 0 (NaN: did not happen)."""

    vm: str
    kind: str
    failed_at: float
    detected_at: float = NAN
    decision_at: float = NAN
    failover_started_at: float = NAN
    service_restored_at: float = NAN
    failback_started_at: float = NAN
    failback_done_at: float = NAN
    recovery_point_captured_at: float = NAN
    data_loss_s: float = NAN
    sla_rto_s: float = NAN
    downtime_s: float = 0.0
    outcome: str = "open"
    # not in the table
    event: FailureEvent | None = field(default=None, repr=False)
    corrupt_since: float = NAN
    clean_point: tuple[float, float, int] | None = field(default=None, repr=False)  # chosen at detection
    planned: bool = False
    closed: bool = False
    restarting: bool = False

    @property
    def outage_start(self) -> float:
        """When the service went down: the failure, or for corruption its detection (the VM ran, corrupted,
        until then)."""
        return self.detected_at if self.kind == "corruption" else self.failed_at

    @property
    def rto_s(self) -> float:
        """Outage start to service restored (seconds)."""
        return self.service_restored_at - self.outage_start

    def row(self) -> tuple:
        return tuple(getattr(self, c) for c in INCIDENT_COLUMNS)


def _next_retry(failed_at: float, now: float) -> float:
    """The first retry time at or after ``now`` for a transfer that failed at ``failed_at``."""
    t = failed_at
    for step in RETRY_BACKOFF:
        t += step
        if t >= now:
            return t
    return t + math.ceil(max(now - t, 0.0) / RETRY_EVERY) * RETRY_EVERY


class Context:
    """What a policy sees and can do. Times in seconds; ``now`` is the simulated time."""

    def __init__(self, recovery: Recovery):
        self._r = recovery
        self.rng: np.random.Generator = recovery.model.streams.get("policy")

    @property
    def now(self) -> float:
        return self._r.env.now

    def after(self, delay: float, action: Any) -> None:
        """Call ``action()`` ``delay`` seconds from now."""
        self._r.env.timeout(max(delay, 0.0)).callbacks.append(lambda _ev: action())

    def detected(self, incident: Incident) -> None:
        """Record that the failure was noticed now."""
        if math.isnan(incident.detected_at):
            incident.detected_at = self.now

    def fail_over(self, incident: Incident, point: str = "latest") -> bool:
        """Start an unplanned failover of the incident's VM; False if impossible (not protected, already
        back, failover already running)."""
        return self._r.start_failover(incident, point) is not None

    def wait(self, incident: Incident) -> None:
        """Decide not to fail over: the VM comes back when repaired."""
        if math.isnan(incident.decision_at):
            incident.decision_at = self.now
        self._r.decided_to_wait(incident)

    def fail_back(self, incident: Incident) -> bool:
        """Start failback of the incident's VM (if it runs in the cloud and the on-prem side is up)."""
        return self._r.start_failback(incident)

    def run_plan(self, plan: str, incident: Incident, point: str = "latest") -> None:
        """Fail over every VM of a recovery plan, group by group."""
        self._r.start_plan(plan, incident, point)

    def plan_vms(self, plan: str) -> list[str]:
        return next(p.vm_names for p in self._r.scenario.plans if p.name == plan)

    def dashboard_up(self) -> bool:
        """Whether the management dashboard runs (failovers are triggered there, else via the portal)."""
        dash = self._r.dashboard
        return dash is None or dash.service_up

    def rng_for(self, incident: Incident) -> np.random.Generator:
        """The random stream for decisions about ``incident`` (keeps other incidents' draws unchanged)."""
        return self._r.incident_rng("policy", incident)

    def portal_delay(self, incident: Incident | None = None) -> float:
        """Extra time to trigger from the cloud portal (seconds), drawn now."""
        rng = self.rng if incident is None else self.rng_for(incident)
        return self._r.scenario.failover.portal.sample(rng)

    def repair_distribution(self, incident: Incident) -> Distribution:
        """The repair-time distribution of the failure behind ``incident``."""
        ev = incident.event
        if ev is None:
            return self._r.scenario.failover.onprem_start
        return self._r.scenario.failures[ev.source].repair_dist

    def until_off_hours(self) -> float:
        """Seconds until the next off-hours time (0 if now is off hours): outside the throttle's work
        hours on work days, or outside 08:00-18:00 Monday to Friday without a throttle."""
        return self._r.until_off_hours(self.now)

    def vm_state(self, vm: str) -> str:
        return STATES[self._r.by_name[vm].state]


class Recovery:
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
        self.site_faults = 0
        self.link_faults = 0
        self.link_down_since = NAN
        self.quota = simpy.Resource(self.env, self.steps.quota) if self.steps.quota else None
        self.incidents: list[Incident] = []
        self.operations: list[tuple] = []
        self.open: dict[str, Incident] = {}
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
        return self.site_faults == 0 and self.host_faults[r.host.name] == 0 and r.vm_faults == 0

    def _step(self, target: str, kind: str, step: str, dist: Distribution, rng: np.random.Generator,
              op: int):
        """Run one step of an operation and record it."""
        start = self.env.now
        yield self.env.timeout(dist.sample(rng))
        self.operations.append((target, kind, step, start, self.env.now, 0.0, op))

    def _move(self, r: VMReplica, kind: str, step: str, nbytes: float, op: int, direction: str):
        """Copy ``nbytes`` of ``r``'s data over the link and record the step."""
        link = self.model.download if direction == "download" else self.model.upload
        start = self.env.now
        done = self.env.event()
        tr = link.start(r.index, K_FAILBACK if kind == "failback" else K_RESTORE, nbytes, r.weight,
                        on_done=done.succeed)
        self._moving[r.vm.name] = (link, tr)
        try:
            yield done
        except simpy.Interrupt:
            link.cancel(tr)  # abandon the copy (recorded unfinished)
            raise
        finally:
            self._moving.pop(r.vm.name, None)
        self.operations.append((r.vm.name, kind, step, start, self.env.now, nbytes, op))

    def _new_op(self) -> int:
        self._ops += 1
        return self._ops

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

        t = self.scenario.link.throttle
        work_days = t.weekday_numbers if t is not None else frozenset(range(5))
        start, end = t.work_hours if t is not None else (8 * HOUR, 18 * HOUR)
        pos = (now + week_offset(self.scenario)) % WEEK
        day, sec = int(pos // DAY), pos % DAY
        if day in work_days and start <= sec < end:
            return end - sec
        return 0.0

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
        if not self.onprem_available(r):
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
        if r.service == IN_CLOUD and earlier is not None and earlier.recovery_point_captured_at >= ev.start:
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
        if r.rep_state != S_PROTECTED or not clean:
            inc.decision_at = now
            inc.closed = True
            inc.outcome = ("unrecoverable: no clean recovery point within retention" if r.rep_state == S_PROTECTED
                           else "unrecoverable: not protected")
            return
        self.open[r.vm.name] = inc
        r.set_service(DOWN)  # taken offline for recovery
        self.policy.on_failure(self.ctx, inc)

    def _switch_point(self, r: VMReplica, inc: Incident):
        """Restart the cloud VM from a clean recovery point (corruption found while running in the cloud)."""
        env = self.env
        op = self._new_op()
        rng = self.incident_rng("operations", inc)
        r.set_service(FAILING_OVER)
        inc.failover_started_at = env.now
        yield from self._step(r.vm.name, "failover", "prepare", self.steps.prepare, rng, op)
        captured = inc.clean_point[0]
        yield from self._run_in_cloud(r, inc, rng, op, "failover", captured, max(inc.detected_at - captured, 0.0))
        r.disks_lost = True  # failback must bring the whole clean image home
        inc.closed = True
        inc.outcome = "failed over again, to a clean point"

    # --- decisions ----------------------------------------------------------------------------------

    def decided_to_wait(self, inc: Incident) -> None:
        r = self.by_name[inc.vm]
        if inc.kind == "corruption" and r.service == DOWN and not inc.restarting:
            self.env.process(self._restart_onprem(r, inc))  # restore the clean point on-prem

    def start_failover(self, inc: Incident, point: str) -> simpy.Process | None:
        """Start an unplanned failover; the process, or None if it is impossible or already done."""
        r = self.by_name[inc.vm]
        if inc.closed or inc.restarting or not math.isnan(inc.failover_started_at) or r.service != DOWN:
            return None
        if math.isnan(inc.decision_at):
            inc.decision_at = self.env.now
        if r.rep_state != S_PROTECTED or not r.points:
            inc.outcome = "waiting: not protected, failover impossible"
            return None
        r.set_service(FAILING_OVER)  # at once: a second call now finds the failover started
        inc.failover_started_at = self.env.now
        return self.env.process(self._failover(r, inc, point))

    def _choose_point(self, r: VMReplica, inc: Incident, point: str) -> tuple[float, float, int] | None:
        if math.isfinite(inc.corrupt_since):  # the clean point chosen when the corruption was found
            return inc.clean_point
        pts = r.available_points(self.env.now)
        if point == "latest-app":
            pts = [p for p in pts if p[2] == C_APP] or pts
        return pts[-1] if pts else None

    def _failover(self, r: VMReplica, inc: Incident, point: str, op: int | None = None):
        env = self.env
        op = op or self._new_op()
        rng = self.incident_rng("operations", inc)
        if point == "latest" and not math.isfinite(inc.corrupt_since):
            tr = r.in_flight()
            if tr is not None and tr.active and self.model.upload.up:
                # 'latest' processes pending data first: wait for the delta in flight (not past a stall)
                start = env.now
                yield r.wait_delivery()
                self.operations.append((r.vm.name, "failover", "pending_data", start, env.now, tr.data_bytes, op))
            yield from self._step(r.vm.name, "failover", "process_pending", self.steps.process_pending, rng, op)
        chosen = self._choose_point(r, inc, point)
        r.drop_replication()
        if chosen is None:
            # nothing usable to fail over to: the VM stays down until it is rebuilt on-prem
            r.set_service(DOWN)
            inc.failover_started_at = NAN
            inc.outcome = "waiting: no usable recovery point"
            if self.onprem_available(r):
                self.env.process(self._restart_onprem(r, inc))
            return
        yield from self._step(r.vm.name, "failover", "prepare", self.steps.prepare, rng, op)
        loss_from = inc.detected_at if inc.kind == "corruption" else inc.failed_at
        yield from self._run_in_cloud(r, inc, rng, op, "failover", chosen[0], max(loss_from - chosen[0], 0.0))
        inc.outcome = "failed over"
        self.policy.on_operation(self.ctx, inc, "failover", "done")
        if self.onprem_available(r) or inc.kind == "corruption":
            if inc.kind == "corruption":
                r.disks_lost = True  # the on-prem disks hold corrupted data: fail back the whole image
            self._repaired_in_cloud(r, inc)

    def _run_in_cloud(self, r: VMReplica, inc: Incident, rng: np.random.Generator, op: int, kind: str,
                      captured: float, data_loss: float):
        """Start the VM in the cloud from the point captured at ``captured``; clients reconnect; record."""
        env = self.env
        yield from self._start_in_cloud(r, rng, op, kind)
        running = env.now
        yield from self._step(r.vm.name, kind, "reconnect", self.steps.reconnect, rng, op)
        r.set_service(IN_CLOUD)
        r.cloud_w0 = r.writes(env.now)
        inc.service_restored_at = env.now
        inc.sla_rto_s = running - inc.failover_started_at
        inc.recovery_point_captured_at = captured
        inc.data_loss_s = data_loss
        inc.downtime_s += env.now - inc.outage_start

    def _start_in_cloud(self, r: VMReplica, rng: np.random.Generator, op: int, kind: str):
        if self.quota is None:
            yield from self._step(r.vm.name, kind, "start", self.steps.start, rng, op)
            return
        with self.quota.request() as req:
            queued = self.env.now
            yield req
            if self.env.now > queued:
                self.operations.append((r.vm.name, kind, "quota_wait", queued, self.env.now, 0.0, op))
            yield from self._step(r.vm.name, kind, "start", self.steps.start, rng, op)

    def _restart_onprem(self, r: VMReplica, inc: Incident | None):
        """The VM comes back on-prem without failover: reboot, restore of a lost disk, or rebuild."""
        env = self.env
        op = self._new_op()
        rng = self.incident_rng("restart", inc) if inc is not None else self.rng("restart", r.vm.name,
                                                                                   repr(env.now))
        if inc is not None:
            inc.restarting = True
            if math.isnan(inc.decision_at):
                inc.decision_at = env.now
        point = None
        corrupt = inc is not None and math.isfinite(inc.corrupt_since)
        if r.disks_lost or corrupt:
            if corrupt:
                point = self._choose_point(r, inc, "latest")
                r.disks_lost = r.disks_lost or point is None  # no clean image: rebuild empty
            elif r.rep_state == S_PROTECTED and r.points:
                point = r.available_points(env.now)[-1]
            r.drop_replication()
            if point is not None:
                r.set_service(RESTORING)
                yield from self._move(r, "restore", "download_image", r.vm.copy_bytes, op, "download")
        if inc is None or inc.kind != "vm" or point is not None:
            yield from self._step(r.vm.name, "restart", "onprem_start", self.steps.onprem_start, rng, op)
        if not self.onprem_available(r) and (inc is None or inc.kind != "corruption"):
            if inc is not None:
                inc.restarting = False
            r.set_service(DOWN)
            return  # failed again meanwhile: the next repair brings it back
        r.set_service(ONPREM)
        lost = r.disks_lost
        r.disks_lost = False
        if inc is None:
            r.resume_replication()
            return
        inc.service_restored_at = env.now
        inc.downtime_s += env.now - inc.outage_start
        if point is not None:
            inc.recovery_point_captured_at = point[0]
            loss_from = inc.detected_at if inc.kind == "corruption" else inc.failed_at
            inc.data_loss_s = max(loss_from - point[0], 0.0)
            r.resume_after_recovery(env.now)  # the VM restarts from the restored image: nothing pending
            self._close(r, inc, "restored from the cloud")
        elif lost:
            r.restart_initial()
            self._close(r, inc, "unrecoverable: disks lost and no recovery point; rebuilt empty")
        else:
            inc.data_loss_s = 0.0
            r.resume_replication()
            self._close(r, inc, "down for maintenance" if inc.kind == "maintenance" else "waited for repair")

    # --- failback -----------------------------------------------------------------------------------

    def start_failback(self, inc: Incident) -> bool:
        r = self.by_name[inc.vm]
        if r.service != IN_CLOUD or not self.onprem_available(r) or not math.isnan(inc.failback_started_at):
            return False
        inc.failback_started_at = self.env.now  # at once: a second call now finds it started
        self._failbacks[r.vm.name] = self.env.process(self._failback(r, inc))
        return True

    def _failback(self, r: VMReplica, inc: Incident):
        """Failback, aborted (back to the cloud) if the on-prem side fails meanwhile."""
        op = self._new_op()
        rng = self.incident_rng("failback", inc)
        try:
            yield from self._failback_steps(r, inc, op, rng)
        except simpy.Interrupt:
            self._failbacks.pop(r.vm.name, None)  # no second abort while the cloud VM restarts
            env = self.env
            if r.service not in (FAILBACK_SYNC, FAILING_BACK):
                return
            self.operations.append((r.vm.name, "failback", "aborted", env.now, env.now, 0.0, op))
            inc.failback_started_at = NAN
            if r.service == FAILING_BACK:  # the cloud VM was already shut down: start it again
                down_from = r.state_since
                yield from self._start_in_cloud(r, rng, op, "failback")
                inc.downtime_s += env.now - down_from
            r.set_service(IN_CLOUD)
            if self.onprem_available(r):  # repaired while the cloud VM restarted: try again
                self._repaired_in_cloud(r, inc)
        finally:
            if self._failbacks.get(r.vm.name) is self.env.active_process:
                self._failbacks.pop(r.vm.name, None)

    def _failback_steps(self, r: VMReplica, inc: Incident, op: int, rng: np.random.Generator):
        env = self.env
        full = r.disks_lost
        w_start = r.writes(env.now)
        main = r.vm.copy_bytes if full else w_start - r.cloud_w0
        step = "download_image" if full else "download_changes"
        if self.steps.failback_sync == "before-shutdown":
            r.set_service(FAILBACK_SYNC)  # the cloud VM keeps serving during the bulk copy
            yield from self._move(r, "failback", step, main, op, "download")
            yield from self._step(r.vm.name, "failback", "shutdown", self.steps.shutdown, rng, op)
            r.set_service(FAILING_BACK)
            down_from = env.now
            yield from self._move(r, "failback", "final_delta", r.writes(env.now) - w_start, op, "download")
        else:
            yield from self._step(r.vm.name, "failback", "shutdown", self.steps.shutdown, rng, op)
            r.set_service(FAILING_BACK)
            down_from = env.now
            # after the shutdown the image holds every write: the whole image, or all changes since failover
            nbytes = main if full else r.writes(env.now) - r.cloud_w0
            yield from self._move(r, "failback", step, nbytes, op, "download")
        yield from self._step(r.vm.name, "failback", "onprem_start", self.steps.onprem_start, rng, op)
        yield from self._step(r.vm.name, "failback", "reconnect", self.steps.reconnect, rng, op)
        r.set_service(ONPREM)
        self._failbacks.pop(r.vm.name, None)  # done: a later failure is a new incident
        r.disks_lost = False
        inc.failback_done_at = env.now
        inc.downtime_s += env.now - down_from
        r.resume_after_recovery(down_from)
        if not inc.planned:
            self._close(r, inc, inc.outcome if inc.outcome != "open" else "failed over")
        else:
            self._close(r, inc, "planned failover")
        self.policy.on_operation(self.ctx, inc, "failback", "done")
        # deprovision the cloud VM and delete its disk (service already back on-prem)
        yield from self._step(r.vm.name, "failback", "cleanup", self.steps.cleanup, rng, op)

    # --- planned failover (maintenance) -------------------------------------------------------------

    def _maintenance(self, m):
        env = self.env
        at = resolve_time(self.scenario, m.at)
        if at >= self.scenario.duration:
            return
        yield env.timeout(at)
        window = m.window.sample(self.rng("maintenance", m.host, repr(at)))
        on_host = [r for r in self.model.replicas if r.host.name == m.host]
        for r in on_host:  # a failback onto this host cannot complete: abort it
            failback = self._failbacks.get(r.vm.name)
            if failback is not None and failback.is_alive:
                failback.interrupt("maintenance")
        moves = [env.process(self._planned_failover(r)) for r in on_host if r.service == ONPREM]
        yield env.all_of(moves)
        self.host_faults[m.host] += 1  # the host is off for the window
        for r in on_host:
            r.pause_replication()
        yield env.timeout(window)
        self.host_faults[m.host] -= 1
        for r in on_host:
            self._onprem_back(r)  # fails back the VMs in the cloud, restarts the others

    def _planned_failover(self, r: VMReplica, kind: str = "maintenance"):
        """Orderly shutdown, final sync, start in the cloud: no data loss. ``kind`` is ``maintenance``
        (fails back after the window) or ``plan`` (a recovery plan moved a running VM)."""
        env = self.env
        op = self._new_op()
        inc = self._open_incident(r, kind, env.now, None)
        rng = self.incident_rng("planned", inc)
        inc.planned = kind == "maintenance"
        inc.detected_at = inc.decision_at = env.now
        if r.rep_state != S_PROTECTED or not r.points:
            r.set_service(DOWN)  # down from the start of its shutdown, as a protected VM is
            yield from self._step(r.vm.name, "shutdown", "shutdown", self.steps.shutdown, rng, op)
            inc.outcome = "down for maintenance (not protected)"
            return
        r.set_service(FAILING_OVER)
        inc.failover_started_at = env.now
        yield from self._step(r.vm.name, "planned_failover", "shutdown", self.steps.shutdown, rng, op)
        start = env.now
        delivered = True
        if r.in_flight() is not None and self.onprem_available(r):
            delivered = (yield r.wait_delivery()) is not None
        if delivered and self.onprem_available(r):
            tr = r.final_sync()  # everything written up to the shutdown
            delivered = (yield r.wait_delivery()) is not None
            self.operations.append((r.vm.name, "planned_failover", "final_sync", start, env.now, tr.data_bytes,
                                    op))
        captured = r.points[-1][0]
        r.drop_replication()
        if not delivered or not self.onprem_available(r):
            # the host failed before the final sync completed: an unplanned failover from the newest point
            inc.kind = "host"
            inc.planned = False
            yield from self._step(r.vm.name, "failover", "prepare", self.steps.prepare, rng, op)
            yield from self._run_in_cloud(r, inc, rng, op, "failover", captured, max(start - captured, 0.0))
            inc.outcome = "failed over (final sync interrupted)"
            return
        # every write reached the cloud before the VM starts there: no data loss
        yield from self._run_in_cloud(r, inc, rng, op, "planned_failover", captured, 0.0)
        inc.outcome = "planned failover"

    # --- test failover (drills) ---------------------------------------------------------------------

    def _drills(self, i: int, drill):
        env = self.env
        horizon = self.scenario.duration
        if drill.at is not None:
            times = [resolve_time(self.scenario, drill.at)]
        else:
            times = list(np.arange(drill.every, horizon, drill.every))
        names = drill.vms if isinstance(drill.vms, list) else [drill.vms]
        if names == ["all"]:
            names = [r.vm.name for r in self.model.replicas if r.eligible]
        for k, t in enumerate(times):
            if t >= horizon:
                break
            yield env.timeout(t - env.now)
            for name in names:
                env.process(self._test_failover(self.by_name[name], drill, f"{i}/{k}"))

    def _test_failover(self, r: VMReplica, drill, key: str):
        env = self.env
        op = self._new_op()
        rng = self.rng("drills", r.vm.name, key)  # its own stream: production draws are untouched
        if r.rep_state != S_PROTECTED or not r.points or r.service != ONPREM:
            why = "not protected" if r.rep_state != S_PROTECTED else "not running on-premises"
            self.operations.append((r.vm.name, "test_failover", f"skipped: {why}", env.now, env.now, 0.0, op))
            return
        start = env.now
        if drill.point == "latest":
            yield from self._step(r.vm.name, "test_failover", "process_pending", self.steps.process_pending, rng, op)
        yield from self._step(r.vm.name, "test_failover", "prepare", self.steps.prepare, rng, op)
        provisioned = env.now  # the test VM exists in the cloud from its start until cleanup ends
        yield from self._start_in_cloud(r, rng, op, "test_failover")
        self.operations.append((r.vm.name, "test_failover", "running", start, env.now, 0.0, op))  # drill RTO
        yield from self._step(r.vm.name, "test_failover", "test", drill.duration, rng, op)
        yield from self._step(r.vm.name, "test_failover", "cleanup", self.steps.cleanup, rng, op)
        self.operations.append((r.vm.name, "test_failover", "cloud_time", provisioned, env.now, 0.0, op))

    # --- recovery plans -----------------------------------------------------------------------------

    def start_plan(self, name: str, trigger: Incident, point: str) -> None:
        if name in self._plans_running:
            plan = next(p for p in self.scenario.plans if p.name == name)
            group = next(g for g, grp in enumerate(plan.groups) if trigger.vm in grp.vms)
            if group < self._plan_group[name]:
                # its group has already been failed over: this VM fails over by itself
                self.env.timeout(0).callbacks.append(lambda _ev: self.start_failover(trigger, point))
            return
        self._plans_running.add(name)
        self.env.process(self._plan(name, trigger, point))

    def _plan(self, name: str, trigger: Incident, point: str):
        env = self.env
        plan = next(p for p in self.scenario.plans if p.name == name)
        op = self._new_op()
        rng = self.rng("plans", name, repr(env.now))
        moved: list[VMReplica] = []
        for g, group in enumerate(plan.groups):
            self._plan_group[name] = g
            yield from self._actions(name, f"group {g + 1} before", group.before, rng, op)
            runs = []
            for vm in group.vms:
                r = self.by_name[vm]
                inc = self.open.get(vm)
                failover = self.start_failover(inc, point) if r.service == DOWN and inc is not None else None
                if failover is not None:
                    runs.append(failover)
                elif r.service == ONPREM and r.rep_state == S_PROTECTED:
                    runs.append(env.process(self._planned_failover(r, kind="plan")))
                    moved.append(r)
            if runs:
                yield env.all_of(runs)
            yield from self._actions(name, f"group {g + 1} after", group.after, rng, op)
        self._plans_running.discard(name)
        self._plan_group[name] = len(plan.groups)
        for r in moved:  # healthy VMs moved with the plan: their on-prem side is usable, the policy says when
            inc = self.open.get(r.vm.name)
            if inc is not None and r.service == IN_CLOUD:
                self.policy.on_repair(self.ctx, inc)

    def _actions(self, plan: str, where: str, actions, rng, op: int):
        if actions is None:
            return
        if actions.manual is not None:
            yield from self._step(plan, "plan", f"{where}: manual action", actions.manual, rng, op)
        if actions.script is not None:
            yield from self._step(plan, "plan", f"{where}: script", actions.script, rng, op)

    # --- end of run ---------------------------------------------------------------------------------

    def finish(self) -> None:
        """Close the incidents still open at the end of the run."""
        end = self.scenario.duration
        for inc in self.incidents:
            if inc.closed:
                continue
            r = self.by_name[inc.vm]
            if math.isnan(inc.service_restored_at):
                inc.downtime_s += end - inc.outage_start
            elif r.service == FAILING_BACK:
                inc.downtime_s += end - r.state_since  # the failback cutover still running
            if inc.outcome == "open" or inc.outcome.startswith("waiting"):
                inc.outcome = "still down at the end" if not r.service_up else "in the cloud at the end"
            elif inc.outcome in ("failed over", "planned failover"):
                inc.outcome += ", not failed back by the end"
