"""Failures, failover and failback: the contract and closed forms."""

from __future__ import annotations

import copy
import math
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import drsim
from drsim.model.policies import Policy, register
from drsim.model.recovery import _next_retry
from drsim.results.findings import incident_lines
from tests.conftest import base_scenario, make_scenario

ZERO_STEPS = {k: 0 for k in ("shutdown", "prepare", "process_pending", "start", "reconnect", "onprem_start",
                             "cleanup", "portal")}
STEPS = {"shutdown": "2m", "prepare": "3m", "process_pending": "5m", "start": "8m", "reconnect": "2m",
         "onprem_start": "5m", "cleanup": "10m", "portal": "15m"}


def scenario(**sections):
    d = base_scenario()
    d["site"]["hosts"][0]["vms"][0]["disks"] = ["1GB"]
    d["failover"] = dict(STEPS)
    d.update(sections)
    return make_scenario(base=d)


def run(**sections):
    return drsim.simulate(scenario(**sections))


MANUAL = {"name": "manual", "detect": "10m", "respond": "15m", "failback": "immediate"}


# --- unplanned failover ------------------------------------------------------------------------------


def test_unplanned_failover_data_loss_is_failure_time_minus_capture_of_the_point_used():
    r = run(failures=[{"kind": "host", "target": "H1", "at": "6h", "repair": "4h"}],
            policy={**MANUAL, "point": "latest-processed"})
    inc = r.incidents.iloc[0]
    pts = r.recovery_points
    newest = pts[pts["available_at"] <= inc["failed_at"]]["captured_at"].max()
    assert inc["recovery_point_captured_at"] == newest
    assert inc["data_loss_s"] == pytest.approx(inc["failed_at"] - newest, abs=1e-9)
    assert inc["detected_at"] == pytest.approx(6 * 3600 + 600)
    assert inc["decision_at"] == pytest.approx(6 * 3600 + 600 + 900)
    # steps: prepare 3m + start 8m + reconnect 2m (latest-processed: no pending data step)
    assert inc["service_restored_at"] == pytest.approx(inc["decision_at"] + 13 * 60)
    assert inc["rto_s"] == pytest.approx(600 + 900 + 13 * 60)
    assert inc["sla_rto_s"] == pytest.approx(11 * 60)  # failover start to running, no reconnection
    assert inc["outcome"] == "failed over"
    assert inc["failback_started_at"] == pytest.approx(10 * 3600)  # right after the repair


def test_latest_point_processes_pending_data_first():
    # a guest crash leaves the host's agent running: the delta in flight still arrives
    base = {"failures": [{"kind": "vm", "target": "vm1", "at": "21610s", "repair": "2h"}],
            "link": {"upload": "8Mbit/s", "download": "80Mbit/s", "efficiency": 1.0, "compression": 1.0}}
    latest = run(**base, policy={**MANUAL, "point": "latest", "detect": 0, "respond": 0})
    processed = run(**base, policy={**MANUAL, "point": "latest-processed", "detect": 0, "respond": 0})
    a, b = latest.incidents.iloc[0], processed.incidents.iloc[0]
    assert a["data_loss_s"] <= b["data_loss_s"]
    assert a["rto_s"] >= b["rto_s"] + 5 * 60 - 1e-6  # the process_pending step


def test_failover_is_impossible_before_protection():
    # 100 GB at 1 MB/s: initial replication lasts 27 h; the host fails at 2 h
    r = run(failures=[{"kind": "host", "target": "H1", "at": "2h", "repair": "3h"}], policy=MANUAL,
            site={"hosts": [{"name": "H1", "vms": [{"name": "vm1", "disks": ["100GB"],
                                                    "churn": {"rate": "10kB/s"}}]}]})
    inc = r.incidents.iloc[0]
    assert math.isnan(inc["failover_started_at"])
    assert inc["outcome"] == "waited for repair"
    assert not (r.operations["kind"] == "failover").any()
    assert inc["service_restored_at"] == pytest.approx(5 * 3600 + 5 * 60)  # repaired, then on-prem start


