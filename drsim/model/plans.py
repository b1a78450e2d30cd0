"""Operations run on a schedule or over groups of VMs: maintenance windows (planned failover of a host's VMs),
drills (test failovers) and recovery plans (groups of VMs failed over in order, with manual actions and
scripts between the groups).

:class:`Plans` is mixed into :class:`~drsim.model.recovery.Recovery`, which holds the state declared below;
the operations it starts are those of :class:`~drsim.model.operations.Operations`. Times in seconds.

Imports only :mod:`drsim.model.failures`, :mod:`drsim.model.incidents`, :mod:`drsim.model.replication` (the
VM states) and the scenario (and the model's other classes for hints).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

from drsim.model.codes import DOWN, IN_CLOUD, ONPREM, REPLICATING
from drsim.model.failures import resolve_time
from drsim.model.incidents import Incident
from drsim.model.replication import VMReplica

if TYPE_CHECKING:
    from drsim.model.context import Context
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
    _failbacks: dict[str, simpy.Process]
    _plans_running: set[str]
    _plan_group: dict[str, int]

    # --- maintenance (planned failover of a host's VMs) ---------------------------------------------

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
                elif r.service == ONPREM and r.rep_state in REPLICATING:
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
