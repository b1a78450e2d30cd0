"""Failback as the failover/failback overview describes it: 'synchronise before failover' compares the disks by
checksums and copies the changed blocks while the cloud VM serves; 'synchronise during failover only' downloads
the whole disks after the shutdown.

One 1 GB VM writing 100 kB/s; an 80 Mbit/s download (10 MB/s, efficiency and compression 1); the host fails at
6 h for 4 h and the manual policy fails back at once after the repair.
"""

from __future__ import annotations

import math

import pytest

import drsim
from tests.conftest import base_scenario, make_scenario

STEPS = {"shutdown": "2m", "prepare": "3m", "process_pending": "5m", "start": "8m", "reconnect": "2m",
         "onprem_start": "5m", "cleanup": "10m", "portal": "15m"}
MANUAL = {"name": "manual", "detect": "10m", "respond": "15m", "failback": "immediate", "point": "latest-processed"}
C = 1e5  # bytes/s written
DOWNLOAD = 10e6  # bytes/s
RATE = 3e9 / 60  # default checksum rate


def run(sync: str, disks_lost: bool = False, **failover):
    d = base_scenario()
    d["site"]["hosts"][0]["vms"][0]["disks"] = ["1GB"]
    d["failover"] = {**STEPS, "failback_sync": sync, **failover}
    d["failures"] = [{"kind": "host", "target": "H1", "at": "6h", "repair": "4h", "disks_lost": disks_lost}]
    d["policy"] = MANUAL
    return drsim.simulate(make_scenario(base=d))


def _failback(r):
    return r.operations[r.operations["kind"] == "failback"].set_index("step")


def test_during_failover_downloads_the_whole_disks_after_the_shutdown():
    r = run("during-failover")
    ops = _failback(r)
    assert "checksum" not in ops.index
    image = ops.loc["download_image"]
    assert image["bytes"] == 1e9
    assert image["end"] - image["start"] == pytest.approx(1e9 / DOWNLOAD, rel=1e-9)  # disk size / download rate
    assert image["start"] == pytest.approx(ops.loc["shutdown", "end"])
    inc = r.incidents.iloc[0]
    # down from the end of the shutdown: the whole download, the on-prem start and the reconnection
    cutover = 1e9 / DOWNLOAD + 5 * 60 + 2 * 60
    assert inc["downtime_s"] == pytest.approx(inc["rto_s"] + cutover, rel=1e-9)
    st = r.states
    assert st[(st["start"] == image["start"])]["state"].tolist() == ["failing_back"]


def test_before_failover_checksums_the_disks_then_copies_the_changed_blocks_while_serving():
    r = run("before-shutdown")
    ops = _failback(r)
    inc = r.incidents.iloc[0]
    check = ops.loc["checksum"]
    assert check["start"] == pytest.approx(inc["failback_started_at"])
    assert check["end"] - check["start"] == pytest.approx(1e9 / RATE, rel=1e-12)  # the used data at 3 GB/min
    written = C * (inc["failback_started_at"] - inc["service_restored_at"])  # in the cloud until the snapshot
    changed = 1e9 * -math.expm1(-written / 1e9)  # random writes on the disk's used data
    copy = ops.loc["download_changes"]
    assert copy["bytes"] == pytest.approx(changed, rel=1e-12)
    assert copy["start"] == pytest.approx(check["end"]) and copy["end"] - copy["start"] == pytest.approx(
        changed / DOWNLOAD, rel=1e-9)
    # the cloud VM kept serving and writing until the end of its shutdown: the final delta carries that
    final = ops.loc["final_delta"]
    assert final["bytes"] == pytest.approx(C * (ops.loc["shutdown", "end"] - inc["failback_started_at"]), rel=1e-9)
    st = r.states
    sync = st[st["state"] == "failback_sync"].iloc[0]
    assert sync["start"] == pytest.approx(check["start"]) and sync["end"] == pytest.approx(ops.loc["shutdown", "end"])
    cutover = final["bytes"] / DOWNLOAD + 5 * 60 + 2 * 60
    assert inc["downtime_s"] == pytest.approx(inc["rto_s"] + cutover, rel=1e-9)
    # slower checksums make the failback longer, not the downtime
    slow = run("before-shutdown", checksum_rate="1GB/min")
    s_ops = _failback(slow)
    assert s_ops.loc["checksum", "end"] - s_ops.loc["checksum", "start"] == pytest.approx(60.0, rel=1e-12)
    assert slow.incidents.iloc[0]["downtime_s"] == pytest.approx(
        inc["downtime_s"] + C * 40 / DOWNLOAD, rel=1e-9)  # 40 s more of writes in the final delta


def test_lost_disks_come_down_whole_in_either_mode_without_checksums():
    for sync in ("before-shutdown", "during-failover"):
        ops = _failback(run(sync, disks_lost=True))
        assert "checksum" not in ops.index and "download_changes" not in ops.index
        assert ops.loc["download_image", "bytes"] == 1e9
