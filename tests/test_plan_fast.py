"""The fast planner: VMs that start protected, a window that covers the pattern, one replication for a
deterministic scenario, few replications far from the answer (predicted paired with fully replicated bandwidths),
the answer's bracket judged with every replication, the initial replication timed by a run stopped at the last
protection, progress, and agreement with the full-length search."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import drsim
from drsim.experiments.bandwidth_runs import _initial_runs, _Point
from drsim.experiments.plan_request import tolerance_at
from drsim.experiments.plan_search import _near_candidate
from drsim.experiments.planner import (
    DAILY_WINDOW,
    FLAT_WINDOW,
    STEADY_WINDOW,
    _steady_window,
    is_deterministic,
    plan,
    steady_window_length,
)
from drsim.experiments.settings_paths import apply_settings
from drsim.experiments.sizing import sizing_scenario
from drsim.experiments.statistics import t_975
from drsim.model.site import SiteModel
from drsim.results.tables import SITE, Results
from tests.conftest import make_scenario

MBIT = 1e6 / 8  # bytes/s


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=1) as ex:
        yield ex


def lone_vm(**changes) -> drsim.Scenario:
    """1 MB/s on a 1 TB disk holding 100 MB: a 5-minute interval's 300 MB never bring its log near half the disk,
    so no resync (on a 100 MB disk every tick would mark one, at any bandwidth)."""
    return make_scenario({"site.hosts[0].vms[0].churn": {"rate": "1MB/s"},
                          "site.hosts[0].vms[0].disks": [{"size": "1TB", "used": "100MB"}],
                          "link.upload": "16Mbit/s", "link.efficiency": 1.0, "link.compression": 1.0,
                          "duration": "1d", **changes})


def test_start_protected_has_a_point_at_zero_and_no_initial_copy():
    """1 MB/s, 5-minute interval, 2 MB/s effective: every delta takes 150 s, so the RPO is the sawtooth 150..450 s
    from the first cut on, and 0..300 s before it (the point captured at t = 0)."""
    s = lone_vm()
    res = Results(SiteModel(s, 1, start_protected=True).run())
    summ = res.summary.set_index("vm").loc["vm1"]
    assert summ["protected_at"] == 0 and summ["initial_replication_s"] == 0
    tr = res.transfers
    assert "initial" not in set(tr["kind"].astype(str))
    first = tr.sort_values("queued_at").iloc[0]
    # the first point comes with an empty transfer at t = 0 (the model's steady protected start)
    assert str(first["kind"]) != "initial" and first["bytes"] == 0 and first["finished_at"] == 0
    deltas = tr[tr["kind"].astype(str) == "delta"]
    assert deltas["queued_at"].iloc[0] == pytest.approx(300.0)
    assert np.allclose(deltas["finished_at"] - deltas["queued_at"], 150.0)
    # the exact p95 over the day: the first 300 s ramp 0..450 counts, the rest is the 150..450 sawtooth
    assert summ["rpo_p95_s"] == pytest.approx(150 + 0.95 * 300, rel=2e-3)
    # without the option the same VM first copies its 100 MB disk
    plain = Results(SiteModel(s, 1).run()).summary.set_index("vm").loc["vm1"]
    assert plain["initial_replication_s"] > 50


def test_deterministic_scenarios_need_one_replication(executor):
    s = lone_vm()
    assert is_deterministic(s)
    assert not is_deterministic(lone_vm(**{"site.hosts[0].vms[0].churn": {"rate": "1MB/s", "variation": 0.2}}))
    assert is_deterministic(lone_vm(**{"site.hosts[0].vms[0].churn": {"rate": "1MB/s", "profile": "office",
                                                                          "weekend": 0.3}}))
    df = plan(s, rpo="7m", replications=10, tolerance=0.25 * MBIT, rel_tolerance=0, executor=executor)
    assert df.attrs["deterministic"] and df.attrs["replications"] == 1
    assert df.attrs["runs"] == len(df.attrs["evaluations"])  # one run per bandwidth
    # the closed form B = cT / (R - pT) for the lone VM: 1 MB/s, 5 min, 7 min at p95 = 17.78 Mbit/s
    closed = 1e6 * 300 / (420 - 0.95 * 300)
    assert abs(df.set_index("vm").loc[SITE, "required_Bps"] - closed) <= 0.25 * MBIT


def test_the_window_covers_the_pattern():
    """Two weeks with a weekly pattern (weekend factors, a throttle on weekdays), a week with a daily one (a
    profile, an hourly variation, a throttle every day), two days with none; a trace keeps its own period."""
    office = sizing_scenario(drsim.load_scenario("scenarios/essentials-office.yaml"))
    assert office.duration == 30 * 86400
    assert _steady_window(office).duration == STEADY_WINDOW == 14 * 86400
    trace = drsim.load_scenario("scenarios/trace-replay.yaml")  # a trace keeps its own period: the whole run
    assert _steady_window(trace).duration == trace.duration
    short = lone_vm()
    assert _steady_window(short) is short
    month = {"duration": "30d"}
    assert steady_window_length(lone_vm(**month)) == FLAT_WINDOW == 2 * 86400
    for churn in ({"rate": "1MB/s", "profile": "office"}, {"rate": "1MB/s", "variation": 0.3}):
        assert steady_window_length(lone_vm(**month, **{"site.hosts[0].vms[0].churn": churn})) == DAILY_WINDOW
    assert DAILY_WINDOW == 7 * 86400
    assert steady_window_length(lone_vm(**month, **{"site.hosts[0].vms[0].churn": {"rate": "1MB/s",
                                                                                    "weekend": 0.5}})) == STEADY_WINDOW
    every_day = {"work_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "work_hours": "08:00-18:00",
                 "work_limit": "8Mbit/s"}
    assert steady_window_length(lone_vm(**month, **{"link.throttle": every_day})) == DAILY_WINDOW
    assert steady_window_length(lone_vm(**month, **{"link.throttle": {**every_day, "work_days": ["mon"]}})) \
        == STEADY_WINDOW


def test_the_initial_replication_run_stops_when_every_vm_is_protected():
    """The office at 20 Mbit/s (three batches, random setup times): the run stopped at the last protection gives
    the full-length run's times exactly (the same events up to then)."""
    office = sizing_scenario(drsim.load_scenario("scenarios/essentials-office.yaml"))
    ((_, short),) = _initial_runs(office, [(0, 5)])
    summary = Results(SiteModel(office, 5).run()).summary.set_index("vm")
    names = [v.name for h, v in office.vms() if h.supported and v.protect]
    assert np.array_equal(short["protected_at"], summary.loc[names, "protected_at"].to_numpy(dtype=float))
    assert np.array_equal(short["initial_s"], summary.loc[names, "initial_replication_s"].to_numpy(dtype=float))
    assert np.isfinite(short["protected_at"]).all()


