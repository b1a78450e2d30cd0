"""Scenario files: resolved values, and located, readable errors for every kind of bad input."""

from __future__ import annotations

import json
import re
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from drsim.scenario.checks import scenario_warnings
from drsim.scenario.churn import load_trace
from drsim.scenario.distributions import Empirical, LogNormal
from drsim.scenario.document import Scenario, scenario_hash, scenario_to_dict
from drsim.scenario.loading import load_scenario, parse_scenario
from drsim.scenario.problems import Problem, ScenarioError, location_text
from drsim.scenario.replication import SUPPORTED_INTERVALS
from drsim.scenario.schema import scenario_schema
from drsim.scenario.site import Host
from tests.conftest import DELETE, set_path

BUNDLED = Path(__file__).resolve().parents[1] / "scenarios" / "essentials-office.yaml"
GiB = 2.0**30

# ----------------------------------------------------------------------------------------------------
# Helpers


def minimal() -> dict[str, Any]:
    """The smallest valid scenario: one host, one VM with one 10GiB disk."""
    return {
        "name": "tiny",
        "duration": "1d",
        "site": {
            "hosts": [
                {"name": "h1", "vms": [{"name": "vm1", "disks": ["10GiB"], "churn": {"rate": "100kB/s"}}]},
            ]
        },
        "link": {"upload": "10Mbit/s", "download": "50Mbit/s"},
    }


def write(tmp_path: Path, changes: dict[str, Any] | None = None, name: str = "scenario.yaml") -> Path:
    """Write the minimal scenario with ``changes`` (dotted path -> value) applied; return the path."""
    data = minimal()
    for path, value in (changes or {}).items():
        set_path(data, path, value)
    return write_text(tmp_path, yaml.safe_dump(data, sort_keys=False), name)