def test_wait_for_repair_never_fails_over():
    r = run(failures=[{"kind": "host", "target": "H1", "at": "6h", "repair": "4h"}],
            policy={"name": "wait-for-repair", "detect": "5m"})
    inc = r.incidents.iloc[0]
    assert inc["outcome"] == "waited for repair"
    assert inc["data_loss_s"] == 0.0
    assert inc["downtime_s"] == pytest.approx(4 * 3600 + 5 * 60)
    assert inc["rto_s"] == pytest.approx(4 * 3600 + 5 * 60)


def test_dashboard_down_means_the_slower_portal_path():
    d = base_scenario()
    d["site"]["hosts"][0]["vms"][0].update({"disks": ["1GB"], "dashboard": True})
    d["failover"] = dict(STEPS)
    d["failures"] = [{"kind": "host", "target": "H1", "at": "6h", "repair": "10h"}]
    d["policy"] = {**MANUAL, "point": "latest-processed"}
    inc = drsim.simulate(make_scenario(base=d)).incidents.iloc[0]
    assert inc["decision_at"] - inc["detected_at"] == pytest.approx(15 * 60 + 15 * 60)  # respond + portal


def test_threshold_policy_waits_for_short_outages_and_fails_over_long_ones():
    pol = {"name": "threshold", "threshold": "1h", "detect": "5m", "respond": "5m"}
    short = run(failures=[{"kind": "host", "target": "H1", "at": "6h", "repair": "30m"}], policy=pol)
    long = run(failures=[{"kind": "host", "target": "H1", "at": "6h", "repair": "5h"}], policy=pol)
    assert short.incidents.iloc[0]["outcome"] == "waited for repair"
    assert long.incidents.iloc[0]["outcome"] == "failed over"


def test_automatic_policy_detects_after_n_missed_probes():
    r = run(failures=[{"kind": "host", "target": "H1", "at": "21610s", "repair": "4h"}],
            policy={"name": "automatic", "probe_every": "1m", "misses": 3})
    inc = r.incidents.iloc[0]
    # probes at whole minutes: missed at 21660, 21720, 21780
    assert inc["detected_at"] == pytest.approx(21780)
    assert inc["failover_started_at"] == pytest.approx(21780)


# --- planned failover and drills -----------------------------------------------------------------------


def test_planned_failover_loses_exactly_zero_data():
    r = run(maintenance=[{"host": "H1", "at": "6h", "window": "3h"}])
    inc = r.incidents.iloc[0]
    assert inc["kind"] == "maintenance" and inc["outcome"] == "planned failover"
    assert inc["data_loss_s"] == 0.0
    ops = r.operations[r.operations["kind"] == "planned_failover"].set_index("step")
    # the final sync captured the VM as it was shut down
    assert inc["recovery_point_captured_at"] == pytest.approx(ops.loc["shutdown", "end"])
    # downtime of the switch = shutdown + final sync + start + reconnect
    sync = ops.loc["final_sync", "end"] - ops.loc["final_sync", "start"]
    assert sync > 0
    assert inc["service_restored_at"] - inc["failed_at"] == pytest.approx((2 + 8 + 2) * 60 + sync)
    # after the window, failback brings it home and replication resumes
    assert inc["failback_started_at"] >= inc["service_restored_at"] + 3 * 3600 - 1e-6
    st = r.states
    assert st["state"].iloc[-1] == "protected"


def test_test_failover_leaves_production_untouched():
    drills = [{"vms": "vm1", "at": "6h", "duration": "2h"}, {"vms": "all", "every": "8h"}]
    d = base_scenario()
    d["site"]["hosts"][0]["vms"][0].update({"disks": ["1GB"], "churn": {"daily": "10%", "variation": 0.4}})
    d["failover"] = {"start": {"dist": "lognormal", "median": "8m", "p95": "20m"}}
    d["failures"] = [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "12h"},
                      "repair": {"dist": "exponential", "mean": "1h"}}]
    without = drsim.simulate(make_scenario(base=d))
    d2 = copy.deepcopy(d)
    d2["drills"] = drills
    with_drills = drsim.simulate(make_scenario(base=d2))
    for name in ("states", "transfers", "cycles", "recovery_points", "rpo", "link", "incidents", "health"):
        pd.testing.assert_frame_equal(without.tables()[name], with_drills.tables()[name], obj=name)
    ops = with_drills.operations
    tests = ops[ops["kind"] == "test_failover"]
    assert set(tests["step"]) >= {"prepare", "start", "running", "test", "cleanup", "cloud_time"}
    s = with_drills.summary.set_index("vm")
    assert s.loc["vm1", "drills"] >= 1
    running = tests[tests["step"] == "running"]
    assert s.loc["vm1", "drill_rto_mean_s"] == pytest.approx((running["end"] - running["start"]).mean())


