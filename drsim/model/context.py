"""The API failover policies act through: :class:`Context`.

A policy sees the simulated time, the VMs' states, whether the management dashboard runs and its own
random streams, and acts on an incident: record its detection, fail over, wait for the repair, fail back,
run a recovery plan, or call back later. Every action goes to the run's
:class:`~drsim.model.recovery.Recovery`. Times in seconds.

Imports only :mod:`drsim.model.incidents`, :mod:`drsim.model.codes` (the VM states) and the scenario's
distributions (and the orchestrator for hints).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from drsim.model.codes import STATES
from drsim.model.incidents import Incident
from drsim.scenario.distributions import Distribution

if TYPE_CHECKING:
    from drsim.model.recovery import Recovery

__all__ = ["Context"]


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
