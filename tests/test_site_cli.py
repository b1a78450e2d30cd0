"""``drsim init``, ``drsim trace`` and ``drsim report --xlsx``: what they write and print, files never overwritten
without --force, bad input refused with exit status 2 and a message, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from drsim.scenario import load_scenario
from drsim.scenario.churn import load_trace
from drsim.scenario.counters import counter_trace
from tests.test_cli import assert_clean_exit, invoke, tiny_scenario, write
from tests.test_inventory import row, write_csv
from tests.test_perfmon import DISK_D, minutes, write_log

EXAMPLES = Path(__file__).resolve().parents[1] / "scenarios" / "examples"
INVENTORY, COUNTERS = EXAMPLES / "site-inventory.csv", EXAMPLES / "site-counters.csv"


def test_init_writes_a_valid_scenario_and_says_what_to_edit(tmp_path):
    out = tmp_path / "my-site.yaml"
    result = invoke("init", "--inventory", INVENTORY, "--counters", COUNTERS, "-o", out, "--duration", "7d")
    assert_clean_exit(result, 0)
    assert result.stdout.startswith(f"wrote {out}: 4 VMs on 2 hosts from {INVENTORY}\n")
    assert "churn: 3 VMs replay" in result.stdout and "1 has a placeholder (ERP app 01)" in result.stdout
    assert "Edit next" in result.stdout and f"drsim validate {out}" in result.stdout
    assert "warning: ERP app 01: no write counter" in result.stderr
    s = load_scenario(out)
    assert s.name == "my-site" and s.duration == 7 * 86400
    trace = s.vm("FS01").churn.trace
    assert trace.format == "perfmon" and (out.parent / trace.file).resolve() == COUNTERS.resolve()


def test_init_never_overwrites_without_force(tmp_path):
    out = tmp_path / "site.yaml"
    out.write_text("mine\n", encoding="utf-8")
    result = invoke("init", "--inventory", INVENTORY, "-o", out)
    assert_clean_exit(result, 2)
    assert result.stderr == f"error: {out} exists: give another file with -o, or --force to replace it\n"
    assert out.read_text(encoding="utf-8") == "mine\n"
    assert_clean_exit(invoke("init", "--inventory", INVENTORY, "-o", out, "--force"), 0)
    assert load_scenario(out).name == "site"


def test_init_default_output_is_named_after_the_inventory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_clean_exit(invoke("init", "--inventory", INVENTORY), 0)
    assert load_scenario(tmp_path / "site-inventory.yaml").name == "site-inventory"


@pytest.mark.parametrize("args,message", [
    (["--inventory", "nope.csv"], "error: inventory nope.csv: file not found\n"),
    (["--inventory", "{inv}", "--counters", "nope.csv"], "error: counter log nope.csv not found\n"),
    (["--inventory", "{inv}", "--duration", "forever"], "duration: "),
    (["--inventory", "{bad}"], "missing columns"),
])
def test_init_refuses_bad_input(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "inv.csv", [row()])
    write_csv(tmp_path / "bad.csv", [["x"]], columns=["VMName"])
    args = [a.format(inv=tmp_path / "inv.csv", bad=tmp_path / "bad.csv") for a in args]
    result = invoke("init", *args, "-o", tmp_path / "out.yaml")
    assert_clean_exit(result, 2)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_trace_lists_the_columns():
    result = invoke("trace", COUNTERS)
    assert_clean_exit(result, 0)
    lines = result.stdout.splitlines()
    assert lines[0] == (f"{COUNTERS}: 2017 rows from 2026-03-02 00:00:00 to 2026-03-09 00:00:00 (local time, "
                        "W. Europe Standard Time), a sample every 5 min")
    assert lines[1] == "read as UTF-8, separated by comma"
    assert sum("Hyper-V Virtual Storage Device" in x for x in lines) == 6
    row2 = next(x for x in lines if "FS01_Data" in x).split()
    assert row2[-6:-4] == ["2014", "2"]  # samples, missing


def test_trace_writes_a_plain_trace_that_replays_the_same(tmp_path):
    out = tmp_path / "fs01.csv"
    pattern = r"\\*\Hyper-V Virtual Storage Device(*FS01*)\Write Bytes/sec"
    result = invoke("trace", COUNTERS, "-c", pattern, "--rewrite", "0.7", "-o", out)
    assert_clean_exit(result, 0)
    assert "columns (2, summed):" in result.stdout and "note: 2 missing samples filled" in result.stdout
    assert f"format: perfmon, columns: ['{pattern}']" in result.stdout
    made = counter_trace(str(COUNTERS), [pattern], rewrite=0.7)
    t, b, period = load_trace(out)
    np.testing.assert_allclose(t, made.starts)
    np.testing.assert_allclose(b, made.bytes, rtol=1e-12, atol=1e-3)
    assert period == made.period == 7 * 86400
    again = invoke("trace", COUNTERS, "-c", pattern, "-o", out)
    assert_clean_exit(again, 2)
    assert "exists" in again.stderr


@pytest.mark.parametrize("args,message", [
    (["-c", r"\\HV09\*"], "no column matches"),
    (["-c", DISK_D, "--step", "soon"], "error: "),
    (["-c", DISK_D, "--step", "0"], "--step must be above 0"),
    (["-c", DISK_D, "--timezone", "Nowhere/Town"], "unknown time zone"),
    (["-c", DISK_D, "--rewrite", "0"], "Invalid value for '--rewrite'"),
])
def test_trace_refuses_bad_options(tmp_path, args, message):
    log = write_log(tmp_path / "log.csv", minutes(10), {DISK_D: [1.0] * 10})
    result = invoke("trace", log, *args)
    assert_clean_exit(result, 2)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_trace_refuses_a_log_it_cannot_read(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("timestamp,bytes\n0,1\n", encoding="utf-8")
    result = invoke("trace", path)
    assert_clean_exit(result, 2)
    assert "not a performance-counter log" in result.stderr


def run_folder(tmp_path: Path, **top) -> Path:
    scenario = write(tmp_path, tiny_scenario(
        start="2026-03-02T08:00:00", duration="1d",
        failures=[{"kind": "vm", "target": "vm1", "at": "12h", "repair": "1h"}], **top))
    result = invoke("run", scenario, "--out", tmp_path / "out", "-q", "--xlsx")
    assert_clean_exit(result, 0)
    return Path(result.stdout.splitlines()[0])


def test_run_and_report_write_a_workbook_with_units(tmp_path):
    folder = run_folder(tmp_path)
    book = load_workbook(folder / "report.xlsx")
    assert book.sheetnames == ["Summary", "VMs", "Incidents", "Costs"]  # drsim run writes costs.parquet
    summary = pd.read_parquet(folder / "summary.parquet").set_index("vm")
    vms = book["VMs"]
    headers = [c.value for c in vms[1]]
    assert headers[:4] == ["VM", "host", "protected", "protected at (site local time)"]
    assert "RPO p95 (min)" in headers and "data written (GB)" in headers and "availability (%)" in headers
    values = dict(zip(headers, [c.value for c in vms[2]], strict=True))
    assert values["VM"] == "vm1"
    assert values["RPO p95 (min)"] == pytest.approx(summary.loc["vm1", "rpo_p95_s"] / 60, rel=1e-12)
    assert values["data written (GB)"] == pytest.approx(summary.loc["vm1", "bytes_written"] / 1e9, rel=1e-12)
    assert values["availability (%)"] == pytest.approx(summary.loc["vm1", "availability"], rel=1e-12)
    assert vms.cell(2, headers.index("availability (%)") + 1).number_format == "0.000%"
    stamp = pd.Timestamp(values["protected at (site local time)"])  # Excel keeps milliseconds
    assert abs(stamp - summary.loc["vm1", "protected_at_ts"]) < pd.Timedelta("1ms")
    incidents = book["Incidents"]
    iheaders = [c.value for c in incidents[1]]
    assert "failed at (site local time)" in iheaders and "RTO (min)" in iheaders
    table = pd.read_parquet(folder / "incidents.parquet")
    irow = dict(zip(iheaders, [c.value for c in incidents[2]], strict=True))
    assert irow["RTO (min)"] == pytest.approx(table["rto_s"].iloc[0] / 60, rel=1e-12)
    measures = {r[0]: (r[1], r[2]) for r in book["Summary"].iter_rows(min_row=2, values_only=True)}
    assert measures["RPO target"] == (15, "min") and measures["VMs"] == (1, None)
    assert measures["RPO p95"][0] == pytest.approx(summary.loc["(site)", "rpo_p95_s"] / 60, rel=1e-12)
    (folder / "report.xlsx").unlink()
    result = invoke("report", folder, "--xlsx")
    assert_clean_exit(result, 0)
    assert result.stdout == f"workbook: {folder / 'report.xlsx'}\n" and (folder / "report.xlsx").is_file()
    assert not (folder / "report.html").exists()  # --xlsx does not re-simulate for the HTML report


def test_without_a_calendar_times_are_hours_from_the_start(tmp_path):
    scenario = write(tmp_path, tiny_scenario(duration="1d"))
    result = invoke("run", scenario, "--out", tmp_path / "out", "-q")
    folder = Path(result.stdout.splitlines()[0])
    assert_clean_exit(invoke("report", folder, "--xlsx"), 0)
    vms = load_workbook(folder / "report.xlsx")["VMs"]
    headers = [c.value for c in vms[1]]
    assert "protected at (h from start)" in headers
    protected_at = pd.read_parquet(folder / "summary.parquet")["protected_at"].iloc[0]
    assert vms.cell(2, headers.index("protected at (h from start)") + 1).value == pytest.approx(protected_at / 3600)


def test_a_plan_folder_gets_a_plan_sheet(tmp_path):
    folder = tmp_path / "plan-1"
    folder.mkdir()
    plan = pd.DataFrame({"vm": ["vm1", "(site)"], "host": ["h1", ""], "required_Bps": [1.25e6, 1.25e6],
                         "rpo_required_s": [600.0, 600.0], "missed_formula": [0.02, 0.02],
                         "initial_replication_s": [7200.0, 7200.0]})
    plan.to_parquet(folder / "plan.parquet")
    (folder / "metadata.json").write_text(json.dumps({"scenario": "x", "rpo_s": 900.0, "percentile": 95,
                                                      "current_upload_Bps": 2.5e6, "evaluations": [1, 2]}))
    assert_clean_exit(invoke("report", folder, "--xlsx"), 0)
    book = load_workbook(folder / "report.xlsx")
    assert book.sheetnames == ["Plan", "Request"]
    rows = list(book["Plan"].iter_rows(values_only=True))
    assert rows[0] == ("VM", "host", "required upload (Mbit/s)", "RPO at required (min)",
                       "cycles missed at formula (%)", "initial replication (h)")
    assert rows[1] == ("vm1", "h1", 10.0, 10.0, 0.02, 2.0)
    request = {r[0]: (r[1], r[2]) for r in book["Request"].iter_rows(min_row=2, values_only=True)}
    assert request["RPO target"] == (15.0, "min") and request["current upload"] == (20.0, "Mbit/s")


def test_report_xlsx_refuses_a_folder_without_results(tmp_path):
    result = invoke("report", tmp_path, "--xlsx")
    assert_clean_exit(result, 2)
    assert "neither a run folder" in result.stderr and not (tmp_path / "report.xlsx").exists()
