"""Per-run tables (keep_runs) and executors that fail: streamed, atomic, resumable, nothing finished is lost."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from drsim.experiments.executors import ExecutorFailed
from drsim.experiments.runner import run_experiment
from drsim.experiments.storage import read_run
from drsim.results.tables import TABLES
from drsim.scenario import load_scenario
from drsim.scenario.document import scenario_hash
from drsim.views.report_folder import write_report_from_folder
from tests.conftest import make_scenario

SWEEP = {"link.upload": ["4Mbit/s", "16Mbit/s"]}


def scenario():
    return make_scenario({"duration": "2d", "site.hosts[0].vms[0].churn.variation": 0.3})


def run(**kw):
    kw.setdefault("executor", ThreadPoolExecutor(1))
    return run_experiment(scenario(), replications=3, sweep=SWEEP, seed=2, batch_size=2, max_in_flight=1, **kw)


def no_temp_files(folder: Path):
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


def stop_at(n):
    def stop(done, total):
        if done >= n:
            raise KeyboardInterrupt

    return stop


def test_kept_runs_are_the_tables_of_drsim_run(tmp_path):
    root = tmp_path / "results"
    folders = []
    with pytest.raises(KeyboardInterrupt):  # stopped once every run is done: the streaming folder as it ran
        run(out=root, keep_runs=True, progress=stop_at(6), on_folder=folders.append)
    (folder,) = folders
    kept = sorted(p.relative_to(folder / "runs").as_posix() for p in (folder / "runs").glob("*/*"))
    assert kept == [f"point-{p}/replication-{k}" for p in (0, 1) for k in (0, 1, 2)]
    no_temp_files(folder)
    exp = run(out=folder, keep_runs=True, resume=True)
    final = exp.folder
    assert final == folder.with_name(folder.name.removesuffix(".incomplete")) and not folder.exists()
    again = exp.simulate(1, 2)
    tables = read_run(final, 1, 2)
    assert list(tables) == list(TABLES)
    for name in TABLES:
        pd.testing.assert_frame_equal(tables[name], again.tables()[name], check_categorical=False)
    assert len(tables["cycles"]) > 100 and len(tables["rpo"]) > 100
    meta = json.loads((final / "runs" / "point-1" / "replication-2" / "metadata.json").read_text())
    assert meta["seed"] == exp.seeds[2] and meta["tables"]["cycles"]["rows"] == len(tables["cycles"])
    assert meta["experiment"] == {"point": 1, "replication": 2, "settings": {"link.upload": "16Mbit/s"}}
    run_scenario = load_scenario(final / "runs" / "point-1" / "replication-2" / "scenario.yaml")
    assert meta["scenario_hash"] == scenario_hash(run_scenario, exp.seeds[2]) == scenario_hash(exp.scenario_for(1),
                                                                                               exp.seeds[2])
    assert (final / "runs" / "point-0" / "replication-0" / "transfers.parquet").is_file()
    assert json.loads((final / "metadata.json").read_text())["runs_kept"]["count"] == 6
    pd.testing.assert_frame_equal(read_run(final, 0, 1)["summary"], exp.simulate(0, 1).summary)
    html, _ = write_report_from_folder(final / "runs" / "point-0" / "replication-1")  # a run folder like any other
    assert html.is_file()
    with pytest.raises(FileNotFoundError, match="kept with keep_runs"):
        read_run(final, 5, 0)


def test_kept_runs_resume(tmp_path):
    ref = run()
    folders = []
    with pytest.raises(KeyboardInterrupt):
        run(out=tmp_path / "results", keep_runs=True, progress=stop_at(6), on_folder=folders.append)
    (folder,) = folders
    (folder / "parts" / "part-1-2.parquet").unlink()  # the last task of point 1: replication 2
    shutil.rmtree(folder / "runs" / "point-1" / "replication-2")
    stale = folder / "runs" / "point-0" / "replication-0" / "cycles.parquet"
    stale.unlink()  # a finished run's folder is not rewritten on resume
    with pytest.raises(ValueError, match="keep_runs"):
        run(out=folder, keep_runs=False, resume=True)
    calls = []
    exp = run(out=folder, keep_runs=True, resume=True, progress=lambda d, t: calls.append(d))
    assert calls == [6]
    pd.testing.assert_frame_equal(exp.tidy, ref.tidy)
    assert (exp.folder / "runs" / "point-1" / "replication-2" / "cycles.parquet").is_file()
    assert not (exp.folder / "runs" / "point-0" / "replication-0" / "cycles.parquet").exists()
    no_temp_files(exp.folder)


def test_keep_runs_needs_a_folder():
    with pytest.raises(ValueError, match="keep_runs needs out"):
        run(keep_runs=True)


class _DiesAfter(Executor):
    """Runs tasks in the caller's thread; from the ``n``-th task on, the "pool" is broken."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def submit(self, fn, *args, **kwargs):
        self.calls += 1
        fut: Future = Future()
        if self.calls >= self.n:
            fut.set_exception(BrokenExecutor("a worker process died"))
        else:
            fut.set_result(fn(*args, **kwargs))
        return fut


def test_a_failing_executor_stops_the_experiment_and_keeps_finished_runs(tmp_path):
    folders = []
    with pytest.raises(ExecutorFailed, match="BrokenExecutor: a worker process died"):
        run(out=tmp_path / "results", executor=_DiesAfter(3), on_folder=folders.append)
    (folder,) = folders
    parts = sorted(p.name for p in (folder / "parts").iterdir())
    assert parts == ["part-0-0.parquet", "part-1-0.parquet"]  # the two tasks that finished; no failures recorded
    exp = run(out=folder, resume=True)
    pd.testing.assert_frame_equal(exp.tidy, run().tidy)
    assert exp.failures.empty
