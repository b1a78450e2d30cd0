"""The input language: what a scenario file may say, and its checks.

Units and field types, random quantities (``{dist: ...}``), the pydantic models of every section, YAML
loading with located errors, cross-reference checks, warnings and the JSON Schema. Nothing here imports
the model or any later stage: a scenario is validated without simulating anything.
"""

from drsim.scenario.document import (
    SUPPORTED_INTERVALS,
    Check,
    ExperimentSection,
    Problem,
    Scenario,
    ScenarioError,
    load_scenario,
    location_text,
    parse_scenario,
    scenario_hash,
    scenario_schema,
    scenario_to_dict,
    scenario_warnings,
)

__all__ = ["Scenario", "ScenarioError", "Problem", "Check", "load_scenario", "parse_scenario", "scenario_schema",
           "scenario_warnings", "scenario_hash", "scenario_to_dict", "location_text", "SUPPORTED_INTERVALS",
           "ExperimentSection"]
