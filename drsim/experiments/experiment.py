"""What-if experiments: Monte Carlo replications of a scenario over a sweep of its settings.

:func:`run_experiment` runs independent replications of every point of a sweep on any
:class:`concurrent.futures.Executor` (or a Dask ``distributed.Client``) and returns an :class:`Experiment`. The
sweep is a full factorial grid of scenario settings (``sweep={"link.upload": ["10Mbit/s", "20Mbit/s"],
"policy.name": ["manual", "automatic"]}``), a Latin hypercube over ranges and choices (``lhs={"link.upload":
"10Mbit/s..50Mbit/s", "replication.interval": ["30s", "5m"]}, samples=20``), or both crossed: every sample of
the hypercube at every point of the grid. The scenario file's ``experiment`` section gives the defaults of
every argument.

``tidy``
    one row per (sweep point, replication, VM and ``(site)``): ``point``, the swept values (one column per
    path; with a hypercube also ``sample``), ``replication``, ``seed`` (the run's seed:
    ``simulate(experiment.scenario_for(point), seed)`` or ``drsim run --seed`` on the point's scenario
    reproduces the replication) and every column of the run's summary table.
``aggregate``
    one row per (sweep point, VM, metric) for every numeric (or yes/no) summary metric: ``n`` (replications
    with a value), ``mean``, ``std``, ``p50``, ``p95``, ``max`` over the replications, and ``ci95``, the
    half-width of a 95 % confidence interval of the mean (Student t; see :func:`t_975`).
``failures``
    one row per replication that raised: point, swept values, replication, seed, error and traceback.
    The rest of the experiment completes.

**Seeding (common random numbers).** One ``numpy.random.SeedSequence`` root per experiment, from the
experiment seed (default: the scenario's seed). Replication ``k`` gets the child ``SeedSequence(entropy,
spawn_key=(k,))`` and from it an integer run seed (:func:`replication_seed`). The run seed depends on ``k``
only, never on the sweep point, so every point sees the same failure timeline, churn and operation draws
in replication ``k``: comparisons between points are paired. The Latin hypercube draws from its own child,
``spawn_key=(0x4C4853, 0)`` (:func:`lhs_seed_sequence`), so the design depends on the seed, the ranges and the
number of samples only.

**Precision.** With ``precision`` (e.g. ``"rpo_p95_s=30s"``), replications run in rounds: after each round the
95 % confidence half-width of each target metric is computed at every point from the replications of the
rounds so far; a point that is not precise enough gets more replications in the next round (about as many as
the half-width says it needs, at most twice as many as it has, at most ``max_replications``). The decision is
taken on whole rounds, never on the order runs finish in, and replication ``k`` has the same seed wherever it
runs, so the outcome does not depend on the executor.

**Execution.** Replications of one point are batched into tasks (``batch_size`` runs each); at most
``max_in_flight`` tasks are submitted at a time. The tables are sorted by (point, replication, the run's row
order), so they are identical row for row whatever the executor and the number of workers.

**Streaming and resuming.** With ``out=FOLDER``, :func:`run_experiment` first writes ``FOLDER/experiment.json``
(the resolved sweep, points, replications, seeds, base scenario and drsim version), then, as each task finishes,
its rows as ``FOLDER/parts/part-<point>-<first replication>.parquet`` (and its failed runs, if any, as
``failures-<point>-<first replication>.parquet`` just before; with ``keep_runs``, every run's full tables as
``FOLDER/runs/point-<point>/replication-<k>/`` before that). Every file and run folder is written under a
temporary name and renamed, so one that exists is whole. ``resume=True`` checks that experiment.json describes
the same experiment, loads the parts and runs only the (point, replication) pairs that are missing: the tables
are identical to those of an uninterrupted run.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import json
import math
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import (
    Executor,
    Future,
)
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import yaml

from drsim.experiments.executors import (
    ExecutorFailed,
    executor_failure,
    resolve_executor,
    shutdown,
    stop_pool,
    wait_first,
)
from drsim.model.site import SiteModel
from drsim.results.findings import text_table
from drsim.results.folders import (
    atomic_folder,
    atomic_write,
    fill_run_folder,
    package_versions,
    replace_folder,
    table_bytes,
)
from drsim.results.tables import SITE, TABLES, Results
from drsim.scenario import units
from drsim.scenario.document import ExperimentSection, Scenario, scenario_hash, scenario_to_dict
from drsim.scenario.fields import Choices, Range, parse_lhs
from drsim.scenario.loading import load_scenario, parse_scenario
from drsim.scenario.policy import params_model
from drsim.scenario.problems import Problem, ScenarioError
from drsim.scenario.units import format_duration
from drsim.version import __version__

__all__ = ["Experiment", "run_experiment", "replication_seed", "sweep_points", "apply_settings", "parse_path",
           "parse_set", "aggregate", "t_975", "write_experiment", "aggregate_text", "incomplete_folder",
           "finish_experiment", "latin_hypercube", "lhs_seed_sequence", "parse_lhs_option", "Precision",
           "parse_precision", "summary_metrics", "ExperimentSettings", "experiment_settings",
           "ExperimentError", "ExecutorFailed", "connect_dask", "precision_text", "read_run"]

KEY_COLUMNS = ("point", "replication", "seed")
SAMPLE = "sample"  #: column of the Latin hypercube sample index
STATS = ("n", "mean", "std", "p50", "p95", "max", "ci95")
DEFAULT_REPLICATIONS = 10
DEFAULT_MAX_REPLICATIONS = 100  #: with precision, when neither max_replications nor more replications are given
DEFAULT_PRECISION_METRIC = "rpo_p95_s"
_LHS_SPAWN_KEY = (0x4C4853, 0)  # "LHS"; two words, so it is never a replication's child (one word)
_RESERVED = ("point", "replication", "vm", "host", SAMPLE)  # table columns; seed: apply_settings says why

# Two-sided 95 % Student t quantiles t(0.975, df) for df = 1..30 (to 7 decimals).
_T975 = (12.7062047, 4.3026527, 3.1824463, 2.7764451, 2.5705818, 2.4469119, 2.3646243, 2.3060041, 2.2621572,
         2.2281389, 2.2009852, 2.1788128, 2.1603687, 2.1447867, 2.1314495, 2.1199053, 2.1098156, 2.1009220,
         2.0930241, 2.0859634, 2.0796138, 2.0738731, 2.0686576, 2.0638986, 2.0595386, 2.0555294, 2.0518305,
         2.0484071, 2.0452296, 2.0422725)
_Z975 = 1.959963984540054


class ExperimentError(ValueError):
    """An experiment that cannot run as asked: a bad option, or a folder that holds a different experiment.
    ``key``: the experiment setting at fault (``"samples"``, ``"precision"``...), when there is one."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def t_975(df: float | np.ndarray) -> np.ndarray:
    """Student t quantile t(0.975, df): exact (table) for df <= 30; above, the Cornish-Fisher expansion of the
    t quantile in powers of 1/df around the normal quantile (four terms, error below 1e-6). NaN for df < 1."""
    d = np.asarray(df, dtype=float)
    z = _Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    with np.errstate(divide="ignore", invalid="ignore"):
        series = z + g1 / d + g2 / d**2 + g3 / d**3 + g4 / d**4
    table = np.asarray(_T975)
    small = np.clip(np.nan_to_num(d, nan=1.0), 1, 30).astype(int) - 1
    out = np.where(d <= 30, table[small], series)
    return np.where(d >= 1, out, np.nan)


