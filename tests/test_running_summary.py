"""Long runs in bounded memory: tables left out record nothing, and the summary computed as the run goes equals
the table-based one (to rounding; the RPO percentile to within the histogram's resolution)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import make_scenario

import drsim
from drsim.cli import main
from drsim.results.findings import findings
from drsim.results.folders import write_run
from drsim.results.size import run_size
from drsim.scenario.units import DAY

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))


#: columns the running statistics do not compute (they do not split start-up from the steady state): NaN there
NOT_RUNNING = ("rpo_steady_mean_s", "rpo_steady_p95_s", "rpo_steady_max_s", "rpo_steady_over_target",
               "rpo_startup_max_s")


def _same_summary(table: pd.DataFrame, running: pd.DataFrame, resolution: float) -> None:
    assert list(table.columns) == list(running.columns)
    for column in NOT_RUNNING:
        assert running[column].isna().all(), column
    for column in (c for c in table.columns if c not in NOT_RUNNING):
        a, b = table[column], running[column]
        if a.dtype.kind == "f":
            x, y = a.to_numpy(), b.to_numpy()
            tol = dict(rtol=0, atol=resolution) if column == "rpo_p95_s" else dict(rtol=1e-9, atol=1e-9)
            assert np.allclose(x, y, equal_nan=True, **tol), (column, x, y)
        else:
            pd.testing.assert_series_equal(a, b, check_names=False)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_the_running_summary_equals_the_table_based_one(path):
    full = drsim.simulate(path)
    lean = drsim.simulate(path, tables=("summary",))
    _same_summary(full.summary, lean.summary, 1.0)
    # the findings alike, but for the RPO's: the lean run's stand for the whole protected time, start-up included
    assert [f for f in findings(full) if "RPO" not in f] == [f for f in findings(lean) if "RPO" not in f]
    assert lean.rpo_stats().mean == pytest.approx(full.rpo_stats().mean, rel=1e-9)
    assert lean.kept == ("summary",)
    # nothing per cycle was recorded: only the states and health changes (kept for downtime and worst health)
    assert all(len(t) == 0 for name, t in lean._tables.items() if name not in ("states", "health"))


def test_the_percentile_is_within_the_stated_resolution():
    """Lone VM: the RPO is a sawtooth from d = 30 s to T + d (T = 5 min): p95 = d + 0.95 T exactly."""
    s = make_scenario({"duration": "3d"})
    exact = drsim.simulate(s).summary.iloc[0]
    for resolution in (1.0, 7.0, 60.0):
        lean = drsim.simulate(s, tables=("summary",), resolution=resolution).summary.iloc[0]
        assert abs(lean["rpo_p95_s"] - exact["rpo_p95_s"]) <= resolution
        assert lean["rpo_mean_s"] == pytest.approx(exact["rpo_mean_s"], rel=1e-12)
        assert lean["rpo_max_s"] == exact["rpo_max_s"]
    assert exact["rpo_p95_s"] == pytest.approx(30 + 0.95 * 300, abs=0.5)


def test_tables_left_out_are_refused_and_not_written(tmp_path):
    s = make_scenario({"duration": "2d", "failures": [{"kind": "host", "target": "H1", "at": "1d", "repair": "1h"}]})
    res = drsim.simulate(s, tables=("incidents", "states"))
    assert res.kept == ("summary", "incidents", "states")
    assert set(res.tables()) == {"summary", "incidents", "states"}
    with pytest.raises(ValueError, match="'transfers' table was not kept"):
        _ = res.transfers
    with pytest.raises(ValueError, match="'rpo' table was not kept"):
        _ = res.rpo
    folder = write_run(res, tmp_path)
    assert {p.name for p in folder.glob("*.parquet")} == {"summary.parquet", "incidents.parquet", "states.parquet"}
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["tables_kept"] == ["summary", "incidents", "states"]
    full = drsim.simulate(s)
    pd.testing.assert_frame_equal(res.states, full.states)
    pd.testing.assert_frame_equal(res.incidents, full.incidents)
    _same_summary(full.summary, res.summary, 1.0)
    with pytest.raises(ValueError, match="unknown table 'transfer'"):
        drsim.simulate(s, tables=("transfer",))


def test_the_size_estimate_counts_cycles_and_rows():
    s = make_scenario({"duration": "100d"})
    size = run_size(s)
    assert size.cycles == 100 * DAY / 300
    assert size.rows["rpo"] == 2 * size.cycles and size.rows["transfers"] == size.cycles
    lean = run_size(s, ("summary", "states"))
    assert lean.rows == {} and lean.memory < size.memory


def test_drsim_run_says_how_big_a_long_run_is_and_what_it_keeps(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text("name: long\nduration: 100d\nsite: {hosts: [{name: H1, vms: [{name: vm1, disks: [1GB], "
                    "churn: {rate: 1kB/s}}]}]}\nlink: {upload: 8Mbit/s, download: 80Mbit/s}\n"
                    "replication: {interval: 15m}\n", encoding="utf-8")
    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:
        runner = CliRunner()
    res = runner.invoke(main, ["run", str(path), "--tables", "summary,states", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.stderr
    assert "long: 100 d simulated: about 9,600 replication cycles" in res.stderr
    assert "keeping summary, states" in res.stderr
    (folder,) = (tmp_path / "out" / "long").iterdir()
    assert {p.name for p in folder.glob("*.parquet")} == {"summary.parquet", "states.parquet"}
    bad = runner.invoke(main, ["run", str(path), "--tables", "summary,cycle"])
    assert bad.exit_code == 2 and "unknown table 'cycle'" in bad.stderr


def test_the_running_summary_follows_resyncs():
    """1.25 MB/s on a 4 GB disk holding 3 GB over an 8 Mbit/s link: the log reaches 2 GB (half the disk) at 1600 s,
    during the 3000 s copy, so a resync replaces the catch-up (3.75 GB written since the snapshot change
    3 GB x (1 - e^-1.25) = 2.14 GB of blocks); the link cannot keep up, so resyncs follow one another. The RPO is
    defined through them (the VM can fail over to its newest point): the running summary equals the table-based
    one, and the first resync's point starts the steady state as a catch-up's would."""
    s = make_scenario({"duration": "2d", "site.hosts[0].vms[0].disks": [{"size": "4GB", "used": "3GB"}],
                       "site.hosts[0].vms[0].churn": {"rate": "1.25MB/s"},
                       "replication.resync": {"start": "immediate"}})
    full = drsim.simulate(s)
    _same_summary(full.summary, drsim.simulate(s, tables=("summary",)).summary, 1.0)
    row = full.summary.iloc[0]
    first = full.operations[full.operations["step"] == "send disk 1"].iloc[0]
    assert first["bytes"] == pytest.approx(3e9 * -np.expm1(-1.25), rel=1e-9)
    assert row["protected_at"] == first["end"] and row["resyncs"] > 50
    resync = full.states[full.states["state"] == "resync"]
    assert row["resync_s"] == pytest.approx(float((resync["end"] - resync["start"]).sum()), rel=1e-12)
    # the start-up: from protection until the next point (the second resync's) arrives, the newest point is the one
    # captured when the first resync started (the copy's end, 3000 s)
    second = full.transfers[full.transfers["kind"].astype(str) == "resync"]["finished_at"].iloc[1]
    assert row["rpo_startup_max_s"] == pytest.approx(second - 3000.0, rel=1e-12)
