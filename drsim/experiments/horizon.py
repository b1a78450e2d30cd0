"""Long horizons: one replication of years or decades, simulated three ways.

Replication runs on a time scale of seconds to hours and, while every VM keeps up with its churn, forgets its
past within hours (every delivered delta resets the RPO; churn and throttle repeat weekly). Failures and repairs
run on a scale of months to decades. The engines here use that:

``windows`` (:func:`simulate_windows`)
    The failure timeline of the whole horizon is drawn first (the same one a full run with this seed draws).
    Failures are clustered into *windows* ``[first failure - warm-up, quiet]``: each window is simulated in full by
    a :class:`~drsim.model.site.SiteModel` on a sub-scenario whose calendar start is shifted to the window's
    start (weekly churn and throttle stay aligned), starting in the steady protected state (each VM protected with
    a first recovery point, ticking with the phase it has in this replication, so that no initial replication runs
    in a window); the warm-up lets the state forget that start. A window ends at the first hour, after its last
    failure is over, at which it is *quiet*: every protectable VM runs on-premises, protected, with no transfer
    held by a down agent and no resynchronisation pending, no incident is open and the link is up. The stretches
    between windows are quiet (VMs up and protected: no incident, no loss, no downtime) and are skipped. The
    initial replication at the horizon's start is simulated in full (with the failures that fall in it), and gives
    each VM's tick phase. A window that is not quiet within ``max_tail`` after its last failure is continued in
    full to the end of the horizon (said in the replication's notes).
``slow`` (:func:`simulate_slow`)
    The slow time scale alone: a model without delta cycles (``replicate=False``) over the whole horizon; events
    only at failures, repairs and operations. Downtime, RTO and failovers are exact; data loss is not simulated
    (the estimators supply it from the steady state, see :mod:`drsim.experiments.estimators`).
``full`` (:func:`simulate_full`)
    The whole horizon in full, keeping only the ``states`` rows (bounded memory apart from the write curves).

Each returns an :class:`~drsim.experiments.annual.AnnualRecord`. Scripted failures, maintenance and drills are
one-off events of the month a scenario describes: :func:`risk_scenario` leaves them out.

Imports :mod:`drsim.model` and :mod:`drsim.scenario`, and :mod:`drsim.experiments.annual`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from drsim.experiments.annual import YEAR, AnnualRecord, annual_record, down_intervals
from drsim.model.codes import H_CRITICAL, ONPREM, S_PROTECTED
from drsim.model.failures import FailureEvent, failure_timeline
from drsim.model.site import SiteModel
from drsim.model.streams import Streams
from drsim.scenario.document import Scenario
from drsim.scenario.units import DAY, HOUR

__all__ = ["HorizonPlan", "risk_scenario", "simulate_windows", "simulate_slow", "simulate_full", "simulate_horizon",
           "window_seed", "quiet", "ENGINES"]

ENGINES = ("windows", "slow", "full")
MONDAY = datetime(2024, 1, 1)  # t = 0 of a scenario without a calendar start is a Monday 00:00
_WINDOW_KEY = 0x57494E  # "WIN": spawn key of the windows' seeds


@dataclass(frozen=True)
class HorizonPlan:
    """How a replication is simulated (seconds): ``warmup`` before a window's first failure; a window is checked
    for quiet every ``step`` from ``settle`` after its last failure is over, for at most ``max_tail``; the slow
    engine follows the throttle until ``throttle_until`` (the initial replication is over by then)."""

    warmup: float = 6 * HOUR
    settle: float = HOUR
    step: float = HOUR
    max_tail: float = 30 * DAY
    throttle_until: float = 60 * DAY


def risk_scenario(scenario: Scenario, years: int) -> Scenario:
    """``scenario`` over ``years`` years with its stochastic failures only (scripted failures, maintenance and
    drills are left out)."""
    return scenario.model_copy(update={
        "duration": years * YEAR, "failures": [f for f in scenario.failures if f.every is not None],
        "maintenance": [], "drills": [], "experiment": None})


def window_seed(seed: int, k: int) -> int:
    """The run seed of window ``k`` of the replication with run seed ``seed``."""
    seq = np.random.SeedSequence(seed, spawn_key=(_WINDOW_KEY, k))
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def quiet(model: SiteModel) -> bool:
    """The state a skipped stretch assumes: every protectable VM runs on-premises and is protected, no transfer
    is held by a down agent, no resynchronisation is pending, no incident is open, the link is up."""
    rec = model.recovery
    if rec.open or rec.link_faults or rec.site_faults:
        return False
    return all(r.service == ONPREM and r.rep_state == S_PROTECTED and not r.stalled and r.health != H_CRITICAL
               for r in model.replicas if r.eligible)


def _sub_scenario(risk: Scenario, t0: float, length: float) -> Scenario:
    start = (risk.start or MONDAY) + timedelta(seconds=t0)
    return risk.model_copy(update={"start": start, "duration": length})


def _end(ev: FailureEvent) -> float:
    return ev.start + ev.repair + ev.detection


class _Window:
    """One simulated window: its model, start (s on the horizon) and the failures it holds."""

    def __init__(self, risk: Scenario, seed: int, t0: float, events: list[FailureEvent], length: float,
                 phases: list[float] | None):
        self.t0 = t0
        self.events = events
        shifted = [dataclasses.replace(ev, start=ev.start - t0) for ev in events]
        self.model = SiteModel(_sub_scenario(risk, t0, length), seed, keep=("states",), protected_from=phases,
                               timeline=shifted)

    def run_until_quiet(self, plan: HorizonPlan, initial: bool) -> float:
        """Run until quiet after the last failure (and, for the initial window, protection); the quiet time on
        the horizon, or NaN if not quiet by the end of the window."""
        m = self.model
        last = max((_end(ev) - self.t0 for ev in self.events), default=0.0)
        t = last + plan.settle
        if initial:
            t = max(t, plan.step)
        while t <= m.horizon:
            m.advance(t)
            if quiet(m) and (not initial or all(r.protected_at == r.protected_at for r in m.replicas if r.eligible)):
                return self.t0 + t
            t += plan.step
        return math.nan

    def finish(self) -> None:
        """The window reaches the horizon's end: close its open intervals and incidents there."""
        self.model.run()

    def contents(self) -> tuple[list, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        inc = [(i, self.t0) for i in self.model.recovery.incidents]
        return inc, down_intervals(self.model.recorder["states"].arrays(), self.t0)


def simulate_windows(risk: Scenario, seed: int, plan: HorizonPlan) -> AnnualRecord:
    """One replication of ``risk`` by windows around its failures (see the module docstring)."""
    horizon = risk.duration
    years = round(horizon / YEAR)
    timeline = failure_timeline(risk, Streams(seed))
    incidents: list = []
    downs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    notes: list[str] = []
    interval = risk.replication.interval
    i, k, t0, phases = 0, 0, 0.0, None
    while True:
        initial = phases is None
        if not initial:
            if i >= len(timeline):
                break
            t0 = max(timeline[i].start - plan.warmup, 0.0)
        # failures of this window: those that start before its expected end plus a warm-up
        j = i
        expected = t0 + (plan.warmup if not initial else 0.0)
        while True:
            while j < len(timeline) and timeline[j].start < expected + plan.warmup:
                expected = max(expected, _end(timeline[j]) + plan.settle)
                j += 1
            length = min(max(expected - t0, 0.0) + plan.max_tail, horizon - t0)
            rel = None if initial else [((p - t0) % interval) if p == p else math.nan for p in phases]
            w = _Window(risk, window_seed(seed, k), t0, timeline[i:j], length, rel)
            q = w.run_until_quiet(plan, initial)
            if q != q:  # not quiet within max_tail: the rest of the horizon in full
                if length < horizon - t0:
                    notes.append(f"replication did not return to its steady state within {plan.max_tail / DAY:g} "
                                 f"days after the failures of year {int(t0 // YEAR) + 1}: simulated in full from "
                                 "there to the end of the horizon")
                    j = len(timeline)
                    w = _Window(risk, window_seed(seed, k), t0, timeline[i:j], horizon - t0, rel)
                w.finish()
                break
            if j < len(timeline) and timeline[j].start < q + plan.warmup:
                expected = q  # the next failure's warm-up starts before this window is quiet: one window
                continue
            break
        inc, down = w.contents()
        incidents += inc
        downs.append(down)
        if initial:
            phases = [r.tick_origin for r in w.model.replicas]
        if q != q:
            break
        i, k = j, k + 1
    down = tuple(np.concatenate(parts) for parts in zip(*downs, strict=True))
    rec = annual_record(years, [vm.name for _, vm in risk.vms()], incidents, down, risk.objectives.rto, False)
    rec.notes += notes
    return rec


def simulate_slow(risk: Scenario, seed: int, plan: HorizonPlan) -> AnnualRecord:
    """One replication of ``risk`` on the slow time scale alone (no delta cycles: see the module docstring)."""
    m = SiteModel(risk, seed, keep=("states",), replicate=False, throttle_until=plan.throttle_until).run()
    return annual_record(round(risk.duration / YEAR), m.vm_names, [(i, 0.0) for i in m.recovery.incidents],
                         down_intervals(m.recorder["states"].arrays()), risk.objectives.rto, True)


def simulate_full(risk: Scenario, seed: int, plan: HorizonPlan | None = None) -> AnnualRecord:
    """One replication of ``risk`` simulated in full over the whole horizon (``states`` rows kept only)."""
    m = SiteModel(risk, seed, keep=("states",)).run()
    return annual_record(round(risk.duration / YEAR), m.vm_names, [(i, 0.0) for i in m.recovery.incidents],
                         down_intervals(m.recorder["states"].arrays()), risk.objectives.rto, False)


def simulate_horizon(engine: str, risk: Scenario, seed: int, plan: HorizonPlan) -> AnnualRecord:
    """One replication with the engine named ``engine`` (one of :data:`ENGINES`)."""
    return {"windows": simulate_windows, "slow": simulate_slow, "full": simulate_full}[engine](risk, seed, plan)
