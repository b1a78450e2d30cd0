"""Operations run on a schedule or over groups of VMs: maintenance windows (planned failover of a host's VMs),
drills (test failovers) and recovery plans (groups of VMs failed over in order, with manual actions and
scripts between the groups).

:class:`Plans` is mixed into :class:`~drsim.model.recovery.Recovery`, which holds the state declared below;
the operations it starts are those of :class:`~drsim.model.operations.Operations`. Times in seconds.

Imports only :mod:`drsim.model.failures`, :mod:`drsim.model.incidents`, :mod:`drsim.model.codes` (the VM states),
:mod:`drsim.model.replication` and the scenario (and the model's other classes for hints).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import simpy

from drsim.model.codes import DOWN, FAILING_OVER, IN_CLOUD, ONPREM, REPLICATING
from drsim.model.failures import resolve_time
from drsim.model.incidents import Incident
from drsim.model.replication import VMReplica

if TYPE_CHECKING:
    from drsim.model.context import Context
    from drsim.model.network import CloudNetwork
    from drsim.model.policies import Policy
    from drsim.model.site import SiteModel
    from drsim.scenario.document import Scenario

__all__ = ["Plans"]


class Plans:
    """Maintenance windows, drills and recovery plans of one run."""

    env: simpy.Environment
    model: SiteModel
    scenario: Scenario
    policy: Policy
    ctx: Context
    by_name: dict[str, VMReplica]
    open: dict[str, Incident]  # VM name -> its open incident
    host_faults: dict[str, int]  # host name -> causes of it being down now
    maintenance: dict[str, int]  # host name -> maintenance windows under way (from their start)
    _failbacks: dict[str, simpy.Process]
    _plans_running: set[str]
    _plan_group: dict[str, int]
    network: CloudNetwork  # the VPNs clients reconnect through

    # --- maintenance (planned failover of a host's VMs) ---------------------------------------------

    def _maintenance(self, m):
        env = self.env
        at = resolve_time(self.scenario, m.at)
        if at >= self.scenario.duration:
            return
        yield env.timeout(at)
        window = m.window.sample(self.rng("maintenance", m.host, repr(at)))
        self.maintenance[m.host] += 1  # from now on, nothing restarts or fails back onto the host
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
        self.maintenance[m.host] -= 1
        for r in on_host:
            self._onprem_back(r)  # fails back the VMs in the cloud, restarts the others

    # --- drills (test failovers) --------------------------------------------------------------------

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
        """Run a recovery plan as the service does (recovery plan overview): (1) shut down the plan's VMs still
        running on-premises, each sending its pending log; (2) one parallel failover (disk preparation) of all
        the plan's VMs: with ``latest``, the deltas in flight and one ``process_pending``, then one ``prepare``;
        (3) the groups in order, a group's VMs started in parallel, group k+1 once every VM of group k runs,
        with the groups' manual actions and scripts before and after. Every VM's SLA clock starts with the plan
        and leaves out the manual actions and scripts before its start."""
        env = self.env
        plan = next(p for p in self.scenario.plans if p.name == name)
        down: list[tuple[VMReplica, Incident]] = []
        running: list[VMReplica] = []
        for vm in plan.vm_names:
            r = self.by_name[vm]
            inc = self.open.get(vm)
            if r.service == DOWN and inc is not None:
                if self._claim_failover(r, inc):
                    down.append((r, inc))
            elif r.service == ONPREM and r.rep_state in REPLICATING and r.points:
                running.append(r)
        if not down and not running:  # every VM of the plan is already in the cloud (or cannot move): nothing to run
            self._plans_running.discard(name)
            return
        op = self._new_op()
        self._via_portal(name, "plan", op)
        self.network.failover_starts()
        rng = self.rng("plans", name, repr(env.now))
        self._plan_group[name] = -1  # shutting down and preparing: no group has started yet
        moving = [env.process(self._plan_shutdown(r, op, rng)) for r in running]
        # (1) shut down the running VMs (a final sync each: no data loss)
        moved = []
        if moving:
            yield env.all_of(moving)
            moved = [p.value for p in moving]
        # (2) one parallel failover of every VM of the plan: disk preparation from the chosen points
        prepared: dict[str, tuple[VMReplica, Incident, float, float]] = {}
        if down and point == "latest":
            waits = [env.process(self._pending_data(r, op)) for r, inc in down
                     if not math.isfinite(inc.corrupt_since)]
            if waits:
                yield env.all_of(waits)
            yield from self._step(name, "plan", "process_pending", self.steps.process_pending, rng, op)
        for r, inc in down:
            chosen = self._choose_point(r, inc, point)
            r.drop_replication()
            if chosen is None:
                self._no_point(r, inc)
                continue
            loss_from = inc.detected_at if inc.kind == "corruption" else inc.failed_at
            prepared[r.vm.name] = (r, inc, chosen[0], max(loss_from - chosen[0], 0.0))
        for r, inc, captured, ok, shut_at in moved:
            prepared[r.vm.name] = (r, inc, captured, 0.0 if ok else max(shut_at - captured, 0.0))
        if prepared:
            yield from self._step(name, "plan", "prepare", self.steps.prepare, rng, op)
        # (3) the groups in order
        excluded = 0.0  # time in manual actions and scripts so far: the SLA leaves it out
        runs = []
        for g, group in enumerate(plan.groups):
            self._plan_group[name] = g
            t = env.now
            yield from self._actions(name, f"group {g + 1} before", group.before, rng, op)
            excluded += env.now - t
            started = []
            for vm in group.vms:
                if vm not in prepared:
                    continue
                r, inc, captured, loss = prepared[vm]
                ev = env.event()
                started.append(ev)
                kind = "failover" if inc.kind != "plan" else "planned_failover"
                runs.append(env.process(self._plan_start(r, inc, rng, op, kind, captured, loss, ev, excluded)))
            if started:
                yield env.all_of(started)
            t = env.now
            yield from self._actions(name, f"group {g + 1} after", group.after, rng, op)
            excluded += env.now - t
        if runs:
            yield env.all_of(runs)
        self._plans_running.discard(name)
        self._plan_group[name] = len(plan.groups)
        for r, inc, *_ in moved:  # healthy VMs moved with the plan: their on-prem side is usable, the policy says when
            if self.open.get(r.vm.name) is inc and r.service == IN_CLOUD:
                self.policy.on_repair(self.ctx, inc)

    def _plan_shutdown(self, r: VMReplica, op: int, rng):
        """A running VM of the plan: orderly shutdown and final sync; (replica, incident, capture, synced, end)."""
        inc = self._open_incident(r, "plan", self.env.now, None)
        inc.detected_at = inc.decision_at = inc.failover_started_at = self.env.now
        r.set_service(FAILING_OVER)
        captured, ok, shut_at = yield from self._shutdown_and_sync(r, rng, op)
        if not ok:
            inc.kind = "host"  # the host failed before the final sync completed: data since the point is lost
        return r, inc, captured, ok, shut_at

    def _pending_data(self, r: VMReplica, op: int):
        """'latest': wait for the delta in flight (not past a stall) before the plan's pending data is processed."""
        tr = r.in_flight()
        if tr is not None and tr.active and self.model.upload.up:
            start = self.env.now
            yield r.wait_delivery()
            self.operations.append((r.vm.name, "failover", "pending_data", start, self.env.now, tr.data_bytes, op))

    def _plan_start(self, r: VMReplica, inc: Incident, rng, op: int, kind: str, captured: float, loss: float,
                    started: simpy.Event, excluded: float):
        """Start one prepared VM of the plan in the cloud (its SLA clock started with the plan)."""
        yield from self._run_in_cloud(r, inc, rng, op, kind, captured, loss, started, excluded)
        if inc.kind == "plan":
            inc.outcome = "planned failover"
            return
        self._failed_over(r, inc)

    def _actions(self, plan: str, where: str, actions, rng, op: int):
        if actions is None:
            return
        if actions.manual is not None:
            yield from self._step(plan, "plan", f"{where}: manual action", actions.manual, rng, op)
        if actions.script is not None:
            yield from self._step(plan, "plan", f"{where}: script", actions.script, rng, op)
