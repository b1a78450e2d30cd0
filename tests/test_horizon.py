"""The long-horizon building blocks: a steady protected start, the slow time scale alone, an injected failure
timeline, windows around failures, and the quiet check that skipping relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_scenario

from drsim.experiments.annual import YEAR
from drsim.experiments.horizon import (
    HorizonPlan,
    quiet,
    risk_scenario,
    simulate_full,
    simulate_slow,
    simulate_windows,
)
from drsim.model.churn import build_curve
from drsim.model.failures import FailureEvent, failure_timeline
from drsim.model.longrun import PeriodicCurve, SettledSchedule, periodic_curve
from drsim.model.schedule import CapacitySchedule
from drsim.model.site import SiteModel
from drsim.model.streams import Streams
from drsim.results.tables import Results
from drsim.scenario.units import DAY, HOUR, WEEK


def test_a_steady_start_is_protected_at_once_and_gives_the_sawtooth():
    """Lone VM, c = 100 kB/s, T = 5 min, B = 1 MB/s: d = cT/B = 30 s; RPO mean T/2 + d = 180 s, no initial copy."""
    s = make_scenario({"duration": "2d"})
    m = SiteModel(s, 1, protected_from=[0.0]).run()
    res = Results(m)
    row = res.summary.iloc[0]
    assert row["protected_at"] == 0.0 and row["initial_bytes"] == 0.0
    assert set(res.transfers["kind"].astype(str)) == {"reverse", "delta"}
    # the first piece runs from 0 (RPO 0) to the first delivery at 330 s; every later one from 30 s to T + d
    assert row["rpo_mean_s"] == pytest.approx(180.0, abs=0.2)
    assert row["rpo_max_s"] == pytest.approx(330.0, abs=1e-6)


def test_a_steady_start_keeps_the_given_tick_phase():
    s = make_scenario({"duration": "1h"})
    m = SiteModel(s, 1, protected_from=[120.0]).run()
    deltas = Results(m).transfers.query("kind == 'delta'")["queued_at"].to_numpy()
    assert deltas[:3].tolist() == [420.0, 720.0, 1020.0]
    assert m.replicas[0].tick_origin == 120.0


def test_without_replication_there_are_no_cycles_but_failures_still_fail_over():
    s = make_scenario({"duration": "3d", "failures": [{"kind": "host", "target": "H1", "at": "1d", "repair": "6h"}],
                       "policy": {"name": "manual", "detect": "10m", "respond": "5m", "failback": "immediate"}})
    m = SiteModel(s, 1, replicate=False).run()
    res = Results(m)
    assert (res.transfers["kind"].astype(str) == "delta").sum() == 0
    [inc] = res.incidents.itertuples()
    assert inc.outcome == "failed over" and inc.failed_at == DAY
    assert inc.service_restored_at > DAY + 15 * 60  # detection and response, then the failover steps


def test_the_periodic_curve_repeats_the_weekly_pattern_of_the_full_curve():
    s = make_scenario({"duration": "3w", "start": "2026-03-04T13:30:00",
                       "site.hosts[0].vms[0].churn": {"daily": "3%", "profile": "office", "weekend": 0.2}})
    vm = s.site.hosts[0].vms[0]
    full = build_curve(s, vm, np.random.default_rng(0), 3 * WEEK)
    periodic = periodic_curve(s, vm)
    assert isinstance(periodic, PeriodicCurve)
    for t in np.random.default_rng(1).uniform(0, 3 * WEEK, 200):
        assert periodic(t) == pytest.approx(full(t), rel=1e-12, abs=1e-3)
    assert periodic(200 * WEEK + 5.0) - periodic(5.0) == pytest.approx(200 * (full(WEEK) - full(0.0)), rel=1e-12)


def test_the_periodic_curve_answers_when_a_total_is_reached():
    """The inverse a resync's watch asks during initial replication (the slow engine's VMs use periodic curves):
    exact at every instant the curve is rising, whatever the phase, over many periods."""
    s = make_scenario({"duration": "3w", "start": "2026-03-04T13:30:00",
                       "site.hosts[0].vms[0].churn": {"daily": "3%", "profile": "office", "weekend": 0.2}})
    periodic = periodic_curve(s, s.site.hosts[0].vms[0])
    checked = 0
    for t in np.random.default_rng(2).uniform(0, 60 * WEEK, 500):
        if periodic.rate(t) > 0 and periodic.rate(t - 1.0) > 0:
            assert periodic.time_of(periodic(t)) == pytest.approx(t, abs=1e-6)
            checked += 1
    assert checked > 100 and periodic.time_of(0.0) == 0.0


def test_the_slow_scale_runs_initial_replication_with_periodic_churn():
    """The slow engine's initial replication watches each VM's log for a resync (through the periodic curve's
    inverse): a profiled VM whose copy outgrows half its disk is marked then, as in a full run."""
    s = make_scenario({"duration": "20d", "site.hosts[0].vms[0].disks": [{"size": "2GB", "used": "1.9GB"}],
                       "site.hosts[0].vms[0].churn": {"rate": "1MB/s", "profile": "office", "weekend": 0.5},
                       "link.upload": "1Mbit/s"})
    slow = SiteModel(s, 1, replicate=False).run()
    full = SiteModel(s, 1).run()
    assert slow.replicas[0].resyncs >= 1 and full.replicas[0].resyncs >= 1
    first = [Results(m).operations.query("step == 'wait'")["start"].iloc[0] for m in (slow, full)]
    assert first[0] == pytest.approx(first[1], abs=1e-6)  # marked at the same instant during the copy


def test_a_settled_schedule_follows_the_throttle_then_holds_its_mean():
    week = CapacitySchedule.weekly(10e6, 5e6, 10e6, frozenset(range(5)), (8 * HOUR, 18 * HOUR), 0.0, 1.0)
    settled = SettledSchedule(week, 2 * DAY)
    assert settled.at(9 * HOUR) == 5e6 and settled.next_change(9 * HOUR) == 18 * HOUR
    assert settled.next_change(DAY + 20 * HOUR) == 2 * DAY
    assert settled.at(3 * DAY) == pytest.approx(week.weekly_mean()) and settled.next_change(3 * DAY) == math.inf


def test_an_injected_timeline_replaces_the_drawn_one():
    s = make_scenario({"duration": "2d", "failures": [{"kind": "host", "target": "H1", "at": "1d", "repair": "1h"}]})
    drawn = SiteModel(s, 1).timeline
    moved = [FailureEvent("host", ("H1",), 0.5 * DAY, 2 * HOUR, False, 0.0, 0)]
    m = SiteModel(s, 1, timeline=moved).run()
    assert drawn[0].start == DAY
    assert Results(m).incidents["failed_at"].tolist() == [0.5 * DAY]


def _site(every: str = "20d", years: int = 1) -> object:
    return risk_scenario(make_scenario({
        "name": "small", "duration": "30d", "seed": 3,
        "site.hosts[0].vms": [{"name": "a", "disks": ["20GB"], "churn": {"rate": "50kB/s"}},
                              {"name": "b", "disks": ["10GB"], "churn": {"rate": "30kB/s"}}],
        "site.hosts[1]": {"name": "H2", "vms": [{"name": "c", "disks": ["10GB"], "churn": {"rate": "20kB/s"}}]},
        "link": {"upload": "10Mbit/s", "download": "100Mbit/s", "efficiency": 1.0, "compression": 1.0},
        "replication": {"interval": "15m", "setup": 0},
        "failures": [{"kind": "host", "target": "all", "every": {"dist": "exponential", "mean": every},
                      "repair": {"dist": "exponential", "mean": "8h"}}],
        "policy": {"name": "manual", "detect": "10m", "respond": "15m", "point": "latest", "failback": "immediate"},
    }), years)


def test_windows_see_the_timeline_of_the_full_run_and_every_failure():
    s = _site("20d")
    rec = simulate_windows(s, 7, HorizonPlan(warmup=2 * HOUR))
    timeline = failure_timeline(s, Streams(7))
    per_host = {"H1": 2, "H2": 1}
    expected = sum(per_host[ev.targets[0]] for ev in timeline)
    # every failure hits its host's VMs; one that falls on VMs already down adds no incident
    assert expected - 2 <= rec.incidents.sum() <= expected
    assert rec.failovers.sum() > 0 and rec.downtime.sum() > 0 and not rec.notes
    full = simulate_full(s, 7)
    assert abs(full.incidents.sum() - rec.incidents.sum()) <= 2


def test_the_slow_scale_records_losses_for_the_steady_state_to_fill_in():
    s = _site("20d")
    rec = simulate_slow(s, 7, HorizonPlan())
    assert rec.point_used.sum() == rec.failovers.sum() > 0
    assert rec.loss_sum.sum() == 0.0  # the conditional estimator supplies the losses
    assert all(vms in {(0, 1), (0,), (1,), (2,)} for _, vms in rec.events)
    assert rec.downtime.shape == (1, 3) and rec.downtime.sum() < YEAR


def test_quiet_means_up_protected_and_nothing_open():
    s = make_scenario({"duration": "2d", "failures": [{"kind": "host", "target": "H1", "at": "1d", "repair": "1h"}],
                       "policy": {"name": "wait-for-repair", "detect": "1m"}})
    m = SiteModel(s, 1, protected_from=[0.0])
    m.advance(DAY - 60)
    assert quiet(m)
    m.advance(DAY + 60)
    assert not quiet(m)  # the host is down, an incident is open
    m.advance(DAY + 2 * HOUR)
    assert quiet(m)


def test_windows_handle_link_outages_corruption_and_guest_crashes():
    s = risk_scenario(make_scenario({
        "duration": "30d",
        "failures": [{"kind": "link", "every": {"dist": "exponential", "mean": "15d"}},
                     {"kind": "corruption", "target": "vm1", "every": {"dist": "exponential", "mean": "60d"},
                      "detected_after": "2h"},
                     {"kind": "vm", "target": "vm1", "every": {"dist": "exponential", "mean": "30d"}}],
        "policy": {"name": "manual", "detect": "5m", "respond": "5m", "failback": "immediate"}}), 1)
    rec = simulate_windows(s, 3, HorizonPlan(warmup=2 * HOUR))
    kinds = {ev.kind for ev in failure_timeline(s, Streams(3))}
    assert kinds == {"link", "corruption", "vm"}
    assert rec.incidents.sum() >= 5 and not rec.notes
    assert np.isfinite(rec.loss_max).any()  # losses measured by the simulation itself
    assert rec.point_used.sum() == 0


def test_the_joint_rpo_of_several_vms_is_their_largest_at_each_instant():
    """max_v RPO_v(t) from the lower envelope of the capture times, against a dense sampling of the curves."""
    from drsim.experiments.steady import curve_pieces
    from drsim.results.metrics import time_above

    rng = np.random.default_rng(5)
    points = []
    for _ in range(7):
        cap = np.cumsum(rng.uniform(250, 350, 400))
        points.append((np.maximum.accumulate(cap + rng.uniform(1, 200, 400)), cap))
    start, end = 2000.0, float(min(p[0][-1] for p in points)) - 1
    r0, length = curve_pieces(points, start, end)
    assert length.sum() == pytest.approx(end - start) and (r0 >= 0).all()
    t = np.linspace(start, end, 400_001)[:-1]
    newest = np.min([cap[np.searchsorted(avail, t, side="right") - 1] for avail, cap in points], axis=0)
    grid = np.array([100.0, 250.0, 400.0, 520.0])
    sampled = [(t - newest > x).mean() for x in grid]
    assert time_above(r0, length, grid) / length.sum() == pytest.approx(sampled, abs=2e-3)
    one = curve_pieces(points[:1], start, end)
    assert (t - points[0][1][np.searchsorted(points[0][0], t, side="right") - 1]).max() <= (one[0] + one[1]).max()


def test_losses_sampled_from_the_steady_state_follow_its_exact_distribution():
    from drsim.experiments.steady import probe_run, rpo_grid, steady_state

    s = _site("20d")
    grid = rpo_grid(900.0)
    st = steady_state(["a", "b", "c"], grid, [probe_run(s, seed, 2, DAY, grid) for seed in (1, 2)])
    index = np.array([[0, -1]] * 20000 + [[0, 2]] * 20000)
    losses = st.sample_losses(index, 1, np.random.default_rng(3))[:, :, 0]
    assert losses.shape == (40000, 2) and np.isneginf(losses[:20000, 1]).all()
    single, joint = losses[:20000, 0], losses[20000:].max(axis=1)
    for x in (300.0, 600.0, 900.0):
        i = int(np.argmin(np.abs(grid - x)))
        exact = st.above[:, 0, i].mean()
        assert abs((single > grid[i]).mean() - exact) <= 4 * np.sqrt(exact * (1 - exact) / 20000) + 1e-4
    assert (joint >= 0).all() and np.mean(joint) > np.mean(single)  # the largest of two is larger
