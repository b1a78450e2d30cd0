"""drsim plan with option lists: the cheapest option that meets the objectives, the lowest total expected cost,
the frontier figure and the command line."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from click.testing import CliRunner

from drsim.cli import main
from drsim.experiments.options import compare_options
from drsim.scenario.prices import load_price_sheet
from drsim.views.options_figure import options_frontier, options_text
from tests.conftest import base_scenario, make_scenario

MBIT = 1e6 / 8
TIERS = {"uplink": {"tiers": [{"upload": "10Mbit/s", "per_month": 40}, {"upload": "20Mbit/s", "per_month": 70},
                              {"upload": "50Mbit/s", "per_month": 150}]}}


def lone_vm():
    """1 MB/s, 5-minute interval, a 7-minute target at p95: the closed form needs 17.78 Mbit/s (a 1 TB disk holding
    100 MB: its log never reaches half of it, so no resync)."""
    return make_scenario({"site.hosts[0].vms[0].churn": {"rate": "1MB/s"},
                          "site.hosts[0].vms[0].disks": [{"size": "1TB", "used": "100MB"}],
                          "duration": "1d", "objectives": {"rpo": "7m", "rto": "1h"}})


def test_cheapest_that_meets_and_lowest_total(tmp_path):
    sheet = load_price_sheet(overrides=TIERS)
    with ThreadPoolExecutor(1) as ex:
        df = compare_options(lone_vm(), sheet, uploads=[10 * MBIT, 20 * MBIT, 50 * MBIT], replications=1,
                             executor=ex)
    t = df.set_index("upload_Bps")
    assert not t.loc[10 * MBIT, "meets"] and t.loc[20 * MBIT, "meets"] and t.loc[50 * MBIT, "meets"]
    # the RPO at 20 Mbit/s: d + pT with d = cT/B = 120 s: 405 s (the first cycles' ramp aside)
    assert t.loc[20 * MBIT, "rpo_stat_s"] == pytest.approx(120 + 0.95 * 300, rel=0.01)
    assert df.attrs["cheapest"] == t.loc[20 * MBIT, "option"]
    # without incidents a missed RPO costs nothing: the lowest total is the cheapest option of all
    assert df.attrs["lowest_total"] == t.loc[10 * MBIT, "option"]
    assert t.loc[10 * MBIT, "incident_per_year"] == 0
    # the running costs differ by the uplink tiers (12 x (150 - 70) a year) and a few cents of recovery-point storage
    # (the protected time, over which the churn kept is averaged, starts a little earlier at 50 Mbit/s)
    assert t.loc[50 * MBIT, "running_per_year"] - t.loc[20 * MBIT, "running_per_year"] == pytest.approx(960, abs=0.1)
    text = options_text(df)
    assert "Cheapest option that meets the objectives: 20 Mbit/s" in text
    fig = options_frontier(df)
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_an_unpriced_upload_is_never_chosen():
    with ThreadPoolExecutor(1) as ex:
        df = compare_options(lone_vm(), load_price_sheet(overrides=TIERS), uploads=[20 * MBIT, 60 * MBIT],
                             replications=1, executor=ex)
    assert df.attrs["unpriced"] == [df.loc[1, "option"]]
    assert df.attrs["cheapest"] == df.loc[0, "option"]


def test_cli_options(tmp_path):
    s = tmp_path / "s.yaml"
    data = base_scenario()
    data["prices"] = TIERS
    s.write_text(yaml.safe_dump(data))
    png = tmp_path / "frontier.png"
    r = CliRunner().invoke(main, ["plan", str(s), "--upload", "10Mbit/s,20Mbit/s", "--interval", "30s,5m", "-n", "1",
                                  "--workers", "1", "-q", "--figure", str(png)])
    assert r.exit_code == 0, r.output
    assert r.output.count("Mbit/s, every") >= 4 and png.exists()
    bad = CliRunner().invoke(main, ["plan", str(s), "--upload", "fast", "--workers", "1"])
    assert bad.exit_code == 2 and "--upload" in bad.output
