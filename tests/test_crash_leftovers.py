"""What a killed drsim leaves, and getting back from it (issue 13, item 6): pool workers exit when their parent
dies, a sweep killed at any point of finishing resumes to a whole folder with its kept runs, and what killed
runs leave is listed and removed by ``drsim cleanup`` (drsim's own only).

The kills are real: subprocesses ended with SIGKILL or SIGTERM, or ending themselves with ``os._exit`` at a
chosen step, with every wait bounded."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import drsim.experiments.runner
from drsim.cli import main
from drsim.experiments.leftovers import INTERRUPTED, STREAM_FILES, UNFINISHED, find_leftovers
from drsim.experiments.runner import run_experiment
from drsim.results.ownership import lock
from drsim.scenario.document import scenario_to_dict
from tests.conftest import make_scenario

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and sends POSIX signals")

SWEEP = {"link.upload": ["4Mbit/s", "16Mbit/s"]}
ROOT = Path(__file__).resolve().parents[1]


def cli(*args) -> tuple[int, str, str]:
    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1
    except TypeError:
        runner = CliRunner()
    res = runner.invoke(main, [str(a) for a in args])
    assert "Traceback" not in res.stderr, res.stderr
    return res.exit_code, res.stdout, res.stderr


def scenario():
    return make_scenario({"duration": "2d", "site.hosts[0].vms[0].churn.variation": 0.3})


@pytest.fixture(scope="module")
def reference():
    return run_experiment(scenario(), replications=3, sweep=SWEEP, seed=2, executor=ThreadPoolExecutor(1))


@pytest.fixture
def path(tmp_path) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario_to_dict(scenario())))
    return p


def sweep_args(path: Path, *more) -> list:
    return ["sweep", path, "-n", 3, "--set", "link.upload=4Mbit/s,16Mbit/s", "--seed", 2, "--workers", 1,
            "--batch-size", 2, "--keep-runs", "-q", *more]


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie waiting to be reaped has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def wait_gone(pids, seconds: float) -> list[int]:
    """Wait up to ``seconds`` for every process of ``pids`` to exit; the ones still alive."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if not gone(p)]


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def kill_all(pids) -> None:
    for pid in pids:  # only the test's own subprocesses, by id
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


