"""What stopped runs left under an output folder, and removing it (``drsim cleanup``).

A run, sweep or plan killed while it wrote its folder leaves a hidden ``.incomplete-*`` folder (drsim's marker
inside, :mod:`drsim.results.ownership`); a sweep interrupted or killed while it ran leaves its streaming folder
``sweep-<time>.incomplete/``, which ``--resume`` completes; a sweep killed in the instant after its folder was
renamed leaves its streaming files (``experiment.json``, ``parts/``) in the finished folder. :func:`find_leftovers`
lists them under an output root (two levels down: ``<root>/<scenario>/...``), with whether a running drsim holds
them; :func:`remove_leftover` removes one, if it is drsim's own (its marker, or nothing but drsim's file names in
it) and not in use.

Imports :mod:`drsim.results` and, of this stage, the storage and the sweep folder.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from drsim.experiments.storage import _PART, EXPERIMENT_FILE, FINISHED_FILES, PARTS, RUNS, _temporary, foreign_entries
from drsim.experiments.sweep_folder import INCOMPLETE, remove_stream_files
from drsim.results.folders import INCOMPLETE_PREFIX
from drsim.results.ownership import MARKER, in_use, read_marker
from drsim.results.tables import TABLES

__all__ = ["Leftover", "find_leftovers", "remove_leftover", "leftovers_text", "leftovers_note", "INTERRUPTED",
           "UNFINISHED", "STREAM_FILES"]

INTERRUPTED = "interrupted sweep"
UNFINISHED = "unfinished folder"
STREAM_FILES = "streaming files left in a finished sweep"

#: every file name drsim writes into a run, sweep or plan folder
_KNOWN = ({f"{t}.{ext}" for t in TABLES for ext in ("parquet", "csv")} | set(FINISHED_FILES)
          | {"summary.txt", "plan.parquet", "report.html", "report.md", RUNS, MARKER})


@dataclass(frozen=True)
class Leftover:
    """One folder left by a stopped run: ``kind`` (:data:`INTERRUPTED`, :data:`UNFINISHED` or
    :data:`STREAM_FILES`), whether a running drsim holds it (``in_use``), whether it is recognised as drsim's own
    (``own``), its size in bytes and a one-line ``detail``."""

    path: Path
    kind: str
    in_use: bool
    own: bool
    size: int
    detail: str

    @property
    def removable(self) -> bool:
        return self.own and not self.in_use


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _known(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but file names drsim writes."""
    return all(e.name in _KNOWN or _temporary(e.name) or re.fullmatch(r"report-.+\.png", e.name)
               for e in folder.iterdir())


def _runs_done(folder: Path) -> int:
    done: set[tuple[int, int]] = set()
    for path in (folder / PARTS).glob("*.parquet"):
        if _PART.fullmatch(path.name):
            try:
                t = pq.read_table(path, columns=["point", "replication"])
            except Exception:  # a part that cannot be read is run again on resume
                continue
            done.update(zip(t["point"].to_pylist(), t["replication"].to_pylist(), strict=True))
    return len(done)


