"""The bandwidth planner's request: its checks (:class:`PlanError`, :func:`check_request`) and the tolerance that
ends the search (:func:`parse_tolerances`, :func:`tolerance_at`).

**Tolerance.** The search stops when its bracket around the answer is at most ``tolerance`` wide (bytes/s), or
``rel_tolerance`` times the bracket's upper end when that is wider: an absolute width suits small sites (0.5 Mbit/s
on a 25 Mbit/s office), a relative one large ones, where a bracket of 0.5 Mbit/s on 150 Mbit/s is finer than the
answer's own spread between experiment seeds and costs rounds of full replications.

Imports :mod:`drsim.scenario` and, of this stage, the sizing's list of replicating VMs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from drsim.experiments.sizing import _eligible
from drsim.scenario import units
from drsim.scenario.document import Scenario

__all__ = ["PlanError", "check_request", "parse_tolerances", "tolerance_at", "DEFAULT_TOLERANCE",
           "DEFAULT_REL_TOLERANCE", "MIN_TOLERANCE", "MAX_REL_TOLERANCE"]

DEFAULT_TOLERANCE = 0.5e6 / 8  #: 0.5 Mbit/s, in bytes/s
#: The default relative tolerance: the bracket may be 1 % of its upper end wide when that is more than the absolute
#: tolerance. [assumption: uplinks are bought in steps of several Mbit/s, so an answer at most 1 % above the
#: threshold changes no purchase; measured on the 300-VM site of benchmarks/bench_plan.py (benchmarks/README.md):
#: over four experiment seeds the 1 % answers are 0.4 to 0.9 % above the 0.5 Mbit/s ones, in 32 runs instead of
#: 43 to 63]
DEFAULT_REL_TOLERANCE = 0.01
#: The largest relative tolerance accepted (a wider bracket is no answer).
MAX_REL_TOLERANCE = 0.25
#: The finest tolerance, bytes/s: 1 kbit/s. [assumption: uplinks are bought in steps of Mbit/s, and a finer bracket
#: is below the run-to-run noise; at 1e-300 bit/s the bracket never closed]
MIN_TOLERANCE = 1e3 / 8


class PlanError(ValueError):
    """A planning request that cannot be answered (bad target, percentile or tolerance)."""


def _parse(value: Any, parser: Callable[[Any], float], what: str) -> float:
    try:
        return parser(value) if isinstance(value, str) else float(value)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{what}: {exc}") from None


def tolerance_at(tol: float, rel: float, hi: float) -> float:
    """The width (bytes/s) a bracket whose upper end is ``hi`` may have at the end of the search: the absolute
    tolerance ``tol`` (bytes/s), or ``rel`` times ``hi`` when that is wider (``tol`` while ``hi`` is unknown)."""
    return max(tol, rel * hi) if math.isfinite(hi) else tol


def parse_tolerances(tolerance: str | float, rel_tolerance: str | float) -> tuple[float, float]:
    """(absolute tolerance in bytes/s, relative tolerance as a fraction) from ``"0.5Mbit/s"`` or bytes/s and
    ``"1%"`` or 0.01; raises :class:`PlanError` naming the option for a value the search cannot use."""
    tol = _parse(tolerance, units.parse_rate, "--tolerance")
    if not (math.isfinite(tol) and tol > 0):
        raise PlanError(f"--tolerance: expected a positive rate like '0.5Mbit/s', got {tolerance!r}")
    if tol < MIN_TOLERANCE:
        raise PlanError(f"--tolerance: at least 1 kbit/s (a finer answer is below the run-to-run noise), got "
                        f"{tolerance!r}")
    rel = _parse(rel_tolerance, units.parse_fraction, "--rel-tolerance")
    if not 0 <= rel <= MAX_REL_TOLERANCE:
        raise PlanError(f"--rel-tolerance: a share of the answer from 0 to {MAX_REL_TOLERANCE:.0%} (e.g. 1%), got "
                        f"{rel_tolerance!r}")
    return tol, rel


def check_request(scenario: Scenario, rpo: str | float | None, percentile: float, tolerance: str | float,
                  rel_tolerance: str | float, replications: int, criterion: str, window: str,
                  method: str) -> tuple[float, float, float, float]:
    """(RPO target s, percentile in percent, tolerance bytes/s, relative tolerance) of a request to
    :func:`~drsim.experiments.planner.plan`, or :class:`PlanError` naming the option that cannot be answered
    (including a target that no bandwidth meets: R <= P*T, and a scenario where no VM replicates)."""
    target = _parse(scenario.objectives.rpo if rpo is None else rpo, units.parse_duration, "--rpo")
    if not (math.isfinite(target) and target > 0):
        raise PlanError(f"--rpo: the RPO target must be a positive duration, got {rpo!r}")
    try:
        pct = float(percentile)
    except (TypeError, ValueError):
        raise PlanError(f"--percentile: expected a number of percent like 95, got {percentile!r}") from None
    if not 1 < pct <= 100:
        raise PlanError(f"--percentile: give the percentile of time in percent, above 1 and at most 100 "
                        f"(e.g. 95, not 0.95), got {percentile!r}")
    tol, rel = parse_tolerances(tolerance, rel_tolerance)
    if int(replications) < 1:
        raise PlanError(f"--replications: at least 1, got {replications!r}")
    if criterion not in ("upper", "mean"):
        raise PlanError(f"criterion: 'upper' or 'mean', got {criterion!r}")
    if window not in ("steady", "protected"):
        raise PlanError(f"window: 'steady' or 'protected', got {window!r}")
    if method not in ("fast", "full"):
        raise PlanError(f"method: 'fast' or 'full', got {method!r}")
    q, interval = pct / 100, scenario.replication.interval
    if target <= q * interval:
        raise PlanError(f"--rpo: a {units.format_duration(target)} RPO cannot be met {pct:g} % of the time when "
                        f"replicating every {units.format_duration(interval)} at any bandwidth: the RPO is at least "
                        f"the time since the last cut, above {units.format_duration(q * interval)} for that share "
                        "of the time; shorten the interval or loosen the target")
    if not _eligible(scenario):
        raise PlanError(f"{scenario.name}: no VM replicates (every VM has protect: false or an unsupported host)")
    return target, pct, tol, rel
