"""Excel workbooks of results: ``report.xlsx``, where planners keep their numbers.

:func:`write_workbook` reads a folder written by drsim and writes one workbook beside its tables, with a sheet
per table present and the units in every header:

- a **run folder** (``drsim run``): *Summary* (the site in figures: the run, its objectives and the site row of
  the summary), *VMs* (one row per VM), *Incidents* (one row per failure and VM);
- a **plan folder** (``drsim plan --report``): *Plan* (one row per VM and the site) and *Request* (the target,
  method and search);
- *Options* and *Deadline*, when a plan folder holds ``options.parquet`` or ``deadline.parquet`` (``drsim plan
  --upload ... --report``, ``drsim plan --deadline ... --report``: :mod:`drsim.views.decision_report`);
- *Costs*, when the folder holds a ``costs.parquet`` table (``drsim run`` writes it: :mod:`drsim.results.costs`;
  a risk folder's holds the expected cost of its incidents).

Values are converted to the units a planner reads (RPO, data loss and RTO in minutes; protection times, initial
replication and downtime in hours; sizes in GB = 10^9 bytes; rates in Mbit/s; shares as percentages; with a
calendar start, times as date-times in site local time); columns drsim does not know keep their base units,
named from their suffix. Written with openpyxl, atomically (temporary name, then rename). Imports the results
stage for its folder writer.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from drsim.results.folders import atomic_write
from drsim.scenario.units import parse_duration

__all__ = ["write_workbook", "workbook_sheets", "Sheet", "WorkbookError", "WORKBOOK_NAME", "column_header"]

WORKBOOK_NAME = "report.xlsx"
_MIN, _H, _GB, _MBIT = 60.0, 3600.0, 1e9, 1e6 / 8


class WorkbookError(ValueError):
    """A folder with nothing a workbook can show."""


@dataclass(frozen=True)
class _Unit:
    """How a column is shown: its label, the unit in the header, the divisor from base units, the number format."""

    label: str
    unit: str = ""
    scale: float = 1.0
    fmt: str = "General"


_PCT = "0.00%"
_COLUMNS: dict[str, _Unit] = {
    "vm": _Unit("VM"), "host": _Unit("host"), "protected": _Unit("protected"), "health": _Unit("health"),
    "protected_at": _Unit("protected at", "h from start", _H, "0.00"),
    "initial_replication_s": _Unit("initial replication", "h", _H, "0.00"),
    "initial_bytes": _Unit("initial copy", "GB", _GB, "0.00"),
    "rpo_mean_s": _Unit("RPO mean", "min", _MIN, "0.0"), "rpo_p95_s": _Unit("RPO p95", "min", _MIN, "0.0"),
    "rpo_max_s": _Unit("RPO max", "min", _MIN, "0.0"),
    "rpo_over_target": _Unit("time above the RPO target", "% of protected time", 1.0, _PCT),
    "cycles_sent": _Unit("cycles sent"), "cycles_missed": _Unit("cycles missed"), "resyncs": _Unit("resyncs"),
    "resync_s": _Unit("time in resync", "h", _H, "0.00"),
    "bytes_written": _Unit("data written", "GB", _GB, "0.00"), "bytes_sent": _Unit("data sent", "GB", _GB, "0.00"),
    "availability": _Unit("availability", "%", 1.0, "0.000%"), "downtime_s": _Unit("downtime", "h", _H, "0.00"),
    "incidents": _Unit("incidents"), "data_loss_mean_s": _Unit("data loss mean", "min", _MIN, "0.0"),
    "data_loss_max_s": _Unit("data loss max", "min", _MIN, "0.0"),
    "rto_mean_s": _Unit("RTO mean", "min", _MIN, "0.0"), "rto_max_s": _Unit("RTO max", "min", _MIN, "0.0"),
    "rto_met": _Unit("RTO objective met"), "rpo_met": _Unit("RPO objective met"), "drills": _Unit("drills"),
    "drill_rto_mean_s": _Unit("drill RTO mean", "min", _MIN, "0.0"),
    # incidents
    "kind": _Unit("kind"), "outcome": _Unit("outcome"),
    "data_loss_s": _Unit("data loss", "min", _MIN, "0.0"), "rto_s": _Unit("RTO", "min", _MIN, "0.0"),
    "sla_rto_s": _Unit("SLA RTO", "min", _MIN, "0.0"),
    # plan
    "batch": _Unit("batch"), "mean_churn_Bps": _Unit("mean churn", "Mbit/s", _MBIT, "0.00"),
    "required_Bps": _Unit("required upload", "Mbit/s", _MBIT, "0.00"),
    "required_low_Bps": _Unit("shown to fail at", "Mbit/s", _MBIT, "0.00"),
    "formula_Bps": _Unit("vendor formula", "Mbit/s", _MBIT, "0.00"),
    "formula_ratio": _Unit("formula / required", "", 1.0, "0.00"),
    "rpo_current_s": _Unit("RPO now", "min", _MIN, "0.0"),
    "rpo_current_ci95_s": _Unit("RPO now ± 95 % CI", "min", _MIN, "0.0"),
    "rpo_formula_s": _Unit("RPO at formula", "min", _MIN, "0.0"),
    "missed_formula": _Unit("cycles missed at formula", "%", 1.0, _PCT),
    "rpo_required_s": _Unit("RPO at required", "min", _MIN, "0.0"),
    "rpo_required_ci95_s": _Unit("RPO at required ± 95 % CI", "min", _MIN, "0.0"),
    "batch_initial_replication_s": _Unit("batch initial replication", "h", _H, "0.00"),
    "protected_after_s": _Unit("protected after", "h", _H, "0.00"),
}
_EVENT_TIMES = ("failed_at", "detected_at", "decision_at", "failover_started_at", "service_restored_at",
                "failback_started_at", "failback_done_at", "recovery_point_captured_at")
for _name in _EVENT_TIMES:
    _COLUMNS[_name] = _Unit(_name.removesuffix("_at").replace("_", " ") + " at", "h from start", _H, "0.00")


def _unit(name: str) -> _Unit:
    """The known unit of a column, or one named from its suffix (base units)."""
    if name in _COLUMNS:
        return _COLUMNS[name]
    if name.endswith("_ts"):
        base = _unit(name.removesuffix("_ts")).label
        return _Unit(base, "site local time", 1.0, "yyyy-mm-dd hh:mm:ss")
    for suffix, unit in (("_Bps", "bytes/s"), ("_s", "s"), ("_bytes", "bytes")):
        if name.endswith(suffix):
            return _Unit(name.removesuffix(suffix).replace("_", " "), unit)
    return _Unit(name.replace("_", " "))


def column_header(name: str) -> str:
    """The header of a column in the workbook: its label and unit, e.g. ``RPO p95 (min)``."""
    u = _unit(name)
    return f"{u.label} ({u.unit})" if u.unit else u.label


@dataclass
class Sheet:
    """A sheet: its ``title``, the ``headers`` (with units), the ``rows`` of cell values and their number
    ``formats``: one per column of a table, or, for a sheet of measures (one per row, in the column ``value``),
    one per row."""

    title: str
    headers: list[str]
    rows: list[list[Any]]
    formats: list[str]
    by_row: bool = False


def _cell(value: Any, scale: float) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).round("us").to_pydatetime()  # Excel keeps no nanoseconds
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value) if scale == 1.0 else int(value) / scale
    if isinstance(value, float | np.floating):
        v = float(value)
        return None if not math.isfinite(v) else v / scale
    return str(value)


def _table_sheet(title: str, df: pd.DataFrame) -> Sheet:
    """A table as a sheet; a time column with a calendar twin (``x_ts``) is shown as that date-time only."""
    order = [f"{c}_ts" if f"{c}_ts" in df.columns else c for c in df.columns if not str(c).endswith("_ts")]
    order += [c for c in df.columns if str(c).endswith("_ts") and c not in order]
    units = [_unit(c) for c in order]
    rows = [[_cell(v, u.scale) for v, u in zip(r, units, strict=True)]
            for r in df[order].itertuples(index=False, name=None)]
    return Sheet(title, [column_header(c) for c in order], rows, [u.fmt for u in units])


def _summary_sheet(folder: Path, summary: pd.DataFrame) -> Sheet:
    """The run in figures: the scenario, seed and objectives, then every column of the site row."""
    meta = _json(folder / "metadata.json")
    rows: list[list[Any]] = [["scenario", meta.get("scenario", ""), ""], ["seed", meta.get("seed", ""), ""],
                             ["run at", meta.get("created_at", ""), "UTC"],
                             ["drsim", (meta.get("versions") or {}).get("drsim", ""), ""]]
    formats = ["General"] * 4
    scenario = _yaml(folder / "scenario.yaml")
    for key, label in (("duration", "simulated"), ("start", "calendar start")):
        if key in scenario:
            value = scenario[key]
            rows.append([label, round(parse_duration(value) / 86400, 4), "d"] if key == "duration"
                        else [label, str(value), "site local time"])
            formats.append("General")
    for key in ("rpo", "rto"):
        value = (scenario.get("objectives") or {}).get(key)
        if value is not None:
            rows.append([f"{key.upper()} target", parse_duration(value) / _MIN, "min"])
            formats.append("0.0")
    site = summary[summary["vm"] == "(site)"]
    vms = summary[summary["vm"] != "(site)"]
    rows.append(["VMs", len(vms), ""])
    formats.append("General")
    if len(site):
        record = site.iloc[0]
        for name in summary.columns:
            if name in ("vm", "host") or name.endswith("_ts"):
                continue
            u = _unit(name)
            rows.append([u.label, _cell(record[name], u.scale), u.unit])
            formats.append(u.fmt)
    return Sheet("Summary", ["measure", "value", "unit"], rows, formats, by_row=True)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _request_sheet(folder: Path) -> Sheet:
    """A plan's request and method: the scalar entries of its metadata, with units from their names."""
    rows, formats = [], []
    for key, value in _json(folder / "metadata.json").items():
        if isinstance(value, dict | list) or value is None:
            continue
        u = _unit(key)
        if key == "rpo_s":
            u = _Unit("RPO target", "min", _MIN, "0.0")
        elif key.endswith("_Bps"):
            u = _Unit(u.label, "Mbit/s", _MBIT, "0.00")
        rows.append([u.label, _cell(value, u.scale) if isinstance(value, int | float) else str(value), u.unit])
        formats.append(u.fmt)
    return Sheet("Request", ["setting", "value", "unit"], rows, formats, by_row=True)