# --- failback --------------------------------------------------------------------------------------


def test_failback_of_a_lost_disk_moves_the_whole_image_at_download_speed():
    r = run(failures=[{"kind": "host", "target": "H1", "at": "6h", "repair": "4h", "disks_lost": True}],
            policy=MANUAL, failover={**STEPS, "failback_sync": "during-failover"})
    ops = r.operations[r.operations["kind"] == "failback"].set_index("step")
    image = 1e9
    copy_row = ops.loc["download_image"]
    assert copy_row["bytes"] == image
    # 80 Mbit/s = 10 MB/s download, efficiency 1, compression 1
    assert copy_row["end"] - copy_row["start"] == pytest.approx(image / 10e6, rel=1e-9)


def test_failback_before_shutdown_keeps_serving_during_the_bulk_copy():
    r = run(failures=[{"kind": "host", "target": "H1", "at": "6h", "repair": "4h"}], policy=MANUAL)
    st = r.states.set_index("state")
    assert "failback_sync" in st.index  # service up while the changes copy back
    inc = r.incidents.iloc[0]
    ops = r.operations[r.operations["kind"] == "failback"].set_index("step")
    cutover = ops.loc["reconnect", "end"] - ops.loc["shutdown", "start"]
    assert inc["downtime_s"] == pytest.approx(inc["rto_s"] + cutover - (ops.loc["shutdown", "end"]
                                                                         - ops.loc["shutdown", "start"]))
    s = r.summary.set_index("vm").loc["vm1"]
    assert s["downtime_s"] == pytest.approx(inc["downtime_s"])
    assert s["availability"] == pytest.approx(1 - inc["downtime_s"] / 86400)


def test_failure_during_failback_is_handled():
    # the host fails again while the changes are being copied back: failback aborts, VM stays in the cloud
    r = run(failures=[{"kind": "host", "target": "H1", "at": "6h", "repair": "4h"},
                      {"kind": "host", "target": "H1", "at": "36001s", "repair": "2h"}],
            policy=MANUAL, link={"upload": "8Mbit/s", "download": "10Mbit/s", "efficiency": 1.0})
    ops = r.operations
    aborted = ops[(ops["kind"] == "failback") & (ops["step"] == "aborted")]
    assert aborted["start"].tolist() == [36001]
    inc = r.incidents.iloc[0]
    assert inc["failback_started_at"] == pytest.approx(36001 + 2 * 3600)  # tried again after the repair
    assert inc["failback_done_at"] > inc["failback_started_at"]
    assert len(r.incidents) == 1  # the VM was in the cloud: no second outage
    assert r.states["state"].iloc[-1] == "protected"


# --- site disaster, link outage, corruption, plans -----------------------------------------------------


