"""Old module paths that still import: drsim's modules moved into one subpackage per stage in version 0.2
(see CHANGELOG.md). ``import drsim.plots`` (or ``from drsim.policies import Policy``) keeps working and gives
the module, or package, that now holds those names. Imports nothing of drsim until an old path is used."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

#: old module path -> the module or package that holds its public names now
MOVED = {
    "drsim.units": "drsim.scenario.units",
    "drsim.distributions": "drsim.scenario.distributions",
    "drsim.fields": "drsim.scenario.fields",
    "drsim.recovery_config": "drsim.scenario.recovery",
    "drsim.churn": "drsim.model.churn",
    "drsim.streams": "drsim.model.streams",
    "drsim.schedule": "drsim.model.schedule",
    "drsim.link": "drsim.model.link",
    "drsim.points": "drsim.model.points",
    "drsim.recorder": "drsim.model.recorder",
    "drsim.failures": "drsim.model.failures",
    "drsim.recovery": "drsim.model",
    "drsim.policies": "drsim.model.policies",
    "drsim.metrics": "drsim.results.metrics",
    "drsim.findings": "drsim.results.findings",
    "drsim.output": "drsim.results.folders",
    "drsim.experiment": "drsim.experiments",
    "drsim.executors": "drsim.experiments.executors",
    "drsim.planner": "drsim.experiments.planner",
    "drsim.plots": "drsim.views.figures",
    "drsim.report": "drsim.views.report",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The target module is already executed."""


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(MOVED[fullname]))


def install() -> None:
    """Let the old paths import (once per interpreter)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
