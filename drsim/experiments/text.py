"""An experiment in plain text, as ``drsim sweep`` prints it: the aggregate per point (:func:`aggregate_text`)
and how the precision targets went (:func:`precision_text`); and a scenario's experiment section in brief, as
``drsim validate`` prints it (:func:`experiment_brief`).

Imports :mod:`drsim.scenario`, :mod:`drsim.results` and, of this stage, the precision targets' units, the
settings and the outcome.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from drsim.experiments.outcome import Experiment
from drsim.experiments.precision import _format_metric
from drsim.experiments.settings import experiment_settings
from drsim.results.findings import count, text_table
from drsim.results.tables import SITE
from drsim.scenario.document import Scenario
from drsim.scenario.fields import Range
from drsim.scenario.units import format_duration

__all__ = ["aggregate_text", "precision_text", "experiment_brief"]


def _value_text(exp: Experiment, path: str, value: Any) -> str:
    """A swept value for people: a hypercube range's value in its units, anything else as in the tables."""
    dim = exp.lhs.get(path)
    return dim.format(value) if isinstance(dim, Range) and not isinstance(value, str) else str(value)


def aggregate_text(exp: Experiment, vm: str = SITE, max_rows: int = 50) -> str:
    """A compact table of ``vm``'s (default: the site's) aggregate, one line per sweep point (the first
    ``max_rows``): means, with the 95 % confidence half-width of the RPO p95, the downtime and the total cost
    per year (running costs and the runs' incidents scaled to a year, in the price sheet's currency). "protected
    after" counts from the start of protection (``replication.initial.start``) of each point."""
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

    def money(point: int, metric: str) -> str:
        m, half = stats.get((point, metric), (math.nan, math.nan))
        if math.isnan(m):
            return "-"
        return f"{m:,.0f}" + ("" if math.isnan(half) else f" ± {half:,.0f}")

    target = format_duration(exp.scenario.objectives.rpo)
    currency = exp.prices.currency if getattr(exp, "prices", None) is not None else ""
    header = ("point", *exp.columns, "runs", "protected after", "RPO p95", f"> {target}", "availability",
              "downtime", "incidents", f"cost/year {currency}".rstrip())
    rows = []
    for pt in exp.points.head(max_rows).itertuples(index=False):
        p = int(pt[0])
        incidents = mean(p, "incidents")
        rows.append((str(p), *(_value_text(exp, c, v) for c, v in zip(exp.columns, pt[1:], strict=True)),
                     str(int(runs.get(p, 0))),
                     format_duration(mean(p, "protected_at") - exp.scenario_for(p).initial_start_offset()),
                     dur(p, "rpo_p95_s", ci=True), share(mean(p, "rpo_over_target")),
                     share(mean(p, "availability"), 3), dur(p, "downtime_s", ci=True),
                     "-" if math.isnan(incidents) else f"{incidents:.2f}", money(p, "cost_total_per_year")))
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


def experiment_brief(scenario: Scenario) -> str:
    """``; experiment: 8 points x 10 replications`` for a scenario with an experiment section, else ``""``."""
    if scenario.experiment is None:
        return ""
    settings = experiment_settings(scenario)
    points = math.prod(len(v) for v in settings.grid.values()) * (settings.samples or 1)
    reps = (f"{settings.replications} to {settings.max_replications} replications (precision)" if settings.precision
            else count(settings.replications, "replication"))
    return f"; experiment: {count(points, 'point')} x {reps}"
