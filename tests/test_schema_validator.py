"""``drsim schema`` under a standard JSON Schema validator (the ``jsonschema`` package with format checking, the
rules check-jsonschema and editors' YAML language servers apply): it must accept every file drsim accepts."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from drsim.scenario.loading import parse_scenario
from drsim.scenario.schema import scenario_schema
from tests.conftest import base_scenario

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted((ROOT / "scenarios").glob("*.yaml"))
Validator = jsonschema.Draft202012Validator


class _JsonTypes(yaml.SafeLoader):
    """YAML as an editor or check-jsonschema sees it: JSON types only, so date-times stay strings."""


_JsonTypes.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _validator() -> jsonschema.protocols.Validator:
    return Validator(scenario_schema(), format_checker=Validator.FORMAT_CHECKER)


def test_the_format_checker_checks_date_times():
    # without rfc3339-validator (jsonschema[format-nongpl]) 'date-time' is not checked and every test here passes
    assert not Validator.FORMAT_CHECKER.conforms("2026-03-02T08:00:00", "date-time")


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_every_bundled_scenario_is_valid_under_the_schema(path):
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_JsonTypes)
    assert [e.message for e in _validator().iter_errors(doc)] == []


def test_the_complete_annotated_example_is_valid_under_the_schema():
    text = (ROOT / "scenarios" / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Complete annotated example.*?```yaml\n(.*?)```", text, re.S).group(1)
    doc = yaml.load(block, Loader=_JsonTypes)
    assert doc["start"] == "2026-03-02T08:00:00"
    assert [e.message for e in _validator().iter_errors(doc)] == []


@pytest.mark.parametrize("start", ["2026-03-02T08:00:00", "2026-03-02T08:00", "2026-03-02 08:00", "2026-03-02",
                                   "2026-03-02t08:00:00.5"])
def test_every_calendar_start_drsim_accepts_the_schema_accepts(start):
    data = copy.deepcopy(base_scenario())
    data["start"] = start
    assert parse_scenario(data).start is not None
    assert [e.message for e in _validator().iter_errors(data)] == []


@pytest.mark.parametrize("start", ["2026-03-02T08:00:00Z", "1700000000", "March 2nd"])
def test_a_calendar_start_drsim_refuses_the_schema_refuses(start):
    data = copy.deepcopy(base_scenario())
    data["start"] = start
    assert list(_validator().iter_errors(data))
