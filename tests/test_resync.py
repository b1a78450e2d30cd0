"""Resynchronisation: marked when a disk's change log reaches 50 % of the disk, then checksums and changed blocks.

The tiny scenario of conftest: one VM, constant churn c, an 8 Mbit/s link with efficiency 1 (B = 1 MB/s of
payload), no setup time, so every instant below follows from c, B and the disk sizes.
"""

from __future__ import annotations

import math

import pytest

import drsim
from drsim.model.resync import changed_blocks, resync_threshold
from drsim.results.findings import findings
from drsim.scenario.units import format_duration
from drsim.views.run_tables import replication_table
from drsim.views.style import STATE_COLORS
from tests.conftest import make_scenario

C = 1.25e6  # bytes/s written
B = 1e6  # bytes/s of payload on the link
RATE = 3e9 / 60  # default checksum rate: 3 GB/min


def _run(changes):
    return drsim.simulate(make_scenario(changes))


def _ops(r, step=None):
    ops = r.operations
    ops = ops[ops["kind"] == "resync"]
    return ops if step is None else ops[ops["step"] == step]


def _newest_capture(r, at):
    pts = r.recovery_points
    return pts[pts["available_at"] <= at]["captured_at"].max()


def test_changed_blocks_of_a_known_overwrite_pattern():
    used = 4e9
    # random writes: written = used ln 2 leaves half the blocks untouched
    assert changed_blocks(used * math.log(2), used) == pytest.approx(used / 2, rel=1e-12)
    assert changed_blocks(10 * used, used) == pytest.approx(used * (1 - math.exp(-10)), rel=1e-12)
    assert changed_blocks(1e6, used) == pytest.approx(1e6 * (1 - 1e6 / (2 * used)), rel=1e-6)  # rewrites rare
    # no block written twice: what was written, never more than the used data
    assert changed_blocks(1e9, used, "none") == 1e9
    assert changed_blocks(9e9, used, "none") == used
    assert changed_blocks(0.0, used) == 0.0 and changed_blocks(1e9, 0.0) == 0.0


def test_threshold_is_the_first_disk_to_reach_half_its_size():
    s = make_scenario({"site.hosts[0].vms[0].disks": [{"size": "2GB", "churn_share": "90%"},
                                                      {"size": "100GB", "churn_share": "10%"}]})
    vm = s.site.hosts[0].vms[0]
    assert resync_threshold(vm) == pytest.approx(min(0.5 * 2e9 / 0.9, 0.5 * 100e9 / 0.1), rel=1e-12)
    # by default writes spread like the disks' sizes: the VM's rule is half its total size
    s = make_scenario({"site.hosts[0].vms[0].disks": ["2GB", "6GB"]})
    assert resync_threshold(s.site.hosts[0].vms[0]) == pytest.approx(4e9, rel=1e-12)


def test_churn_shares_must_cover_every_disk_and_add_up():
    with pytest.raises(Exception, match="every disk"):
        make_scenario({"site.hosts[0].vms[0].disks": [{"size": "2GB", "churn_share": "90%"}, "1GB"]})
    with pytest.raises(Exception, match="add up to 100%"):
        make_scenario({"site.hosts[0].vms[0].disks": [{"size": "2GB", "churn_share": "90%"},
                                                      {"size": "1GB", "churn_share": "20%"}]})


PROTECTED = {"duration": "6h", "site.hosts[0].vms[0].disks": [{"size": "4GB", "used": "500MB"}],
             "site.hosts[0].vms[0].churn": {"rate": "1.25MB/s"}, "replication.resync": {"start": "immediate"}}