def _interrupted(folder: Path) -> Leftover:
    try:
        record = json.loads((folder / EXPERIMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    points, reps = len(record.get("points", [])), record.get("replications", "?")
    swept = ", ".join([*record.get("sweep", {}), *record.get("lhs", {})]) or "no sweep"
    detail = (f"{record.get('scenario', '?')}: {_runs_done(folder)} runs done of {points} points x {reps} "
              f"replications ({swept}; seed {record.get('experiment_seed', '?')}"
              f"{'; keep_runs' if record.get('keep_runs') else ''}); resume: drsim sweep "
              f"{record.get('source') or 'SCENARIO'} --resume {folder}, with the options it was started with")
    foreign = foreign_entries(folder)
    if foreign:
        detail += f"; holds what drsim did not write: {', '.join(foreign[:3])}"
    return Leftover(folder, INTERRUPTED, in_use(folder / EXPERIMENT_FILE), not foreign, _size(folder), detail)


def _unfinished(folder: Path) -> Leftover:
    marker = read_marker(folder)
    if marker is not None:
        detail = (f"becomes {marker.get('becomes', '?')}; started {marker.get('started_at', '?')} by drsim "
                  f"{marker.get('drsim', '?')}, process {marker.get('pid', '?')} on {marker.get('host', '?')}")
    else:
        detail = "no drsim marker (left by drsim before 0.2)"
    if (folder / RUNS).is_dir():
        n = sum(1 for _ in (folder / RUNS).glob("point-*/replication-*"))
        detail += (f"; holds the kept tables of {n} runs of a sweep that was killed while it finished: resuming "
                   "that sweep computes them again")
    own = marker is not None or _known(folder)
    return Leftover(folder, UNFINISHED, in_use(folder / MARKER), own, _size(folder), detail)


def _classify(entry: Path) -> Leftover | None:
    if not entry.is_dir() or entry.is_symlink():
        return None
    if entry.name.startswith(INCOMPLETE_PREFIX):
        return _unfinished(entry)
    if (entry / EXPERIMENT_FILE).is_file():
        if (entry / "metadata.json").is_file() and (entry / "tidy.parquet").is_file() \
                and not entry.name.endswith(INCOMPLETE):
            return Leftover(entry, STREAM_FILES, in_use(entry / EXPERIMENT_FILE), True,
                            _size(entry / PARTS) + (entry / EXPERIMENT_FILE).stat().st_size,
                            f"{EXPERIMENT_FILE} and {PARTS}/ (the sweep itself is complete)")
        return _interrupted(entry)
    if entry.name.endswith(INCOMPLETE) and entry.name.startswith("sweep-"):  # stopped before experiment.json
        foreign = foreign_entries(entry)
        return Leftover(entry, UNFINISHED, False, not foreign, _size(entry),
                        "a sweep's streaming folder, stopped before its experiment was recorded: nothing to resume"
                        + (f"; holds what drsim did not write: {', '.join(foreign[:3])}" if foreign else ""))
    return None


def find_leftovers(root: str | Path) -> list[Leftover]:
    """What stopped runs left in ``root`` (an output root such as ``results``, or one scenario's folder in it),
    looking at ``root`` itself and two levels of folders under it, in path order."""
    root = Path(root)
    found: dict[Path, Leftover] = {}
    levels = [root]
    for depth in range(3):
        following = []
        for folder in levels:
            item = _classify(folder)
            if item is not None:
                found[folder] = item
            elif depth < 2:
                try:
                    following += [e for e in folder.iterdir() if e.is_dir() and not e.is_symlink()]
                except OSError:
                    continue
        levels = following
    return sorted(found.values(), key=lambda item: str(item.path))


def remove_leftover(item: Leftover) -> None:
    """Remove ``item`` if it is drsim's own and not in use (raises ``PermissionError`` otherwise): the whole
    folder, or for :data:`STREAM_FILES` the streaming files alone."""
    if not item.own or item.in_use:
        why = "in use by a running drsim" if item.in_use else "not recognised as drsim's own"
        raise PermissionError(f"{item.path} is {why}: not removed")
    if item.kind == STREAM_FILES:
        remove_stream_files(item.path)
    else:
        shutil.rmtree(item.path)


def leftovers_note(root: str | Path) -> str | None:
    """A one-line note on what stopped runs left under ``root`` (not counting what running ones hold), or None."""
    items = [i for i in find_leftovers(root) if not i.in_use]
    if not items:
        return None
    n = len(items)
    return (f"note: {root} holds {n} folder{'s' if n > 1 else ''} left by interrupted or killed runs; see "
            f"drsim cleanup {root}")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def leftovers_text(items: list[Leftover], root: str | Path) -> str:
    """The listing printed by ``drsim cleanup``."""
    if not items:
        return f"{root}: nothing left by interrupted or killed runs"
    lines = []
    for item in items:
        state = "in use by a running drsim" if item.in_use else ("" if item.own else "not recognised as drsim's")
        lines.append(f"{item.path}  [{item.kind}, {_mb(item.size)}{', ' + state if state else ''}]\n"
                     f"    {item.detail}")
    removable = [i for i in items if i.removable]
    lines.append(f"\n{len(items)} found, {len(removable)} removable ({_mb(sum(i.size for i in removable))}): "
                 f"drsim cleanup {root} --remove")
    return "\n".join(lines)