# ----------------------------------------------------------------------------------------------------
# Seeds


def replication_seed(experiment_seed: int, replication: int) -> int:
    """The run seed of replication ``replication`` (0-based): a 63-bit integer drawn from the child
    ``SeedSequence(experiment_seed, spawn_key=(replication,))``. It does not depend on the sweep point."""
    root = np.random.SeedSequence(experiment_seed)
    child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, replication))
    return int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def lhs_seed_sequence(experiment_seed: int) -> np.random.SeedSequence:
    """The child ``SeedSequence(experiment_seed, spawn_key=(0x4C4853, 0))`` that draws the Latin hypercube:
    independent of every replication's (their spawn keys have one word)."""
    root = np.random.SeedSequence(experiment_seed)
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *_LHS_SPAWN_KEY))


# ----------------------------------------------------------------------------------------------------
# Sweeps: dotted paths into the scenario


_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)")


def parse_path(path: str, source: str = "sweep") -> tuple[str | int, ...]:
    """``"site.hosts[0].vms[1].churn.daily"`` -> ``("site", "hosts", 0, "vms", 1, "churn", "daily")``."""
    parts: list[str | int] = []
    for token in path.split("."):
        m = _SEGMENT.fullmatch(token.strip())
        if not m:
            raise ScenarioError([Problem(loc=(), message=f"bad setting path {path!r}: expected keys and indexes "
                                         "like 'link.upload' or 'site.hosts[0].vms[1].churn.daily'")], source)
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(parts)


def _set_value(data: dict[str, Any], loc: tuple[str | int, ...], value: Any, source: str) -> None:
    """Set ``loc`` in the plain scenario ``data``; missing or empty sections on the way are created."""
    node: Any = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        here = loc[:i]
        if isinstance(part, int):
            if not isinstance(node, list):
                raise ScenarioError([Problem(loc=here, message=f"is not a list: cannot take item [{part}]")], source)
            if part >= len(node):
                raise ScenarioError([Problem(loc=loc[:i + 1], message=f"index {part} is out of range "
                                             f"(the list has {len(node)} item{'s' if len(node) != 1 else ''})")],
                                    source)
        elif not isinstance(node, dict):
            raise ScenarioError([Problem(loc=here, message=f"is a value, not a section: cannot set {part!r} in it")],
                                source)
        if last:
            node[part] = value
            return
        child = node[part] if isinstance(part, int) else node.get(part)
        if child is None:
            if isinstance(loc[i + 1], int):
                raise ScenarioError([Problem(loc=loc[:i + 1], message="is not set: there is no list to index")],
                                    source)
            child = {}
            node[part] = child
        node = child


def _policy_params(name: str) -> set[str] | None:
    """The parameter names of policy ``name`` (None when it is unknown: validation reports it)."""
    model = params_model(name)
    return None if model is None else set(model.model_fields)


def apply_settings(scenario: Scenario, settings: Mapping[str, Any], source: str = "sweep") -> Scenario:
    """``scenario`` with each dotted ``path: value`` of ``settings`` set (values as in a scenario file, e.g.
    ``"20Mbit/s"``), validated again. Raises :class:`ScenarioError` naming the path of a bad value.

    When ``policy.name`` changes, the scenario's policy parameters that the new policy does not take are
    dropped (parameters set in ``settings`` are kept and checked).
    """
    data = scenario_to_dict(scenario)
    locs = {path: parse_path(path, source) for path in settings}
    for path, value in settings.items():
        if locs[path] == ("seed",):
            raise ScenarioError([Problem(loc=("seed",), message="is set for each replication by the experiment; "
                                         "give the experiment seed instead")], source)
        _set_value(data, locs[path], value, source)
    policy = data.get("policy")
    if ("policy", "name") in locs.values() and isinstance(policy, dict) and policy.get("name") != scenario.policy.name:
        accepted = _policy_params(str(policy.get("name")))
        explicit = {loc[1] for loc in locs.values() if len(loc) >= 2 and loc[0] == "policy"}
        if accepted is not None:
            data["policy"] = {k: v for k, v in policy.items() if k == "name" or k in accepted or k in explicit}
    return parse_scenario(data, source=source, base=scenario.source)


def _label(value: Any) -> Any:
    """A sweep value as shown in tables: numbers and booleans as they are, anything else as text."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value, default=str, separators=(", ", ": "))


def _normalise_sweep(sweep: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for path, values in (sweep or {}).items():
        if not isinstance(path, str):
            raise TypeError(f"sweep paths are strings like 'link.upload', got {path!r}")
        vals = list(values) if isinstance(values, list | tuple) else [values]
        if not vals:
            raise ScenarioError([Problem(loc=parse_path(path), message="no values to sweep")], "sweep")
        out[path] = vals
    return out


def sweep_points(scenario: Scenario, sweep: Mapping[str, Any] | None) -> list[tuple[dict[str, Any], Scenario]]:
    """Every point of the full factorial grid, in order (the last path varies fastest): its settings and its
    validated scenario. Without a sweep, one point: the scenario itself."""
    return [(pt.settings, pt.scenario) for pt in design(scenario, sweep)]


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes: ``"{a: 1, b: 2},3"`` -> two items."""
    items, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    items.append("".join(cur).strip())
    return items


def _read_values(rest: str, loc: tuple[str | int, ...], source: str) -> list[Any]:
    """The comma-separated values of an option, each read as YAML."""
    values = []
    for item in _split_values(rest):
        if not item:
            raise ScenarioError([Problem(loc=loc, message="an empty value")], source)
        try:
            values.append(yaml.safe_load(item))
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise ScenarioError([Problem(loc=loc, message=f"cannot read value {item!r}: {problem}")], source) from None
    return values


def parse_set(text: str) -> tuple[str, list[Any]]:
    """``"link.upload=10Mbit/s,20Mbit/s"`` -> ``("link.upload", ["10Mbit/s", "20Mbit/s"])``. Each value is read
    as YAML, as in a scenario file (``4`` is a number, ``{dist: exponential, mean: 1y}`` a mapping)."""
    source = f"--set {text}"
    path, sep, rest = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise ScenarioError([Problem(loc=(), message="expected path=value[,value...], "
                                     "e.g. link.upload=10Mbit/s,20Mbit/s")], source)
    loc = parse_path(path, source)
    return path, _read_values(rest, loc, source)


