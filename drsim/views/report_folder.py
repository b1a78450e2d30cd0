"""Rebuilding the report of a run folder written by :func:`drsim.results.folders.write_run`
(:func:`write_report_from_folder`): the folder holds tables but the figures need the full results, so it
**re-simulates** the folder's ``scenario.yaml`` with the seed recorded in ``metadata.json`` (the simulation is
deterministic: same scenario and seed, identical tables) after checking the scenario hash, and checks that the
re-simulated summary equals the stored ``summary.parquet``. :class:`ReportError` says why a folder cannot be used
(not a run folder, a changed scenario, a damaged summary, a different result).

Imports numpy, pandas, :func:`drsim.results.run.simulate`, :mod:`drsim.scenario.document` (loading, hash) and
:func:`drsim.views.run_report.write_report`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drsim.results.run import simulate
from drsim.scenario import ScenarioError, load_scenario
from drsim.scenario.document import scenario_hash
from drsim.version import __version__
from drsim.views.run_report import write_report

__all__ = ["ReportError", "write_report_from_folder"]


class ReportError(ValueError):
    """A folder a report cannot be rebuilt from (not a run folder, changed scenario, different results)."""


def write_report_from_folder(folder: str | Path, verify: bool = True) -> tuple[Path, Path]:
    """Rebuild the report of a run folder written by :func:`drsim.results.folders.write_run` (or ``drsim run``).

    The figures need the full results, which the folder's tables do not hold, so this **re-simulates**: it loads
    the folder's ``scenario.yaml`` (the scenario as run, every default filled in), checks that its hash with the
    seed of ``metadata.json`` is the recorded ``scenario_hash``, runs it with that seed (deterministic: identical
    tables) and, with ``verify``, checks that the new summary equals the stored ``summary.parquet`` (it would
    not if the drsim version changed the model). Then writes the report into the folder, as
    :func:`write_report`. Raises :class:`ReportError` when the folder is not a run folder or does not match.
    """

    folder = Path(folder)
    meta_path, scenario_path = folder / "metadata.json", folder / "scenario.yaml"
    if not meta_path.is_file() or not scenario_path.is_file():
        raise ReportError(f"{folder}: not a run folder (needs metadata.json and scenario.yaml, as written by "
                          "drsim run)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{meta_path}: cannot read it: {exc}") from None
    if not isinstance(meta, dict) or "seed" not in meta or "scenario_hash" not in meta:
        raise ReportError(f"{meta_path}: no seed and scenario hash: not the folder of a single run "
                          "(a sweep folder has no single run to report)")
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as exc:
        raise ReportError(str(exc)) from None
    seed = int(meta["seed"])
    found = scenario_hash(scenario, seed)
    if found != meta["scenario_hash"]:
        raise ReportError(f"{scenario_path}: its hash with seed {seed} is {found}, but metadata.json records "
                          f"{meta['scenario_hash']}: the scenario was changed after the run")
    results = simulate(scenario, seed=seed)
    stored = folder / "summary.parquet"
    if verify and stored.is_file():
        try:
            table = pd.read_parquet(stored)
        except Exception as exc:  # pyarrow says ArrowInvalid, OSError or others for a damaged file
            why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ReportError(f"{stored}: cannot be read ({why}): the file is damaged; 'drsim report --no-verify' "
                              "(verify=False in Python) reports the re-simulated run without comparing") from None
        _check_same_summary(table, results.summary, meta, stored)
    return write_report(results, folder)


def _check_same_summary(stored: pd.DataFrame, fresh: pd.DataFrame, meta: dict[str, Any], path: Path) -> None:
    """Raise :class:`ReportError` naming the first column and VM where the re-simulated summary differs."""
    stored, fresh = stored.reset_index(drop=True), fresh.reset_index(drop=True)
    difference = None
    if list(stored.columns) != list(fresh.columns) or len(stored) != len(fresh):
        difference = "its columns or rows differ"
    else:
        for column in fresh.columns:
            a, b = stored[column], fresh[column]
            if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
                x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
                same = np.isclose(x, y, rtol=1e-9, atol=0.0) | (np.isnan(x) & np.isnan(y))
            else:
                same = (a.astype(str) == b.astype(str)).to_numpy()
            if not same.all():
                i = int(np.argmin(same))
                difference = (f"{column} of {fresh['vm'].iloc[i]} is {a.iloc[i]} in the folder and {b.iloc[i]} "
                              "re-simulated")
                break
    if difference is not None:
        then = (meta.get("versions") or {}).get("drsim", "?")
        raise ReportError(f"{path}: re-simulating does not reproduce the stored summary (run with drsim {then}, "
                          f"this is drsim {__version__}): {difference}. 'drsim report --no-verify' "
                          "(verify=False in Python) reports the re-simulated run anyway.")
