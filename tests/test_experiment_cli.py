"""drsim sweep's Latin hypercube, precision, per-run tables and Dask options: results, messages, exit codes."""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import drsim.experiments.executors
import drsim.experiments.runner
from drsim.cli import main
from drsim.experiments.executors import ExecutorFailed
from drsim.experiments.runner import run_experiment
from drsim.results.tables import TABLES

HOST_FAILURES = {"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "3d"},
                 "repair": {"dist": "lognormal", "median": "2h", "p95": "6h"}}


def cli(*args) -> tuple[int, str, str, BaseException | None]:
    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1
    except TypeError:
        runner = CliRunner()
    res = runner.invoke(main, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr, res.exception


@pytest.fixture
def path(tmp_path) -> Path:
    data = {"name": "tiny", "duration": "3d", "seed": 3,
            "site": {"hosts": [{"name": "H1", "vms": [{"name": "vm1", "disks": ["2GB"],
                                                       "churn": {"rate": "20kB/s", "variation": 0.3}}]}]},
            "link": {"upload": "8Mbit/s", "download": "80Mbit/s"}, "failures": [HOST_FAILURES]}
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


def test_cli_lhs_end_to_end(path, tmp_path):
    code, out, err, exc = cli("sweep", path, "-n", 2, "--set", "policy.name=manual,automatic",
                              "--lhs", "link.upload=4Mbit/s..16Mbit/s", "--lhs", "replication.interval=30s,5m",
                              "--samples", 3, "--seed", 9, "--workers", 2, "--out", tmp_path / "out")
    assert code == 0, (out, err, exc)
    (folder,) = (tmp_path / "out" / "tiny").iterdir()
    ref = run_experiment(path, replications=2, seed=9, sweep={"policy.name": ["manual", "automatic"]},
                         lhs={"link.upload": "4Mbit/s..16Mbit/s", "replication.interval": ["30s", "5m"]}, samples=3,
                         executor=ThreadPoolExecutor(1))
    tidy = pd.read_parquet(folder / "tidy.parquet")
    pd.testing.assert_frame_equal(tidy, ref.tidy)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["samples"] == 3 and meta["grid"] == {"policy.name": ["manual", "automatic"]}
    assert meta["lhs"]["link.upload"] == {"range": "4Mbit/s..16Mbit/s", "kind": "rate", "low": 5e5, "high": 2e6,
                                          "scale": "linear"}
    assert [p["sample"] for p in meta["points"]] == [0, 1, 2, 0, 1, 2]
    header = next(line for line in out.splitlines() if line.startswith("point"))
    assert header.split()[:5] == ["point", "policy.name", "sample", "link.upload", "replication.interval"]
    shown = ref.points["link.upload"].iloc[0] * 8 / 1e6
    assert f"{shown:.3g} Mbit/s" in out  # sampled rates shown in their unit


def test_cli_precision(path, tmp_path):
    code, out, err, exc = cli("sweep", path, "-n", 3, "--precision", "rpo_mean=2s", "--precision", "downtime_s=1s",
                              "--max-replications", 6, "--set", "link.upload=2Mbit/s,16Mbit/s", "--workers", 1,
                              "--out", tmp_path / "out")
    assert code == 0, (out, err, exc)
    assert "precision: rpo_mean_s of (site) within ± 2 s: reached at " in out
    assert "precision: downtime_s of (site) within ± 1 s: reached at 0 of 2 points, with 6 replications per point" \
        in out
    assert "warning: the precision target was not reached everywhere within --max-replications 6" in err
    (folder,) = (tmp_path / "out" / "tiny").iterdir()
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["precision"]["reached"] is False and [p["replications"] for p in meta["points"]] == [6, 6]
    assert meta["runs"] == 12 and len(pd.read_parquet(folder / "tidy.parquet")) == 24


def test_cli_keep_runs(path, tmp_path):
    code, out, err, exc = cli("sweep", path, "-n", 2, "--keep-runs", "--workers", 2, "--out", tmp_path / "out", "-q")
    assert code == 0, (out, err, exc)
    folder = Path(out.strip())
    for k in (0, 1):
        run = folder / "runs" / "point-0" / f"replication-{k}"
        assert sorted(p.name for p in run.iterdir()) == sorted([f"{t}.parquet" for t in TABLES]
                                                               + ["metadata.json", "scenario.yaml"])
    code, out, err, exc = cli("report", folder / "runs" / "point-0" / "replication-1")
    assert code == 0, (out, err, exc)


@pytest.mark.parametrize(("args", "message"), [
    (["--lhs", "link.uplod=10Mbit/s..50Mbit/s", "--samples", 2],
     ("error: sweep point 0 (link.uplod=", "link.uplod: unknown key 'uplod' (did you mean 'upload'?)")),
    (["--lhs", "link.upload=50Mbit/s..10Mbit/s", "--samples", 2],
     "error: --lhs link.upload=50Mbit/s..10Mbit/s: link.upload: the range '50Mbit/s..10Mbit/s' is empty"),
    (["--lhs", "link.upload=fast", "--samples", 2], "link.upload: expected a range like '10Mbit/s..50Mbit/s'"),
    (["--lhs", "link.upload=1Mbit/s..2Mbit/s"], "error: a Latin hypercube needs its number of samples"),
    (["--lhs", "link.upload=1Mbit/s..2Mbit/s", "--samples", -3], "Invalid value for '--samples': -3"),
    (["--samples", 4], "error: samples is given but no Latin hypercube range is"),
    (["--lhs", "link.upload=1Mbit/s..2Mbit/s", "--lhs", "link.upload=3Mbit/s..4Mbit/s", "--samples", 2],
     "error: --lhs link.upload is given twice"),
    (["--set", "link.upload=1Mbit/s", "--lhs", "link.upload=1Mbit/s..2Mbit/s", "--samples", 2],
     "link.upload: is both in the grid and in the Latin hypercube"),
    (["--precision", "rpo_p9=30s"],
     "error: --precision rpo_p9=30s: unknown metric 'rpo_p9' (did you mean 'rpo_p95_s'?)"),
    (["--precision", "rpo_p95@vm9=30s"], "error: --precision rpo_p95@vm9=30s: unknown VM 'vm9'"),
    (["--precision", "rpo_p95=soon"], "error: --precision rpo_p95=soon: cannot read the tolerance 'soon'"),
    (["--precision", "30s", "-n", 1], "error: a precision target needs at least 2 replications"),
    (["--max-replications", 20], "error: max_replications applies only with a precision target"),
    (["--keep-runs", "--no-save"],
     "error: --keep-runs writes every run's tables: it cannot be combined with --no-save"),
    (["--dask", "tcp://127.0.0.1:9", "--workers", 2], "error: --workers does not apply with --dask"),
])
def test_cli_bad_options(path, tmp_path, args, message):
    code, out, err, exc = cli("sweep", path, *args, "--out", tmp_path / "out")
    assert code == 2 and isinstance(exc, SystemExit), (out, err)
    for text in (message,) if isinstance(message, str) else message:
        assert text in err, err
    assert "Traceback" not in out + err
    assert not (tmp_path / "out").exists()  # refused before anything ran or was written


def test_cli_unreachable_dask_scheduler(path, tmp_path, monkeypatch):
    monkeypatch.setattr(drsim.experiments.executors, "connect_dask",
                        functools.partial(drsim.experiments.executors.connect_dask, timeout=0.5))
    code, out, err, exc = cli("sweep", path, "--dask", "tcp://127.0.0.1:9", "--out", tmp_path / "out")
    assert code == 2 and err.startswith("error: --dask tcp://127.0.0.1:9: cannot reach the Dask scheduler at "
                                        "tcp://127.0.0.1:9: ")
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    code, out, err, exc = cli("plan", path, "--dask", "tcp://127.0.0.1:9", "-q")
    assert code == 2 and "cannot reach the Dask scheduler" in err


def test_cli_dask_without_distributed(path, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)
    code, out, err, exc = cli("sweep", path, "--dask", "tcp://127.0.0.1:8786", "--out", tmp_path / "out")
    assert code == 2 and "needs the 'distributed' package: pip install 'drsim[dask]'" in err


def test_cli_executor_failure_keeps_the_finished_runs(path, tmp_path, monkeypatch):
    real = drsim.experiments.runner.run_experiment

    def dies(*a, **kw):
        def stop(done, total):
            if done >= 2:
                raise ExecutorFailed("BrokenProcessPool: a worker process died")

        return real(*a, **{**kw, "progress": stop})

    monkeypatch.setattr(drsim.experiments.runner, "run_experiment", dies)
    args = ["sweep", path, "-n", 4, "--batch-size", 1, "--workers", 1, "--out", tmp_path / "out"]
    code, out, err, exc = cli(*args)
    (folder,) = (tmp_path / "out" / "tiny").iterdir()
    assert code == 1 and err.startswith("error: the executor failed (BrokenProcessPool: a worker process died); "
                                        f"finished runs are kept in {folder}; resume with: drsim sweep --resume "
                                        f"{folder}")
    assert len(list((folder / "parts").glob("part-*.parquet"))) == 2
    monkeypatch.setattr(drsim.experiments.runner, "run_experiment", real)
    code, out, err, exc = cli(*args, "--resume", folder, "-q")
    assert code == 0, (out, err, exc)
    ref = run_experiment(path, replications=4, executor=ThreadPoolExecutor(1))
    pd.testing.assert_frame_equal(pd.read_parquet(Path(out.strip()) / "tidy.parquet"), ref.tidy)


def test_cli_help_documents_the_options():
    code, out, err, exc = cli("sweep", "--help")
    for option in ("--lhs", "--samples", "--precision", "--max-replications", "--keep-runs", "--dask"):
        assert option in out
    code, out, err, exc = cli("plan", "--help")
    assert "--dask" in out


def test_ctrl_c_stops_a_process_pool_sweep_at_once_and_resume_completes_it(path, tmp_path):
    """A real Ctrl-C: SIGINT to the whole process group, workers included, as a terminal sends it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    sweep = [sys.executable, "-c", "from drsim.cli import main; main()", "sweep", str(path), "-n", "200",
             "--workers", "2", "--batch-size", "2", "-q"]
    proc = subprocess.Popen([*sweep, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(out.glob("*/*.incomplete/parts/part-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - t0 < 10  # at once, not after the remaining runs
    assert "interrupted: finished runs are kept in" in stderr and "Traceback" not in stderr
    folder = next(out.glob("*/*.incomplete"))
    done = subprocess.run([*sweep, "--resume", str(folder)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    tidy = pd.read_parquet(Path(done.stdout.strip()) / "tidy.parquet")
    assert sorted(set(tidy["replication"])) == list(range(200))
