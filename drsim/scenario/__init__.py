"""The input language: what a scenario file may say, and its checks.

Units and field types, random quantities (``{dist: ...}``), the pydantic models of every section, YAML
loading with located errors, cross-reference checks, warnings and the JSON Schema. Nothing here imports
the model or any later stage: a scenario is validated without simulating anything.
"""

from drsim.scenario.checks import scenario_warnings
from drsim.scenario.document import ExperimentSection, Scenario, scenario_hash, scenario_to_dict
from drsim.scenario.link import Link, Throttle
from drsim.scenario.loading import Check, load_scenario, parse_scenario
from drsim.scenario.problems import Problem, ScenarioError, location_text
from drsim.scenario.replication import SUPPORTED_INTERVALS, Initial, Objectives, Replication
from drsim.scenario.schema import scenario_schema
from drsim.scenario.site import VM, Churn, Disk, Host, Site, Trace

__all__ = ["Scenario", "ScenarioError", "Problem", "Check", "load_scenario", "parse_scenario", "scenario_schema",
           "scenario_warnings", "scenario_hash", "scenario_to_dict", "location_text", "SUPPORTED_INTERVALS",
           "ExperimentSection", "Site", "Host", "VM", "Disk", "Churn", "Trace", "Link", "Throttle", "Replication",
           "Initial", "Objectives"]
