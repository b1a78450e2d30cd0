"""The risk engine prices its incidents: the expected annual cost of downtime and lost data is the annual figures
times the business prices, with the figures' intervals; per-VM prices add up to the site's cost; the folder, the
text, the report and ``drsim risk --prices`` carry it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import drsim
from drsim.cli import main
from drsim.experiments.risk import NotKeepingUp, risk
from drsim.experiments.risk_output import risk_text
from drsim.scenario.prices import load_price_sheet
from drsim.scenario.units import HOUR
from drsim.views.risk_report import risk_report_context
from tests.conftest import make_scenario

BUSINESS = {"business": {"downtime_per_hour": 200.0, "lost_data_per_hour": 500.0, "vms": {"b": 800.0}}}


def site(**changes) -> drsim.Scenario:
    return make_scenario({
        "name": "two", "duration": "20d", "seed": 3,
        "site.hosts[0].vms": [{"name": "a", "disks": ["5GB"], "churn": {"rate": "50kB/s"}},
                              {"name": "b", "disks": ["5GB"], "churn": {"rate": "30kB/s"}}],
        "link": {"upload": "10Mbit/s", "download": "100Mbit/s", "efficiency": 1.0, "compression": 1.0},
        "replication": {"interval": "15m", "setup": 0},
        "failures": [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "20d"},
                      "repair": {"dist": "exponential", "mean": "8h"}}],
        "policy": {"name": "manual", "detect": "10m", "respond": "15m", "point": "latest", "failback": "immediate"},
        **changes,
    })


@pytest.fixture(scope="module")
def result():
    with ThreadPoolExecutor(2) as ex:
        return risk(site(), years=2, replications=20, executor=ex, probe_runs=3, probe_weeks=2,
                    prices=load_price_sheet(overrides=BUSINESS))


def figure(r, metric: str, vm: str) -> tuple[float, float, float]:
    return r.value(metric, vm), *r.interval(metric, vm)


def test_the_cost_is_the_figures_times_the_prices(result):
    r = result
    assert r.method == "conditional"
    for vm, rate in (("a", 200.0), ("b", 800.0)):
        value, low, high = figure(r, "downtime_per_year_s", vm)
        assert value > 0
        assert r.cost("downtime", vm) == pytest.approx((value / HOUR * rate, low / HOUR * rate, high / HOUR * rate))
        value, low, high = figure(r, "data_loss_per_year_s", vm)
        assert value > 0
        assert r.cost("lost data", vm) == pytest.approx((value / HOUR * 500, low / HOUR * 500, high / HOUR * 500))
        total = r.cost("incidents", vm)
        assert total[0] == pytest.approx(r.cost("downtime", vm)[0] + r.cost("lost data", vm)[0])
        assert total[1] < total[0] < total[2]


def test_the_site_adds_its_vms_with_their_own_prices(result):
    r = result
    for item in ("downtime", "lost data", "incidents"):
        site_cost = r.cost(item)
        parts = [r.cost(item, vm) for vm in ("a", "b")]
        assert site_cost[0] == pytest.approx(sum(p[0] for p in parts))
        # the site's interval is over its own per-replication sums: no wider than the VMs' added
        assert site_cost[2] - site_cost[0] <= sum(p[2] - p[0] for p in parts) * (1 + 1e-9)
    # prices differ by VM, so the site's downtime cost is not its downtime figure times one price
    assert r.cost("downtime")[0] != pytest.approx(r.value("downtime_per_year_s") / HOUR * 200)
    text = risk_text(r)
    total = r.cost()
    assert f"Expected cost of incidents per year (site): {total[0]:,.0f} [{total[1]:,.0f}, {total[2]:,.0f}] USD" in text
    ctx, _ = risk_report_context(r)
    section = next(s for s in ctx["sections"] if s.id == "costs")
    table = section.blocks[0].value
    assert table.total[0] == "(site)" and table.total[3] == f"{total[0]:,.0f} [{total[1]:,.0f}, {total[2]:,.0f}]"
    assert r.metadata()["costs"]["downtime_per_hour"] == {"a": 200.0, "b": 800.0}


def test_no_business_prices_cost_nothing_and_say_why():
    with ThreadPoolExecutor(1) as ex:
        r = risk(site(), years=1, replications=2, executor=ex, probe_runs=2, probe_weeks=2)
    assert r.cost() == (0.0, 0.0, 0.0)
    assert "zero because the price sheet states no cost of downtime" in risk_text(r)


def test_a_link_that_cannot_keep_up_can_refuse_the_full_simulation():
    s = make_scenario({"site.hosts[0].vms[0].churn": {"rate": "80kB/s"}, "site.hosts[0].vms[0].disks": ["1GB"],
                       "link.upload": "0.5Mbit/s", "duration": "10d",
                       "failures": [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "20d"},
                                     "repair": "4h"}]})
    with ThreadPoolExecutor(1) as ex, pytest.raises(NotKeepingUp, match="does not keep up"):
        risk(s, years=1, replications=1, executor=ex, probe_runs=2, probe_weeks=2, allow_full=False)


def test_cli_prices_the_incidents_into_the_folder(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(drsim.scenario.document.scenario_to_dict(site())))
    prices = tmp_path / "p.yaml"
    prices.write_text(yaml.safe_dump(BUSINESS))
    r = CliRunner().invoke(main, ["risk", str(path), "--years", "1", "-n", "2", "--workers", "1", "--probe-runs",
                                  "2", "--probe-weeks", "2", "--prices", str(prices), "--out", str(tmp_path / "out"),
                                  "--report"])
    assert r.exit_code == 0, r.output
    assert "Expected cost of incidents per year (site)" in r.output
    (folder,) = (tmp_path / "out" / "two").iterdir()
    costs = pd.read_parquet(folder / "costs.parquet")
    assert list(costs.columns) == ["vm", "item", "per_year", "low", "high", "estimator"]
    assert set(costs["vm"]) == {"a", "b", "(site)"} and (costs["per_year"] > 0).all()
    assert "Cost of incidents" in (folder / "report.md").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("business: {downtime_per_hour: -1}\n")
    r = CliRunner().invoke(main, ["risk", str(path), "--prices", str(bad), "--workers", "1"])
    assert r.exit_code == 2 and "downtime_per_hour" in r.output