def test_a_prediction_is_paired_with_a_fully_replicated_bandwidth():
    """Three replications at B, ten at a reference B' with the same seeds: the predicted mean is B's mean of ten,
    estimated as B''s mean of ten plus the paired difference over the first three; the half-width is B''s scaled
    by the ratio of the two spreads over those three."""
    rng = np.random.default_rng(1)
    ref = 600 + 80 * rng.standard_normal((10, 2))
    own = ref[:3] - 100 + 5 * rng.standard_normal((3, 2))
    p = _Point(1.0, {"quantile": own}, 900.0, "upper", n_target=10, reference=ref)
    predicted = ref.mean(axis=0) + own.mean(axis=0) - ref[:3].mean(axis=0)
    half = float(t_975(9)) * ref.std(axis=0, ddof=1) / np.sqrt(10) * own.std(axis=0, ddof=1) / \
        ref[:3].std(axis=0, ddof=1)
    assert np.allclose(p.stat, predicted + half)
    assert np.allclose(p.mean, own.mean(axis=0))  # what is shown stays the replications at hand
    alone = _Point(1.0, {"quantile": own}, 900.0, "upper", n_target=10)  # no reference: its own spread
    assert np.allclose(alone.stat, own.mean(axis=0) + float(t_975(9)) * own.std(axis=0, ddof=1) / np.sqrt(10))
    full = _Point(1.0, {"quantile": ref}, 900.0, "upper", n_target=10, reference=ref)  # all ten: the criterion
    assert np.allclose(full.stat, ref.mean(axis=0) + full.ci95)


def test_few_replications_far_more_near_and_progress(executor):
    """Random churn: far from the answer 3 replications, the site's final bracket ends with all 6."""
    s = lone_vm(**{"site.hosts[0].vms[0].churn": {"rate": "1MB/s", "variation": 0.3}, "duration": "2d"})
    messages: list[str] = []
    df = plan(s, rpo="7m", replications=6, tolerance=MBIT, executor=executor, progress=messages.append)
    assert not df.attrs["deterministic"]
    row = df.set_index("vm").loc[SITE]
    ev = {e["upload_Bps"]: e for e in df.attrs["evaluations"]}
    assert row["required_Bps"] in ev and row["required_Bps"] - row["required_low_Bps"] <= MBIT
    assert df.attrs["runs"] < 6 * len(ev)  # not every bandwidth got every replication
    # the answer's bracket: both simulated ends judged with every replication, as the full search judges them
    assert ev[row["required_Bps"]]["replications"] == 6 and ev[row["required_Bps"]]["site_met"]
    if row["required_low_Bps"] in ev:
        assert ev[row["required_low_Bps"]]["replications"] == 6 and not ev[row["required_low_Bps"]]["site_met"]
    # one replication far from the answer, 3 at the first candidates, every one near the answer
    assert {e["replications"] for e in df.attrs["evaluations"]} <= {1, 3, 6}
    assert messages[0].startswith("round 1: simulating")
    assert any("s left" in m for m in messages[1:])
    # the answer's replications: 6 (its confidence interval is reported)
    assert np.isfinite(row["rpo_required_ci95_s"])


