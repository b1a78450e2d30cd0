"""Benchmarks of drsim's simulation core.

Part 1 ("bare"): the same workload written as a plain SimPy model and run through drsim; prints both wall
times, the ratio drsim/bare (target: <= 1.5) and the cycle counts of both (they must agree).

Part 2 ("scale"): 1,000 VMs x 30 days at a 5-minute interval (8.64 M cycles) through ``drsim.simulate``,
then ``results.summary``, in a fresh subprocess; prints the wall time of each and the peak RSS of the
subprocess (targets: under 60 s, under 2 GB).

Optional ("profile"): cProfile of ``drsim.simulate`` on a medium workload, top entries by tottime.

The workload (both parts): N VMs on one host, each writing at its own constant rate (spread evenly over
0.5x..1.5x the mean, so transfers differ in size and finish one by one), replicating every 5 minutes
over one shared fair-share link whose capacity is sized for a target utilisation (default 50 %).
No throttle, compression 1, efficiency 1, setup 0; each VM's disk has 1 MB used, so the initial copy is
negligible. All VMs start together, so their ticks are aligned (``--phases spread`` scatters them instead).

Run ``python benchmarks/bench_core.py --help``; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import time

import simpy

INTERVAL = 300.0  # s: the replication interval (5 minutes)
DISK_USED = 1e6  # bytes: what the initial copy moves per VM (1 MB: negligible)
DAY = 86400.0

RATIO_TARGET = 1.5
SCALE_TIME_TARGET = 60.0  # s
SCALE_RSS_TARGET = 2e9  # bytes: 2 GB


# ----------------------------------------------------------------------------------------------------
# The workload


def vm_rates(n: int, mean_rate: float) -> list[float]:
    """Constant write rate of each VM (bytes/s): evenly spread over 0.5x..1.5x ``mean_rate``."""
    if n == 1:
        return [mean_rate]
    return [mean_rate * (0.5 + i / (n - 1)) for i in range(n)]


def disk_used(n: int, phases: str) -> list[float]:
    """Bytes each VM's initial copy moves. ``aligned``: 1 MB each, so the copies end together on the fair-share
    link and every VM ticks at the same instants. ``spread``: 1 MB to 100 MB, so the copies end one by one over
    about 500 s (more than an interval) and the VMs tick at scattered instants, as on a real site."""
    if phases == "aligned" or n == 1:
        return [DISK_USED] * n
    return [DISK_USED * (1 + 99 * i / (n - 1)) for i in range(n)]


def link_capacity(rates: list[float], utilisation: float) -> float:
    """Link payload capacity (bytes/s) at which the VMs' writes load the link to ``utilisation``."""
    return sum(rates) / utilisation


# ----------------------------------------------------------------------------------------------------
# Part 1: the bare SimPy model


class BarePSLink:
    """A plain fair-share (processor-sharing) link in raw SimPy.

    The active transfers are kept in a list as ``[remaining_bytes, done_event]``. On every arrival and
    departure all remaining sizes are brought up to date (each active transfer got ``capacity / n``
    bytes/s since the last change) and the next finish time is recomputed. The link is a process that
    sleeps until the next finish; an arrival interrupts it so it replans.
    """

    def __init__(self, env: simpy.Environment, capacity: float):
        self.env = env
        self.capacity = capacity
        self.active: list[list] = []
        self.updated = env.now
        self.sleeping = False  # the link process is waiting and may be interrupted
        self.delivered_bytes = 0.0
        self.proc = env.process(self._run())

    def send(self, nbytes: float) -> simpy.Event:
        """Start a transfer; the returned event succeeds when it has been sent."""
        done = self.env.event()
        self._serve()
        self.active.append([nbytes, done, nbytes])
        if self.sleeping:  # one interrupt is enough for several arrivals at one instant
            self.sleeping = False
            self.proc.interrupt()
        return done

    def _serve(self) -> None:
        """Subtract what every active transfer received since the last update."""
        now = self.env.now
        if self.active and now > self.updated:
            share = (now - self.updated) * self.capacity / len(self.active)
            for tr in self.active:
                tr[0] -= share
        self.updated = now

    def _run(self):
        env = self.env
        while True:
            self._serve()
            if self.active:
                # departures: anything within 0.1 us of done (guards float round-off)
                tol = 1e-7 * self.capacity / len(self.active)
                still = []
                for tr in self.active:
                    if tr[0] <= tol:
                        self.delivered_bytes += tr[2]
                        tr[1].succeed()
                    else:
                        still.append(tr)
                self.active = still
            self.sleeping = True
            try:
                if self.active:
                    yield env.timeout(min(tr[0] for tr in self.active) * len(self.active) / self.capacity)
                else:
                    yield env.event()  # idle: only an arrival (interrupt) wakes the link
            except simpy.Interrupt:
                pass
            self.sleeping = False


