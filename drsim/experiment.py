"""What-if experiments: Monte Carlo replications of a scenario over a sweep of its settings.

:func:`run_experiment` runs ``replications`` independent replications of every point of a sweep (a full
factorial grid of scenario settings, e.g. ``{"link.upload": ["10Mbit/s", "20Mbit/s"], "policy.name":
["manual", "automatic"]}``) on any :class:`concurrent.futures.Executor` and returns an :class:`Experiment`:

``tidy``
    one row per (sweep point, replication, VM and ``(site)``): ``point``, the swept values (one column per
    path), ``replication``, ``seed`` (the run's seed: ``drsim.simulate(experiment.scenario_for(point), seed)``
    or ``drsim run --seed`` on the point's scenario reproduces the replication) and every column of the run's
    summary table.
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
in replication ``k``: comparisons between points are paired.

**Execution.** Replications of one point are batched into tasks (``batch_size`` runs each); at most
``max_in_flight`` tasks are submitted at a time. The tables are sorted by (point, replication, the run's row
order), so they are identical row for row whatever the executor and the number of workers.

**Streaming and resuming.** With ``out=FOLDER``, :func:`run_experiment` first writes ``FOLDER/experiment.json``
(the resolved sweep, points, replications, seeds, base scenario and drsim version), then, as each task finishes,
its rows as ``FOLDER/parts/part-<point>-<first replication>.parquet`` (and its failed runs, if any, as
``failures-<point>-<first replication>.parquet`` just before). Every file is written under a temporary name and
renamed, so a file that exists is whole. ``resume=True`` checks that experiment.json describes the same
experiment, loads the parts and runs only the (point, replication) pairs that are missing: the tables are
identical to those of an uninterrupted run.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, ProcessPoolExecutor, wait
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from drsim.model import SiteModel
from drsim.results import SITE, Results
from drsim.scenario import (
    Problem,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
    scenario_hash,
    scenario_to_dict,
)

__all__ = ["Experiment", "run_experiment", "replication_seed", "sweep_points", "apply_settings", "parse_path",
           "parse_set", "aggregate", "t_975", "write_experiment", "aggregate_text", "incomplete_folder",
           "finish_experiment"]

KEY_COLUMNS = ("point", "replication", "seed")
STATS = ("n", "mean", "std", "p50", "p95", "max", "ci95")

# Two-sided 95 % Student t quantiles t(0.975, df) for df = 1..30 (to 7 decimals).
_T975 = (12.7062047, 4.3026527, 3.1824463, 2.7764451, 2.5705818, 2.4469119, 2.3646243, 2.3060041, 2.2621572,
         2.2281389, 2.2009852, 2.1788128, 2.1603687, 2.1447867, 2.1314495, 2.1199053, 2.1098156, 2.1009220,
         2.0930241, 2.0859634, 2.0796138, 2.0738731, 2.0686576, 2.0638986, 2.0595386, 2.0555294, 2.0518305,
         2.0484071, 2.0452296, 2.0422725)
_Z975 = 1.959963984540054


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
    from drsim.policies import Policy, available_policies

    cls = available_policies().get(name)
    if cls is not None and not isinstance(cls, type):
        try:
            cls = cls.load()
        except Exception:
            return None
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        return None
    return set(cls.Params.model_fields)


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
    grid = _normalise_sweep(sweep)
    if not grid:
        return [({}, scenario)]
    for path in grid:
        parse_path(path)
        if path in ("point", "replication", "vm", "host"):
            raise ScenarioError([Problem(loc=(), message=f"{path!r} cannot be swept")], "sweep")
    points = []
    for i, combo in enumerate(itertools.product(*grid.values())):
        settings = dict(zip(grid, combo, strict=True))
        text = ", ".join(f"{p}={_label(v)}" for p, v in settings.items())
        points.append((settings, apply_settings(scenario, settings, source=f"sweep point {i} ({text})")))
    return points


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
    values = []
    for item in _split_values(rest):
        if not item:
            raise ScenarioError([Problem(loc=loc, message="an empty value")], source)
        try:
            values.append(yaml.safe_load(item))
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise ScenarioError([Problem(loc=loc, message=f"cannot read value {item!r}: {problem}")], source) from None
    return path, values


# ----------------------------------------------------------------------------------------------------
# Running


EXPERIMENT_FILE = "experiment.json"
PARTS = "parts"


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it to ``path`` (atomic)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON."""
    return json.loads(json.dumps(value, default=str))


