"""An experiment streamed to a folder while it runs, and resumed from it: ``experiment.json``, the parts, the
kept runs' tables, the check that a folder holds the same experiment and nothing drsim did not write, and
reading back what it holds.

With ``out``, :func:`~drsim.experiments.runner.run_experiment` streams into a new folder FOLDER
(``<out>/<scenario>/sweep-<UTC time>.incomplete``, :mod:`drsim.experiments.sweep_folder`): it first writes
``FOLDER/experiment.json`` (the resolved sweep, points, replications, seeds, base scenario, drsim version and a
digest of the points' price sheets, on which the rows' costs depend), then, as each task finishes, its rows as
``FOLDER/parts/part-<point>-<first replication>.parquet`` (and its
failed runs, if any, as ``failures-<point>-<first replication>.parquet`` just before; with ``keep_runs``, every
run's full tables as ``FOLDER/runs/point-<point>/replication-<k>/`` before that). Every file and run folder is
written under a temporary name and renamed, so one that exists is whole. While it runs, the process holds a
lock on ``experiment.json`` (:mod:`drsim.results.ownership`). ``resume=True`` takes the lock, checks that
experiment.json describes the same experiment and that the folder holds nothing drsim did not write
(:func:`foreign_entries`), loads the parts (a part that cannot be read is run again; with ``keep_runs``, so is
a run whose folder is missing) and runs only the (point, replication) pairs that are missing: the tables are
identical to those of an uninterrupted run.

Imports :mod:`drsim.scenario`, :mod:`drsim.results` and, of this stage, the errors, the setting paths, the
statistics' key columns, the design and the settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import pandas as pd

from drsim.experiments.design import _Point
from drsim.experiments.errors import ExperimentError
from drsim.experiments.settings import ExperimentSettings
from drsim.experiments.settings_paths import _plain
from drsim.experiments.statistics import KEY_COLUMNS
from drsim.results.folders import atomic_write, fill_run_folder, replace_folder
from drsim.results.ownership import in_use, lock, release
from drsim.results.tables import TABLES
from drsim.scenario.document import Scenario, scenario_hash, scenario_to_dict
from drsim.scenario.prices import PriceSheet, load_price_sheet
from drsim.version import __version__

__all__ = ["read_run", "run_folder", "foreign_entries", "EXPERIMENT_FILE", "PARTS", "RUNS", "FINISHED_FILES"]

EXPERIMENT_FILE = "experiment.json"
PARTS = "parts"
RUNS = "runs"
#: the files of a finished experiment folder, written into the streaming folder when the experiment finishes
FINISHED_FILES = ("tidy.parquet", "aggregate.parquet", "failures.parquet", "scenario.yaml", "metadata.json")
_PART = re.compile(r"(part|failures)-\d+-\d+(-\d+)?\.parquet")
_RUN_FILES = {f"{name}.parquet" for name in TABLES} | {"scenario.yaml", "metadata.json", "report.html", "report.md"}


def _temporary(name: str) -> bool:
    """A file :func:`~drsim.results.folders.atomic_write` was writing (``.<name>.<pid>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def foreign_entries(folder: Path) -> list[str]:
    """What the streaming ``folder`` of an experiment holds that drsim does not write there (paths relative to
    it): anything but ``experiment.json``, ``parts/`` (the parts and failures), ``runs/point-<p>/replication-<k>/``
    (a kept run's tables and their report), the finished experiment's files and drsim's temporary files."""
    foreign = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name in (EXPERIMENT_FILE, *FINISHED_FILES) and entry.is_file() or _temporary(name) and entry.is_file():
            continue
        if name == PARTS and entry.is_dir():
            foreign += [f"{PARTS}/{e.name}" for e in sorted(entry.iterdir())
                        if not (e.is_file() and (_PART.fullmatch(e.name) or _temporary(e.name)))]
        elif name == RUNS and entry.is_dir():
            foreign += _foreign_runs(entry)
        else:
            foreign.append(name + ("/" if entry.is_dir() else ""))
    return foreign


def _foreign_runs(runs: Path) -> list[str]:
    foreign = []
    for point in sorted(runs.iterdir()):
        if not (point.is_dir() and re.fullmatch(r"point-\d+", point.name)):
            foreign.append(f"{RUNS}/{point.name}")
            continue
        for run in sorted(point.iterdir()):
            where = f"{RUNS}/{point.name}/{run.name}"
            if re.fullmatch(r"\.replication-\d+-.+", run.name) and run.is_dir():
                continue  # one being written when the experiment stopped (see _clear_temporaries)
            if not (run.is_dir() and re.fullmatch(r"replication-\d+", run.name)):
                foreign.append(where)
            else:
                foreign += [f"{where}/{f.name}" for f in sorted(run.iterdir())
                            if not (f.is_file() and (f.name in _RUN_FILES or re.fullmatch(r"report-.+\.png", f.name)))]
    return foreign


def _clear_temporaries(folder: Path) -> None:
    """Remove what a stopped process was writing into the streaming ``folder`` (whose lock the caller holds):
    temporary files and half-written kept runs, all under drsim's own temporary names."""
    for path in [*folder.glob(".*.tmp"), *folder.glob(f"{PARTS}/.*.tmp")]:
        path.unlink(missing_ok=True)
    for path in folder.glob(f"{RUNS}/point-*/.replication-*"):
        if path.is_dir() and not in_use(path / ".drsim-incomplete"):
            shutil.rmtree(path, ignore_errors=True)


def _start_stream(folder: Path, record: dict[str, Any]) -> IO[bytes]:
    """Write ``experiment.json`` into the new, empty streaming ``folder`` and return it open and locked (keep it
    open while the experiment runs: the lock tells other drsim processes the folder is in use)."""
    (folder / PARTS).mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{EXPERIMENT_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    handle = open(tmp, "rb")  # noqa: SIM115 - held open (locked) while the experiment runs
    try:
        lock(handle)
        os.replace(tmp, folder / EXPERIMENT_FILE)  # appears locked
    except BaseException:
        release(handle)
        raise
    return handle


def _open_stream(folder: Path, record: dict[str, Any]) -> IO[bytes]:
    """Take the streaming ``folder`` of an interrupted experiment to resume it: lock it, check it holds the
    experiment ``record`` and nothing drsim did not write, and clear what a stopped process left half-written.
    Returns ``experiment.json`` open and locked."""
    try:
        handle = open(folder / EXPERIMENT_FILE, "rb")  # noqa: SIM115 - held open (locked) while it runs
    except FileNotFoundError:
        raise ExperimentError(f"cannot resume {folder}: it has no {EXPERIMENT_FILE} (not an experiment folder)") \
            from None
    except OSError as exc:
        raise ExperimentError(f"cannot resume {folder}: cannot read {EXPERIMENT_FILE}: {exc}") from None
    try:
        if not lock(handle):
            raise ExperimentError(f"cannot resume {folder}: another drsim process is running this experiment "
                                  "(wait for it to finish, or stop it first)")
        _check_resume(folder, record)
        foreign = foreign_entries(folder)
        if foreign:
            raise ExperimentError(refusal(folder, foreign, "stream an experiment into"))
        _clear_temporaries(folder)
    except BaseException:
        release(handle)
        raise
    return handle


def refusal(folder: Path, foreign: list[str], action: str) -> str:
    """Why drsim will not ``action`` ``folder``, which holds the ``foreign`` entries, and what to do."""
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    return (f"will not {action} {folder}: it holds what drsim did not write there ({shown}); drsim moves and "
            "removes only its own files, and an experiment's folder must hold nothing else. Move those elsewhere, "
            f"or move the experiment's {EXPERIMENT_FILE}, {PARTS}/ (and {RUNS}/) into a new empty folder, then "
            "resume")


def prices_digest(sheets: Sequence[PriceSheet]) -> str:
    """A SHA-256 (first 16 hex digits) of the distinct price sheets of the points: the costs in the tables depend
    on them, and a scenario's hash leaves its prices out. (A sweep of a price also changes the grid, which is
    compared on its own.)"""
    text = json.dumps(sorted({json.dumps(sheet.model_dump(mode="json"), sort_keys=True) for sheet in sheets}))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _experiment_record(scenario: Scenario, settings: ExperimentSettings, points: list[_Point],
                       seeds: list[int], sheets: Sequence[PriceSheet] | None = None) -> dict[str, Any]:
    if sheets is None:
        sheets = [load_price_sheet(None, pt.scenario.prices) for pt in points]
    return {
        "scenario": scenario.name,
        "scenario_hash": scenario_hash(scenario),
        "source": str(scenario.source) if scenario.source else None,
        **settings.record(),
        "points": [{"point": i, "settings": _plain(pt.settings), "sample": pt.sample,
                    "scenario_hash": scenario_hash(pt.scenario)} for i, pt in enumerate(points)],
        "run_seeds": seeds,
        "prices": prices_digest(sheets),
        "base_scenario": _plain(scenario_to_dict(scenario)),
        "drsim_version": __version__,
    }


_RESUME_CHECKS = (("scenario_hash", "the scenario", None), ("sweep", "the sweep", {}),
                  ("lhs", "the Latin hypercube", {}), ("samples", "the samples", None),
                  ("replications", "the replications", None),
                  ("experiment_seed", "the experiment seed", None), ("precision", "the precision targets", []),
                  ("max_replications", "the maximum replications", None), ("keep_runs", "keep_runs", False),
                  ("prices", "the price sheets (the runs' costs; not recorded by a drsim before costs)", None))


def _check_resume(folder: Path, record: dict[str, Any]) -> None:
    """Refuse to resume ``folder`` unless its experiment.json describes the experiment ``record``."""
    path = folder / EXPERIMENT_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExperimentError(f"cannot resume {folder}: it has no {EXPERIMENT_FILE} (not an experiment folder)") \
            from None
    except (OSError, ValueError) as exc:
        raise ExperimentError(f"cannot resume {folder}: cannot read {EXPERIMENT_FILE}: {exc}") from None
    differ = [f"{what} ({stored.get(key, default)!r} there, {record[key]!r} now)" for key, what, default
              in _RESUME_CHECKS if stored.get(key, default) != record[key]]
    if not differ and [p.get("scenario_hash") for p in stored.get("points", [])] != \
            [p["scenario_hash"] for p in record["points"]]:
        differ.append("the sweep points")
    if differ:
        raise ExperimentError(f"cannot resume {folder}: it holds a different experiment; differs: "
                              + "; ".join(differ))


class _Outcome(NamedTuple):
    """One run of a task: its summary (None if it raised), the error and traceback, and with ``keep_runs`` every
    table as Parquet contents."""

    replication: int
    seed: int
    summary: pd.DataFrame | None
    error: str | None = None
    traceback: str | None = None
    tables: dict[str, bytes] | None = None


def _failures_frame(failed: Sequence[tuple[int, int, int, str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"point": pd.Series([f[0] for f in failed], dtype="int64"),
                         "replication": pd.Series([f[1] for f in failed], dtype="int64"),
                         "seed": pd.Series([f[2] for f in failed], dtype="int64"),
                         "error": pd.Series([f[3] for f in failed], dtype=object),
                         "traceback": pd.Series([f[4] for f in failed], dtype=object)})


def _write_part(folder: Path, p: int, first: int, outcomes: list[_Outcome]) -> None:
    """The rows of one finished task: failures first, then the part (whose presence marks the task done)."""
    parts = folder / PARTS
    name = f"{p}-{first}"
    n = 1
    while (parts / f"part-{name}.parquet").exists():  # runs again on resume (kept runs lost): keep the first part
        n += 1
        name = f"{p}-{first}-{n}"
    failed = [(p, o.replication, o.seed, o.error, o.traceback) for o in outcomes if o.summary is None]
    if failed:
        fdf = _failures_frame(failed)
        atomic_write(parts / f"failures-{name}.parquet", lambda t: fdf.to_parquet(t, index=False))
    frames = []
    for o in outcomes:
        if o.summary is not None:
            df = o.summary.copy()
            df.insert(0, "seed", np.int64(o.seed))
            df.insert(0, "replication", np.int64(o.replication))
            df.insert(0, "point", np.int64(p))
            frames.append(df)
    part = (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame({c: pd.Series(dtype="int64") for c in KEY_COLUMNS}))
    atomic_write(parts / f"part-{name}.parquet", lambda t: part.to_parquet(t, index=False))


def run_folder(folder: str | Path, point: int, replication: int) -> Path:
    """Where ``keep_runs`` puts the tables of one run in an experiment (or sweep) folder."""
    return Path(folder) / RUNS / f"point-{point}" / f"replication-{replication}"


def _write_runs(folder: Path, p: int, pt: _Point, outcomes: list[_Outcome]) -> None:
    """With ``keep_runs``: each successful run's tables as a run folder (the layout of ``drsim run``)."""
    for o in outcomes:
        if o.tables is not None:
            extra = {"experiment": {"point": p, "replication": o.replication, "settings": _plain(pt.settings)}}
            replace_folder(run_folder(folder, p, o.replication),
                           lambda tmp, o=o, extra=extra: fill_run_folder(tmp, pt.scenario, o.seed, o.tables,
                                                                         extra=extra))


def read_run(folder: str | Path, point: int, replication: int) -> dict[str, pd.DataFrame]:
    """The tables of one run kept with ``keep_runs`` (``folder``: the sweep or experiment folder), by name."""
    where = run_folder(folder, point, replication)
    if not where.is_dir():
        raise FileNotFoundError(f"no tables of point {point} replication {replication} in {folder} (kept with "
                                "keep_runs / --keep-runs only)")
    return {name: pd.read_parquet(where / f"{name}.parquet") for name in TABLES}


def _load_parts(folder: Path) -> tuple[dict[tuple[int, int], pd.DataFrame], list[tuple[int, int, int, str, str]]]:
    """The finished runs of ``folder/parts``: summaries by (point, replication) and failed runs. A part that
    cannot be read is skipped: its runs are computed again."""
    results: dict[tuple[int, int], pd.DataFrame] = {}
    failed: list[tuple[int, int, int, str, str]] = []
    parts = folder / PARTS
    for path in sorted(parts.glob("part-*.parquet")):
        try:
            df = pd.read_parquet(path)
        except Exception:  # e.g. truncated by a power cut (drsim does not fsync): its runs are computed again
            continue
        for (p, rep), rows in df.groupby(["point", "replication"], sort=False):
            results[(int(p), int(rep))] = rows.drop(columns=list(KEY_COLUMNS)).reset_index(drop=True)
        fpath = parts / ("failures-" + path.name.removeprefix("part-"))
        if fpath.exists():
            try:
                fdf = pd.read_parquet(fpath)
            except Exception:  # likewise: those runs are computed again
                continue
            failed.extend((int(p), int(r), int(s), str(e), str(t)) for p, r, s, e, t in zip(
                fdf["point"], fdf["replication"], fdf["seed"], fdf["error"], fdf["traceback"], strict=True))
    failed = [f for f in failed if (f[0], f[1]) not in results]
    return results, list({(f[0], f[1]): f for f in failed}.values())


def _without_lost_runs(folder: Path, results: dict[tuple[int, int], pd.DataFrame]) -> dict[
        tuple[int, int], pd.DataFrame]:
    """With ``keep_runs``: the finished runs whose tables are in ``folder/runs``; a run whose folder is missing
    (removed, or stranded by a crash of drsim before 0.2 while it finished) is run again, identically."""
    return {key: df for key, df in results.items() if run_folder(folder, *key).is_dir()}
