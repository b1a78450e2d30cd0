"""The failure timeline of a run, drawn before the run starts.

Every failure (scripted or stochastic) becomes a :class:`FailureEvent` with its start, repair time and,
for corruption, detection delay. Stochastic failures alternate up and down periods per target (an
alternating renewal process: time to failure from ``every``, then ``repair``).

The timeline is drawn from its own named streams (``failures/<kind>/<target>/<n>``), so it does not
change when a policy, a bandwidth or a step duration changes: runs that differ only in such levers see
exactly the same failures (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drsim.model.streams import Streams
from drsim.scenario.document import Scenario
from drsim.scenario.recovery import Failure

__all__ = ["FailureEvent", "failure_timeline", "resolve_time"]


@dataclass(frozen=True)
class FailureEvent:
    """One failure. Times in seconds from t = 0."""

    kind: str  # vm, host, site, link, corruption
    targets: tuple[str, ...]  # VM names (vm, corruption), host names (host); empty for site and link
    start: float
    repair: float  # seconds from start until repaired (vm: rebooted); 0 for corruption
    disks_lost: bool
    detection: float  # corruption: seconds from start until noticed; 0 otherwise
    source: int  # index of the failure in the scenario's list

    @property
    def end(self) -> float:
        return self.start + self.repair


def resolve_time(scenario: Scenario, at: datetime | float) -> float:
    """Seconds from t = 0 of a scenario time point (an offset, or a date-time with a calendar start)."""
    if isinstance(at, datetime):
        assert scenario.start is not None
        return (at - scenario.start).total_seconds()
    return float(at)


def _targets(scenario: Scenario, f: Failure) -> list[str]:
    names = f.targets
    if names is None:
        return [""]
    if names == ["all"]:
        if f.kind == "host":
            return [h.name for h in scenario.site.hosts]
        return [vm.name for _, vm in scenario.vms()]
    return names


def failure_timeline(scenario: Scenario, streams: Streams) -> list[FailureEvent]:
    """Every failure that starts within the scenario's duration, sorted by start time."""
    events: list[FailureEvent] = []
    horizon = scenario.duration
    for i, f in enumerate(scenario.failures):
        repair = f.repair_dist
        detection = f.detection_dist
        if f.at is not None:
            rng = streams.get("failures", "scripted", str(i))
            start = resolve_time(scenario, f.at)
            targets = tuple(t for t in (f.targets or []))
            if targets == ("all",):
                targets = tuple(_targets(scenario, f))
            events.append(FailureEvent(
                f.kind, targets, start, 0.0 if f.kind == "corruption" else repair.sample(rng), f.disks_lost,
                detection.sample(rng) if f.kind == "corruption" else 0.0, i))
            continue
        assert f.every is not None
        for target in _targets(scenario, f):
            rng = streams.get("failures", f.kind, target, str(i))
            t = f.every.sample(rng)
            while t < horizon:
                r = 0.0 if f.kind == "corruption" else repair.sample(rng)
                d = detection.sample(rng) if f.kind == "corruption" else 0.0
                events.append(FailureEvent(f.kind, (target,) if target else (), t, r, f.disks_lost, d, i))
                t += max(r + d + f.every.sample(rng), 1e-6)  # a zero draw must not stall the loop
    events.sort(key=lambda e: (e.start, e.source))
    return events