def _experiment_record(scenario: Scenario, exp_seed: int, grid: dict[str, list[Any]],
                       points: list[tuple[dict[str, Any], Scenario]], seeds: list[int]) -> dict[str, Any]:
    import drsim

    return {
        "scenario": scenario.name,
        "scenario_hash": scenario_hash(scenario),
        "source": str(scenario.source) if scenario.source else None,
        "experiment_seed": exp_seed,
        "replications": len(seeds),
        "sweep": _plain(grid),
        "points": [{"point": i, "settings": _plain(s), "scenario_hash": scenario_hash(sc)}
                   for i, (s, sc) in enumerate(points)],
        "run_seeds": seeds,
        "base_scenario": _plain(scenario_to_dict(scenario)),
        "drsim_version": drsim.__version__,
    }


def _check_resume(folder: Path, record: dict[str, Any]) -> None:
    """Refuse to resume ``folder`` unless its experiment.json describes the experiment ``record``."""
    path = folder / EXPERIMENT_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"cannot resume {folder}: it has no {EXPERIMENT_FILE} (not an experiment folder)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot resume {folder}: cannot read {EXPERIMENT_FILE}: {exc}") from None
    checks = (("scenario_hash", "the scenario"), ("sweep", "the sweep"), ("replications", "the replications"),
              ("experiment_seed", "the experiment seed"))
    differ = [f"{what} ({stored.get(key)!r} there, {record[key]!r} now)" for key, what in checks
              if stored.get(key) != record[key]]
    if differ:
        raise ValueError(f"cannot resume {folder}: it holds a different experiment; differs: " + "; ".join(differ))


def _write_part(folder: Path, p: int, first: int, seeds: list[int], outcomes: list[tuple]) -> None:
    """The rows of one finished task: failures first, then the part (whose presence marks the task done)."""
    parts = folder / PARTS
    failed = [(p, rep, s, err, tb) for rep, s, summary, err, tb in outcomes if summary is None]
    if failed:
        fdf = pd.DataFrame({"point": pd.Series([f[0] for f in failed], dtype="int64"),
                            "replication": pd.Series([f[1] for f in failed], dtype="int64"),
                            "seed": pd.Series([f[2] for f in failed], dtype="int64"),
                            "error": pd.Series([f[3] for f in failed], dtype=object),
                            "traceback": pd.Series([f[4] for f in failed], dtype=object)})
        _atomic_write(parts / f"failures-{p}-{first}.parquet", lambda t: fdf.to_parquet(t, index=False))
    frames = []
    for rep, _, summary, _, _ in outcomes:
        if summary is not None:
            df = summary.copy()
            df.insert(0, "seed", np.int64(seeds[rep]))
            df.insert(0, "replication", np.int64(rep))
            df.insert(0, "point", np.int64(p))
            frames.append(df)
    part = (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame({c: pd.Series(dtype="int64") for c in KEY_COLUMNS}))
    _atomic_write(parts / f"part-{p}-{first}.parquet", lambda t: part.to_parquet(t, index=False))


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


