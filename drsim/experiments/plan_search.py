"""The planner's candidate evaluations: runs at candidate bandwidths on the pool, topped up replication by
replication (common random numbers), with progress and an estimate of the time left.

:class:`Candidates` keeps, per simulated bandwidth, the runs of replications ``0..n-1`` (replication ``k`` always
with the run seed of ``k``: comparisons between bandwidths are paired). :meth:`Candidates.evaluate` takes a
request ``{bandwidth: replications wanted}`` and runs only what is missing, every (bandwidth, chunk of
replications) task in parallel on the executor. The fast planner asks for few replications far from the answer
and for all of them near it (:mod:`drsim.experiments.planner`). A bandwidth with fewer replications than
requested for the answer is judged by their mean (the direction of the search only); with all of them, by the
stated criterion.

**Time left.** Each round reports its number of runs and, once a round has been timed, the seconds left: the
runs still to do in the round times the measured wall time per run (over every finished round), and the rounds
the bisection still needs (log2 of the widest open bracket over the tolerance) at the last round's size.

Imports, of this stage, the executors and the runs at one bandwidth.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import numpy as np

from drsim.experiments.bandwidth_runs import _plan_runs, _Point
from drsim.experiments.executors import ExecutorFailed, executor_failure, wait_first

__all__ = ["Candidates"]


class Candidates:
    """The simulated bandwidths (bytes/s) of one planning request and their runs."""

    def __init__(self, pool: Executor, workers: int, scenario_at: Callable[[float], Any], seeds: list[int],
                 q: float, window: str, target: float, criterion: str, start_protected: bool,
                 progress: Callable[[str], None] | None = None, rate_text: Callable[[float], str] = str):
        self.pool, self.workers, self.scenario_at = pool, workers, scenario_at
        self.seeds, self.q, self.window, self.target, self.criterion = seeds, q, window, target, criterion
        self.start_protected = start_protected
        self.progress, self.rate_text = progress, rate_text
        self.points: dict[float, _Point] = {}
        self._reps: dict[float, dict[int, dict[str, np.ndarray]]] = {}
        self.runs = 0  #: runs done
        self.rounds = 0  #: rounds evaluated
        self._run_time = 0.0  # wall seconds over the rounds, for the estimate of the time left
        self._last_round_runs = 0

    def count(self, upload: float) -> int:
        """Replications done at ``upload`` (0 when never simulated)."""
        return len(self._reps.get(float(upload), {}))

    def seconds_per_run(self) -> float:
        """Measured wall seconds per run over the rounds so far (NaN before the first)."""
        return self._run_time / self.runs if self.runs else math.nan

    def evaluate(self, wanted: dict[float, int], rounds_left: float = math.nan) -> None:
        """Run the replications missing for ``{upload bytes/s: replications}``, all in parallel."""
        todo = {float(b): list(range(self.count(b), min(int(n), len(self.seeds))))
                for b, n in wanted.items()}
        todo = {b: ks for b, ks in sorted(todo.items()) if ks}
        n_runs = sum(len(ks) for ks in todo.values())
        if not n_runs:
            return
        self.rounds += 1
        if self.progress is not None:
            parts = [f"{self.rate_text(b)} x{len(ks)}" for b, ks in todo.items()]
            message = f"round {self.rounds}: simulating " + ", ".join(parts) + f" ({n_runs} runs)"
            per = self.seconds_per_run()
            if math.isfinite(per):
                now_s = per * n_runs
                later = rounds_left * per * max(self._last_round_runs, 1) if math.isfinite(rounds_left) else 0.0
                message += f"; about {now_s + later:.0f} s left"
            self.progress(message)
        t0 = time.perf_counter()
        chunk = max(1, math.ceil(n_runs / (2 * self.workers)))
        futures = []
        for b, ks in todo.items():
            sc = self.scenario_at(b)
            for start in range(0, len(ks), chunk):
                runs = [(k, self.seeds[k]) for k in ks[start:start + chunk]]
                futures.append((b, self.pool.submit(_plan_runs, sc, self.q, self.window, runs,
                                                    self.start_protected)))
        try:
            for b, fut in futures:
                wait_first([fut])  # wakes up now and then, so Ctrl-C is noticed
                for rep, data in fut.result():
                    self._reps.setdefault(b, {})[rep] = data
        except BaseException as exc:
            for _, fut in futures:
                fut.cancel()
            if isinstance(exc, Exception) and executor_failure(exc):
                raise ExecutorFailed(f"{type(exc).__name__}: {str(exc) or 'the executor stopped'}") from exc
            raise
        # wall time per run, as the pool delivers them (runs in parallel share the wall time)
        self._run_time += time.perf_counter() - t0
        self.runs += n_runs
        self._last_round_runs = n_runs
        for b in todo:
            reps = self._reps[b]
            data = {key: np.vstack([reps[k][key] for k in range(len(reps))]) for key in reps[0]}
            # judged by the stated criterion with every replication; by the mean while fewer (far from the answer)
            criterion = self.criterion if len(reps) >= len(self.seeds) else "mean"
            self.points[b] = _Point(b, data, self.target, criterion)
