"""Streaming an experiment to disk and resuming an interrupted one."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from drsim.cli import main
from drsim.experiments.runner import run_experiment
from drsim.scenario.document import scenario_to_dict
from tests.conftest import make_scenario

SWEEP = {"link.upload": ["10Mbit/s", "40Mbit/s"]}


def scenario():
    return make_scenario({"duration": "5d", "site.hosts[0].vms[0].churn.variation": 0.3})


def run(**kw):
    kw.setdefault("replications", 5)
    kw.setdefault("sweep", SWEEP)
    return run_experiment(scenario(), executor=ThreadPoolExecutor(1), seed=3, batch_size=2, max_in_flight=1, **kw)


@pytest.fixture(scope="module")
def reference():
    return run()


def same(a, b):
    pd.testing.assert_frame_equal(a.tidy, b.tidy)
    pd.testing.assert_frame_equal(a.aggregate, b.aggregate)
    pd.testing.assert_frame_equal(a.failures, b.failures)


def no_temp_files(folder: Path):
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def stop_at(n):
    """A progress callback that interrupts the experiment once ``n`` runs are done (their parts written)."""

    def stop(done, total):
        if done >= n:
            raise KeyboardInterrupt

    return stop


def interrupted(root, n, **kw):
    """Run into the output root ``root``, interrupted after ``n`` runs; the streaming folder."""
    folders = []
    with pytest.raises(KeyboardInterrupt):
        run(out=root, progress=stop_at(n), on_folder=folders.append, **kw)
    (folder,) = folders
    assert folder.parent == root / scenario().name and folder.name.endswith(".incomplete") and folder.is_dir()
    return folder


def test_out_is_a_root_under_which_the_experiment_streams_then_finishes(tmp_path, reference):
    root = tmp_path / "results"
    seen = {}

    def look(done, total):  # called as each task's part is written: the streaming folder as it runs
        (folder,) = (root / scenario().name).iterdir()
        seen[done] = (folder, json.loads((folder / "experiment.json").read_text()),
                      sorted(p.name for p in (folder / "parts").iterdir()))

    exp = run(out=root, progress=look)
    same(exp, reference)
    folder, record, parts = seen[10]
    assert folder.name.startswith("sweep-") and folder.name.endswith(".incomplete")
    assert record["replications"] == 5 and record["experiment_seed"] == 3
    assert record["sweep"] == SWEEP and len(record["points"]) == 2 and record["run_seeds"] == reference.seeds
    assert record["base_scenario"]["name"] == reference.scenario.name and record["drsim_version"]
    assert parts == sorted(f"part-{p}-{r}.parquet" for p in (0, 1) for r in (0, 2, 4))
    # finished: the streaming folder renamed, its streaming files gone, nothing else under the root
    assert exp.folder == folder.with_name(folder.name.removesuffix(".incomplete")) and not folder.exists()
    assert sorted(p.name for p in exp.folder.iterdir()) == ["aggregate.parquet", "metadata.json", "scenario.yaml",
                                                            "tidy.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(exp.folder / "tidy.parquet"), reference.tidy)
    assert [p for p in root.rglob("*") if p.is_dir()] == [root / scenario().name, exp.folder]
    again = run(out=root)  # a second experiment: a folder of its own, the first one untouched
    assert again.folder != exp.folder and again.folder.parent == exp.folder.parent
    pd.testing.assert_frame_equal(pd.read_parquet(exp.folder / "tidy.parquet"), reference.tidy)


def test_interrupted_run_resumes_to_identical_tables(tmp_path, reference):
    root = tmp_path / "results"
    folder = interrupted(root, 4)
    kept = sorted(p.name for p in (folder / "parts").iterdir())
    assert 0 < len(kept) < 6
    no_temp_files(folder)
    seen = []
    exp = run(out=folder, resume=True, progress=lambda d, t: seen.append((d, t)))
    same(exp, reference)
    assert seen[0][0] > 4 and seen[-1] == (10, 10)  # only the missing runs ran
    assert exp.folder == folder.with_name(folder.name.removesuffix(".incomplete")) and not folder.exists()
    no_temp_files(root)


def test_resume_under_the_root_finds_the_interrupted_experiment(tmp_path, reference):
    """resume=True with the output root: the latest interrupted sweep of the same experiment there."""
    root = tmp_path / "results"
    other = interrupted(root, 2, replications=2)  # a different experiment: not this one
    folder = interrupted(root, 4)
    seen = []
    exp = run(out=root, resume=True, progress=lambda d, t: seen.append(d))
    same(exp, reference)
    assert seen[0] > 4 and not folder.exists() and other.is_dir()
    with pytest.raises(ValueError, match=r"holds no interrupted sweep|none of the 1 interrupted sweeps"):
        run(out=root, resume=True)


def test_resume_after_deleting_parts(tmp_path, reference):
    folder = interrupted(tmp_path / "results", 10)  # every part written, not yet finished
    for name in ("part-1-2.parquet", "part-0-4.parquet"):
        (folder / "parts" / name).unlink()
    calls = []
    exp = run(out=folder, resume=True, progress=lambda d, t: calls.append(d))
    same(exp, reference)
    assert calls == [8, 10]  # two tasks of 2 and 1 run


def test_resume_refuses_a_different_experiment(tmp_path):
    folder = interrupted(tmp_path / "results", 2, replications=2)
    with pytest.raises(ValueError, match="the sweep"):
        run(out=folder, replications=2, sweep={"link.upload": ["10Mbit/s", "20Mbit/s"]}, resume=True)
    with pytest.raises(ValueError, match="the replications"):
        run(out=folder, replications=3, resume=True)
    with pytest.raises(ValueError, match="the scenario"):
        run_experiment(make_scenario({"duration": "6d"}), replications=2, sweep=SWEEP, seed=3, out=folder,
                       resume=True, executor=ThreadPoolExecutor(1))
    with pytest.raises(ValueError, match="no experiment.json"):
        run(out=tmp_path / "empty", resume=True)
    assert len(list((folder / "parts").iterdir())) == 1  # untouched


def test_cli_sweep_ctrl_c_then_resume(tmp_path, reference, monkeypatch):
    import drsim.experiments.runner

    real = drsim.experiments.runner.run_experiment

    def interrupted(*a, **kw):
        def stop(done, total):
            if done >= 4:
                raise KeyboardInterrupt

        return real(*a, **{**kw, "progress": stop})

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_to_dict(scenario())))
    args = ["sweep", str(path), "-n", "5", "--set", "link.upload=10Mbit/s,40Mbit/s", "--seed", "3", "--workers", "1",
            "--batch-size", "2", "-q", "--out", str(tmp_path / "r")]
    with monkeypatch.context() as m:
        m.setattr(drsim.experiments.runner, "run_experiment", interrupted)
        res = CliRunner().invoke(main, args)
    assert res.exit_code == 130 and "--resume" in res.output
    (folder,) = (tmp_path / "r" / scenario().name).iterdir()
    assert folder.name.startswith("sweep-") and folder.name.endswith(".incomplete")
    assert (folder / "experiment.json").exists() and len(list((folder / "parts").glob("part-*.parquet"))) == 2
    no_temp_files(folder)

    res = CliRunner().invoke(main, [*args[:3], "6", *args[4:], "--resume", str(folder)])
    assert res.exit_code == 2 and "different experiment" in res.output and folder.exists()

    res = CliRunner().invoke(main, [*args, "--resume", str(folder)])
    assert res.exit_code == 0, res.output
    final = Path(res.output.strip().splitlines()[-1])
    assert final == folder.with_name(folder.name.removesuffix(".incomplete")) and not folder.exists()
    assert sorted(p.name for p in final.iterdir()) == ["aggregate.parquet", "metadata.json", "scenario.yaml",
                                                       "tidy.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(final / "tidy.parquet"), reference.tidy)
    assert "--resume" in CliRunner().invoke(main, ["sweep", "--help"]).output


def _interrupted_folder(tmp_path, monkeypatch, args):
    """Run the CLI ``args`` and stop it (Ctrl-C) after 4 runs; the sweep-<time>.incomplete folder it leaves."""
    import drsim.experiments.runner

    real = drsim.experiments.runner.run_experiment

    def interrupted(*a, **kw):
        def stop(done, total):
            if done >= 4:
                raise KeyboardInterrupt

        return real(*a, **{**kw, "progress": stop})

    with monkeypatch.context() as m:
        m.setattr(drsim.experiments.runner, "run_experiment", interrupted)
        res = CliRunner().invoke(main, args)
    assert res.exit_code == 130
    (folder,) = (tmp_path / "r" / scenario().name).iterdir()
    assert f"resume with: drsim sweep --resume {folder}" in res.output
    return folder


def test_cli_resume_folder_alone_resumes_and_says_how_many_runs_it_reused(tmp_path, reference, monkeypatch):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_to_dict(scenario())))
    args = ["sweep", str(path), "-n", "5", "--set", "link.upload=10Mbit/s,40Mbit/s", "--seed", "3", "--workers", "1",
            "--batch-size", "2", "--out", str(tmp_path / "r")]
    folder = _interrupted_folder(tmp_path, monkeypatch, args)
    path.unlink()  # the folder alone is enough: it records the scenario and the settings
    res = CliRunner().invoke(main, ["sweep", "--resume", str(folder), "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert f"resumed {folder}: reused 4 finished runs of 10, ran 6\n" in res.output
    final = folder.with_name(folder.name.removesuffix(".incomplete"))
    assert not folder.exists()
    pd.testing.assert_frame_equal(pd.read_parquet(final / "tidy.parquet"), reference.tidy)


def test_cli_resume_folder_alone_prices_as_the_interrupted_sweep_did(tmp_path, monkeypatch):
    """--prices FILE is recorded in the folder's scenario: the resume alone (the file gone) prices the missing
    runs with it, so every run of the sweep has the file's licence."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_to_dict(scenario())))
    sheet = tmp_path / "mine.yaml"
    sheet.write_text("licence: {per_vm_month: 40.0, source: our quote}\n")
    args = ["sweep", str(path), "-n", "5", "--set", "link.upload=10Mbit/s,40Mbit/s", "--seed", "3", "--workers", "1",
            "--batch-size", "2", "--out", str(tmp_path / "r"), "--prices", str(sheet)]
    folder = _interrupted_folder(tmp_path, monkeypatch, args)
    # a file given again to the folder alone is refused: the folder's recorded prices cannot be unmixed from it
    again = CliRunner().invoke(main, ["sweep", "--resume", str(folder), "--prices", str(sheet), "--workers", "1"])
    assert again.exit_code == 2 and "error: --prices: the folder records the prices its sweep ran with" in again.output
    # with the scenario, a changed file is a different experiment: refused, the difference named
    sheet.write_text("licence: {per_vm_month: 99.0, source: our quote}\n")
    changed = CliRunner().invoke(main, ["sweep", str(path), "-n", "5", "--set", "link.upload=10Mbit/s,40Mbit/s",
                                        "--seed", "3", "--workers", "1", "--batch-size", "2", "--resume", str(folder),
                                        "--prices", str(sheet)])
    assert changed.exit_code == 2 and "price sheets" in changed.output, changed.output
    path.unlink()
    sheet.unlink()
    res = CliRunner().invoke(main, ["sweep", "--resume", str(folder), "--workers", "1"])
    assert res.exit_code == 0, res.output
    tidy = pd.read_parquet(folder.with_name(folder.name.removesuffix(".incomplete")) / "tidy.parquet")
    licence = tidy.loc[tidy["vm"] == "(site)", "cost_licence_per_year"]
    assert len(licence) == 10 and np.allclose(licence, 12 * 40 * (365 - 31) / 365)


