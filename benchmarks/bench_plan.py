"""Benchmark of the bandwidth planner (``drsim plan``): the fast planner against the full-length search.

Part "office": ``scenarios/essentials-office.yaml`` at a 15-minute RPO, p95, 10 replications, the default tolerance
(0.5 Mbit/s, or 1 % of the answer when wider; the command of the issue that asked for it): the fast planner's wall
time (target: under 10 s on 2 cores), its answer, runs and rounds; then the full-length search's on the same input,
and the ratio.

Part "big": a site of 300 VMs on 30 hosts (10 VMs per host, 80 GB used each, office-profile churn of 1 to 4 % of
the used size a day with a 0.3 hourly variation, 5-minute interval, 30 days, no throttle): the fast planner's
wall time (target: under 2 minutes on 2 cores). Its pattern repeats with the day (no weekend factor, no throttle),
so the fast planner's runs last a week. ``--full`` also runs the full-length search on it (hours);
``--absolute`` also runs the fast planner with the 0.5 Mbit/s tolerance alone (``--rel-tolerance 0``);
``--seeds K`` plans it again with experiment seeds 1..K (with ``--absolute``, also with 0.5 Mbit/s alone) and
prints how far the answers and the wall times spread.

Prints wall and CPU seconds (this process and the pool's workers) and whether each target is met, by the wall
time and by CPU / workers (about the wall time on an otherwise idle machine); never fails. Timings on a shared
machine vary: read the load average printed first. Run ``python benchmarks/bench_plan.py --help``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import drsim
from drsim.experiments.planner import plan
from drsim.results.tables import SITE

MBIT = 1e6 / 8
OFFICE_TARGET = 10.0  # s
BIG_TARGET = 120.0  # s


def big_site(hosts: int = 30, per_host: int = 10) -> drsim.Scenario:
    """``hosts`` hosts of ``per_host`` VMs each (deterministic spread of churn 1..4 % a day)."""
    n = hosts * per_host
    host_list = []
    for h in range(hosts):
        vms = []
        for k in range(per_host):
            i = h * per_host + k
            vms.append({"name": f"vm{i:03d}", "disks": [{"size": "127GB", "used": "80GB"}],
                        "churn": {"daily": f"{1 + 3 * i / max(n - 1, 1):.3f}%", "profile": "office",
                                  "variation": 0.3}})
        host_list.append({"name": f"host{h:02d}", "os": "Windows Server 2022", "vms": vms})
    return drsim.parse_scenario({
        "name": f"big-{n}", "duration": "30d", "start": "2026-03-02T00:00:00", "seed": 7,
        "site": {"hosts": host_list},
        "link": {"upload": "200Mbit/s", "download": "500Mbit/s", "efficiency": 0.9, "compression": 1.5},
        "replication": {"interval": "5m", "retention": "24h"},
        "objectives": {"rpo": "15m", "rto": "4h"},
    })


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the pool's workers, once shut down)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(scenario, method: str, workers: int, **kw) -> tuple[float, float, object]:
    """(wall s, CPU s, plan) with a fresh pool of ``workers`` processes (shut down, so its CPU time counts)."""
    c, t = _cpu(), time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        df = plan(scenario, executor=pool, method=method, **kw)
    return time.perf_counter() - t, _cpu() - c, df


def describe(label: str, seconds: float, cpu: float, workers: int, df, target: float | None = None) -> None:
    row = df.set_index("vm").loc[SITE]
    idle = cpu / workers  # the wall time on an otherwise idle machine with this many cores, about
    met = "" if target is None else (f" (target {target:.0f} s: {'met' if seconds <= target else 'NOT met'}; "
                                     f"on {workers} idle cores about {idle:.1f} s: "
                                     f"{'met' if idle <= target else 'NOT met'})")
    print(f"{label}: {seconds:.1f} s wall, {cpu:.1f} s CPU{met}; required {row['required_Bps'] / MBIT:.2f} Mbit/s "
          f"(not at {row['required_low_Bps'] / MBIT:.2f}); {df.attrs['runs']} runs, {df.attrs['rounds']} rounds, "
          f"{len(df.attrs['evaluations'])} bandwidths", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["office", "big"], action="append")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="also run the full-length search on the big site")
    ap.add_argument("--seeds", type=int, default=0, metavar="K",
                    help="also plan the big site with experiment seeds 1..K and print the spread of the answers")
    ap.add_argument("--absolute", action="store_true",
                    help="also run the big site with the 0.5 Mbit/s tolerance alone (--rel-tolerance 0)")
    ap.add_argument("--no-office-full", action="store_true", help="skip the full-length search on the office")
    args = ap.parse_args()
    parts = args.only or ["office", "big"]
    print(f"drsim {drsim.__file__}; {os.cpu_count()} cores, {args.workers} workers; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    kw = {"rpo": "15m", "percentile": 95, "replications": 10}
    w = args.workers
    if "office" in parts:
        office = drsim.load_scenario("scenarios/essentials-office.yaml")
        fast_s, fast_c, fast = timed(office, "fast", w, **kw)
        describe("office, fast", fast_s, fast_c, w, fast, OFFICE_TARGET)
        if not args.no_office_full:
            full_s, full_c, full = timed(office, "full", w, **kw)
            describe("office, full", full_s, full_c, w, full)
            print(f"office: full / fast = {full_s / fast_s:.1f}x wall, {full_c / fast_c:.1f}x CPU", flush=True)
    if "big" in parts:
        big = big_site()
        fast_s, fast_c, fast = timed(big, "fast", w, **kw)
        describe("300 VMs on 30 hosts, fast", fast_s, fast_c, w, fast, BIG_TARGET)
        if args.absolute:
            abs_s, abs_c, absolute = timed(big, "fast", w, **kw, rel_tolerance=0)
            describe("300 VMs on 30 hosts, fast, 0.5 Mbit/s tolerance alone", abs_s, abs_c, w, absolute, BIG_TARGET)
        tolerances = [("the default tolerance", {})] + ([("0.5 Mbit/s alone", {"rel_tolerance": 0})]
                                                       if args.absolute else [])
        for label, extra in tolerances if args.seeds else []:
            answers, walls = [], []
            for seed in range(1, args.seeds + 1):
                s_s, s_c, by_seed = timed(big, "fast", w, **kw, **extra, seed=seed)
                describe(f"300 VMs, seed {seed}, {label}", s_s, s_c, w, by_seed, BIG_TARGET)
                answers.append(by_seed.set_index("vm").loc[SITE, "required_Bps"] / MBIT)
                walls.append(s_s)
            mean, sd = statistics.mean(answers), statistics.stdev(answers) if len(answers) > 1 else 0.0
            print(f"300 VMs, {label}, over experiment seeds 1..{args.seeds}: {min(answers):.2f} to "
                  f"{max(answers):.2f} Mbit/s, mean {mean:.2f}, standard deviation {sd:.2f} Mbit/s ({sd / mean:.2%} "
                  f"of the mean); wall {min(walls):.1f} to {max(walls):.1f} s", flush=True)
        if args.full:
            full_s, full_c, full = timed(big, "full", w, **kw)
            describe("300 VMs on 30 hosts, full", full_s, full_c, w, full)
            print(f"300 VMs: full / fast = {full_s / fast_s:.1f}x wall, {full_c / fast_c:.1f}x CPU", flush=True)


if __name__ == "__main__":
    main()
