"""The bundled site example: its files are what its script writes, in the Windows tools' exact formats, and the
README's walk-through runs on them as printed (commands, output and the scenario excerpt)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import console_script

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "scenarios" / "examples"
SECTION = "### 3. From the two files to a scenario, a run and a plan"


def test_the_script_writes_the_bundled_files(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / "make_site_example.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in ("site-inventory.csv", "site-counters.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name


def test_the_files_are_in_the_windows_formats():
    inventory = (EXAMPLES / "site-inventory.csv").read_bytes()
    assert inventory.startswith(b"\xef\xbb\xbf\"VMName\",\"VMId\",\"ComputerName\"")  # Export-Csv -Encoding UTF8
    assert inventory.count(b"\r\n") == 8 and b"\n" not in inventory.replace(b"\r\n", b"")
    log = (EXAMPLES / "site-counters.csv").read_bytes().decode("ascii").split("\r\n")
    assert log[0].startswith('"(PDH-CSV 4.0) (W. Europe Standard Time)(-60)","\\\\HV01\\Hyper-V Virtual Storage '
                             'Device(D:-Hyper-V-FS01-Virtual Hard Disks-FS01_OS.vhdx)\\Write Bytes/sec"')
    assert re.fullmatch(r'"03/02/2026 00:00:00\.117"(,"\d+\.\d{3}")+', log[1])
    assert len(log) == 2017 + 2 and log[-1] == "" and sum(row.count('," "') for row in log) == 3


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    return text[start:text.index("\n### ", start + 1)]


def blocks(section: str, kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", section, re.S)


@pytest.mark.skipif(shutil.which("drsim") is None and not (Path(sys.executable).parent / "drsim").is_file(),
                    reason="the drsim console script is not installed")
def test_the_readme_walk_through_runs_as_printed(tmp_path):
    section = readme_section()
    commands = [line for line in blocks(section, "bash")[0].splitlines() if line.startswith("drsim ")]
    assert [c.split()[1] for c in commands] == ["trace", "init", "validate", "run", "plan", "report"]
    (tmp_path / "scenarios" / "examples").mkdir(parents=True)
    for name in ("site-inventory.csv", "site-counters.csv"):
        shutil.copy(EXAMPLES / name, tmp_path / "scenarios" / "examples" / name)
    drsim = str(console_script())
    outputs = []
    for command in commands:
        args = command.split()[1:]
        if "<" in command:  # the plan folder's name has the time it was made
            [folder] = (tmp_path / "results" / "my-site").glob("plan-*")
            args = [str(folder.relative_to(tmp_path)) if a.startswith("results/") else a for a in args]
        done = subprocess.run([drsim, *args], capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        outputs.append(done)
    init_text = blocks(section, "text")[0].splitlines()
    init = outputs[1]
    assert init.stdout.splitlines() + init.stderr.splitlines() == init_text
    written = set((tmp_path / "my-site.yaml").read_text(encoding="utf-8").splitlines())
    excerpt = [line for line in blocks(section, "yaml")[0].splitlines() if line != "..."]
    assert [line for line in excerpt if line not in written] == []
    assert outputs[2].stdout == "ok: my-site.yaml (my-site: 4 VMs on 2 hosts)\n"
    run_folder = outputs[3].stdout.splitlines()[-2].removeprefix("results: ")
    assert (tmp_path / run_folder / "report.xlsx").is_file()
    assert "SQL01 exceeds the RPO target 16.2% of the time" in outputs[3].stdout
    findings = blocks(section, "text")[1].splitlines()
    plan_lines = outputs[4].stdout.splitlines()
    start = plan_lines.index("Findings:")
    assert plan_lines[start:start + len(findings)] == findings
    assert outputs[5].stdout.startswith("workbook: results/my-site/plan-") and outputs[5].stdout.endswith(
        "/report.xlsx\n")


def test_the_readme_python_snippet_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"In Python \(a notebook\):\n\n```python\n(.*?)```", text, re.S).group(1)
    (tmp_path / "scenarios" / "examples").mkdir(parents=True)
    for name in ("site-inventory.csv", "site-counters.csv"):
        shutil.copy(EXAMPLES / name, tmp_path / "scenarios" / "examples" / name)
    monkeypatch.chdir(tmp_path)
    names: dict = {"print": lambda *a: None}
    exec(compile(block, "README.md", "exec"), names)
    assert names["sql"].columns[0].endswith("SQL01_OS.vhdx)\\Write Bytes/sec") and len(names["sql"].columns) == 3
    assert names["made"].traced == ["FS01", "SQL01", "DC01"]
