"""The bandwidth planner: closed forms of a lone VM, the throttle, the reconstructed planner formula, the command
line."""

from __future__ import annotations

import re
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import drsim
from drsim.cli import main
from drsim.experiments.bandwidth_runs import _Point
from drsim.experiments.planner import PlanError, plan
from drsim.experiments.planner_text import plan_text
from drsim.experiments.sizing import (
    formula_bandwidth,
    interval_writes,
    resync_bound,
    scenario_at,
    sizing_scenario,
    throttle_share,
)
from drsim.results.tables import SITE
from tests.conftest import base_scenario, make_scenario

MBIT = 1e6 / 8  # bytes/s
TOL = 0.25 * MBIT


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=1) as ex:
        yield ex


def lone_vm(**changes) -> drsim.Scenario:
    """One VM writing a constant 1 MB/s, 5-minute interval, efficiency and compression 1, no throttle: the RPO is
    the sawtooth d..T+d with d = cT/B, so its p-quantile of time is d + pT (a 1 TB disk: its log never reaches
    half of it, so no resync)."""
    return make_scenario({"site.hosts[0].vms[0].churn": {"rate": "1MB/s"}, "duration": "2d",
                          "site.hosts[0].vms[0].disks": [{"size": "1TB", "used": "100MB"}], **changes})


def closed_form(c: float, T: float, R: float, p: float) -> float:
    """Effective bandwidth B = cT / (R - pT), valid when d = R - pT <= T."""
    d = R - p * T
    assert 0 < d <= T
    return c * T / d


def site(df):
    return df.set_index("vm").loc[SITE]


@pytest.mark.parametrize("rpo,percentile,expected_mbit", [("7m", 95, 17.78), ("7m", 50, 8.89), ("6m", 80, 20.0)])
def test_lone_vm_matches_the_closed_form(executor, rpo, percentile, expected_mbit):
    s = lone_vm()
    R = drsim.scenario.units.parse_duration(rpo)
    closed = closed_form(1e6, 300.0, R, percentile / 100)
    assert closed * 8 / 1e6 == pytest.approx(expected_mbit, abs=0.01)  # 1 MB/s, 5 min, 7 min at p95: 17.8 Mbit/s
    df = plan(s, rpo=rpo, percentile=percentile, replications=1, tolerance=TOL, rel_tolerance=0, executor=executor)
    row = site(df)
    assert df.attrs["tolerance_Bps"] == TOL
    assert abs(row["required_Bps"] - closed) <= TOL
    assert 0 < row["required_Bps"] - row["required_low_Bps"] <= TOL
    # the lone VM's own row is the site's; at the answer its RPO percentile is within the target
    vm = df.set_index("vm").loc["vm1"]
    assert vm["required_Bps"] == row["required_Bps"]
    assert vm["rpo_required_s"] <= R
    # the exact percentile at the answer is the sawtooth's d + pT (up to the catch-up transient)
    d = 1e6 * 300.0 / row["required_Bps"]
    assert vm["rpo_required_s"] == pytest.approx(d + percentile / 100 * 300.0, rel=2e-3)


def test_throttle_scales_with_the_uplink(executor):
    """A throttle to half the uplink in and out of work hours halves the link: the raw uplink needed doubles."""
    s = lone_vm(**{"link.throttle": {"work_limit": "4Mbit/s", "off_limit": "4Mbit/s"}})  # the uplink is 8 Mbit/s
    assert throttle_share(s) == pytest.approx(0.5)
    at = scenario_at(s, 40 * MBIT)
    assert at.link.upload == 40 * MBIT
    assert at.link.throttle.work_limit == pytest.approx(20 * MBIT)
    assert at.link.throttle.off_limit == at.link.throttle.work_limit
    df = plan(s, rpo="7m", percentile=95, replications=1, tolerance=TOL, rel_tolerance=0, executor=executor)
    closed = 2 * closed_form(1e6, 300.0, 420.0, 0.95)
    assert abs(site(df)["required_Bps"] - closed) <= TOL
    assert "scaled with the uplink" in df.attrs["throttle"]