def test_site_disaster_takes_everything_down_and_plans_start_group_by_group():
    d = base_scenario()
    vms = d["site"]["hosts"][0]["vms"]
    vms[0]["disks"] = ["1GB"]
    vms.append({"name": "db", "disks": ["1GB"], "churn": {"rate": "10kB/s"}})
    vms.append({"name": "app", "disks": ["1GB"], "churn": {"rate": "10kB/s"}})
    d["failover"] = dict(STEPS)
    d["plans"] = [{"name": "office", "groups": [{"vms": ["db"], "after": {"script": "5m"}},
                                                {"vms": ["app", "vm1"], "before": {"manual": "10m"}}]}]
    d["policy"] = {"name": "recovery-plan", "plan": "office", "detect": "5m", "respond": "5m"}
    d["failures"] = [{"kind": "site", "at": "6h", "repair": "3d", "disks_lost": True}]
    r = drsim.simulate(make_scenario(base=d))
    inc = r.incidents.set_index("vm")
    assert set(inc.index) == {"vm1", "db", "app"}
    plan_start = 6 * 3600 + 10 * 60  # detect 5m + respond 5m
    assert (inc["failover_started_at"] == plan_start).all()  # the SLA clock starts with the plan
    # one process_pending (5m) and one prepare (3m) for the whole plan, then group 1 starts (8m)
    db_running = plan_start + (5 + 3 + 8) * 60
    assert inc.loc["db", "service_restored_at"] == pytest.approx(db_running + 2 * 60)  # + reconnect
    assert inc.loc["db", "sla_rto_s"] == pytest.approx((5 + 3 + 8) * 60)
    for vm in ("app", "vm1"):
        # group 2 starts once db runs, after its script (5m) and group 2's manual action (10m)
        running = db_running + (5 + 10 + 8) * 60
        assert inc.loc[vm, "service_restored_at"] == pytest.approx(running + 2 * 60)
        assert inc.loc[vm, "sla_rto_s"] == pytest.approx(running - plan_start - 15 * 60)  # without the actions
    assert (inc["outcome"] == "failed over, not failed back by the end").all()


def test_link_outage_stalls_replication_and_retries_with_back_off():
    assert [_next_retry(0.0, t) for t in (0, 60, 61, 400, 900, 1500, 1501, 3300)] == [
        60, 60, 180, 420, 900, 1500, 3300, 3300]
    r = run(failures=[{"kind": "link", "at": "6h", "repair": "5m"}])
    tr = r.transfers
    during = tr[(tr["finished_at"] > 6 * 3600) & (tr["queued_at"] < 6 * 3600 + 5 * 60)]
    assert len(during) >= 1
    for _, t in during.iterrows():  # nothing arrives before the first retry after the link is back
        first_failure = max(6 * 3600, t["queued_at"])
        assert t["finished_at"] >= _next_retry(first_failure, 6 * 3600 + 5 * 60) - 1e-6
    rpo = r.rpo
    assert rpo[(rpo["time"] > 6 * 3600) & (rpo["time"] < 6 * 3600 + 15 * 60)]["rpo"].max() > 7 * 60


def test_link_outage_transfer_resumes_where_it_stopped():
    # a 1 GB initial copy at 1 MB/s from t=0; link down 100-400 s; retries at 160, 280, 520 s (1, 2, 4 min
    # after the failure): it resumes at 520 s with 900 MB to go, done at 1420 s
    r = run(failures=[{"kind": "link", "at": "100s", "repair": "300s"}])
    init = r.transfers[r.transfers["kind"] == "initial"].iloc[0]
    assert init["finished_at"] == pytest.approx(1420, rel=1e-9)


def test_a_retry_that_falls_in_a_second_outage_waits_for_the_link():
    # as above, and the link fails again at 450-600 s, so the 520 s retry finds it down: the agent keeps
    # retrying on the first failure's schedule (160, 280, 520, 1000 s...): it resumes at 1000 s, done at 1900 s
    r = run(failures=[{"kind": "link", "at": "100s", "repair": "300s"},
                      {"kind": "link", "at": "450s", "repair": "150s"}])
    init = r.transfers[r.transfers["kind"] == "initial"].iloc[0]
    assert init["finished_at"] == pytest.approx(1900, rel=1e-9)
    assert r.summary.iloc[0]["protected"]


