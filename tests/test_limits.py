"""The service's limits: disk sizes by OS/data disk and generation, data disks, churn per VM and per disk on the
storage tier (judged on the p95 of the simulated churn), and the host's free space for the change logs."""

from __future__ import annotations

import numpy as np
import pytest

import drsim
from drsim.model.churn import WriteCurve
from drsim.results.findings import findings
from drsim.results.limits import churn_checks, rate_percentile
from drsim.scenario.checks import scenario_warnings
from drsim.scenario.site import churn_limit
from tests.conftest import make_scenario

GIB = 1024.0**3


def _vm_disks(disks, generation=1):
    return make_scenario({"site.hosts[0].vms[0].disks": disks, "site.hosts[0].vms[0].generation": generation})


@pytest.mark.parametrize("disks,generation,supported", [
    (["2047GiB"], 1, True), (["2048GiB"], 1, False),
    (["300GiB"], 2, True), (["301GiB"], 2, False),
    (["127GiB", "4095GiB"], 1, True), (["127GiB", "4096GiB"], 2, False),
    (["127GiB"] + ["1GiB"] * 16, 2, True), (["127GiB"] + ["1GiB"] * 17, 2, False),
])
def test_disk_limits_by_os_and_data_disk_and_generation(disks, generation, supported):
    vm = _vm_disks(disks, generation).site.hosts[0].vms[0]
    assert vm.supported is supported
    assert len(vm.unsupported_reasons()) == (0 if supported else 1)


def test_an_unsupported_vm_is_listed_with_its_reason_and_never_replicates():
    s = make_scenario({"duration": "2h", "site.hosts[0].vms[0].generation": 2,
                       "site.hosts[0].vms[0].disks": [{"size": "400GiB", "used": "1GB"}],
                       "site.hosts[0].vms[1]": {"name": "vm2", "disks": ["1GB"], "churn": {"rate": "1kB/s"}}})
    warnings = scenario_warnings(s)
    assert any(w.startswith("vm1 cannot be protected: its OS disk (the first) is 400 GiB; a generation 2 VM's OS "
                            "disk may be at most 300 GB") for w in warnings)
    r = drsim.simulate(s)
    st = r.states
    assert st[st["vm"] == "vm1"]["state"].tolist() == ["unsupported"]
    assert r.transfers[r.transfers["vm"] == "vm1"].empty
    summ = r.summary.set_index("vm")
    assert not summ.loc["vm1", "protected"] and summ.loc["vm2", "protected"]
    text = findings(r)
    assert any(f.startswith("vm1 cannot be protected: its OS disk") and "(support matrix)" in f for f in text)
    assert text[0].startswith("The only protectable VM is protected")


def test_churn_limit_by_storage_tier_and_write_size():
    assert churn_limit("standard", 8e3) == 2e6
    assert churn_limit("standard", 64e3) == 2e6
    assert churn_limit("premium", 8e3) == 5e6
    assert churn_limit("premium", 16e3) == 20e6


def test_rate_percentile_is_time_weighted_and_exact():
    # 10 s at 1, 85 s at 2, 4 s at 5, 1 s at 9 B/s: the p95 of time falls in the 2 B/s stretch
    times = np.array([0.0, 10.0, 95.0, 99.0, 100.0])
    cumulative = np.concatenate(([0.0], np.cumsum([10 * 1.0, 85 * 2.0, 4 * 5.0, 1 * 9.0])))
    curve = WriteCurve(times, cumulative)
    assert rate_percentile(curve, 100.0) == (2.0, 9.0)
    assert rate_percentile(curve, 100.0, 0.96) == (5.0, 9.0)
    assert rate_percentile(curve, 50.0) == (2.0, 2.0)  # only what the run covers counts


# a day shaped so that the mean (1.8 MB/s) is within the 2 MB/s limit and the p95 (2.4 MB/s) is not:
# 20 h at 1 x, 3 h at 2 x and 1 h (4 % of the time) at 10 x, over a mean multiplier of 1.5
PROFILE = [1.0] * 20 + [2.0, 2.0, 2.0, 10.0]
BURSTY = {"duration": "2d", "site.hosts[0].vms[0].churn": {"rate": "1.8MB/s", "profile": PROFILE},
          "site.hosts[0].vms[0].disks": [{"size": "2TB", "used": "1GB"}], "link.upload": "200Mbit/s"}


def test_a_vm_over_the_churn_limit_at_its_p95_is_warned_with_its_peak():
    r = drsim.simulate(make_scenario(BURSTY))
    (check,) = churn_checks(r)
    assert check.p95 == pytest.approx(1.8e6 * 2 / 1.5, rel=1e-9)
    assert check.peak == pytest.approx(1.8e6 * 10 / 1.5, rel=1e-9)
    assert check.over
    text = " ".join(findings(r))
    assert ("vm1 writes 2.40 MB/s at the 95th percentile of the run (peak 12.00 MB/s), over the 2 MB/s the service "
            "supports per VM on standard storage") in text
    assert not any("mean churn" in w for w in scenario_warnings(r.scenario))  # its mean is within the limit
    # premium storage supports 5 MB/s (8 KB writes): no warning
    r = drsim.simulate(make_scenario({**BURSTY, "replication.target_storage": "premium"}))
    assert not churn_checks(r)[0].over and "95th percentile" not in " ".join(findings(r))


def test_a_disk_carrying_most_of_the_churn_is_named():
    disks = [{"size": "1TB", "used": "500MB", "churn_share": "95%"},
             {"size": "1TB", "used": "500MB", "churn_share": "5%"}]
    r = drsim.simulate(make_scenario({**BURSTY, "site.hosts[0].vms[0].disks": disks}))
    (check,) = churn_checks(r)
    assert check.disks_over == ((1, pytest.approx(0.95 * 2.4e6, rel=1e-9)),)
    assert "each of these disks alone is over it: disk 1 (2.28 MB/s)" in " ".join(findings(r))


def test_host_free_space_warning_and_a_resync_when_the_logs_outgrow_it():
    changes = {"duration": "6h", "site.hosts[0].free_space": "1GB", "replication.resync.start": "immediate",
               "site.hosts[0].vms[0].disks": [{"size": "1TB", "used": "500MB"}],
               "site.hosts[0].vms[0].churn": {"rate": "1.25MB/s"}}
    s = make_scenario(changes)
    (w,) = [w for w in scenario_warnings(s) if w.startswith("host H1")]
    assert w.startswith("host H1: 954 MiB free for the change logs; initial replication of its VMs may need up to "
                        "931 GiB (100 % of their disks) and delta replication up to 466 GiB (50 %)")
    r = drsim.simulate(s)
    ops = r.operations
    start = ops[(ops["kind"] == "resync") & (ops["step"] == "wait")]["start"].iloc[0]
    pts = r.recovery_points
    newest = pts[pts["available_at"] <= start]["captured_at"].max()
    # marked at the first tick at which the VM's log (its only VM) is over the host's 1 GB
    assert 1.25e6 * (start - newest) > 1e9 >= 1.25e6 * (start - 300 - newest)
    # without the limit the 1 TB disk never needs a resync in 6 h
    r = drsim.simulate(make_scenario({**changes, "site.hosts[0].free_space": None}))
    assert r.summary.set_index("vm").loc["vm1", "resyncs"] == 0
