"""The run summary a planner reads first: steady-state RPO apart from the start-up, the worst health reached,
VMs ranked by what matters, findings grouped on big sites, and a terminal summary that fits a screen."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import drsim
from drsim.experiments.runner import run_experiment
from drsim.experiments.text import aggregate_text
from drsim.results.findings import findings, summary_text
from drsim.results.ranking import rank_vms
from drsim.views.run_summary import lead_sentences
from tests.conftest import base_scenario, make_scenario


def _site(n: int = 40, hosts: int = 4, upload: str | None = None, **extra) -> drsim.Results:
    """``n`` VMs of 20 GB (1 GB used) writing 3-7 % a day in a morning burst: a link of 150 kbit/s per VM keeps up
    on average but not in the mornings."""
    d = base_scenario()
    d["duration"] = "2d"
    d["site"]["hosts"] = [{"name": f"H{h}", "vms": [
        {"name": f"vm{h}-{i:02d}", "disks": [{"size": "20GB", "used": "1GB"}],
         "churn": {"daily": f"{3 + i % 5}%", "profile": "morning-batch"}} for i in range(n // hosts)]}
        for h in range(hosts)]
    d["link"]["upload"] = upload or f"{150 * n}kbit/s"
    d.update(extra)
    return drsim.simulate(make_scenario(base=d))


def test_steady_state_rpo_leaves_out_the_start_up_and_reports_it_apart():
    # 10 GB at 1 MB/s with 100 kB/s of churn: the copy ends at 10,000 s, the catch-up (1 GB) at 11,000 s; its point
    # (captured at 10,000 s) stays the newest until the first delta, cut at the tick at 11,200 s (1.2e8 B, 120 s),
    # arrives at 11,320 s: the start-up's worst RPO is 1,320 s. Then the sawtooth of a lone VM: from d = 30 s to
    # T + d = 330 s, mean T/2 + d = 180 s, p95 d + 0.95 T = 315 s.
    row = drsim.simulate(make_scenario()).summary.iloc[0]
    assert row["protected_at"] == pytest.approx(11000, rel=1e-12)
    assert row["rpo_max_s"] == pytest.approx(1320, rel=1e-9)  # the whole protected time: the start-up dominates
    assert row["rpo_startup_max_s"] == pytest.approx(1320, rel=1e-9)
    assert row["rpo_steady_max_s"] == pytest.approx(330, rel=1e-9)
    assert row["rpo_steady_mean_s"] == pytest.approx(180, abs=0.1)  # the first steady piece (120 to 330 s) aside
    assert row["rpo_steady_p95_s"] == pytest.approx(315, abs=0.1)
    assert row["rpo_steady_over_target"] == 0.0


def test_the_summary_shows_the_steady_state_rpo_and_the_start_up_apart():
    text = summary_text(drsim.simulate(make_scenario()))
    header, _, vm1 = text.splitlines()[3:6]
    assert "start-up" in header and "worst health" in header
    assert "5 min 30 s" in vm1 and "22 min" in vm1  # max 330 s; start-up 1,320 s
    assert "steady state" in text


def test_worst_health_and_its_duration_not_the_end_of_run_health():
    # the health-window case of test_replication: warning from 30,407.78 s to 34,007.78 s, normal at the end
    r = drsim.simulate(make_scenario({"duration": 34920, "link.upload": "8000000bit/s",
                                      "site.hosts[0].vms[0].disks": [{"size": "24GiB", "used": "25007777777B"}],
                                      "site.hosts[0].vms[0].churn": {"rate": "200000B/s"}}))
    row = r.summary.set_index("vm").loc["vm1"]
    assert row["health"] == "normal"
    assert row["worst_health"] == "warning"
    assert row["worst_health_s"] == pytest.approx(3600, abs=1e-6)
    site = r.summary.set_index("vm").loc["(site)"]
    assert (site["worst_health"], site["worst_health_s"]) == ("warning", row["worst_health_s"])
    assert "warning 1 h" in summary_text(r).splitlines()[5]


def test_the_site_worst_health_time_is_when_at_least_one_vm_was_in_it():
    r = _site(n=8, hosts=2)
    s = r.summary.set_index("vm")
    h = r.health[r.health["health"] == "warning"]
    assert s.loc["(site)", "worst_health"] == "warning"
    assert (s.drop(index="(site)")["worst_health"] == "warning").sum() >= 2
    # overlapping warnings count once: at least the longest VM's, at most the sum
    assert s.loc["(site)", "worst_health_s"] >= s.drop(index="(site)")["worst_health_s"].max()
    assert s.loc["(site)", "worst_health_s"] < (h["end"] - h["start"]).sum()


def test_findings_about_many_vms_are_grouped_naming_the_worst():
    r = _site()
    notes = findings(r)
    assert len(notes) <= 8
    warn = [n for n in notes if "warning health" in n]
    assert len(warn) == 1
    assert warn[0].startswith("40 VMs were in warning health at least once; worst: ")
    worst = r.summary[r.summary["vm"] != "(site)"].sort_values("worst_health_s", ascending=False).iloc[0]
    assert warn[0].split("worst: ")[1].startswith(f"{worst['vm']} (")
    assert any(n.startswith("40 VMs exceed the RPO target more than 1% of the time; worst: ") for n in notes)


def test_a_few_vms_keep_a_finding_each():
    notes = findings(_site(n=3, hosts=1))
    assert sum("was in warning health" in n for n in notes) == 3


def test_rank_vms_puts_never_protected_then_incidents_then_worst_rpo_first():
    d = base_scenario()
    d["site"]["hosts"] = [
        {"name": "H1", "vms": [
            {"name": "quiet", "disks": ["1GB"], "churn": {"rate": "10kB/s"}},
            {"name": "busy", "disks": ["1GB"], "churn": {"rate": "600kB/s"}},
            {"name": "huge", "disks": ["200GB"], "churn": {"rate": "10kB/s"}},
            {"name": "off", "disks": ["1GB"], "churn": {"rate": "10kB/s"}, "protect": False}]},
        {"name": "H2", "vms": [{"name": "hit", "disks": ["1GB"], "churn": {"rate": "10kB/s"}}]}]
    d["failures"] = [{"kind": "host", "target": "H2", "at": "12h", "repair": "1h"}]
    r = drsim.simulate(make_scenario(base=d))
    assert rank_vms(r) == ["huge", "hit", "busy", "quiet", "off"]


def test_a_big_site_summary_fits_a_screen_and_says_where_every_vm_is():
    r = _site(n=40, upload="20Mbit/s",
              failures=[{"kind": "host", "target": "H3", "at": "30h", "repair": "2h"}])
    full = summary_text(r)
    short = summary_text(r, max_vms=8)
    assert len(full.splitlines()) > 100
    assert len(short.splitlines()) <= 50
    assert "Showing the 8 of 40 VMs that matter most" in short
    assert "every VM: summary.txt and summary.parquet in the run folder" in short
    rows = [line.split()[0] for line in short.splitlines()[5:13]]
    assert rows == rank_vms(r)[:8]
    assert all(name.startswith("vm3-") for name in rows)  # the host failure's VMs
    assert "... and 2 more incidents" in short


def test_protected_after_counts_from_the_start_of_protection():
    r = drsim.simulate(make_scenario({"replication.initial": {"start": "2h"}}))
    assert r.summary.iloc[0]["protected_at"] == pytest.approx(2 * 3600 + 11000, rel=1e-12)
    text = summary_text(r)
    assert text.splitlines()[5].split()[2:5] == ["3", "h", "3"]  # 11,000 s: 3 h 3 min
    assert "from the start of protection (replication.initial.start, 2 h into the run)" in text
    assert "protected after 3 h 3 min from the start of protection" in findings(r)[0]


def test_two_vms_read_both():
    d = base_scenario()
    d["site"]["hosts"][0]["vms"].append({"name": "vm2", "disks": ["1GB"], "churn": {"rate": "1kB/s"}})
    r = drsim.simulate(make_scenario(base=d))
    lead = lead_sentences(r, {})
    assert lead[0].startswith("Both protectable VMs are protected after")
    assert findings(r)[0].startswith("Both protectable VMs are protected after")


def test_the_sweep_table_counts_protected_after_from_each_points_start_of_protection():
    with ThreadPoolExecutor(1) as pool:
        exp = run_experiment(make_scenario(), replications=1, executor=pool,
                             sweep={"replication.initial.start": ["immediate", "2h"]})
    rows = aggregate_text(exp).splitlines()[2:]
    assert [row.split()[3:6] for row in rows] == [["3", "h", "3"], ["3", "h", "3"]]  # 11,000 s after each start


def _objective_cells(text: str, rpo: str) -> dict[str, str]:
    """The recovery table's RPO and RTO cells per VM, read at the header's column positions."""
    lines = text.splitlines()
    (h,) = [k for k, line in enumerate(lines) if line.startswith("VM") and f"RPO {rpo}" in line]
    col = lines[h].index(f"RPO {rpo}")
    rows = {}
    for line in lines[h + 2:]:
        if not line.strip() or line.startswith("RPO "):
            break
        rows[line.split()[0]] = " ".join(line[col:].split()[:2])
    return rows


def test_objectives_without_an_incident_are_not_called_met():
    """The saturated branch replicates days behind a 30 min target and has no incident: the recovery table's
    RPO/RTO cells say '-' (nothing to judge), not 'met'; the office's two host-failure incidents are judged."""
    sat = summary_text(drsim.simulate(drsim.load_scenario("scenarios/saturated-branch.yaml")))
    assert _objective_cells(sat, "30 min") == {"erp": "- -", "files": "- -", "legacy-app": "- -", "(site)": "- -"}
    office = summary_text(drsim.simulate(drsim.load_scenario("scenarios/essentials-office.yaml")))
    cells = _objective_cells(office, "15 min")
    assert cells["ramh157v01"] == cells["(site)"] == "met met" and cells["Essentials"] == "- -"
