"""What the bandwidth planner sizes and compares against: the sizing scenario, the scenario at a candidate
upload (throttle scaled with it), the throttle's share of the uplink, the replicating VMs and their batches,
and a reconstruction of the vendor planner's formula.

**Sizing scenario.** Failures, maintenance and drills are removed (they interrupt replication or the RPO curve;
sizing is for normal operation). Everything else is kept: churn, interval, batches, setup, compression,
efficiency, duration.

**Throttle.** Kept, scaled with the uplink: at a candidate upload ``B`` the throttle limits are the scenario's
limits times ``B / current upload``, so the throttle keeps the same *share* of the uplink (e.g. half of it
during office hours). The answer is the raw uplink bandwidth under the scenario's throttle schedule.

**The fast planner's run** (:func:`_steady_window`): as long as the pattern needs (:func:`steady_window_length`).

**Formula.** drsim's reconstruction of the vendor planner's sizing (the deployment planner report and cost
estimation documents its inputs, the 95th percentile of profiled churn and 30 % growth, not its algorithm): per
VM, the 95th percentile of its hourly write rate (hours aligned to the calendar, over the run's duration, pooled
over the replications' write curves) times 1.3 growth; summed over the protected VMs; divided by compression and
efficiency. It ignores the throttle, the link sharing, bursts within the hour and missed cycles.

**Resync whatever the bandwidth.** A VM whose writes in one replication interval reach the pending bytes at which a
disk's change log is half the disk (:func:`drsim.model.resync.resync_threshold`) is marked for resynchronisation
at that interval's tick even on an infinitely fast link: :func:`resync_bound` finds them from the write curves.

Imports :mod:`drsim.scenario`, :mod:`drsim.model` and, of this stage, the setting paths.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from drsim.experiments.settings_paths import apply_settings
from drsim.model.churn import build_curve, week_offset
from drsim.model.resync import resync_threshold
from drsim.model.streams import Streams
from drsim.scenario import units
from drsim.scenario.document import Scenario
from drsim.scenario.site import protectable

__all__ = ["sizing_scenario", "scenario_at", "throttle_share", "formula_bandwidth", "hourly_rates", "sizing_bounds",
           "interval_writes", "resync_bound", "FORMULA_GROWTH", "FORMULA_PERCENTILE", "steady_window_length",
           "STEADY_WINDOW", "DAILY_WINDOW", "FLAT_WINDOW"]

FORMULA_GROWTH = 1.3  #: the vendor planner's growth factor (deployment planner report)
FORMULA_PERCENTILE = 95.0  #: the vendor planner's percentile of churn (deployment planner report; hourly here)
STEADY_WINDOW = 14 * units.DAY  #: the fast planner's run: two weeks, twice the weekly pattern (assumption)
#: the fast planner's run without a weekly pattern: a week, seven times the daily one (assumption: enough days
#: that the hourly variation's days weigh in, at half the cost of two weeks; see :func:`steady_window_length`)
DAILY_WINDOW = 7 * units.DAY
FLAT_WINDOW = 2 * units.DAY  #: ... and without any pattern (constant churn): two days (assumption)


def _rate_text(bytes_per_s: float) -> str:
    """A rate as scenario text that parses back to exactly the same float."""
    return f"{float(bytes_per_s)!r}B/s"


def sizing_scenario(scenario: Scenario) -> Scenario:
    """``scenario`` without failures, maintenance and drills (sizing is for normal operation)."""
    if not (scenario.failures or scenario.maintenance or scenario.drills):
        return scenario
    return apply_settings(scenario, {"failures": [], "maintenance": [], "drills": []}, source="plan")


def scenario_at(scenario: Scenario, upload: float) -> Scenario:
    """``scenario`` with an upload of ``upload`` bytes/s; throttle limits scaled by ``upload / current upload``."""
    link = scenario.link
    if upload == link.upload:
        return scenario
    settings: dict[str, Any] = {"link.upload": _rate_text(upload)}
    if link.throttle is not None:
        factor = upload / link.upload
        settings["link.throttle.work_limit"] = _rate_text(link.throttle.work_limit * factor)
        if link.throttle.off_limit is not None:
            settings["link.throttle.off_limit"] = _rate_text(link.throttle.off_limit * factor)
    return apply_settings(scenario, settings, source=f"plan at {units.format_rate(upload)}")


def throttle_share(scenario: Scenario) -> float:
    """Mean share of the raw uplink the throttle leaves over a week (1 without a throttle)."""
    link = scenario.link
    t = link.throttle
    if t is None:
        return 1.0
    work = len(t.weekday_numbers) * (t.work_hours[1] - t.work_hours[0]) / units.WEEK
    off_limit = t.off_limit if t.off_limit is not None else link.upload
    return work * min(1.0, t.work_limit / link.upload) + (1 - work) * min(1.0, off_limit / link.upload)


def _eligible(scenario: Scenario) -> list[tuple[int, Any, Any]]:
    """(index among all VMs, host, VM) of every VM that replicates."""
    return [(i, h, v) for i, (h, v) in enumerate(scenario.vms()) if protectable(h, v)]


def _batches(scenario: Scenario, names: list[str]) -> dict[str, int]:
    """1-based initial-replication batch of each replicating VM (as the model orders them)."""
    listed = scenario.replication.initial.batches
    if listed is None:
        return dict.fromkeys(names, 1)
    out: dict[str, int] = {}
    k = 0
    for batch in listed:
        members = [n for n in batch if n in names]
        if members:
            k += 1
            out.update(dict.fromkeys(members, k))
    rest = [n for n in names if n not in out]
    out.update(dict.fromkeys(rest, k + 1))
    return out


def write_curve(scenario: Scenario, vm: Any, seed: int) -> Any:
    """The write curve the model builds for ``vm`` with run seed ``seed`` over the run (cumulative bytes)."""
    return build_curve(scenario, vm, Streams(seed).get("churn", vm.name), scenario.duration)


def hourly_rates(scenario: Scenario, vm: Any, seed: int, curve: Any = None) -> np.ndarray:
    """Mean write rate (bytes/s) of each whole calendar hour of the run, from the write curve the model builds
    for ``vm`` with run seed ``seed`` (``curve``: that curve, when already built; one window over the run if it
    is shorter than an hour)."""
    horizon = scenario.duration
    curve = write_curve(scenario, vm, seed) if curve is None else curve
    offset = week_offset(scenario)
    first = math.ceil(offset / units.HOUR) * units.HOUR - offset
    n = int(math.floor((horizon - first) / units.HOUR + 1e-9))
    edges = first + units.HOUR * np.arange(n + 1) if n >= 1 else np.array([0.0, horizon])
    times = np.asarray(curve.times)
    i = np.searchsorted(times, edges, side="right") - 1
    written = np.asarray(curve.cumulative)[i] + np.asarray(curve.slopes)[i] * (edges - times[i])
    return np.diff(written) / np.diff(edges)


def _formula_of(scenario: Scenario, vm: Any, seeds: list[int], curves: list[Any]) -> float:
    """One VM's term of :func:`formula_bandwidth`, from its write curves (one per seed)."""
    rates = np.concatenate([hourly_rates(scenario, vm, s, c) for s, c in zip(seeds, curves, strict=True)])
    peak = float(np.percentile(rates, FORMULA_PERCENTILE))
    return peak * FORMULA_GROWTH / scenario.link.compression / scenario.link.efficiency