def parse_lhs_option(text: str) -> tuple[str, Range | Choices]:
    """``"link.upload=10Mbit/s..50Mbit/s"`` -> ``("link.upload", Range(...))`` (``":log"`` after the range for a
    log scale); ``"replication.interval=30s,5m,15m"`` -> the choices, each value read as YAML as for
    :func:`parse_set`. Raises :class:`ScenarioError` naming the option."""
    source = f"--lhs {text}"
    path, sep, rest = text.partition("=")
    path = path.strip()
    if not sep or not path or not rest.strip():
        raise ScenarioError([Problem(loc=(), message="expected path=LO..HI or path=V1,V2,..., e.g. "
                                     "link.upload=10Mbit/s..50Mbit/s")], source)
    loc = parse_path(path, source)
    values = _read_values(rest, loc, source)
    try:
        return path, parse_lhs(values if len(values) > 1 else rest.strip())
    except ValueError as exc:
        raise ScenarioError([Problem(loc=loc, message=str(exc))], source) from None


# ----------------------------------------------------------------------------------------------------
# Latin hypercube and the points of an experiment


def latin_hypercube(dims: Mapping[str, Any], samples: int, seed: int) -> list[dict[str, Any]]:
    """``samples`` points of a Latin hypercube over ``dims`` (path -> :class:`~drsim.scenario.fields.Range` or
    :class:`~drsim.scenario.fields.Choices`, or as written: see :func:`~drsim.scenario.fields.parse_lhs`). For each dimension in
    turn, the unit interval is cut into ``samples`` equal strata, one uniform draw is taken in each and the strata
    are shuffled; a draw ``u`` becomes ``dim.at(u)``. So every range is covered evenly (one sample in each
    1/``samples`` of it, of its logarithm for a log range) and each choice is drawn ``samples / len(choices)``
    times, give or take one.

    The draws come from ``numpy.random.default_rng(lhs_seed_sequence(seed))`` (never the global random state): the
    same seed, dimensions in the same order and number of samples give the same design. Returns one mapping per
    sample: path -> value (in base units for a range, as given for choices)."""
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 1:
        raise ExperimentError(f"the number of Latin hypercube samples must be a positive integer, got {samples!r}")
    samples = int(samples)
    rng = np.random.default_rng(lhs_seed_sequence(seed))
    columns = []
    for dim in map(parse_lhs, dims.values()):
        u = (rng.permutation(samples) + rng.random(samples)) / samples
        columns.append([dim.at(float(x)) for x in u])
    return [dict(zip(dims, values, strict=True)) for values in zip(*columns, strict=True)] if columns \
        else [{} for _ in range(samples)]


class _Point(NamedTuple):
    """One sweep point: the settings applied to the scenario (path -> value as in a scenario file), the validated
    scenario, the values shown in the tables (path -> value; base units for Latin hypercube ranges) and the
    index of its Latin hypercube sample (None without one)."""

    settings: dict[str, Any]
    scenario: Scenario
    values: dict[str, Any]
    sample: int | None


def _check_paths(paths: Sequence[str], source: str) -> None:
    for path in paths:
        parse_path(path, source)
        if path in _RESERVED:
            raise ScenarioError([Problem(loc=(), message=f"{path!r} cannot be swept")], source)


def _shown(value: Any) -> str:
    return str(_label(value))


def design(scenario: Scenario, sweep: Mapping[str, Any] | None = None,
           lhs: Mapping[str, Any] | None = None, samples: int | None = None,
           seed: int = 0) -> list[_Point]:
    """The points of an experiment: every point of the full factorial grid ``sweep`` (the last path varies
    fastest), and at each of them every sample of the Latin hypercube over ``lhs`` (``samples`` samples drawn
    with the experiment ``seed``; see :func:`latin_hypercube`): the same samples at every grid point. Every point
    is validated; a bad path or value raises :class:`ScenarioError` naming the point."""
    grid = _normalise_sweep(sweep)
    dims = {path: parse_lhs(dim) for path, dim in (lhs or {}).items()}
    _check_paths(list(grid), "sweep")
    _check_paths(list(dims), "lhs")
    both = [path for path in grid if path in dims]
    if both:
        raise ScenarioError([Problem(loc=parse_path(both[0]), message="is both in the grid and in the Latin "
                                     "hypercube: sweep it in one of them")], "sweep")
    draws: list[dict[str, Any] | None] = list(latin_hypercube(dims, samples or 0, seed)) if dims else [None]
    points: list[_Point] = []
    for combo in itertools.product(*grid.values()):
        fixed = dict(zip(grid, combo, strict=True))
        for k, draw in enumerate(draws):
            settings, values = dict(fixed), {p: _label(v) for p, v in fixed.items()}
            shown = {p: _shown(v) for p, v in fixed.items()}
            for path, value in (draw or {}).items():
                dim = dims[path]
                settings[path] = dim.setting(value)
                values[path] = _label(value)
                shown[path] = dim.format(value) if isinstance(dim, Range) else _shown(value)
            text = ", ".join(f"{p}={v}" for p, v in shown.items())
            source = f"sweep point {len(points)} ({text})" if text else "sweep"
            sc = apply_settings(scenario, settings, source=source) if settings else scenario
            points.append(_Point(settings, sc, values, None if draw is None else k))
    return points


# ----------------------------------------------------------------------------------------------------
# Precision targets


_SHARE_METRICS = frozenset({"availability", "rpo_over_target", "rto_met", "rpo_met", "protected"})


@functools.cache
def summary_metrics() -> tuple[str, ...]:
    """The metrics of the aggregate table, in summary order: the numeric and yes/no columns of a run's summary
    (read from a one-hour run of a one-VM scenario, so the list always follows the model)."""
    tiny = parse_scenario({
        "name": "metrics", "duration": "1h",
        "site": {"hosts": [{"name": "h", "vms": [{"name": "v", "disks": ["1GB"], "churn": {"rate": "1kB/s"}}]}]},
        "link": {"upload": "10Mbit/s", "download": "10Mbit/s"}}, source="metrics")
    summary = Results(SiteModel(tiny, 0).run()).summary
    return tuple(c for c in summary.columns if c not in ("vm", "host")
                 and (pd.api.types.is_bool_dtype(summary[c]) or pd.api.types.is_numeric_dtype(summary[c])))


def metric_kind(metric: str) -> str:
    """How a summary metric is measured: ``duration`` (seconds: ``*_s`` and ``protected_at``), ``share`` (a
    fraction: availability, time over target, yes/no metrics), ``size`` (bytes) or ``number`` (counts)."""
    if metric.endswith("_s") or metric == "protected_at":
        return "duration"
    if metric in _SHARE_METRICS:
        return "share"
    if metric.startswith("bytes") or metric.endswith("_bytes"):
        return "size"
    return "number"


def _format_metric(metric: str, value: float) -> str:
    """A metric value (or tolerance) in human units."""
    if not math.isfinite(value):
        return "-"
    kind = metric_kind(metric)
    if kind == "duration":
        return units.format_duration(value)
    if kind == "share":
        return f"{value:.3%}"
    if kind == "size":
        return units.format_size(value)
    return f"{value:.4g}"


