"""Settings at dotted paths into a scenario: the paths (``"site.hosts[0].vms[1].churn.daily"``), setting values
at them (:func:`apply_settings`), reading ``--set`` and ``--lhs`` options, and the values of settings as shown in
tables and stored in JSON.

Imports only :mod:`drsim.scenario`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import yaml

from drsim.scenario import Problem, ScenarioError, parse_scenario
from drsim.scenario.document import Scenario, scenario_to_dict
from drsim.scenario.fields import Choices, Range, parse_lhs
from drsim.scenario.policy import params_model

__all__ = ["parse_path", "apply_settings", "parse_set", "parse_lhs_option"]

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)")


def parse_path(path: str, source: str = "sweep") -> tuple[str | int, ...]:
    """``"site.hosts[0].vms[1].churn.daily"`` -> ``("site", "hosts", 0, "vms", 1, "churn", "daily")``."""
    parts: list[str | int] = []
    for token in path.split("."):
        m = _SEGMENT.fullmatch(token.strip())
        if not m:
            raise ScenarioError([Problem(loc=(), message=f"bad setting path {path!r}: expected keys and indexes "
                                         "like 'link.upload' or 'site.hosts[0].vms[1].churn.daily'")], source)
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(parts)


def _set_value(data: dict[str, Any], loc: tuple[str | int, ...], value: Any, source: str) -> None:
    """Set ``loc`` in the plain scenario ``data``; missing or empty sections on the way are created."""
    node: Any = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        here = loc[:i]
        if isinstance(part, int):
            if not isinstance(node, list):
                raise ScenarioError([Problem(loc=here, message=f"is not a list: cannot take item [{part}]")], source)
            if part >= len(node):
                raise ScenarioError([Problem(loc=loc[:i + 1], message=f"index {part} is out of range "
                                             f"(the list has {len(node)} item{'s' if len(node) != 1 else ''})")],
                                    source)
        elif not isinstance(node, dict):
            raise ScenarioError([Problem(loc=here, message=f"is a value, not a section: cannot set {part!r} in it")],
                                source)
        if last:
            node[part] = value
            return
        child = node[part] if isinstance(part, int) else node.get(part)
        if child is None:
            if isinstance(loc[i + 1], int):
                raise ScenarioError([Problem(loc=loc[:i + 1], message="is not set: there is no list to index")],
                                    source)
            child = {}
            node[part] = child
        node = child


def _policy_params(name: str) -> set[str] | None:
    """The parameter names of policy ``name`` (None when it is unknown: validation reports it)."""
    model = params_model(name)
    return None if model is None else set(model.model_fields)


def apply_settings(scenario: Scenario, settings: Mapping[str, Any], source: str = "sweep") -> Scenario:
    """``scenario`` with each dotted ``path: value`` of ``settings`` set (values as in a scenario file, e.g.
    ``"20Mbit/s"``), validated again. Raises :class:`ScenarioError` naming the path of a bad value.

    When ``policy.name`` changes, the scenario's policy parameters that the new policy does not take are
    dropped (parameters set in ``settings`` are kept and checked).
    """
    data = scenario_to_dict(scenario)
    locs = {path: parse_path(path, source) for path in settings}
    for path, value in settings.items():
        if locs[path] == ("seed",):
            raise ScenarioError([Problem(loc=("seed",), message="is set for each replication by the experiment; "
                                         "give the experiment seed instead")], source)
        _set_value(data, locs[path], value, source)
    policy = data.get("policy")
    if ("policy", "name") in locs.values() and isinstance(policy, dict) and policy.get("name") != scenario.policy.name:
        accepted = _policy_params(str(policy.get("name")))
        explicit = {loc[1] for loc in locs.values() if len(loc) >= 2 and loc[0] == "policy"}
        if accepted is not None:
            data["policy"] = {k: v for k, v in policy.items() if k == "name" or k in accepted or k in explicit}
    return parse_scenario(data, source=source, base=scenario.source)


def _label(value: Any) -> Any:
    """A sweep value as shown in tables: numbers and booleans as they are, anything else as text."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value, default=str, separators=(", ", ": "))


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON."""
    return json.loads(json.dumps(value, default=str))


def _normalise_sweep(sweep: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for path, values in (sweep or {}).items():
        if not isinstance(path, str):
            raise TypeError(f"sweep paths are strings like 'link.upload', got {path!r}")
        vals = list(values) if isinstance(values, list | tuple) else [values]
        if not vals:
            raise ScenarioError([Problem(loc=parse_path(path), message="no values to sweep")], "sweep")
        out[path] = vals
    return out


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes: ``"{a: 1, b: 2},3"`` -> two items."""
    items, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    items.append("".join(cur).strip())
    return items


def _read_values(rest: str, loc: tuple[str | int, ...], source: str) -> list[Any]:
    """The comma-separated values of an option, each read as YAML."""
    values = []
    for item in _split_values(rest):
        if not item:
            raise ScenarioError([Problem(loc=loc, message="an empty value")], source)
        try:
            values.append(yaml.safe_load(item))
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise ScenarioError([Problem(loc=loc, message=f"cannot read value {item!r}: {problem}")], source) from None
    return values


def parse_set(text: str) -> tuple[str, list[Any]]:
    """``"link.upload=10Mbit/s,20Mbit/s"`` -> ``("link.upload", ["10Mbit/s", "20Mbit/s"])``. Each value is read
    as YAML, as in a scenario file (``4`` is a number, ``{dist: exponential, mean: 1y}`` a mapping)."""
    source = f"--set {text}"
    path, sep, rest = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise ScenarioError([Problem(loc=(), message="expected path=value[,value...], "
                                     "e.g. link.upload=10Mbit/s,20Mbit/s")], source)
    loc = parse_path(path, source)
    return path, _read_values(rest, loc, source)


def parse_lhs_option(text: str) -> tuple[str, Range | Choices]:
    """``"link.upload=10Mbit/s..50Mbit/s"`` -> ``("link.upload", Range(...))`` (``":log"`` after the range for a
    log scale); ``"replication.interval=30s,5m,15m"`` -> the choices, each value read as YAML as for
    :func:`parse_set`. Raises :class:`ScenarioError` naming the option."""
    source = f"--lhs {text}"
    path, sep, rest = text.partition("=")
    path = path.strip()
    if not sep or not path or not rest.strip():
        raise ScenarioError([Problem(loc=(), message="expected path=LO..HI or path=V1,V2,..., e.g. "
                                     "link.upload=10Mbit/s..50Mbit/s")], source)
    loc = parse_path(path, source)
    values = _read_values(rest, loc, source)
    try:
        return path, parse_lhs(values if len(values) > 1 else rest.strip())
    except ValueError as exc:
        raise ScenarioError([Problem(loc=loc, message=str(exc))], source) from None
