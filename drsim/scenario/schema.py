"""The JSON Schema of scenario files, for editors' autocompletion and checks as one types.

Imports only :mod:`drsim.scenario.document`.
"""

from __future__ import annotations

from typing import Any

from drsim.scenario.document import Scenario

__all__ = ["scenario_schema"]


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files (for editor autocompletion)."""
    schema = Scenario.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "drsim scenario"
    return schema