def formula_bandwidth(scenario: Scenario, seeds: list[int] | None = None) -> dict[str, float]:
    """drsim's reconstruction of the vendor planner's sizing per replicating VM (bytes/s of raw upload): the 95th
    percentile of its hourly write rate, pooled over the write curves of ``seeds`` (default: the scenario's seed),
    times 1.3, divided by compression and efficiency. The site's is the sum."""
    return sizing_bounds(scenario, seeds or [scenario.seed])[0]


def interval_writes(scenario: Scenario, vm: Any, seed: int, curve: Any = None) -> tuple[float, float]:
    """The most and the mean bytes ``vm`` writes in one replication interval over the run, from the write curve the
    model builds with run seed ``seed`` (``curve``, when already built; exact: a piecewise-linear curve's window of
    fixed length writes most when the window starts or ends at a breakpoint)."""
    interval, horizon = scenario.replication.interval, scenario.duration
    curve = write_curve(scenario, vm, seed) if curve is None else curve
    if horizon <= interval:
        total = curve(horizon)
        return total, total
    times, cum, slopes = (np.asarray(x) for x in (curve.times, curve.cumulative, curve.slopes))

    def at(t: np.ndarray) -> np.ndarray:
        i = np.maximum(np.searchsorted(times, t, side="right") - 1, 0)
        return cum[i] + slopes[i] * (t - times[i])

    starts = np.unique(np.clip(np.concatenate([times, times - interval]), 0.0, horizon - interval))
    return float((at(starts + interval) - at(starts)).max()), curve(horizon) / horizon * interval