def test_a_vm_rebuilt_before_its_batch_starts_is_copied_once():
    # b waits for batch 2; its host loses its disks in batch 1: the rebuild leaves b to its batch
    d = base_scenario()
    d["site"]["hosts"] = [
        {"name": h, "os": "Windows Server 2019", "vms": [{"name": v, "disks": ["10GB"], "churn": {"rate": "1kB/s"}}]}
        for h, v in (("H1", "a"), ("H2", "b"))
    ]
    d["replication"]["initial"] = {"batches": [["a"], ["b"]]}
    d["failures"] = [{"kind": "host", "target": "H2", "at": "1h", "repair": "1h", "disks_lost": True}]
    d["policy"] = {"name": "manual"}
    r = drsim.simulate(make_scenario(base=d))
    tr = r.transfers
    initial = tr[(tr["vm"] == "b") & (tr["kind"] == "initial")]
    assert len(initial) == 1  # one copy of b's image, started when batch 1 (a: 10 GB at 1 MB/s) is protected
    assert initial.iloc[0]["queued_at"] >= 10_000
    assert r.summary.set_index("vm").loc["b", "initial_bytes"] == pytest.approx(10e9)


def test_corruption_recovers_from_a_point_older_than_the_corruption():
    r = run(failures=[{"kind": "corruption", "target": "vm1", "at": "10h", "detected_after": "3h"}],
            policy=MANUAL, replication={"interval": "5m", "retention": "24h", "setup": 0})
    inc = r.incidents.iloc[0]
    assert inc["outcome"] == "failed over"
    assert inc["recovery_point_captured_at"] < 10 * 3600
    assert inc["recovery_point_captured_at"] >= 10 * 3600 - 300
    assert inc["data_loss_s"] == pytest.approx(inc["detected_at"] - inc["recovery_point_captured_at"])
    fb = r.operations[(r.operations["kind"] == "failback")]
    assert "download_image" in set(fb["step"])  # the on-prem disks hold corrupted data


def test_corruption_with_too_short_retention_is_unrecoverable_and_the_vm_is_down_to_the_end():
    # no clean point: the data is lost. The VM is down from the detection (13 h) to the end of the day, whatever
    # happens later (a host failure and its repair do not bring it back), and its data loss counts from t = 0
    r = run(failures=[{"kind": "corruption", "target": "vm1", "at": "10h", "detected_after": "3h"},
                      {"kind": "host", "target": "H1", "at": "15h", "repair": "1h"}],
            policy=MANUAL, replication={"interval": "5m", "retention": "2h", "setup": 0})
    inc = r.incidents.iloc[0]
    assert inc["outcome"] == "unrecoverable: no clean recovery point within retention"
    assert len(r.incidents) == 1  # the host failure finds the VM already down
    assert inc["data_loss_s"] == 13 * 3600
    assert math.isnan(inc["rto_s"])
    assert inc["downtime_s"] == pytest.approx(11 * 3600, rel=1e-12)
    st = r.states[r.states["vm"] == "vm1"].iloc[-1]
    assert (st["state"], st["start"], st["end"]) == ("down", 13 * 3600, 86400)
    row = r.summary.set_index("vm").loc["vm1"]
    assert row["availability"] == pytest.approx(13 / 24, rel=1e-12)
    assert row["downtime_s"] == pytest.approx(11 * 3600, rel=1e-12)
    assert row["data_loss_max_s"] == 13 * 3600
    assert not bool(row["rpo_met"]) and not bool(row["rto_met"])
    assert r.rpo["time"].max() <= 13 * 3600  # no RPO while it is down
    assert "down to the end of the run (11 h)" in incident_lines(r)[0]


def test_corruption_of_a_vm_not_yet_protected_loses_its_data():
    # noticed at 10 min, during the initial copy (1 GB at 1 MB/s: protected after about 17 min)
    r = run(failures=[{"kind": "corruption", "target": "vm1", "at": "5m", "detected_after": "5m"}],
            policy=MANUAL)
    inc = r.incidents.iloc[0]
    assert inc["outcome"] == "unrecoverable: not protected"
    assert inc["data_loss_s"] == 10 * 60
    row = r.summary.set_index("vm").loc["vm1"]
    assert row["availability"] == pytest.approx(10 / (24 * 60), rel=1e-12)
    assert not row["protected"]  # its replication was dropped with its data


# --- closed forms --------------------------------------------------------------------------------------


