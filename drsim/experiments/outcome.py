"""The outcome of an experiment, :class:`Experiment`: its tables, points, seeds and how it ran.

``tidy``
    one row per (sweep point, replication, VM and ``(site)``): ``point``, the swept values (one column per
    path; with a hypercube also ``sample``), ``replication``, ``seed`` (the run's seed:
    ``simulate(experiment.scenario_for(point), seed)`` or ``drsim run --seed`` on the point's scenario
    reproduces the replication) and every column of the run's summary table, with the run's costs per year
    (``cost_<item>_per_year``, ``cost_running_per_year``, ``cost_incidents_per_year``, ``cost_total_per_year``,
    in the price sheet's currency: :func:`drsim.results.costs.with_cost_columns`).
``aggregate``
    one row per (sweep point, VM, metric) for every numeric (or yes/no) summary metric: ``n`` (replications
    with a value), ``mean``, ``std``, ``p50``, ``p95``, ``max`` over the replications, and ``ci95``, the
    half-width of a 95 % confidence interval of the mean (Student t; see
    :func:`~drsim.experiments.statistics.t_975`); the cost metrics too, so a point's money per year (mean ±
    ci95) stands beside its RPO.
``failures``
    one row per replication that raised: point, swept values, replication, seed, error and traceback.
    The rest of the experiment completes.

The tables are sorted by (point, replication, the run's row order), so they are identical row for row whatever
the executor and the number of workers.

Imports :mod:`drsim.scenario`, :mod:`drsim.model`, :mod:`drsim.results` and, of this stage, the setting paths,
the statistics, the design, the settings and the storage's failures table.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drsim.experiments.design import SAMPLE, _Point
from drsim.experiments.settings import ExperimentSettings
from drsim.experiments.settings_paths import _label, _plain
from drsim.experiments.statistics import KEY_COLUMNS, aggregate
from drsim.experiments.storage import _failures_frame
from drsim.model.site import SiteModel
from drsim.results.costs import COST_METRICS
from drsim.results.folders import package_versions
from drsim.results.tables import Results
from drsim.scenario.document import Scenario, scenario_hash
from drsim.scenario.prices import PriceSheet

__all__ = ["Experiment"]


class Experiment:
    """The outcome of :func:`~drsim.experiments.runner.run_experiment`: ``tidy``, ``aggregate`` and ``failures``
    tables, the points (``points``: ``point``, the swept values, ``sample`` with a Latin hypercube), the run seed
    of each replication (``seeds``), the replications run at each point (``replications_per_point``;
    ``replications`` is the largest), with precision targets their status (``precision_status``,
    ``precision_reached``), and how it ran.

    ``sweep`` maps each swept path to its values in point order: the grid's values as given, a hypercube
    range's sampled values in base units (seconds, bytes, bytes/s), a hypercube choice's values as given."""

    def __init__(self, scenario: Scenario, settings: ExperimentSettings, points: list[_Point], seeds: list[int],
                 results: dict[tuple[int, int], pd.DataFrame], failed: list[tuple[int, int, int, str, str]],
                 targets: list[int], precision_status: pd.DataFrame | None, rounds: int, elapsed_s: float,
                 workers: int, batch_size: int, executor: str, prices: PriceSheet | None = None):
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
        #: the price sheet of point 0 (its currency and date label the cost columns)
        self.prices = prices
        #: the experiment's folder when it was written (``out``): ``<out>/<scenario>/sweep-<UTC time>/``
        self.folder: Path | None = None
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
        """Per (point, VM and ``(site)``, metric): n, mean, std, p50, p95, max, ci95; see
        :func:`~drsim.experiments.statistics.aggregate`."""
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
        if self.prices is not None:
            meta["costs"] = {"currency": self.prices.currency, "price_date": str(self.prices.date),
                             "columns": list(COST_METRICS),
                             "basis": "per year, each run's costs (drsim.results.costs.costs_table) with the point's "
                                      "price sheet: the bundled sheet with its prices: section merged over it; "
                                      "downtime and lost data are the run's incidents scaled to a year"}
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
