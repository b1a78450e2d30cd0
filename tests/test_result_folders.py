"""drsim never deletes or moves what it did not write: the output root of run_experiment is the command line's,
resume refuses a folder that holds anything else, and a sweep finishes by renaming its own folder (issue 13,
item 1)."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from drsim.cli import main
from drsim.experiments.runner import run_experiment
from drsim.experiments.sweep_folder import finish_experiment, incomplete_folder
from drsim.scenario.document import scenario_to_dict
from tests.conftest import make_scenario

OFFICE = Path(__file__).resolve().parents[1] / "scenarios" / "essentials-office.yaml"
SWEEP = {"link.upload": ["10Mbit/s", "40Mbit/s"]}


def cli(*args) -> tuple[int, str, str]:
    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1
    except TypeError:
        runner = CliRunner()
    res = runner.invoke(main, [str(a) for a in args])
    assert "Traceback" not in res.stderr
    return res.exit_code, res.stdout, res.stderr


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its contents."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def scenario():
    return make_scenario({"duration": "2d", "site.hosts[0].vms[0].churn.variation": 0.3})


def run(**kw):
    return run_experiment(scenario(), replications=3, sweep=SWEEP, seed=2, batch_size=2, max_in_flight=1,
                          executor=ThreadPoolExecutor(1), **kw)


def stop_at(n):
    def stop(done, total):
        if done >= n:
            raise KeyboardInterrupt

    return stop


@pytest.fixture(scope="module")
def reference():
    return run()


def test_the_issue_resume_keeps_the_users_folder(tmp_path, monkeypatch):
    """The audit's sequence: drsim run --out results, run_experiment(..., out='results'), then drsim sweep
    --resume results. It used to finish into results-complete and delete results/ with the earlier run folder
    and a file the user had put there."""
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("run", OFFICE, "--out", "results", "-q")
    assert code == 0, err
    run_folder = Path(out.strip())
    (tmp_path / "results" / "notes.txt").write_text("mine\n")
    exp = run_experiment(str(OFFICE), replications=2, seed=7, out="results")
    before = snapshot(tmp_path / "results")
    code, out, err = cli("sweep", OFFICE, "-n", 2, "--seed", 7, "--resume", "results")
    assert (tmp_path / "results" / "notes.txt").read_text() == "mine\n" and run_folder.is_dir()
    assert snapshot(tmp_path / "results") == before  # nothing moved, removed or added
    assert not (tmp_path / "results-complete").exists()
    assert code == 2 and "cannot resume results" in err and "holds no interrupted sweep" in err, err
    # out= means what --out means: drsim made its own folder under it, and finished it
    assert exp.folder.parent == Path("results", "essentials-office") and exp.folder.name.startswith("sweep-")
    assert sorted(p.name for p in exp.folder.iterdir()) == ["aggregate.parquet", "metadata.json", "scenario.yaml",
                                                            "tidy.parquet"]
    assert not (tmp_path / "results" / "experiment.json").exists()


def test_resume_refuses_a_folder_that_holds_anything_else(tmp_path, reference):
    """A folder streamed into by drsim before 0.2 (out= was the streaming folder) that the user also keeps other
    things in: resume refuses it with a message and touches nothing; without them, it finishes in place."""
    folders = []
    with pytest.raises(KeyboardInterrupt):
        run(out=tmp_path / "new", progress=stop_at(2), on_folder=folders.append)
    legacy = tmp_path / "results"
    shutil.copytree(folders[0], legacy)  # experiment.json and parts/ as drsim before 0.2 wrote them with out=
    (legacy / "notes.txt").write_text("mine\n")
    (legacy / "tiny" / "20260101-000000-seed1").mkdir(parents=True)
    (legacy / "tiny" / "20260101-000000-seed1" / "summary.parquet").write_bytes(b"a run of mine")
    (legacy / "parts" / "mine.csv").write_text("1,2\n")
    before = snapshot(legacy)
    with pytest.raises(ValueError, match=r"will not stream an experiment into .*results: it holds what drsim did "
                                         r"not write there \(notes.txt, parts/mine.csv, tiny/\)"):
        run(out=legacy, resume=True)
    assert snapshot(legacy) == before
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_to_dict(scenario())))
    code, out, err = cli("sweep", path, "-n", 3, "--set", "link.upload=10Mbit/s,40Mbit/s", "--seed", 2,
                         "--workers", 1, "--batch-size", 2, "--resume", legacy)
    assert code == 2 and "will not stream an experiment into" in err and "Move those elsewhere" in err
    assert snapshot(legacy) == before and not (tmp_path / "results-complete").exists()
    for mine in ("notes.txt", "tiny", "parts/mine.csv"):
        shutil.move(legacy / mine, tmp_path / Path(mine).name)
    exp = run(out=legacy, resume=True)
    assert exp.folder == legacy  # finished in place: drsim renames only folders it named itself
    assert sorted(p.name for p in legacy.iterdir()) == ["aggregate.parquet", "metadata.json", "scenario.yaml",
                                                        "tidy.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(legacy / "tidy.parquet"), reference.tidy)


def test_a_file_put_into_the_streaming_folder_stops_the_finish_and_is_kept(tmp_path, reference):
    folders = []

    def meddle(done, total):
        if done == total:
            (folders[0] / "notes.txt").write_text("mine\n")

    with pytest.raises(ValueError, match=r"will not finish the experiment in .*: it holds what drsim did not write "
                                         r"there \(notes.txt\)"):
        run(out=tmp_path, progress=meddle, on_folder=folders.append)
    (folder,) = folders
    assert (folder / "notes.txt").read_text() == "mine\n" and (folder / "experiment.json").is_file()
    assert len(list((folder / "parts").glob("part-*"))) == 4 and folder.name.endswith(".incomplete")
    (folder / "notes.txt").unlink()
    calls = []
    exp = run(out=folder, resume=True, progress=lambda d, t: calls.append(d))
    assert calls == [] and not folder.exists()  # nothing left to run: finished at once
    pd.testing.assert_frame_equal(pd.read_parquet(exp.folder / "tidy.parquet"), reference.tidy)


def test_run_experiment_out_and_drsim_sweep_out_write_the_same_folder(tmp_path, reference):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_to_dict(scenario())))
    code, out, err = cli("sweep", path, "-n", 3, "--set", "link.upload=10Mbit/s,40Mbit/s", "--seed", 2,
                         "--workers", 1, "--batch-size", 2, "--out", tmp_path / "cli", "-q")
    assert code == 0, err
    exp = run(out=tmp_path / "api")
    assert finish_experiment(exp, exp.folder.with_name(exp.folder.name + ".incomplete")) == exp.folder  # as before
    by_cli = Path(out.strip())
    assert by_cli.relative_to(tmp_path / "cli").parent == exp.folder.relative_to(tmp_path / "api").parent == Path(
        "tiny")
    assert sorted(p.name for p in by_cli.iterdir()) == sorted(p.name for p in exp.folder.iterdir())
    pd.testing.assert_frame_equal(pd.read_parquet(by_cli / "tidy.parquet"), pd.read_parquet(exp.folder /
                                                                                              "tidy.parquet"))


class _Frozen:
    """A datetime whose now() is always the same second."""

    @staticmethod
    def now(tz=None):
        from datetime import datetime

        return datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz)


def test_two_sweeps_started_in_the_same_second_get_two_folders(tmp_path, monkeypatch, reference):
    import drsim.experiments.sweep_folder

    monkeypatch.setattr(drsim.experiments.sweep_folder, "datetime", _Frozen)
    a, b = incomplete_folder(tmp_path, "tiny"), incomplete_folder(tmp_path, "tiny")
    assert a != b and a.is_dir() and b.is_dir()
    assert [a.name, b.name] == ["sweep-20260102-030405.incomplete", "sweep-20260102-030405-2.incomplete"]
    # two experiments streaming at once into the same root, in the same second
    first, second = [], []

    def start_second(done, total):
        if done == 2 and not second:
            with pytest.raises(KeyboardInterrupt):
                run(out=tmp_path / "r", progress=stop_at(2), on_folder=second.append)

    exp = run(out=tmp_path / "r", progress=start_second, on_folder=first.append)
    assert first[0] != second[0] and not first[0].exists() and second[0].is_dir()
    again = run(out=second[0], resume=True)
    assert {exp.folder.name, again.folder.name} == {"sweep-20260102-030405", "sweep-20260102-030405-2"}
    for folder in (exp.folder, again.folder):
        pd.testing.assert_frame_equal(pd.read_parquet(folder / "tidy.parquet"), reference.tidy)


def test_a_running_experiment_is_not_resumed_twice(tmp_path):
    from drsim.results.ownership import lock

    folders = []
    with pytest.raises(KeyboardInterrupt):
        run(out=tmp_path, progress=stop_at(2), on_folder=folders.append)
    (folder,) = folders
    with open(folder / "experiment.json", "rb") as held:  # as a running drsim holds it
        assert lock(held)
        with pytest.raises(ValueError, match="another drsim process is running this experiment"):
            run(out=folder, resume=True)
    assert len(list((folder / "parts").glob("part-*"))) == 1
    # left-overs of a process killed while it wrote: removed on resume
    (folder / "parts" / ".part-1-0.parquet.99999.tmp").write_bytes(b"half")
    half = folder / "runs" / "point-0" / ".replication-1-abcd1234"
    half.mkdir(parents=True)
    (half / "cycles.parquet").write_bytes(b"half")
    exp = run(out=folder, resume=True)
    assert not folder.exists() and json.loads((exp.folder / "metadata.json").read_text())["runs"] == 6
    assert not [p for p in exp.folder.rglob("*") if p.name.startswith(".")]


def test_resume_computes_again_the_runs_of_a_part_it_cannot_read(tmp_path, reference):
    """A part truncated (drsim does not fsync: a power cut may leave one empty) is run again, not an error."""
    folders = []
    with pytest.raises(KeyboardInterrupt):
        run(out=tmp_path, progress=stop_at(6), on_folder=folders.append)
    (folder,) = folders
    part = folder / "parts" / "part-1-0.parquet"
    part.write_bytes(part.read_bytes()[:100])
    calls = []
    exp = run(out=folder, resume=True, progress=lambda d, t: calls.append(d))
    assert calls == [6]  # the two runs of that part (6 of 6 once they are done again)
    pd.testing.assert_frame_equal(exp.tidy, reference.tidy)
    assert not (exp.folder / "parts").exists()


def test_a_pool_kept_across_experiments_does_not_hold_the_folder(tmp_path, reference):
    """In a notebook: an experiment interrupted, then resumed on the same process pool. Its workers were forked
    while the experiment held its folder's lock; they must not keep holding it."""
    from drsim.experiments.executors import process_pool

    pool = process_pool(1)
    try:
        folders = []
        with pytest.raises(KeyboardInterrupt):
            run_experiment(scenario(), replications=3, sweep=SWEEP, seed=2, batch_size=2, max_in_flight=1,
                           executor=pool, out=tmp_path, progress=stop_at(2), on_folder=folders.append)
        exp = run_experiment(scenario(), replications=3, sweep=SWEEP, seed=2, batch_size=2, max_in_flight=1,
                             executor=pool, out=folders[0], resume=True)
    finally:
        pool.shutdown(cancel_futures=True)
    pd.testing.assert_frame_equal(exp.tidy, reference.tidy)


def test_the_streaming_pattern_of_drsim_before_0_2_still_works(tmp_path, reference):
    """incomplete_folder, run_experiment(out=that folder), finish_experiment: as scripts wrote it before 0.2."""
    folder = incomplete_folder(tmp_path, "tiny")
    exp = run(out=folder)
    final = finish_experiment(exp, folder)
    assert final == exp.folder == folder.with_name(folder.name.removesuffix(".incomplete")) and not folder.exists()
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == [final.name]
    pd.testing.assert_frame_equal(pd.read_parquet(final / "tidy.parquet"), reference.tidy)