def test_cli_resume_lists_what_differs_plainly(tmp_path, monkeypatch):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_to_dict(scenario())))
    args = ["sweep", str(path), "-n", "5", "--set", "link.upload=10Mbit/s,40Mbit/s", "--seed", "3", "--workers", "1",
            "--batch-size", "2", "--out", str(tmp_path / "r")]
    folder = _interrupted_folder(tmp_path, monkeypatch, args)
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(scenario_to_dict(make_scenario({"duration": "4d"}))))
    res = CliRunner().invoke(main, ["sweep", str(other), "-n", "6", "--set", "link.upload=10Mbit/s", "--seed", "3",
                                    "--resume", str(folder)])
    assert res.exit_code == 2 and folder.exists()
    lines = res.output.splitlines()
    assert lines[0] == f"error: cannot resume {folder}: it holds a different experiment; what differs:"
    assert lines[1].startswith("  - the scenario: not the one the folder's sweep ran (scenario hash ")
    assert lines[2:] == ["  - --set (the grid): link.upload=10Mbit/s,40Mbit/s in the folder, link.upload=10Mbit/s "
                         "now",
                         "  - --replications: 5 in the folder, 6 now",
                         f"'drsim sweep --resume {folder}' alone resumes the experiment it holds"]
    res = CliRunner().invoke(main, ["sweep", "--resume", str(folder), "-n", "6"])  # an option against the folder
    assert res.exit_code == 2 and "  - --replications: 5 in the folder, 6 now" in res.output
    res = CliRunner().invoke(main, ["sweep"])
    assert res.exit_code == 2 and "error: give SCENARIO (or --resume FOLDER alone" in res.output
    res = CliRunner().invoke(main, ["sweep", "--resume", str(tmp_path)])
    assert res.exit_code == 2 and "it has no experiment.json" in res.output


def test_the_recorded_request_gives_back_the_same_experiment(tmp_path):
    """Grid, hypercube, precision: what experiment.json records reads back as the experiment it describes."""
    from drsim.experiments.resuming import recorded_request, request_differences
    from drsim.experiments.settings import experiment_settings

    folder = interrupted(tmp_path / "x", 1, replications=2, sweep={"policy.name": ["manual", "automatic"]},
                         lhs={"link.upload": "8Mbit/s..40Mbit/s:log", "replication.interval": ["30s", "5m"]},
                         samples=2, precision="rpo_p95_s=1h", max_replications=3)
    s, kw = recorded_request(folder)
    assert kw["samples"] == 2 and kw["seed"] == 3 and kw["max_replications"] == 3
    assert request_differences(folder, s, experiment_settings(s, **kw)) == []
    assert request_differences(folder, s, experiment_settings(s, **{**kw, "samples": 3})) == [
        "--samples: 2 in the folder, 3 now"]
