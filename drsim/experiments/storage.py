"""An experiment streamed to a folder while it runs, and resumed from it: ``experiment.json``, the parts, the
kept runs' tables, the check that a folder holds the same experiment, and reading back what it holds.

With ``out=FOLDER``, :func:`~drsim.experiments.runner.run_experiment` first writes ``FOLDER/experiment.json``
(the resolved sweep, points, replications, seeds, base scenario and drsim version), then, as each task finishes,
its rows as ``FOLDER/parts/part-<point>-<first replication>.parquet`` (and its failed runs, if any, as
``failures-<point>-<first replication>.parquet`` just before; with ``keep_runs``, every run's full tables as
``FOLDER/runs/point-<point>/replication-<k>/`` before that). Every file and run folder is written under a
temporary name and renamed, so one that exists is whole. ``resume=True`` checks that experiment.json describes
the same experiment, loads the parts and runs only the (point, replication) pairs that are missing: the tables
are identical to those of an uninterrupted run.

Imports :mod:`drsim.scenario`, :mod:`drsim.results` and, of this stage, the errors, the setting paths, the
statistics' key columns, the design and the settings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from drsim.experiments.design import _Point
from drsim.experiments.errors import ExperimentError
from drsim.experiments.settings import ExperimentSettings
from drsim.experiments.settings_paths import _plain
from drsim.experiments.statistics import KEY_COLUMNS
from drsim.results.folders import atomic_write, fill_run_folder, replace_folder
from drsim.results.tables import TABLES
from drsim.scenario.document import Scenario, scenario_hash, scenario_to_dict
from drsim.version import __version__

__all__ = ["read_run", "run_folder", "EXPERIMENT_FILE", "PARTS", "RUNS"]

EXPERIMENT_FILE = "experiment.json"
PARTS = "parts"
RUNS = "runs"


def _experiment_record(scenario: Scenario, settings: ExperimentSettings, points: list[_Point],
                       seeds: list[int]) -> dict[str, Any]:
    return {
        "scenario": scenario.name,
        "scenario_hash": scenario_hash(scenario),
        "source": str(scenario.source) if scenario.source else None,
        **settings.record(),
        "points": [{"point": i, "settings": _plain(pt.settings), "sample": pt.sample,
                    "scenario_hash": scenario_hash(pt.scenario)} for i, pt in enumerate(points)],
        "run_seeds": seeds,
        "base_scenario": _plain(scenario_to_dict(scenario)),
        "drsim_version": __version__,
    }


_RESUME_CHECKS = (("scenario_hash", "the scenario", None), ("sweep", "the sweep", {}),
                  ("lhs", "the Latin hypercube", {}), ("samples", "the samples", None),
                  ("replications", "the replications", None),
                  ("experiment_seed", "the experiment seed", None), ("precision", "the precision targets", []),
                  ("max_replications", "the maximum replications", None), ("keep_runs", "keep_runs", False))


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
    failed = [(p, o.replication, o.seed, o.error, o.traceback) for o in outcomes if o.summary is None]
    if failed:
        fdf = _failures_frame(failed)
        atomic_write(parts / f"failures-{p}-{first}.parquet", lambda t: fdf.to_parquet(t, index=False))
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
    atomic_write(parts / f"part-{p}-{first}.parquet", lambda t: part.to_parquet(t, index=False))


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
    """The finished runs of ``folder/parts``: summaries by (point, replication) and failed runs."""
    results: dict[tuple[int, int], pd.DataFrame] = {}
    failed: list[tuple[int, int, int, str, str]] = []
    parts = folder / PARTS
    for path in sorted(parts.glob("part-*.parquet")):
        df = pd.read_parquet(path)
        for (p, rep), rows in df.groupby(["point", "replication"], sort=False):
            results[(int(p), int(rep))] = rows.drop(columns=list(KEY_COLUMNS)).reset_index(drop=True)
        fpath = parts / ("failures-" + path.name.removeprefix("part-"))
        if fpath.exists():
            fdf = pd.read_parquet(fpath)
            failed.extend((int(p), int(r), int(s), str(e), str(t)) for p, r, s, e, t in zip(
                fdf["point"], fdf["replication"], fdf["seed"], fdf["error"], fdf["traceback"], strict=True))
    failed = [f for f in failed if (f[0], f[1]) not in results]
    return results, list({(f[0], f[1]): f for f in failed}.values())
