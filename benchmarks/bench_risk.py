"""Risk over years: how fast the long-horizon engines are, and how much faster than full simulation.

Prints, each with its wall time and the machine's load average (other programs slow this 2-core machine down):

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
import time
from pathlib import Path

import drsim
from drsim.experiments.executors import process_pool
from drsim.experiments.horizon import HorizonPlan, risk_scenario, simulate_full
from drsim.experiments.risk import risk
from drsim.scenario.document import parse_scenario
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


def timed_risk(name: str, scenario, years: int, replications: int, pool, **kw):
    before = load()
    t0 = time.perf_counter()
    r = risk(scenario, years=years, replications=replications, executor=pool, **kw)
    wall = time.perf_counter() - t0
    print(f"{name}: {replications} x {years} years, method {r.method}: {wall:.1f} s  ({before} before, "
          f"{load()} after)")
    site = r.figures[r.figures["vm"] == "(site)"].set_index("metric")
    for metric in ("data_loss_per_year_s", "p_loss_over_rpo", "downtime_per_year_s", "nines", "failovers_per_year"):
        row = site.loc[metric]
        print(f"    site {metric}: {row['value']:.6g} [{row['low']:.6g}, {row['high']:.6g}]")
    return r, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["office", "site300", "speedup"], default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--full-years", type=int, default=1)
    args = parser.parse_args()
    pool = process_pool(args.workers)
    try:
        pool.submit(int).result()  # start the workers before timing
        parts = [args.only] if args.only else ["office", "site300", "speedup"]
        if "office" in parts:
            _, wall = timed_risk("office", office(), 100, 1000, pool)
            print(f"    target under 60 s: {'met' if wall < 60 else 'NOT met'}")
        if "site300" in parts:
            _, wall = timed_risk("300-VM site", site300(), 100, 100, pool)
            print(f"    target under 300 s: {'met' if wall < 300 else 'NOT met'}")
        if "speedup" in parts:
            _, t_cond = timed_risk("office (conditional)", office(), 100, 200, pool)
            _, t_win = timed_risk("office (windows)", office(), 100, 20, pool, method="windows")
            horizon = risk_scenario(office(), args.full_years)
            t0 = time.perf_counter()
            for f in [pool.submit(simulate_full, horizon, 1000 + k, HorizonPlan()) for k in range(2)]:
                f.result()
            t_full = time.perf_counter() - t0
            print(f"office (full simulation): 2 replications x {args.full_years} years on {args.workers} workers: "
                  f"{t_full:.1f} s ({load()})")
            # wall time per replication-year on this pool, scaled to 1,000 x 100 years
            scaled = {"full": t_full / (2 * args.full_years) * 1e5, "windows": t_win / (20 * 100) * 1e5,
                      "conditional": t_cond / (200 * 100) * 1e5}
            for name, seconds in scaled.items():
                print(f"    1,000 x 100 years, {name}: {seconds:,.0f} s ({seconds / 3600:.2f} h), scaled from the "
                      f"timing above; speed-up over full simulation {scaled['full'] / seconds:,.0f}x")
    finally:
        pool.shutdown()


if __name__ == "__main__":
    main()