@dataclass(frozen=True)
class Precision:
    """A precision target: the 95 % confidence half-width of the mean of ``metric`` (a summary column) for
    ``vm`` (a VM name or ``(site)``) must be at most ``tolerance``, in the metric's base unit (seconds, bytes, a
    fraction, a count); with ``relative``, at most ``tolerance`` times the absolute value of the mean."""

    metric: str = DEFAULT_PRECISION_METRIC
    vm: str = SITE
    tolerance: float = 30.0
    relative: bool = False

    def limit(self, mean: float) -> float:
        """The largest half-width allowed when the mean is ``mean``."""
        return self.tolerance * abs(mean) if self.relative else self.tolerance

    def tolerance_text(self) -> str:
        """The tolerance in human units: ``30 s``, ``0.100%``, ``10 % of the mean``."""
        return f"{self.tolerance * 100:g} % of the mean" if self.relative else _format_metric(self.metric,
                                                                                             self.tolerance)

    def __str__(self) -> str:
        return f"{self.metric} of {self.vm} within ± {self.tolerance_text()}"

    def describe(self) -> dict[str, Any]:
        return {"metric": self.metric, "vm": self.vm, "tolerance": self.tolerance, "relative": self.relative,
                "text": str(self)}


def _known_metric(name: str) -> str:
    metrics = summary_metrics()
    if name in metrics:
        return name
    if f"{name}_s" in metrics:
        return f"{name}_s"
    hint = difflib.get_close_matches(name, metrics, n=1)
    raise ExperimentError(f"unknown metric {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; the metrics are the summary's numeric columns: {', '.join(metrics)}")


def _tolerance(metric: str, raw: object) -> tuple[float, bool]:
    """(tolerance, relative) from ``30s``, ``0.1%``, ``2GB``, ``0.5`` or ``10%rel``."""
    text = str(raw).strip() if isinstance(raw, str) else raw
    relative = isinstance(text, str) and text.endswith("rel")
    try:
        if relative:
            value = units.parse_fraction(text[:-3].strip())  # type: ignore[index]
        else:
            parse = {"duration": units.parse_duration, "share": units.parse_fraction,
                     "size": units.parse_size}.get(metric_kind(metric))
            value = parse(text) if parse is not None else float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        example = {"duration": "30s", "share": "0.1%", "size": "1GB", "number": "0.5"}[metric_kind(metric)]
        raise ExperimentError(f"cannot read the tolerance {raw!r} of {metric}: expected e.g. {example!r}, or a "
                              f"share of the mean such as '5%rel' ({exc})") from None
    if not (math.isfinite(value) and value > 0):
        raise ExperimentError(f"the tolerance of {metric} must be greater than zero, got {raw!r}")
    return float(value), relative


