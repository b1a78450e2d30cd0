"""Precision targets: the 95 % confidence half-width a summary metric's mean must reach at every sweep point
(:class:`Precision`, read by :func:`parse_precision`), whether the replications so far reach it, and how many
replications each point gets in the next round.

With ``precision`` (e.g. ``"rpo_p95_s=30s"``), replications run in rounds: after each round the 95 % confidence
half-width of each target metric is computed at every point from the replications of the rounds so far; a point
that is not precise enough gets more replications in the next round (about as many as the half-width says it
needs, at most twice as many as it has, at most ``max_replications``). The decision is taken on whole rounds,
never on the order runs finish in, and replication ``k`` has the same seed wherever it runs, so the outcome does
not depend on the executor.

Imports :mod:`drsim.scenario`, :mod:`drsim.model`, :mod:`drsim.results` and, of this stage, the errors and the
statistics.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from drsim.experiments.errors import ExperimentError
from drsim.experiments.statistics import STATS, aggregate
from drsim.model.site import SiteModel
from drsim.results.tables import SITE, Results
from drsim.scenario import parse_scenario, units
from drsim.scenario.document import Scenario

__all__ = ["Precision", "parse_precision", "summary_metrics", "metric_kind", "DEFAULT_PRECISION_METRIC"]

DEFAULT_PRECISION_METRIC = "rpo_p95_s"
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
        ratios = [h / lim if math.isfinite(h) and math.isfinite(lim) and lim > 0 else math.inf
                  for h, lim in zip(unmet["ci95"], unmet["limit"], strict=True)]
        growth = max(r * r for r in ratios)  # r * r is inf past the largest float; r ** 2 raises OverflowError
        want = n * growth
        out.append(min(cap, 2 * n, max(n + 1, math.ceil(want) if math.isfinite(want) else 2 * n)))
    return out
