"""The planner's candidate evaluations: runs at candidate bandwidths on the pool, topped up replication by
replication (common random numbers), with progress and an estimate of the time left.

:class:`Candidates` keeps, per simulated bandwidth, the runs of replications ``0..n-1`` (replication ``k`` always
with the run seed of ``k``: comparisons between bandwidths are paired). :meth:`Candidates.evaluate` takes a
request ``{bandwidth: replications wanted}`` and runs only what is missing, every (bandwidth, chunk of
replications) task in parallel on the executor. The fast planner asks for few replications far from the answer
and for all of them near it (:mod:`drsim.experiments.planner`). A bandwidth with fewer replications than
requested is judged by the criterion *predicted* for all of them (the mean, plus the confidence half-width that
``--replications`` replications with the spread at hand would have, or paired with the nearest bandwidth that has
them all: :class:`~drsim.experiments.bandwidth_runs._Point`; one replication by its value; it only steers the
search); with all of them, by the stated criterion.

:func:`fast_search` is the fast planner's choice of candidates for the site (below); :func:`bracket` reads a
bracket off the simulated bandwidths, for the fast and the full search.

**Fast search.** Every candidate narrows the site's bracket [lo, hi] (hi: the smallest simulated bandwidth that met,
lo: the largest below it that failed, or the lower bound, where the backlog grows without end) until it is a
tolerance wide (:func:`~drsim.experiments.plan_request.tolerance_at`: an absolute width, or a share of hi when that
is wider). While the bracket is wider than :data:`FAR_TOLERANCES` tolerances, a round runs two candidates at its
thirds with one replication each (on two workers, one run's time cuts the bracket to a third; one replication is
judged by its value alone: it only steers the search). Then each round runs one candidate with every replication,
where the criterion crosses the target, interpolated between the bracket's simulated ends linearly in 1 / (stat -
P*T), P*T being the floor of the RPO percentile (the time since the last cut), moved a quarter tolerance to the side
that closes the bracket: for a lone VM with constant churn c, stat - P*T = c*T / B (the closed form), so that
inverse is linear in the bandwidth; on a shared link near saturation it is not, and a step that did not halve the
bracket is followed by a bisection step. (A single replication can be a lucky one, better than the criterion over
all of them: then the bracket's upper end keeps failing once topped up, and the search climbs about a tolerance a
round near the answer; the office scenario does, 84 runs.) The candidate is moved to within one tolerance of the
nearer end that has every replication (:func:`_near_candidate`), so the bracket closes whenever the interpolation
falls on the right side. Near the answer the RPO percentile has a heavy tail over replications (a congestion episode
in one replication of ten), so predictions from a few replications there mislead; every candidate near it gets them
all. While lo is the lower bound (not simulated) the step is a bisection. When no bandwidth has met, the largest is
extrapolated along the closed form from the lower bound (between 1.25 and 2 times it), with ``few`` replications, as
the first candidates (the current and the formula bandwidths) have. Once the bracket is a tolerance wide an end with
fewer replications is topped up to every one (the same seeds), the upper end first (if it fails with every
replication, it is the new lower end, already judged in full), and judged by the criterion; if that moves the
bracket, the search goes on. It ends when a bracket at most a tolerance wide has both simulated ends judged with
every replication: then, as in the full search, hi met and lo failed by the criterion.

**Time left.** Each round reports its number of runs and, once a round has been timed, the seconds left: the
runs of the round and those the search expects after it (far from the answer, the rounds of one replication still
needed to reach :data:`FAR_TOLERANCES` tolerances and two candidates with every replication; near it, one more
candidate or top-up; the full search, the halvings its widest bracket still needs at the round's size), times the
measured wall time per run over every finished round.

Imports, of this stage, the executors, the request's tolerance and the runs at one bandwidth.
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
from drsim.experiments.plan_request import tolerance_at

__all__ = ["Candidates", "bracket", "fast_search", "FAR_TOLERANCES"]

#: a bracket wider than this many tolerances is far from the answer: its candidates get one replication each
#: (assumption; on the 300-VM site of benchmarks/bench_plan.py the one-replication rounds left [145.1, 150.1]
#: Mbit/s around an answer of 146.3; a wrong step costs rounds later, never the answer, judged with every
#: replication)
FAR_TOLERANCES = 4


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

    def count(self, upload: float) -> int:
        """Replications done at ``upload`` (0 when never simulated)."""
        return len(self._reps.get(float(upload), {}))

    def seconds_per_run(self) -> float:
        """Measured wall seconds per run over the rounds so far (NaN before the first)."""
        return self._run_time / self.runs if self.runs else math.nan

    def evaluate(self, wanted: dict[float, int], runs_later: float = math.nan) -> None:
        """Run the replications missing for ``{upload bytes/s: replications}``, all in parallel; ``runs_later``:
        the runs the search expects after this round (for the time left; NaN: not estimated)."""
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
                later = runs_later * per if math.isfinite(runs_later) else 0.0
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
        self._judge()

    def _judge(self) -> None:
        """(Re)judge every simulated bandwidth: with every replication by the stated criterion; with fewer (far
        from the answer), by the criterion predicted for every replication, paired with the nearest bandwidth
        that has them all when there is one (_Point's ``reference``). One replication is judged by its value: it
        has no spread to pair, and near the answer the spread has a heavy tail (one replication in ten meets a
        congestion episode), so a paired difference from one replication says little there."""
        n = len(self.seeds)
        full = [b for b, reps in self._reps.items() if len(reps) >= n]
        for b, reps in self._reps.items():
            data = {key: np.vstack([reps[k][key] for k in range(len(reps))]) for key in reps[0]}
            ref = None
            if 2 <= len(reps) < n and full:
                near = min(full, key=lambda f: abs(math.log(f / b)))
                ref = np.vstack([self._reps[near][k]["quantile"] for k in range(n)])
            self.points[b] = _Point(b, data, self.target, self.criterion, n_target=n, reference=ref)


def bracket(points: dict[float, _Point], met: Callable[[_Point], bool], lower: float) -> tuple[float, float]:
    """(lo, hi) from the simulated points: hi is the smallest bandwidth at or above the lower bound that met (inf
    if none), lo the largest below it that failed, or the lower bound when that is higher. A bandwidth below the
    lower bound is no answer even when a finite run meets the target there: the backlog grows without end."""
    ups = sorted(points)
    good = [b for b in ups if b >= lower and met(points[b])]
    hi = good[0] if good else math.inf
    bad = [b for b in ups if b < hi and not met(points[b])]
    return max(bad[-1], lower) if bad else lower, hi


def _site_met(p: _Point) -> bool:
    return p.site_met


def _excess(p: _Point, floor: float) -> float:
    """The worst VM's judged statistic above the floor P*T (s; inf when a VM is never protected)."""
    return max(float(np.max(p.stat)) - floor, 1e-9)


def _estimate(points: dict[float, _Point], lo: float, hi: float, target: float, floor: float) -> float:
    """Where the criterion crosses the target in (lo, hi), interpolated linearly in 1 / (stat - P*T) between the
    bracket's simulated ends (NaN when lo is the lower bound, not simulated, or the ends are not in order)."""
    if lo not in points:
        return math.nan
    g_lo, g_hi, goal = 1 / _excess(points[lo], floor), 1 / _excess(points[hi], floor), 1 / (target - floor)
    if not g_lo < goal <= g_hi:
        return math.nan
    return lo + (hi - lo) * (goal - g_lo) / (g_hi - g_lo)


def _near_candidate(lo: float, hi: float, guess: float, tol: Callable[[float], float], full: list[float]) -> float:
    """The candidate of a round near the answer (bytes/s), from ``guess`` (the interpolated crossing, or the
    bracket's middle on a bisection step): a quarter
    tolerance to the side that closes the bracket (above it from a lower end judged with every replication, where
    meeting closes it; below it from such an upper end, where failing does), and at most one tolerance from that
    end (``full``: the bracket's ends judged with every replication; the nearer to the guess counts; ``tol(b)``:
    the tolerance of a bracket whose upper end is b); kept a quarter tolerance (or a quarter of the bracket)
    inside."""
    quarter = tol(hi) / 4
    end = min(full, key=lambda b: abs(guess - b)) if full else lo
    if end == hi:
        guess = max(guess - quarter, end - tol(end))
    else:  # above lo, the tolerance at lo: at most the one at the candidate, which would be the upper end
        guess = min(guess + quarter, end + tol(end)) if full else guess + quarter
    margin = min(quarter, (hi - lo) / 4)
    return min(max(guess, lo + margin), hi - margin)


def fast_search(cands: Candidates, lower: float, abs_tol: float, rel_tol: float, few: int, floor: float, cap: float,
                max_rounds: int) -> None:
    """Narrow the site's bracket on ``cands`` (its first candidates already evaluated) until it is at most a
    tolerance (:func:`~drsim.experiments.plan_request.tolerance_at`: ``abs_tol`` bytes/s, or ``rel_tol`` times
    its upper end) wide with both simulated ends judged with every replication (see the module docstring).
    ``lower``: the lower bound (bytes/s); ``few``: replications far from the answer; ``floor``: P*T (s);
    ``cap``: the largest bandwidth to try when none meets; ``max_rounds``: a guard."""
    points = cands.points
    n_rep = len(cands.seeds)
    target = cands.target
    last_width = math.inf
    rounds = -1
    while rounds < cands.rounds < max_rounds:  # a guard: a step that ran nothing new ends the search too
        rounds = cands.rounds
        lo, hi = bracket(points, _site_met, lower)
        if math.isinf(hi):  # nothing met yet: extrapolate from the largest bandwidth tried
            top = max(points)
            if top >= cap:
                return
            excess = _excess(points[top], floor)
            guess = lower + (top - lower) * excess / (target - floor) if math.isfinite(excess) else 2 * top
            cands.evaluate({min(max(guess, 1.25 * top), 2 * top): few},
                           runs_later=few * math.log2(max(cap / top, 2.0)) + 2 * n_rep)
            continue
        width = hi - lo
        tol = tolerance_at(abs_tol, rel_tol, hi)
        ends = [b for b in (hi, lo) if b in points]
        short = [b for b in ends if cands.count(b) < n_rep]
        if width <= tol * (1 + 1e-9):
            if not short:
                return
            # the upper end first: a prediction that met may fail with every replication, and then this end is
            # the new lower end, already judged in full (the lower end's top-up would have been wasted)
            cands.evaluate({short[0]: n_rep}, runs_later=sum(n_rep - cands.count(b) for b in short[1:]))
            continue
        if width > FAR_TOLERANCES * tol:  # far from the answer: two candidates of one replication, a third apart
            cands.evaluate({lo + width / 3: 1, lo + 2 * width / 3: 1},
                           runs_later=2 * math.log(max(width / (FAR_TOLERANCES * tol), 1.0), 3) + 2 * n_rep)
            continue
        guess = _estimate(points, lo, hi, target, floor)
        if not math.isfinite(guess) or width > last_width / 2:
            guess = (lo + hi) / 2  # a bisection step (after one that did not halve the bracket)
        last_width = width
        full = [b for b in (lo, hi) if b in points and cands.count(b) >= n_rep]
        # moved to within a tolerance of a fully replicated end, a bisection step too: then one outcome closes it
        candidate = _near_candidate(lo, hi, guess, lambda b: tolerance_at(abs_tol, rel_tol, b), full)
        cands.evaluate({candidate: n_rep}, runs_later=n_rep)  # most often one more: a top-up or a closing round
