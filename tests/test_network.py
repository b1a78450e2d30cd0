"""Clients reconnect through the cloud network: a site-to-site or point-to-site VPN, ready beforehand or set up
during the incident; point-to-site only while the site is down. And which operations went through the portal."""

from __future__ import annotations

import pytest

import drsim
from drsim.results.findings import findings
from tests.conftest import base_scenario, make_scenario

STEPS = {"shutdown": "2m", "prepare": "3m", "process_pending": "5m", "start": "8m", "reconnect": "2m",
         "onprem_start": "5m", "cleanup": "10m", "portal": "15m"}
NOW = {"name": "manual", "detect": 0, "respond": 0, "point": "latest-processed", "failback": "immediate"}
FAIL = 6 * 3600.0
RUNNING = FAIL + 11 * 60  # prepare 3m + start 8m


def run(failures, network=None, dashboard=False, policy=NOW):
    d = base_scenario()
    d["site"]["hosts"][0]["vms"][0]["disks"] = ["1GB"]
    d["site"]["hosts"][0]["vms"][0]["dashboard"] = dashboard
    d["failover"] = {**STEPS, "network": network or {}}
    d["failures"] = failures
    d["policy"] = policy
    return drsim.simulate(make_scenario(base=d))


SITE = [{"kind": "site", "at": FAIL, "repair": "1d"}]
HOST = [{"kind": "host", "target": "H1", "at": FAIL, "repair": "1d"}]


def _steps(r, step):
    ops = r.operations
    return ops[ops["step"] == step]


def test_site_down_clients_wait_for_a_point_to_site_vpn_set_up_during_the_incident():
    r = run(SITE, {"point_to_site": "set-up", "setup": "1h"})
    setup = _steps(r, "point-to-site setup").iloc[0]
    assert (setup["target"], setup["kind"]) == ("cloud network", "vpn")
    assert (setup["start"], setup["end"]) == (FAIL, FAIL + 3600)  # from the failover's start
    wait = _steps(r, "vpn: point-to-site").iloc[0]
    assert (wait["start"], wait["end"]) == (pytest.approx(RUNNING), pytest.approx(FAIL + 3600))
    inc = r.incidents.iloc[0]
    assert inc["service_restored_at"] == pytest.approx(FAIL + 3600 + 2 * 60)
    assert inc["sla_rto_s"] == pytest.approx(11 * 60)  # the SLA stops when the VM runs
    text = " ".join(findings(r))
    assert "Clients reached vm1 in the cloud through the point-to-site VPN, set up during the incident in 1 h" in text


def test_a_vpn_ready_beforehand_costs_nothing_and_a_site_to_site_one_is_useless_while_the_site_is_down():
    r = run(SITE, {"point_to_site": "ready"})
    assert r.incidents.iloc[0]["service_restored_at"] == pytest.approx(RUNNING + 2 * 60)
    wait = _steps(r, "vpn: point-to-site").iloc[0]
    assert wait["start"] == wait["end"] and _steps(r, "point-to-site setup").empty
    # site-to-site ready (the default) but the site is down: point-to-site must still be set up
    r = run(SITE, {"site_to_site": "ready", "point_to_site": "set-up", "setup": "30m"})
    assert r.incidents.iloc[0]["service_restored_at"] == pytest.approx(FAIL + 30 * 60 + 2 * 60)


@pytest.mark.parametrize("network,path,restored", [
    ({}, "site-to-site", RUNNING + 2 * 60),  # the default: a site-to-site VPN in place
    ({"site_to_site": "set-up", "setup": "45m"}, "site-to-site", FAIL + 45 * 60 + 2 * 60),
    ({"site_to_site": "none", "point_to_site": "ready"}, "point-to-site", RUNNING + 2 * 60),
    ({"site_to_site": "none", "point_to_site": "set-up", "setup": "20m"}, "point-to-site", FAIL + 20 * 60 + 2 * 60),
])
def test_with_the_site_up_clients_come_in_site_to_site_if_it_exists(network, path, restored):
    r = run(HOST, network)
    assert len(_steps(r, f"vpn: {path}")) == 1
    assert r.incidents.iloc[0]["service_restored_at"] == pytest.approx(restored)
    # the usual path, in place beforehand, is not worth a finding; a setup or point-to-site is
    assert any("VPN" in f for f in findings(r)) == (network != {})


def test_a_vpn_is_set_up_once_for_the_whole_run():
    r = run([{"kind": "host", "target": "H1", "at": FAIL, "repair": "2h"},
             {"kind": "host", "target": "H1", "at": "14h", "repair": "1h"}], {"site_to_site": "set-up", "setup": "45m"})
    assert len(_steps(r, "site-to-site setup")) == 1
    first, second = r.incidents.iloc[0], r.incidents.iloc[1]
    assert first["service_restored_at"] == pytest.approx(FAIL + 45 * 60 + 2 * 60)
    assert second["service_restored_at"] == pytest.approx(14 * 3600 + 11 * 60 + 2 * 60)  # no wait the second time


def test_findings_say_which_operations_went_through_the_portal():
    r = run(HOST, dashboard=True)  # the dashboard VM itself fails: its failover is triggered from the portal
    portal = _steps(r, "triggered via the portal")
    assert portal[["target", "kind"]].values.tolist() == [["vm1", "failover"]]
    assert "Through the cloud portal (the Essentials dashboard was down): the failover of vm1." in findings(r)
    r = run(HOST)  # no dashboard VM: it never goes down
    assert _steps(r, "triggered via the portal").empty
    assert not any(f.startswith("Through the cloud portal") for f in findings(r))
