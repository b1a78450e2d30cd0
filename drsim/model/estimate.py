"""How large one run of a scenario is, estimated before it starts (:func:`estimate_run`), and the limits past
which drsim asks before running it (:func:`size_problem`, :data:`MAX_EVENTS`, :data:`MAX_BYTES`).

A scenario can be valid and still ask for more than any machine gives: drills every millisecond for a month
(2.6e9 test failovers), a churn trace sampled every microsecond replayed for a month (2e10 breakpoints, some
terabytes), a replication interval of 30 s over 9,000 years. The estimate counts, from the scenario alone and
without simulating, what the model will do:

* **replication**: one timer event per replication interval once a VM is protected (the :class:`Ticker`
  ticks every VM in one event), and per replicating VM and interval one delta (its ``transfers`` row, two
  ``link`` rows, and the rows of the cycle, recovery point and RPO tables built from them);
* **churn curves**: breakpoints of every VM's write curve (one per hour with a profile, a weekend factor or a
  random variation; a trace's rows times its repeats), held in memory for the whole run;
* **failures**: per stochastic failure and target, the expected count over the run (duration / mean of time
  between failures + repair + detection), times the VMs each one hits, each with its incident, operations and
  states; link failures also retry each replicating VM's transfer every 30 minutes while down;
* **drills and maintenance**: each test failover or planned failover of each VM;
* **throttle**: each change of the link's capacity.

The per-item figures (:data:`EVENTS_PER_CYCLE` and the like) are measured on the bundled scenarios
(``benchmarks/run_estimate.py`` prints estimate against measurement); the estimate is meant to be within a few
times of the truth, on the high side, which is what a guard against runs a thousand times too large needs.

Imports only :mod:`drsim.scenario` (the scenario, its churn traces and units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drsim.scenario import units
from drsim.scenario.churn import load_trace
from drsim.scenario.document import Scenario
from drsim.scenario.problems import Problem, location_text
from drsim.scenario.site import VM, protectable

__all__ = ["RunEstimate", "EstimatePart", "estimate_run", "size_problem", "size_problems", "MAX_EVENTS",
           "MAX_BYTES", "EVENTS_PER_SECOND", "TOO_LARGE"]

#: Most events a run may take without being asked for. [basis: the simulation runs about 65,000 events/s on one
#: core of a shared 2-core machine (benchmarks/run_estimate.py), so about 15 minutes]
MAX_EVENTS = 50_000_000
#: Most memory a run may take without being asked for, bytes. [assumption: what a planner's laptop has free]
MAX_BYTES = 4 * 2**30
#: How the message of a run past the limits begins.
TOO_LARGE = "too large to run without asking"
#: Events the simulation runs per second on one core (measured with benchmarks/run_estimate.py on a shared
#: 2-core machine; a time hint only).
EVENTS_PER_SECOND = 65_000

# measured per item (benchmarks/run_estimate.py), rounded up
EVENTS_PER_CYCLE = 1.0  # per replicating VM and interval: its tick (VMs protected at different times tick apart)
ROWS_PER_CYCLE = 7.0  # transfers, 2 link, cycles, recovery points, 2 RPO breakpoints
BYTES_PER_CYCLE = 550.0  # those rows as recorded, then as DataFrames
BASE_BYTES = 2**20  # a run's model and tables however short it is
BYTES_PER_BREAKPOINT = 200.0  # a write curve's breakpoint: three Python lists, and numpy arrays while built
EVENTS_PER_INCIDENT = 10.0  # a failure or a drill of one VM: its steps, state changes, policy decisions
ROWS_PER_INCIDENT = 3.0  # incident, operations, states, health
BYTES_PER_INCIDENT = 5_000.0  # its process, incident and rows
BYTES_PER_FAILURE = 200.0  # a failure in the timeline drawn before the run
BYTES_PER_DRILL_TIME = 40.0  # the list of a periodic drill's times
RETRY_EVERY = 1800.0  # s: the agent retries a failed transfer every 30 min (drsim.model.recovery)


@dataclass(frozen=True)
class EstimatePart:
    """What one source adds to a run: where it is in the scenario (``loc``: ``("drills", 0)``), what it is in
    words, and its events, rows and bytes."""

    loc: tuple[str | int, ...]
    what: str
    events: float
    rows: float
    bytes: float

    @property
    def place(self) -> str:
        """``drills[0]``."""
        return location_text(self.loc)


@dataclass(frozen=True)
class RunEstimate:
    """The estimated size of one run: SimPy ``events``, table ``rows`` and peak memory ``bytes`` of the run's own
    data (the Python process and its libraries come on top), with the ``parts`` that make them up."""

    events: float
    rows: float
    bytes: float
    parts: tuple[EstimatePart, ...]

    @property
    def seconds(self) -> float:
        """A rough run time on one core, s (:data:`EVENTS_PER_SECOND`)."""
        return self.events / EVENTS_PER_SECOND

    def largest(self, max_events: float | None = None, max_bytes: float | None = None) -> EstimatePart | None:
        """The part that weighs most against the limits (by default :data:`MAX_EVENTS` and :data:`MAX_BYTES`)."""
        e, b = max_events or MAX_EVENTS, max_bytes or MAX_BYTES
        return max(self.parts, key=lambda p: max(p.events / e, p.bytes / b), default=None)


def _count(x: float) -> str:
    return f"{x:,.0f}" if x < 1e10 else f"{x:.2g}"


def _curve(s: Scenario, vm: VM) -> tuple[float, str]:
    """(breakpoints, description) of a VM's write curve over the run."""
    c = vm.churn
    if c.trace is not None:
        times, _, period = load_trace(s.trace_path(c.trace), c.trace)
        repeats = max(1.0, math.ceil(s.duration / period)) if c.trace.repeat else 1.0
        n = len(times) * repeats + 2
        return n, f"its trace of {_count(len(times))} rows every {units.format_duration(period)}, replayed " \
                  f"{_count(repeats)} times"
    if c.profile is None and c.weekend == 1.0 and c.variation == 0.0:
        return 2.0, "a constant rate"
    return s.duration / units.HOUR + 3, "hourly rates"