def parse_precision(spec: str | Precision, tolerance: object = None, scenario: Scenario | None = None) -> Precision:
    """A precision target from ``"[METRIC[@VM]=]TOLERANCE"`` (``"rpo_p95=30s"``, ``"availability@Essentials=0.1%"``,
    ``"downtime_s=10%rel"``, ``"30s"``), or from ``spec = "METRIC[@VM]"`` and ``tolerance`` (a scenario file's
    ``precision`` mapping). The metric defaults to ``rpo_p95_s`` (the ``_s`` may be left out), the VM to the site
    (``(site)`` or ``site``); the tolerance is in the metric's unit (a duration, a share like ``0.1%``, a size or a
    number), or with ``rel`` after it a share of the mean. With ``scenario``, the VM must be one of its VMs.
    Raises :class:`ExperimentError`."""
    if isinstance(spec, Precision):
        return spec
    key, raw = (spec, tolerance) if tolerance is not None else (spec.rpartition("=")[0], spec.rpartition("=")[2])
    name, _, vm = str(key).strip().partition("@")
    metric = _known_metric(name.strip() or DEFAULT_PRECISION_METRIC)
    vm = vm.strip() or SITE
    vm = SITE if vm in ("site", SITE) else vm
    if scenario is not None and vm != SITE:
        names = [v.name for _, v in scenario.vms()]
        if vm not in names:
            hint = difflib.get_close_matches(vm, names, n=1)
            raise ExperimentError(f"unknown VM {vm!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                  + f"; the scenario's VMs: {', '.join(names)}, or 'site'")
    if isinstance(raw, str) and not raw.strip():
        raise ExperimentError(f"no tolerance in {spec!r}: expected e.g. rpo_p95_s=30s")
    value, relative = _tolerance(metric, raw)
    return Precision(metric, vm, value, relative)


def _precisions(raw: object, scenario: Scenario) -> tuple[Precision, ...]:
    """Precision targets from a string, a list of strings or targets, or a mapping METRIC[@VM] -> tolerance."""
    if raw is None or raw == {} or raw == []:
        return ()
    if isinstance(raw, str | Precision):
        raw = [raw]
    if isinstance(raw, Mapping):
        return tuple(parse_precision(str(k), v, scenario) for k, v in raw.items())
    return tuple(parse_precision(p, scenario=scenario) for p in raw)  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------------------
# Settings: the scenario's experiment section with the arguments over it


@dataclass(frozen=True)
class ExperimentSettings:
    """An experiment as it will run: the scenario's ``experiment`` section with the arguments given over it.
    ``replications``: per point (with ``precision``: in the first round); ``max_replications``: the cap with
    ``precision`` (``replications`` without); ``batch_size``: None for automatic."""

    replications: int
    seed: int
    grid: dict[str, list[Any]]
    lhs: dict[str, Range | Choices]
    samples: int | None
    precision: tuple[Precision, ...]
    max_replications: int
    batch_size: int | None
    keep_runs: bool

    def record(self) -> dict[str, Any]:
        """The settings as plain data (for experiment.json and metadata.json)."""
        return {"replications": self.replications, "experiment_seed": self.seed, "sweep": _plain(self.grid),
                "lhs": {path: _plain(dim.describe()) for path, dim in self.lhs.items()}, "samples": self.samples,
                "precision": [p.describe() for p in self.precision],
                "max_replications": self.max_replications if self.precision else None, "keep_runs": self.keep_runs}


def _positive_int(value: Any, what: str, key: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ExperimentError(f"{what} must be a positive integer, got {value!r}", key)
    return int(value)


def experiment_settings(
    scenario: Scenario,
    replications: int | None = None,
    sweep: Mapping[str, Any] | None = None,
    seed: int | None = None,
    lhs: Mapping[str, Any] | None = None,
    samples: int | None = None,
    precision: str | Precision | Sequence[str | Precision] | Mapping[str, Any] | None = None,
    max_replications: int | None = None,
    batch_size: int | None = None,
    keep_runs: bool | None = None,
) -> ExperimentSettings:
    """Resolve an experiment's settings: each argument given (not None) replaces the same key of the scenario's
    ``experiment`` section, which replaces the default (10 replications, the scenario's seed, no sweep, no
    precision target, at most 100 replications with one, automatic batches, no per-run tables). ``sweep``,
    ``lhs`` and ``precision`` replace the section's whole grid, hypercube or list of targets. Raises
    :class:`ExperimentError` (or :class:`ScenarioError` for a bad path or range)."""
    section = scenario.experiment or ExperimentSection()

    def pick(arg: Any, key: str, default: Any) -> Any:
        if arg is not None:
            return arg
        value = getattr(section, key)
        return default if value is None else value

    n = _positive_int(pick(replications, "replications", DEFAULT_REPLICATIONS), "replications", "replications")
    exp_seed = pick(seed, "seed", scenario.seed)
    if isinstance(exp_seed, bool) or not isinstance(exp_seed, int | np.integer) or exp_seed < 0:
        raise ExperimentError(f"the experiment seed must be an integer, not negative, got {exp_seed!r}", "seed")
    grid = _normalise_sweep(sweep if sweep is not None else section.sweep)
    dims: dict[str, Range | Choices] = {}
    for path, raw in (lhs if lhs is not None else section.lhs).items():
        try:
            dims[path] = parse_lhs(raw)
        except ValueError as exc:
            raise ScenarioError([Problem(loc=parse_path(path, "lhs"), message=str(exc))], "lhs") from None
    # the section's samples and max_replications go with its own lhs and precision: dropped with them
    n_samples = samples if samples is not None else section.samples if lhs is None or dims else None
    if dims and n_samples is None:
        raise ExperimentError("a Latin hypercube needs its number of samples (samples=N; --samples N)", "lhs")
    if n_samples is not None and not dims:
        raise ExperimentError("samples is given but no Latin hypercube range is (lhs=...; --lhs PATH=LO..HI)",
                              "samples")
    if n_samples is not None:
        n_samples = _positive_int(n_samples, "the number of Latin hypercube samples", "samples")
    targets = _precisions(precision if precision is not None else section.precision, scenario)
    cap = max_replications if max_replications is not None else \
        section.max_replications if precision is None or targets else None
    if cap is not None and not targets:
        raise ExperimentError("max_replications applies only with a precision target (precision=...; --precision)",
                              "max_replications")
    if targets:
        if n < 2:
            raise ExperimentError("a precision target needs at least 2 replications in the first round (10 or "
                                  "more give steadier estimates of the spread)", "replications")
        cap = (_positive_int(cap, "max_replications", "max_replications") if cap is not None
               else max(DEFAULT_MAX_REPLICATIONS, n))
        if cap < n:
            raise ExperimentError(f"max_replications ({cap}) is below the first round's {n} replications",
                                  "max_replications")
    else:
        cap = n
    batch = pick(batch_size, "batch_size", None)
    if batch is not None:
        batch = _positive_int(batch, "batch_size", "batch_size")
    keep = bool(section.keep_runs if keep_runs is None else keep_runs)
    return ExperimentSettings(n, int(exp_seed), grid, dims, n_samples, targets, cap, batch, keep)


# ----------------------------------------------------------------------------------------------------
# Running


EXPERIMENT_FILE = "experiment.json"
PARTS = "parts"
RUNS = "runs"


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON."""
    return json.loads(json.dumps(value, default=str))


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


def _run_batch(point: int, scenario: Scenario, runs: list[tuple[int, int]],
               keep_runs: bool = False) -> tuple[int, list[_Outcome]]:
    """Worker task: the replications ``runs`` ((replication, seed) pairs) of one sweep point.

    Returns ``(point, outcomes)``, one :class:`_Outcome` per run; with ``keep_runs`` each carries every table as
    Parquet contents (encoded here, in the worker)."""
    out = []
    for rep, seed in runs:
        try:
            results = Results(SiteModel(scenario, seed).run())
            tables = None
            if keep_runs:

                tables = table_bytes(results)
            out.append(_Outcome(rep, seed, results.summary, tables=tables))
        except Exception as exc:
            out.append(_Outcome(rep, seed, None, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    return point, out


# ----------------------------------------------------------------------------------------------------
# Executors: concurrent.futures, or Dask distributed


def connect_dask(address: str, timeout: float = 10.0) -> Any:
    """A ``distributed.Client`` connected to the Dask scheduler at ``address`` (e.g. ``tcp://host:8786``).
    Raises :class:`ExperimentError` when ``distributed`` is not installed or the scheduler cannot be reached
    within ``timeout`` seconds."""
    try:
        from distributed import Client
    except ImportError:
        raise ExperimentError("running on Dask needs the 'distributed' package: pip install 'drsim[dask]'") from None
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ExperimentError(f"cannot reach the Dask scheduler at {address}: {type(exc).__name__}: "
                              f"{str(exc).strip() or 'no answer'} (is it running, and is the address "
                              "tcp://HOST:PORT?)") from None


def _tasks(todo: Sequence[Sequence[int]], batch_size: int) -> Iterator[tuple[int, list[int]]]:
    """Batches of ``todo[p]`` (the replications to run at each point) in replication-block order, so every
    point advances together."""
    longest = max((len(t) for t in todo), default=0)
    for start in range(0, longest, batch_size):
        for p, reps in enumerate(todo):
            batch = list(reps[start:start + batch_size])
            if batch:
                yield p, batch


def _auto_batch(runs: int, workers: int) -> int:
    """About four tasks per worker, at most 32 runs each."""
    return max(1, min(32, math.ceil(runs / (4 * workers))))


def _precision_status(results: Mapping[tuple[int, int], pd.DataFrame], targets: Sequence[int],
                      criteria: Sequence[Precision]) -> pd.DataFrame:
    """Per point and precision target, over the first ``targets[p]`` replications of each point: ``n`` (values),
    ``mean``, ``ci95`` (as in the aggregate table), ``limit`` (the half-width allowed) and ``reached``."""
    vms = {c.vm for c in criteria}
    metrics = list(dict.fromkeys(c.metric for c in criteria))
    frames = []
    for p, k in sorted(results):
        if k < targets[p]:
            df = results[(p, k)]
            rows = df.loc[df["vm"].isin(vms), ["vm", *[m for m in metrics if m in df.columns]]].copy()
            rows.insert(0, "point", np.int64(p))
            frames.append(rows)
    agg = aggregate(pd.concat(frames, ignore_index=True), by=("point", "vm")) if frames else pd.DataFrame(
        columns=["point", "vm", "metric", *STATS])
    stats = {(int(p), vm, m): (int(n), float(mean), float(half)) for p, vm, m, n, mean, half
             in zip(agg["point"], agg["vm"], agg["metric"], agg["n"], agg["mean"], agg["ci95"], strict=True)}
    rows = []
    for p, n_runs in enumerate(targets):
        for c in criteria:
            n, mean, half = stats.get((p, c.vm, c.metric), (0, math.nan, math.nan))
            limit = c.limit(mean) if math.isfinite(mean) else math.nan
            reached = bool(n >= 2 and math.isfinite(half) and half <= limit)
            rows.append({"point": p, "metric": c.metric, "vm": c.vm, "replications": n_runs, "n": n, "mean": mean,
                         "ci95": half, "limit": limit, "reached": reached})
    return pd.DataFrame(rows, columns=["point", "metric", "vm", "replications", "n", "mean", "ci95", "limit",
                                       "reached"])


def _next_targets(status: pd.DataFrame, targets: list[int], cap: int) -> list[int]:
    """Replications each point should have after the next round: as many as the worst unmet target's
    half-width asks for (the half-width shrinks as 1/sqrt(n)), at least one more, at most twice as many, at most
    ``cap``; unchanged where every target is reached."""
    out = []
    for p, n in enumerate(targets):
        unmet = status[(status["point"] == p) & ~status["reached"]]
        if unmet.empty or n >= cap:
            out.append(n)
            continue
        growth = max((h / lim) ** 2 if math.isfinite(h) and math.isfinite(lim) and lim > 0 else math.inf
                     for h, lim in zip(unmet["ci95"], unmet["limit"], strict=True))
        want = n * growth
        out.append(min(cap, 2 * n, max(n + 1, math.ceil(want) if math.isfinite(want) else 2 * n)))
    return out


def run_experiment(
    scenario: Scenario | str | Path,
    replications: int | None = None,
    sweep: Mapping[str, Any] | None = None,
    executor: Executor | Any | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    max_in_flight: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    *,
    lhs: Mapping[str, Any] | None = None,
    samples: int | None = None,
    precision: str | Precision | Sequence[str | Precision] | Mapping[str, Any] | None = None,
    max_replications: int | None = None,
    keep_runs: bool | None = None,
) -> Experiment:
    """Run replications of every point of a sweep and return an :class:`Experiment`.

    ``sweep``: dotted path -> list of values, a full factorial grid. ``lhs``: dotted path -> range (``"LO..HI"``
    with units, ``":log"`` after it for a log scale, or ``{low, high, scale}``) or list of choices, a Latin
    hypercube of ``samples`` samples (drawn from the experiment seed; see :func:`latin_hypercube`), crossed with
    the grid. ``replications``: per point [10]. ``precision``: targets such as ``"rpo_p95_s=30s"`` (see
    :func:`parse_precision`): replications then run in rounds until every target is reached at every point, at
    most ``max_replications`` per point [100, or ``replications`` if more]. ``keep_runs``: also write every run's
    full tables into ``out`` (large: several MB per run of a month). An argument left at None takes the value of
    the scenario's ``experiment`` section, else the default.

    ``executor``: any :class:`concurrent.futures.Executor`, or a Dask ``distributed.Client`` (default: a process
    pool with one worker per core, shut down at the end). ``seed``: the experiment seed (default: the
    scenario's). ``batch_size``: runs per task (default: about four tasks per worker, at most 32 runs).
    ``max_in_flight``: tasks submitted at once (default: twice the workers). ``progress(done, total)`` is called
    as runs finish (``total`` grows with each round of a precision target).

    ``out``: a folder to stream the experiment to (created if needed; see the module's *Streaming and
    resuming*); it must not hold an experiment already unless ``resume``. ``resume=True`` continues the
    interrupted experiment in ``out`` (raises :class:`ExperimentError`, a ``ValueError``, if it is a different
    experiment), running only the missing replications.

    Every point is validated before anything runs: a bad path or value raises :class:`ScenarioError`. When the
    executor itself fails (a worker process dies, the scheduler is lost) :class:`ExecutorFailed` is raised; the
    finished runs are in ``out``.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    settings = experiment_settings(scenario, replications, sweep, seed, lhs, samples, precision, max_replications,
                                   batch_size, keep_runs)
    points = design(scenario, settings.grid, settings.lhs, settings.samples, settings.seed)
    seeds = [replication_seed(settings.seed, k) for k in range(settings.replications)]

    results: dict[tuple[int, int], pd.DataFrame] = {}
    failed: list[tuple[int, int, int, str, str]] = []
    folder = Path(out) if out is not None else None
    if resume and folder is None:
        raise ExperimentError("resume=True needs out, the folder of the interrupted experiment")
    if settings.keep_runs and folder is None:
        raise ExperimentError("keep_runs needs out, the folder to write every run's tables into")
    if folder is not None:
        record = _experiment_record(scenario, settings, points, seeds)
        if resume:
            _check_resume(folder, record)
            results, failed = _load_parts(folder)
        else:
            if (folder / EXPERIMENT_FILE).exists():
                raise ExperimentError(f"{folder} already holds an experiment; resume it (resume=True) or choose "
                                      "another folder")
            (folder / PARTS).mkdir(parents=True, exist_ok=True)
            text = json.dumps(record, indent=2, default=str) + "\n"
            atomic_write(folder / EXPERIMENT_FILE, lambda t: t.write_text(text, encoding="utf-8"))
        (folder / PARTS).mkdir(parents=True, exist_ok=True)
    done = set(results) | {(f[0], f[1]) for f in failed}

    pool, workers, own, executor_name = resolve_executor(executor)
    limit = max(1, int(max_in_flight) if max_in_flight is not None else 2 * workers)
    targets = [settings.replications] * len(points)
    first_batch: int | None = None
    rounds = 0
    t0 = time.perf_counter()
    pending: dict[Future, tuple[int, list[int]]] = {}

    def collect(fut: Future) -> None:
        p, reps = pending.pop(fut)
        try:
            _, outcomes = fut.result()
        except Exception as exc:
            if executor_failure(exc):
                raise ExecutorFailed(f"{type(exc).__name__}: {str(exc) or 'the executor stopped'}") from exc
            # the task itself failed (e.g. could not be pickled): every run of it failed
            text = f"{type(exc).__name__}: {exc}"
            tb = "".join(traceback.format_exception(exc))
            outcomes = [_Outcome(k, seeds[k], None, text, tb) for k in reps]
        if folder is not None:
            if settings.keep_runs:
                _write_runs(folder, p, points[p], outcomes)
            _write_part(folder, p, reps[0], outcomes)
        for o in outcomes:
            if o.summary is not None:
                results[(p, o.replication)] = o.summary
            else:
                failed.append((p, o.replication, o.seed, o.error or "", o.traceback or ""))
            done.add((p, o.replication))
        if progress is not None:
            progress(sum(1 for q, k in done if k < targets[q]), sum(targets))

    try:
        while True:
            rounds += 1
            seeds.extend(replication_seed(settings.seed, k) for k in range(len(seeds), max(targets)))
            todo = [[k for k in range(n) if (p, k) not in done] for p, n in enumerate(targets)]
            size = settings.batch_size or _auto_batch(sum(map(len, todo)), workers)
            size = max(1, min(size, max(map(len, todo), default=1) or 1))
            first_batch = first_batch or size
            for p, reps in _tasks(todo, size):
                while len(pending) >= limit:
                    finished = wait_first(pending)
                    for fut in finished:
                        collect(fut)
                fut = pool.submit(_run_batch, p, points[p].scenario, [(k, seeds[k]) for k in reps],
                                  settings.keep_runs)
                pending[fut] = (p, reps)
            while pending:
                finished = wait_first(pending)
                for fut in finished:
                    collect(fut)
            if not settings.precision:
                break
            status = _precision_status(results, targets, settings.precision)
            following = _next_targets(status, targets, settings.max_replications)
            if following == targets:
                break
            targets = following
    except BaseException as exc:
        for fut in pending:
            fut.cancel()
        if own:
            (stop_pool if isinstance(exc, KeyboardInterrupt) else lambda p: shutdown(p, cancel=True))(pool)
        raise
    if own:
        shutdown(pool, cancel=False)
    elapsed = time.perf_counter() - t0
    status = _precision_status(results, targets, settings.precision) if settings.precision else None
    kept = {key: df for key, df in results.items() if key[1] < targets[key[0]]}
    lost = [f for f in failed if f[1] < targets[f[0]]]
    return Experiment(scenario, settings, points, seeds[:max(targets)], kept, lost, targets, status, rounds,
                      elapsed, workers, first_batch or 1, executor_name)


# ----------------------------------------------------------------------------------------------------
# Aggregation


def aggregate(tidy: pd.DataFrame, by: Sequence[str] = ("point", "vm"), exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Statistics over replications: one row per group of ``by`` and metric (every numeric or yes/no column
    not in ``by``, ``exclude``, ``replication`` or ``seed``), in the order groups first appear in ``tidy``.

    Columns: ``by``..., ``metric``, ``n`` (values that are not NaN), ``mean``, ``std`` (sample), ``p50``,
    ``p95`` (linear interpolation between replications), ``max``, ``ci95`` = t(0.975, n - 1) * std / sqrt(n),
    the half-width of the 95 % confidence interval of the mean (NaN when n < 2).
    """
    by = list(by)
    skip = set(by) | set(exclude) | set(KEY_COLUMNS)
    metrics = [c for c in tidy.columns if c not in skip
               and (pd.api.types.is_bool_dtype(tidy[c]) or pd.api.types.is_numeric_dtype(tidy[c]))]
    columns = [*by, "metric", *STATS]
    if tidy.empty or not metrics:
        return pd.DataFrame(columns=columns)
    values = tidy[metrics].astype(float)
    keys = [tidy[c] for c in by]
    grouped = values.groupby(keys, sort=False, observed=True)
    counts = grouped.count()
    frames = {
        "n": counts,
        "mean": grouped.mean(),
        "std": grouped.std(ddof=1),
        "p50": grouped.quantile(0.5),
        "p95": grouped.quantile(0.95),
        "max": grouped.max(),
    }
    n_groups = len(counts)
    long = {name: frame.to_numpy().reshape(-1) for name, frame in frames.items()}  # row-major: group, metric
    index = counts.index.to_frame(index=False)
    out = index.loc[index.index.repeat(len(metrics))].reset_index(drop=True)
    out["metric"] = np.tile(np.asarray(metrics, dtype=object), n_groups)
    n = long["n"].astype(np.int64)
    out["n"] = n
    for name in ("mean", "std", "p50", "p95", "max"):
        out[name] = long[name].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = t_975(n - 1) * out["std"].to_numpy() / np.sqrt(n)
    out["ci95"] = np.where(n >= 2, half, np.nan)
    return out[columns]


# ----------------------------------------------------------------------------------------------------
# The outcome


class Experiment:
    """The outcome of :func:`run_experiment`: ``tidy``, ``aggregate`` and ``failures`` tables, the points
    (``points``: ``point``, the swept values, ``sample`` with a Latin hypercube), the run seed of each replication
    (``seeds``), the replications run at each point (``replications_per_point``; ``replications`` is the
    largest), with precision targets their status (``precision_status``, ``precision_reached``), and how it ran.

    ``sweep`` maps each swept path to its values in point order: the grid's values as given, a hypercube
    range's sampled values in base units (seconds, bytes, bytes/s), a hypercube choice's values as given."""

    def __init__(self, scenario: Scenario, settings: ExperimentSettings, points: list[_Point], seeds: list[int],
                 results: dict[tuple[int, int], pd.DataFrame], failed: list[tuple[int, int, int, str, str]],
                 targets: list[int], precision_status: pd.DataFrame | None, rounds: int, elapsed_s: float,
                 workers: int, batch_size: int, executor: str):
        self.scenario = scenario
        self.config = settings
        self.seed = settings.seed
        self.grid = settings.grid
        self.lhs = settings.lhs
        self.samples = settings.samples
        self.precision = settings.precision
        self._points = points
        self.seeds = seeds
        self.replications = max(targets)
        self.replications_per_point = list(targets)
        self.precision_status = precision_status
        self.rounds = rounds
        self.elapsed_s = elapsed_s
        self.workers = workers
        self.batch_size = batch_size
        self.executor = executor
        self.sweep: dict[str, list[Any]] = dict(self.grid)
        for path in self.lhs:
            self.sweep[path] = list(dict.fromkeys(pt.values[path] for pt in points))
        self.points = pd.DataFrame({"point": np.arange(len(points), dtype=np.int64)})
        for path, col in self._sweep_columns().items():
            self.points[path] = col
        self.tidy = self._tidy(results)
        self.failures = self._failures(failed)

    @property
    def columns(self) -> list[str]:
        """The columns that describe a point, after ``point``: the grid's paths, ``sample`` and the hypercube's
        paths."""
        return list(self.points.columns[1:])

    @property
    def precision_reached(self) -> bool | None:
        """Whether every precision target was reached at every point (None without targets)."""
        return None if self.precision_status is None else bool(self.precision_status["reached"].all())

    def _sweep_columns(self) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {}

        def add(path: str) -> None:
            labels = [pt.values[path] for pt in self._points]
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels)
            flags = all(isinstance(v, bool) for v in labels)
            cols[path] = labels if numeric or flags else [str(v) for v in labels]

        for path in self.grid:
            add(path)
        if self.lhs:
            cols[SAMPLE] = [int(pt.sample or 0) for pt in self._points]
            for path in self.lhs:
                add(path)
        return cols

    def _with_points(self, df: pd.DataFrame) -> pd.DataFrame:
        """Insert the swept values after ``point``."""
        if not self.columns:
            return df
        merged = df.merge(self.points, on="point", how="left", validate="many_to_one")
        first = ["point", *self.columns]
        return merged[first + [c for c in df.columns if c not in first]]

    def _tidy(self, results: dict[tuple[int, int], pd.DataFrame]) -> pd.DataFrame:
        frames = []
        for p, rep in sorted(results):
            df = results[(p, rep)].copy()
            df.insert(0, "seed", np.int64(self.seeds[rep]))
            df.insert(0, "replication", np.int64(rep))
            df.insert(0, "point", np.int64(p))
            frames.append(df)
        if not frames:
            return self._with_points(pd.DataFrame({c: pd.Series(dtype="int64") for c in KEY_COLUMNS}))
        return self._with_points(pd.concat(frames, ignore_index=True))

    def _failures(self, failed: list[tuple[int, int, int, str, str]]) -> pd.DataFrame:
        return self._with_points(_failures_frame(sorted(failed, key=lambda f: (f[0], f[1]))))

    @cached_property
    def aggregate(self) -> pd.DataFrame:
        """Per (point, VM and ``(site)``, metric): n, mean, std, p50, p95, max, ci95; see :func:`aggregate`."""
        agg = aggregate(self.tidy, by=("point", "vm"), exclude=tuple(self.columns))
        agg["point"] = agg["point"].astype("int64")
        return self._with_points(agg)

    def scenario_for(self, point: int) -> Scenario:
        """The validated scenario of a sweep point."""
        return self._points[point].scenario

    def settings(self, point: int) -> dict[str, Any]:
        """The swept settings of a point as applied to the scenario (values as in a scenario file; a hypercube
        range's value with its unit, e.g. ``'2500000.0B/s'``)."""
        return dict(self._points[point].settings)

    def simulate(self, point: int, replication: int) -> Results:
        """Run one replication again (identical to the one in the experiment), with every table."""
        return Results(SiteModel(self.scenario_for(point), self.seeds[replication]).run())

    def metadata(self) -> dict[str, Any]:

        record = self.config.record()
        meta: dict[str, Any] = {
            "scenario": self.scenario.name,
            "scenario_hash": scenario_hash(self.scenario),
            "source": str(self.scenario.source) if self.scenario.source else None,
            "experiment_seed": self.seed,
            "replications": self.replications,
            "sweep": {path: [_label(v) for v in values] for path, values in self.sweep.items()},
            "grid": record["sweep"],
            "lhs": record["lhs"],
            "samples": self.samples,
            "points": [{"point": i, "settings": {p: _label(v) for p, v in pt.settings.items()}, "sample": pt.sample,
                        "replications": self.replications_per_point[i], "scenario_hash": scenario_hash(pt.scenario)}
                       for i, pt in enumerate(self._points)],
            "run_seeds": self.seeds,
            "seeding": "replication k runs with seed SeedSequence(experiment_seed, spawn_key=(k,))"
                       ".generate_state(1, uint64) >> 1, the same at every sweep point (common random numbers)",
            "runs": sum(self.replications_per_point),
            "failed_runs": len(self.failures),
            "executor": self.executor,
            "workers": self.workers,
            "batch_size": self.batch_size,
            "keep_runs": self.config.keep_runs,
            "wall_time_s": round(self.elapsed_s, 3),
            "confidence_interval": "ci95 = t(0.975, n-1) * std / sqrt(n); t exact for n-1 <= 30, "
                                   "Cornish-Fisher expansion above",
            "versions": package_versions(),
            "units": {"time": "seconds from t = 0", "size": "bytes", "rate": "bytes per second"},
        }
        if self.lhs:
            meta["lhs_seeding"] = ("numpy.random.default_rng(SeedSequence(experiment_seed, spawn_key=(0x4C4853, 0))):"
                                   " per path in order, a permutation of the strata then one uniform draw in each")
        if self.precision_status is not None:
            st = self.precision_status
            meta["precision"] = {
                "targets": record["precision"],
                "first_round": self.config.replications,
                "max_replications": self.config.max_replications,
                "rounds": self.rounds,
                "reached": self.precision_reached,
                "points_reached": int(st.groupby("point")["reached"].all().sum()),
                "status": _plain(st.to_dict(orient="records")),
            }
        return meta

    def __repr__(self) -> str:
        return (f"<Experiment {self.scenario.name} points={len(self._points)} replications={self.replications} "
                f"failed={len(self.failures)} seed={self.seed}>")


# ----------------------------------------------------------------------------------------------------
# Output


def write_experiment(exp: Experiment, out_root: str | Path = "results", extra: dict[str, Any] | None = None) -> Path:
    """Write ``tidy.parquet``, ``aggregate.parquet``, ``failures.parquet`` (if any run failed), the resolved base
    ``scenario.yaml`` and ``metadata.json`` into ``out_root/<scenario>/sweep-<UTC time>/`` (a ``-2``... suffix if
    it exists). Written under a temporary name and renamed when complete, like :func:`drsim.results.folders.write_run`."""
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
    import shutil


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


def _value_text(exp: Experiment, path: str, value: Any) -> str:
    """A swept value for people: a hypercube range's value in its units, anything else as in the tables."""
    dim = exp.lhs.get(path)
    return dim.format(value) if isinstance(dim, Range) and not isinstance(value, str) else str(value)


def aggregate_text(exp: Experiment, vm: str = SITE, max_rows: int = 50) -> str:
    """A compact table of ``vm``'s (default: the site's) aggregate, one line per sweep point (the first
    ``max_rows``): means, with the 95 % confidence half-width of the RPO p95 and of the downtime."""

    agg = exp.aggregate
    agg = agg[agg["vm"] == vm]
    stats = {(int(p), m): (mean, half) for p, m, mean, half
             in zip(agg["point"], agg["metric"], agg["mean"], agg["ci95"], strict=True)}
    runs = exp.tidy.loc[exp.tidy["vm"] == vm, "point"].value_counts() if len(exp.tidy) else pd.Series(dtype=int)

    def mean(point: int, metric: str) -> float:
        return float(stats.get((point, metric), (math.nan, math.nan))[0])

    def dur(point: int, metric: str, ci: bool = False) -> str:
        m, half = stats.get((point, metric), (math.nan, math.nan))
        text = format_duration(float(m))
        return f"{text} ± {format_duration(float(half))}" if ci and not (math.isnan(half) or math.isnan(m)) else text

    def share(x: float, digits: int = 1) -> str:
        return "-" if math.isnan(x) else f"{x:.{digits}%}"

    target = format_duration(exp.scenario.objectives.rpo)
    header = ("point", *exp.columns, "runs", "protected after", "RPO p95", f"> {target}", "availability",
              "downtime", "incidents")
    rows = []
    for pt in exp.points.head(max_rows).itertuples(index=False):
        p = int(pt[0])
        incidents = mean(p, "incidents")
        rows.append((str(p), *(_value_text(exp, c, v) for c, v in zip(exp.columns, pt[1:], strict=True)),
                     str(int(runs.get(p, 0))), dur(p, "protected_at"),
                     dur(p, "rpo_p95_s", ci=True), share(mean(p, "rpo_over_target")),
                     share(mean(p, "availability"), 3), dur(p, "downtime_s", ci=True),
                     "-" if math.isnan(incidents) else f"{incidents:.2f}"))
    lines = text_table(header, rows)
    if len(exp.points) > max_rows:
        lines.append(f"... {len(exp.points) - max_rows} more points")
    return "\n".join(lines)


def precision_text(exp: Experiment, max_points: int = 10) -> str:
    """One line per precision target: at how many points it was reached and with how many replications; then
    the points where it was not (the first ``max_points``). Empty without targets."""
    st = exp.precision_status
    if st is None:
        return ""
    lines = []
    cap = exp.config.max_replications
    for c in exp.precision:
        mine = st[(st["metric"] == c.metric) & (st["vm"] == c.vm)]
        reached = mine[mine["reached"]]
        reps = sorted(set(mine["replications"]))
        span = f"{reps[0]}" if len(reps) == 1 else f"{reps[0]}-{reps[-1]}"
        lines.append(f"precision: {c}: reached at {len(reached)} of {len(mine)} points, with {span} replications "
                     f"per point (at most {cap})")
        for row in mine[~mine["reached"]].head(max_points).itertuples(index=False):
            half = "undefined (fewer than 2 values)" if not math.isfinite(row.ci95) else \
                f"± {_format_metric(c.metric, row.ci95)}"
            settings = ", ".join(f"{c2}={_value_text(exp, c2, v)}" for c2, v in
                                 zip(exp.columns, exp.points.iloc[row.point, 1:], strict=True))
            lines.append(f"  not reached at point {row.point}" + (f" ({settings})" if settings else "")
                         + f": {half} after {row.replications} replications")
        missing = int((~mine["reached"]).sum()) - max_points
        if missing > 0:
            lines.append(f"  ... and {missing} more points")
    return "\n".join(lines)
