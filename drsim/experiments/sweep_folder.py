"""The folder of an experiment, ``<out>/<scenario>/sweep-<UTC time>/``: its tables, resolved scenario and
metadata, written at once (:func:`write_experiment`), or streamed into ``sweep-<time>.incomplete/`` as the runs
finish (:func:`incomplete_folder`, :func:`stream_folder`, which also finds the one to resume) and finished there
(:func:`finish_experiment`), which renames it. drsim never moves or removes a file it did not write: a
streaming folder that holds anything else is refused.

Imports :mod:`drsim.scenario`, :mod:`drsim.results` and, of this stage, the errors, the storage and the outcome.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml

from drsim.experiments.errors import ExperimentError
from drsim.experiments.outcome import Experiment
from drsim.experiments.storage import (
    _PART,
    EXPERIMENT_FILE,
    PARTS,
    RUNS,
    _open_stream,
    _start_stream,
    _temporary,
    foreign_entries,
    refusal,
)
from drsim.results.folders import atomic_folder, atomic_write, rename_free
from drsim.scenario.document import scenario_to_dict

__all__ = ["write_experiment", "incomplete_folder", "interrupted_folders", "stream_folder", "finish_experiment",
           "remove_stream_files", "INCOMPLETE"]


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
    text = yaml.safe_dump(scenario_to_dict(exp.scenario), sort_keys=False, allow_unicode=True)
    atomic_write(folder / "scenario.yaml", lambda t: t.write_text(text, encoding="utf-8"))
    meta = {**exp.metadata(), "created_at": now.isoformat(timespec="seconds"),
            "tables": {name: {"rows": len(df), "columns": list(map(str, df.columns))}
                       for name, df in tables.items()},
            **(extra or {})}
    if runs is not None and runs.is_dir():
        kept = sum(1 for _ in runs.glob("point-*/replication-*"))
        meta["runs_kept"] = {"folder": f"{RUNS}/point-<point>/replication-<replication>/", "count": kept}
    meta_text = json.dumps(meta, indent=2, default=str) + "\n"
    atomic_write(folder / "metadata.json", lambda t: t.write_text(meta_text, encoding="utf-8"))


INCOMPLETE = ".incomplete"


def incomplete_folder(out_root: str | Path, scenario_name: str) -> Path:
    """Create a new, empty folder ``out_root/<scenario>/sweep-<UTC time>.incomplete`` to stream a sweep into (a
    ``-2``... suffix if that name or ``sweep-<time>`` is taken: made with an exclusive ``mkdir``, so two sweeps
    started in the same second get two folders); :func:`finish_experiment` turns it into ``sweep-<time>/``."""
    parent = Path(out_root) / scenario_name
    parent.mkdir(parents=True, exist_ok=True)
    base = f"sweep-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    n = 1
    while True:
        name = base if n == 1 else f"{base}-{n}"
        if not (parent / name).exists():
            try:
                (parent / f"{name}{INCOMPLETE}").mkdir()
                return parent / f"{name}{INCOMPLETE}"
            except FileExistsError:
                pass
        n += 1


def interrupted_folders(out_root: str | Path, scenario_name: str) -> list[Path]:
    """The streaming folders of interrupted sweeps of ``scenario_name`` under ``out_root``
    (``<scenario>/sweep-*.incomplete/`` holding ``experiment.json``), the most recently written first."""
    found = [f for f in (Path(out_root) / scenario_name).glob(f"sweep-*{INCOMPLETE}")
             if (f / EXPERIMENT_FILE).is_file()]
    return sorted(found, key=lambda f: max(p.stat().st_mtime for p in (f, f / PARTS) if p.exists()), reverse=True)


def stream_folder(out: Path, scenario_name: str, record: dict[str, Any], resume: bool) -> tuple[Path, IO[bytes]]:
    """The folder to stream an experiment (described by ``record``) into, and its ``experiment.json`` open and
    locked: a new one under the root ``out`` (or ``out`` itself if it is an empty ``*.incomplete`` folder, as
    :func:`incomplete_folder` makes), or with ``resume`` the interrupted one to continue: ``out`` itself
    if it is an experiment's folder (holds ``experiment.json``), else the latest interrupted sweep of this
    experiment under ``out/<scenario>/``."""
    if not resume:
        fresh = out.name.endswith(INCOMPLETE) and out.is_dir() and not any(out.iterdir())
        folder = out if fresh else incomplete_folder(out, scenario_name)  # fresh: made by incomplete_folder
        return folder, _start_stream(folder, record)
    if (out / EXPERIMENT_FILE).exists():
        return out, _open_stream(out, record)
    refused = []
    for folder in interrupted_folders(out, scenario_name):
        try:
            return folder, _open_stream(folder, record)
        except ExperimentError as exc:
            refused.append(str(exc))
    where = out / scenario_name
    why = (f"none of the {len(refused)} interrupted sweeps in {where} can be resumed; first: {refused[0]}" if refused
           else f"{where} holds no interrupted sweep (sweep-*{INCOMPLETE})")
    raise ExperimentError(f"cannot resume {out}: it has no {EXPERIMENT_FILE} (not an experiment folder), and {why}")


def finish_experiment(exp: Experiment, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Finish the experiment streamed into ``folder``: write its tables, ``scenario.yaml`` and ``metadata.json``
    (as :func:`write_experiment` does) into it, rename it from ``sweep-<time>.incomplete`` to ``sweep-<time>``
    (a ``-2``... suffix if taken), then remove the streaming files (``experiment.json`` and ``parts/``); the kept
    runs (``runs/``) stay where they are. Only drsim's own files are renamed or removed: a folder that holds
    anything else is refused (:class:`ExperimentError`) and left as it is. A folder streamed by drsim before 0.2
    under another name is finished in place. Returns the finished folder.

    Crash-safe: until the rename the folder still holds the experiment and every part (resuming finishes it
    again); after it the folder is complete, and a crash before the streaming files are removed leaves only
    those (``drsim cleanup`` lists and removes them). An experiment that :func:`run_experiment` already finished
    (its streaming folder renamed) returns its folder (``exp.folder``)."""
    folder = Path(folder)
    if exp.folder is not None and not folder.exists():  # run_experiment(out=...) finished it already
        return exp.folder
    foreign = foreign_entries(folder)
    if foreign:
        raise ExperimentError(refusal(folder, foreign, "finish the experiment in"))
    _fill(exp, folder, datetime.now(UTC), extra, folder / RUNS)
    final = folder
    if folder.name.endswith(INCOMPLETE):
        final = rename_free(folder, folder.parent, folder.name.removesuffix(INCOMPLETE))
    remove_stream_files(final)
    return final


def remove_stream_files(folder: Path) -> None:
    """Remove the streaming files of a finished experiment ``folder``: its parts, then ``experiment.json``."""
    parts = folder / PARTS
    if parts.is_dir():
        for path in parts.iterdir():
            if _PART.fullmatch(path.name) or _temporary(path.name):
                path.unlink(missing_ok=True)
        if not any(parts.iterdir()):
            parts.rmdir()
    (folder / EXPERIMENT_FILE).unlink(missing_ok=True)