def test_wait_for_repair_availability_matches_mtbf_over_mtbf_plus_mttr():
    """Alternating renewal: availability = MTBF / (MTBF + MTTR), checked within a 99.9 % interval."""
    d = base_scenario()
    d["duration"] = "100y"
    d["site"]["hosts"][0]["vms"] = [
        {"name": f"v{i}", "disks": ["1GB"], "churn": {"rate": "1kB/s"}, "protect": False} for i in range(20)]
    d["failures"] = [{"kind": "vm", "target": "all", "every": {"dist": "exponential", "mean": "30d"},
                      "repair": {"dist": "exponential", "mean": "2d"}}]
    d["policy"] = {"name": "wait-for-repair"}
    r = drsim.simulate(make_scenario(base=d))
    avail = r.summary.set_index("vm").drop(index="(site)")["availability"].to_numpy()
    expected = 30 / 32
    half = 3.29 * avail.std(ddof=1) / math.sqrt(len(avail))
    assert abs(avail.mean() - expected) < half
    assert half < 0.005  # the test can fail: the interval is tight


@register
class _FailoverAfterTau(Policy):
    """Test policy: fail over exactly tau after the failure (if the VM is still down)."""

    name = "test-after-tau"
    TAU = 7200.0

    def on_failure(self, ctx, incident):
        ctx.after(self.TAU, lambda: ctx.fail_over(incident, "latest-processed"))

    def on_repair(self, ctx, incident):
        ctx.fail_back(incident)


def test_standby_unavailability_matches_closed_form():
    """A standby that takes tau to take over, exponential repair of mean r: U = r(1 - e^(-tau/r)) / (MTBF + r)."""
    mtbf, r_mean, tau = 2 * 86400.0, 4 * 3600.0, _FailoverAfterTau.TAU
    d = base_scenario()
    d["duration"] = "4y"
    d["replication"] = {"interval": "15m", "setup": 0}
    d["site"]["hosts"][0]["vms"][0].update({"disks": ["1MB"], "churn": {"rate": "1B/s"}})
    d["link"] = {"upload": "100Mbit/s", "download": "1Gbit/s", "efficiency": 1.0}
    d["failover"] = dict(ZERO_STEPS)
    d["failures"] = [{"kind": "vm", "target": "vm1", "every": {"dist": "exponential", "mean": "2d"},
                      "repair": {"dist": "exponential", "mean": "4h"}}]
    d["policy"] = {"name": "test-after-tau"}
    res = drsim.simulate(make_scenario(base=d))
    inc = res.incidents
    down = inc["downtime_s"].to_numpy()
    # per failure the VM is down min(tau, repair): check it exactly where the repair time is known
    assert (down <= tau + 1e-3).all()
    u = res.summary.set_index("vm").loc["vm1", "downtime_s"] / res.end
    expected = r_mean * (1 - math.exp(-tau / r_mean)) / (mtbf + r_mean)
    n = len(inc)
    se = expected * math.sqrt((down.std(ddof=1) / down.mean()) ** 2 / n + 1 / n)
    assert abs(u - expected) < 4 * se
    assert n > 500


# --- policies through entry points --------------------------------------------------------------------


def test_third_party_policy_loads_through_the_entry_point(tmp_path, monkeypatch):
    pkg = tmp_path / "site"
    (pkg / "acme_policy").mkdir(parents=True)
    (pkg / "acme_policy" / "__init__.py").write_text(textwrap.dedent('''
        from drsim.model.policies import Policy
        from pydantic import BaseModel

        class FailOverAtOnce(Policy):
            """Fail over as soon as a failure happens."""
            name = "acme-at-once"

            class Params(BaseModel):
                point: str = "latest-processed"

            def on_failure(self, ctx, incident):
                ctx.detected(incident)
                ctx.fail_over(incident, self.params.point)
    '''))
    dist = pkg / "acme_policy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-policy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[drsim.policies]\nacme-at-once = acme_policy:FailOverAtOnce\n")
    monkeypatch.syspath_prepend(str(pkg))
    r = run(failures=[{"kind": "host", "target": "H1", "at": "6h", "repair": "4h"}], policy={"name": "acme-at-once"})
    inc = r.incidents.iloc[0]
    assert inc["failover_started_at"] == pytest.approx(6 * 3600)
    assert "acme_policy" in sys.modules


