"""Risk over years: how fast the long-horizon engines are, and how much faster than full simulation.

Prints, for each part, its wall time, the CPU time it used (in its worker processes, which a pool of its own per
part gives exactly, and in this process) and the machine's load average before and after: other programs slow
this shared 2-core machine down, so the workers' CPU time spread over the workers plus this process's CPU time
(the figures are computed here while the workers wait) is what the part takes on an idle machine.
The parts:

1. the bundled office scenario with a site disaster MTBF of 20 years and a host MTBF of 5 years (per host),
   1,000 replications x 100 years, ``drsim.risk`` as ``drsim risk`` runs it (method auto: conditional Monte Carlo)
   [target: under 60 s];
2. a 300-VM site (30 hosts of 10 VMs, 1 Gbit/s uplink, the same failures), 100 replications x 100 years
   [target: under 5 minutes];
3. the speed-up over full simulation on the same horizon: full simulation of the office is timed over a shorter
   horizon (``--full-years``, 2 replications) and scaled linearly to 1,000 x 100 years (full simulation costs the
   same per simulated year: the model has no state that grows with time); the windows engine is timed on 20
   replications x 100 years and scaled the same way.

    python benchmarks/bench_risk.py                 # everything (about 10 minutes on an idle machine)
    python benchmarks/bench_risk.py --only office   # one part: office, site300 or speedup
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import drsim
from drsim.experiments.executors import process_pool
from drsim.experiments.horizon import HorizonPlan, risk_scenario, simulate_full
from drsim.experiments.risk import risk
from drsim.scenario import parse_scenario
from drsim.scenario.recovery import Failure

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "essentials-office.yaml"
FAILURES = [{"kind": "site", "every": {"dist": "exponential", "mean": "20y"}},
            {"kind": "host", "target": "all", "every": {"dist": "exponential", "mean": "5y"}}]


def office():
    s = drsim.load_scenario(SCENARIO)
    return s.model_copy(update={"failures": [Failure.model_validate(f) for f in FAILURES]})


def site300():
    hosts = [{"name": f"H{h:02d}", "vms": [
        {"name": f"h{h:02d}v{v}", "disks": [{"size": "100GiB", "used": "50GiB"}],
         "churn": {"daily": "2%", "profile": "office", "weekend": 0.3, "variation": 0.2}} for v in range(10)]}
        for h in range(30)]
    return parse_scenario({
        "name": "site300", "duration": "30d", "start": "2026-03-02T08:00:00", "seed": 7,
        "site": {"hosts": hosts},
        "link": {"upload": "1Gbit/s", "download": "1Gbit/s", "efficiency": 0.9},
        "replication": {"interval": "5m", "setup": "20m"},
        "failures": FAILURES,
        "policy": {"name": "manual", "point": "latest"},
    })


def load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def cpu() -> tuple[float, float]:
    """CPU seconds of this process, and of its children that have ended."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def timed(name: str, workers: int, work) -> tuple[object, float, float]:
    """Run ``work(pool)`` on a pool of its own; print and return (result, wall s, idle-machine estimate s).

    The estimate: the workers' CPU time spread over the workers, plus this process's CPU time (its work, such as
    the figures, runs while the workers wait)."""
    before, (own0, kids0), t0 = load(), cpu(), time.perf_counter()
    pool = process_pool(workers)
    try:
        result = work(pool)
    finally:
        pool.shutdown()
    wall = time.perf_counter() - t0
    own, kids = (a - b for a, b in zip(cpu(), (own0, kids0), strict=True))
    idle = kids / workers + own
    print(f"{name}: {wall:.1f} s wall; CPU {kids:.1f} s in {workers} workers and {own:.1f} s here, so about "
          f"{idle:.1f} s on an idle machine; {before} before, {load()} after")
    return result, wall, idle


def timed_risk(name: str, scenario, years: int, replications: int, workers: int, **kw):
    r, wall, used = timed(f"{name}: {replications} x {years} years", workers,
                          lambda pool: risk(scenario, years=years, replications=replications, executor=pool, **kw))
    print(f"    method {r.method}; phases (wall s): " + ", ".join(f"{k} {v:.1f}" for k, v in r.timings.items()))
    site = r.figures[r.figures["vm"] == "(site)"].set_index("metric")
    for metric in ("data_loss_per_year_s", "p_loss_over_rpo", "downtime_per_year_s", "nines", "failovers_per_year"):
        row = site.loc[metric]
        print(f"    site {metric}: {row['value']:.6g} [{row['low']:.6g}, {row['high']:.6g}]")
    return r, wall, used


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["office", "site300", "speedup"], default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--full-years", type=int, default=1)
    args = parser.parse_args()
    w = args.workers
    parts = [args.only] if args.only else ["office", "site300", "speedup"]
    if "office" in parts:
        _, wall, idle = timed_risk("office", office(), 100, 1000, w)
        print(f"    target under 60 s: {'met' if wall < 60 else 'NOT met'} as measured; "
              f"{'met' if idle < 60 else 'NOT met'} on an idle machine")
    if "site300" in parts:
        _, wall, idle = timed_risk("300-VM site", site300(), 100, 100, w)
        print(f"    target under 300 s: {'met' if wall < 300 else 'NOT met'} as measured; "
              f"{'met' if idle < 300 else 'NOT met'} on an idle machine")
    if "speedup" in parts:
        _, t_cond, c_cond = timed_risk("office (conditional)", office(), 100, 200, w)
        _, t_win, c_win = timed_risk("office (windows)", office(), 100, 20, w, method="windows")
        horizon = risk_scenario(office(), args.full_years)

        def full(pool):
            for f in [pool.submit(simulate_full, horizon, 1000 + k, HorizonPlan()) for k in range(2)]:
                f.result()

        _, t_full, c_full = timed(f"office (full simulation): 2 x {args.full_years} years", w, full)
        # idle-machine seconds per replication-year, scaled to 1,000 x 100 years (fixed costs such as the probe runs
        # scale too: an overestimate for the long-horizon engines)
        scaled = {"full": c_full / (2 * args.full_years) * 1e5, "windows": c_win / (20 * 100) * 1e5,
                  "conditional": c_cond / (200 * 100) * 1e5}
        for name, seconds in scaled.items():
            print(f"    1,000 x 100 years, {name}: about {seconds:,.0f} s ({seconds / 3600:.2f} h) on {w} idle cores, "
                  f"scaled from the above; speed-up over full simulation {scaled['full'] / seconds:,.0f}x")

if __name__ == "__main__":
    main()