def _resync_of(scenario: Scenario, vm: Any, seeds: list[int],
               curves: list[Any]) -> tuple[str, float, float, float] | None:
    """One VM's entry of :func:`resync_bound` (None when its busiest interval stays below its threshold)."""
    limit = resync_threshold(vm)
    peak, mean = 0.0, 0.0
    for seed, curve in zip(seeds, curves, strict=True):
        p, m = interval_writes(scenario, vm, seed, curve)
        peak, mean = max(peak, p), mean + m / len(seeds)
    return (vm.name, mean, peak, limit) if peak >= limit else None


def resync_bound(scenario: Scenario, seeds: list[int]) -> list[tuple[str, float, float, float]]:
    """The replicating VMs that need a resynchronisation at some interval whatever the bandwidth: (name, bytes
    written in an interval on average, in the busiest interval, the pending bytes that mark a resync), for each VM
    whose busiest interval (over the write curves of ``seeds``) reaches its threshold."""
    return sizing_bounds(scenario, seeds)[1]


def sizing_bounds(scenario: Scenario, seeds: list[int]) -> tuple[dict[str, float], list[tuple[str, float, float,
                                                                                             float]]]:
    """(:func:`formula_bandwidth`, :func:`resync_bound`) together: each VM's write curves are built once for
    both, one VM at a time (memory: one VM's curves)."""
    formula: dict[str, float] = {}
    bound = []
    for _, _, vm in _eligible(scenario):
        curves = [write_curve(scenario, vm, s) for s in seeds]
        formula[vm.name] = _formula_of(scenario, vm, seeds, curves)
        entry = _resync_of(scenario, vm, seeds, curves)
        if entry is not None:
            bound.append(entry)
    return formula, bound


def steady_window_length(scenario: Scenario) -> float:
    """The fast planner's run length, seconds: :data:`STEADY_WINDOW` (two weeks) when the churn or the link
    repeats with the week (a replicating VM's weekend factor, a throttle on some days of the week only);
    :data:`DAILY_WINDOW` (a week) when they repeat with the day only (a daily profile, a throttle every day, or a
    random hourly variation, whose days are alike); :data:`FLAT_WINDOW` (two days) when nothing varies; the
    scenario's duration when a VM replays a trace, whose shape has its own period."""
    vms = [v for _, _, v in _eligible(scenario)]
    if any(v.churn.trace is not None for v in vms):
        return float(scenario.duration)
    throttle = scenario.link.throttle
    if any(v.churn.weekend != 1.0 for v in vms) or (throttle is not None and len(throttle.weekday_numbers) < 7):
        return STEADY_WINDOW
    if throttle is not None or any(v.churn.profile is not None or v.churn.variation for v in vms):
        return DAILY_WINDOW
    return FLAT_WINDOW


def _steady_window(scenario: Scenario) -> Scenario:
    """The fast planner's run: :func:`steady_window_length` long (the scenario's duration when shorter)."""
    length = steady_window_length(scenario)
    if scenario.duration <= length:
        return scenario
    return apply_settings(scenario, {"duration": f"{length!r}s"}, source="plan")
