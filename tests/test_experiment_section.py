"""The experiment section of scenario files: validated with located errors, defaults for drsim sweep and
run_experiment, overridden by arguments, ignored by drsim run."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import drsim
from drsim.cli import main
from drsim.experiments.runner import run_experiment
from drsim.experiments.seeds import replication_seed
from drsim.experiments.settings import experiment_settings
from drsim.scenario import ScenarioError, load_scenario, scenario_schema
from drsim.scenario.document import scenario_hash
from tests.conftest import base_scenario

BUNDLED = Path(__file__).resolve().parents[1] / "scenarios" / "branch-what-if.yaml"

SECTION = """\
experiment:
  replications: 3
  seed: 5
  sweep:
    policy.name: [manual, automatic]
  lhs:
    link.upload: 4Mbit/s..16Mbit/s
  samples: 2
  batch_size: 2
"""


def write(tmp_path: Path, section: str = SECTION, name: str = "s.yaml") -> Path:
    data = base_scenario()
    data["failures"] = [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "2d"},
                         "repair": "3h"}]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False) + section, encoding="utf-8")
    return path


def cli(*args) -> tuple[int, str, str]:
    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1
    except TypeError:
        runner = CliRunner()
    res = runner.invoke(main, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_the_section_gives_the_defaults(tmp_path):
    path = write(tmp_path)
    exp = run_experiment(path, executor=ThreadPoolExecutor(1))
    assert exp.seed == 5 and exp.seeds == [replication_seed(5, k) for k in range(3)] and exp.batch_size == 2
    assert list(exp.points["policy.name"]) == ["manual", "manual", "automatic", "automatic"]
    assert list(exp.points["sample"]) == [0, 1, 0, 1] and exp.samples == 2
    over = run_experiment(path, replications=2, sweep={}, seed=6, samples=3, executor=ThreadPoolExecutor(1))
    assert over.seed == 6 and over.replications == 2 and len(over.points) == 3  # the grid replaced by none
    assert "policy.name" not in over.points and over.lhs == exp.lhs
    none = run_experiment(path, lhs={}, samples=None, sweep={"link.upload": ["8Mbit/s"]},
                          executor=ThreadPoolExecutor(1))
    assert none.samples is None and list(none.points.columns) == ["point", "link.upload"]


def test_settings_resolution():
    s = load_scenario(BUNDLED)
    st = experiment_settings(s)
    assert (st.replications, st.seed, st.samples, st.max_replications) == (4, 11, 4, 20)
    assert list(st.grid) == ["policy.name"] and list(st.lhs) == ["link.upload", "replication.interval"]
    assert [str(p) for p in st.precision] == ["rpo_p95_s of (site) within ± 1 s"]
    st = experiment_settings(s, replications=12, precision=[], keep_runs=True)
    assert (st.replications, st.precision, st.max_replications, st.keep_runs) == (12, (), 12, True)


def test_drsim_run_ignores_the_section(tmp_path):
    with_section = write(tmp_path)
    without = write(tmp_path, section="", name="plain.yaml")
    code, out, err = cli("run", with_section, "--out", tmp_path / "r1", "-q")
    assert code == 0, err
    plain = drsim.simulate(without)
    folder = Path(out.strip())
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "summary.parquet"), plain.summary)
    assert "experiment" not in yaml.safe_load((folder / "scenario.yaml").read_text())
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["scenario_hash"] == scenario_hash(load_scenario(without), 1)  # the section is not in the hash
    code, out, err = cli("run", with_section, "--no-save")
    assert code == 0 and "note: " in err and "the experiment section is for drsim sweep" in err


def test_validate_checks_the_section_and_the_bundled_example():
    code, out, err = cli("validate", BUNDLED)
    assert code == 0, err
    assert out.strip() == (f"ok: {BUNDLED} (branch-what-if: 3 VMs on 1 host; experiment: 8 points x 4 to 20 "
                           "replications (precision))")


@pytest.mark.parametrize(("section", "needle", "place", "message"), [
    ("experiment:\n  replicatons: 3\n", "replicatons", "experiment.replicatons",
     "unknown key 'replicatons' (did you mean 'replications'?)"),
    ("experiment:\n  replications: 0\n", "replications", "experiment.replications",
     "Input should be greater than or equal to 1"),
    ("experiment:\n  sweep:\n    link.uplod: [1Mbit/s]\n", "link.uplod", "experiment.sweep.link.uplod",
     "unknown key 'uplod' (did you mean 'upload'?)"),
    ("experiment:\n  sweep:\n    link.upload: [fast]\n", "link.upload", "experiment.sweep.link.upload",
     "expected a rate like '20Mbit/s', got 'fast'"),
    ("experiment:\n  sweep:\n    link.upload: []\n", "link.upload", "experiment.sweep.link.upload",
     "no values to sweep"),
    ("experiment:\n  lhs:\n    link.upload: 50Mbit/s..10Mbit/s\n  samples: 3\n", "link.upload",
     "experiment.lhs.link.upload", "the range '50Mbit/s..10Mbit/s' is empty"),
    ("experiment:\n  lhs:\n    link.upload: 1s..2s\n  samples: 3\n", "link.upload",
     "experiment.lhs.link.upload", "a rate needs a unit"),
    ("experiment:\n  lhs:\n    link.upload: 1Mbit/s..2Mbit/s\n", "lhs:", "experiment.lhs",
     "a Latin hypercube needs its number of samples"),
    ("experiment:\n  samples: 3\n", "samples", "experiment.samples", "samples is given but no Latin hypercube"),
    ("experiment:\n  precision:\n    rpo_p9: 30s\n", "rpo_p9", "experiment.precision.rpo_p9",
     "unknown metric 'rpo_p9' (did you mean 'rpo_p95_s'?)"),
    ("experiment:\n  precision:\n    rpo_p95_s@vm2: 30s\n", "rpo_p95_s@vm2", "experiment.precision.rpo_p95_s@vm2",
     "unknown VM 'vm2' (did you mean 'vm1'?)"),
    ("experiment:\n  precision:\n    rpo_p95_s: 30s\n  replications: 1\n", "replications: 1",
     "experiment.replications", "a precision target needs at least 2 replications"),
    ("experiment:\n  max_replications: 9\n", "max_replications", "experiment.max_replications",
     "max_replications applies only with a precision target"),
    ("experiment:\n  sweep:\n    link.upload: [1Mbit/s]\n  lhs:\n    link.upload: 1Mbit/s..2Mbit/s\n  samples: 2\n",
     "link.upload: 1Mbit", "experiment.lhs.link.upload", "is both in the grid and in the Latin hypercube"),
])
def test_bad_sections_are_located(tmp_path, section, needle, place, message):
    path = write(tmp_path, section)
    with pytest.raises(ScenarioError) as info:
        drsim.load_scenario(path, experiment=True)
    err = info.value
    assert len(err.problems) == 1, str(err)
    line = line_of(path, needle)
    m = re.fullmatch(re.escape(f"{path}:{line}:") + r"\d+: " + re.escape(place) + ": (.*)", str(err))
    assert m and message in m.group(1), str(err)
    code, out, stderr = cli("validate", path)
    assert code == 2 and stderr.startswith(f"error: {path}:{line}:") and "Traceback" not in stderr
    code, out, stderr = cli("sweep", path, "--no-save")
    assert code == 2 and f"{path}:{line}:" in stderr and "Traceback" not in stderr


def test_the_schema_describes_the_section():
    schema = scenario_schema()
    section = schema["$defs"]["ExperimentSection"]
    assert set(section["properties"]) == {"replications", "seed", "sweep", "lhs", "samples", "precision",
                                          "max_replications", "batch_size", "keep_runs"}
    assert section["additionalProperties"] is False
    examples = section["properties"]["lhs"]["additionalProperties"]["anyOf"][0]["examples"]
    assert "10Mbit/s..50Mbit/s" in examples
    code, out, _ = cli("schema")
    assert code == 0 and "ExperimentSection" in json.loads(out)["$defs"]


def test_the_bundled_example_sweeps(tmp_path):
    code, out, err = cli("sweep", BUNDLED, "--workers", 2, "--out", tmp_path, "-q")
    assert code == 0, err
    folder = Path(out.strip())
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["experiment_seed"] == 11 and meta["samples"] == 4 and len(meta["points"]) == 8
    assert meta["precision"]["reached"] is True and meta["precision"]["first_round"] == 4
    per_point = [p["replications"] for p in meta["points"]]
    assert min(per_point) == 4 and max(per_point) > 4  # the precision target asked for more at some points
    tidy = pd.read_parquet(folder / "tidy.parquet")
    assert len(tidy) == sum(per_point) * 4  # three VMs and the site
