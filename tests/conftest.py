"""Shared helpers: tiny scenarios built in code."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from drsim.scenario.document import Scenario
from drsim.scenario.loading import parse_scenario


def base_scenario() -> dict[str, Any]:
    """One host, one VM, constant churn, no throttle, no setup time: closed forms apply."""
    return {
        "name": "tiny",
        "duration": "1d",
        "seed": 1,
        "site": {
            "hosts": [
                {
                    "name": "H1",
                    "os": "Windows Server 2016",
                    "vms": [{"name": "vm1", "disks": ["10GB"], "churn": {"rate": "100kB/s"}}],
                }
            ]
        },
        "link": {"upload": "8Mbit/s", "download": "80Mbit/s", "efficiency": 1.0, "compression": 1.0},
        "replication": {"interval": "5m", "retention": "24h", "setup": 0},
    }


DELETE = object()  # a value for set_path that removes the key


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b[0].c``-style ``path`` in nested ``data``: missing mappings are created, an index one past the
    end of a list appends, and DELETE removes the key."""
    import re

    parts: list[str | int] = []
    for token in path.split("."):
        m = re.fullmatch(r"([^\[]+)((?:\[\d+\])*)", token)
        assert m, token
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    node: Any = data
    for p in parts[:-1]:
        if isinstance(p, str) and p not in node:
            node[p] = {}
        node = node[p]
    if value is DELETE:
        del node[parts[-1]]
    elif isinstance(node, list) and parts[-1] == len(node):
        node.append(value)
    else:
        node[parts[-1]] = value


def make_scenario(changes: dict[str, Any] | None = None, base: dict[str, Any] | None = None) -> Scenario:
    data = copy.deepcopy(base or base_scenario())
    for path, value in (changes or {}).items():
        set_path(data, path, value)
    return parse_scenario(data, source="<test>")


@pytest.fixture
def tiny() -> Scenario:
    return make_scenario()
