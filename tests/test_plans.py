"""Recovery plans as the service runs them (recovery plan overview): shut down the plan's VMs still running, one
parallel failover (disk preparation) for all of them, then the groups in order; the SLA clock starts with the plan.
"""

from __future__ import annotations

import pytest

import drsim
from tests.conftest import base_scenario, make_scenario

STEPS = {"shutdown": "2m", "prepare": "3m", "process_pending": "5m", "start": "8m", "reconnect": "2m",
         "onprem_start": "5m", "cleanup": "10m", "portal": "15m"}
PLAN_START = 6 * 3600 + 10 * 60  # the failure at 6 h, detect 5m, respond 5m


def _site(failures, groups, point="latest"):
    d = base_scenario()
    vms = d["site"]["hosts"][0]["vms"]
    vms[0]["disks"] = ["1GB"]
    vms.append({"name": "db", "disks": ["1GB"], "churn": {"rate": "10kB/s"}})
    vms.append({"name": "app", "disks": ["1GB"], "churn": {"rate": "10kB/s"}})
    d["failover"] = dict(STEPS)
    d["plans"] = [{"name": "office", "groups": groups}]
    d["policy"] = {"name": "recovery-plan", "plan": "office", "detect": "5m", "respond": "5m", "point": point}
    d["failures"] = failures
    return drsim.simulate(make_scenario(base=d))


THREE_GROUPS = [{"vms": ["db"]}, {"vms": ["app"], "before": {"manual": "10m"}},
                {"vms": ["vm1"], "after": {"script": "4m"}}]


def test_a_plan_with_three_groups_prepares_once_then_starts_the_groups_in_order():
    r = _site([{"kind": "site", "at": "6h", "repair": "3d", "disks_lost": True}], THREE_GROUPS)
    ops = r.operations
    plan = ops[ops["target"] == "office"]
    assert plan["step"].tolist() == ["process_pending", "prepare", "group 2 before: manual action",
                                     "group 3 after: script"]
    assert (plan["start"].iloc[0], plan["end"].iloc[1]) == (PLAN_START, PLAN_START + 8 * 60)
    assert not ((ops["kind"] == "failover") & (ops["step"].isin(["prepare", "process_pending"]))).any()
    starts = ops[ops["step"] == "start"].set_index("target")
    prepared = PLAN_START + 8 * 60
    assert starts.loc["db", "start"] == pytest.approx(prepared)
    assert starts.loc["app", "start"] == pytest.approx(prepared + 8 * 60 + 10 * 60)  # db runs, then the manual action
    assert starts.loc["vm1", "start"] == pytest.approx(starts.loc["app", "end"])  # app runs (not yet reconnected)
    inc = r.incidents.set_index("vm")
    assert (inc["failover_started_at"] == PLAN_START).all()
    assert inc.loc["db", "sla_rto_s"] == pytest.approx(16 * 60)  # process_pending + prepare + start
    assert inc.loc["app", "sla_rto_s"] == pytest.approx(24 * 60)  # + db's start; the manual action left out
    assert inc.loc["vm1", "sla_rto_s"] == pytest.approx(32 * 60)  # + app's start
    assert inc.loc["vm1", "rto_s"] == pytest.approx(10 * 60 + 42 * 60 + 2 * 60)  # the manual action counts here


def test_a_plan_first_shuts_down_its_running_vms_and_moves_them_without_data_loss():
    # only vm1 crashes: db and app still run, so the plan shuts them down and syncs them before preparing
    r = _site([{"kind": "vm", "target": "vm1", "at": "6h", "repair": "1d"}], THREE_GROUPS, point="latest-processed")
    ops = r.operations
    shut = ops[(ops["step"] == "shutdown") & (ops["kind"] == "planned_failover")].set_index("target")
    assert set(shut.index) == {"db", "app"} and (shut["start"] == PLAN_START).all()  # in parallel
    sync = ops[ops["step"] == "final_sync"].set_index("target")
    prepare = ops[(ops["target"] == "office") & (ops["step"] == "prepare")]
    assert len(prepare) == 1 and prepare["start"].iloc[0] == pytest.approx(sync["end"].max())
    assert "process_pending" not in set(ops["step"])  # latest-processed: no pending data to process
    inc = r.incidents.set_index("vm")
    assert inc.loc["db", "kind"] == "plan" and inc.loc["db", "data_loss_s"] == 0.0
    assert inc.loc["app", "data_loss_s"] == 0.0
    assert inc.loc["vm1", "data_loss_s"] > 0
    assert (inc["failover_started_at"] == PLAN_START).all()
    # vm1's SLA clock ran through the others' shutdown and sync: it started with the plan
    starts = ops[ops["step"] == "start"].set_index("target")
    assert inc.loc["vm1", "sla_rto_s"] == pytest.approx(starts.loc["vm1", "end"] - PLAN_START - 10 * 60)


def test_a_plan_triggered_again_after_it_moved_every_vm_does_nothing():
    """The bundled site disaster: the site fails and each VM's operator notices it after a random delay, then
    responds 20 min later (and more through the portal). The first response starts the plan, which fails over every
    VM of it; ramh157v01's response comes after the plan has ended (1196573 s), with the VM already in the cloud.
    That second trigger used to run the plan again with nothing to fail over: its script and manual action were
    recorded a second time. A plan with nothing to move now does nothing."""
    r = drsim.simulate("scenarios/site-disaster.yaml")
    ops = r.operations
    plan = ops[ops["target"] == "office"]
    assert plan["step"].tolist() == ["triggered via the portal", "process_pending", "prepare", "group 1 after: script",
                                     "group 2 before: manual action"]
    inc = r.incidents.set_index("vm")
    # ramh157v01 was noticed after the plan had claimed it: its response (20 min, plus the portal's extra time)
    # triggers the plan a second time
    assert inc.loc["ramh157v01", "detected_at"] > inc.loc["ramh157v01", "failover_started_at"]
    assert (inc["failover_started_at"] == plan["start"].iloc[0]).all()
