"""The HTML reports in a real headless browser: a run's, a sweep's, a plan's (the bandwidth search, the options
compared and a deadline) and a risk report render their figures and tables
without errors, and no figure of any of them shows raw math text (``$\\mathdefault{10^{4}}$``: the reports draw
with math text off, so a figure that relied on it would show its markup).

Needs Chromium (Debian's ``chromium`` package; ``.ci/run`` installs it and sets DRSIM_REQUIRE_BROWSER=1, so in CI
a missing browser fails instead of skipping).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

import drsim
from drsim.experiments.deadline import deadline_bandwidth
from drsim.experiments.options import compare_options
from drsim.experiments.runner import run_experiment
from drsim.scenario.prices import load_price_sheet
from drsim.views.decision_report import decision_report_context
from drsim.views.experiment_report import experiment_report_context
from drsim.views.plan_report import plan_report_context
from drsim.views.rendering import write_document, write_files
from drsim.views.risk_report import risk_report_context
from drsim.views.run_report import render_report, report_context, write_report
from tests.conftest import base_scenario, make_scenario
from tests.test_plan_deadline import two_batches

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
                None)
REQUIRED = os.environ.get("DRSIM_REQUIRE_BROWSER") == "1"
needs_browser = pytest.mark.skipif(CHROMIUM is None and not REQUIRED,
                                   reason="Chromium is not installed (apt-get install chromium); CI installs it")

PROBE = """<script>
addEventListener('load', () => {
  const imgs = [...document.images];
  const decoded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-probe',
    `images=${imgs.length} decoded=${decoded} tables=${document.querySelectorAll('table').length}`);
});
</script>
</body>"""


def _chromium(*args: str, user_dir) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None, "Chromium is required here (DRSIM_REQUIRE_BROWSER=1) but not installed"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={user_dir}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = base_scenario()
    d["start"] = "2026-03-02T08:00:00"
    vms = d["site"]["hosts"][0]["vms"]
    vms[0]["disks"] = ["1GB"]
    vms.append({"name": "<script>alert(1)</script>", "disks": ["1GB"], "churn": {"rate": "20kB/s"}})
    d["failures"] = [{"kind": "host", "target": "H1", "at": "6h", "repair": "3h"}]
    d["drills"] = [{"vms": "vm1", "at": "4h", "duration": "1h"}]
    d["policy"] = {"name": "manual", "failback": "immediate"}
    results = drsim.simulate(make_scenario(base=d))
    folder = tmp_path_factory.mktemp("report")
    html, _ = write_report(results, folder)
    return html, results


@needs_browser
def test_report_renders_its_figures_and_tables_in_a_browser(report, tmp_path):
    html, results = report
    probed = tmp_path / "probed.html"
    probed.write_text(html.read_text().replace("</body>", PROBE, 1))
    out = _chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri(), user_dir=tmp_path / "u1")
    assert out.returncode == 0, out.stderr[-2000:]
    probe = re.search(r'data-probe="images=(\d+) decoded=(\d+) tables=(\d+)"', out.stdout)
    assert probe, "the page did not finish loading"
    images, decoded, tables = map(int, probe.groups())
    assert images == decoded == 4
    assert tables >= 5
    assert "alert(1)" in out.stdout and "<script>alert(1)" not in out.stdout  # escaped text, never a tag
    assert len(results.incidents) == 2


@needs_browser
def test_report_loads_without_console_errors_and_draws_the_palette(report, tmp_path):
    html, _ = report
    shot = tmp_path / "report.png"
    out = _chromium("--enable-logging=stderr", "--v=0", "--window-size=1280,3000", f"--screenshot={shot}",
                    html.as_uri(), user_dir=tmp_path / "u2")
    assert out.returncode == 0, out.stderr[-2000:]
    signs = ("CONSOLE", "Uncaught", "net::ERR", "Failed to load resource")
    page_errors = [line for line in out.stderr.splitlines() if any(sign in line for sign in signs)]
    assert page_errors == []
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # the protection timeline paints 'protected' in Okabe-Ito bluish green (0, 158, 115)
    green = (np.abs(pixels - np.array([0, 158, 115])) < 12).all(axis=2).sum()
    assert green > 1000


def test_ci_has_a_browser():
    """In CI the browser test must run, not skip."""
    if REQUIRED:
        assert CHROMIUM is not None, "DRSIM_REQUIRE_BROWSER=1 but Chromium is not installed"


# --- every report's figures: run, sweeps, plan -------------------------------------------------------------

MATH = re.compile(r"\$|\\mathdefault|\\times|\^\{")  # the markup of math text, which reports never render


def _stochastic():
    """The tiny scenario over four days with random churn and random host failures."""
    return make_scenario({"duration": "4d", "site.hosts[0].vms[0].churn.variation": 0.3,
                          "failures": [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "2d"},
                                        "repair": {"dist": "lognormal", "median": "2h", "p95": "6h"}}]})


@pytest.fixture(scope="module")
def every_report(report, tmp_path_factory):
    """(name, HTML path, figures) of a run report, of two sweep reports (one swept path: lines, paired
    differences, CDFs, availability; two: the heatmap), of a plan report (the planner curve on a log axis), of the
    planner's decisions (options compared with their frontier, a deadline with a suggested batch order) and of a
    risk report with the cost of its incidents."""
    _, results = report
    reports = []
    folder = tmp_path_factory.mktemp("run")
    ctx = report_context(results)
    html, md = render_report(results, ctx["figures"])
    reports.append(("run", write_files(folder, html, md, ctx["figures"])[0], ctx["figures"]))
    with ThreadPoolExecutor(1) as pool:
        policies = run_experiment(_stochastic(), replications=2, executor=pool, seed=3,
                                  sweep={"policy.name": ["wait-for-repair", "automatic"]})
        grid = run_experiment(_stochastic(), replications=2, executor=pool, seed=3,
                              sweep={"link.upload": ["2Mbit/s", "8Mbit/s"], "replication.interval": ["5m", "15m"]})
        planned = drsim.plan(_stochastic(), rpo="15m", replications=1, tolerance="1Mbit/s", executor=pool)
    for name, exp in (("sweep of policies", policies), ("sweep grid", grid)):
        ctx, figures = experiment_report_context(exp)
        reports.append((name, write_document(tmp_path_factory.mktemp("sweep"), ctx, figures)[0], figures))
    ctx, figures = plan_report_context(planned, _stochastic())
    reports.append(("plan", write_document(tmp_path_factory.mktemp("plan"), ctx, figures)[0], figures))
    # the planner's other answers: options compared (frontier) and a deadline with a better batch order
    sheet = load_price_sheet(overrides={"uplink": {"tiers": [{"upload": "2Mbit/s", "per_month": 20},
                                                             {"upload": "8Mbit/s", "per_month": 50}]},
                                        "business": {"downtime_per_hour": 50.0, "lost_data_per_hour": 80.0}})
    with ThreadPoolExecutor(2) as pool:
        options = compare_options(_stochastic(), sheet, uploads=[2e6 / 8, 8e6 / 8], intervals=[300.0, 900.0],
                                  replications=2, executor=pool, risk_years=1, risk_replications=2)
        deadline = deadline_bandwidth(drsim.parse_scenario(two_batches()), 10_000, tolerance=0.2e6 / 8,
                                      replications=1, executor=pool)
        risky = drsim.risk(_stochastic(), years=1, replications=3, executor=pool, probe_runs=2, probe_weeks=2,
                           prices=sheet)
    assert deadline["suggested_batches"] and options.attrs["cheapest"]
    ctx, figures = decision_report_context(_stochastic(), options, deadline)
    reports.append(("decisions", write_document(tmp_path_factory.mktemp("decisions"), ctx, figures)[0], figures))
    ctx, figures = risk_report_context(risky)
    reports.append(("risk", write_document(tmp_path_factory.mktemp("risk"), ctx, figures)[0], figures))
    return reports


def test_every_report_figure_is_drawn_without_math_text(every_report):
    names = {name: [f.file for f in figures] for name, _, figures in every_report}
    assert len(names["run"]) == 4 and "report-sweep-heatmap.png" in names["sweep grid"]
    assert len(names["sweep of policies"]) == 5 and names["plan"] == ["report-planner-curve.png"]
    assert names["decisions"] == ["report-options-frontier.png", "report-deadline.png"]
    assert names["risk"] == ["report-exceedance.png", "report-nines.png"]
    for name, _, figures in every_report:
        for fig in figures:
            assert fig.texts, f"{name}: {fig.file} has no text"
            raw = [t for t in fig.texts if MATH.search(t)]
            assert raw == [], f"{name}: {fig.file} shows math markup {raw}"
    (plan,) = [figures[0] for name, _, figures in every_report if name == "plan"]
    assert {"10", "100"} & set(plan.texts)  # the planner's log axis, labelled in plain numbers


@needs_browser
def test_every_report_renders_all_its_figures_in_a_browser(every_report, tmp_path):
    for k, (name, html, figures) in enumerate(every_report):
        probed = tmp_path / f"probed-{k}.html"
        probed.write_text(html.read_text(encoding="utf-8").replace("</body>", PROBE, 1), encoding="utf-8")
        out = _chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri(), user_dir=tmp_path / f"u{k}")
        assert out.returncode == 0, out.stderr[-2000:]
        probe = re.search(r'data-probe="images=(\d+) decoded=(\d+) tables=(\d+)"', out.stdout)
        assert probe, f"{name}: the page did not finish loading"
        images, decoded, _ = map(int, probe.groups())
        assert images == decoded == len(figures), name
