"""Runs, sweeps and plans too large to start are refused before they start, with the reason and the place; the
estimate behind it is close to what a run takes; ``--force`` runs past the limits. One test per case of the
outside audit (each hung, ate memory or raised before the fix)."""

from __future__ import annotations

import time

import pandas as pd
import pytest

import drsim.experiments.bounds
import drsim.model.estimate
from drsim.experiments.precision import _next_targets
from drsim.model.estimate import estimate_run, size_problem
from drsim.model.site import SiteModel
from drsim.results.tables import TABLES, Results
from drsim.scenario.loading import parse_scenario
from tests.test_cli import assert_clean_exit, invoke, tiny_scenario, write

MONTH = dict(duration="30d")
TOO_LARGE = "too large to run without asking"
FORCE = "give --force to run it anyway"


def refused_quickly(*args) -> str:
    """Invoke the CLI, check it refuses with status 2 within seconds, and return its standard error."""
    t0 = time.perf_counter()
    result = invoke(*args)
    assert_clean_exit(result, 2)
    assert time.perf_counter() - t0 < 10
    assert result.stdout == ""
    return result.stderr


def line_of(path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


# ----------------------------------------------------------------------------------------------------
# The estimate


@pytest.mark.parametrize("changes", [
    {},
    {"replication": {"interval": "30s"}},
    {"drills": [{"vms": "all", "every": "3h", "duration": "30m"}]},
    {"failures": [{"kind": "vm", "target": "all", "every": {"dist": "exponential", "mean": "2h"}}]},
    {"failures": [{"kind": "link", "every": "4h", "repair": "1h"}]},
    {"link": {"upload": "10Mbit/s", "download": "50Mbit/s", "throttle": {"work_limit": "2Mbit/s"}}},
], ids=["plain", "30s", "drills", "vm-failures", "link-failures", "throttle"])
def test_the_estimate_is_within_a_few_times_of_a_run(changes):
    s = parse_scenario(tiny_scenario(duration="2d", **changes))
    est = estimate_run(s)
    model = SiteModel(s).run()
    events = next(model.env._eid)  # SimPy's count of the events scheduled
    results = Results(model)
    rows = sum(len(getattr(results, t)) for t in TABLES)
    assert 0.8 * events <= est.events <= 4 * events, (est.events, events)
    assert 0.8 * rows <= est.rows <= 4 * rows, (est.rows, rows)


def test_the_estimate_names_what_weighs_most():
    s = parse_scenario(tiny_scenario(drills=[{"vms": "all", "every": "1ms"}], **MONTH))
    est = estimate_run(s)
    part = est.largest()
    assert part.place == "drills[0]" and part.what == "2,592,000,000 test failovers"
    assert est.events == pytest.approx(2_592_000_000 * drsim.model.estimate.EVENTS_PER_INCIDENT, rel=0.01)
    problem = size_problem(est)
    assert problem.loc == ("drills", 0)
    assert problem.message.startswith(f"{TOO_LARGE}: 2,592,000,000 test failovers: it needs about 2.6e+10 events "
                                      "(the limit is 50,000,000;")


# ----------------------------------------------------------------------------------------------------
# drsim run


def test_drills_every_millisecond_are_refused_before_running(tmp_path):
    path = write(tmp_path, tiny_scenario(drills=[{"vms": "all", "every": "1ms"}], **MONTH))
    stderr = refused_quickly("run", path, "--out", tmp_path / "out")
    first, hint = stderr.splitlines()
    assert first.startswith(f"error: {path}:{line_of(path, '- vms: all')}:")
    assert f": drills[0]: {TOO_LARGE}: 2,592,000,000 test failovers: it needs about 2.6e+10 events" in first
    assert "of memory" in first and hint == FORCE
    assert not (tmp_path / "out").exists()


def test_validate_warns_of_a_run_too_large(tmp_path):
    path = write(tmp_path, tiny_scenario(drills=[{"vms": "all", "every": "1ms"}], **MONTH))
    result = invoke("validate", path)
    assert_clean_exit(result, 0)  # valid: large is not wrong
    assert result.stderr.startswith(f"warning: {path}: drills[0]: {TOO_LARGE}: 2,592,000,000 test failovers: ")
    assert result.stderr.endswith("; drsim run needs --force\n")


def test_a_trace_with_microsecond_steps_is_refused_before_running(tmp_path):
    (tmp_path / "us.csv").write_text("timestamp,bytes\n0,100\n0.000001,100\n0.000002,100\n")
    path = write(tmp_path, tiny_scenario(site={"hosts": [{"name": "h1", "vms": [
        {"name": "vm1", "disks": ["1GiB"], "churn": {"trace": "us.csv"}}]}]}, **MONTH))
    stderr = refused_quickly("run", path, "--no-save")
    assert f"site.hosts[0].vms[0].churn: {TOO_LARGE}: a write curve of 2.6e+12 breakpoints (its trace of 3 rows " \
           "every 3 µs, replayed 8.6e+11 times): it needs about 471 TiB of memory" in stderr  # was: 429 GiB allocated


def test_a_long_legal_duration_is_refused_before_running(tmp_path):
    path = write(tmp_path, tiny_scenario(duration="5000y", replication={"interval": "30s"}))
    stderr = refused_quickly("run", path, "--no-save")
    assert f"replication: {TOO_LARGE}: 5,256,000,000 cycles of 1 VM (every 30 s for 1825000 d)" in stderr


def test_force_runs_past_the_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(drsim.model.estimate, "MAX_EVENTS", 10)
    path = write(tmp_path, tiny_scenario())
    assert TOO_LARGE in refused_quickly("run", path, "--no-save")
    result = invoke("run", path, "--no-save", "--force")
    assert_clean_exit(result, 0)
    assert "(site)" in result.stdout


# ----------------------------------------------------------------------------------------------------
# drsim sweep and drsim plan


def test_sweep_with_a_hundred_million_samples_is_refused(tmp_path):
    path = write(tmp_path, tiny_scenario())
    stderr = refused_quickly("sweep", path, "--lhs", "link.upload=5Mbit/s..20Mbit/s", "--samples", "100000000",
                             "-n", "1", "--no-save", "--workers", "1")
    first, hint = stderr.splitlines()
    assert first.startswith(f"error: {path}: the experiment runs 100,000,000 times (100,000,000 points x 1 "
                            "replications), of about ")
    assert "events in all (the limit is 1,000,000,000;" in first and hint == FORCE


def test_sweep_with_a_hundred_million_replications_is_refused(tmp_path):
    path = write(tmp_path, tiny_scenario())
    stderr = refused_quickly("sweep", path, "-n", "100000000", "--no-save", "--workers", "1")
    assert stderr.startswith(f"error: {path}: the experiment runs 100,000,000 times (1 point x 100,000,000 "
                             "replications)")
    assert "GiB of memory for its tables" in stderr


def test_a_sweep_point_too_large_to_run_is_refused(tmp_path):
    path = write(tmp_path, tiny_scenario())
    stderr = refused_quickly("sweep", path, "--set", "duration=6h,4000y", "-n", "1", "--no-save")
    assert stderr.startswith(f"error: {path}: duration=4000y: replication: {TOO_LARGE}: 420,480,000 cycles of 1 VM")


def test_a_small_sweep_is_not_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(drsim.experiments.bounds, "MAX_EXPERIMENT_EVENTS", 200)  # a run of 6 h: 72 cycles
    path = write(tmp_path, tiny_scenario())
    args = ("sweep", path, "--no-save", "--workers", "1", "-q", "-n")
    assert_clean_exit(invoke(*args, "2"), 0)
    assert "the experiment runs 4 times" in refused_quickly(*args, "4")
    assert_clean_exit(invoke(*args, "4", "--force"), 0)


def test_plan_with_a_tolerance_of_1e_300_bit_per_s_is_refused(tmp_path):
    path = write(tmp_path, tiny_scenario())
    stderr = refused_quickly("plan", path, "--tolerance", "1e-300bit/s", "-n", "2", "--workers", "1")
    assert stderr == "error: --tolerance: at least 1 kbit/s (a finer answer is below the run-to-run noise), got " \
                     "'1e-300bit/s'\n"


def test_plan_with_a_hundred_million_replications_is_refused(tmp_path):
    path = write(tmp_path, tiny_scenario())
    stderr = refused_quickly("plan", path, "-n", "100000000", "--workers", "1")
    assert stderr.startswith(f"error: {path}: the plan runs about 4,000,000,000 times (100,000,000 replications at "
                             "about 40 bandwidths)")


def test_a_precision_of_1e_300_s_grows_the_replications_without_overflow():
    status = pd.DataFrame({"point": [0], "metric": ["downtime_s"], "vm": ["(site)"], "replications": [2], "n": [2],
                           "mean": [100.0], "ci95": [10.0], "limit": [1e-300], "reached": [False]})
    assert _next_targets(status, [2], cap=100) == [4]  # was OverflowError from (10 / 1e-300) ** 2


def test_a_precision_of_1e_300_s_ends_with_a_warning_not_a_traceback(tmp_path):
    path = write(tmp_path, tiny_scenario(site={"hosts": [{"name": "h1", "vms": [
        {"name": "vm1", "disks": ["1GiB"], "churn": {"rate": "300kB/s", "variation": 1.0}}]}]}))
    result = invoke("sweep", path, "--precision", "rpo_max_s=1e-300s", "-n", "2", "--max-replications", "3",
                    "--no-save", "--workers", "1")
    assert_clean_exit(result, 0)
    assert "the precision target was not reached everywhere" in result.stderr
