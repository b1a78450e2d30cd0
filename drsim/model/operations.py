"""The operations on one VM, step by step: unplanned failover (and a switch to a clean recovery point),
restart or restore on-premises, failback, planned failover and test failover.

Each operation is a SimPy process of steps; every step is recorded in the ``operations`` table as
``(target, kind, step, start, end, bytes, operation)``, times in seconds, bytes of VM data moved over the
link. The steps' durations are drawn from the scenario's ``failover`` section on the incident's own random
stream. :class:`Operations` is mixed into :class:`~drsim.model.recovery.Recovery`, which holds the state
declared below and the incident helpers the operations call (``rng``, ``incident_rng``, ``onprem_available``,
``onprem_failed``, ``_open_incident``, ``_close``, ``_repaired_in_cloud``).

Imports only :mod:`drsim.model.incidents`, :mod:`drsim.model.codes` (the VM states and transfer kinds),
:mod:`drsim.model.replication`, :mod:`drsim.model.resync` (changed blocks) and the scenario (and the model's other
classes for hints).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from drsim.model.codes import (
    C_APP,
    DOWN,
    FAILBACK_SYNC,
    FAILING_BACK,
    FAILING_OVER,
    IN_CLOUD,
    K_FAILBACK,
    K_RESTORE,
    ONPREM,
    REPLICATING,
    RESTORING,
)
from drsim.model.incidents import Incident
from drsim.model.replication import VMReplica
from drsim.model.resync import vm_changed_blocks
from drsim.scenario.distributions import Distribution

if TYPE_CHECKING:
    from drsim.model.context import Context
    from drsim.model.network import CloudNetwork
    from drsim.model.policies import Policy
    from drsim.model.site import SiteModel
    from drsim.scenario.recovery import FailoverSteps

__all__ = ["Operations"]

NAN = math.nan


class Operations:
    """Unplanned, planned and test failover, restart on-premises and failback of one VM at a time."""

    env: simpy.Environment
    model: SiteModel
    steps: FailoverSteps
    policy: Policy
    ctx: Context
    by_name: dict[str, VMReplica]
    quota: simpy.Resource | None  # the cloud's limit on VMs starting at once (None: no limit)
    operations: list[tuple]  # rows of the operations table
    _ops: int  # operations started so far (numbers them)
    _failbacks: dict[str, simpy.Process]
    _moving: dict[str, Any]
    network: CloudNetwork  # the VPNs clients reconnect through

    # --- steps --------------------------------------------------------------------------------------

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

    def _via_portal(self, target: str, kind: str, op: int) -> None:
        """Record that an operation is triggered from the cloud portal: the Essentials dashboard is down."""
        if not self.ctx.dashboard_up():
            now = self.env.now
            self.operations.append((target, kind, "triggered via the portal", now, now, 0.0, op))

    def _new_op(self) -> int:
        self._ops += 1
        return self._ops

    # --- unplanned failover -------------------------------------------------------------------------

    def _choose_point(self, r: VMReplica, inc: Incident, point: str) -> tuple[float, float, int] | None:
        """The recovery point ``point`` picks now. ``latest`` (its pending data was just processed): the newest
        point in the cloud. Otherwise only *processed* points count, those in the cloud for at least the
        processing backlog (``replication.processing_lag``; the oldest point if none is processed yet);
        ``latest-app`` takes the newest app-consistent one, and says so in the incident when none is kept."""
        if math.isfinite(inc.corrupt_since):  # the clean point chosen when the corruption was found
            return inc.clean_point
        now = self.env.now
        pts = r.available_points(now)
        if point != "latest" and pts:
            lag = self.scenario.replication.processing_lag
            pts = [p for p in pts if p[1] <= now - lag] or pts[:1]
        if point == "latest-app":
            app = [p for p in pts if p[2] == C_APP]
            if not app and pts:
                inc.note = "no app-consistent point within retention: a crash-consistent one was used"
            pts = app or pts
        return pts[-1] if pts else None

    def _source_answers(self, r: VMReplica, inc: Incident) -> bool:
        """The failed VM's host, the site and the link still work and its disks are intact: an unplanned
        failover may shut it down and sync its pending log first (``failover.shutdown_first``)."""
        rec = self.model.recovery
        return (inc.kind == "vm" and not r.disks_lost and rec.site_faults == 0 and rec.link_faults == 0
                and rec.host_faults[r.host.name] == 0)

    def _sync_first(self, r: VMReplica, inc: Incident, op: int):
        """Send the failed VM's whole pending log (it wrote nothing since it failed); the new point, or None."""
        env = self.env
        start = env.now
        if r.in_flight() is not None and (yield r.wait_delivery()) is None:
            return None
        tr = r.final_sync()
        if (yield r.wait_delivery()) is None:
            return None
        self.operations.append((r.vm.name, "failover", "final_sync", start, env.now, tr.data_bytes, op))
        return r.points[-1]

    def _failover(self, r: VMReplica, inc: Incident, point: str, op: int | None = None):
        env = self.env
        op = op or self._new_op()
        rng = self.incident_rng("operations", inc)
        synced = None
        if self.steps.shutdown_first and self._source_answers(r, inc):
            synced = yield from self._sync_first(r, inc, op)
        if synced is not None:  # every write is in the cloud: its point is processed first, as with 'latest'
            yield from self._step(r.vm.name, "failover", "process_pending", self.steps.process_pending, rng, op)
        elif point == "latest" and not math.isfinite(inc.corrupt_since):
            tr = r.in_flight()
            if tr is not None and tr.active and self.model.upload.up:
                # 'latest' processes pending data first: wait for the delta in flight (not past a stall)
                start = env.now
                yield r.wait_delivery()
                self.operations.append((r.vm.name, "failover", "pending_data", start, env.now, tr.data_bytes, op))
            yield from self._step(r.vm.name, "failover", "process_pending", self.steps.process_pending, rng, op)
        chosen = synced or self._choose_point(r, inc, point)
        r.drop_replication()
        if chosen is None:
            self._no_point(r, inc)
            return
        yield from self._step(r.vm.name, "failover", "prepare", self.steps.prepare, rng, op)
        loss_from = inc.detected_at if inc.kind == "corruption" else inc.failed_at
        yield from self._run_in_cloud(r, inc, rng, op, "failover", chosen[0], max(loss_from - chosen[0], 0.0))
        self._failed_over(r, inc)

    def _claim_failover(self, r: VMReplica, inc: Incident) -> bool:
        """Mark a down VM's failover as started now (policy or plan), ``failing_over`` at once; False if it cannot
        fail over (incident over, failover already started, or no recovery point yet)."""
        if inc.closed or inc.restarting or not math.isnan(inc.failover_started_at):
            return False
        if math.isnan(inc.decision_at):
            inc.decision_at = self.env.now
        if r.rep_state not in REPLICATING or not r.points:
            inc.outcome = "waiting: not protected, failover impossible"
            return False
        r.set_service(FAILING_OVER)
        inc.failover_started_at = self.env.now
        return True

    def _failed_over(self, r: VMReplica, inc: Incident) -> None:
        """An unplanned failover is done: tell the policy; repair in the cloud if the on-prem side is back."""
        inc.outcome = "failed over" + (f" ({inc.note})" if inc.note else "")
        self.policy.on_operation(self.ctx, inc, "failover", "done")
        if self.onprem_available(r) or inc.kind == "corruption":
            if inc.kind == "corruption":
                r.disks_lost = True  # the on-prem disks hold corrupted data: fail back the whole image
            self._repaired_in_cloud(r, inc)

    def _no_point(self, r: VMReplica, inc: Incident) -> None:
        """Nothing usable to fail over to: the VM stays down until it is rebuilt on-prem."""
        r.set_service(DOWN)
        inc.failover_started_at = NAN
        inc.outcome = "waiting: no usable recovery point"
        if self.onprem_available(r):
            self.env.process(self._restart_onprem(r, inc))

    def _run_in_cloud(self, r: VMReplica, inc: Incident, rng: np.random.Generator, op: int, kind: str,
                      captured: float, data_loss: float, started: simpy.Event | None = None,
                      sla_excluded: float = 0.0):
        """Start the VM in the cloud from the point captured at ``captured``; clients reconnect; record.
        ``started`` (if given) succeeds when the VM runs; ``sla_excluded`` (s) is time of manual actions and
        scripts the SLA's clock leaves out."""
        env = self.env
        yield from self._start_in_cloud(r, rng, op, kind)
        running = env.now
        if started is not None:
            started.succeed()
        yield from self.network.reconnect(r, kind, rng, op)  # through the cloud network's VPN
        r.set_service(IN_CLOUD)
        r.cloud_w0 = r.writes(env.now)
        inc.service_restored_at = env.now
        inc.sla_rto_s = running - inc.failover_started_at - sla_excluded
        inc.recovery_point_captured_at = captured
        inc.data_loss_s = data_loss
        inc.charge(inc.outage_start, env.now)

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
            elif r.rep_state in REPLICATING and r.points:
                point = r.available_points(env.now)[-1]
            r.drop_replication()
            if point is not None:
                r.set_service(RESTORING)
                yield from self._move(r, "restore", "download_image", r.vm.copy_bytes, op, "download")
        if inc is None or inc.kind != "vm" or point is not None:
            yield from self._step(r.vm.name, "restart", "onprem_start", self.steps.onprem_start, rng, op)
        if not self.onprem_available(r):
            if inc is not None:
                inc.restarting = False
            r.set_service(DOWN)
            return  # failed again meanwhile (a restore too): the next repair brings it back
        r.set_service(ONPREM)
        lost = r.disks_lost
        r.disks_lost = False
        if inc is None:
            r.resume_replication()
            return
        inc.service_restored_at = env.now
        inc.charge(inc.outage_start, env.now)
        if point is not None:
            inc.recovery_point_captured_at = point[0]
            loss_from = inc.detected_at if inc.kind == "corruption" else inc.failed_at
            inc.data_loss_s = max(loss_from - point[0], 0.0)
            r.resume_after_recovery(env.now)  # the VM restarts from the restored image: nothing pending
            self._close(r, inc, "restored from the cloud")
        elif lost:
            inc.data_loss_s = inc.outage_start  # everything: counted from t = 0, a lower bound
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
        self._via_portal(r.vm.name, "failback", op)
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
                inc.charge(down_from, env.now)
            r.set_service(IN_CLOUD)
            if self.onprem_available(r):  # repaired while the cloud VM restarted: try again
                self._repaired_in_cloud(r, inc)
        finally:
            if self._failbacks.get(r.vm.name) is self.env.active_process:
                self._failbacks.pop(r.vm.name, None)

    def _failback_steps(self, r: VMReplica, inc: Incident, op: int, rng: np.random.Generator):
        """Failback as the failover/failback overview describes it. *Synchronise before failover*
        (``before-shutdown``): while the cloud VM keeps serving, compare the on-prem disks with the cloud's by
        block checksums (the used data at ``checksum_rate``) and download the blocks that differ, then shut the
        cloud VM down and download the final delta. *Synchronise during failover only* (``during-failover``): shut
        it down and download the whole disks (their used data), without checksums. With the on-prem disks lost
        (or corrupted) there is nothing to compare: the whole disks come down in either mode."""
        env = self.env
        w_start = r.writes(env.now)
        if self.steps.failback_sync == "before-shutdown":
            r.set_service(FAILBACK_SYNC)  # the cloud VM keeps serving during the comparison and the bulk copy
            if r.disks_lost:
                yield from self._move(r, "failback", "download_image", r.vm.copy_bytes, op, "download")
            else:
                start = env.now
                yield env.timeout(r.vm.copy_bytes / self.steps.checksum_rate)
                self.operations.append((r.vm.name, "failback", "checksum", start, env.now, 0.0, op))
                overwrite = self.model.scenario.replication.resync.overwrite
                changed = vm_changed_blocks(r.vm, w_start - r.cloud_w0, overwrite)  # the blocks written in the cloud
                yield from self._move(r, "failback", "download_changes", changed, op, "download")
            yield from self._step(r.vm.name, "failback", "shutdown", self.steps.shutdown, rng, op)
            r.set_service(FAILING_BACK)
            down_from = env.now
            yield from self._move(r, "failback", "final_delta", r.writes(env.now) - w_start, op, "download")
        else:
            yield from self._step(r.vm.name, "failback", "shutdown", self.steps.shutdown, rng, op)
            r.set_service(FAILING_BACK)
            down_from = env.now
            yield from self._move(r, "failback", "download_image", r.vm.copy_bytes, op, "download")
        yield from self._step(r.vm.name, "failback", "onprem_start", self.steps.onprem_start, rng, op)
        yield from self._step(r.vm.name, "failback", "reconnect", self.steps.reconnect, rng, op)
        r.set_service(ONPREM)
        self._failbacks.pop(r.vm.name, None)  # done: a later failure is a new incident
        r.disks_lost = False
        inc.failback_done_at = env.now
        inc.charge(down_from, env.now)
        r.resume_after_recovery(down_from)
        if not inc.planned:
            self._close(r, inc, inc.outcome if inc.outcome != "open" else "failed over")
        else:
            self._close(r, inc, "planned failover")
        self.policy.on_operation(self.ctx, inc, "failback", "done")
        # deprovision the cloud VM and delete its disk (service already back on-prem)
        yield from self._step(r.vm.name, "failback", "cleanup", self.steps.cleanup, rng, op)

    # --- planned failover ---------------------------------------------------------------------------

    def _shutdown_and_sync(self, r: VMReplica, rng: np.random.Generator, op: int, kind: str = "planned_failover"):
        """Shut ``r`` down in an orderly way and send its whole pending log; returns (capture time of the newest
        point, whether every write reached the cloud, end of the shutdown). Replication is dropped."""
        env = self.env
        yield from self._step(r.vm.name, kind, "shutdown", self.steps.shutdown, rng, op)
        start = env.now
        delivered = True
        # the host's own maintenance does not stop its agent before the moves end: only a failure does
        if r.in_flight() is not None and not self.onprem_failed(r):
            delivered = (yield r.wait_delivery()) is not None
        if delivered and not self.onprem_failed(r):
            tr = r.final_sync()  # everything written up to the shutdown
            delivered = (yield r.wait_delivery()) is not None
            self.operations.append((r.vm.name, kind, "final_sync", start, env.now, tr.data_bytes, op))
        captured = r.points[-1][0]
        r.drop_replication()
        return captured, delivered and not self.onprem_failed(r), start

    def _planned_failover(self, r: VMReplica, kind: str = "maintenance"):
        """Orderly shutdown, final sync, start in the cloud: no data loss. ``kind`` is ``maintenance``
        (fails back after the window) or ``plan`` (a recovery plan moved a running VM)."""
        env = self.env
        op = self._new_op()
        inc = self._open_incident(r, kind, env.now, None)
        rng = self.incident_rng("planned", inc)
        inc.planned = kind == "maintenance"
        inc.detected_at = inc.decision_at = env.now
        if r.rep_state not in REPLICATING or not r.points:
            r.set_service(DOWN)  # down from the start of its shutdown, as a protected VM is
            yield from self._step(r.vm.name, "shutdown", "shutdown", self.steps.shutdown, rng, op)
            inc.outcome = "down for maintenance (not protected)"
            return
        r.set_service(FAILING_OVER)
        inc.failover_started_at = env.now
        self.network.failover_starts()
        captured, delivered, start = yield from self._shutdown_and_sync(r, rng, op)
        if not delivered:
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

    # --- test failover ------------------------------------------------------------------------------

    def _test_failover(self, r: VMReplica, drill, key: str):
        env = self.env
        op = self._new_op()
        rng = self.rng("drills", r.vm.name, key)  # its own stream: production draws are untouched
        if r.rep_state not in REPLICATING or not r.points or r.service != ONPREM:
            why = "not protected" if r.rep_state not in REPLICATING else "not running on-premises"
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
