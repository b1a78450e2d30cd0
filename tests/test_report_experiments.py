"""Reports of experiments (sweep folders) and of bandwidth plans, and the CLI's --report for sweep and plan."""

from __future__ import annotations

import copy
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from click.testing import CliRunner  # noqa: E402

import drsim  # noqa: E402
from drsim.cli import main  # noqa: E402
from drsim.experiments.runner import run_experiment  # noqa: E402
from drsim.experiments.sweep_folder import write_experiment  # noqa: E402
from drsim.views.experiment_report import _experiment_summary, _SiteStats, write_experiment_report  # noqa: E402
from drsim.views.plan_report import write_plan_folder, write_plan_report  # noqa: E402
from drsim.views.rendering import json_safe  # noqa: E402
from tests.conftest import base_scenario, make_scenario  # noqa: E402

POLICIES = ["wait-for-repair", "automatic"]
URL = re.compile(r"https?://")


def failing_data() -> dict:
    """The tiny scenario over two days with a small disk and random host failures."""
    d = copy.deepcopy(base_scenario())
    d["duration"] = "2d"
    d["site"]["hosts"][0]["vms"][0]["disks"] = ["100MB"]
    d["failures"] = [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "12h"},
                      "repair": {"dist": "exponential", "mean": "3h"}}]
    return d


@pytest.fixture(scope="module")
def exp():
    with ThreadPoolExecutor(1) as pool:
        return run_experiment(make_scenario(base=failing_data()), replications=2, executor=pool,
                              sweep={"policy.name": POLICIES})


@pytest.fixture(scope="module")
def planned():
    with ThreadPoolExecutor(1) as pool:
        return drsim.plan(make_scenario(base=failing_data()), rpo="15m", replications=1, tolerance="2Mbit/s",
                          executor=pool)


def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # click 8.1: keep stderr apart
    except TypeError:
        return CliRunner()  # click >= 8.2: stderr is always apart


def test_experiment_report_in_the_sweep_folder(exp, tmp_path):
    folder = write_experiment(exp, tmp_path)
    html_path, md_path = write_experiment_report(exp, folder)
    assert html_path == folder / "report.html" and md_path == folder / "report.md"
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    # policy.name swept with two values: two sweep lines, paired differences, CDFs, availability
    assert page.count("data:image/png;base64,") == 5
    assert not URL.search(page) and not URL.search(md)
    for name in ("report-sweep-rpo.png", "report-sweep-downtime.png", "report-paired-downtime.png",
                 "report-cdfs.png", "report-availability.png"):
        assert (folder / name).is_file()
        assert f"]({name})" in md
    table = page[page.index('id="points-table-1"'):]
    table = table[:table.index("</table>")]
    for point, policy in enumerate(POLICIES):
        assert f'<th scope="row" class="num">{point}</th><td>{policy}</td>' in table
    assert "policy.name" in page and "Experiment seed" in page and str(exp.seeds[0]) in page
    assert "RPO objective" in page and "± " in page
    assert "Assumptions and sources" in page


def test_experiment_summary_says_which_objective_fails_where_and_no_false_extremes(exp):
    st = _SiteStats(exp)
    rpo = exp.scenario.objectives.rpo
    for point, (p95, downtime) in enumerate(((rpo + 60.2, 3600.1), (rpo + 60.4, 3600.3))):
        st.stats[(point, "rpo_p95_s")] = (p95, 1.0, 2)  # both shown as 16 min, above the 15 min objective
        st.stats[(point, "downtime_s")] = (downtime, 1.0, 2)
        st.stats[(point, "rpo_met")] = (1.0, 0.0, 2)
        st.stats[(point, "rto_met")] = (1.0, 0.0, 2)
    lines = _experiment_summary(exp, st)
    assert "No point meets both the RPO (15 min) and RTO (2 h) objectives at the site." in lines
    assert ("The RPO objective is missed at every point (the mean p95 RPO above the target or an incident's "
            "data loss beyond it).") in lines
    assert "The RTO objective is missed at no point." in lines
    assert "The site's mean p95 RPO is 16 min at every point." in lines
    assert "The site's mean downtime is 1 h at every point." in lines
    assert not any("lowest at" in line for line in lines)
    st.stats[(1, "rto_met")] = (0.5, 0.5, 2)
    lines = _experiment_summary(exp, st)
    assert any(x.startswith("The RTO objective is missed at point 1 (policy.name = automatic) (an unplanned")
               for x in lines)


