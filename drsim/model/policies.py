"""Failover policies: who decides, when, to fail over, from which recovery point, and when to fail back.

A policy is a small class. The model tells it about failures and repairs through three hooks; it acts
through the :class:`~drsim.model.context.Context` it is handed (``ctx.after``, ``ctx.detected``,
``ctx.fail_over``, ``ctx.wait``, ``ctx.fail_back``, ``ctx.run_plan``...). Parameters come from the
scenario's ``policy`` section, validated by the policy's ``Params`` model::

    policy: {name: threshold, threshold: 2h, quantile: 0.5}

Built-in policies: ``manual``, ``automatic``, ``wait-for-repair``, ``threshold``, ``recovery-plan``.
Other packages add policies through the ``drsim.policies`` entry-point group (see the README).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from drsim.scenario.distributions import Distribution
from drsim.scenario.policy import (
    ENTRY_POINT_GROUP,
    AutomaticParams,
    ManualParams,
    NoParams,
    PolicyError,
    RecoveryPlanParams,
    ThresholdParams,
    WaitForRepairParams,
    policy_classes,
    remember_policy,
    validate_policy,
)
from drsim.scenario.recovery import PolicyConfig

if TYPE_CHECKING:
    from drsim.model.context import Context
    from drsim.model.incidents import Incident
    from drsim.scenario.document import Scenario

__all__ = ["Policy", "PolicyError", "make_policy", "available_policies", "register", "ENTRY_POINT_GROUP",
           "Manual", "Automatic", "WaitForRepair", "Threshold", "RecoveryPlanPolicy", "BUILT_IN"]


class Policy:
    """Base class of failover policies. Subclasses set ``name`` and ``Params`` and override hooks.

    Hooks are called by the model at the simulated time of the event; they must not block. To act later,
    schedule a callback with ``ctx.after(delay_s, fn)``. Random draws come from ``ctx.rng_for(incident)``
    (one stream per incident, so common random numbers hold across runs) or ``ctx.rng``.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel, scenario: Scenario):
        self.params = params
        self.scenario = scenario

    def on_failure(self, ctx: Context, incident: Incident) -> None:
        """A VM went down on-premises (or corruption was detected). Default: do nothing (wait)."""

    def on_repair(self, ctx: Context, incident: Incident) -> None:
        """The on-premises side of a VM running in the cloud is usable again. Default: fail back now."""
        ctx.fail_back(incident)

    def on_operation(self, ctx: Context, incident: Incident, operation: str, outcome: str) -> None:
        """An operation (``failover``, ``failback``, ...) for ``incident`` ended with ``outcome``."""


def _detection(ctx: Context, incident: Incident, detect: Distribution) -> float:
    """Time until the operator notices; none when the incident arrives already detected (corruption)."""
    delay = detect.sample(ctx.rng_for(incident))
    return 0.0 if incident.detected_at == incident.detected_at else delay


def _when_noticed(ctx: Context, incident: Incident, detect: Distribution, then: Callable[[], None]) -> None:
    """After the detection delay, record the detection and call ``then()``."""

    def noticed() -> None:
        ctx.detected(incident)
        then()

    ctx.after(_detection(ctx, incident, detect), noticed)


def _reaction(ctx: Context, incident: Incident, respond: Distribution) -> float:
    """An operator's response time, plus the cloud portal's extra time when the dashboard is down."""
    portal = ctx.portal_delay(incident)  # drawn either way, so the dashboard's state shifts no later draw
    return respond.sample(ctx.rng_for(incident)) + (portal if not ctx.dashboard_up() else 0.0)


class Manual(Policy):
    """An operator notices after ``detect``, reacts after ``respond`` (plus the cloud portal's extra time
    when the dashboard server is down), fails over from ``point``; fails back after the repair at the next
    off-hours window (``failback: off-hours``) or at once (``immediate``)."""

    name = "manual"
    Params = ManualParams


    def on_failure(self, ctx: Context, incident: Incident) -> None:
        p = self.params
        _when_noticed(ctx, incident, p.detect,
                      lambda: ctx.after(_reaction(ctx, incident, p.respond), lambda: ctx.fail_over(incident, p.point)))

    def on_repair(self, ctx: Context, incident: Incident) -> None:
        if self.params.failback == "immediate":
            ctx.fail_back(incident)
        else:
            ctx.after(ctx.until_off_hours(), lambda: ctx.fail_back(incident))