def test_unknown_policy_and_bad_parameters_are_located_errors():
    with pytest.raises(drsim.ScenarioError, match=r"policy\.name: unknown policy 'manul'"):
        scenario(policy={"name": "manul"})
    with pytest.raises(drsim.ScenarioError, match=r"policy\.detct: unknown parameter for policy 'manual'"):
        scenario(policy={"name": "manual", "detct": "5m"})
    with pytest.raises(drsim.ScenarioError, match=r"failures\[0\]\.target: unknown host 'H9'"):
        scenario(failures=[{"kind": "host", "target": "H9", "at": "1h"}])


def test_common_random_numbers_two_policies_see_the_same_failures():
    fail = [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "8h"},
             "repair": {"dist": "lognormal", "median": "1h", "p95": "6h"}}]
    a = run(failures=fail, policy={"name": "wait-for-repair"}, duration="3d")
    b = run(failures=fail, policy={"name": "manual"}, duration="3d")
    assert len(a.incidents) > 3
    np.testing.assert_array_equal(a.incidents["failed_at"], b.incidents["failed_at"])


def test_the_readme_example_policy_works():
    """The policy in the README's 'Writing a failover policy' section, run as written."""
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    code = re.search(r"# acme_policies/__init__.py\n(.*?)```", readme.read_text(), re.S).group(1)
    import types

    module = types.ModuleType("readme_acme_policies")
    sys.modules[module.__name__] = module
    exec(compile(code, "README.md", "exec"), module.__dict__)
    register(module.BusinessHours)
    d = base_scenario()
    d["start"] = "2026-03-02T00:00:00"  # Monday
    d["site"]["hosts"][0]["vms"][0]["disks"] = ["1GB"]
    d["failover"] = dict(STEPS)
    d["failures"] = [{"kind": "host", "target": "H1", "at": "2026-03-02T10:00:00", "repair": "20h"},
                     {"kind": "host", "target": "H1", "at": "2026-03-03T20:00:00", "repair": "1h"}]
    d["duration"] = "3d"
    d["policy"] = {"name": "business-hours", "night_wait": "2h"}
    inc = drsim.simulate(make_scenario(base=d)).incidents
    day, night = inc.iloc[0], inc.iloc[1]
    assert day["failover_started_at"] == pytest.approx(10 * 3600)  # business hours: at once
    assert night["outcome"] == "waited for repair"  # at night it waits 2 h; the repair took 1 h
    d["policy"] = {"name": "business-hours", "night_wiat": "2h"}  # its model allows extras: a typo is still refused
    with pytest.raises(drsim.ScenarioError, match=r"policy\.night_wiat: unknown parameter for policy 'business-hours' "
                                                  r"\(its parameters: night_wait\)"):
        make_scenario(base=d)


# --- overlapping failures (regressions) ----------------------------------------------------------------


def _assert_consistent(r):
    """States tile the run, no VM is left failing over, every incident has a final outcome."""
    for _vm, st in r.states.groupby("vm", observed=True):
        assert st["start"].iloc[0] == 0.0 and st["end"].iloc[-1] == pytest.approx(r.end)
        assert np.allclose(st["start"].to_numpy()[1:], st["end"].to_numpy()[:-1])
        assert st["state"].iloc[-1] != "failing_over"
    assert (r.incidents["outcome"] != "open").all()
    down = r.summary.set_index("vm").drop(index="(site)")["downtime_s"]
    inc = r.incidents[r.incidents["kind"] != "plan"].groupby("vm")["downtime_s"].sum()
    for vm, d in inc.items():
        assert d == pytest.approx(down[vm], abs=1.0), vm


def test_second_failure_during_an_aborted_failback():
    r = run(failures=[{"kind": "host", "target": "H1", "at": "6h", "repair": "1h"},
                      {"kind": "host", "target": "H1", "at": "25450s", "repair": "1h"},
                      {"kind": "vm", "target": "vm1", "at": "25450s", "repair": "5m"}],
            failover={**STEPS, "failback_sync": "during-failover"}, policy={**MANUAL, "detect": 0, "respond": 0})
    _assert_consistent(r)
    assert r.states["state"].iloc[-1] == "protected"


