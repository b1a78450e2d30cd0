"""Benchmark of the bandwidth planner (``drsim plan``): the fast planner against the full-length search.

Part "office": ``scenarios/essentials-office.yaml`` at a 15-minute RPO, p95, 10 replications, tolerance
0.5 Mbit/s (the command of the issue that asked for it): the fast planner's wall time (target: under 10 s on 2
cores), its answer, runs and rounds; then the full-length search's on the same input, and the ratio.

Part "big": a site of 300 VMs on 30 hosts (10 VMs per host, 80 GB used each, office-profile churn of 1 to 4 % of
the used size a day with a 0.3 hourly variation, 5-minute interval, 30 days, no throttle): the fast planner's
wall time (target: under 2 minutes on 2 cores). ``--full`` also runs the full-length search on it (long).

Prints figures and whether each target is met; never fails. Timings on a shared machine vary: read the load
average printed first. Run ``python benchmarks/bench_plan.py --help``.
"""

from __future__ import annotations

import argparse
import os
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


def timed(scenario, method: str, pool, **kw) -> tuple[float, object]:
    t = time.perf_counter()
    df = plan(scenario, executor=pool, method=method, **kw)
    return time.perf_counter() - t, df


def describe(label: str, seconds: float, df, target: float | None = None) -> None:
    row = df.set_index("vm").loc[SITE]
    met = "" if target is None else f" (target {target:.0f} s: {'met' if seconds <= target else 'NOT met'})"
    print(f"{label}: {seconds:.1f} s{met}; required {row['required_Bps'] / MBIT:.2f} Mbit/s "
          f"(not at {row['required_low_Bps'] / MBIT:.2f}); {df.attrs['runs']} runs, {df.attrs['rounds']} rounds, "
          f"{len(df.attrs['evaluations'])} bandwidths", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["office", "big"], action="append")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="also run the full-length search on the big site")
    ap.add_argument("--no-office-full", action="store_true", help="skip the full-length search on the office")
    args = ap.parse_args()
    parts = args.only or ["office", "big"]
    print(f"drsim {drsim.__file__}; {os.cpu_count()} cores, {args.workers} workers; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    kw = {"rpo": "15m", "percentile": 95, "replications": 10, "tolerance": "0.5Mbit/s"}
    with ProcessPoolExecutor(args.workers) as pool:
        if "office" in parts:
            office = drsim.load_scenario("scenarios/essentials-office.yaml")
            fast_s, fast = timed(office, "fast", pool, **kw)
            describe("office, fast", fast_s, fast, OFFICE_TARGET)
            if not args.no_office_full:
                full_s, full = timed(office, "full", pool, **kw)
                describe("office, full", full_s, full)
                print(f"office: full / fast = {full_s / fast_s:.1f}x", flush=True)
        if "big" in parts:
            big = big_site()
            fast_s, fast = timed(big, "fast", pool, **kw)
            describe("300 VMs on 30 hosts, fast", fast_s, fast, BIG_TARGET)
            if args.full:
                full_s, full = timed(big, "full", pool, **kw)
                describe("300 VMs on 30 hosts, full", full_s, full)
                print(f"300 VMs: full / fast = {full_s / fast_s:.1f}x", flush=True)


if __name__ == "__main__":
    main()