class Automatic(Policy):
    """Health probes every ``probe_every``; after ``misses`` consecutive misses, fail over at once. (The real
    service never fails over by itself: this is a what-if.) Fails back as soon as the site is repaired."""

    name = "automatic"
    Params = AutomaticParams


    def on_failure(self, ctx: Context, incident: Incident) -> None:
        every = self.params.probe_every
        first_miss = math.floor(ctx.now / every) * every + every  # probes run on a fixed grid
        detect_at = first_miss + (self.params.misses - 1) * every

        def noticed() -> None:
            ctx.detected(incident)
            ctx.fail_over(incident, self.params.point)

        ctx.after(detect_at - ctx.now, noticed)


class WaitForRepair(Policy):
    """Never fail over: the baseline without disaster recovery. Outages last until the repair."""

    name = "wait-for-repair"
    Params = WaitForRepairParams


    def on_failure(self, ctx: Context, incident: Incident) -> None:
        _when_noticed(ctx, incident, self.params.detect, lambda: ctx.wait(incident))


class Threshold(Policy):
    """Like ``manual``, but fail over only if the outage is expected to outlast ``threshold``: the repair
    time's ``quantile`` (from the failure's repair distribution) is compared with the threshold."""

    name = "threshold"
    Params = ThresholdParams


    def on_failure(self, ctx: Context, incident: Incident) -> None:
        p = self.params

        def decide() -> None:
            expected: Distribution = ctx.repair_distribution(incident)
            if expected.quantile(p.quantile) > p.threshold:
                ctx.after(_reaction(ctx, incident, p.respond), lambda: ctx.fail_over(incident, p.point))
            else:
                ctx.wait(incident)

        _when_noticed(ctx, incident, p.detect, decide)


class RecoveryPlanPolicy(Policy):
    """Fail over a whole recovery plan (its groups in order) when any of its VMs fails; VMs in no plan are
    handled like ``manual``."""

    name = "recovery-plan"
    Params = RecoveryPlanParams


    def on_failure(self, ctx: Context, incident: Incident) -> None:
        p = self.params

        def react() -> None:
            delay = _reaction(ctx, incident, p.respond)
            if incident.vm in ctx.plan_vms(p.plan):
                ctx.after(delay, lambda: ctx.run_plan(p.plan, incident, p.point))
            else:
                ctx.after(delay, lambda: ctx.fail_over(incident, p.point))

        _when_noticed(ctx, incident, p.detect, react)


BUILT_IN: dict[str, type[Policy]] = {cls.name: cls for cls in (Manual, Automatic, WaitForRepair, Threshold,
                                                               RecoveryPlanPolicy)}


def register(cls: type[Policy]) -> type[Policy]:
    """Make a policy class selectable by its ``name`` in this Python session (e.g. from a notebook).
    Packages should use the ``drsim.policies`` entry-point group instead. Usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Policy)) or not cls.name:
        raise TypeError("register() takes a Policy subclass with a non-empty name")
    remember_policy(cls)
    return cls


for _cls in BUILT_IN.values():
    remember_policy(_cls)


def available_policies() -> dict[str, type[Policy] | Any]:
    """Every policy by name: built-ins, registered classes and the ``drsim.policies`` entry points (entry points
    as they are, loaded on use)."""
    return policy_classes()


def make_policy(config: PolicyConfig, scenario: Scenario) -> Policy:
    """Build the policy a scenario names, with its parameters validated. Raises :class:`PolicyError`."""
    cls, params = validate_policy(config, scenario)
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise PolicyError(("name",), f"entry point {config.name!r} is not a drsim Policy subclass")
    return cls(params, scenario)
