"""Failover policies: who decides, when, to fail over, from which recovery point, and when to fail back.

A policy is a small class. The model tells it about failures and repairs through three hooks; it acts
through the :class:`~drsim.recovery.Context` it is handed (``ctx.after``, ``ctx.detected``,
``ctx.fail_over``, ``ctx.wait``, ``ctx.fail_back``, ``ctx.run_plan``...). Parameters come from the
scenario's ``policy`` section, validated by the policy's ``Params`` model::

    policy: {name: threshold, threshold: 2h, quantile: 0.5}

Built-in policies: ``manual``, ``automatic``, ``wait-for-repair``, ``threshold``, ``recovery-plan``.
Other packages add policies through the ``drsim.policies`` entry-point group (see the README).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drsim.distributions import Distribution
from drsim.fields import Duration, RandomDuration, random_duration
from drsim.recovery_config import PolicyConfig

if TYPE_CHECKING:
    from drsim.recovery import Context, Incident
    from drsim.scenario import Scenario

__all__ = ["Policy", "PolicyError", "make_policy", "available_policies", "register", "ENTRY_POINT_GROUP",
           "Manual", "Automatic", "WaitForRepair", "Threshold", "RecoveryPlanPolicy"]

ENTRY_POINT_GROUP = "drsim.policies"
Point = Literal["latest", "latest-processed", "latest-app"]


class PolicyError(ValueError):
    """A policy name or parameter that cannot be used; ``loc`` is the place within ``policy``."""

    def __init__(self, loc: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


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


class _ParamModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _rd(raw: object) -> Any:
    return Field(default_factory=lambda: random_duration(raw))


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

    class Params(_ParamModel):
        detect: RandomDuration = _rd({"dist": "lognormal", "median": "10m", "p95": "45m"})
        respond: RandomDuration = _rd({"dist": "lognormal", "median": "15m", "p95": "1h"})
        point: Point = "latest"
        failback: Literal["off-hours", "immediate"] = "off-hours"

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

    class Params(_ParamModel):
        probe_every: Duration = Field(60.0, gt=0)
        misses: int = Field(3, ge=1)
        point: Point = "latest-processed"

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

    class Params(_ParamModel):
        detect: RandomDuration = _rd({"dist": "lognormal", "median": "10m", "p95": "45m"})

    def on_failure(self, ctx: Context, incident: Incident) -> None:
        _when_noticed(ctx, incident, self.params.detect, lambda: ctx.wait(incident))


class Threshold(Policy):
    """Like ``manual``, but fail over only if the outage is expected to outlast ``threshold``: the repair
    time's ``quantile`` (from the failure's repair distribution) is compared with the threshold."""

    name = "threshold"

    class Params(_ParamModel):
        threshold: Duration = Field(3600.0, gt=0)
        quantile: float = Field(0.5, gt=0, lt=1)
        detect: RandomDuration = _rd({"dist": "lognormal", "median": "10m", "p95": "45m"})
        respond: RandomDuration = _rd({"dist": "lognormal", "median": "15m", "p95": "1h"})
        point: Point = "latest"

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

    class Params(_ParamModel):
        plan: str
        detect: RandomDuration = _rd({"dist": "lognormal", "median": "10m", "p95": "45m"})
        respond: RandomDuration = _rd({"dist": "lognormal", "median": "15m", "p95": "1h"})
        point: Point = "latest"

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


_REGISTERED: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    """Make a policy class selectable by its ``name`` in this Python session (e.g. from a notebook).
    Packages should use the ``drsim.policies`` entry-point group instead. Usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Policy)) or not cls.name:
        raise TypeError("register() takes a Policy subclass with a non-empty name")
    _REGISTERED[cls.name] = cls
    return cls


def available_policies() -> dict[str, type[Policy]]:
    """Every policy by name: built-ins, registered classes and the ``drsim.policies`` entry points."""
    found = {**BUILT_IN, **_REGISTERED}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in found:
            found[ep.name] = ep  # loaded on use
    return found


def make_policy(config: PolicyConfig, scenario: Scenario) -> Policy:
    """Build the policy a scenario names, with its parameters validated. Raises :class:`PolicyError`."""
    found = available_policies()
    if config.name not in found:
        raise PolicyError(("name",), f"unknown policy {config.name!r}; available: {', '.join(sorted(found))}")
    cls = found[config.name]
    if not isinstance(cls, type):
        try:
            cls = cls.load()
        except Exception as exc:  # a broken third-party package: say which
            raise PolicyError(("name",), f"policy {config.name!r} could not be loaded: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, Policy)):
            raise PolicyError(("name",), f"entry point {config.name!r} is not a drsim Policy subclass")
    fields = cls.Params.model_fields
    accepted = set(fields) | {f.alias for f in fields.values() if f.alias}
    unknown = [key for key in config.params if key not in accepted]
    if unknown:  # whatever the policy's own model allows: a typo must not pass silently
        allowed = ", ".join(fields) or "none"
        raise PolicyError((unknown[0],), f"unknown parameter for policy {config.name!r} (its parameters: {allowed})")
    try:
        params = cls.Params.model_validate(config.params)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required key is missing"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(n for n in cls.Params.model_fields) or "none"
            msg = f"unknown parameter for policy {config.name!r} (its parameters: {allowed})"
        raise PolicyError(tuple(err["loc"]), msg) from None
    if isinstance(params, RecoveryPlanPolicy.Params) and params.plan not in {p.name for p in scenario.plans}:
        raise PolicyError(("plan",), f"unknown recovery plan {params.plan!r}")
    return cls(params, scenario)
