"""Replication model against closed forms and the product's contract."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import drsim
from drsim.results.metrics import rpo_stats, time_above
from tests.conftest import base_scenario, make_scenario

REL = 1e-9


def _vm(changes=None, **kw):
    return drsim.simulate(make_scenario(changes), **kw)


# --- initial replication ---------------------------------------------------------------------------


def test_initial_replication_time_is_size_over_effective_bandwidth():
    # 10 GB at 8 Mbit/s x 0.9 efficiency x 1.5 compression = 1.35 MB/s of data
    r = _vm({"link.efficiency": 0.9, "link.compression": 1.5, "site.hosts[0].vms[0].churn": {"rate": "1kB/s"}})
    tr = r.transfers
    init = tr[tr["kind"] == "initial"].iloc[0]
    assert init["finished_at"] - init["started_at"] == pytest.approx(10e9 / (1e6 * 0.9 * 1.5), rel=REL)
    assert init["wire_bytes"] == pytest.approx(10e9 / 1.5, rel=REL)


def test_disks_copy_one_after_another_then_catch_up_then_protected():
    c = 50e3  # bytes/s
    r = _vm({"site.hosts[0].vms[0].disks": ["2GB", {"size": "8GB", "used": "3GB"}],
             "site.hosts[0].vms[0].churn": {"rate": "50kB/s"}})
    b = 1e6
    tr = r.transfers
    init = tr[tr["kind"] == "initial"]
    assert init["bytes"].tolist() == [2e9, 3e9]
    assert init["finished_at"].tolist() == pytest.approx([2e3, 5e3], rel=REL)
    catchup = tr[tr["kind"] == "catchup"].iloc[0]
    assert catchup["queued_at"] == pytest.approx(5e3, rel=REL)
    assert catchup["bytes"] == pytest.approx(c * 5e3, rel=REL)  # writes made during the copy
    protected_at = 5e3 + c * 5e3 / b
    row = r.summary.set_index("vm").loc["vm1"]
    assert row["protected_at"] == pytest.approx(protected_at, rel=REL)
    states = r.states
    assert states["state"].tolist() == ["initial_replication", "protected"]
    assert states["end"].iloc[0] == pytest.approx(protected_at, rel=REL)


def test_setup_time_and_scheduled_start_delay_initial_replication():
    r = _vm({"replication.setup": "30m", "replication.initial": {"start": "2h"}})
    states = r.states
    assert states["state"].tolist() == ["not_protected", "initial_replication", "protected"]
    assert states["end"].iloc[0] == pytest.approx(2 * 3600 + 1800, rel=REL)


def test_batches_start_when_the_previous_batch_is_protected():
    data = base_scenario()
    vms = data["site"]["hosts"][0]["vms"]
    vms[0]["disks"] = ["1GB"]
    vms.append({"name": "vm2", "disks": ["2GB"], "churn": {"rate": "10kB/s"}})
    vms.append({"name": "vm3", "disks": ["1GB"], "churn": {"rate": "10kB/s"}})
    data["replication"]["initial"] = {"batches": [["vm2"], ["vm1"]]}  # vm3 in no batch: goes last
    r = drsim.simulate(make_scenario(base=data))
    s = r.summary.set_index("vm")
    start = r.states[r.states["state"] == "initial_replication"].set_index("vm")["start"]
    assert start["vm2"] == 0.0
    assert start["vm1"] == pytest.approx(s.loc["vm2", "protected_at"], rel=REL)
    assert start["vm3"] == pytest.approx(s.loc["vm1", "protected_at"], rel=REL)


def test_unsupported_host_and_unprotected_vm_never_replicate():
    data = base_scenario()
    data["site"]["hosts"].append({"name": "old", "os": "Windows Server 2008 R2",
                                  "vms": [{"name": "legacy", "disks": ["1GB"], "churn": {"rate": "1kB/s"}}]})
    data["site"]["hosts"][0]["vms"].append({"name": "skip", "disks": ["1GB"], "churn": {"rate": "1kB/s"},
                                            "protect": False})
    r = drsim.simulate(make_scenario(base=data))
    s = r.summary.set_index("vm")
    assert not s.loc["legacy", "protected"] and not s.loc["skip", "protected"]
    assert set(r.transfers["vm"]) == {"vm1"}
    st = r.states.set_index("vm")
    assert st.loc["legacy", "state"] == "unsupported" and st.loc["skip", "state"] == "not_protected"


def test_no_recovery_point_before_protection():
    r = _vm()
    protected_at = r.summary.set_index("vm").loc["vm1", "protected_at"]
    assert r.recovery_points["available_at"].min() == pytest.approx(protected_at, rel=REL)
    assert r.rpo["time"].min() == pytest.approx(protected_at, rel=REL)


# --- delta cycles and the RPO sawtooth --------------------------------------------------------------


@pytest.mark.parametrize("interval,rate", [("30s", "200kB/s"), ("5m", "100kB/s"), ("15m", "500kB/s")])
def test_rpo_sawtooth_of_a_lone_vm(interval, rate):
    """Constant churn c, interval T, link B: RPO drops to d = cT/B and peaks at T + d; mean T/2 + d."""
    r = _vm({"replication.interval": interval, "site.hosts[0].vms[0].churn": {"rate": rate},
             "site.hosts[0].vms[0].disks": [{"size": "10GB", "used": "100MB"}], "duration": "2d"})
    T = drsim.scenario.units.parse_duration(interval)
    c = drsim.scenario.units.parse_rate(rate)
    d = c * T / 1e6
    rpo = r.rpo
    drops = rpo.groupby(rpo["time"]).agg(hi=("rpo", "max"), lo=("rpo", "min"), n=("rpo", "size"))
    drops = drops[drops["n"] == 2].iloc[10:]  # steady state: skip the catch-up transient
    assert len(drops) > 50
    assert np.allclose(drops["lo"], d, rtol=1e-6)
    assert np.allclose(drops["hi"], T + d, rtol=1e-6)
    # time-weighted statistics over the steady part, exactly from the breakpoints
    codes_t = drops.index.to_numpy()
    seg_r0 = np.full(len(codes_t) - 1, d)
    seg_len = np.diff(codes_t)
    st = rpo_stats(seg_r0, seg_len, target=T / 2 + d)
    assert st.mean == pytest.approx(T / 2 + d, rel=1e-6)
    assert st.max == pytest.approx(T + d, rel=1e-6)
    assert st.p95 == pytest.approx(d + 0.95 * T, rel=1e-6)
    assert st.over_target == pytest.approx(0.5, rel=1e-6)
    # and the run's own summary agrees to within the one transient segment
    row = r.summary.set_index("vm").loc["vm1"]
    assert row["rpo_mean_s"] == pytest.approx(T / 2 + d, rel=0.02)
    assert row["cycles_missed"] == 0


def test_cycles_cut_exactly_the_writes_since_the_last_cut():
    r = _vm({"site.hosts[0].vms[0].churn": {"rate": "123kB/s"}})
    cy = r.cycles
    sent = cy[cy["outcome"] == "sent"]
    assert len(sent) > 200
    assert np.allclose(sent["bytes"].iloc[1:], 123e3 * 300, rtol=1e-9)
    # the first delta also carries the writes made while the catch-up was in flight
    first = sent["time"].iloc[0]
    catchup = r.transfers.query("kind == 'catchup'").iloc[0]
    assert sent["bytes"].iloc[0] == pytest.approx(123e3 * (first - catchup["queued_at"]), rel=1e-9)


def test_overload_misses_cycles_and_rpo_grows_without_bound():
    """Churn above bandwidth: cycles are missed and the lag grows like (1 - B/c) t (on a disk big enough that its
    log stays under 50 % of it: no resync)."""
    r = _vm({"duration": "3d", "site.hosts[0].vms[0].disks": [{"size": "1TB", "used": "1GB"}],
             "site.hosts[0].vms[0].churn": {"rate": "1.25MB/s"}})  # c/B = 1.25
    row = r.summary.set_index("vm").loc["vm1"]
    assert row["cycles_missed"] > row["cycles_sent"]
    rpo = r.rpo
    # at each drop the cloud holds the writes up to about t * B / c, so the lag right after a drop is
    # (1 - B/c) t; waiting for the next tick adds idle gaps on the link, so it is a little worse
    drops = rpo.groupby("time")["rpo"].agg(["min", "size"])
    after = drops[drops["size"] == 2]["min"]
    late = after[after.index > 86400]
    assert len(late) >= 3
    ratio = late.to_numpy() / late.index.to_numpy()
    assert ratio.min() >= (1 - 1 / 1.25) * 0.95
    assert ratio.max() <= (1 - 1 / 1.25) * 1.15
    peaks = rpo.groupby(rpo["time"] // 86400)["rpo"].max()
    assert peaks.is_monotonic_increasing and peaks.iloc[-1] > 2 * peaks.iloc[0]
    assert row["health"] in ("warning", "critical") and row["resyncs"] == 0


def test_missed_cycle_rolls_writes_into_the_next_cut():
    # c/B = 1.5: deltas overlap the next ticks, which are missed; later cuts carry all writes since the last
    r = _vm({"duration": "6h", "site.hosts[0].vms[0].disks": [{"size": "1TB", "used": "100MB"}],
             "site.hosts[0].vms[0].churn": {"rate": "7.5MB/s"}, "link.upload": "40Mbit/s"})
    cy = r.cycles
    assert (cy["outcome"] == "missed").sum() > 0
    total_cut = r.transfers.query("kind != 'initial'")["bytes"].sum()
    last_cut = r.transfers["queued_at"].max()
    # every byte written between the snapshot and the last cut was cut exactly once
    assert total_cut == pytest.approx(7.5e6 * last_cut, rel=1e-9)


def test_health_warning_when_cycles_are_missed_and_critical_when_log_reaches_half_the_disk():
    r = _vm({"duration": "2d", "site.hosts[0].vms[0].disks": [{"size": "4GB", "used": "1GB"}],
             "site.hosts[0].vms[0].churn": {"rate": "1.25MB/s"}})
    h = r.health
    assert h["health"].tolist()[:3] == ["normal", "warning", "critical"]  # missed cycles warn before the log fills
    crit = h[h["health"] == "critical"]
    assert len(crit)
    # critical once pending log >= 2 GB (half the disk) = 1600 s of writes past the newest point's capture: the
    # tick that sees it marks the VM for resynchronisation, which starts the critical interval
    first = crit["start"].iloc[0]
    pts = r.recovery_points
    newest = pts[pts["available_at"] <= first]["captured_at"].max()
    assert 1.25e6 * (first - newest) >= 2e9
    assert 1.25e6 * (first - 300 - newest) < 2e9  # the tick before did not see it
    st = r.states
    assert first in set(st[st["state"] == "resync"]["start"])


def test_health_window_counts_the_last_hours_ticks_by_number_not_by_rounded_time():
    # Missed ticks at 30,407.78, 30,707.78 and 31,007.78 s. Tick times are sums of 300 s steps, so at the tick at
    # 34,007.78 s, now - 3600 rounds below the first miss: a window judged by time kept it (3 of 12 missed, 25 %:
    # still warning). The window is the last 12 ticks: 2 of 12 missed (17 % < 20 %), so the warning ends there.
    r = _vm({"duration": 34920, "link.upload": "8000000bit/s",
             "site.hosts[0].vms[0].disks": [{"size": "24GiB", "used": "25007777777B"}],
             "site.hosts[0].vms[0].churn": {"rate": "200000B/s"}})
    c = r.cycles
    missed = c.loc[c["outcome"] == "missed", "time"].to_numpy()
    assert missed == pytest.approx([30407.777777, 30707.777777, 31007.777777], abs=1e-3)
    ticks = c["time"].to_numpy()
    end_tick = ticks[np.argmin(np.abs(ticks - 34007.777777))]
    assert end_tick - missed[0] == pytest.approx(3600, abs=1e-6)  # the first miss is exactly 12 ticks old
    warn = r.health[r.health["health"] == "warning"]
    assert len(warn) == 1
    assert warn["start"].iloc[0] == missed[0]
    assert warn["end"].iloc[0] == end_tick  # not one interval later (34,307.78 s)


def test_healthy_vm_stays_normal():
    r = _vm()
    assert r.health["health"].tolist() == ["normal"]


def test_app_consistent_points_at_their_frequency():
    r = _vm({"replication.app_consistent_every": "1h"})
    pts = r.recovery_points
    app = pts[pts["consistency"] == "app"]
    gaps = np.diff(app["captured_at"].to_numpy())
    assert np.allclose(gaps, 3600, rtol=1e-9)
    assert len(app) == pytest.approx(len(pts) / 12, abs=2)


def test_retention_prunes_old_points_but_keeps_the_newest():
    r = _vm({"replication.retention": "1h"})
    pts = r.recovery_points
    assert (pts["pruned_at"].dropna() >= pts["captured_at"][pts["pruned_at"].notna()] + 3600 - 1e-6).all()
    rep = r.replica("vm1")
    now = r.end
    avail = rep.available_points(now)
    assert all(c >= now - 3600 for c, _, _ in avail[:-1])
    assert len(avail) in (12, 13)
    # retention 0: only the newest point is kept
    r0 = _vm({"replication.retention": 0})
    assert len(r0.replica("vm1").available_points(r0.end)) == 1


def test_replayed_trace_gives_exactly_the_bytes_of_the_trace(tmp_path):
    rows = ["timestamp,bytes"] + [f"{i * 600},{(i % 7 + 1) * 1_000_000}" for i in range(144)]  # 1 day
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    total = sum((i % 7 + 1) * 1_000_000 for i in range(144))
    data = base_scenario()
    data["site"]["hosts"][0]["vms"][0]["churn"] = {"trace": str(tmp_path / "t.csv")}
    data["site"]["hosts"][0]["vms"][0]["disks"] = ["100MB"]
    r = drsim.simulate(make_scenario(base=data))
    row = r.summary.set_index("vm").loc["vm1"]
    assert row["bytes_written"] == pytest.approx(total, rel=1e-12)
    cut = r.transfers.query("kind != 'initial'")["bytes"].sum()
    rep = r.replica("vm1")
    pending = rep.curve(r.end) - rep.curve(r.transfers["queued_at"].max())
    assert cut + pending == pytest.approx(total, rel=1e-12)


def test_throttle_slows_office_hours_transfers():
    # 1 GB initial copy starting Monday 08:00 under a 4 Mbit/s office limit vs 8 Mbit/s off hours
    changes = {"start": "2026-03-02T08:00:00", "site.hosts[0].vms[0].disks": ["1GB"],
               "link.throttle": {"work_hours": "08:00-18:00", "work_limit": "4Mbit/s"}}
    r = _vm(changes)
    init = r.transfers.query("kind == 'initial'").iloc[0]
    assert init["finished_at"] == pytest.approx(1e9 / 0.5e6, rel=REL)
    assert "finished_at_ts" in r.transfers
    assert init["finished_at_ts"] == pd.Timestamp("2026-03-02 08:00") + pd.Timedelta(seconds=2000)
    cap = r.link.query("direction == 'upload'")
    assert set(cap["capacity"]) == {0.5e6, 1e6}


# --- statistics and determinism -----------------------------------------------------------------


def test_rpo_stats_match_brute_force_sampling():
    rng = np.random.default_rng(3)
    r0 = rng.uniform(0, 100, 50)
    length = rng.uniform(0, 300, 50)
    t = np.concatenate([np.linspace(a, a + L, 4001)[:-1] for a, L in zip(r0, length, strict=True)])
    w = np.concatenate([np.full(4000, L / 4000) for L in length])
    st = rpo_stats(r0, length, target=150.0)
    assert st.mean == pytest.approx(np.sum(t * w) / w.sum(), rel=1e-3)
    order = np.argsort(t)
    cdf = np.cumsum(w[order]) / w.sum()
    assert st.p95 == pytest.approx(t[order][np.searchsorted(cdf, 0.95)], rel=1e-2)
    assert st.over_target == pytest.approx(w[t > 150].sum() / w.sum(), abs=1e-3)
    assert st.max == pytest.approx((r0 + length).max())
    assert float(time_above(r0, length, 0.0)) == pytest.approx(length.sum())


def test_same_seed_gives_identical_tables_and_another_seed_differs():
    data = base_scenario()
    data["site"]["hosts"][0]["vms"][0]["churn"] = {"daily": "20%", "profile": "office", "variation": 0.5}
    data["replication"]["setup"] = {"dist": "exponential", "mean": "10m"}
    s = make_scenario(base=data)
    a, b = drsim.simulate(s, seed=5), drsim.simulate(s, seed=5)
    for name, df in a.tables().items():
        pd.testing.assert_frame_equal(df, b.tables()[name], check_exact=True, obj=name)
    c = drsim.simulate(s, seed=6)
    assert not a.cycles["bytes"].equals(c.cycles["bytes"])


def test_bytes_sent_never_exceed_image_plus_writes():
    r = drsim.simulate("scenarios/essentials-office.yaml")
    s = r.summary.set_index("vm").drop(index="(site)")
    image = {vm.name: vm.copy_bytes for _, vm in r.scenario.vms()}
    for vm, row in s.iterrows():
        assert row["bytes_sent"] <= image[vm] + row["bytes_written"] + 1e-6
    assert (r.rpo["rpo"] >= 0).all()
    assert math.isfinite(s["rpo_max_s"].max())


def test_recovery_points_keep_the_newest_and_prune_by_capture_time():
    from drsim.model.points import RecoveryPoints

    pts = RecoveryPoints(retention=3600.0)
    assert not pts and len(pts) == 0
    for k in range(1000):  # a point captured every 300 s, available 20 s later
        pts.add(300.0 * k, 300.0 * k + 20.0, 2 if k % 12 == 0 else 1)
        # pruned as at every delivery: captured at or after (newest available - 1 h), and the newest
        assert len(pts) == min(k + 1, 12)
    # captured at or after 299,720 s - 3,600 s: points 988..999 (12 of them), oldest first
    assert pts[0] == (300.0 * 988, 300.0 * 988 + 20.0, 1)
    assert pts[-1] == (300.0 * 999, 300.0 * 999 + 20.0, 1)
    assert [p[0] for p in pts] == [300.0 * k for k in range(988, 1000)]
    assert [p[2] for p in pts].count(2) == 1  # point 996 is app-consistent
    assert len(pts._captured) < 64 + 2 * 12  # compacted along the way
    pts.add(1e9, 1e9 + 20.0, 1)  # much later: everything older is gone, the newest stays
    assert list(pts) == [(1e9, 1e9 + 20.0, 1)]
    with pytest.raises(IndexError):
        pts[1]
    pts.clear()
    assert len(pts) == 0 and list(pts) == []


def test_ticker_ticks_each_member_every_interval_from_its_join_and_groups_coincident_ticks():
    import simpy

    from drsim.model.replication import Ticker

    env = simpy.Environment()
    ticker = Ticker(env, 300.0)
    seen: list[tuple[str, float]] = []

    class Member:
        def __init__(self, name):
            self.name = name

        def _tick(self, now):
            seen.append((self.name, now))

    def joins():
        for at, name in ((0.0, "a"), (0.0, "b"), (10.0, "c"), (300.0, "d"), (310.5, "e")):
            yield env.timeout(at - env.now)
            ticker.join(Member(name))

    env.process(joins())
    env.run(until=1300.0)
    by = {n: [t for m, t in seen if m == n] for n in "abcde"}
    assert by["a"] == by["b"] == [300.0, 600.0, 900.0, 1200.0]
    assert by["c"] == [310.0, 610.0, 910.0, 1210.0]
    assert by["d"] == [600.0, 900.0, 1200.0]  # joined at 300: in a's group from then on
    assert by["e"] == [610.5, 910.5, 1210.5]
    # members due together tick together, in the order they joined; one timer waits for the whole queue
    assert [m for m, t in seen if t == 600.0] == ["a", "b", "d"]
    assert len(env._queue) <= 2  # the ticker's timer (and the run's end)
    assert [t for _, t in seen] == sorted(t for _, t in seen)  # in time order
