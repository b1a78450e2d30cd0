"""The ``drsim`` command line: validate, run, schema; exit codes and messages; never a traceback."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result

from drsim import __version__
from drsim.cli import main
from drsim.results.tables import TABLES
from drsim.scenario.document import scenario_hash
from drsim.scenario.loading import load_scenario
from drsim.scenario.schema import scenario_schema

BUNDLED = Path(__file__).resolve().parents[1] / "scenarios" / "essentials-office.yaml"


def tiny_scenario(**top: Any) -> dict[str, Any]:
    """A one-VM scenario that simulates in a few milliseconds."""
    data: dict[str, Any] = {
        "name": "tiny",
        "duration": "6h",
        "site": {"hosts": [{"name": "h1", "vms": [{"name": "vm1", "disks": ["1GiB"], "churn": {"rate": "100kB/s"}}]}]},
        "link": {"upload": "10Mbit/s", "download": "50Mbit/s"},
    }
    data.update(top)
    return data


def write(tmp_path: Path, data: dict[str, Any], name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # click 8.1: keep stderr apart
    except TypeError:
        return CliRunner()  # click >= 8.2: stderr is always apart


def invoke(*args: str | Path) -> Result:
    return runner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def assert_clean_exit(result: Result, code: int) -> None:
    """Exit ``code`` through sys.exit / click, not an uncaught exception, and no traceback text."""
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    if code:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    else:
        assert result.exception is None
    assert "Traceback" not in result.stdout + result.stderr


def run_folders(out: Path, name: str = "tiny") -> list[Path]:
    parent = out / name
    return sorted(p for p in parent.iterdir()) if parent.exists() else []


# ----------------------------------------------------------------------------------------------------
# validate


def test_validate_ok(tmp_path):
    path = write(tmp_path, tiny_scenario())
    result = invoke("validate", path)
    assert_clean_exit(result, 0)
    assert result.stdout == f"ok: {path} (tiny: 1 VM on 1 host)\n"
    assert result.stderr == ""


def test_validate_bundled_scenario():
    result = invoke("validate", BUNDLED)
    assert_clean_exit(result, 0)
    assert result.stdout == f"ok: {BUNDLED} (essentials-office: 5 VMs on 2 hosts)\n"
    assert result.stderr == ""


def test_validate_every_bundled_scenario():
    files = sorted(BUNDLED.parent.glob("*.yaml"))
    assert BUNDLED in files
    result = invoke("validate", *files)
    assert_clean_exit(result, 0)
    lines = result.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines] == [f"ok: {f}" for f in files]
    assert "error" not in result.stderr


def test_validate_bad_file(tmp_path):
    path = write(tmp_path, tiny_scenario(replication={"intervl": "5m"}))
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "intervl" in t)
    result = invoke("validate", path)
    assert_clean_exit(result, 2)
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {path}:{line}:3: replication.intervl: unknown key 'intervl' (did you mean 'interval'?)\n"
    )


def test_validate_several_problems(tmp_path):
    path = write(tmp_path, tiny_scenario(duration="0s", link={"upload": "0Mbit/s", "download": "50Mbit/s"}))
    result = invoke("validate", path)
    assert_clean_exit(result, 2)
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {path}:"
    assert len(lines) == 3
    assert re.fullmatch(re.escape(f"{path}:") + r"2:\d+: duration: must be greater than zero, got '0s'", lines[1])
    upload = r"\d+:\d+: link\.upload: must be greater than zero, got '0Mbit/s'"
    assert re.fullmatch(re.escape(f"{path}:") + upload, lines[2])


def test_validate_malformed_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: tiny\nsite: [\n  a: b\nlink: {\n", encoding="utf-8")
    result = invoke("validate", path)
    assert_clean_exit(result, 2)
    assert result.stderr.startswith(f"error: {path}:4:5: malformed YAML: ")


def test_validate_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    result = invoke("validate", path)
    assert_clean_exit(result, 2)
    assert result.stderr == f"error: {path}: file not found\n"


def test_validate_good_and_bad_files(tmp_path):
    good = write(tmp_path, tiny_scenario(), "good.yaml")
    bad = write(tmp_path, tiny_scenario(seed=-1), "bad.yaml")
    result = invoke("validate", good, bad, good)
    assert_clean_exit(result, 2)  # any bad file fails the whole command
    assert result.stdout == f"ok: {good} (tiny: 1 VM on 1 host)\n" * 2
    assert result.stderr.startswith(f"error: {bad}:")
    assert "seed: Input should be greater than or equal to 0 (got -1)" in result.stderr


def test_validate_prints_warnings(tmp_path):
    path = write(tmp_path, tiny_scenario(replication={"interval": "15m"}))
    result = invoke("validate", path)
    assert_clean_exit(result, 0)
    assert result.stdout == f"ok: {path} (tiny: 1 VM on 1 host)\n"
    assert result.stderr == (
        f"warning: {path}:16:13: replication.interval: 15 minutes is a legacy frequency in the cloud service; "
        "prefer 30s or 5m\n"
    )


@pytest.mark.parametrize("start,message", [
    ("2026-03-02T08:00:00Z", "start: give the calendar start in site local time, without a zone"),
    (0, "start: give the calendar start as a date-time in site local time, like 2026-03-02T08:00:00 (got 0)")])
def test_validate_a_zoned_or_numeric_start_with_date_time_failures(tmp_path, start, message):
    data = tiny_scenario(start=start, failures=[{"kind": "host", "target": "h1", "at": "2026-03-02T10:00:00"}],
                         replication={"initial": {"start": "2026-03-02T09:00:00"}})
    path = write(tmp_path, data)
    path.write_text(path.read_text(encoding="utf-8").replace("'2026-03-02T08:00:00Z'", "2026-03-02T08:00:00Z"),
                    encoding="utf-8")
    result = invoke("validate", path)
    assert_clean_exit(result, 2)
    assert message in result.stderr


def test_validate_needs_a_file():
    result = invoke("validate")
    assert result.exit_code == 2
    assert "Missing argument 'FILES...'" in result.stderr


# ----------------------------------------------------------------------------------------------------
# run


def test_run_writes_a_run_folder(tmp_path):
    path = write(tmp_path, tiny_scenario(seed=5))
    out = tmp_path / "out"
    result = invoke("run", path, "--out", out)
    assert_clean_exit(result, 0)
    (folder,) = run_folders(out)
    assert re.fullmatch(r"\d{8}-\d{6}-seed5", folder.name)
    assert result.stdout.endswith(f"results: {folder}\n")
    assert result.stdout.startswith("tiny: 1 VM on 1 host, 6 h simulated, seed ")
    names = {p.name for p in folder.iterdir()}
    assert names == {f"{t}.parquet" for t in TABLES} | {"metadata.json", "scenario.yaml", "summary.txt",
                                                             "costs.parquet"}
    assert not list((out / "tiny").glob(".incomplete-*"))

    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["scenario"] == "tiny"
    assert meta["seed"] == 5
    assert meta["scenario_hash"] == scenario_hash(load_scenario(path))
    assert set(meta["tables"]) == set(TABLES)
    assert meta["wall_time_s"] >= 0

    summary = pd.read_parquet(folder / "summary.parquet")
    assert meta["tables"]["summary"]["rows"] == len(summary)
    assert set(summary["vm"]) == {"vm1", "(site)"}

    saved = load_scenario(folder / "scenario.yaml")
    assert saved.seed == 5
    assert scenario_hash(saved) == meta["scenario_hash"]
    assert (folder / "summary.txt").read_text().startswith("tiny: 1 VM on 1 host, 6 h simulated, seed 5\n")


def test_run_csv(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", write(tmp_path, tiny_scenario()), "--out", out, "--csv")
    assert_clean_exit(result, 0)
    (folder,) = run_folders(out)
    for table in TABLES:
        csv = pd.read_csv(folder / f"{table}.csv")
        parquet = pd.read_parquet(folder / f"{table}.parquet")
        assert len(csv) == len(parquet), table
        assert list(csv.columns) == list(parquet.columns), table


def test_run_twice_never_overwrites(tmp_path):
    path = write(tmp_path, tiny_scenario())
    out = tmp_path / "out"
    assert_clean_exit(invoke("run", path, "--out", out), 0)
    (first,) = run_folders(out)
    first_meta = (first / "metadata.json").read_bytes()
    assert_clean_exit(invoke("run", path, "--out", out), 0)
    folders = run_folders(out)
    assert len(folders) == 2
    assert first in folders
    (second,) = [f for f in folders if f != first]
    assert (first / "metadata.json").read_bytes() == first_meta
    # same scenario and seed: identical tables
    for table in ("summary", "rpo", "transfers"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(first / f"{table}.parquet"), pd.read_parquet(second / f"{table}.parquet")
        )


def test_run_seed_overrides_the_scenario_seed(tmp_path):
    path = write(tmp_path, tiny_scenario(seed=5))
    out = tmp_path / "out"
    result = invoke("run", path, "--out", out, "--seed", "7")
    assert_clean_exit(result, 0)
    (folder,) = run_folders(out)
    assert folder.name.endswith("-seed7")
    assert json.loads((folder / "metadata.json").read_text())["seed"] == 7
    assert yaml.safe_load((folder / "scenario.yaml").read_text())["seed"] == 7


@pytest.mark.parametrize("seed", [None, 7, 0])
def test_run_metadata_hash_is_the_hash_of_the_saved_scenario(tmp_path, seed):
    # a relative trace is saved by its absolute path; the --seed used replaces the file's seed
    (tmp_path / "trace.csv").write_text("timestamp,bytes\n0,100000\n600,200000\n", encoding="utf-8")
    data = tiny_scenario(seed=5)
    data["site"]["hosts"][0]["vms"][0]["churn"] = {"trace": "trace.csv"}
    path = write(tmp_path, data)
    out = tmp_path / "out"
    result = invoke("run", path, "--out", out, "-q", *(["--seed", str(seed)] if seed is not None else []))
    assert_clean_exit(result, 0)
    (folder,) = run_folders(out)
    used = 5 if seed is None else seed
    assert folder.name.endswith(f"-seed{used}")
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["seed"] == used

    saved_text = (folder / "scenario.yaml").read_text()
    saved_data = yaml.safe_load(saved_text)
    assert saved_data["seed"] == used
    trace = saved_data["site"]["hosts"][0]["vms"][0]["churn"]["trace"]["file"]
    assert trace == str((tmp_path / "trace.csv").resolve())

    saved = load_scenario(folder / "scenario.yaml")
    assert meta["scenario_hash"] == scenario_hash(saved)
    assert meta["scenario_hash"] == scenario_hash(load_scenario(path), seed)
    assert (meta["scenario_hash"] == scenario_hash(load_scenario(path))) is (used == 5)

    # the saved scenario runs again to the same tables
    again = tmp_path / "again"
    assert_clean_exit(invoke("run", folder / "scenario.yaml", "--out", again, "-q"), 0)
    (second,) = run_folders(again)
    assert json.loads((second / "metadata.json").read_text())["scenario_hash"] == meta["scenario_hash"]
    for table in ("summary", "rpo", "transfers"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(folder / f"{table}.parquet"), pd.read_parquet(second / f"{table}.parquet")
        )


def test_run_negative_seed_is_refused(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", write(tmp_path, tiny_scenario()), "--out", out, "--seed", "-1")
    assert result.exit_code == 2
    assert "Invalid value for '--seed'" in result.stderr
    assert not out.exists()


def test_run_bad_scenario_writes_nothing(tmp_path):
    path = write(tmp_path, tiny_scenario(link={"upload": "0Mbit/s", "download": "50Mbit/s"}))
    out = tmp_path / "out"
    result = invoke("run", path, "--out", out)
    assert_clean_exit(result, 2)
    assert not out.exists()
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {path} is not a valid scenario (1 problem):"
    upload = r"\d+:\d+: link\.upload: must be greater than zero, got '0Mbit/s'"
    assert re.fullmatch(re.escape(f"{path}:") + upload, lines[1])
    assert len(lines) == 2


def test_run_missing_scenario(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", tmp_path / "nope.yaml", "--out", out)
    assert_clean_exit(result, 2)
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: file not found\n"
    assert not out.exists()


def test_run_no_save(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", write(tmp_path, tiny_scenario()), "--out", out, "--no-save")
    assert_clean_exit(result, 0)
    assert not out.exists()
    assert result.stdout.startswith("tiny: 1 VM on 1 host, 6 h simulated, seed ")
    assert "results:" not in result.stdout


def test_a_big_run_prints_the_vms_that_matter_most_and_saves_them_all(tmp_path):
    vms = [{"name": f"vm{i:02d}", "disks": ["1GiB"], "churn": {"rate": "10kB/s"}} for i in range(30)]
    data = tiny_scenario(site={"hosts": [{"name": "h1", "vms": vms[:20]}, {"name": "h2", "vms": vms[20:]}]},
                         failures=[{"kind": "host", "target": "h2", "at": "5h", "repair": "30m"}])
    out = tmp_path / "out"
    result = invoke("run", write(tmp_path, data), "--out", out)
    assert_clean_exit(result, 0)
    (folder,) = run_folders(out)
    lines = result.stdout.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("VM  "))) + 2:][:13]
    assert [x.split()[0] for x in table] == [f"vm{i:02d}" for i in range(20, 30)] + ["vm00", "vm01", "(site)"]
    assert ("Showing the 12 of 30 VMs that matter most (never protected, lost data, incidents, worst RPO first); "
            "every VM: summary.txt and summary.parquet in the run folder.") in lines
    assert len(lines) < 60
    saved = (folder / "summary.txt").read_text(encoding="utf-8")
    assert all(f"\nvm{i:02d} " in saved for i in range(30))
    assert "Showing" not in saved
    nosave = invoke("run", write(tmp_path, data), "--no-save")
    assert "every VM: summary.txt and summary.parquet of a saved run (without --no-save)." in nosave.stdout


def test_run_quiet_prints_only_the_folder(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", write(tmp_path, tiny_scenario()), "--out", out, "-q")
    assert_clean_exit(result, 0)
    (folder,) = run_folders(out)
    assert result.stdout == f"{folder}\n"


def test_run_prints_warnings_on_stderr(tmp_path):
    out = tmp_path / "out"
    path = write(tmp_path, tiny_scenario(replication={"interval": "15m"}))
    result = invoke("run", path, "--out", out, "-q")
    assert_clean_exit(result, 0)
    assert result.stderr == (
        f"warning: {path}:16:13: replication.interval: 15 minutes is a legacy frequency in the cloud service; "
        "prefer 30s or 5m\n"
    )


def test_run_out_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = invoke("run", write(tmp_path, tiny_scenario()), "--out", blocker, "-q")
    assert_clean_exit(result, 2)
    assert f"Invalid value for '--out': Directory '{blocker}' is a file." in result.stderr
    assert blocker.read_text() == "not a folder"


def test_run_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = blocker / "results"
    result = invoke("run", write(tmp_path, tiny_scenario()), "--out", out, "-q")
    assert_clean_exit(result, 1)
    assert result.stderr.startswith(f"error: cannot write results under {out}: ")
    assert blocker.read_text() == "not a folder"


# ----------------------------------------------------------------------------------------------------
# schema and version


def test_schema_prints_json():
    result = invoke("schema")
    assert_clean_exit(result, 0)
    schema = json.loads(result.stdout)
    assert schema == scenario_schema()
    assert schema["additionalProperties"] is False
    assert {"site", "link", "replication", "objectives"} <= set(schema["properties"])


def test_schema_to_a_file(tmp_path):
    target = tmp_path / "schema.json"
    result = invoke("schema", "-o", target)
    assert_clean_exit(result, 0)
    assert result.stdout == (f"wrote the JSON Schema of scenario files to {target}; for editor autocompletion, put "
                             f"'# yaml-language-server: $schema={target}' at the top of a scenario file\n")
    assert json.loads(target.read_text(encoding="utf-8")) == scenario_schema()


def test_schema_to_an_unwritable_place(tmp_path):
    target = tmp_path / "missing-dir" / "schema.json"
    result = invoke("schema", "--output", target)
    assert_clean_exit(result, 1)
    assert result.stderr.startswith(f"error: cannot write {target}: ")
    assert not target.exists()


def test_version():
    result = invoke("--version")
    assert_clean_exit(result, 0)
    assert result.stdout == f"drsim, version {__version__}\n"


def test_help_lists_the_commands():
    result = invoke("--help")
    assert_clean_exit(result, 0)
    for command in ("run", "validate", "schema"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.MULTILINE), command


# ----------------------------------------------------------------------------------------------------
# The installed console script


def console_script() -> Path:
    bindir = Path(sys.executable).parent
    for candidate in (bindir / "drsim", bindir / "drsim.exe"):
        if candidate.is_file():
            return candidate
    found = shutil.which("drsim")
    assert found, f"the drsim console script is not installed next to {sys.executable} nor on PATH"
    return Path(found)


def test_console_script_validate(tmp_path):
    drsim = console_script()
    good = write(tmp_path, tiny_scenario(), "good.yaml")
    done = subprocess.run(
        [str(drsim), "validate", str(good)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"ok: {good} (tiny: 1 VM on 1 host)\n"

    bad = write(tmp_path, tiny_scenario(replication={"initial": {"batches": [["ghost"]]}}), "bad.yaml")
    done = subprocess.run([str(drsim), "validate", str(bad)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert re.fullmatch(
        re.escape(f"error: {bad}:") + r"\d+:\d+: replication\.initial\.batches\[0\]\[0\]: "
        r"unknown VM 'ghost'\n",
        done.stderr,
    )


def test_console_script_run(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [str(console_script()), "run", str(write(tmp_path, tiny_scenario())), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (folder,) = run_folders(out)
    assert done.stdout == f"{folder}\n"
    assert (folder / "summary.parquet").is_file()


def test_run_with_report_and_report_command(tmp_path):
    path = write(tmp_path, tiny_scenario())
    out = tmp_path / "out"
    result = invoke("run", path, "--out", out, "--report", "-q")
    assert_clean_exit(result, 0)
    folder = Path(result.stdout.splitlines()[0])
    html = (folder / "report.html").read_text()
    assert "<img" in html and "data:image/png;base64," in html
    assert (folder / "report.md").is_file()
    (folder / "report.html").unlink()
    result = invoke("report", folder)
    assert_clean_exit(result, 0)
    assert (folder / "report.html").read_text() == html  # deterministic: the same report again
    result = invoke("report", tmp_path)
    assert_clean_exit(result, 2)
    assert "not a run folder" in result.stderr


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import io

    from drsim.cli import common as cli

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert cli.progress_bar("runs", quiet=False) is None  # not a terminal: quiet
    fake = Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    assert cli.progress_bar("runs", quiet=True) is None
    bar = cli.progress_bar("runs", quiet=False)
    bar.update_to(3, 10)
    bar.update_to(10, 10)
    assert (bar.n, bar.total) == (10, 10)
    bar.close()
    assert "10/10" in fake.getvalue() and "runs/s" in fake.getvalue()


def test_the_package_version_is_the_one_drsim_reports():
    """pyproject.toml's version (what pip installs) and ``drsim.__version__`` (what results record) are one."""
    import tomllib
    from pathlib import Path

    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["version"] == __version__