def test_formula_bandwidth_by_hand(executor):
    """p95 of hourly churn x 1.3, summed over the protected VMs, / compression / efficiency."""
    data = base_scenario()
    data["duration"] = "7d"  # no calendar start: t = 0 is a Monday 00:00
    data["link"].update({"compression": 1.3, "efficiency": 0.9, "upload": "20Mbit/s"})
    data["site"]["hosts"][0]["vms"] = [
        {"name": "office", "disks": ["100GB"], "churn": {"daily": "2%", "profile": "office", "weekend": 0.2}},
        {"name": "flat", "disks": ["10GB"], "churn": {"rate": "500kB/s"}},
    ]
    data["site"]["hosts"].append({"name": "old", "os": "Windows Server 2008 R2",
                                  "vms": [{"name": "legacy", "disks": ["10GB"], "churn": {"rate": "5MB/s"}}]})
    s = drsim.parse_scenario(data)
    office = np.array([0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.6, 1.8, 2.2, 2.2, 2.0,
                       1.2, 1.8, 2.0, 2.0, 1.8, 1.6, 0.8, 0.5, 0.4, 0.3, 0.3, 0.2])
    base = 0.02 * 100e9 / 86400  # bytes/s on a weekday, before the shape
    hours = np.concatenate([base * office / office.mean()] * 5 + [0.2 * base * office / office.mean()] * 2)
    assert len(hours) == 168
    by_hand = {"office": np.percentile(hours, 95) * 1.3 / 1.3 / 0.9, "flat": 500e3 * 1.3 / 1.3 / 0.9}
    assert formula_bandwidth(s) == pytest.approx(by_hand, rel=1e-9)  # the unprotectable VM is left out
    df = plan(s, rpo="15m", replications=1, tolerance=2 * MBIT, executor=executor)
    table = df.set_index("vm")
    assert list(table.index) == ["office", "flat", SITE]
    assert table.loc["office", "formula_Bps"] == pytest.approx(by_hand["office"], rel=1e-9)
    assert table.loc[SITE, "formula_Bps"] == pytest.approx(sum(by_hand.values()), rel=1e-9)
    assert table.loc[SITE, "formula_ratio"] == pytest.approx(sum(by_hand.values()) / table.loc[SITE, "required_Bps"])
    # the answer is judged at the site: every VM meets the target there, each VM's own bracket is no higher
    assert (table["required_Bps"] <= table.loc[SITE, "required_Bps"]).all()
    assert (table["rpo_required_s"] <= 900).all()
    text = plan_text(df)
    assert "reconstructed planner formula (p95 hourly churn x 1.3) gives" in text and "Mbit/s" in text


def test_a_vm_required_bandwidth_is_a_site_bandwidth_and_its_rpo_is_measured_there(executor):
    """A heavy and a light VM: the light one meets the target on a far thinner link than the site can use, but
    a bandwidth below the site's lower bound (mean churn over capacity) is no answer. Each row's p95 at required
    is its RPO at its own required bandwidth, not the site's."""
    data = base_scenario()
    data["duration"] = "2d"
    data["site"]["hosts"][0]["vms"] = [
        # heavy: a 1 TB disk holding 100 MB, so its log (300 MB an interval) never reaches half the disk: no resync
        {"name": "heavy", "disks": [{"size": "1TB", "used": "100MB"}], "churn": {"rate": "1MB/s"}},
        {"name": "light", "disks": ["100MB"], "churn": {"rate": "1kB/s"}},
    ]
    df = plan(drsim.parse_scenario(data), rpo="7m", replications=1, tolerance=TOL, rel_tolerance=0, executor=executor,
              method="full")  # the full search refines each VM's own bracket (the fast one reads it off the site's)
    lower = df.attrs["lower_bound_Bps"]
    assert lower == pytest.approx(1.001e6, rel=1e-9)
    t = df.set_index("vm")
    assert (t["required_Bps"] >= lower).all()
    assert t.loc["light", "required_Bps"] - lower <= TOL  # it meets the target anywhere the site can run
    assert t.loc["light", "required_Bps"] < t.loc[SITE, "required_Bps"]
    rpo_at = {e["upload_Bps"]: e["rpo_mean_s"] for e in df.attrs["evaluations"]}
    for vm in ("heavy", "light"):
        assert t.loc[vm, "rpo_required_s"] == rpo_at[t.loc[vm, "required_Bps"]][vm]
    assert t.loc[SITE, "rpo_required_s"] == max(rpo_at[t.loc[SITE, "required_Bps"]].values())


def test_the_formula_verdict_says_whether_it_met_the_target(executor):
    df = plan(lone_vm(), rpo="7m", percentile=95, replications=1, tolerance=TOL, rel_tolerance=0, executor=executor)
    site_row = df["vm"] == SITE

    def verdict(ratio: float, meets: bool) -> str:
        d = df.copy()
        d.attrs = {**df.attrs, "formula_meets": meets}
        d.loc[site_row, "formula_ratio"] = ratio
        return next(x for x in plan_text(d).splitlines() if "reconstructed planner formula" in x)

    assert "it meets the target, within the search's tolerance of the required bandwidth;" in verdict(1.003, True)
    assert "it meets the target and over-provisions by 23%;" in verdict(1.23, True)
    assert "falls just short of the target (less than 1 % below the required bandwidth);" in verdict(0.997, False)
    assert "it under-provisions by 40% and misses the target;" in verdict(0.6, False)
    assert all("by 0%" not in verdict(r, m) for r, m in ((1.003, True), (0.997, False)))


