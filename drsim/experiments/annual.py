"""What one replication of a long horizon contributes to the annual risk figures: per year and VM, in arrays.

Every engine of :mod:`drsim.experiments.horizon` (full simulation, windows around failures, the slow time scale
alone) ends a replication with its incidents and the intervals in which each VM's service was down; an
:class:`AnnualRecord` reduces them to per-year, per-VM arrays (``years x VMs``), small enough to send back from a
worker whatever the horizon. An incident belongs to the year of its failure; down time is split at year
boundaries (a year is 365 days).

Data loss is recorded two ways. *Plain*: the loss the simulation measured (``data_loss_s``), summed and its
maximum per year (an unrecoverable incident is a loss above any threshold: ``inf`` in the maximum, counted in
``unrecoverable``, left out of the sum). *Conditional*: for the slow time scale, where the replication state is not
simulated, an incident that fails over or restores from a recovery point is counted in ``point_used`` (its loss
is the RPO at the failure instant, whose distribution the estimators take from the steady state), and each
failure event's set of such VMs is kept for the site's figure (``events``: (year, VM indices)).

Imports :mod:`drsim.model` (incident fields, states) and :mod:`drsim.scenario` (units).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from drsim.model.codes import STATES
from drsim.model.recovery import Incident
from drsim.scenario.units import DAY

__all__ = ["AnnualRecord", "YEAR", "DOWN_CODES", "annual_record", "down_intervals", "add_downtime"]

YEAR = 365 * DAY  #: s: a year of the horizon (as in durations like '2y')
DOWN_CODES = frozenset(STATES.index(s) for s in ("down", "failing_over", "failing_back", "restoring"))
PLANNED = ("maintenance", "plan")


@dataclass
class AnnualRecord:
    """Per-year, per-VM figures of one replication (arrays of shape ``years x VMs``; times in seconds)."""

    incidents: np.ndarray  # unplanned incidents that took the service down (by failure year)
    rto_met: np.ndarray  # of those, restored within the RTO objective
    failovers: np.ndarray  # unplanned failovers started
    downtime: np.ndarray  # s the service was down in the year
    loss_sum: np.ndarray  # s: plain data loss, summed (finite losses)
    loss_max: np.ndarray  # s: plain data loss, largest in the year (-inf: none; inf: unrecoverable)
    site_loss_max: np.ndarray  # (years,): largest plain loss of any VM
    unrecoverable: np.ndarray  # incidents with no recovery point to restore (all data since... lost)
    point_used: np.ndarray  # incidents recovered from a recovery point whose loss the estimators supply
    events: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)  # (year, VMs) per failure event
    notes: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, years: int, n: int) -> AnnualRecord:
        z = np.zeros((years, n))
        return cls(z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), np.full((years, n), -np.inf),
                   np.full(years, -np.inf), z.copy(), z.copy())


def _year(t: float, years: int) -> int:
    return min(max(int(t // YEAR), 0), years - 1)


def add_downtime(rec: AnnualRecord, vm: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
    """Add down intervals ``[start, end)`` of VMs ``vm`` (codes), split at year boundaries."""
    years = rec.downtime.shape[0]
    for v, a, b in zip(vm.tolist(), start.tolist(), end.tolist(), strict=True):
        y = _year(a, years)
        while b > a:
            edge = (y + 1) * YEAR if y < years - 1 else math.inf
            cut = min(b, edge)
            rec.downtime[y, v] += cut - a
            a = cut
            y += 1


def annual_record(years: int, names: Sequence[str], incidents: Iterable[tuple[Incident, float]],
                  down: tuple[np.ndarray, np.ndarray, np.ndarray], rto: float, conditional: bool) -> AnnualRecord:
    """The record of one replication: ``incidents`` as (incident, shift in s to add to its times), ``down`` as the
    (VM codes, starts, ends) of the down intervals, ``rto`` the objective (s). ``conditional``: the replication
    state was not simulated (slow time scale): losses from recovery points go to ``point_used``."""
    rec = AnnualRecord.empty(years, len(names))
    index = {n: i for i, n in enumerate(names)}
    events: dict[int, list[int]] = {}
    event_year: dict[int, int] = {}
    for inc, shift in incidents:
        if inc.kind in PLANNED or inc.outcome.startswith("handled by"):
            continue  # a move, not a failure; or a corruption found while another incident was open
        v = index[inc.vm]
        y = _year(inc.failed_at + shift, years)
        rec.incidents[y, v] += 1
        if inc.rto_s <= rto:
            rec.rto_met[y, v] += 1
        if not math.isnan(inc.failover_started_at):
            rec.failovers[y, v] += 1
        if inc.outcome.startswith("unrecoverable"):
            rec.unrecoverable[y, v] += 1
            rec.loss_max[y, v] = np.inf
            rec.site_loss_max[y] = np.inf
        elif conditional and not math.isnan(inc.recovery_point_captured_at) and inc.kind != "corruption":
            rec.point_used[y, v] += 1
            key = id(inc.event)
            events.setdefault(key, []).append(v)
            event_year[key] = y
        elif not math.isnan(inc.data_loss_s):
            loss = inc.data_loss_s
            rec.loss_sum[y, v] += loss
            rec.loss_max[y, v] = max(rec.loss_max[y, v], loss)
            rec.site_loss_max[y] = max(rec.site_loss_max[y], loss)
    rec.events = [(event_year[k], tuple(sorted(vs))) for k, vs in events.items()]
    add_downtime(rec, *down)
    return rec


def down_intervals(states: dict[str, np.ndarray], shift: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(VM codes, starts, ends) of the rows of a ``states`` table (as arrays) in which the service was down,
    times shifted by ``shift`` seconds."""
    down = np.isin(states["state"], list(DOWN_CODES))
    return (states["vm"][down].astype(np.int64), states["start"][down] + shift, states["end"][down] + shift)
