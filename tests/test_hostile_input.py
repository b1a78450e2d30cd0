"""Hostile and careless input: bounded reading, absurd values refused with their reason, located messages that
quote a short excerpt, names that cannot spoof the terminal, and no traceback. One test per case found by an
outside audit (each failed before the fix)."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import drsim.views.rendering as rendering
from drsim.model.churn import build_curve
from drsim.results.findings import summary_text
from drsim.results.run import simulate
from drsim.results.tables import TABLES
from drsim.scenario.checks import scenario_warnings
from drsim.scenario.loading import MAX_ALIAS_VALUES, MAX_FILE_BYTES, load_scenario, parse_scenario
from drsim.scenario.problems import ScenarioError
from drsim.scenario.units import format_duration
from tests.test_cli import assert_clean_exit, invoke, tiny_scenario
from tests.test_cli import write as write_cli
from tests.test_scenario import VM, assert_problem, line_of, load_error, minimal, write, write_text

# ----------------------------------------------------------------------------------------------------
# Bounded reading: aliases, file kinds and sizes


def bomb(depth: int) -> str:
    """The audit's alias bomb: anchors ``depth`` deep, each a list of ten of the one before, then the unit field
    ``upload`` set to the last (10**depth strings once expanded, from about 600 bytes of YAML)."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, depth)]
    text = yaml.safe_dump({k: v for k, v in minimal().items() if k != "link"}, sort_keys=False)
    return "\n".join(lines) + "\n" + text + f"link: {{upload: *a{depth - 1}, download: 50Mbit/s}}\n"


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path):
    path = write_text(tmp_path, bomb(8))
    assert len(path.read_bytes()) < 1000
    t0 = time.perf_counter()
    result = invoke("validate", path)
    elapsed = time.perf_counter() - t0
    assert_clean_exit(result, 2)
    assert elapsed < 5, elapsed  # was 46 s and 4.3 GB
    assert len(result.stderr) < 400, len(result.stderr)  # was 722 MB
    # located at the alias that takes the expansion past the bound
    m = re.fullmatch(re.escape(f"error: {path}:") + r"(\d+):(\d+): (.*)\n", result.stderr)
    assert m, result.stderr
    line = int(m.group(1))
    alias = path.read_text().splitlines()[line - 1][int(m.group(2)) - 1:]
    assert alias.startswith("*a"), alias
    assert f"more than {MAX_ALIAS_VALUES:,} values" in m.group(3)


def test_aliases_within_the_bound_still_work(tmp_path):
    text = write(tmp_path).read_text().replace("upload: 10Mbit/s", "upload: &up 10Mbit/s")
    text = text.replace("download: 50Mbit/s", "download: *up")
    s = load_scenario(write_text(tmp_path, text))
    assert s.link.download == s.link.upload == 10e6 / 8


def test_a_recursive_alias_is_refused(tmp_path):
    text = write(tmp_path).read_text() + "loop: &loop [1, *loop]\n"
    err = load_error(write_text(tmp_path, text))
    assert len(err.problems) == 1 and "refers to itself" in str(err), str(err)


def test_a_long_value_is_quoted_by_a_short_excerpt(tmp_path):
    path = write(tmp_path, {"link.upload": "9" * 100_000 + "Mbit/s"})
    err = load_error(path)
    assert len(str(err)) < 300, len(str(err))
    assert "... (100,006 characters)" in str(err)
    path = write(tmp_path, {"link.upload": list(range(5_000))})
    err = load_error(path)
    assert len(str(err)) < 300, len(str(err))
    assert "[0, 1, 2, 3, 4, 5, ...]" in str(err)


DEVICE = "error: {path}: not a regular file: a device, a pipe or a socket cannot be read as a scenario\n"