def bare_vm(env: simpy.Environment, link: BarePSLink, rate: float, used: float, interval: float, counts: list[int]):
    """One VM: initial copy, then a cut every ``interval``; a tick is missed while the last one is in flight."""
    start = env.now
    yield link.send(used)  # initial copy; the writes made meanwhile go in the first cut
    last_cut = env.now
    inflight = link.send(rate * (last_cut - start))  # catch-up
    while not inflight.triggered:  # ticks before the catch-up is in are not cycles (as in drsim)
        yield env.timeout(interval)
    while True:
        now = env.now
        if inflight.triggered:
            inflight = link.send(rate * (now - last_cut))
            last_cut = now
            counts[0] += 1
        else:
            counts[1] += 1
        yield env.timeout(interval)


def run_bare(n: int, days: float, mean_rate: float, utilisation: float, phases: str = "aligned") -> dict:
    rates = vm_rates(n, mean_rate)
    t0 = time.perf_counter()
    env = simpy.Environment()
    link = BarePSLink(env, link_capacity(rates, utilisation))
    counts = [0, 0]  # sent, missed
    for r, used in zip(rates, disk_used(n, phases), strict=True):
        env.process(bare_vm(env, link, r, used, INTERVAL, counts))
    env.run(until=days * DAY)
    wall = time.perf_counter() - t0
    return {"wall": wall, "sent": counts[0], "missed": counts[1], "cycles": counts[0] + counts[1],
            "delivered_bytes": link.delivered_bytes}


# ----------------------------------------------------------------------------------------------------
# drsim on the same workload


def drsim_scenario(n: int, days: float, mean_rate: float, utilisation: float, phases: str = "aligned"):
    import drsim

    rates = vm_rates(n, mean_rate)
    used = disk_used(n, phases)
    cap = link_capacity(rates, utilisation)
    data = {
        "name": f"bench-{n}vms-{days:g}d",
        "duration": f"{days:g}d",
        "seed": 1,
        "site": {"hosts": [{
            "name": "host1",
            "os": "Windows Server 2019",
            "vms": [
                {"name": f"vm{i:04d}", "disks": [{"size": "127GiB", "used": f"{u!r}B"}],
                 "churn": {"rate": f"{r!r}B/s"}}
                for i, (r, u) in enumerate(zip(rates, used, strict=True))
            ],
        }]},
        "link": {"upload": f"{cap!r}B/s", "download": f"{cap!r}B/s", "efficiency": 1, "compression": 1},
        "replication": {"interval": "5m", "setup": 0},
    }
    return drsim.parse_scenario(data)


def run_drsim(n: int, days: float, mean_rate: float, utilisation: float, phases: str = "aligned") -> dict:
    import drsim

    t0 = time.perf_counter()
    scenario = drsim_scenario(n, days, mean_rate, utilisation, phases)
    t1 = time.perf_counter()
    results = drsim.simulate(scenario)
    t2 = time.perf_counter()
    cy = results.cycles
    sent = int((cy["outcome"] == "sent").sum())
    missed = int((cy["outcome"] == "missed").sum())
    tr = results.transfers
    delivered = float(tr.loc[tr["finished_at"].notna(), "bytes"].sum())
    return {"wall": t2 - t1, "parse": t1 - t0, "sent": sent, "missed": missed, "cycles": len(cy),
            "delivered_bytes": delivered}


