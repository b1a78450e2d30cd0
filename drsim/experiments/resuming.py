"""Resuming an interrupted experiment from its folder alone, as ``drsim sweep --resume FOLDER`` does: the request
the folder records (:func:`recorded_request`), how another request differs from it, in plain lines
(:func:`request_differences`, :func:`check_resumable`), and how many runs the folder already holds
(:func:`finished_runs`).

The folder's ``experiment.json`` (:mod:`drsim.experiments.storage`) records the base scenario resolved (every
default filled in, trace paths absolute) and the settings; they give back the same experiment, which
:func:`~drsim.experiments.runner.run_experiment` then checks against the folder before it runs anything.

Imports :mod:`drsim.scenario` and, of this stage, the errors, the design, the precision targets, the seeds, the
settings and the storage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drsim.experiments.design import design
from drsim.experiments.errors import ExperimentError
from drsim.experiments.precision import Precision
from drsim.experiments.seeds import replication_seed
from drsim.experiments.settings import ExperimentSettings
from drsim.experiments.storage import EXPERIMENT_FILE, _experiment_record, _load_parts
from drsim.scenario import ScenarioError
from drsim.scenario.document import Scenario
from drsim.scenario.loading import parse_scenario

__all__ = ["recorded_request", "request_differences", "check_resumable", "finished_runs"]

#: the settings compared, in the words of drsim sweep's options
_COMPARED = (("scenario_hash", "the scenario"), ("sweep", "--set (the grid)"), ("lhs", "--lhs (the hypercube)"),
             ("samples", "--samples"), ("replications", "--replications"), ("experiment_seed", "--seed"),
             ("precision", "--precision"), ("max_replications", "--max-replications"), ("keep_runs", "--keep-runs"),
             ("prices", "the price sheets (the scenario's prices: section; digest)"))


def _stored(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / EXPERIMENT_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExperimentError(f"cannot resume {folder}: it has no {EXPERIMENT_FILE} (not the folder of an "
                              "interrupted sweep)") from None
    except (OSError, ValueError) as exc:
        raise ExperimentError(f"cannot resume {folder}: cannot read {EXPERIMENT_FILE}: {exc}") from None


def recorded_request(folder: str | Path) -> tuple[Scenario, dict[str, Any]]:
    """The scenario and the :func:`~drsim.experiments.runner.run_experiment` settings (``replications``,
    ``sweep``, ``seed``, ``lhs``, ``samples``, ``precision``, ``max_replications``, ``keep_runs``) that the
    experiment in ``folder`` was started with. Raises :class:`ExperimentError` when the folder holds none."""
    rec = _stored(folder)
    try:
        scenario = parse_scenario(rec["base_scenario"], source=f"{folder}/{EXPERIMENT_FILE}")
        lhs = {path: dim["choices"] if "choices" in dim else dim["range"] for path, dim in rec["lhs"].items()}
        precision = [Precision(p["metric"], p["vm"], float(p["tolerance"]), bool(p["relative"]))
                     for p in rec["precision"]]
        settings = {"replications": rec["replications"], "sweep": rec["sweep"], "seed": rec["experiment_seed"],
                    "lhs": lhs, "samples": rec["samples"], "precision": precision,
                    "max_replications": rec["max_replications"], "keep_runs": rec["keep_runs"]}
    except (KeyError, TypeError, AttributeError, ScenarioError) as exc:
        raise ExperimentError(f"cannot resume {folder}: its {EXPERIMENT_FILE} does not describe an experiment "
                              f"this drsim can read ({type(exc).__name__}: {exc})") from None
    return scenario, settings


def _text(value: Any) -> str:
    """A recorded setting for people: ``link.upload=10Mbit/s,20Mbit/s``; ``none``."""
    if value in (None, {}, []):
        return "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def request_differences(folder: str | Path, scenario: Scenario, settings: ExperimentSettings) -> list[str]:
    """How the experiment ``scenario`` with ``settings`` differs from the one ``folder`` holds: one plain line per
    difference (empty: the same experiment). Raises :class:`ExperimentError` when the folder holds none."""
    stored = _stored(folder)
    points = design(scenario, settings.grid, settings.lhs, settings.samples, settings.seed)
    seeds = [replication_seed(settings.seed, k) for k in range(settings.replications)]
    now = _experiment_record(scenario, settings, points, seeds)
    out = []
    for key, what in _COMPARED:
        there, here = stored.get(key), now[key]
        if key == "lhs":
            there = {p: d.get("range", d.get("choices")) for p, d in (there or {}).items()}
            here = {p: d.get("range", d.get("choices")) for p, d in here.items()}
        elif key == "precision":
            there, here = [p.get("text") for p in there or []], [p["text"] for p in here]
        if there != here and not (there in (None, {}, [], False) and here in (None, {}, [], False)):
            if key == "scenario_hash":
                out.append(f"the scenario: not the one the folder's sweep ran (scenario hash {there} there, {here} "
                           f"now{'; it was ' + stored['source'] if stored.get('source') else ''})")
            else:
                out.append(f"{what}: {_text(there)} in the folder, {_text(here)} now")
    if not out and [p.get("scenario_hash") for p in stored.get("points", [])] != \
            [p["scenario_hash"] for p in now["points"]]:
        out.append("the sweep points: the same settings give other scenarios (another drsim version?)")
    return out


def check_resumable(folder: str | Path, scenario: Scenario, settings: ExperimentSettings) -> None:
    """Raise :class:`ExperimentError` listing, one per line, how the request differs from the experiment
    ``folder`` holds (and how to resume that one); nothing when they are the same."""
    differ = request_differences(folder, scenario, settings)
    if differ:
        raise ExperimentError(f"cannot resume {folder}: it holds a different experiment; what differs:\n"
                              + "".join(f"  - {d}\n" for d in differ)
                              + f"'drsim sweep --resume {folder}' alone resumes the experiment it holds")


def finished_runs(folder: str | Path) -> int:
    """The runs (succeeded or failed) whose rows ``folder`` already holds."""
    results, failed = _load_parts(Path(folder))
    return len(results) + len(failed)
