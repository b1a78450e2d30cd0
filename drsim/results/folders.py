"""Writing a run to disk: ``results/<scenario>/<run id>/`` with every table, the resolved scenario and
metadata. A run folder is written under a temporary name (marked as drsim's, :mod:`drsim.results.ownership`)
and renamed when complete, so a folder that exists is always whole, and an earlier run is never overwritten.

Imports :mod:`drsim.scenario` and, of this stage, the tables and the ownership marks.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from drsim.results.ownership import drop_marker, hold_marker, release
from drsim.results.tables import TABLES, Results
from drsim.scenario.document import Scenario, scenario_hash, scenario_to_dict
from drsim.version import __version__

__all__ = ["write_run", "resolved_scenario", "atomic_folder", "replace_folder", "rename_free", "table_bytes",
           "fill_run_folder", "INCOMPLETE_PREFIX"]

INCOMPLETE_PREFIX = ".incomplete-"  # the temporary name of a folder being written


def resolved_scenario(results: Results) -> dict[str, Any]:
    """The scenario as run: every default filled in, trace paths absolute, the seed used."""
    return scenario_to_dict(results.scenario, results.seed)


def package_versions() -> dict[str, str]:
    """The versions of drsim, Python and the packages that decide a run's numbers (for metadata)."""
    import numpy
    import pandas
    import simpy

    return {"drsim": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "pandas": pandas.__version__, "simpy": simpy.__version__}


def write_run(
    results: Results,
    out_root: str | Path = "results",
    csv: bool = False,
    extra: dict[str, Any] | None = None,
    text: str | None = None,
    costs: pd.DataFrame | None = None,
) -> Path:
    """Write every table the run kept (Parquet; CSV too if ``csv``), ``scenario.yaml`` and ``metadata.json``.

    Returns the run folder ``out_root/<scenario name>/<run id>``; the run id is the UTC time and seed,
    with a ``-2``, ``-3``... suffix if that folder exists already. ``text`` is saved as ``summary.txt``;
    ``costs`` (:func:`drsim.results.costs.costs_table`) as ``costs.parquet``.
    """
    now = datetime.now(UTC)

    def fill(tmp: Path) -> None:
        tables = results.tables()
        if csv:
            for name, table in tables.items():
                table.to_csv(tmp / f"{name}.csv", index=False)
        fill_run_folder(tmp, results.scenario, results.seed, tables, now, extra)
        if costs is not None:
            costs.to_parquet(tmp / "costs.parquet", index=False)
        if text is not None:
            (tmp / "summary.txt").write_text(text + "\n", encoding="utf-8")

    return atomic_folder(Path(out_root) / results.scenario.name, f"{now:%Y%m%d-%H%M%S}-seed{results.seed}", fill)


def table_bytes(results: Results) -> dict[str, bytes]:
    """Every table of ``results`` as Parquet file contents, by name (to send a run's tables between processes
    compactly and write them elsewhere with :func:`fill_run_folder`)."""
    out = {}
    for name, df in results.tables().items():
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        out[name] = buf.getvalue()
    return out


def fill_run_folder(folder: Path, scenario: Scenario, seed: int, tables: Mapping[str, pd.DataFrame | bytes],
                    now: datetime | None = None, extra: dict[str, Any] | None = None) -> None:
    """Write a run's tables (DataFrames, or Parquet contents from :func:`table_bytes`) as ``<table>.parquet``,
    the scenario as run (``scenario.yaml``, with ``seed``) and ``metadata.json`` into the existing ``folder``:
    the layout of ``drsim run``, so ``drsim report`` works on it."""
    import pyarrow.parquet as pq

    now = now or datetime.now(UTC)
    shapes: dict[str, dict[str, Any]] = {}
    for name in TABLES:
        if name not in tables:
            continue  # not kept in this run (see drsim.simulate's tables)
        table = tables[name]
        path = folder / f"{name}.parquet"
        if isinstance(table, bytes):
            path.write_bytes(table)
            meta = pq.read_metadata(io.BytesIO(table))
            shapes[name] = {"rows": meta.num_rows, "columns": [str(c) for c in meta.schema.to_arrow_schema().names]}
        else:
            table.to_parquet(path, index=False)
            shapes[name] = {"rows": len(table), "columns": list(map(str, table.columns))}
    with open(folder / "scenario.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump(scenario_to_dict(scenario, seed), f, sort_keys=False, allow_unicode=True)
    meta = {
        "scenario": scenario.name,
        "scenario_hash": scenario_hash(scenario, seed),
        "source": str(scenario.source) if scenario.source else None,
        "seed": seed,
        "created_at": now.isoformat(timespec="seconds"),
        "versions": package_versions(),
        "tables": shapes,
        **({"tables_kept": [t for t in TABLES if t in tables]} if len(tables) < len(TABLES) else {}),
        "units": {"time": "seconds from t = 0", "size": "bytes", "rate": "bytes per second"},
        **(extra or {}),
    }
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")



def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it to ``path`` (atomic: a file that
    exists is whole). The file gets the usual permissions (umask), like every other result file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_folder(target: Path, fill: Callable[[Path], None]) -> Path:
    """Create ``target`` filled by ``fill(folder)`` atomically (written under a hidden temporary name beside it,
    marked as drsim's (:mod:`drsim.results.ownership`), then renamed), replacing a folder already there (for
    output that is the same whenever it is rewritten, such as a replication written again on resume)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    tmp.chmod(0o755)
    marker = hold_marker(tmp, target.name)
    try:
        fill(tmp)
        drop_marker(tmp, marker)
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        release(marker)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def atomic_folder(parent: Path, base: str, fill: Callable[[Path], None],
                  undo: Callable[[Path], None] | None = None) -> Path:
    """Create ``parent/base`` (or ``base-2``, ``base-3``... if taken) filled by ``fill(folder)``, atomically:
    it is written under a hidden temporary name (``.incomplete-*``, holding drsim's marker while it is written;
    see :mod:`drsim.results.ownership`) and renamed when complete, so a folder that exists is always whole and
    an existing one is never overwritten. Returns the new folder. If anything fails, ``undo(folder)`` (when
    given) runs before the temporary folder is removed, e.g. to move back what ``fill`` moved in. A process
    killed while it writes leaves the temporary folder, which ``drsim cleanup`` lists and removes."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=INCOMPLETE_PREFIX, dir=parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; results are for everyone who can read the parent
    marker = hold_marker(tmp, base)
    try:
        fill(tmp)
        drop_marker(tmp, marker)
        return rename_free(tmp, parent, base)
    except BaseException:
        release(marker)
        if undo is not None:
            undo(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def rename_free(folder: Path, parent: Path, base: str, suffix: str = "") -> Path:
    """Rename ``folder`` to ``parent/<base><suffix>`` (or ``<base>-2<suffix>``... if taken) and return the new
    path; an existing folder is never replaced, even one that appears meanwhile."""
    n = 1
    while True:
        target = parent / (f"{base}{suffix}" if n == 1 else f"{base}-{n}{suffix}")
        if not target.exists():
            try:
                os.rename(folder, target)  # atomic; refuses a non-empty existing folder
                return target
            except OSError:
                if not target.exists():
                    raise
        n += 1