def test_corruption_found_while_the_vm_is_in_the_cloud_for_a_host_failure():
    r = run(failures=[{"kind": "corruption", "target": "vm1", "at": "5h", "detected_after": "3h"},
                      {"kind": "host", "target": "H1", "at": "6h", "repair": "4h"}], policy=MANUAL)
    _assert_consistent(r)
    host = r.incidents[r.incidents["kind"] == "host"].iloc[0]
    corrupt = r.incidents[r.incidents["kind"] == "corruption"].iloc[0]
    # the host failover (6h25m) used the newest point, already corrupted; found at 8h, the cloud VM restarts
    # from a clean point captured before 5h
    assert host["recovery_point_captured_at"] >= 5 * 3600
    assert corrupt["outcome"] == "failed over again, to a clean point"
    assert 5 * 3600 - 300 <= corrupt["recovery_point_captured_at"] < 5 * 3600
    assert corrupt["data_loss_s"] == pytest.approx(8 * 3600 - corrupt["recovery_point_captured_at"])
    assert math.isfinite(host["failback_done_at"])
    fb = r.operations[r.operations["kind"] == "failback"]
    assert "download_image" in set(fb["step"])
    assert r.states["state"].iloc[-1] == "protected"


def test_host_failure_while_a_latest_failover_waits_for_its_delta():
    r = run(link={"upload": "1Mbit/s", "download": "80Mbit/s", "efficiency": 1.0},
            failures=[{"kind": "vm", "target": "vm1", "at": "21610s", "repair": "2h"},
                      {"kind": "host", "target": "H1", "at": "21700s", "repair": "1h"}],
            policy={**MANUAL, "detect": 0, "respond": 0, "point": "latest"})
    _assert_consistent(r)
    assert r.incidents.iloc[0]["outcome"] == "failed over"


def test_host_failure_during_the_final_sync_of_a_planned_failover():
    r = run(link={"upload": "1Mbit/s", "download": "80Mbit/s", "efficiency": 1.0},
            maintenance=[{"host": "H1", "at": "36010s"}],
            failures=[{"kind": "host", "target": "H1", "at": "36060s", "repair": "1h"}])
    _assert_consistent(r)
    inc = r.incidents.iloc[0]
    assert inc["outcome"].startswith("failed over (final sync interrupted)")
    assert inc["data_loss_s"] > 0


def test_vm_down_when_maintenance_starts_comes_back_after_the_window():
    r = run(failures=[{"kind": "vm", "target": "vm1", "at": "10h", "repair": "1h"}],
            maintenance=[{"host": "H1", "at": "10h10m", "window": "4h"}], policy={"name": "wait-for-repair"})
    _assert_consistent(r)
    assert r.states["state"].iloc[-1] == "protected"


def test_repair_during_an_on_prem_restart_does_not_restart_twice():
    r = run(failures=[{"kind": "host", "target": "H1", "at": "6h", "repair": "1h"},
                      {"kind": "vm", "target": "vm1", "at": "7h1m", "repair": "1m"}],
            policy={"name": "wait-for-repair"})
    _assert_consistent(r)
    restarts = r.operations[(r.operations["kind"] == "restart")]
    assert len(restarts) == 1


def test_a_transfer_dropped_by_failover_is_not_revived_by_a_link_retry():
    r = run(failures=[{"kind": "link", "at": "6h", "repair": "1h"},
                      {"kind": "vm", "target": "vm1", "at": "7h2m", "repair": "8h"}],
            policy={**MANUAL, "detect": 0, "respond": 0, "point": "latest-processed"})
    _assert_consistent(r)
    tr = r.transfers
    assert not tr.duplicated(["queued_at", "kind", "direction"]).any()
    inc = r.incidents.iloc[0]
    in_cloud = (tr["finished_at"] > inc["service_restored_at"]) & (tr["finished_at"] < inc["failback_started_at"])
    assert not (in_cloud & (tr["direction"] == "upload")).any()
