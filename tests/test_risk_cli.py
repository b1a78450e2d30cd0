"""drsim risk: the printed figures, the results folder, the report and its figures, bad input."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from drsim.cli import main
from drsim.experiments.risk import risk
from drsim.views.risk_figures import exceedance_curve, nines_by_vm


def cli(*args) -> tuple[int, str, str]:
    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1
    except TypeError:
        runner = CliRunner()
    res = runner.invoke(main, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def path(tmp_path) -> Path:
    data = {"name": "tiny", "duration": "3d", "seed": 3,
            "site": {"hosts": [{"name": "H1", "vms": [{"name": "vm1", "disks": ["2GB"], "churn": {"rate": "20kB/s"}},
                                                      {"name": "vm2", "disks": ["1GB"], "churn": {"rate": "5kB/s"}}]}]},
            "link": {"upload": "8Mbit/s", "download": "80Mbit/s"},
            "failures": [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "30d"}},
                         {"kind": "host", "target": "H1", "at": "1d", "repair": "2h"}],
            "drills": [{"vms": "all", "every": "7d"}]}
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


def test_risk_prints_figures_and_writes_a_folder_with_a_report(path, tmp_path):
    code, out, err = cli("risk", path, "--years", 2, "-n", 3, "--workers", 1, "--probe-runs", 2, "--probe-weeks", 2,
                         "--seed", 5, "--report", "--out", tmp_path / "out")
    assert code == 0, (out, err)
    assert "tiny: risk over 2 years x 3 replications (6 simulated years), experiment seed 5" in out
    assert "method: conditional" in out and "P(year loss > 15 min)" in out and "nines" in out
    assert "left out: scripted failures, drills" in out
    (folder,) = (tmp_path / "out" / "tiny").iterdir()
    assert folder.name.startswith("risk-")
    names = {p.name for p in folder.iterdir()}
    assert {"figures.parquet", "exceedance.parquet", "steady.parquet", "metadata.json", "scenario.yaml",
            "report.html", "report.md", "report-exceedance.png", "report-nines.png"} <= names
    figures = pd.read_parquet(folder / "figures.parquet")
    ref = risk(path, years=2, replications=3, seed=5, executor=ThreadPoolExecutor(1), probe_runs=2, probe_weeks=2)
    pd.testing.assert_frame_equal(figures, ref.figures)  # deterministic: the same request gives the same figures
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["method"] == "conditional" and meta["replications"] == 3 and meta["years"] == 2
    scenario = yaml.safe_load((folder / "scenario.yaml").read_text())
    assert len(scenario["failures"]) == 1 and scenario["drills"] == []
    html = (folder / "report.html").read_text()
    assert "Exceedance curve" in html and "data:image/png;base64," in html and "http" not in html.split("<body")[1]
    md = (folder / "report.md").read_text()
    assert "![Exceedance curve](report-exceedance.png)" in md and "## Method" in md
    assert (folder / "report-exceedance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_risk_no_save_writes_nothing(path, tmp_path):
    code, out, err = cli("risk", path, "--years", 1, "-n", 1, "--workers", 1, "--probe-runs", 2, "--no-save",
                         "--out", tmp_path / "out")
    assert code == 0, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--years", "0"], "Invalid value for '--years'"),
    (["--method", "magic"], "Invalid value for '--method'"),
    (["-n", "0"], "Invalid value for '-n'"),
])
def test_risk_refuses_bad_options(path, args, message):
    code, out, err = cli("risk", path, *args)
    assert code == 2 and message in err


def test_risk_refuses_a_bad_scenario(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nduration: 1d\n", encoding="utf-8")
    code, out, err = cli("risk", bad, "--years", 1)
    assert code == 2 and "is not a valid scenario" in err and "Traceback" not in err


def test_the_figures_draw_for_any_result(path):
    r = risk(path, years=1, replications=2, executor=ThreadPoolExecutor(1), probe_runs=2, probe_weeks=2)
    fig = exceedance_curve(r)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert any(line.get_label() == "site (any VM)" for line in ax.get_lines())
    assert [t.get_text() for t in nines_by_vm(r).axes[0].get_yticklabels()] == ["vm1", "vm2", "(site)"]