POOL = textwrap.dedent("""
    import os, sys, time
    from drsim.experiments.executors import process_pool

    pool = process_pool(2)
    seen = set()
    while len(seen) < 2:  # both workers started (their initializer ran)
        seen.update(f.result(timeout=60) for f in [pool.submit(os.getpid) for _ in range(4)])
        seen &= set(pool._processes)
    busy = [pool.submit(time.sleep, 300) for _ in range(2)]
    print(*sorted(seen), flush=True)
    time.sleep(300)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_pool_workers_exit_when_their_parent_is_killed(sig):
    """Both workers busy with a long task, the parent killed: they used to stay for ever (over 90 s measured)."""
    parent = subprocess.Popen([sys.executable, "-c", POOL], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    workers: list[int] = []
    try:
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(not gone(p) for p in workers)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        assert wait_gone(workers, 10) == []  # the watch polls every 0.2 s
    finally:
        parent.kill()
        kill_all(workers)
        parent.wait(timeout=30)
        parent.stdout.close()


def test_a_killed_sweep_leaves_no_workers_and_resumes(path, tmp_path, reference):
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from drsim.cli import main; main()", "sweep", str(path), "-n", "20", "--set",
           "link.upload=4Mbit/s,16Mbit/s", "--seed", "2", "--workers", "2", "--batch-size", "1", "-q"]
    proc = subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(out.glob("*/*.incomplete/parts/part-*"))) < 2:
            time.sleep(0.05)
        workers = children(proc.pid)
        assert proc.poll() is None and len(workers) >= 2, proc.communicate()
        proc.kill()
        proc.communicate(timeout=30)
        assert wait_gone(workers, 10) == []
    finally:
        proc.kill()
        kill_all(workers)
    (folder,) = out.glob("*/*.incomplete")
    [item] = find_leftovers(out)
    assert (item.path, item.kind, item.in_use, item.own) == (folder, INTERRUPTED, False, True)
    assert f"--resume {folder}" in item.detail and "of 2 points x 20 replications" in item.detail
    code, stdout, err = cli(*cmd[3:], "--resume", folder)
    assert code == 0, err
    tidy = pd.read_parquet(Path(stdout.strip()) / "tidy.parquet")
    assert sorted(set(tidy["replication"])) == list(range(20))


CRASH = textwrap.dedent("""
    import os, sys
    from drsim.cli import main

    n, when = int(sys.argv[1]), sys.argv[2]
    calls = 0

    def crashing(real):
        def call(*args, **kwargs):
            global calls
            calls += 1
            if calls == n and when == "before":
                os._exit(70)
            result = real(*args, **kwargs)
            if calls == n and when == "after":
                os._exit(70)
            return result
        return call

    os.rename, os.replace = crashing(os.rename), crashing(os.replace)
    main(sys.argv[3:])
""")


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory, reference):
    """A sweep with kept runs whose every run is done, stopped just before it finished (the CLI's folder)."""
    root = tmp_path_factory.mktemp("unfinished")
    p = root / "s.yaml"
    p.write_text(yaml.safe_dump(scenario_to_dict(scenario())))
    real = drsim.experiments.runner.run_experiment

    def stopped(*a, **kw):
        def stop(done, total):
            if done == total:
                raise KeyboardInterrupt

        return real(*a, **{**kw, "progress": stop})

    with pytest.MonkeyPatch.context() as m:
        m.setattr(drsim.experiments.runner, "run_experiment", stopped)
        code, out, err = cli(*sweep_args(p, "--out", root / "out"))
    assert code == 130, err
    (folder,) = (root / "out").glob("*/*.incomplete")
    assert len(list(folder.glob("runs/point-*/replication-*"))) == 6
    return p, folder


def renames_in_finishing(path: Path, folder: Path, tmp: Path) -> int:
    """How many renames finishing ``folder`` (a copy of it) takes."""
    copy = tmp / "count" / "tiny" / folder.name
    shutil.copytree(folder, copy)
    calls = []
    real_rename, real_replace = os.rename, os.replace
    with pytest.MonkeyPatch.context() as m:
        m.setattr(os, "rename", lambda *a, **k: calls.append(1) or real_rename(*a, **k))
        m.setattr(os, "replace", lambda *a, **k: calls.append(1) or real_replace(*a, **k))
        code, out, err = cli(*sweep_args(path, "--resume", copy))
    assert code == 0, err
    return len(calls)


def check_recovered(root: Path, reference) -> Path:
    """Under ``root``: one finished sweep folder with every kept run, its tables those of the reference."""
    (final,) = [f for f in root.iterdir() if not f.name.startswith(".") and not f.name.endswith(".incomplete")]
    assert not list(root.glob(".*")), "a hidden temporary folder was left"
    meta = json.loads((final / "metadata.json").read_text())
    assert meta["keep_runs"] is True and meta["runs_kept"]["count"] == 6
    assert sorted(p.relative_to(final).as_posix() for p in final.glob("runs/*/*")) == [
        f"runs/point-{p}/replication-{k}" for p in (0, 1) for k in (0, 1, 2)]
    assert all((r / "cycles.parquet").is_file() for r in final.glob("runs/*/*"))
    pd.testing.assert_frame_equal(pd.read_parquet(final / "tidy.parquet"), reference.tidy)
    return final


def test_a_sweep_killed_at_any_step_of_finishing_resumes_to_a_whole_folder(unfinished, tmp_path, reference):
    """Killed before or after each rename while it finishes, then resumed: one whole folder with every kept run.
    drsim before 0.2 moved runs/ into a hidden folder first: killed there, the resumed sweep claimed keep_runs
    with no runs/ (and the runs stayed stranded in .incomplete-*)."""
    path, folder = unfinished
    n = renames_in_finishing(path, folder, tmp_path)
    assert n >= 2
    for k, when in [*((k, "before") for k in range(1, n + 1)), (n, "after")]:
        root = tmp_path / f"{when}-{k}" / "tiny"
        copy = root / folder.name
        shutil.copytree(folder, copy)
        crashed = subprocess.run([sys.executable, "-c", CRASH, str(k), when, *map(str, sweep_args(path, "--resume",
                                                                                                     copy))],
                                 capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert crashed.returncode == 70, crashed.stderr
        if copy.exists():  # not yet renamed: resume finishes it
            code, out, err = cli(*sweep_args(path, "--resume", copy))
            assert code == 0, (k, when, err)
        final = check_recovered(root, reference)
        left = find_leftovers(root.parent)
        if copy.exists() or not left:
            assert left == []
        else:  # killed after the rename, before the streaming files were removed: listed, and removable
            assert [(i.path, i.kind, i.removable) for i in left] == [(final, STREAM_FILES, True)]
            code, out, err = cli("cleanup", root.parent, "--remove", "--yes")
            assert code == 0 and f"removed: {final}" in out
        assert sorted(p.name for p in final.iterdir()) == ["aggregate.parquet", "metadata.json", "runs",
                                                           "scenario.yaml", "tidy.parquet"]


def test_runs_stranded_by_an_earlier_crash_are_computed_again(unfinished, tmp_path, reference):
    """The state drsim before 0.2 left when killed while finishing: the streaming folder without runs/ (moved into
    a hidden .incomplete-* folder). Resuming used to finish a keep_runs sweep with no kept runs."""
    path, folder = unfinished
    root = tmp_path / "out" / "tiny"
    copy = root / folder.name
    shutil.copytree(folder, copy)
    shutil.move(copy / "runs", root / ".incomplete-k2j4x9wq" / "runs")
    calls = []
    real = drsim.experiments.runner.run_experiment
    with pytest.MonkeyPatch.context() as m:
        m.setattr(drsim.experiments.runner, "run_experiment",
                  lambda *a, **kw: real(*a, **{**kw, "progress": lambda d, t: calls.append(d)}))
        code, out, err = cli(*sweep_args(path, "--resume", copy))
    assert code == 0, err
    assert calls[-1] == 6 and len(calls) == 4  # every run again (their summaries were kept; the tables were not)
    (stranded,) = find_leftovers(tmp_path / "out")
    assert stranded.kind == UNFINISHED and stranded.removable and "kept tables of 6 runs" in stranded.detail
    shutil.rmtree(stranded.path)
    check_recovered(root, reference)


KILLED_WRITE = textwrap.dedent("""
    import os, sys
    import drsim.results.folders as folders
    from drsim.cli import main

    real = folders.fill_run_folder

    def killed(folder, *args, **kwargs):
        real(folder, *args, **kwargs)
        os._exit(70)  # killed while the run folder is written

    folders.fill_run_folder = killed
    main(sys.argv[1:])
""")


def test_cleanup_lists_and_removes_only_drsims_own_leftovers(path, tmp_path):
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, "run", str(path), "--out", str(out), "-q"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert killed.returncode == 70, killed.stderr
    (half,) = (out / "tiny").glob(".incomplete-*")
    assert (half / "summary.parquet").is_file() and not list((out / "tiny").glob("2*"))  # no folder looks complete
    mine = out / "tiny" / ".incomplete-notes"  # not drsim's: no marker, a file drsim never writes
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    real = drsim.experiments.runner.run_experiment
    with pytest.MonkeyPatch.context() as m:  # an interrupted sweep
        m.setattr(drsim.experiments.runner, "run_experiment",
                  lambda *a, **kw: real(*a, **{**kw, "progress": lambda d, t: (_ for _ in ()).throw(
                      KeyboardInterrupt)}))
        assert cli(*sweep_args(path, "--out", out))[0] == 130
    (stream,) = (out / "tiny").glob("sweep-*.incomplete")
    empty = out / "tiny" / "sweep-20260101-000000.incomplete"  # killed before it wrote experiment.json
    (empty / "parts").mkdir(parents=True)
    items = {i.path: i for i in find_leftovers(out)}
    assert set(items) == {half, mine, stream, empty}
    assert (items[empty].kind, items[empty].removable) == (UNFINISHED, True)
    shutil.rmtree(empty)
    items = {i.path: i for i in find_leftovers(out)}
    assert (items[half].kind, items[half].own, items[half].in_use) == (UNFINISHED, True, False)
    assert "becomes " in items[half].detail and "-seed1; started " in items[half].detail
    assert (items[mine].kind, items[mine].own) == (UNFINISHED, False)
    assert (items[stream].kind, items[stream].removable) == (INTERRUPTED, True)

    # drsim run and drsim sweep mention them
    code, stdout, err = cli("run", path, "--out", out)
    assert code == 0 and f"note: {out} holds 3 folders left by interrupted or killed runs; see drsim cleanup {out}" \
        in err
    code, stdout, err = cli("cleanup", out)
    assert code == 0 and str(half) in stdout and "not recognised as drsim's" in stdout
    assert f"--resume {stream}" in stdout and "3 found, 2 removable" in stdout
    with open(stream / "experiment.json", "rb") as held:  # a running sweep holds its folder: never removed
        assert lock(held)
        res = CliRunner().invoke(main, ["cleanup", str(out), "--remove"], input="n\n")
        assert res.exit_code == 1 and half.is_dir()  # answered no
        code, stdout, err = cli("cleanup", out, "--remove", "--yes")
        assert code == 0 and f"removed: {half}" in stdout and not half.exists() and stream.is_dir()
        assert "in use by a running drsim" in stdout
    assert (mine / "notes.txt").read_text() == "mine\n"
    code, stdout, err = cli("cleanup", out, "--remove", "--yes")
    assert code == 0 and not stream.exists() and (mine / "notes.txt").is_file()
    assert [p.name for p in (out / "tiny").iterdir() if p.name.startswith(".")] == [mine.name]