def test_dev_zero_as_a_scenario_is_refused_at_once():
    t0 = time.perf_counter()
    result = invoke("validate", "/dev/zero")
    assert_clean_exit(result, 2)
    assert time.perf_counter() - t0 < 5
    assert result.stderr == DEVICE.format(path="/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_as_a_scenario_does_not_block(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    result = invoke("run", fifo, "--no-save")
    assert_clean_exit(result, 2)
    assert result.stderr == DEVICE.format(path=fifo)


def test_a_huge_scenario_file_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing to write, and reading it would take long
    err = load_error(path)
    assert str(err) == f"{path}: too large: it holds {MAX_FILE_BYTES + 1:,} bytes; a scenario holds at most " \
                       f"{MAX_FILE_BYTES:,} (a site of a thousand VMs takes about 200 kB)"


def test_dev_zero_as_a_trace_is_not_a_regular_file(tmp_path):
    path = write(tmp_path, {f"{VM}.churn": {"trace": "/dev/zero"}})
    err = load_error(path)
    assert_problem(err, path, f"{VM}.churn.trace", line_of(path, "trace:"),
                   "churn trace /dev/zero: not a regular file: a device, a pipe or a socket cannot be read as a trace")


def test_yaml_merge_keys_are_understood(tmp_path):
    text = """\
name: tiny
duration: 1d
site:
  hosts:
    - name: h1
      vms:
        - &first
          name: vm1
          disks: [10GiB]
          churn: {rate: 100kB/s}
        - <<: *first
          name: vm2
link: {upload: 10Mbit/s, download: 50Mbit/s}
"""
    s = load_scenario(write_text(tmp_path, text))
    assert [v.name for _, v in s.vms()] == ["vm1", "vm2"]
    assert s.vm("vm2").disk_size == s.vm("vm1").disk_size == 10 * 2.0**30
    # a key given twice in the mapping itself is still refused, merged or not
    err = load_error(write_text(tmp_path, text.replace("name: vm2", "name: vm2\n          name: vm3")))
    assert "duplicate key 'name'" in str(err)


# ----------------------------------------------------------------------------------------------------
# Absurd and non-finite values: refused with the reason


def test_a_churn_rate_of_1e300_mb_per_s_is_refused(tmp_path):
    path = write(tmp_path, {f"{VM}.churn": {"rate": "1e300MB/s"}})
    assert_problem(load_error(path), path, f"{VM}.churn.rate", line_of(path, "rate:"),
                   "a rate is at most 1 Pbit/s (a thousand times the fastest WAN links), got '1e300MB/s'")


@pytest.mark.parametrize("bad", [".nan", ".inf"])
def test_a_profile_holding_nan_or_inf_is_refused(tmp_path, bad):
    path = write(tmp_path, {f"{VM}.churn": {"rate": "100kB/s", "profile": [1.0] * 24}})
    text = path.read_text().replace("- 1.0", f"- {bad}", 1)
    path = write_text(tmp_path, text)
    err = load_error(path)
    assert len(err.problems) == 1 and err.problems[0].loc == ("site", "hosts", 0, "vms", 0, "churn", "profile")
    assert err.problems[0].message == f"profile multipliers must be finite numbers, got {bad[1:]} at hour 0"


def test_a_duration_of_1e12_years_is_refused(tmp_path):
    path = write(tmp_path, {"duration": "1e12y"})
    assert_problem(load_error(path), path, "duration", line_of(path, "duration:"),
                   "a duration is at most 10,000 years (the calendar ends in year 9999), got '1e12y'")


def test_failures_every_millisecond_are_refused(tmp_path):
    path = write(tmp_path, {"failures": [{"kind": "vm", "target": "all", "every": "1ms"}]})
    assert_problem(load_error(path), path, "failures[0]", line_of(path, "- kind: vm"),
                   "'every' (the time between failures) is at least 1 min on average, got 1 ms")


# ----------------------------------------------------------------------------------------------------
# A VM named like the site row


def test_a_vm_named_like_the_site_row_is_refused(tmp_path):
    path = write(tmp_path, {f"{VM}.name": "(site)"})
    assert_problem(load_error(path), path, f"{VM}.name", line_of(path, "name: (site)"),
                   "'(site)' is reserved: it names the site's row in the result tables")


# ----------------------------------------------------------------------------------------------------
# Tracebacks that become messages


def test_a_weibull_shape_of_1e_300_is_refused(tmp_path):
    path = write(tmp_path, {"failures": [{"kind": "vm", "target": "all",
                                          "every": {"dist": "weibull", "shape": 1e-300, "scale": "1y"}}]})
    assert_problem(load_error(path), path, "failures[0].every", line_of(path, "dist: weibull"),
                   "weibull shape must be from 0.1 to 100 (fitted failure data give about 0.5 to 5), got 1e-300")


@pytest.mark.parametrize("start", ["9999-12-31T23:00:00", "0001-01-01"])
def test_a_calendar_start_outside_the_tables_calendar_is_refused(tmp_path, start):
    path = write_text(tmp_path, write(tmp_path).read_text() + f"start: {start}\n")
    err = load_error(path)
    assert_problem(err, path, "start", line_of(path, "start:"),
                   "the run must lie between 1900-01-01 and 2262-01-01 (the calendar of the result tables), "
                   f"got a start on {start[:10]} and a duration of 1 d")


@pytest.mark.parametrize("start", ["0", "-1"])
def test_a_number_as_the_calendar_start_is_refused(tmp_path, start):
    text = write(tmp_path, {"failures": [{"kind": "vm", "target": "vm1", "at": "2026-01-01T01:00:00"}]}).read_text()
    path = write_text(tmp_path, text.replace("'2026-01-01T01:00:00'", "2026-01-01T01:00:00") + f"start: {start}\n")
    err = load_error(path)
    assert_problem(err, path, "start", line_of(path, "start:"),
                   f"give the calendar start as a date-time in site local time, like 2026-03-02T08:00:00 (got {start})")


def test_a_trace_with_mixed_time_zones_is_refused(tmp_path):
    (tmp_path / "tz.csv").write_text("timestamp,bytes\n2026-03-02T08:00:00+01:00,100\n"
                                     "2026-03-02T09:00:00+02:00,100\n2026-03-02T10:00:00Z,100\n")
    path = write(tmp_path, {f"{VM}.churn": {"trace": "tz.csv"}})
    assert_problem(load_error(path), path, f"{VM}.churn.trace", line_of(path, "trace:"),
                   f"churn trace {(tmp_path / 'tz.csv').resolve()}, line 3: timestamp '2026-03-02T09:00:00+02:00' "
                   "has another time-zone offset than the first row; give every timestamp in one zone")


def run_folder(tmp_path: Path, *options: str) -> tuple[Path, object]:
    out = tmp_path / "out"
    result = invoke("run", write_cli(tmp_path, tiny_scenario()), "--out", out, *options)
    return next((out / "tiny").iterdir()), result


RUN_FILES = {f"{t}.parquet" for t in TABLES} | {"costs.parquet", "metadata.json", "scenario.yaml", "summary.txt"}


def test_run_report_on_a_full_disk_keeps_the_run_and_says_how_to_finish(tmp_path, monkeypatch):
    real, written = rendering.write_atomic, []

    def full_disk(path: Path, data: bytes) -> None:
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)
        written.append(path)

    monkeypatch.setattr(rendering, "write_atomic", full_disk)
    folder, result = run_folder(tmp_path, "--report")
    assert_clean_exit(result, 1)  # was a traceback, with two figures and no report left in the folder
    assert result.stderr == (f"error: cannot write the report into {folder}: No space left on device; the run is "
                             f"saved whole there: write the report later with 'drsim report {folder}'\n")
    assert {p.name for p in folder.iterdir()} == RUN_FILES  # the figures written before the failure are gone
    monkeypatch.setattr(rendering, "write_atomic", real)
    assert_clean_exit(invoke("report", folder), 0)
    assert (folder / "report.html").is_file()