def test_initial_replication_per_batch(executor):
    """Two batches of one VM each, constant churn: the batches' times add up to the site's."""
    data = base_scenario()
    data["site"]["hosts"][0]["vms"] = [
        {"name": "a", "disks": ["2GB"], "churn": {"rate": "100kB/s"}},
        {"name": "b", "disks": ["4GB"], "churn": {"rate": "100kB/s"}},
    ]
    data["replication"]["initial"] = {"batches": [["b"], ["a"]]}
    df = plan(drsim.parse_scenario(data), rpo="15m", replications=1, tolerance=MBIT, executor=executor)
    t = df.set_index("vm")
    assert t.loc["b", "batch"] == 1 and t.loc["a", "batch"] == 2
    assert t.loc["a", "batch_initial_replication_s"] == t.loc["a", "initial_replication_s"]
    assert t.loc["b", "protected_after_s"] == pytest.approx(t.loc["b", "initial_replication_s"])
    assert t.loc[SITE, "initial_replication_s"] == pytest.approx(
        t.loc["a", "initial_replication_s"] + t.loc["b", "initial_replication_s"])


def test_same_answer_in_processes_with_common_random_numbers(executor):
    """Random churn, three replications: the same run seeds at every bandwidth, whatever the executor."""
    s = lone_vm(**{"site.hosts[0].vms[0].churn": {"rate": "1MB/s", "variation": 0.3}})
    here = plan(s, rpo="7m", replications=3, tolerance=MBIT, executor=executor)
    with ProcessPoolExecutor(max_workers=2) as pool:
        there = plan(s, rpo="7m", replications=3, tolerance=MBIT, executor=pool)
    assert here.equals(there)
    assert here.attrs["evaluations"] == there.attrs["evaluations"]
    assert len(set(here.attrs["run_seeds"])) == 3
    assert here.attrs["criterion_text"].startswith("upper end of the 95 % confidence interval")


def test_sizing_removes_failures_maintenance_and_drills():
    s = drsim.load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "essentials-office.yaml")
    assert s.failures and s.maintenance and s.drills
    sized = sizing_scenario(s)
    assert not (sized.failures or sized.maintenance or sized.drills)
    assert sized.link == s.link and sized.site == s.site


def test_criterion_is_the_upper_confidence_bound():
    q = np.array([[100.0, 200.0], [110.0, np.inf], [120.0, 200.0]])
    p = _Point(1.0, {"quantile": q}, target=115.0, criterion="upper")
    assert p.stat[0] == pytest.approx(110.0 + 4.3026527 * 10.0 / np.sqrt(3))
    assert p.stat[1] == np.inf and not p.met.any()  # never protected in one replication: not met
    assert _Point(1.0, {"quantile": q}, target=115.0, criterion="mean").met.tolist() == [True, False]


@pytest.mark.parametrize("kwargs,message", [
    ({"rpo": "4m"}, "cannot be met"),
    ({"rpo": "soon"}, "--rpo"),
    ({"percentile": 0.95}, "not 0.95"),
    ({"tolerance": "fast"}, "--tolerance"),
    ({"rel_tolerance": "lots"}, "--rel-tolerance"),
    ({"rel_tolerance": "30%"}, "--rel-tolerance: a share of the answer from 0 to 25%"),
    ({"rel_tolerance": -0.01}, "--rel-tolerance"),
])
def test_impossible_or_bad_requests_are_refused(kwargs, message):
    with pytest.raises(PlanError, match=message):
        plan(lone_vm(), **kwargs)


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def test_the_relative_tolerance_widens_the_bracket_on_a_large_answer(executor):
    """10 MB/s at a 7 min RPO 95 % of the time: 177.8 Mbit/s by the closed form. With the default 1 %, the bracket
    may be 1.78 Mbit/s wide, not 0.25: the answer is within 1 % of the closed form, with fewer runs; with
    rel_tolerance=0 it is within 0.25 Mbit/s."""
    s = lone_vm(**{"site.hosts[0].vms[0].churn": {"rate": "10MB/s"}})
    closed = closed_form(10e6, 300.0, 420.0, 0.95)
    rel = plan(s, rpo="7m", replications=1, tolerance=TOL, executor=executor)
    absolute = plan(s, rpo="7m", replications=1, tolerance=TOL, rel_tolerance=0, executor=executor)
    hi, lo = site(rel)["required_Bps"], site(rel)["required_low_Bps"]
    assert rel.attrs["rel_tolerance"] == 0.01 and rel.attrs["bracket_tolerance_Bps"] == pytest.approx(0.01 * hi)
    assert hi - lo <= 0.01 * hi and abs(hi - closed) <= 0.01 * hi
    assert abs(site(absolute)["required_Bps"] - closed) <= TOL
    assert absolute.attrs["bracket_tolerance_Bps"] == TOL
    assert rel.attrs["runs"] < absolute.attrs["runs"]
    assert re.search(r"tolerance 0\.25 Mbit/s or 1 % of the answer \(1\.7\d Mbit/s here\);", plan_text(rel))
    assert "tolerance 0.25 Mbit/s;" in plan_text(absolute)