@pytest.mark.parametrize("overwrite", ["random", "none"])
def test_a_resync_sends_exactly_the_changed_blocks_after_checksums(overwrite):
    r = _run({**PROTECTED, "replication.resync.overwrite": overwrite})
    marked = _ops(r, "wait").iloc[0]
    start = marked["end"]
    assert start == marked["start"]  # immediate: starts when marked
    # marked at the first tick whose pending log reached half the 4 GB disk
    newest = _newest_capture(r, start)
    assert C * (start - newest) >= 2e9 > C * (start - 300 - newest)
    written = C * (start - newest)  # pending writes when the resync starts: the blocks the replica lacks
    expected = changed_blocks(written, 5e8, overwrite)
    assert expected == (pytest.approx(5e8) if overwrite == "none" else pytest.approx(5e8 * -math.expm1(-written / 5e8)))
    check = _ops(r, "checksum disk 1").iloc[0]
    assert check["start"] == start and check["end"] - check["start"] == pytest.approx(5e8 / RATE, rel=1e-12)
    send = _ops(r, "send disk 1").iloc[0]
    assert send["bytes"] == pytest.approx(expected, rel=1e-12)
    assert send["end"] - send["start"] == pytest.approx(expected / B, rel=1e-9)  # alone on the link
    tr = r.transfers
    rs = tr[tr["kind"] == "resync"].iloc[0]
    assert rs["bytes"] == pytest.approx(expected, rel=1e-12) and rs["finished_at"] == pytest.approx(send["end"])
    # the replica then holds the VM as it was when the resync started
    pts = r.recovery_points
    assert start in set(pts["captured_at"]) and pts.set_index("captured_at").loc[start, "available_at"] == \
        pytest.approx(send["end"])
    # no delta was cut while the resync ran; the delta in flight at the mark was abandoned
    deltas = tr[tr["kind"] == "delta"]
    assert not ((deltas["queued_at"] > start) & (deltas["queued_at"] < send["end"])).any()
    assert deltas[deltas["queued_at"] < start]["finished_at"].isna().sum() <= 1
    # state and health: resync (critical) from the mark to the end of the send, then protected again
    st = r.states.set_index("start")
    assert st.loc[start, "state"] == "resync" and st.loc[start, "end"] == pytest.approx(send["end"])
    h = r.health.set_index("start")
    assert h.loc[start, "health"] == "critical" and h.loc[start, "end"] >= send["end"] - 1e-6


def test_off_hours_resync_waits_for_the_evening_and_the_rpo_keeps_growing():
    r = _run({**PROTECTED, "start": "2026-03-02T08:00:00", "duration": "1d", "replication.resync.start": "off-hours"})
    wait = _ops(r, "wait").iloc[0]
    assert wait["start"] < 10 * 3600 and wait["end"] == pytest.approx(10 * 3600)  # Monday 18:00
    s = r.summary.set_index("vm").loc["vm1"]
    send = _ops(r, "send disk 1").iloc[0]
    assert s["resyncs"] >= 1
    assert s["resync_s"] >= send["end"] - wait["start"] - 1e-6
    # the RPO curve goes on through the resync: at its end the newest point is from before the mark
    rpo = r.rpo
    at_end = rpo[rpo["time"] == send["end"]]["rpo"]
    assert at_end.max() == pytest.approx(send["end"] - _newest_capture(r, wait["start"]), rel=1e-12)
    assert at_end.min() == pytest.approx(send["end"] - wait["end"], rel=1e-12)  # then the resync's point
    text = " ".join(findings(r))
    assert f"vm1 needed {int(s['resyncs'])} resync" in text and "it was unprotected for" in text


def test_each_disk_has_its_own_log_and_its_own_changed_blocks():
    c = 1.1e6
    r = _run({"duration": "6h", "replication.resync": {"start": "immediate"},
              "site.hosts[0].vms[0].churn": {"rate": "1.1MB/s"},
              "site.hosts[0].vms[0].disks": [{"size": "2GB", "used": "200MB", "churn_share": "90%"},
                                             {"size": "100GB", "used": "200MB", "churn_share": "10%"}]})
    start = _ops(r, "wait").iloc[0]["end"]
    newest = _newest_capture(r, start)
    limit = 0.5 * 2e9 / 0.9  # the first disk's log reaches half of 2 GB first
    assert c * (start - newest) >= limit > c * (start - 300 - newest)
    written = c * (start - newest)
    sends = _ops(r).query("step.str.startswith('send')", engine="python")
    assert list(sends["step"][:2]) == ["send disk 1", "send disk 2"]
    assert sends["bytes"].iloc[0] == pytest.approx(changed_blocks(0.9 * written, 2e8), rel=1e-12)
    assert sends["bytes"].iloc[1] == pytest.approx(changed_blocks(0.1 * written, 2e8), rel=1e-12)
    checks = _ops(r).query("step.str.startswith('checksum')", engine="python")
    assert (checks["end"] - checks["start"]).iloc[:2].tolist() == pytest.approx([2e8 / RATE, 2e8 / RATE])


