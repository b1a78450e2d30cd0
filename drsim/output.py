"""Writing a run to disk: ``results/<scenario>/<run id>/`` with every table, the resolved scenario and
metadata. A run folder is written under a temporary name and renamed when complete, so a folder that
exists is always whole, and an earlier run is never overwritten.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from drsim.results import TABLES, Results
from drsim.scenario import scenario_hash, scenario_to_dict

__all__ = ["write_run", "resolved_scenario", "atomic_folder"]


def resolved_scenario(results: Results) -> dict[str, Any]:
    """The scenario as run: every default filled in, trace paths absolute, the seed used."""
    return scenario_to_dict(results.scenario, results.seed)


def _versions() -> dict[str, str]:
    import numpy
    import pandas
    import simpy

    import drsim

    return {"drsim": drsim.__version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "pandas": pandas.__version__, "simpy": simpy.__version__}


def write_run(
    results: Results,
    out_root: str | Path = "results",
    csv: bool = False,
    extra: dict[str, Any] | None = None,
    text: str | None = None,
) -> Path:
    """Write every table (Parquet; CSV too if ``csv``), ``scenario.yaml`` and ``metadata.json``.

    Returns the run folder ``out_root/<scenario name>/<run id>``; the run id is the UTC time and seed,
    with a ``-2``, ``-3``... suffix if that folder exists already. ``text`` is saved as ``summary.txt``.
    """
    now = datetime.now(UTC)

    def fill(tmp: Path) -> None:
        tables = results.tables()
        for name in TABLES:
            df = tables[name]
            df.to_parquet(tmp / f"{name}.parquet", index=False)
            if csv:
                df.to_csv(tmp / f"{name}.csv", index=False)
        with open(tmp / "scenario.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump(resolved_scenario(results), f, sort_keys=False, allow_unicode=True)
        if text is not None:
            (tmp / "summary.txt").write_text(text + "\n", encoding="utf-8")
        meta = {
            "scenario": results.scenario.name,
            "scenario_hash": scenario_hash(results.scenario, results.seed),
            "source": str(results.scenario.source) if results.scenario.source else None,
            "seed": results.seed,
            "created_at": now.isoformat(timespec="seconds"),
            "versions": _versions(),
            "tables": {name: {"rows": len(tables[name]), "columns": list(map(str, tables[name].columns))}
                       for name in TABLES},
            "units": {"time": "seconds from t = 0", "size": "bytes", "rate": "bytes per second"},
            **(extra or {}),
        }
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")

    return atomic_folder(Path(out_root) / results.scenario.name, f"{now:%Y%m%d-%H%M%S}-seed{results.seed}", fill)


def atomic_folder(parent: Path, base: str, fill: Callable[[Path], None]) -> Path:
    """Create ``parent/base`` (or ``base-2``, ``base-3``... if taken) filled by ``fill(folder)``, atomically:
    it is written under a hidden temporary name and renamed when complete, so a folder that exists is always
    whole and an existing one is never overwritten. Returns the new folder."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incomplete-", dir=parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; results are for everyone who can read the parent
    try:
        fill(tmp)
        n = 1
        while True:
            target = parent / (base if n == 1 else f"{base}-{n}")
            if not target.exists():
                try:
                    os.rename(tmp, target)  # atomic; refuses a non-empty existing folder
                    return target
                except OSError:
                    if not target.exists():
                        raise
            n += 1
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
