"""Recovery points as the service offers them: 'latest processed' lags 'latest' by the processing backlog; an
app-consistent frequency at or above the retention is refused; 'latest-app' without an app-consistent point says
so; an unplanned failover may shut the VM down and sync it first when its host still answers."""

from __future__ import annotations

import math

import pytest

import drsim
from drsim.results.findings import incident_lines
from drsim.scenario.problems import ScenarioError
from tests.conftest import base_scenario, make_scenario

STEPS = {"shutdown": "2m", "prepare": "3m", "process_pending": "5m", "start": "8m", "reconnect": "2m",
         "onprem_start": "5m", "cleanup": "10m", "portal": "15m"}


def run(failures, policy, **changes):
    d = base_scenario()
    d["site"]["hosts"][0]["vms"][0]["disks"] = ["1GB"]
    d["failover"] = dict(STEPS)
    d["failures"] = failures
    d["policy"] = policy
    return drsim.simulate(make_scenario(changes, base=d))


NOW = {"name": "manual", "detect": 0, "respond": 0, "failback": "immediate"}


@pytest.mark.parametrize("lag", [300.0, 0.0, 1200.0])
def test_latest_processed_offers_only_points_older_than_the_processing_backlog(lag):
    fail_at = 6 * 3600 + 60.0  # a minute after a point arrived: not yet processed with the default 5 min
    r = run([{"kind": "host", "target": "H1", "at": fail_at, "repair": "4h"}], {**NOW, "point": "latest-processed"},
            **{"replication.processing_lag": lag})
    inc = r.incidents.iloc[0]
    pts = r.recovery_points
    processed = pts[pts["available_at"] <= fail_at - lag]
    expected = processed["captured_at"].max()
    assert inc["recovery_point_captured_at"] == expected
    assert inc["data_loss_s"] == pytest.approx(fail_at - expected, rel=1e-12)
    newest = pts[pts["available_at"] <= fail_at]["captured_at"].max()
    assert (expected < newest) == (lag > 0)  # with any lag, the point that just arrived is not offered


def test_latest_processes_the_pending_data_and_takes_the_newest_point():
    fail_at = 6 * 3600 + 60.0
    r = run([{"kind": "host", "target": "H1", "at": fail_at, "repair": "4h"}], {**NOW, "point": "latest"})
    pts = r.recovery_points
    assert r.incidents.iloc[0]["recovery_point_captured_at"] == pts[pts["available_at"] <= fail_at]["captured_at"].max()


@pytest.mark.parametrize("every,kept,ok", [("1h", "2h", True), ("2h", "2h", False), ("4h", "2h", False),
                                           ("1h", 0, False), (0, 0, True)])
def test_an_app_consistent_frequency_at_or_above_the_retention_is_refused(every, kept, ok):
    changes = {"replication.app_consistent_every": every, "replication.retention": kept}
    if ok:
        make_scenario(changes)
        return
    with pytest.raises(ScenarioError, match="must be less than the retention"):
        make_scenario(changes)


def test_latest_app_without_an_app_consistent_point_says_so_in_the_incident():
    r = run([{"kind": "host", "target": "H1", "at": "6h", "repair": "4h"}], {**NOW, "point": "latest-app"})
    inc = r.incidents.iloc[0]
    assert inc["outcome"] == "failed over (no app-consistent point within retention: a crash-consistent one was used)"
    assert "no app-consistent point within retention" in incident_lines(r)[0]
    # with app-consistent points every hour the newest of them is used, and nothing is said
    r = run([{"kind": "host", "target": "H1", "at": "6h", "repair": "4h"}], {**NOW, "point": "latest-app"},
            **{"replication.app_consistent_every": "1h"})
    inc = r.incidents.iloc[0]
    pts = r.recovery_points
    app = pts[(pts["consistency"] == "app") & (pts["available_at"] <= 6 * 3600 - 300)]
    assert inc["recovery_point_captured_at"] == app["captured_at"].max()
    assert inc["outcome"] == "failed over"


def test_shutdown_first_syncs_a_crashed_vm_whose_host_still_answers():
    fail_at = 6 * 3600 + 100.0
    vm_failure = [{"kind": "vm", "target": "vm1", "at": fail_at, "repair": "1d"}]
    r = run(vm_failure, {**NOW, "point": "latest-processed"}, **{"failover.shutdown_first": True})
    inc = r.incidents.iloc[0]
    assert inc["data_loss_s"] == 0.0
    ops = r.operations[r.operations["kind"] == "failover"]
    sync = ops[ops["step"] == "final_sync"].iloc[0]
    assert sync["start"] == pytest.approx(fail_at)
    # the log cut last before the failure plus what was written until it: every write is sent
    cuts = r.transfers[(r.transfers["kind"] == "delta") & (r.transfers["queued_at"] < fail_at)]
    assert sync["bytes"] == pytest.approx(1e5 * (fail_at - cuts["queued_at"].max()), rel=1e-9)
    assert ops["step"].tolist()[:3] == ["final_sync", "process_pending", "prepare"]
    assert inc["recovery_point_captured_at"] == pytest.approx(sync["start"])
    # without the option: the newest processed point, some data lost
    r = run(vm_failure, {**NOW, "point": "latest-processed"})
    assert r.incidents.iloc[0]["data_loss_s"] > 0
    # a host failure: the source does not answer, nothing to sync
    r = run([{"kind": "host", "target": "H1", "at": fail_at, "repair": "1d"}], {**NOW, "point": "latest-processed"},
            **{"failover.shutdown_first": True})
    assert r.incidents.iloc[0]["data_loss_s"] > 0 and "final_sync" not in set(r.operations["step"])
    assert not math.isnan(r.incidents.iloc[0]["recovery_point_captured_at"])