def test_experiment_report_skips_figures_that_do_not_apply(exp, tmp_path, monkeypatch):
    from drsim.views import figures as plots

    def refuse(*args, **kwargs):
        raise ValueError("does not apply <here>")

    monkeypatch.setattr(plots, "paired_differences", refuse)
    html_path, md_path = write_experiment_report(exp, tmp_path)
    page = html_path.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 4
    assert "not drawn (does not apply &lt;here&gt;)" in page
    assert "not drawn (does not apply \\<here\\>)" in md_path.read_text(encoding="utf-8")


def test_experiment_report_escapes_names(tmp_path):
    d = failing_data()
    d["name"] = "evil"
    d["site"]["hosts"][0]["vms"][0]["name"] = "<b>x</b>|*y*"
    d["failures"][0]["every"]["mean"] = "1d"
    with ThreadPoolExecutor(1) as pool:
        exp1 = run_experiment(make_scenario(base=d), replications=2, executor=pool)
    html_path, md_path = write_experiment_report(exp1, tmp_path)
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "\\<b\\>x\\</b\\>\\|\\*y\\*" in md
    assert page.count("data:image/png;base64,") == 2  # nothing swept: CDFs and availability only


def test_plan_report_has_the_curve_and_the_required_bandwidth(planned, tmp_path):
    from drsim.experiments.planner_text import mbit as _mbit

    scenario = make_scenario(base=failing_data())
    html_path, md_path = write_plan_report(planned, scenario, tmp_path)
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    site = planned[planned["vm"] == "(site)"].iloc[0]
    required = _mbit(site["required_Bps"])
    assert required != "-" and required in page and required in md
    assert _mbit(site["formula_Bps"]) in page
    assert page.count("data:image/png;base64,") == 1 and "Planner search" in page
    assert (tmp_path / "report-planner-curve.png").is_file()
    assert not URL.search(page) and not URL.search(md)
    assert "vm1" in page and "Initial replication" in page


def test_plan_folder_is_whole(planned, tmp_path):
    scenario = make_scenario(base=failing_data())
    folder = write_plan_folder(planned, scenario, tmp_path)
    assert folder.parent == tmp_path / scenario.name and folder.name.startswith("plan-")
    assert {p.name for p in folder.iterdir()} >= {"plan.parquet", "metadata.json", "report.html", "report.md",
                                                 "report-planner-curve.png"}
    flat = pd.read_parquet(folder / "plan.parquet")
    assert list(flat["vm"]) == list(planned["vm"])
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    assert meta["rpo_s"] == 900.0 and len(meta["evaluations"]) == len(planned.attrs["evaluations"])
    assert planned.attrs["evaluations"]  # the plan's own attrs are left as they were
    assert not list(tmp_path.glob("*/.incomplete-*"))


def test_json_safe():
    import numpy as np

    assert json_safe({"a": (np.float64("nan"), np.int64(3), float("inf")), 1: np.bool_(True)}) == \
        {"a": [None, 3, None], "1": True}


def test_cli_sweep_report(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(failing_data()), encoding="utf-8")
    out = tmp_path / "out"
    result = runner().invoke(main, ["sweep", str(path), "-n", "2", "--workers", "1", "--set",
                                    "policy.name=wait-for-repair,automatic", "--out", str(out), "--report"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    (folder,) = (out / "tiny").iterdir()
    assert (folder / "report.html").is_file() and (folder / "report.md").is_file()
    assert f"report: {folder / 'report.html'}" in result.stdout

    nosave = runner().invoke(main, ["sweep", str(path), "-n", "1", "--workers", "1", "--out", str(tmp_path / "x"),
                                    "--no-save", "--report"])
    assert nosave.exit_code == 0 and not (tmp_path / "x").exists()
    assert "--report is ignored with --no-save" in nosave.stderr


def test_cli_plan_report(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(failing_data()), encoding="utf-8")
    out = tmp_path / "out"
    result = runner().invoke(main, ["plan", str(path), "--rpo", "15m", "-n", "1", "--tolerance", "2Mbit/s",
                                    "--workers", "1", "-q", "--report", "--out", str(out)])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    (folder,) = (out / "tiny").iterdir()
    assert folder.name.startswith("plan-")
    for name in ("plan.parquet", "metadata.json", "report.html", "report.md"):
        assert (folder / name).is_file()
    assert f"results: {folder}\nreport: {folder / 'report.html'}\nreport: {folder / 'report.md'}\n" in result.stdout
    assert Path(folder / "report.html").read_text(encoding="utf-8").count("data:image/png;base64,") == 1