def workbook_sheets(folder: str | Path) -> list[Sheet]:
    """The sheets of a folder's workbook (see the module). Raises :class:`WorkbookError` when the folder holds
    neither a run's summary nor a plan."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbookError(f"{folder}: no such folder")
    sheets: list[Sheet] = []
    if (folder / "summary.parquet").is_file():
        summary = pd.read_parquet(folder / "summary.parquet")
        sheets += [_summary_sheet(folder, summary), _table_sheet("VMs", summary[summary["vm"] != "(site)"])]
        if (folder / "incidents.parquet").is_file():
            sheets.append(_table_sheet("Incidents", pd.read_parquet(folder / "incidents.parquet")))
    if (folder / "plan.parquet").is_file():
        sheets += [_table_sheet("Plan", pd.read_parquet(folder / "plan.parquet")), _request_sheet(folder)]
    for name, title in (("options", "Options"), ("deadline", "Deadline"), ("costs", "Costs")):
        if (folder / f"{name}.parquet").is_file():
            sheets.append(_table_sheet(title, pd.read_parquet(folder / f"{name}.parquet")))
    if not sheets:
        raise WorkbookError(f"{folder}: neither a run folder (summary.parquet, as drsim run writes) nor a plan folder "
                            "(plan.parquet, options.parquet or deadline.parquet, as drsim plan --report writes)")
    return sheets


def write_workbook(folder: str | Path, path: str | Path | None = None) -> Path:
    """Write the folder's workbook (default ``FOLDER/report.xlsx``), atomically. Returns its path."""
    folder = Path(folder)
    sheets = workbook_sheets(folder)
    book = Workbook()
    book.remove(book.active)
    bold = Font(bold=True)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title)
        ws.append(sheet.headers)
        for cell in ws[1]:
            cell.font = bold
        for row in sheet.rows:
            ws.append(row)
        widths = [len(h) for h in sheet.headers]
        for i, row in enumerate(ws.iter_rows(min_row=2)):
            for j, cell in enumerate(row):
                fmt = sheet.formats[i] if sheet.by_row else sheet.formats[j]
                if isinstance(cell.value, datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
                elif isinstance(cell.value, float | int) and not isinstance(cell.value, bool):
                    cell.number_format = fmt
                widths[j] = max(widths[j], min(60, len(str(cell.value if cell.value is not None else ""))))
        for j, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(j)].width = width + 2
        ws.freeze_panes = "A2"
        if sheet.rows:
            ws.auto_filter.ref = ws.dimensions
    target = Path(path) if path is not None else folder / WORKBOOK_NAME
    atomic_write(target, lambda tmp: book.save(tmp))
    return target