def _failure_parts(s: Scenario, eligible: int, vms_on: dict[str, int]) -> list[EstimatePart]:
    parts = []
    n_vms = len(s.vms())
    for i, f in enumerate(s.failures):
        names = f.targets or [""]
        if names == ["all"]:
            names = list(vms_on) if f.kind == "host" else [v.name for _, v in s.vms()]
        if f.every is None:
            count = 1.0
        else:
            # an alternating renewal process per target: a failure, then its repair (corruption: its detection)
            detection = f.detection_dist.mean if f.kind == "corruption" else 0.0
            repair = 0.0 if f.kind == "corruption" else f.repair_dist.mean
            count = s.duration / max(f.every.mean + repair + detection, 1e-6) + 1
        hit = {"vm": 1.0, "corruption": 1.0, "site": float(n_vms), "link": float(eligible)}.get(f.kind)
        events = rows = 0.0
        for name in names:
            per = hit if hit is not None else float(vms_on.get(name, 0))
            events += count * max(per, 1.0) * EVENTS_PER_INCIDENT
            rows += count * per * ROWS_PER_INCIDENT
        if f.kind == "link":  # each replicating VM's transfer retries every 30 min while the link is down
            events += count * eligible * f.repair_dist.mean / RETRY_EVERY
        total = count * len(names)
        parts.append(EstimatePart(("failures", i), f"about {_count(total)} {f.kind} failures", events, rows,
                                  rows / ROWS_PER_INCIDENT * BYTES_PER_INCIDENT + total * BYTES_PER_FAILURE))
    return parts


