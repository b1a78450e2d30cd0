"""The price sheet and a run's costs: licence with the free first days, storage of replicas and recovery points,
compute while in the cloud, egress on failback, incidents, overrides and bad sheets."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

import drsim
from drsim.cli import main
from drsim.results.costs import costs_table, incident_cost, totals
from drsim.results.tables import SITE
from drsim.scenario.prices import DEFAULT_PRICES, GB, load_price_sheet
from drsim.scenario.problems import ScenarioError
from tests.conftest import base_scenario, make_scenario

STEPS = {"shutdown": "2m", "prepare": "3m", "process_pending": "5m", "start": "8m", "reconnect": "2m",
         "onprem_start": "5m", "cleanup": "10m", "portal": "15m"}
PRICES = {"licence": {"per_vm_month": 25.0, "free_days": 31},
          "storage": {"replica_gb_month": 0.05, "recovery_points_gb_month": 0.10},
          "compute": {"per_hour": 0.50}, "egress": {"per_gb": 0.08},
          "uplink": {"tiers": [{"upload": "10Mbit/s", "per_month": 40}, {"upload": "20Mbit/s", "per_month": 70}]},
          "drills": {"per_year": 4, "days": 7},
          "business": {"downtime_per_hour": 100.0, "lost_data_per_hour": 300.0}}


def item(df: pd.DataFrame, vm: str, name: str) -> pd.Series:
    return df[(df["vm"] == vm) & (df["item"] == name)].iloc[0]


def test_the_bundled_sheet_names_its_date_and_sources():
    sheet = load_price_sheet()
    assert sheet.licence.per_vm_month == 25.0 and sheet.licence.free_days == 31
    assert sheet.drills.per_year == 4 and sheet.drills.days == 7
    assert str(sheet.date) == "2026-12-06" and sheet.currency == "USD"
    for section in ("licence", "storage", "compute", "egress", "uplink", "drills", "business"):
        assert getattr(sheet, section).source
    assert DEFAULT_PRICES.exists()


def test_steady_costs_of_a_lone_vm():
    """1 MB/s for 10 days, 10 GiB used, 24 h retention, no failure, no drills."""
    s = make_scenario({"site.hosts[0].vms[0].churn": {"rate": "1MB/s"}, "site.hosts[0].vms[0].disks": ["10GiB"],
                       "link.upload": "16Mbit/s", "duration": "10d"})
    df = costs_table(drsim.simulate(s), load_price_sheet(overrides=PRICES))
    lic = item(df, "vm1", "licence")
    assert lic["monthly"] == 25.0
    assert lic["per_year"] == pytest.approx(12 * 25 * (365 - 31) / 365)  # 274.52: the first 31 days free
    rep = item(df, "vm1", "replica storage")
    assert rep["quantity"] == pytest.approx(10.0) and rep["monthly"] == pytest.approx(0.5)
    # recovery points: 1 MB/s over 24 h = 86.4e9 bytes kept = 80.47 GB x 0.10 = 8.05 a month
    rp = item(df, "vm1", "recovery points")
    assert rp["quantity"] == pytest.approx(86.4e9 / GB, rel=0.01)
    assert rp["monthly"] == pytest.approx(8.05, rel=0.01)
    assert item(df, "vm1", "compute")["per_year"] == 0
    # no drills in the scenario: the sheet's 4 x 7 days = 672 h x 0.50 = 336 a year
    drill = item(df, "vm1", "drill compute")
    assert drill["quantity"] == 672 and drill["per_year"] == pytest.approx(336.0)
    # 16 Mbit/s: the 20 Mbit/s tier, 70 a month
    up = item(df, SITE, "uplink")
    assert up["monthly"] == 70 and up["per_year"] == 840
    t = totals(df)
    assert t["incident_per_year"] == 0
    assert t["running_per_year"] == pytest.approx(274.52 + 6.0 + 12 * 8.05 + 336 + 840, rel=1e-3)


def test_failover_compute_egress_and_incidents_scaled_per_year():
    """A host fails at 6 h for 4 h of a 1-day run; manual failover, failback right after the repair."""
    d = base_scenario()
    d["site"]["hosts"][0]["vms"][0]["disks"] = ["1GB"]
    d["failover"] = dict(STEPS)
    d["failures"] = [{"kind": "host", "target": "H1", "at": "6h", "repair": "4h"}]
    d["policy"] = {"name": "manual", "detect": "10m", "respond": "15m", "failback": "immediate"}
    d["prices"] = PRICES
    res = drsim.simulate(make_scenario(base=d))
    from drsim.results.costs import run_costs

    df = run_costs(res)  # the scenario's prices: section
    st = res.states
    cloud = st[st["state"].astype(str).isin(["in_cloud", "failback_sync", "failing_back"])]
    hours = float((cloud["end"] - cloud["start"]).sum()) / 3600
    assert 3 < hours < 5  # restored about 38 min after the failure, home shortly after the 4 h repair
    comp = item(df, "vm1", "compute")
    assert comp["quantity"] == pytest.approx(hours * 365)  # a 1-day run scaled to a year
    assert comp["per_year"] == pytest.approx(hours * 365 * 0.5)
    tr = res.transfers
    down = float(tr[tr["kind"].astype(str).isin(["failback", "restore"])]["bytes"].sum())
    assert down > 0
    eg = item(df, "vm1", "egress")
    assert eg["per_year"] == pytest.approx(down / GB * 365 * 0.08)
    inc = res.incidents.iloc[0]
    dt = item(df, "vm1", "downtime")
    assert dt["quantity"] == pytest.approx(res.summary.set_index("vm").at["vm1", "downtime_s"] / 3600 * 365)
    assert dt["per_year"] == pytest.approx(dt["quantity"] * 100)
    lost = item(df, "vm1", "lost data")
    assert lost["per_year"] == pytest.approx(inc["data_loss_s"] / 3600 * 365 * 300)
    assert totals(df)["incident_per_year"] == pytest.approx(dt["per_year"] + lost["per_year"])


def test_incident_cost_prices_expected_hours():
    sheet = load_price_sheet(overrides={"business": {"downtime_per_hour": 50, "vms": {"sql": 400},
                                                     "lost_data_per_hour": 1000}})
    assert incident_cost(sheet, "web", 2.0, 0.25) == (100.0, 250.0)
    assert incident_cost(sheet, "sql", 2.0, 0.0) == (800.0, 0.0)


def test_bad_prices_are_located(tmp_path):
    with pytest.raises(ScenarioError, match=r"licence\.per_vm_month"):
        load_price_sheet(overrides={"licence": {"per_vm_month": -1}})
    d = base_scenario()
    d["prices"] = {"storage": {"replica_gb_month": "cheap"}}
    with pytest.raises(ScenarioError, match=r"prices: storage\.replica_gb_month"):
        make_scenario(base=d)
    bad = tmp_path / "p.yaml"
    bad.write_text("egress: {per_gbb: 1}\n")
    with pytest.raises(ScenarioError, match=r"p\.yaml.*egress\.per_gbb"):
        load_price_sheet(bad)


def test_drsim_run_writes_costs_with_a_prices_file(tmp_path):
    sheet = tmp_path / "prices.yaml"
    sheet.write_text("currency: EUR\nlicence: {per_vm_month: 30}\n")
    s = tmp_path / "s.yaml"
    import yaml

    s.write_text(yaml.safe_dump(base_scenario()))
    r = CliRunner().invoke(main, ["run", str(s), "--out", str(tmp_path / "out"), "--prices", str(sheet)])
    assert r.exit_code == 0, r.output
    assert "Costs (site):" in r.output and "30.00 EUR" in r.output
    folder = next((tmp_path / "out" / "tiny").iterdir())
    costs = pd.read_parquet(folder / "costs.parquet")
    assert item(costs, "vm1", "licence")["monthly"] == 30
    bad = CliRunner().invoke(main, ["run", str(s), "--no-save", "--prices", str(tmp_path / "missing.yaml")])
    assert bad.exit_code == 2 and "cannot read the price sheet" in bad.output


def test_the_report_has_a_costs_section():
    from drsim.views.run_report import render_report

    d = base_scenario()
    d["prices"] = PRICES
    html, md = render_report(drsim.simulate(make_scenario(base=d)), figures=[])
    assert "## Costs" in md and "| licence | 1.0 VM | 25.00 USD | 274.52 USD |" in md
    assert 'id="costs-table"' in html