def test_cli_end_to_end(tmp_path):
    path = tmp_path / "lone.yaml"
    data = base_scenario()
    data["site"]["hosts"][0]["vms"][0].update({"churn": {"rate": "1MB/s"}, "disks": [{"size": "1TB", "used": "100MB"}]})
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = _runner().invoke(main, ["plan", str(path), "--rpo", "7m", "--percentile", "95", "-n", "1",
                                     "--tolerance", "0.5Mbit/s", "--workers", "1"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    out = result.stdout
    assert "tolerance 0.50 Mbit/s or 1 % of the answer (0.50 Mbit/s here)" in out
    assert "1 replication per bandwidth" in out
    assert "Every VM meets a 7 min RPO 95 % of the time from 17." in out  # 17.8 Mbit/s by the closed form
    assert "simulating" in result.stderr  # progress goes to stderr

    bad = _runner().invoke(main, ["plan", str(path), "--rpo", "soon"])
    assert bad.exit_code == 2 and isinstance(bad.exception, SystemExit)
    assert "error: --rpo" in bad.stderr and "Traceback" not in bad.stderr + bad.stdout


def test_drsim_plan_is_exported(executor):
    df = drsim.plan(lone_vm(), rpo="7m", percentile=95, replications=1, tolerance=MBIT, executor=executor)
    assert df.attrs["percentile"] == 95 and df.attrs["window"] == "steady"


def test_a_vm_that_resyncs_at_any_bandwidth_is_refused_or_noted(executor):
    """1 MB/s on a 100 MB disk writes 300 MB in every 5-minute interval: its log reaches 50 MB (half the disk)
    between two cuts, so every tick marks a resync whatever the link. The planner says so instead of searching up to
    an absurd bandwidth. A VM that exceeds it only in its busiest interval is sized, with a note."""
    s = make_scenario({"site.hosts[0].vms[0].churn": {"rate": "1MB/s"}, "site.hosts[0].vms[0].disks": ["100MB"],
                       "duration": "1d"})
    ((name, mean, peak, limit),) = resync_bound(s, [1])
    assert (name, mean, peak, limit) == ("vm1", pytest.approx(3e8), pytest.approx(3e8), pytest.approx(5e7))
    with pytest.raises(PlanError, match="vm1: it writes 286 MiB in an average 5 min interval, at least the 47.7 MiB "
                                        "at which a disk's change log reaches half the disk"):
        plan(s, rpo="7m", replications=1, tolerance=TOL, rel_tolerance=0, executor=executor)


def test_a_vm_that_resyncs_only_in_its_busiest_interval_is_sized_with_a_note(tmp_path, executor):
    """An hourly trace of 10 kB/s with a burst of 600 kB/s from 12:00 to 13:00, on a 200 MB disk: its busiest
    5-minute interval writes 180 MB, past the 100 MB at which the log reaches half the disk; an average one
    10.375 MB ((23 x 36 MB + 2.16 GB) / 86400 s x 300 s). It is sized, and the notes say when no bandwidth helps."""
    rows = [(h * 3600, 6e5 * 3600 if h == 12 else 1e4 * 3600) for h in range(24)]
    (tmp_path / "burst.csv").write_text("timestamp,bytes\n" + "".join(f"{t},{b:.0f}\n" for t, b in rows))
    data = base_scenario()
    data["site"]["hosts"][0]["vms"][0].update({"disks": ["200MB"], "churn": {"trace": str(tmp_path / "burst.csv")}})
    data["replication"]["resync"] = {"start": "immediate"}
    s = drsim.parse_scenario(data)
    vm = s.site.hosts[0].vms[0]
    assert interval_writes(s, vm, 1) == (pytest.approx(1.8e8), pytest.approx(1.0375e7))
    assert resync_bound(s, [1]) == [("vm1", pytest.approx(1.0375e7), pytest.approx(1.8e8), pytest.approx(1e8))]
    df = plan(s, rpo="15m", percentile=90, replications=1, tolerance=TOL, rel_tolerance=0, executor=executor)
    assert ("vm1: its busiest 5 min interval writes 172 MiB, at least the 95.4 MiB at which a disk's change log "
            "reaches half the disk: it needs a resynchronisation then at any bandwidth") in df.attrs["notes"]