def write_text(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    return exc.value


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the ``occurrence``-th match of ``needle``."""
    seen = 0
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return i
    raise AssertionError(f"{needle!r} not in {path}")


def assert_problem(err: ScenarioError, path: Path, place: str, line: int, message: str) -> None:
    """``err`` has exactly one problem, at ``place`` on ``line`` of ``path``, saying ``message``."""
    assert len(err.problems) == 1, str(err)
    (p,) = err.problems
    assert location_text(p.loc) == place
    assert p.line == line, str(err)
    text = str(err)
    m = re.fullmatch(
        re.escape(f"{path}:{line}:") + r"(\d+): " + re.escape(f"{place}: " if place else "") + "(.*)", text
    )
    assert m, text
    assert m.group(2) == message
    assert int(m.group(1)) == p.column


VM = "site.hosts[0].vms[0]"
OS_EXPECTED = (
    "expected a Windows Server version: 2008, 2008 R2, 2012, 2012 R2, 2016, 2019, 2022 or 2025 "
    "(e.g. 'Windows Server 2016'), "
)
SCENARIO_NAME = (
    "a scenario name starts with a letter or digit and holds only letters, digits, '.', '_' and '-' "
    "(it names the results folder), "
)
DIST_NAMES = "fixed, exponential, lognormal, uniform, weibull, triangular, empirical"


def three_vms() -> list[dict[str, Any]]:
    return [{"name": f"vm{i}", "disks": ["10GiB", "20GiB"], "churn": {"rate": "100kB/s"}} for i in (1, 2, 3)]


# ----------------------------------------------------------------------------------------------------
# The bundled scenario


@pytest.fixture(scope="module")
def bundled() -> Scenario:
    return load_scenario(BUNDLED)


def test_bundled_link(bundled):
    assert bundled.link.upload == 20e6 / 8 == 2.5e6
    assert bundled.link.download == 100e6 / 8
    assert bundled.link.efficiency == 0.9
    assert bundled.link.compression == 1.0  # the service has no compression option
    t = bundled.link.throttle
    assert t is not None
    assert t.work_limit == 10e6 / 8
    assert t.off_limit == 20e6 / 8
    assert t.work_hours == (8 * 3600.0, 18 * 3600.0)
    assert t.weekday_numbers == frozenset({0, 1, 2, 3, 4})


def test_bundled_replication(bundled):
    r = bundled.replication
    assert r.interval == 300.0
    assert r.retention == 24 * 3600.0
    assert r.app_consistent_every == 3600.0
    assert r.setup == LogNormal(20 * 60.0, 45 * 60.0)
    assert r.initial.start == "immediate"
    assert r.initial.batches == [["Essentials", "ramh12v03"], ["ramh157v02", "ramh12v02"], ["ramh157v01"]]
    assert bundled.initial_start_offset() == 0.0
    assert (bundled.objectives.rpo, bundled.objectives.rto) == (900.0, 7200.0)


def test_bundled_top_level(bundled):
    assert bundled.name == "essentials-office"
    assert bundled.duration == 30 * 86400.0
    assert bundled.start == datetime(2026, 3, 2, 8, 0, 0)
    assert bundled.seed == 42
    assert bundled.source == BUNDLED


def test_bundled_vms_and_disks(bundled):
    assert [(h.name, v.name) for h, v in bundled.vms()] == [
        ("RAM-H1-7", "ramh157v01"),
        ("RAM-H1-7", "ramh157v02"),
        ("RAM-H1-2", "Essentials"),
        ("RAM-H1-2", "ramh12v02"),
        ("RAM-H1-2", "ramh12v03"),
    ]
    fs = bundled.vm("ramh157v01")
    assert [d.size for d in fs.disks] == [127 * GiB, 500 * GiB]
    assert [d.used for d in fs.disks] == [60 * GiB, 320 * GiB]
    assert fs.disk_size == 627 * GiB
    assert fs.copy_bytes == 380 * GiB
    dc = bundled.vm("ramh12v03")
    assert dc.disks[0].size == 60 * GiB
    assert dc.disks[0].used is None
    assert dc.copy_bytes == dc.disk_size == 60 * GiB
    assert fs.churn.daily == pytest.approx(0.02)
    assert fs.churn.profile == "office"
    assert fs.churn.weekend == 0.2
    assert fs.threads == 4 and fs.protect is True
    with pytest.raises(KeyError):
        bundled.vm("nope")


def test_bundled_dashboard_vm(bundled):
    assert [v.name for _, v in bundled.vms() if v.dashboard] == ["Essentials"]


def test_bundled_hosts_are_supported_and_no_warnings(bundled):
    assert [(h.os, h.supported) for h in bundled.site.hosts] == [
        ("Windows Server 2016", True),
        ("Windows Server 2012 R2", True),
    ]
    assert scenario_warnings(bundled) == []


def test_minimal_scenario_defaults(tmp_path):
    s = load_scenario(write(tmp_path))
    assert s.duration == 86400.0
    assert s.start is None and s.seed == 0
    assert s.link.upload == 1.25e6 and s.link.download == 6.25e6
    assert s.link.efficiency == 0.9 and s.link.compression == 1.0 and s.link.throttle is None
    vm = s.vm("vm1")
    assert vm.disk_size == 10 * GiB
    assert vm.churn.rate == 100e3
    assert s.replication.interval == 300.0
    assert s.replication.retention == 86400.0
    assert s.replication.setup.mean == 900.0
    assert (s.objectives.rpo, s.objectives.rto) == (900.0, 7200.0)
    assert s.site.hosts[0].os == "Windows Server 2016"
    assert SUPPORTED_INTERVALS == (30.0, 300.0, 900.0)


# ----------------------------------------------------------------------------------------------------
# Malformed files


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    err = load_error(path)
    assert str(err) == f"{path}: file not found"


def test_malformed_yaml_gives_the_line(tmp_path):
    path = write_text(tmp_path, "name: tiny\nduration: 1d\nsite: [\n  a: b\nlink: {\n")
    err = load_error(path)
    assert len(err.problems) == 1
    assert err.problems[0].line == 5
    assert str(err) == (f"{path}:5:5: malformed YAML: the '[' opened on line 3 is not closed before this line (or "
                        "a ',' is missing)")


def test_tab_indentation(tmp_path):
    path = write_text(tmp_path, "name: tiny\n\tduration: 1d\n")
    err = load_error(path)
    assert str(err) == f"{path}:2:1: malformed YAML: a tab character: YAML indents with spaces only"


BAD_INDENT = ("bad indentation: this line does not line up with the lines above it in the block that starts on line "
              "{}; indent the keys of one mapping (the '-' of one list) by the same number of spaces")


@pytest.mark.parametrize(("shift", "message"), [
    (-1, BAD_INDENT.format(5)),  # churn one space left of disks: neither the VM's key nor the host's (line 5)
    (2, "a ':' that cannot be read here: the key on this line is indented deeper than the key above it, or a value "
        "contains ': ' and needs quotes")])
def test_indentation_errors_are_said_plainly_with_the_line(tmp_path, shift, message):
    text = write(tmp_path).read_text()
    lines = text.splitlines()
    k = next(i for i, line in enumerate(lines) if line.strip().startswith("churn:"))
    lines[k] = " " * (len(lines[k]) - len(lines[k].lstrip()) + shift) + lines[k].lstrip()
    path = write_text(tmp_path, "\n".join(lines) + "\n", "indent.yaml")
    err = load_error(path)
    assert len(err.problems) == 1
    assert err.problems[0].line == k + 1
    assert err.problems[0].message == f"malformed YAML: {message}"
    assert "<block" not in str(err) and "block collection" not in str(err)


def test_a_key_without_colon_is_located_on_its_own_line(tmp_path):
    path = write_text(tmp_path, "name: tiny\nduration\nseed: 1\n")
    err = load_error(path)
    assert str(err) == (f"{path}:2:1: malformed YAML: a key without ':' (write 'key: value'), or a line indented "
                        "like a key by mistake")


def test_duplicate_key(tmp_path):
    path = write_text(tmp_path, "name: tiny\nduration: 1d\nname: other\n")
    err = load_error(path)
    assert str(err) == f"{path}:3:1: malformed YAML: duplicate key 'name'"


def test_nested_duplicate_key(tmp_path):
    text = write(tmp_path).read_text().replace("rate: 100kB/s", "rate: 100kB/s\n        rate: 1MB/s")
    path = write_text(tmp_path, text, "dup.yaml")
    err = load_error(path)
    line = line_of(path, "rate: 1MB/s")
    assert str(err) == f"{path}:{line}:9: malformed YAML: duplicate key 'rate'"


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str"), ("5\n", "int")])
def test_top_level_not_a_mapping(tmp_path, text, kind):
    path = write_text(tmp_path, text)
    err = load_error(path)
    assert str(err) == f"{path}: expected a mapping of scenario keys at the top level, got {kind}"


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing here yet\n", "---\n"])
def test_empty_file(tmp_path, text):
    path = write_text(tmp_path, text)
    err = load_error(path)
    assert [p.loc for p in err.problems] == [()]
    assert str(err) == f"{path}: the file is empty"


def test_parse_scenario_of_nothing():
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(None, source="<test>")
    assert str(exc.value) == "<test>: the file is empty"


def test_not_utf8(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    err = load_error(path)
    assert str(err).startswith(f"{path}: cannot read the file: 'utf-8' codec can't decode byte 0xff")


# ----------------------------------------------------------------------------------------------------
# Unknown keys


@pytest.mark.parametrize(
    ("changes", "place", "needle", "message"),
    [
        (
            {"replication.intervl": "5m"},
            "replication.intervl",
            "intervl:",
            "unknown key 'intervl' (did you mean 'interval'?)",
        ),
        (
            {"durration": "1d"},
            "durration",
            "durration:",
            "unknown key 'durration' (did you mean 'duration'?)",
        ),
        ({f"{VM}.disk": ["1GiB"]}, f"{VM}.disk", "disk:", "unknown key 'disk' (did you mean 'disks'?)"),
        (
            {f"{VM}.disks": [{"size": "10GiB", "usd": "1GiB"}]},
            f"{VM}.disks[0].usd",
            "usd:",
            "unknown key 'usd' (did you mean 'used'?)",
        ),
        (
            {f"{VM}.churn.wekend": 0.5},
            f"{VM}.churn.wekend",
            "wekend:",
            "unknown key 'wekend' (did you mean 'weekend'?)",
        ),
        (
            {"link.throttle": {"work_limit": "5Mbit/s", "of_limit": "1Mbit/s"}},
            "link.throttle.of_limit",
            "of_limit:",
            "unknown key 'of_limit' (did you mean 'off_limit'?)",
        ),
        (
            {"replication.initial.batchs": [["vm1"]]},
            "replication.initial.batchs",
            "batchs:",
            "unknown key 'batchs' (did you mean 'batches'?)",
        ),
        (
            {f"{VM}.churn": {"trace": {"file": "t.csv", "repet": False}}},
            f"{VM}.churn.trace.repet",
            "repet:",
            "unknown key 'repet' (did you mean 'repeat'?)",
        ),
        ({"objectives.rpoo": "5m"}, "objectives.rpoo", "rpoo:", "unknown key 'rpoo' (did you mean 'rpo'?)"),
        (
            {"zzzzzz": 1},
            "zzzzzz",
            "zzzzzz:",
            "unknown key 'zzzzzz'; expected one of name, description, duration, start, seed, site, link, "
            "replication, objectives, failures, failover, policy, drills, maintenance, plans, prices, experiment",
        ),
    ],
)
def test_unknown_key(tmp_path, changes, place, needle, message):
    path = write(tmp_path, changes)
    err = load_error(path)
    assert_problem(err, path, place, line_of(path, needle), message)


def test_source_is_not_a_scenario_key(tmp_path):
    # where the scenario came from is internal (trace paths resolve against it), never set by the file
    path = write(tmp_path, {"source": "/etc"})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "source",
        line_of(path, "source:"),
        "unknown key 'source'; expected one of name, description, duration, start, seed, site, link, "
        "replication, objectives, failures, failover, policy, drills, maintenance, plans, prices, experiment",
    )


# ----------------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize(
    ("changes", "place", "needle", "message"),
    [
        # sizes
        (
            {f"{VM}.disks": ["10GiB", "0GiB"]},
            f"{VM}.disks[1].size",
            "- 0GiB",
            "must be greater than zero, got '0GiB'",
        ),
        (
            {f"{VM}.disks": ["-1GiB"]},
            f"{VM}.disks[0].size",
            "-1GiB",
            "must be greater than zero, got '-1GiB'",
        ),
        (
            {f"{VM}.disks": [10]},
            f"{VM}.disks[0].size",
            "- 10",
            "a size needs a unit, e.g. '10GB' or '10GiB', got 10",
        ),
        (
            {f"{VM}.disks": ["10 furlongs"]},
            f"{VM}.disks[0].size",
            "furlongs",
            "unknown size unit 'furlongs' in '10 furlongs' (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)",
        ),
        (
            {f"{VM}.disks": [{"size": "10GiB", "used": "11GiB"}]},
            f"{VM}.disks[0]",
            "size: 10GiB",
            "used must not exceed size",
        ),
        (
            {f"{VM}.disks": []},
            f"{VM}.disks",
            "disks:",
            "must list at least one item",
        ),
        # bandwidth
        ({"link.upload": "0Mbit/s"}, "link.upload", "upload:", "must be greater than zero, got '0Mbit/s'"),
        ({"link.upload": "-1Mbit/s"}, "link.upload", "upload:", "must be greater than zero, got '-1Mbit/s'"),
        ({"link.download": "0kbit/s"}, "link.download", "download:", "must be greater than zero, got '0kbit/s'"),
        (
            {"link.upload": 20},
            "link.upload",
            "upload:",
            "a rate needs a unit, e.g. '20Mbit/s' or '2MB/s', got 20",
        ),
        ({"link.efficiency": 0}, "link.efficiency", "efficiency:", "Input should be greater than 0 (got 0.0)"),
        (
            {"link.efficiency": "150%"},
            "link.efficiency",
            "efficiency:",
            "Input should be less than or equal to 1 (got 1.5)",
        ),
        # durations and replication policy
        ({"duration": "0s"}, "duration", "duration:", "must be greater than zero, got '0s'"),
        (
            {"duration": "5 parsecs"},
            "duration",
            "duration:",
            "unknown time unit 'parsecs' in '5 parsecs' (use ms, s, m, h, d, w or y)",
        ),
        ({"duration": True}, "duration", "duration:", "expected a duration like '5m', got True"),
        (
            {"replication.interval": "0s"},
            "replication.interval",
            "interval:",
            "must be greater than zero, got '0s'",
        ),
        (
            {"replication.interval": "-5m"},
            "replication.interval",
            "interval:",
            "must be greater than zero, got '-5m'",
        ),
        (
            {"replication.interval": "10m"},
            "replication.interval",
            "interval:",
            "the service replicates every 30s, 5m or 15m; got 10 min",
        ),
        (
            {"replication.interval": "1h"},
            "replication.interval",
            "interval:",
            "the service replicates every 30s, 5m or 15m; got 1 h",
        ),
        (
            {"replication.retention": "25h"},
            "replication.retention",
            "retention:",
            "recovery-point retention is 0 to 24h, got 1 d 1 h",
        ),
        (
            {"replication.retention": "-1h"},
            "replication.retention",
            "retention:",
            "must not be negative, got '-1h'",
        ),
        (
            {"replication.app_consistent_every": "13h"},
            "replication.app_consistent_every",
            "app_consistent_every:",
            "app-consistent snapshots are taken every 0 to 12h, got 13 h",
        ),
        ({"replication.setup": "-5m"}, "replication.setup", "setup:", "must not be negative, got '-5m'"),
        (
            {"replication.setup": {"dist": "gamma", "mean": "1h"}},
            "replication.setup",
            "dist: gamma",
            "unknown distribution 'gamma'; expected one of fixed, exponential, lognormal, uniform, weibull, "
            "triangular, empirical",
        ),
        (
            {"replication.setup": {"dist": "lognormal", "median": "1h", "p95": "30m"}},
            "replication.setup",
            "dist: lognormal",
            "lognormal needs 0 < median < p95",
        ),
        (
            {"replication.initial.start": "tomorrow"},
            "replication.initial.start",
            "start: tomorrow",
            "expected a duration like '30s', '5m', '2h' or '3d', got 'tomorrow'",
        ),
        ({"objectives.rto": 0}, "objectives.rto", "rto:", "must be greater than zero, got 0"),
        # names, hosts, throttle
        ({"name": "bad name"}, "name", "name: bad name", SCENARIO_NAME + "got 'bad name'"),
        ({"name": ".hidden"}, "name", "name: .hidden", SCENARIO_NAME + "got '.hidden'"),
        ({"name": "a/b"}, "name", "name: a/b", SCENARIO_NAME + "got 'a/b'"),
        ({"name": "-x"}, "name", "name:", SCENARIO_NAME + "got '-x'"),
        ({"seed": -1}, "seed", "seed:", "Input should be greater than or equal to 0 (got -1)"),
        (
            {"site.hosts[0].os": "Windows 10"},
            "site.hosts[0].os",
            "os:",
            OS_EXPECTED + "got 'Windows 10'",
        ),
        (
            {"site.hosts[0].os": "Windows Server 2010"},
            "site.hosts[0].os",
            "os:",
            OS_EXPECTED + "got 'Windows Server 2010'",
        ),
        (
            {"site.hosts[0].os": "Windows Server 2016 R2"},
            "site.hosts[0].os",
            "os:",
            OS_EXPECTED + "got 'Windows Server 2016 R2'",
        ),
        (
            {"replication.initial.start": "-1h"},
            "replication.initial.start",
            "start:",
            "the initial start offset must not be negative, got '-1h'",
        ),
        (
            {f"{VM}.threads": 0},
            f"{VM}.threads",
            "threads:",
            "Input should be greater than or equal to 1 (got 0)",
        ),
        (
            {"link.throttle": {"work_limit": "5Mbit/s", "work_hours": "18-08"}},
            "link.throttle.work_hours",
            "work_hours:",
            "work hours must start before they end within one day, got '18-08'",
        ),
        (
            {"link.throttle": {"work_limit": "5Mbit/s", "work_hours": "08:00-25:00"}},
            "link.throttle.work_hours",
            "work_hours:",
            "expected a time of day like '08:00', got '25:00'",
        ),
        (
            {"link.throttle": {"work_limit": "5Mbit/s", "work_days": ["mon", "funday"]}},
            "link.throttle.work_days[1]",
            "- funday",
            "Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun' (got 'funday')",
        ),
        (
            {"site.hosts": []},
            "site.hosts",
            "hosts:",
            "must list at least one item",
        ),
    ],
)
def test_bad_value(tmp_path, changes, place, needle, message):
    path = write(tmp_path, changes)
    err = load_error(path)
    assert_problem(err, path, place, line_of(path, needle), message)


def test_bad_disk_deep_in_the_site(tmp_path):
    vms = three_vms()
    vms[2]["disks"] = ["-5GB", "20GiB"]
    path = write(tmp_path, {"site.hosts[0].vms": vms})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "site.hosts[0].vms[2].disks[0].size",
        line_of(path, "-5GB"),
        "must be greater than zero, got '-5GB'",
    )


def test_bad_disk_on_second_host(tmp_path):
    path = write(
        tmp_path,
        {
            "site.hosts[1]": {
                "name": "h2",
                "vms": [{"name": "vm2", "disks": [{"size": "10GiB", "used": "20GiB"}], "churn": {"rate": "1kB/s"}}],
            }
        },
    )
    err = load_error(path)
    assert_problem(
        err, path, "site.hosts[1].vms[0].disks[0]", line_of(path, "size: 10GiB"), "used must not exceed size"
    )


def test_missing_required_key_points_at_the_enclosing_mapping(tmp_path):
    path = write(tmp_path, {f"{VM}.churn": DELETE})
    err = load_error(path)
    assert_problem(err, path, f"{VM}.churn", line_of(path, "- name: vm1"), "required key is missing")


def test_missing_top_level_key(tmp_path):
    path = write(tmp_path, {"link": DELETE})
    err = load_error(path)
    assert_problem(err, path, "link", 1, "required key is missing")


def test_several_problems_one_line_each(tmp_path):
    path = write(tmp_path, {"duration": "0s", "link.upload": "0Mbit/s"})
    err = load_error(path)
    lines = str(err).splitlines()
    assert len(err.problems) == 2 == len(lines)
    assert lines[0].startswith(f"{path}:{line_of(path, 'duration:')}:")
    assert lines[0].endswith(": duration: must be greater than zero, got '0s'")
    assert lines[1].startswith(f"{path}:{line_of(path, 'upload:')}:")
    assert lines[1].endswith(": link.upload: must be greater than zero, got '0Mbit/s'")


def test_huge_integer_duration(tmp_path):
    # float() of a 401-digit YAML integer overflows: a located error, not a traceback
    path = write_text(tmp_path, write(tmp_path).read_text().replace("duration: 1d", "duration: 1" + "0" * 400))
    err = load_error(path)
    # the 401 digits are cut to 27 and '...'
    assert_problem(err, path, "duration", line_of(path, "duration:"), "duration " + "1" + "0" * 26 + "... is too large")


@pytest.mark.parametrize(("dist", "shown"), [(["exponential"], "['exponential']"), ({"a": 1}, "{'a': 1}")])
def test_setup_with_a_list_or_mapping_as_dist(tmp_path, dist, shown):
    # unhashable in Python, but to the file's author just a name that is not a distribution
    path = write(tmp_path, {"replication.setup": {"dist": dist, "mean": "1h"}})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "replication.setup",
        line_of(path, "dist:"),
        f"unknown distribution {shown}; expected one of {DIST_NAMES}",
    )


@pytest.mark.parametrize("shape", [".nan", ".inf", "-1", "0"])
def test_setup_weibull_shape_not_positive_and_finite(tmp_path, shape):
    path = write_text(
        tmp_path,
        write(tmp_path, {"replication.setup": {"dist": "weibull", "shape": 9.0, "scale": "1h"}})
        .read_text()
        .replace("shape: 9.0", f"shape: {shape}"),
    )
    err = load_error(path)
    assert_problem(
        err,
        path,
        "replication.setup",
        line_of(path, "dist: weibull"),
        "weibull shape and scale must be positive and finite",
    )


def test_setup_weibull_non_numeric_shape(tmp_path):
    path = write(tmp_path, {"replication.setup": {"dist": "weibull", "shape": "abc", "scale": "1h"}})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "replication.setup",
        line_of(path, "dist: weibull"),
        "weibull shape must be a positive number, got 'abc'",
    )


# ----------------------------------------------------------------------------------------------------
# Churn

ONE_SOURCE = "give exactly one of 'daily' (e.g. 3%/day), 'rate' (e.g. 500kB/s) or 'trace' (a CSV file)"


@pytest.mark.parametrize(
    ("churn", "needle", "message"),
    [
        ({}, "churn:", ONE_SOURCE),
        ({"profile": "office"}, "profile: office", ONE_SOURCE),  # a block mapping is located at its first key
        ({"daily": "3%", "rate": "1MB/s"}, "daily:", ONE_SOURCE + "; got daily, rate"),
        ({"rate": "1MB/s", "trace": "t.csv"}, "rate:", ONE_SOURCE + "; got rate, trace"),
    ],
)
def test_churn_needs_exactly_one_source(tmp_path, churn, needle, message):
    path = write(tmp_path, {f"{VM}.churn": churn})
    err = load_error(path)
    assert_problem(err, path, f"{VM}.churn", line_of(path, needle), message)


@pytest.mark.parametrize(
    ("churn", "place", "needle", "message"),
    [
        (
            {"daily": "3%", "profile": "ofice"},
            "churn.profile",
            "profile:",
            "unknown profile 'ofice'; expected one of flat, office, office-backup, nightly-batch, "
            "morning-batch or 24 numbers",
        ),
        (
            {"daily": "3%", "profile": [1.0] * 23},
            "churn.profile",
            "- 1.0",  # located at the list
            "a profile lists 24 hourly multipliers, got 23",
        ),
        (
            {"daily": "3%", "profile": [0.0] * 24},
            "churn.profile",
            "- 0.0",
            "profile multipliers must be non-negative and not all zero",
        ),
        ({"daily": "0%"}, "churn.daily", "daily:", "must be greater than zero, got '0%'"),
        (
            {"daily": "3%", "weekend": -1},
            "churn.weekend",
            "weekend:",
            "Input should be greater than or equal to 0 (got -1.0)",
        ),
        (
            {"daily": 3},
            "churn.daily",
            "daily:",
            "a bare number is a fraction (0.03 = 3 %/day); write '3%' if you mean percent",
        ),
        (
            {"daily": 1.5},
            "churn.daily",
            "daily:",
            "a bare number is a fraction (0.03 = 3 %/day); write '1.5%' if you mean percent",
        ),
        ({"rate": "0MB/s"}, "churn.rate", "rate:", "must be greater than zero, got '0MB/s'"),
        (
            {"rate": "1MB"},
            "churn.rate",
            "rate:",
            "unknown rate unit 'MB' in '1MB' (use e.g. kbit/s, Mbit/s, Gbit/s, Mbps, MB/s)",
        ),
        (
            {"trace": "t.csv", "profile": "office"},
            "churn",
            "trace:",
            "a replayed trace already has its own shape: drop profile, weekend and variation",
        ),
    ],
)
def test_bad_churn(tmp_path, churn, place, needle, message):
    (tmp_path / "t.csv").write_text("timestamp,bytes\n0,1\n60,1\n")
    path = write(tmp_path, {f"{VM}.churn": churn})
    err = load_error(path)
    assert_problem(err, path, f"{VM}.{place}", line_of(path, needle), message)


def test_percentages_and_fractions(tmp_path):
    s = load_scenario(
        write(
            tmp_path,
            {"link.efficiency": "90%", f"{VM}.churn": {"daily": 0.03, "weekend": "20%"}},
        )
    )
    assert s.link.efficiency == pytest.approx(0.9)
    assert s.vm("vm1").churn.daily == pytest.approx(0.03)
    assert s.vm("vm1").churn.weekend == pytest.approx(0.2)
    # a bare 1 is a fraction: 100 % of the disk a day
    assert load_scenario(write(tmp_path, {f"{VM}.churn": {"daily": 1}})).vm("vm1").churn.daily == 1.0


def test_os_as_a_bare_year(tmp_path):
    s = load_scenario(write(tmp_path, {"site.hosts[0].os": 2019}))
    assert s.site.hosts[0].os == "2019"
    assert s.site.hosts[0].supported


def test_unquoted_work_hours(tmp_path):
    # YAML 1.1 reads 18:00 unquoted as the base-60 integer 1080
    text = write(tmp_path).read_text() + "  throttle: {work_limit: 5Mbit/s, work_hours: [08:00, 18:00]}\n"
    path = write_text(tmp_path, text, "hours.yaml")
    err = load_error(path)
    assert_problem(
        err,
        path,
        "link.throttle.work_hours",
        line_of(path, "work_hours"),
        "quote times of day, e.g. ['08:00', '18:00'] (YAML reads 18:00 unquoted as a number)",
    )
    quoted = write_text(tmp_path, text.replace("[08:00, 18:00]", "['08:30', '18:00']"), "quoted.yaml")
    assert load_scenario(quoted).link.throttle.work_hours == (8.5 * 3600, 18 * 3600.0)


def test_churn_daily_and_profile(tmp_path):
    s = load_scenario(write(tmp_path, {f"{VM}.churn": {"daily": "3%/day", "profile": "office", "weekend": 0.5}}))
    c = s.vm("vm1").churn
    assert (c.daily, c.rate, c.trace, c.profile, c.weekend) == (
        pytest.approx(0.03),
        None,
        None,
        "office",
        0.5,
    )


# ---- traces


def trace_scenario(tmp_path: Path, csv_text: str | None, file: str = "trace.csv") -> Path:
    if csv_text is not None:
        (tmp_path / file).write_text(csv_text, encoding="utf-8")
    return write(tmp_path, {f"{VM}.churn": {"trace": file}})


def trace_error(tmp_path: Path, csv_text: str | None, message_after_path: str) -> None:
    path = trace_scenario(tmp_path, csv_text)
    err = load_error(path)
    csv = tmp_path / "trace.csv"
    shown = csv if csv_text is None else csv.resolve()
    assert_problem(err, path, f"{VM}.churn.trace", line_of(path, "trace:"), f"churn trace {shown}{message_after_path}")


def test_trace_loads_relative_to_the_scenario(tmp_path):
    path = trace_scenario(tmp_path, "timestamp,bytes\n0,100\n60,200\n120,300\n")
    s = load_scenario(path)
    trace = s.vm("vm1").churn.trace
    assert trace is not None and trace.repeat is True
    assert s.trace_path(trace) == tmp_path / "trace.csv"


def test_trace_missing(tmp_path):
    trace_error(tmp_path, None, " not found")


def test_trace_missing_columns(tmp_path):
    trace_error(tmp_path, "time,bytes\n0,100\n60,200\n", " needs columns 'timestamp' and 'bytes' (missing timestamp)")


def test_trace_missing_both_columns(tmp_path):
    trace_error(tmp_path, "a,b\n0,100\n60,200\n", " needs columns 'timestamp' and 'bytes' (missing timestamp, bytes)")


def test_trace_non_numeric_bytes(tmp_path):
    trace_error(tmp_path, "timestamp,bytes\n0,100\n60,lots\n120,5\n", ", line 3: bytes 'lots' is not a number")


def test_trace_negative_bytes(tmp_path):
    trace_error(tmp_path, "timestamp,bytes\n0,100\n60,200\n120,-5\n", ", line 4: bytes must not be negative")


@pytest.mark.parametrize("third", ["60", "30"])
def test_trace_timestamps_must_increase(tmp_path, third):
    trace_error(tmp_path, f"timestamp,bytes\n0,100\n60,200\n{third},300\n", ", line 4: timestamps must increase")


def test_trace_needs_two_rows(tmp_path):
    trace_error(tmp_path, "timestamp,bytes\n0,100\n", " needs at least two rows")


def test_trace_empty_file(tmp_path):
    trace_error(tmp_path, "", " is not a readable CSV: No columns to parse from file")


def test_trace_infinite_bytes(tmp_path):
    trace_error(tmp_path, "timestamp,bytes\n0,100\n60,inf\n", ", line 3: bytes must be finite")


def test_trace_empty_bytes_cell(tmp_path):
    trace_error(tmp_path, "timestamp,bytes\n0,100\n60,\n", ", line 3: bytes is empty")


def test_trace_bad_timestamp_names_the_bad_row(tmp_path):
    # the first row is valid seconds; the bad one is row 3
    trace_error(
        tmp_path,
        "timestamp,bytes\n0,100\nnoon,200\n",
        ", line 3: timestamp 'noon' is not a number like the rows before it",
    )


def test_trace_bad_iso_timestamp(tmp_path):
    trace_error(
        tmp_path,
        "timestamp,bytes\n2026-03-02T08:00:00,1\nnoon,2\n",
        ", line 3: timestamp 'noon' is neither seconds nor an ISO date-time like 2026-03-02T08:00:00",
    )


def test_trace_infinite_timestamp(tmp_path):
    trace_error(tmp_path, "timestamp,bytes\n0,1\ninf,2\n", ", line 3: timestamp must be finite")


def test_trace_iso_timestamps_and_spaces(tmp_path):
    path = trace_scenario(tmp_path, "timestamp, bytes\n2026-03-02T08:00:00, 100\n2026-03-02T08:05:00, 300\n")
    s = load_scenario(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pandas format-inference warnings either
        times, nbytes, period = load_trace(s.trace_path(s.vm("vm1").churn.trace))
    assert times.tolist() == [0.0, 300.0]
    assert nbytes.tolist() == [100.0, 300.0]
    assert period == 600.0


# ----------------------------------------------------------------------------------------------------
# Cross-references


def test_unknown_vm_in_batches(tmp_path):
    path = write(tmp_path, {"replication.initial.batches": [["vm1"], ["ghost"]]})
    err = load_error(path)
    assert_problem(err, path, "replication.initial.batches[1][0]", line_of(path, "- ghost"), "unknown VM 'ghost'")


def test_unknown_vm_in_batches_suggests_a_close_name(tmp_path):
    path = write(tmp_path, {"replication.initial.batches": [["vm"]]})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "replication.initial.batches[0][0]",
        line_of(path, "- - vm"),
        "unknown VM 'vm' (did you mean 'vm1'?)",
    )


def test_vm_in_two_batches(tmp_path):
    path = write(tmp_path, {"replication.initial.batches": [["vm1"], ["vm1"]]})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "replication.initial.batches[1][0]",
        line_of(path, "- vm1", 2),
        "VM 'vm1' is in more than one batch",
    )


def test_empty_batch(tmp_path):
    path = write(tmp_path, {"replication.initial.batches": [["vm1"], []]})
    err = load_error(path)
    assert_problem(err, path, "replication.initial.batches[1]", line_of(path, "- []"), "a batch is empty")


def test_duplicate_vm_name(tmp_path):
    vms = three_vms()
    vms[2]["name"] = "vm1"
    path = write(tmp_path, {"site.hosts[0].vms": vms})
    err = load_error(path)
    assert_problem(err, path, "site.hosts[0].vms[2].name", line_of(path, "name: vm1", 2), "VM name 'vm1' is used twice")


def test_duplicate_vm_name_across_hosts(tmp_path):
    path = write(tmp_path, {"site.hosts[1]": {"name": "h2", "vms": minimal()["site"]["hosts"][0]["vms"]}})
    err = load_error(path)
    assert_problem(err, path, "site.hosts[1].vms[0].name", line_of(path, "name: vm1", 2), "VM name 'vm1' is used twice")


def test_duplicate_host_name(tmp_path):
    path = write(tmp_path, {"site.hosts[1]": {"name": "h1"}})
    err = load_error(path)
    assert_problem(err, path, "site.hosts[1].name", line_of(path, "name: h1", 2), "host name 'h1' is used twice")


def test_two_dashboard_vms(tmp_path):
    vms = three_vms()
    vms[0]["dashboard"] = True
    vms[2]["dashboard"] = True
    path = write(tmp_path, {"site.hosts[0].vms": vms})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "site.hosts[0].vms[2].dashboard",
        line_of(path, "dashboard: true", 2),
        "only one VM can run the management dashboard",
    )


def test_site_without_vms(tmp_path):
    path = write(tmp_path, {"site.hosts[0].vms": []})
    err = load_error(path)
    assert_problem(err, path, "site.hosts", line_of(path, "- name: h1"), "the site has no VMs")


def test_datetime_initial_start_needs_a_calendar_start(tmp_path):
    path = write(tmp_path, {"replication.initial.start": "2026-03-02T08:00:00"})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "replication.initial.start",
        line_of(path, "start:"),
        "a date-time start needs the scenario's calendar 'start'; or give an offset like 18h",
    )


def test_datetime_initial_start_with_a_calendar_start(tmp_path):
    s = load_scenario(
        write(tmp_path, {"start": "2026-03-02T08:00:00", "replication.initial.start": "2026-03-02T20:00:00"})
    )
    assert s.initial_start_offset() == 12 * 3600.0


def test_initial_start_before_the_scenario(tmp_path):
    path = write(tmp_path, {"start": "2026-03-02T08:00:00", "replication.initial.start": "2026-03-01T08:00:00"})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "replication.initial.start",
        line_of(path, "start: '2026-03-01"),
        "starts before the scenario",
    )


def test_initial_start_after_the_end(tmp_path):
    path = write(tmp_path, {"replication.initial.start": "2d"})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "replication.initial.start",
        line_of(path, "start: 2d"),
        "starts after the simulated period ends",
    )


def test_initial_start_offset(tmp_path):
    s = load_scenario(write(tmp_path, {"replication.initial.start": "18h"}))
    assert s.initial_start_offset() == 18 * 3600.0


def test_calendar_start_with_a_zone(tmp_path):
    path = write(tmp_path, {"start": "2026-03-02T08:00:00+01:00"})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "start",
        line_of(path, "start:"),
        "give the calendar start in site local time, without a zone",
    )


def test_initial_start_with_a_zone(tmp_path):
    path = write(tmp_path, {"start": "2026-03-02T08:00:00", "replication.initial.start": "2026-03-02T09:00:00+01:00"})
    err = load_error(path)
    assert_problem(
        err,
        path,
        "replication.initial.start",
        line_of(path, "start: '2026-03-02T09"),
        "give the date-time in site local time, without a zone",
    )


# ----------------------------------------------------------------------------------------------------
# parse_scenario and ScenarioError directly


def test_parse_scenario_without_a_file_names_the_source():
    data = minimal()
    data["duration"] = "0s"
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(data, source="<test>")
    assert str(exc.value) == "<test>: duration: must be greater than zero, got '0s'"
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(data)
    assert str(exc.value) == "<scenario>: duration: must be greater than zero, got '0s'"


def test_scenario_error_format():
    err = ScenarioError(
        [
            Problem(loc=("site", "hosts", 0, "vms", 2, "disks", 0), message="bad", line=7, column=9),
            Problem(loc=(), message="worse"),
        ],
        "f.yaml",
    )
    assert str(err) == "f.yaml:7:9: site.hosts[0].vms[2].disks[0]: bad\nf.yaml: worse"


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        ((), ""),
        (("duration",), "duration"),
        (("site", "hosts", 0, "vms", 2), "site.hosts[0].vms[2]"),
        (("replication", "initial", "batches", 1, 0), "replication.initial.batches[1][0]"),
    ],
)
def test_location_text(loc, text):
    assert location_text(loc) == text


# ----------------------------------------------------------------------------------------------------
# Hosts


@pytest.mark.parametrize(
    ("os", "supported"),
    [
        ("Windows Server 2008 R2", False),
        ("Windows Server 2012", False),
        ("Windows Server 2012 R2", True),
        ("Windows Server 2016", True),
        ("Windows Server 2019", True),
        ("Windows Server 2022", True),
        ("windows server 2012 r2", True),
        ("2019", True),
    ],
)
def test_host_supported(os, supported):
    assert Host(name="h", os=os).supported is supported


def test_unsupported_host_warns(tmp_path):
    s = load_scenario(write(tmp_path, {"site.hosts[0].os": "Windows Server 2012"}))
    assert scenario_warnings(s) == [
        "vm1: host h1 runs Windows Server 2012; hosts older than Windows Server 2012 R2 cannot be protected"
    ]
    s = load_scenario(write(tmp_path, {"site.hosts[0].os": "Windows Server 2012", f"{VM}.protect": False}))
    assert scenario_warnings(s) == []


# ----------------------------------------------------------------------------------------------------
# Warnings


def test_warning_for_15_minutes(tmp_path):
    s = load_scenario(write(tmp_path, {"replication.interval": "15m"}))
    assert s.replication.interval == 900.0
    warnings_ = scenario_warnings(s)
    assert len(warnings_) == 1
    assert warnings_[0].startswith("replication.interval: 15 minutes is a legacy frequency")


@pytest.mark.parametrize("interval", ["30s", "5m"])
def test_no_warning_for_current_intervals(tmp_path, interval):
    assert scenario_warnings(load_scenario(write(tmp_path, {"replication.interval": interval}))) == []


def test_warning_for_throttle_out_of_range(tmp_path):
    s = load_scenario(write(tmp_path, {"link.throttle": {"work_limit": "256kbit/s", "off_limit": "2Gbit/s"}}))
    assert scenario_warnings(s) == [
        "link.throttle.work_limit: the agent accepts 512 kbit/s to 1023 Mbit/s, got 256 kbit/s",
        "link.throttle.off_limit: the agent accepts 512 kbit/s to 1023 Mbit/s, got 2 Gbit/s",
    ]


def test_warning_for_high_churn(tmp_path):
    s = load_scenario(write(tmp_path, {f"{VM}.churn": {"rate": "3MB/s"}, "link.upload": "100Mbit/s"}))
    assert scenario_warnings(s) == [
        "vm1: mean churn 3.00 MB/s exceeds the 2 MB/s the service supports per VM on standard storage (support matrix)"
    ]
    # premium storage supports 5 MB/s (20 MB/s with writes of 16 KB or more)
    s = load_scenario(write(tmp_path, {f"{VM}.churn": {"rate": "6MB/s"}, "replication.target_storage": "premium",
                                       "link.upload": "100Mbit/s"}))
    assert scenario_warnings(s) == [
        "vm1: mean churn 6.00 MB/s exceeds the 5 MB/s the service supports per VM on premium storage (support matrix)"
    ]
    s = load_scenario(write(tmp_path, {f"{VM}.churn": {"rate": "6MB/s"}, "replication.target_storage": "premium",
                                       "replication.io_size": "16KB", "link.upload": "100Mbit/s"}))
    assert scenario_warnings(s) == []
    # a VM that is not protected does not replicate, so its churn is no concern
    s = load_scenario(write(tmp_path, {f"{VM}.churn": {"rate": "3MB/s"}, f"{VM}.protect": False}))
    assert scenario_warnings(s) == []


def test_warning_for_batched_vm_that_will_not_replicate(tmp_path):
    s = load_scenario(
        write(
            tmp_path,
            {
                f"{VM}.protect": False,
                "site.hosts[0].vms[1]": {"name": "vm2", "disks": ["1GiB"], "churn": {"rate": "1kB/s"}},
                "replication.initial.batches": [["vm1", "vm2"]],
            },
        )
    )
    assert scenario_warnings(s) == [
        "replication.initial.batches: vm1 is listed but will not replicate (protect: false, an unsupported host or "
        "a VM beyond the service's limits)"
    ]


# ----------------------------------------------------------------------------------------------------
# Schema


def test_schema():
    schema = scenario_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "drsim scenario"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert {"name", "duration", "start", "seed", "site", "link", "replication", "objectives"} <= set(
        schema["properties"]
    )
    assert set(schema["required"]) == {"name", "duration", "site", "link"}
    defs = schema["$defs"]
    for model in ("Site", "Host", "VM", "Churn", "Link", "Replication", "Objectives"):
        assert defs[model]["additionalProperties"] is False, model


def test_schema_is_json():
    schema = scenario_schema()
    assert json.loads(json.dumps(schema)) == schema


def test_schema_lists_only_file_keys():
    assert set(scenario_schema()["properties"]) == {
        "name",
        "description",
        "duration",
        "start",
        "seed",
        "site",
        "link",
        "replication",
        "objectives",
        "failures",
        "failover",
        "policy",
        "drills",
        "maintenance",
        "plans",
        "prices",
        "experiment",
    }


# ----------------------------------------------------------------------------------------------------
# Resolved scenario round trip and hash


def _round_trip(s: Scenario, base: Path | None = None) -> Scenario:
    text = yaml.safe_dump(scenario_to_dict(s), sort_keys=False)
    return parse_scenario(yaml.safe_load(text), source="<round trip>", base=base)


def test_round_trip_bundled(bundled):
    again = _round_trip(bundled, base=BUNDLED)
    assert scenario_hash(again) == scenario_hash(bundled)
    assert again == bundled


def test_round_trip_minimal(tmp_path):
    s = load_scenario(write(tmp_path))
    assert scenario_hash(_round_trip(s)) == scenario_hash(s)


def test_round_trip_everything(tmp_path):
    (tmp_path / "trace.csv").write_text("timestamp,bytes\n0,100\n60,200\n")
    path = write(
        tmp_path,
        {
            "start": "2026-03-02T08:00:00",
            "seed": 9,
            "site.hosts[0].vms[1]": {
                "name": "vm2",
                "disks": [{"size": "20GiB", "used": "5GiB"}, "1TB"],
                "churn": {"trace": "trace.csv"},
                "threads": 2,
                "dashboard": True,
            },
            "site.hosts[1]": {
                "name": "h2",
                "os": "Windows Server 2012 R2",
                "vms": [
                    {
                        "name": "vm3",
                        "disks": ["1GiB"],
                        "protect": False,
                        "churn": {
                            "daily": "3%/day",
                            "profile": [1.0] * 23 + [2.0],
                            "weekend": 0.5,
                            "variation": 0.2,
                        },
                    }
                ],
            },
            "link.throttle": {
                "work_days": ["mon", "sat"],
                "work_hours": "08:30-17:45",
                "work_limit": "5Mbit/s",
            },
            "link.compression": 1.7,
            "replication": {
                "interval": "30s",
                "retention": "2h",
                "app_consistent_every": "1h",
                "setup": {"dist": "empirical", "values": ["4m", "5m"]},
                "initial": {"start": "2026-03-02T20:00:00", "batches": [["vm2"], ["vm1", "vm3"]]},
            },
            "objectives": {"rpo": "2m", "rto": "1h"},
        },
    )
    s = load_scenario(path)
    assert s.replication.setup == Empirical((240.0, 300.0))
    trace = (tmp_path / "trace.csv").resolve()
    # the dump names the trace by its absolute path, so the copy reads the same file from anywhere
    assert scenario_to_dict(s)["site"]["hosts"][0]["vms"][1]["churn"]["trace"]["file"] == str(trace)
    for base in (path, None, tmp_path / "elsewhere" / "copy.yaml"):
        again = _round_trip(s, base=base)
        assert again.trace_path(again.vm("vm2").churn.trace) == trace
        assert scenario_hash(again) == scenario_hash(s)
        assert scenario_to_dict(again) == scenario_to_dict(s)
    # the objects differ only in how the trace is named (and in the private source path)
    expected = s.model_dump()
    expected["site"]["hosts"][0]["vms"][1]["churn"]["trace"]["file"] = trace
    assert again.model_dump() == expected
    assert again.source == tmp_path / "elsewhere" / "copy.yaml"
    assert s.source == path


def test_scenario_to_dict_is_plain_data_without_the_source(tmp_path):
    s = load_scenario(write(tmp_path))
    data = scenario_to_dict(s)
    assert json.loads(json.dumps(data)) == data
    assert "source" not in data and "_source" not in data
    assert data["seed"] == 0
    # no trace: nothing to make absolute; no prices section: none written
    assert data == s.model_dump(mode="json", exclude={"experiment", "prices"})


def test_scenario_to_dict_trace_relative_to_the_working_folder(tmp_path, monkeypatch):
    # built without a file, a relative trace resolves against the working folder
    (tmp_path / "trace.csv").write_text("timestamp,bytes\n0,100\n60,200\n")
    data = minimal()
    data["site"]["hosts"][0]["vms"][0]["churn"] = {"trace": "trace.csv"}
    monkeypatch.chdir(tmp_path)
    s = parse_scenario(data)
    assert s.source is None
    dumped = scenario_to_dict(s)["site"]["hosts"][0]["vms"][0]["churn"]["trace"]["file"]
    assert dumped == str((tmp_path / "trace.csv").resolve())
    # and the scenario itself keeps the name as written
    assert str(s.vm("vm1").churn.trace.file) == "trace.csv"


def test_hash_does_not_depend_on_how_the_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "trace.csv").write_text("timestamp,bytes\n0,100\n60,200\n")
    path = write(tmp_path, {f"{VM}.churn": {"trace": "trace.csv"}})
    monkeypatch.chdir(tmp_path)
    assert scenario_hash(load_scenario("scenario.yaml")) == scenario_hash(load_scenario(path))
    assert scenario_hash(load_scenario("./scenario.yaml")) == scenario_hash(load_scenario(path.resolve()))


def test_scenario_to_dict_seed_override(tmp_path):
    s = load_scenario(write(tmp_path, {"seed": 9}))
    assert scenario_to_dict(s)["seed"] == 9
    assert scenario_to_dict(s, None)["seed"] == 9
    assert scenario_to_dict(s, 7)["seed"] == 7
    assert scenario_to_dict(s, seed=0)["seed"] == 0  # 0 is a seed, not "no override"
    assert s.seed == 9  # the scenario itself is untouched
    other = scenario_to_dict(s, 7)
    del other["seed"]
    same = scenario_to_dict(s)
    del same["seed"]
    assert other == same


def test_hash_with_a_seed_is_the_hash_of_the_scenario_with_that_seed(tmp_path):
    s = load_scenario(write(tmp_path, {"seed": 9}))
    assert scenario_hash(s, 9) == scenario_hash(s) == scenario_hash(s, None)
    for seed in (0, 1, 7):
        assert scenario_hash(s, seed) == scenario_hash(load_scenario(write(tmp_path, {"seed": seed})))
        assert scenario_hash(s, seed) != scenario_hash(s)
        # and a dump with the seed loads back to the same hash
        assert scenario_hash(parse_scenario(scenario_to_dict(s, seed))) == scenario_hash(s, seed)


def test_hash_is_stable_and_sensitive(tmp_path):
    h = scenario_hash(load_scenario(write(tmp_path)))
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert scenario_hash(load_scenario(write(tmp_path))) == h
    # the same value written differently resolves to the same scenario
    assert scenario_hash(load_scenario(write(tmp_path, {"duration": "24h"}))) == h
    assert scenario_hash(load_scenario(write(tmp_path, {"seed": 1}))) != h
    assert scenario_hash(load_scenario(write(tmp_path, {"link.upload": "11Mbit/s"}))) != h