def test_a_log_outgrowing_its_disk_during_initial_replication_means_a_resync_instead_of_the_catch_up():
    # 2 GB copied at 1 MB/s (2000 s) while writing 1 MB/s: the log reaches half the disk (1 GB) at 1000 s
    r = _run({"duration": "3h", "site.hosts[0].vms[0].disks": ["2GB"], "site.hosts[0].vms[0].churn": {"rate": "1MB/s"},
              "replication.resync": {"start": "immediate"}})
    wait = _ops(r, "wait").iloc[0]
    assert wait["start"] == pytest.approx(1000.0, rel=1e-12)  # the exact crossing, not a tick
    assert wait["end"] == pytest.approx(2000.0, rel=1e-12)  # the copy ends, then the resync starts
    written = 2e9  # everything written since the snapshot at t = 0
    changed = 2e9 * -math.expm1(-written / 2e9)
    send = _ops(r, "send disk 1").iloc[0]
    assert send["bytes"] == pytest.approx(changed, rel=1e-12)
    done = 2000.0 + 2e9 / RATE + changed / B
    assert send["end"] == pytest.approx(done, rel=1e-9)
    s = r.summary.set_index("vm").loc["vm1"]
    assert s["protected_at"] == pytest.approx(done, rel=1e-9)
    assert "catchup" not in set(r.transfers["kind"])
    st = r.states
    first = st[st["vm"] == "vm1"].iloc[:3]
    assert first["state"].tolist() == ["initial_replication", "resync", "protected"]
    assert first["start"].iloc[1] == pytest.approx(2000.0) and first["end"].iloc[1] == pytest.approx(done)


def test_a_vm_waiting_for_its_resync_can_still_fail_over_to_its_newest_point():
    fail_at = 5 * 3600.0  # Monday 13:00, while the resync waits for the evening
    r = _run({**PROTECTED, "start": "2026-03-02T08:00:00", "duration": "1d", "replication.resync.start": "off-hours",
              "failures": [{"kind": "host", "target": "H1", "at": fail_at, "repair": "2d"}],
              "policy": {"name": "manual", "detect": 0, "respond": 0, "point": "latest-processed"}})
    wait_rows = _ops(r, "wait")
    assert len(wait_rows) == 0  # it never started
    inc = r.incidents.iloc[0]
    assert inc["outcome"].startswith("failed over")
    newest = _newest_capture(r, fail_at)
    assert inc["data_loss_s"] == pytest.approx(fail_at - newest, rel=1e-12)
    st = r.states
    assert st[(st["start"] < fail_at) & (st["end"] >= fail_at)]["state"].iloc[0] == "resync"


def test_a_resync_is_drawn_in_the_figures_palette():
    assert "resync" in STATE_COLORS and STATE_COLORS["resync"] not in [v for k, v in STATE_COLORS.items()
                                                                     if k != "resync"]


def test_the_report_and_the_summary_say_how_many_resyncs_and_for_how_long():
    # as above: one resync in place of the catch-up, from the copy's end (2000 s) to protection
    r = _run({"duration": "3h", "site.hosts[0].vms[0].disks": ["2GB"], "site.hosts[0].vms[0].churn": {"rate": "1MB/s"},
              "replication.resync": {"start": "immediate"}})
    s = r.summary.set_index("vm").loc["vm1"]
    st = r.states
    spent = float((st["end"] - st["start"])[st["state"] == "resync"].sum())
    assert s["resyncs"] >= 1 and s["resync_s"] == pytest.approx(spent, rel=1e-12) and spent > 0
    table = replication_table(r)
    column = table.header.index("resyncs (time in resync)")
    assert table.rows[0][column] == f"{int(s['resyncs'])} ({format_duration(spent)})"
    assert any(f.startswith(f"vm1 needed {int(s['resyncs'])} resync") for f in findings(r))
    # a run without a resync has no such column
    quiet = _run({"duration": "3h"})
    assert "resyncs (time in resync)" not in replication_table(quiet).header