def estimate_run(scenario: Scenario) -> RunEstimate:
    """Estimate one run of ``scenario`` from the scenario alone (nothing is simulated; a trace file is read, as
    validation does): its events, table rows and peak memory in bytes, by source. See the module docstring."""
    s = scenario
    parts: list[EstimatePart] = []
    replicating = [v for h, v in s.vms() if protectable(h, v)]
    n = len(replicating)
    vms_on = {h.name: len(h.vms) for h in s.site.hosts}
    if n:
        ticks = s.duration / s.replication.interval
        parts.append(EstimatePart(
            ("replication",), f"{_count(ticks)} cycles of {n} VM{'s' if n != 1 else ''} (every "
            f"{units.format_duration(s.replication.interval)} for {units.format_duration(s.duration)})",
            ticks * n * EVENTS_PER_CYCLE, ticks * n * ROWS_PER_CYCLE, ticks * n * BYTES_PER_CYCLE))
    for hi, host in enumerate(s.site.hosts):
        for vi, vm in enumerate(host.vms):
            breakpoints, what = _curve(s, vm)
            parts.append(EstimatePart(("site", "hosts", hi, "vms", vi, "churn"), f"a write curve of "
                                      f"{_count(breakpoints)} breakpoints ({what})", 0.0, 0.0,
                                      breakpoints * BYTES_PER_BREAKPOINT))
    parts.extend(_failure_parts(s, n, vms_on))
    for i, d in enumerate(s.drills):
        times = 1.0 if d.every is None else s.duration / d.every
        names = [d.vms] if isinstance(d.vms, str) else d.vms
        per = n if names == ["all"] else len(names)
        parts.append(EstimatePart(("drills", i), f"{_count(times * per)} test failovers", times * per *
                                  EVENTS_PER_INCIDENT, times * per * ROWS_PER_INCIDENT,
                                  times * (per * BYTES_PER_INCIDENT + BYTES_PER_DRILL_TIME)))
    for i, m in enumerate(s.maintenance):
        per = vms_on.get(m.host, 0)
        parts.append(EstimatePart(("maintenance", i), f"{per} planned failovers", per * EVENTS_PER_INCIDENT,
                                  per * ROWS_PER_INCIDENT, per * BYTES_PER_INCIDENT))
    if s.link.throttle is not None:
        changes = 2 * len(s.link.throttle.work_days) * s.duration / units.WEEK
        parts.append(EstimatePart(("link", "throttle"), f"{_count(changes)} changes of the upload limit", changes,
                                  changes, changes * BYTES_PER_CYCLE))
    parts.sort(key=lambda p: (-max(p.events / MAX_EVENTS, p.bytes / MAX_BYTES), p.place))
    return RunEstimate(sum(p.events for p in parts), sum(p.rows for p in parts),
                       BASE_BYTES + sum(p.bytes for p in parts), tuple(parts))


def size_problem(estimate: RunEstimate, max_events: float | None = None, max_bytes: float | None = None) -> \
        Problem | None:
    """Why a run of this size needs asking for (it passes ``max_events`` or ``max_bytes``, by default
    :data:`MAX_EVENTS` and :data:`MAX_BYTES`), located at the part of the scenario that weighs most; None when it
    is within both."""
    max_events = MAX_EVENTS if max_events is None else max_events
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    over = []
    if estimate.events > max_events:
        over.append(f"about {_count(estimate.events)} events (the limit is {_count(max_events)}; about "
                    f"{units.format_duration(estimate.seconds)} at {EVENTS_PER_SECOND:,} events/s)")
    if estimate.bytes > max_bytes:
        over.append(f"about {units.format_size(estimate.bytes)} of memory (the limit is "
                    f"{units.format_size(max_bytes)})")
    if not over:
        return None
    part = estimate.largest(max_events, max_bytes)
    assert part is not None
    return Problem(loc=part.loc, message=f"{TOO_LARGE}: {part.what}: it needs {' and '.join(over)}")


def size_problems(scenario: Scenario) -> list[Problem]:
    """A check of a valid scenario (for :func:`drsim.load_scenario`'s ``checks``): the problem of a run too
    large to start without asking (:func:`size_problem` of :func:`estimate_run`), if any."""
    problem = size_problem(estimate_run(scenario))
    return [] if problem is None else [problem]