@pytest.mark.parametrize("name", ["branch-what-if", "ransomware", "saturated-branch"])
def test_fast_and_full_search_agree(name):
    """Bundled scenarios (at most 14 days, 3 replications, mean criterion, 1 Mbit/s tolerance): the fast answer is
    within two tolerances of the full-length search's. Each answer is within one tolerance above its own
    threshold; the thresholds differ by the sampling noise of different windows (see the README)."""
    s = drsim.load_scenario(f"scenarios/{name}.yaml")
    if s.duration > 14 * 86400:
        s = apply_settings(s, {"duration": "14d"})
    with ProcessPoolExecutor(max_workers=2) as pool:
        fast = plan(s, replications=3, tolerance=MBIT, criterion="mean", executor=pool, method="fast")
        full = plan(s, replications=3, tolerance=MBIT, criterion="mean", executor=pool, method="full")
    a, b = (df.set_index("vm").loc[SITE, "required_Bps"] for df in (fast, full))
    assert abs(a - b) <= 2 * MBIT, (a / MBIT, b / MBIT)
    assert fast.attrs["runs"] <= full.attrs["runs"]


def test_the_tolerance_is_absolute_or_relative_whichever_is_wider():
    assert tolerance_at(0.5 * MBIT, 0.01, 20 * MBIT) == 0.5 * MBIT
    assert tolerance_at(0.5 * MBIT, 0.01, 200 * MBIT) == pytest.approx(2 * MBIT)
    assert tolerance_at(0.5 * MBIT, 0.01, float("inf")) == 0.5 * MBIT  # no upper end yet
    assert tolerance_at(0.5 * MBIT, 0.0, 200 * MBIT) == 0.5 * MBIT


def test_a_candidate_near_the_answer_closes_the_bracket_when_the_guess_is_right():
    """A candidate is the guess moved a quarter tolerance to the side that closes the bracket (up from a lower end
    judged with every replication, down from such an upper end) and at most a tolerance from that end, a quarter
    tolerance inside the bracket."""
    tol = lambda b: 1.0  # noqa: E731
    assert _near_candidate(100.0, 110.0, 104.0, tol, [100.0]) == 101.0  # from a full lower end: at most 1 above
    assert _near_candidate(100.0, 110.0, 100.5, tol, [100.0]) == 100.75  # a quarter above the guess
    assert _near_candidate(100.0, 110.0, 106.0, tol, [110.0]) == 109.0  # from a full upper end: at most 1 below
    assert _near_candidate(100.0, 110.0, 109.5, tol, [110.0]) == 109.25  # a quarter below the guess
    assert _near_candidate(100.0, 110.0, 104.0, tol, []) == 104.25  # no full end: a quarter above
    assert _near_candidate(100.0, 110.0, 109.9, tol, []) == 109.75  # a quarter tolerance inside
    assert _near_candidate(100.0, 110.0, 103.0, tol, [100.0, 110.0]) == 101.0  # the nearer full end
    assert _near_candidate(100.0, 110.0, 108.0, tol, [100.0, 110.0]) == 109.0


def test_a_search_stopped_by_its_guard_says_so(executor, monkeypatch):
    """Four rounds only (the guard against a search that never closes): the plan's notes say where it stopped; with
    no bandwidth met yet, that note says the search was stopped too."""
    import drsim.experiments.planner as planner

    s = lone_vm(**{"site.hosts[0].vms[0].churn": {"rate": "1MB/s", "variation": 0.3}, "duration": "2d"})
    whole = plan(s, rpo="7m", replications=6, tolerance=0.1 * MBIT, executor=executor)
    assert whole.attrs["rounds"] > 4 and not any("stopped" in n for n in whole.attrs["notes"])
    monkeypatch.setattr(planner, "_MAX_ROUNDS", 4)
    df = plan(s, rpo="7m", replications=6, tolerance=0.1 * MBIT, executor=executor)
    assert df.attrs["rounds"] == 4
    assert any(n.startswith("the search stopped after 4 rounds before its bracket closed: the answer is between ")
               for n in df.attrs["notes"]), df.attrs["notes"]
    monkeypatch.setattr(planner, "_MAX_ROUNDS", 2)
    early = plan(s, rpo="7m", replications=6, tolerance=0.1 * MBIT, executor=executor)
    assert any(n.startswith("no simulated bandwidth up to ") and n.endswith("(the search stopped after 2 rounds)")
               for n in early.attrs["notes"]), early.attrs["notes"]
