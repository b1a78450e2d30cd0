"""A counter log as a VM's churn in a scenario (``trace: {format: perfmon, ...}``): simulated exactly, checked with
located messages, warned about when gaps were filled, and invisible to scenarios that do not use it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

import drsim
from drsim.scenario import ScenarioError, load_scenario, scenario_schema, scenario_warnings
from drsim.scenario.document import scenario_hash, scenario_to_dict
from tests.test_perfmon import DISK_D, DISK_E, write_log

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def site(tmp_path: Path, trace: dict | str, **extra) -> Path:
    """A one-VM scenario whose churn is ``trace``, written next to the counter logs in ``tmp_path``."""
    data = {"name": "counters", "duration": "2h", "seed": 1,
            "site": {"hosts": [{"name": "HV01", "vms": [{"name": "vm1", "disks": ["2GiB"],
                                                         "churn": {"trace": trace}}]}]},
            "link": {"upload": "100Mbit/s", "download": "100Mbit/s", "efficiency": 1.0},
            "replication": {"setup": 0}, **extra}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def log_of(tmp_path: Path, d: float = 1000.0, e: float = 500.0, n: int = 61) -> Path:
    times = [datetime(2026, 3, 2, 8, 0) + timedelta(minutes=i) for i in range(n)]
    return write_log(tmp_path / "site-counters.csv", times, {DISK_D: [d] * n, DISK_E: [e] * n})


def test_a_vm_writes_what_its_counters_say(tmp_path):
    """1500 bytes/s on two disks, rewrite 0.8, repeated over two hours: bytes_written = 1500 * 0.8 * 7200."""
    log_of(tmp_path)
    path = site(tmp_path, {"file": "site-counters.csv", "format": "perfmon",
                           "columns": r"\\HV01\PhysicalDisk(*)\Disk Write Bytes/sec", "rewrite": 0.8, "step": "5m"})
    results = drsim.simulate(load_scenario(path))
    vm = results.summary.set_index("vm").loc["vm1"]
    assert vm["bytes_written"] == pytest.approx(1500 * 0.8 * 7200, rel=1e-9)


def test_one_column_of_two(tmp_path):
    log_of(tmp_path)
    path = site(tmp_path, {"file": "site-counters.csv", "format": "perfmon", "columns": [r"\PhysicalDisk(2 E:)\*"]})
    vm = drsim.simulate(load_scenario(path)).summary.set_index("vm").loc["vm1"]
    assert vm["bytes_written"] == pytest.approx(500 * 7200, rel=1e-9)


def test_rewrite_applies_to_a_plain_trace_too(tmp_path):
    (tmp_path / "plain.csv").write_text("timestamp,bytes\n0,6000\n60,6000\n", encoding="utf-8")
    path = site(tmp_path, {"file": "plain.csv", "rewrite": 0.5})
    vm = drsim.simulate(load_scenario(path)).summary.set_index("vm").loc["vm1"]
    assert vm["bytes_written"] == pytest.approx(0.5 * 100 * 7200, rel=1e-9)


@pytest.mark.parametrize("trace,message,key", [
    ({"file": "site-counters.csv", "format": "perfmon"}, "a counter log needs columns", "file"),
    ({"file": "site-counters.csv", "columns": "x"}, "columns applies to a performance-counter log: add format: "
                                                    "perfmon", "file"),
    ({"file": "site-counters.csv", "format": "perfmon", "columns": "x", "timezone": "Europe/Nowhere"},
     "unknown time zone 'Europe/Nowhere'", "file"),
    ({"file": "site-counters.csv", "format": "perfmon", "columns": "x", "rewrite": 1.5}, "less than or equal to 1",
     "rewrite"),
    ({"file": "site-counters.csv", "format": "perfmon", "columns": r"\\HV01\PhysicalDisk(9 Z:)\*"},
     "no column matches", "file"),
    ({"file": "site-counters.csv", "format": "excel", "columns": "x"}, "'bytes' or 'perfmon'", "format"),
    ("site-counters.csv", "is a performance-counter log (PDH-CSV): add format: perfmon", "trace"),
])
def test_mistakes_are_located_at_the_trace(tmp_path, trace, message, key):
    log_of(tmp_path)
    path = site(tmp_path, trace)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    text = str(exc.value)
    assert message in text, text
    assert text.startswith(f"{path}:") and "site.hosts[0].vms[0].churn.trace" in text
    lines = path.read_text().splitlines()
    located = lines[int(text.split(":")[1]) - 1].strip()  # the trace section (its first key), or the wrong key
    assert located.split(":")[0] == key, located


def test_filled_gaps_are_warnings(tmp_path):
    times = [datetime(2026, 3, 2, 8, 0) + timedelta(minutes=i) for i in range(61)]
    values = [100.0] * 61
    values[10] = None
    write_log(tmp_path / "site-counters.csv", times, {DISK_D: values})
    s = load_scenario(site(tmp_path, {"file": "site-counters.csv", "format": "perfmon", "columns": DISK_D}))
    assert scenario_warnings(s) == ["vm1: churn trace site-counters.csv: 1 missing sample filled by interpolation "
                                    "(longest gap 1 min)"]


def test_bundled_trace_scenario_resolves_and_hashes_as_before(tmp_path):
    """New trace keys at their defaults are left out of the resolved scenario: results folders of earlier runs keep
    their scenario hash (recorded for drsim report)."""
    s = load_scenario(SCENARIOS / "trace-replay.yaml")
    trace = scenario_to_dict(s)["site"]["hosts"][0]["vms"][0]["churn"]["trace"]
    assert trace == {"file": str((SCENARIOS / "traces" / "sql-week.csv").resolve()), "repeat": True}


def test_a_resolved_counter_trace_loads_again_the_same(tmp_path):
    log_of(tmp_path)
    s = load_scenario(site(tmp_path, {"file": "site-counters.csv", "format": "perfmon", "columns": [DISK_D],
                                      "step": "5m", "max_gap": "30m", "timezone": "Europe/Berlin", "rewrite": 0.7}))
    data = scenario_to_dict(s)
    trace = data["site"]["hosts"][0]["vms"][0]["churn"]["trace"]
    assert trace["format"] == "perfmon" and trace["rewrite"] == 0.7 and trace["columns"] == [DISK_D]
    again = drsim.parse_scenario(data)
    assert scenario_hash(again) == scenario_hash(s)
    assert drsim.simulate(again).summary.equals(drsim.simulate(s).summary)


def test_the_schema_knows_the_new_keys():
    text = str(scenario_schema())
    for key in ("format", "columns", "step", "max_gap", "timezone", "rewrite"):
        assert f"'{key}'" in text


def test_a_small_rewrite_factor_is_a_warning(tmp_path):
    log_of(tmp_path)
    s = load_scenario(site(tmp_path, {"file": "site-counters.csv", "format": "perfmon", "columns": DISK_D,
                                      "rewrite": 0.3}))
    assert scenario_warnings(s) == ["vm1: churn trace site-counters.csv: rewrite 0.3 replays only 30% of the bytes "
                                    "written; the vendor's churn limits assume about 30 % I/O overlap (rewrite 0.7): "
                                    "is so much really rewritten within an interval?"]
    ok = load_scenario(site(tmp_path, {"file": "site-counters.csv", "format": "perfmon", "columns": DISK_D,
                                       "rewrite": 0.5}))
    assert scenario_warnings(ok) == []
