"""Failover policy parameters: the built-in policies' parameter models, and the check of a scenario's
``policy`` section.

A scenario names its policy and gives its parameters::

    policy: {name: threshold, threshold: 2h, quantile: 0.5}

The built-in policies' parameter models live here, so that a scenario is validated without the model;
their behaviour is in :mod:`drsim.model.policies`. Policies registered in the Python session
(:func:`drsim.model.policies.register`) or installed through the ``drsim.policies`` entry-point group bring
their own ``Params`` model, which :func:`validate_policy` uses the same way.

Imports only the scenario's field types, the policy section and :mod:`drsim.scenario.quoting`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drsim.scenario.fields import Duration, RandomDuration, random_default
from drsim.scenario.quoting import excerpt
from drsim.scenario.recovery import PolicyConfig

if TYPE_CHECKING:
    from drsim.scenario.document import Scenario

__all__ = ["ENTRY_POINT_GROUP", "Point", "PolicyError", "PolicyParams", "NoParams", "ManualParams",
           "AutomaticParams", "WaitForRepairParams", "ThresholdParams", "RecoveryPlanParams", "BUILT_IN_PARAMS",
           "remember_policy", "policy_classes", "policy_class", "validate_policy"]

ENTRY_POINT_GROUP = "drsim.policies"
Point = Literal["latest", "latest-processed", "latest-app"]


class PolicyError(ValueError):
    """A policy name or parameter that cannot be used; ``loc`` is the place within ``policy``."""

    def __init__(self, loc: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


class PolicyParams(BaseModel):
    """Base of policy parameter models: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class NoParams(PolicyParams):
    """A policy without parameters."""



# Detection and response times: assumptions (an operator notices in about 10 minutes and reacts in about 15,
# with long tails); see the README's table of sources.
_DETECT = {"dist": "lognormal", "median": "10m", "p95": "45m"}
_RESPOND = {"dist": "lognormal", "median": "15m", "p95": "1h"}


class ManualParams(PolicyParams):
    detect: RandomDuration = random_default(_DETECT)
    respond: RandomDuration = random_default(_RESPOND)
    point: Point = "latest"
    failback: Literal["off-hours", "immediate"] = "off-hours"


class AutomaticParams(PolicyParams):
    probe_every: Duration = Field(60.0, gt=0)
    misses: int = Field(3, ge=1)
    point: Point = "latest-processed"


class WaitForRepairParams(PolicyParams):
    detect: RandomDuration = random_default(_DETECT)


class ThresholdParams(PolicyParams):
    threshold: Duration = Field(3600.0, gt=0)
    quantile: float = Field(0.5, gt=0, lt=1)
    detect: RandomDuration = random_default(_DETECT)
    respond: RandomDuration = random_default(_RESPOND)
    point: Point = "latest"


class RecoveryPlanParams(PolicyParams):
    plan: str
    detect: RandomDuration = random_default(_DETECT)
    respond: RandomDuration = random_default(_RESPOND)
    point: Point = "latest"


#: The built-in policies' parameter models by policy name.
BUILT_IN_PARAMS: dict[str, type[PolicyParams]] = {
    "manual": ManualParams, "automatic": AutomaticParams, "wait-for-repair": WaitForRepairParams,
    "threshold": ThresholdParams, "recovery-plan": RecoveryPlanParams,
}

_CLASSES: dict[str, type] = {}  # policy classes by name: the built-ins and those registered in this session


def remember_policy(cls: type) -> None:
    """Make a policy class (anything with a ``name`` and a ``Params`` model) known by its name."""
    _CLASSES[cls.name] = cls


def policy_classes() -> dict[str, Any]:
    """Every known policy by name: classes remembered in this session, then the ``drsim.policies`` entry points
    (as entry points, loaded on use)."""
    found: dict[str, Any] = dict(_CLASSES)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in found:
            found[ep.name] = ep
    for name in BUILT_IN_PARAMS:
        found.setdefault(name, name)  # before the model is imported: the name stands for the class
    return found


def policy_class(name: str) -> Any:
    """The policy class (or, for a built-in before the model is imported, its name) known as ``name``.
    Raises :class:`PolicyError` for an unknown name or an entry point that does not load."""
    if name in _CLASSES:  # a class known in this session comes first anyway: no need to scan the entry points
        return _CLASSES[name]
    found = policy_classes()
    if name not in found:
        raise PolicyError(("name",), f"unknown policy {excerpt(name)}; available: {', '.join(sorted(found))}")
    cls = found[name]
    if not isinstance(cls, type | str):
        try:
            cls = cls.load()
        except Exception as exc:  # a broken third-party package: say which
            raise PolicyError(("name",), f"policy {excerpt(name)} could not be loaded: {exc}") from None
        params = getattr(cls, "Params", None)
        if not (isinstance(cls, type) and isinstance(params, type) and issubclass(params, BaseModel)):
            raise PolicyError(("name",), f"entry point {excerpt(name)} is not a drsim Policy subclass")
    return cls


def _params_model(cls: Any) -> type[BaseModel]:
    return BUILT_IN_PARAMS[cls] if isinstance(cls, str) else cls.Params


def params_model(name: str) -> type[BaseModel] | None:
    """The parameter model of policy ``name`` (None when it is unknown or does not load)."""
    try:
        return _params_model(policy_class(name))
    except PolicyError:
        return None


def validate_policy(config: PolicyConfig, scenario: Scenario) -> tuple[Any, BaseModel]:
    """(the policy class, its validated parameters) for a scenario's ``policy`` section. Raises
    :class:`PolicyError` located within the section."""
    cls = policy_class(config.name)
    model = _params_model(cls)
    fields = model.model_fields
    accepted = set(fields) | {f.alias for f in fields.values() if f.alias}
    unknown = [key for key in config.params if key not in accepted]
    if unknown:  # whatever the policy's own model allows: a typo must not pass silently
        allowed = ", ".join(fields) or "none"
        raise PolicyError((unknown[0],), f"unknown parameter for policy {excerpt(config.name)} (its parameters: "
                                         f"{allowed})")
    try:
        params = model.model_validate(config.params)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required key is missing"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(n for n in model.model_fields) or "none"
            msg = f"unknown parameter for policy {excerpt(config.name)} (its parameters: {allowed})"
        raise PolicyError(tuple(err["loc"]), msg) from None
    if isinstance(params, RecoveryPlanParams) and params.plan not in {p.name for p in scenario.plans}:
        raise PolicyError(("plan",), f"unknown recovery plan {excerpt(params.plan)}")
    return cls, params