def test_report_of_a_truncated_summary_says_the_file_is_damaged(tmp_path):
    folder, result = run_folder(tmp_path)
    assert_clean_exit(result, 0)
    summary = folder / "summary.parquet"
    summary.write_bytes(summary.read_bytes()[: summary.stat().st_size // 2])
    result = invoke("report", folder)
    assert_clean_exit(result, 2)  # was ArrowInvalid
    assert re.fullmatch(re.escape(f"error: {summary}: cannot be read (") + r".+" + re.escape(
        "): the file is damaged; 'drsim report --no-verify' (verify=False in Python) reports the re-simulated run "
        "without comparing\n"), result.stderr), result.stderr
    assert {p.name for p in folder.iterdir()} == RUN_FILES


def test_a_lost_dask_scheduler_gives_drsims_message_alone(tmp_path):
    """distributed logged its own tracebacks (lost connection, failed reconnects) around drsim's message."""
    distributed = pytest.importorskip("distributed")
    path = write_cli(tmp_path, tiny_scenario(duration="1d"))
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        sweep = subprocess.Popen(
            [sys.executable, "-c", "from drsim.cli import main; main()", "sweep", str(path), "--dask",
             cluster.scheduler_address, "-n", "500", "--batch-size", "1", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not list(out.glob("tiny/*.incomplete/parts/*")) and time.monotonic() < deadline:
            time.sleep(0.1)  # until runs stream in; then the cluster and its scheduler close, mid-sweep
    stdout, stderr = sweep.communicate(timeout=60)
    assert sweep.returncode == 1, stderr
    (folder,) = out.glob("tiny/*.incomplete")
    assert stderr == (f"error: the executor failed (CancelledError: the executor stopped); finished runs are kept "
                      f"in {folder}; resume with: drsim sweep --resume {folder}\n"), stderr


# ----------------------------------------------------------------------------------------------------
# Silently wrong or spoofed output


def test_a_profile_of_1e308_keeps_the_daily_total(tmp_path):
    profile = [1e308, 1e308] + [1.0] * 22
    s = load_scenario(write(tmp_path, {"duration": "1d", f"{VM}.churn": {"rate": "100kB/s", "profile": profile}}))
    # 100 kB/s for a day, all of it in the first two hours; was 0 bytes written and a 2.5 min RPO
    curve = build_curve(s, s.vm("vm1"), None, s.duration)
    assert curve(7200.0) == curve(86400.0) == pytest.approx(100e3 * 86400, rel=1e-12)
    assert simulate(s).summary.set_index("vm").loc["vm1", "bytes_written"] == pytest.approx(100e3 * 86400, rel=1e-12)


def test_control_characters_in_names_are_escaped_in_the_summary(tmp_path):
    evil = "evil\nname\r\x07\x00\u202ex"
    data = tiny_scenario(site={"hosts": [{"name": "h\n1", "vms": [
        {"name": evil, "disks": ["1GiB"], "churn": {"rate": "100kB/s"}}]}]})
    text = summary_text(simulate(parse_scenario(data)))
    assert all(c.isprintable() for line in text.splitlines() for c in line)
    assert "evil\\nname\\r\\x07\\x00\\u202ex" in text and "h\\n1" in text
    out = tmp_path / "out"
    result = invoke("run", write_cli(tmp_path, data), "--out", out)
    assert_clean_exit(result, 0)
    (folder,) = (out / "tiny").iterdir()
    saved = (folder / "summary.txt").read_text(encoding="utf-8")
    for shown in (result.stdout, saved):
        assert all(c.isprintable() for line in shown.splitlines() for c in line)
        assert "evil\\nname\\r\\x07\\x00\\u202ex" in shown


def test_a_sub_second_interval_is_reported_as_written(tmp_path):
    path = write(tmp_path, {"replication.interval": "0.0001s"})
    assert_problem(load_error(path), path, "replication.interval", line_of(path, "interval:"),
                   "the service replicates every 30s, 5m or 15m; got 100 µs")
    assert format_duration(0.0001) == "100 µs" and format_duration(0.0125) == "12.5 ms"


def test_a_nan_size_says_it_is_not_a_number(tmp_path):
    path = write_text(tmp_path, write(tmp_path).read_text().replace("- 10GiB", "- {size: .nan}"))
    assert_problem(load_error(path), path, f"{VM}.disks[0].size", line_of(path, "size: .nan"),
                   "expected a finite size like '127GiB', got nan")


def test_a_churn_warning_prints_a_short_number(tmp_path):
    (tmp_path / "big.csv").write_text("timestamp,bytes\n0,1e18\n1,1e18\n")
    s = load_scenario(write(tmp_path, {f"{VM}.churn": {"trace": "big.csv"}}))
    (warning,) = [w for w in scenario_warnings(s) if "mean churn" in w]  # (and the link cannot keep up)
    assert warning == ("vm1: mean churn 1e+12 MB/s exceeds the 2 MB/s the service supports per VM on standard "
                       "storage (support matrix)")


def test_a_300_character_name_is_refused_before_running(tmp_path):
    path = write(tmp_path, {"name": "a" * 300})
    message = "a scenario name has at most 100 characters (it names the results folder), got 300"
    assert_problem(load_error(path), path, "name", line_of(path, "name: aaa"), message)
    result = invoke("run", path, "--out", tmp_path / "out")  # was: simulated, then failed to make the folder
    assert_clean_exit(result, 2)
    assert message in result.stderr and result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_an_integer_of_5000_digits_is_a_located_error(tmp_path):
    path = write_text(tmp_path, write(tmp_path).read_text().replace("duration: 1d", "duration: 1" + "0" * 5000))
    result = invoke("validate", path)
    assert_clean_exit(result, 2)  # was a ValueError from Python's integer conversion
    assert result.stderr == f"error: {path}:{line_of(path, 'duration:')}:11: malformed YAML: a number of 5,001 digits\n"


def test_a_parse_error_of_yaml_is_still_located(tmp_path):
    path = Path(write_text(tmp_path, "name: tiny\nsite: [\n"))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert str(exc.value).startswith(f"{path}:3:1: malformed YAML")