def part_bare(args) -> None:
    n, days = args.bare_vms, args.bare_days
    rates = vm_rates(n, args.rate)
    cap = link_capacity(rates, args.utilisation)
    print(f"== Part 1: bare SimPy vs drsim: {n} VMs x {days:g} days, interval {INTERVAL:g} s, {args.phases} ticks")
    print(f"   mean churn {args.rate / 1e3:g} kB/s per VM (0.5x..1.5x), link {cap * 8 / 1e6:.1f} Mbit/s, "
          f"utilisation {args.utilisation:.0%}, best of {args.repeat}")
    best_bare = best_drsim = None
    for _ in range(args.repeat):
        gc.collect()
        b = run_bare(n, days, args.rate, args.utilisation, args.phases)
        if best_bare is None or b["wall"] < best_bare["wall"]:
            best_bare = b
        gc.collect()
        d = run_drsim(n, days, args.rate, args.utilisation, args.phases)
        if best_drsim is None or d["wall"] < best_drsim["wall"]:
            best_drsim = d
    b, d = best_bare, best_drsim
    ratio = d["wall"] / b["wall"]
    print(f"   bare SimPy : {b['wall']:8.2f} s   cycles {b['cycles']:>10,} (sent {b['sent']:,}, missed "
          f"{b['missed']:,})   delivered {b['delivered_bytes'] / 1e9:,.3f} GB")
    print(f"   drsim      : {d['wall']:8.2f} s   cycles {d['cycles']:>10,} (sent {d['sent']:,}, missed "
          f"{d['missed']:,})   delivered {d['delivered_bytes'] / 1e9:,.3f} GB   "
          f"(+ {d['parse']:.2f} s parse_scenario, not timed)")
    met = "MET" if ratio <= RATIO_TARGET else "NOT MET"
    print(f"   ratio drsim/bare: {ratio:.2f}x   target <= {RATIO_TARGET}x: {met}")
    diff = abs(d["cycles"] - b["cycles"]) / max(b["cycles"], 1)
    print(f"   cycle counts differ by {diff:.3%}: {'agree' if diff <= 0.03 else 'DO NOT AGREE'} (within 3 %)")
    print(f"   per cycle: bare {b['wall'] / max(b['cycles'], 1) * 1e6:.1f} us, "
          f"drsim {d['wall'] / max(d['cycles'], 1) * 1e6:.1f} us")


# ----------------------------------------------------------------------------------------------------
# Part 2: the scale run (in a fresh subprocess, so the peak RSS is its own)


def maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB, macOS bytes


def scale_child(n: int, days: float, mean_rate: float, utilisation: float, phases: str) -> None:
    import drsim

    rss0 = maxrss_bytes()
    t0 = time.perf_counter()
    scenario = drsim_scenario(n, days, mean_rate, utilisation, phases)
    t1 = time.perf_counter()
    results = drsim.simulate(scenario)
    t2 = time.perf_counter()
    rss_sim = maxrss_bytes()
    summary = results.summary
    t3 = time.perf_counter()
    site = summary.iloc[-1]
    out = {
        "parse": t1 - t0, "simulate": t2 - t1, "summary": t3 - t2,
        "rss_start": rss0, "rss_after_simulate": rss_sim, "rss_peak": maxrss_bytes(),
        "cycles_sent": int(site["cycles_sent"]), "cycles_missed": int(site["cycles_missed"]),
        "rows": {name: len(t) for name, t in results._tables.items()},
        "rpo_mean_s": float(site["rpo_mean_s"]), "rpo_max_s": float(site["rpo_max_s"]),
    }
    print("SCALE-RESULT " + json.dumps(out), flush=True)


def part_scale(args) -> None:
    n, days = args.scale_vms, args.scale_days
    expected = n * days * DAY / INTERVAL
    print(f"== Part 2: scale: {n:,} VMs x {days:g} days at {INTERVAL:g} s (~{expected / 1e6:.2f} M cycles), "
          f"{args.phases} ticks, fresh subprocess")
    cmd = [sys.executable, os.path.abspath(__file__), "--_scale-child", "--scale-vms", str(n), "--scale-days",
           str(days), "--rate", repr(args.rate), "--utilisation", repr(args.utilisation), "--phases", args.phases]
    gauge_before = speed_gauge(args)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    gauge_after = speed_gauge(args)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SCALE-RESULT ")), None)
    if proc.returncode != 0 or line is None:
        print(f"   FAILED (exit {proc.returncode}) after {wall:.1f} s")
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        return
    r = json.loads(line[len("SCALE-RESULT "):])
    total = r["simulate"] + r["summary"]
    cycles = r["cycles_sent"] + r["cycles_missed"]
    print(f"   cycles          : {cycles:,} (sent {r['cycles_sent']:,}, missed {r['cycles_missed']:,})")
    print("   table rows      : " + ", ".join(f"{k} {v:,}" for k, v in r["rows"].items()))
    print(f"   parse_scenario  : {r['parse']:8.2f} s (not counted)")
    print(f"   drsim.simulate  : {r['simulate']:8.2f} s   ({r['simulate'] / max(cycles, 1) * 1e6:.2f} us per cycle)")
    print(f"   results.summary : {r['summary']:8.2f} s")
    print(f"   total           : {total:8.2f} s   target < {SCALE_TIME_TARGET:g} s: "
          f"{'MET' if total < SCALE_TIME_TARGET else 'NOT MET'}"
          f" (simulate alone: {'MET' if r['simulate'] < SCALE_TIME_TARGET else 'NOT MET'})")
    gb = 1e9
    print(f"   peak RSS        : {r['rss_peak'] / gb:8.2f} GB   target < {SCALE_RSS_TARGET / gb:g} GB: "
          f"{'MET' if r['rss_peak'] < SCALE_RSS_TARGET else 'NOT MET'}"
          f"   (after imports {r['rss_start'] / gb:.2f} GB, after simulate {r['rss_after_simulate'] / gb:.2f} GB)")
    print(f"   site RPO        : mean {r['rpo_mean_s']:.1f} s, max {r['rpo_max_s']:.1f} s   "
          f"(subprocess wall incl. imports {wall:.1f} s)")
    print(f"   speed gauge     : bare SimPy model, 50 VMs x 1 day: {gauge_before:.1f} us per cycle before, "
          f"{gauge_after:.1f} after (a slower machine or other load shows here)")