def _run_batch(point: int, scenario: Scenario, runs: list[tuple[int, int]]) -> tuple[int, list[tuple]]:
    """Worker task: the replications ``runs`` ((replication, seed) pairs) of one sweep point.

    Returns ``(point, outcomes)``, one ``(replication, seed, summary or None, error, traceback)`` per run."""
    out = []
    for rep, seed in runs:
        try:
            summary = Results(SiteModel(scenario, seed).run()).summary
            out.append((rep, seed, summary, None, None))
        except Exception as exc:
            out.append((rep, seed, None, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    return point, out


def _workers(executor: Executor) -> int:
    n = getattr(executor, "_max_workers", None)
    return n if isinstance(n, int) and n > 0 else (os.cpu_count() or 1)


def _tasks(n_points: int, replications: int, batch_size: int,
           done: set[tuple[int, int]] | frozenset = frozenset()) -> Iterator[tuple[int, list[int]]]:
    """Batches in replication-block order, so every point advances together; runs in ``done`` are skipped."""
    todo = [[k for k in range(replications) if (p, k) not in done] for p in range(n_points)]
    for start in range(0, replications, batch_size):
        for p in range(n_points):
            reps = todo[p][start:start + batch_size]
            if reps:
                yield p, reps


def run_experiment(
    scenario: Scenario | str | Path,
    replications: int = 10,
    sweep: Mapping[str, Any] | None = None,
    executor: Executor | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    max_in_flight: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    out: str | Path | None = None,
    resume: bool = False,
) -> Experiment:
    """Run ``replications`` replications of every point of ``sweep`` (dotted path -> list of values; a full
    factorial grid) and return an :class:`Experiment`.

    ``executor``: any :class:`concurrent.futures.Executor` (default: a process pool with one worker per core,
    shut down at the end). ``seed``: the experiment seed (default: the scenario's). ``batch_size``: runs per
    task (default: about four tasks per worker, at most 32 runs). ``max_in_flight``: tasks submitted at once
    (default: twice the workers). ``progress(done, total)`` is called as runs finish.

    ``out``: a folder to stream the experiment to (created if needed; see the module's *Streaming and
    resuming*); it must not hold an experiment already unless ``resume``. ``resume=True`` continues the
    interrupted experiment in ``out`` (raises :class:`ValueError` if it is a different experiment), running only
    the missing replications.

    Every point is validated before anything runs: a bad path or value raises :class:`ScenarioError`.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise ValueError(f"replications must be a positive integer, got {replications!r}")
    exp_seed = scenario.seed if seed is None else int(seed)
    if exp_seed < 0:
        raise ValueError(f"the experiment seed must not be negative, got {exp_seed}")
    grid = _normalise_sweep(sweep)
    points = sweep_points(scenario, grid)
    seeds = [replication_seed(exp_seed, k) for k in range(replications)]
    total = len(points) * replications

    results: dict[tuple[int, int], pd.DataFrame] = {}
    failed: list[tuple[int, int, int, str, str]] = []
    folder = Path(out) if out is not None else None
    if resume and folder is None:
        raise ValueError("resume=True needs out, the folder of the interrupted experiment")
    if folder is not None:
        record = _experiment_record(scenario, exp_seed, grid, points, seeds)
        if resume:
            _check_resume(folder, record)
            results, failed = _load_parts(folder)
        else:
            if (folder / EXPERIMENT_FILE).exists():
                raise ValueError(f"{folder} already holds an experiment; resume it (resume=True) or choose "
                                 "another folder")
            (folder / PARTS).mkdir(parents=True, exist_ok=True)
            text = json.dumps(record, indent=2, default=str) + "\n"
            _atomic_write(folder / EXPERIMENT_FILE, lambda t: t.write_text(text, encoding="utf-8"))
        (folder / PARTS).mkdir(parents=True, exist_ok=True)
    done = set(results) | {(f[0], f[1]) for f in failed}

    own = executor is None
    pool: Executor = ProcessPoolExecutor(max_workers=os.cpu_count() or 1) if own else executor  # type: ignore[assignment]
    workers = _workers(pool)
    if batch_size is None:
        batch_size = max(1, min(32, math.ceil(total / (4 * workers))))
    batch_size = max(1, min(int(batch_size), replications))
    limit = max(1, int(max_in_flight) if max_in_flight is not None else 2 * workers)

    t0 = time.perf_counter()
    pending: dict[Future, tuple[int, list[int]]] = {}
    done_runs = len(done)
    tasks = _tasks(len(points), replications, batch_size, done)

    def collect(fut: Future) -> None:
        nonlocal done_runs
        p, reps = pending.pop(fut)
        try:
            _, outcomes = fut.result()
        except BrokenExecutor:
            raise
        except Exception as exc:  # the task itself failed (e.g. could not be sent): every run of it failed
            text = f"{type(exc).__name__}: {exc}"
            tb = "".join(traceback.format_exception(exc))
            outcomes = [(k, seeds[k], None, text, tb) for k in reps]
        if folder is not None:
            _write_part(folder, p, reps[0], seeds, outcomes)
        for rep, run_seed, summary, error, tb in outcomes:
            if summary is not None:
                results[(p, rep)] = summary
            else:
                failed.append((p, rep, run_seed, error, tb))
        done_runs += len(outcomes)
        if progress is not None:
            progress(done_runs, total)

    try:
        for p, reps in tasks:
            while len(pending) >= limit:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    collect(fut)
            fut = pool.submit(_run_batch, p, points[p][1], [(k, seeds[k]) for k in reps])
            pending[fut] = (p, reps)
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                collect(fut)
    except BaseException:
        for fut in pending:
            fut.cancel()
        if own:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if own:
        pool.shutdown()
    elapsed = time.perf_counter() - t0
    return Experiment(scenario, exp_seed, grid, points, seeds, results, failed, elapsed, workers, batch_size,
                      type(pool).__name__)


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
    (``points``), the run seed of each replication (``seeds``), and how it ran."""

    def __init__(self, scenario: Scenario, seed: int, sweep: dict[str, list[Any]],
                 points: list[tuple[dict[str, Any], Scenario]], seeds: list[int],
                 results: dict[tuple[int, int], pd.DataFrame], failed: list[tuple[int, int, int, str, str]],
                 elapsed_s: float, workers: int, batch_size: int, executor: str):
        self.scenario = scenario
        self.seed = seed
        self.sweep = sweep
        self._points = points
        self.seeds = seeds
        self.replications = len(seeds)
        self.elapsed_s = elapsed_s
        self.workers = workers
        self.batch_size = batch_size
        self.executor = executor
        self.points = pd.DataFrame({"point": np.arange(len(points), dtype=np.int64)})
        for path, col in self._sweep_columns().items():
            self.points[path] = col
        self.tidy = self._tidy(results)
        self.failures = self._failures(failed)

    def _sweep_columns(self) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {}
        for path in self.sweep:
            labels = [_label(settings[path]) for settings, _ in self._points]
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels)
            flags = all(isinstance(v, bool) for v in labels)
            cols[path] = labels if numeric or flags else [str(v) for v in labels]
        return cols

    def _with_points(self, df: pd.DataFrame) -> pd.DataFrame:
        """Insert the swept values after ``point``."""
        if not self.sweep:
            return df
        merged = df.merge(self.points, on="point", how="left", validate="many_to_one")
        first = ["point", *self.sweep]
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
        failed = sorted(failed, key=lambda f: (f[0], f[1]))
        df = pd.DataFrame({
            "point": pd.Series([f[0] for f in failed], dtype="int64"),
            "replication": pd.Series([f[1] for f in failed], dtype="int64"),
            "seed": pd.Series([f[2] for f in failed], dtype="int64"),
            "error": pd.Series([f[3] for f in failed], dtype=object),
            "traceback": pd.Series([f[4] for f in failed], dtype=object),
        })
        return self._with_points(df)

    @cached_property
    def aggregate(self) -> pd.DataFrame:
        """Per (point, VM and ``(site)``, metric): n, mean, std, p50, p95, max, ci95; see :func:`aggregate`."""
        agg = aggregate(self.tidy, by=("point", "vm"), exclude=tuple(self.sweep))
        agg["point"] = agg["point"].astype("int64")
        return self._with_points(agg)

    def scenario_for(self, point: int) -> Scenario:
        """The validated scenario of a sweep point."""
        return self._points[point][1]

    def settings(self, point: int) -> dict[str, Any]:
        """The swept values of a point, as given."""
        return dict(self._points[point][0])

    def simulate(self, point: int, replication: int) -> Results:
        """Run one replication again (identical to the one in the experiment), with every table."""
        return Results(SiteModel(self.scenario_for(point), self.seeds[replication]).run())

    def metadata(self) -> dict[str, Any]:
        from drsim.output import _versions

        return {
            "scenario": self.scenario.name,
            "scenario_hash": scenario_hash(self.scenario),
            "source": str(self.scenario.source) if self.scenario.source else None,
            "experiment_seed": self.seed,
            "replications": self.replications,
            "sweep": {path: [_label(v) for v in values] for path, values in self.sweep.items()},
            "points": [{"point": i, "settings": {p: _label(v) for p, v in s.items()},
                        "scenario_hash": scenario_hash(sc)} for i, (s, sc) in enumerate(self._points)],
            "run_seeds": self.seeds,
            "seeding": "replication k runs with seed SeedSequence(experiment_seed, spawn_key=(k,))"
                       ".generate_state(1, uint64) >> 1, the same at every sweep point (common random numbers)",
            "runs": len(self._points) * self.replications,
            "failed_runs": len(self.failures),
            "executor": self.executor,
            "workers": self.workers,
            "batch_size": self.batch_size,
            "wall_time_s": round(self.elapsed_s, 3),
            "confidence_interval": "ci95 = t(0.975, n-1) * std / sqrt(n); t exact for n-1 <= 30, "
                                   "Cornish-Fisher expansion above",
            "versions": _versions(),
            "units": {"time": "seconds from t = 0", "size": "bytes", "rate": "bytes per second"},
        }

    def __repr__(self) -> str:
        return (f"<Experiment {self.scenario.name} points={len(self._points)} replications={self.replications} "
                f"failed={len(self.failures)} seed={self.seed}>")


# ----------------------------------------------------------------------------------------------------
# Output


def write_experiment(exp: Experiment, out_root: str | Path = "results", extra: dict[str, Any] | None = None) -> Path:
    """Write ``tidy.parquet``, ``aggregate.parquet``, ``failures.parquet`` (if any run failed), the resolved base
    ``scenario.yaml`` and ``metadata.json`` into ``out_root/<scenario>/sweep-<UTC time>/`` (a ``-2``... suffix if
    it exists). Written under a temporary name and renamed when complete, like :func:`drsim.output.write_run`."""
    now = datetime.now(UTC)
    parent = Path(out_root) / exp.scenario.name

    from drsim.output import atomic_folder

    return atomic_folder(parent, f"sweep-{now:%Y%m%d-%H%M%S}", lambda tmp: _fill(exp, tmp, now, extra))


def _fill(exp: Experiment, folder: Path, now: datetime, extra: dict[str, Any] | None) -> None:
    tables = {"tidy": exp.tidy, "aggregate": exp.aggregate}
    if len(exp.failures):
        tables["failures"] = exp.failures
    for name, df in tables.items():
        _atomic_write(folder / f"{name}.parquet", lambda t, df=df: df.to_parquet(t, index=False))
    with open(folder / "scenario.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump(scenario_to_dict(exp.scenario), f, sort_keys=False, allow_unicode=True)
    meta = {**exp.metadata(), "created_at": now.isoformat(timespec="seconds"),
            "tables": {name: {"rows": len(df), "columns": list(map(str, df.columns))}
                       for name, df in tables.items()},
            **(extra or {})}
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")


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
    then remove ``folder`` (its experiment.json and parts). Returns the final folder."""
    import shutil

    from drsim.output import atomic_folder

    folder = Path(folder)
    base = folder.name.removesuffix(INCOMPLETE)
    if base == folder.name:
        base = f"{base}-complete"
    target = atomic_folder(folder.parent, base, lambda tmp: _fill(exp, tmp, datetime.now(UTC), extra))
    shutil.rmtree(folder, ignore_errors=True)
    return target


def aggregate_text(exp: Experiment, vm: str = SITE, max_rows: int = 50) -> str:
    """A compact table of ``vm``'s (default: the site's) aggregate, one line per sweep point (the first
    ``max_rows``): means, with the 95 % confidence half-width of the RPO p95 and of the downtime."""
    from drsim.findings import _table
    from drsim.units import format_duration

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
    header = ("point", *exp.sweep, "runs", "protected after", "RPO p95", f"> {target}", "availability", "downtime",
              "incidents")
    rows = []
    for pt in exp.points.head(max_rows).itertuples(index=False):
        p = int(pt[0])
        incidents = mean(p, "incidents")
        rows.append((str(p), *(str(v) for v in pt[1:]), str(int(runs.get(p, 0))), dur(p, "protected_at"),
                     dur(p, "rpo_p95_s", ci=True), share(mean(p, "rpo_over_target")),
                     share(mean(p, "availability"), 3), dur(p, "downtime_s", ci=True),
                     "-" if math.isnan(incidents) else f"{incidents:.2f}"))
    lines = _table(header, rows)
    if len(exp.points) > max_rows:
        lines.append(f"... {len(exp.points) - max_rows} more points")
    return "\n".join(lines)
