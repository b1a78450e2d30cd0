"""The folder of a finished experiment, ``<out>/<scenario>/sweep-<UTC time>/``: its tables, resolved scenario
and metadata, written at once (:func:`write_experiment`) or from the ``sweep-<time>.incomplete`` folder the
experiment streamed into (:func:`incomplete_folder`, :func:`finish_experiment`).

Imports :mod:`drsim.scenario`, :mod:`drsim.results` and, of this stage, the storage's folder names and the
outcome.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from drsim.experiments.outcome import Experiment
from drsim.experiments.storage import RUNS
from drsim.results.folders import atomic_folder, atomic_write
from drsim.scenario.document import scenario_to_dict

__all__ = ["write_experiment", "incomplete_folder", "finish_experiment", "INCOMPLETE"]


def write_experiment(exp: Experiment, out_root: str | Path = "results", extra: dict[str, Any] | None = None) -> Path:
    """Write ``tidy.parquet``, ``aggregate.parquet``, ``failures.parquet`` (if any run failed), the resolved base
    ``scenario.yaml`` and ``metadata.json`` into ``out_root/<scenario>/sweep-<UTC time>/`` (a ``-2``... suffix if
    it exists). Written under a temporary name and renamed when complete, like
    :func:`drsim.results.folders.write_run`."""
    now = datetime.now(UTC)
    parent = Path(out_root) / exp.scenario.name
    return atomic_folder(parent, f"sweep-{now:%Y%m%d-%H%M%S}", lambda tmp: _fill(exp, tmp, now, extra))


def _fill(exp: Experiment, folder: Path, now: datetime, extra: dict[str, Any] | None,
          runs: Path | None = None) -> None:
    tables = {"tidy": exp.tidy, "aggregate": exp.aggregate}
    if len(exp.failures):
        tables["failures"] = exp.failures
    for name, df in tables.items():
        atomic_write(folder / f"{name}.parquet", lambda t, df=df: df.to_parquet(t, index=False))
    with open(folder / "scenario.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump(scenario_to_dict(exp.scenario), f, sort_keys=False, allow_unicode=True)
    meta = {**exp.metadata(), "created_at": now.isoformat(timespec="seconds"),
            "tables": {name: {"rows": len(df), "columns": list(map(str, df.columns))}
                       for name, df in tables.items()},
            **(extra or {})}
    if runs is not None and runs.is_dir():
        kept = sum(1 for _ in runs.glob("point-*/replication-*"))
        meta["runs_kept"] = {"folder": f"{RUNS}/point-<point>/replication-<replication>/", "count": kept}
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    if runs is not None and runs.is_dir():
        os.rename(runs, folder / RUNS)  # last: moved back if anything after fails (see finish_experiment)


INCOMPLETE = ".incomplete"


def incomplete_folder(out_root: str | Path, scenario_name: str) -> Path:
    """A free path ``out_root/<scenario>/sweep-<UTC time>.incomplete`` (a ``-2``... suffix if taken) to stream a
    sweep into with ``run_experiment(..., out=folder)``, which creates it once every point is valid;
    :func:`finish_experiment` turns it into ``sweep-<time>/`` when complete."""
    parent = Path(out_root) / scenario_name
    base = f"sweep-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    n = 1
    while True:
        name = base if n == 1 else f"{base}-{n}"
        if not (parent / name).exists() and not (parent / f"{name}{INCOMPLETE}").exists():
            return parent / f"{name}{INCOMPLETE}"
        n += 1


def finish_experiment(exp: Experiment, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the finished experiment streamed into ``folder`` (``sweep-<time>.incomplete``) as
    :func:`write_experiment` does, atomically, into ``sweep-<time>/`` beside it (a ``-2``... suffix if taken),
    moving the per-run tables (``runs/``, with ``keep_runs``) into it, then remove ``folder`` (its
    experiment.json and parts). Returns the final folder."""
    folder = Path(folder)
    base = folder.name.removesuffix(INCOMPLETE)
    if base == folder.name:
        base = f"{base}-complete"
    runs = folder / RUNS

    def undo(tmp: Path) -> None:  # never lose the runs: move them back before the temporary folder goes
        if (tmp / RUNS).is_dir() and not runs.exists():
            os.rename(tmp / RUNS, runs)

    target = atomic_folder(folder.parent, base, lambda tmp: _fill(exp, tmp, datetime.now(UTC), extra, runs), undo)
    shutil.rmtree(folder, ignore_errors=True)
    return target