def speed_gauge(args) -> float:
    """Wall time per cycle (us) of a small bare SimPy run: how fast this machine is just now."""
    gc.collect()
    b = run_bare(50, 1.0, args.rate, args.utilisation)
    return b["wall"] / max(b["cycles"], 1) * 1e6


# ----------------------------------------------------------------------------------------------------
# Profile


def part_profile(args) -> None:
    import drsim

    n, days = args.profile_vms, args.profile_days
    print(f"== Profile: drsim.simulate, {n} VMs x {days:g} days, top {args.profile_top} by tottime")
    scenario = drsim_scenario(n, days, args.rate, args.utilisation, args.phases)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    drsim.simulate(scenario)
    prof.disable()
    print(f"   wall under the profiler: {time.perf_counter() - t0:.2f} s")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(args.profile_top)
    print(buf.getvalue())


# ----------------------------------------------------------------------------------------------------


def revision(package_dir: str) -> str:
    """Git revision of the drsim being measured (its own directory), with a flag for uncommitted changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=package_dir, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=package_dir, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return f"{rev}{' + uncommitted changes in drsim/' if dirty else ''}" if rev else "not a git checkout"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--only", choices=["bare", "scale", "profile"], action="append",
                   help="run only this part (repeatable); default: bare and scale")
    p.add_argument("--bare-vms", type=int, default=100, help="VMs in part 1")
    p.add_argument("--bare-days", type=float, default=7.0, help="simulated days in part 1")
    p.add_argument("--repeat", type=int, default=1, help="part 1: runs of each model, the best is reported")
    p.add_argument("--scale-vms", type=int, default=1000, help="VMs in part 2")
    p.add_argument("--scale-days", type=float, default=30.0, help="simulated days in part 2")
    p.add_argument("--profile-vms", type=int, default=200, help="VMs in the profile")
    p.add_argument("--profile-days", type=float, default=7.0, help="simulated days in the profile")
    p.add_argument("--profile-top", type=int, default=30, help="profile entries shown")
    p.add_argument("--rate", type=float, default=50e3, help="mean churn per VM, bytes/s")
    p.add_argument("--utilisation", type=float, default=0.5, help="link utilisation by the churn (0..1)")
    p.add_argument("--phases", choices=["aligned", "spread"], default="aligned",
                   help="aligned: all VMs tick at the same instants (equal initial copies); spread: initial copies "
                        "of 1-100 MB end one by one, so ticks are scattered")
    p.add_argument("--_scale-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._scale_child:
        scale_child(args.scale_vms, args.scale_days, args.rate, args.utilisation, args.phases)
        return
    import drsim  # imported before any timing

    parts = args.only or ["bare", "scale"]
    package_dir = os.path.dirname(os.path.abspath(drsim.__file__))
    print(f"drsim {drsim.__version__} ({revision(package_dir)}) from {package_dir}, "
          f"simpy {simpy.__version__}, Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    if "bare" in parts:
        part_bare(args)
    if "scale" in parts:
        part_scale(args)
    if "profile" in parts:
        part_profile(args)


if __name__ == "__main__":
    main()
