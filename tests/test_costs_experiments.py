"""Costs in the experiment tables: every run's summary rows carry its costs per year, the aggregate gives their
mean and 95 % confidence half-width per point, a swept price changes only what it prices, and the report and
terminal table show them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import drsim
from drsim.cli import main
from drsim.experiments.statistics import t_975
from drsim.experiments.text import aggregate_text
from drsim.results.costs import COST_METRICS
from drsim.results.tables import SITE
from drsim.scenario.document import scenario_to_dict
from drsim.views.experiment_report import experiment_report_context
from tests.conftest import make_scenario

YEAR = 365 * 86400.0


def failing_site() -> drsim.Scenario:
    """Two VMs; the host fails at 6 h with a random repair (so replications differ); an operator fails over."""
    return make_scenario({
        "duration": "2d",
        "site.hosts[0].vms[0].disks": ["2GB"],
        "site.hosts[0].vms[1]": {"name": "vm2", "disks": ["1GB"], "churn": {"rate": "50kB/s"}},
        "failures": [{"kind": "host", "target": "H1", "at": "6h",
                      "repair": {"dist": "lognormal", "median": "4h", "p95": "12h"}}],
        "policy": {"name": "manual", "detect": {"dist": "lognormal", "median": "10m", "p95": "40m"},
                   "respond": "10m", "point": "latest", "failback": "immediate"},
        "prices": {"business": {"downtime_per_hour": 100.0, "lost_data_per_hour": 300.0}},
    })


@pytest.fixture(scope="module")
def experiment():
    with ThreadPoolExecutor(1) as ex:
        return drsim.run_experiment(failing_site(), replications=4, executor=ex,
                                    sweep={"prices.business.downtime_per_hour": [100.0, 250.0]})


def stats(exp, point: int, vm: str, metric: str):
    a = exp.aggregate
    return a[(a["point"] == point) & (a["vm"] == vm) & (a["metric"] == metric)].iloc[0]


def test_tidy_rows_carry_the_costs_and_the_aggregate_their_interval(experiment):
    exp = experiment
    tidy = exp.tidy
    assert set(COST_METRICS) <= set(tidy.columns)
    site = tidy[(tidy["vm"] == SITE) & (tidy["point"] == 0)]
    # the site's downtime cost per run: its VMs' downtime (site row: summed) scaled to a year x 100 an hour
    vms = tidy[(tidy["vm"] != SITE) & (tidy["point"] == 0)].groupby("replication")["downtime_s"].sum()
    scale = YEAR / 2 / 86400
    expected = vms.to_numpy() / 3600 * scale * 100.0
    assert np.allclose(site.sort_values("replication")["cost_downtime_per_year"].to_numpy(), expected)
    assert expected.std() > 0  # the replications differ (random repair), so the interval is not zero
    row = stats(exp, 0, SITE, "cost_downtime_per_year")
    assert row["n"] == 4 and row["mean"] == pytest.approx(expected.mean())
    assert row["ci95"] == pytest.approx(float(t_975(3)) * expected.std(ddof=1) / 2)
    # a licence is the same in every run: 2 VMs x 12 x 25 x (365 - 31) / 365, no spread
    lic = stats(exp, 0, SITE, "cost_licence_per_year")
    assert lic["mean"] == pytest.approx(2 * 12 * 25 * 334 / 365) and lic["ci95"] == 0
    # totals add up, per run
    t = tidy[tidy["vm"] == SITE]
    assert np.allclose(t["cost_total_per_year"], t["cost_running_per_year"] + t["cost_incidents_per_year"])
    # a VM row has no uplink; the site's is NaN here (the sheet lists no tier) and counts 0 in the totals
    assert tidy["cost_uplink_per_year"].isna().all()


def test_a_swept_price_changes_only_what_it_prices(experiment):
    """The same seeds at both points (common random numbers): the downtime costs scale by 250 / 100 exactly,
    the running costs are equal."""
    exp = experiment
    for vm in ("vm1", SITE):
        a, b = (stats(exp, p, vm, "cost_downtime_per_year")["mean"] for p in (0, 1))
        assert a > 0 and b == pytest.approx(2.5 * a)
        assert stats(exp, 0, vm, "cost_running_per_year")["mean"] == \
            pytest.approx(stats(exp, 1, vm, "cost_running_per_year")["mean"])
    assert exp.metadata()["costs"]["currency"] == "USD"


def test_the_sweep_table_and_report_show_money(experiment):
    exp = experiment
    text = aggregate_text(exp)
    assert "cost/year USD" in text
    total = stats(exp, 1, SITE, "cost_total_per_year")
    assert f"{total['mean']:,.0f} ± {total['ci95']:,.0f}" in text
    ctx, _ = experiment_report_context(exp)
    points = next(s for s in ctx["sections"] if s.id == "points").blocks[0].value
    assert points.header[-3:] == ["running cost / year", "incident cost / year", "total cost / year"]
    assert points.rows[1][-1] == f"{total['mean']:,.0f} ± {total['ci95']:,.0f}"
    summary = " ".join(b.value for b in next(s for s in ctx["sections"] if s.id == "summary").blocks)
    cheapest = stats(exp, 0, SITE, "cost_total_per_year")
    assert (f"point 0 (prices.business.downtime_per_hour = 100) costs least: {cheapest['mean']:,.0f} ± "
            f"{cheapest['ci95']:,.0f} USD a year") in summary


def test_sweep_prices_file_goes_under_the_scenarios_section_and_into_the_folder(tmp_path):
    """drsim sweep --prices FILE: the file's licence (40 a month) prices every point, the scenario's own section
    (the business prices) still goes over it, and the sweep's scenario.yaml records the merged section, so a
    resume prices alike. A bad file is refused with its place, before anything runs."""
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(scenario_to_dict(failing_site())))
    (tmp_path / "mine.yaml").write_text("licence: {per_vm_month: 40.0, source: our quote}\n"
                                        "business: {downtime_per_hour: 1.0}\n")
    r = CliRunner().invoke(main, ["sweep", str(path), "-n", "2", "--workers", "1", "--prices",
                                  str(tmp_path / "mine.yaml"), "--out", str(tmp_path / "out"), "-q"])
    assert r.exit_code == 0, r.output
    (folder,) = (tmp_path / "out").glob("*/sweep-*")
    agg = pd.read_parquet(folder / "aggregate.parquet")
    site = agg[(agg["vm"] == SITE)].set_index("metric")
    assert site.loc["cost_licence_per_year", "mean"] == pytest.approx(2 * 12 * 40 * 334 / 365)
    recorded = yaml.safe_load((folder / "scenario.yaml").read_text())["prices"]
    assert recorded["licence"]["per_vm_month"] == 40.0
    assert recorded["business"]["downtime_per_hour"] == 100.0  # the scenario's section over the file
    (tmp_path / "bad.yaml").write_text("licence: {per_vm_month: -1, source: x}\n")
    bad = CliRunner().invoke(main, ["sweep", str(path), "-n", "2", "--workers", "1", "--prices",
                                    str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "out2")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert str(tmp_path / "bad.yaml") in bad.output and "per_vm_month" in bad.output
    assert not (tmp_path / "out2").exists()
