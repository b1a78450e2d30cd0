"""Throughput of experiments: replications per second of a scenario on one worker, on a process pool and on a
local Dask cluster, and the speed-up. Prints figures; never fails (no asserts).

    python benchmarks/bench_experiment.py                      # essentials-office, 24 replications, 3 rounds
    python benchmarks/bench_experiment.py -n 48 --rounds 5     # more replications and rounds
    python benchmarks/bench_experiment.py --only local         # skip Dask
    python benchmarks/bench_experiment.py --workers 4          # a bigger machine

Every configuration runs the same replications (same seeds): the tables are checked to be identical, so the
figures compare the same work. Wall times include starting the pool or cluster, as a user sees them; the
time to the first result (pool start-up and the first task) is shown apart. The configurations run in turn, in
rounds; rounds in which other programs used the CPU are left out of the medians.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import drsim
except ImportError:  # not installed: the checkout this script is in
    sys.path.insert(0, str(ROOT))
    import drsim

import pandas as pd  # noqa: E402

from drsim.experiments.runner import run_experiment  # noqa: E402


def _revision() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _busy_seconds() -> float | None:
    """CPU seconds used on the whole machine so far (Linux /proc/stat), None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(make, scenario, n: int, seed: int, batch_size: int | None):
    """(wall seconds, seconds to the first finished run, experiment, CPU seconds used meanwhile by other programs)
    of one experiment on ``make()``'s executor, including its start-up and shutdown. Other programs' CPU is the
    machine's busy time minus this process's and its children's (worker processes of a Dask LocalCluster are
    not children of this process, so with Dask it includes them)."""
    first: list[float] = []
    busy0, own0 = _busy_seconds(), _own_seconds()
    t0 = time.perf_counter()
    executor, close = make()
    try:
        exp = run_experiment(scenario, replications=n, seed=seed, executor=executor, batch_size=batch_size,
                             progress=lambda done, total: first or first.append(time.perf_counter() - t0))
    finally:
        close()
    wall = time.perf_counter() - t0
    busy1 = _busy_seconds()
    others = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - (_own_seconds() - own0))
    return wall, first[0], exp, others


def _thread1():
    pool = ThreadPoolExecutor(1)
    return pool, pool.shutdown


def _processes(workers: int):
    def make():
        pool = ProcessPoolExecutor(workers)
        return pool, pool.shutdown
    return make


def _dask(workers: int):
    def make():
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)

        def close():
            client.close()
            cluster.close()
        return client, close
    return make


def _simulate_batch(scenario, seeds: list[int]) -> int:
    for seed in seeds:
        _ = drsim.simulate(scenario, seed=seed).summary
    return len(seeds)


def _bare(scenario, n: int, seed: int, workers: int, batch: int) -> tuple[float, float | None]:
    """Wall seconds and other programs' CPU seconds of the same runs on a bare process pool (drsim.simulate in
    batches, no experiment runner): the machine's own scaling, to tell drsim's overhead from the hardware's."""
    from drsim.experiments.seeds import replication_seed

    seeds = [replication_seed(seed, k) for k in range(n)]
    busy0, own0 = _busy_seconds(), _own_seconds()
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        done = sum(pool.map(_simulate_batch, [scenario] * len(range(0, n, batch)),
                            [seeds[i:i + batch] for i in range(0, n, batch)]))
    wall = time.perf_counter() - t0
    busy1 = _busy_seconds()
    assert done == n
    others = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - (_own_seconds() - own0))
    return wall, others


QUIET = 0.05  #: a round counts when other programs used at most this share of a core in each of its measurements


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "essentials-office.yaml"))
    ap.add_argument("-n", "--replications", type=int, default=24, help="replications per configuration [24]")
    ap.add_argument("--workers", type=int, default=2, help="workers of the pool and the cluster [2]")
    ap.add_argument("--batch-size", type=int, default=None, help="runs per task [automatic]")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; each runs every configuration once, in turn; medians are shown [3]")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=["local", "dask"], action="append",
                    help="run only these parts (repeatable) [local and dask]")
    args = ap.parse_args()
    parts = args.only or ["local", "dask"]

    scenario = drsim.load_scenario(args.scenario)
    print(f"drsim {drsim.__version__} ({drsim.__file__}), git {_revision()}; Python {platform.python_version()}, "
          f"{os.cpu_count()} cores")
    t0 = time.perf_counter()
    _ = drsim.simulate(scenario, seed=args.seed).summary
    print(f"{scenario.name}: one run in {time.perf_counter() - t0:.2f} s in this process; {args.replications} "
          f"replications per configuration, {args.rounds} rounds\n")

    names = ["1 worker (in process)"]
    if "local" in parts:
        names += [f"{args.workers} worker processes", f"{args.workers} processes, bare pool"]
    if "dask" in parts:
        names.append(f"Dask LocalCluster, {args.workers} processes")
    makers = {names[0]: _thread1}
    if "local" in parts:
        makers[names[1]] = _processes(args.workers)
    if "dask" in parts:
        makers[names[-1]] = _dask(args.workers)

    rounds: list[dict[str, tuple]] = []  # per round, per configuration: (wall, first, batch, tables, other load)
    ref = None
    for _ in range(args.rounds):
        got: dict[str, tuple] = {}
        for name in names:
            if name in makers:
                wall, first, exp, others = _timed(makers[name], scenario, args.replications, args.seed,
                                                  args.batch_size)
                ref = exp if ref is None else ref
                got[name] = (wall, first, exp.batch_size, _compare(exp.tidy, ref.tidy), others)
            else:  # the bare pool, in the runner's batches
                batch = got[names[1]][2]
                wall, others = _bare(scenario, args.replications, args.seed, args.workers, batch)
                got[name] = (wall, math.nan, batch, "- (drsim.simulate only)", others)
        rounds.append(got)

    def load(r: dict[str, tuple]) -> float:
        return max((m[4] / m[0] if m[4] is not None else 0.0) for m in r.values())

    quiet = [r for r in rounds if load(r) <= QUIET]
    used = quiet or rounds
    print(f"{len(quiet)} of {len(rounds)} rounds quiet (other programs at most {QUIET:.0%} of a core); medians over "
          + ("those" if quiet else "all rounds: NOT MEANINGFUL, rerun when the machine is idle"))
    print(f"{'configuration':<34} {'wall':>8} {'first result':>13} {'runs/s':>7} {'speed-up':>9} {'after start':>12} "
          f"{'batch':>6}  tables")
    speeds = {}
    for name in names:
        walls = [r[name][0] for r in used]
        wall = _median(walls)
        first = _median([r[name][1] for r in used])
        batch = used[0][name][2]
        speed = _median([r[names[0]][0] / r[name][0] for r in used])
        speeds[name] = speed
        steady = (args.replications - batch) / (wall - first) if wall > first and args.replications > batch \
            else math.nan
        first_text = "-" if math.isnan(first) else f"{first:.2f}s"
        steady_text = "-" if math.isnan(steady) else f"{steady:.2f}/s"
        tables = sorted({r[name][3] for r in used})
        print(f"{name:<34} {wall:7.2f}s {first_text:>13} {args.replications / wall:7.2f} {speed:8.2f}x "
              f"{steady_text:>12} {batch:6d}  {'; '.join(tables)}")
    if len(names) > 1:
        each = ", ".join(f"{r[names[0]][0] / r[names[1]][0]:.2f}x" for r in used)
        print(f"\nspeed-up of {names[1]} over 1 worker: {speeds[names[1]]:.2f}x, median of {each} (target >= 1.8x: "
              f"{'met' if speeds[names[1]] >= 1.8 else 'not met'})"
              + (f"; the bare pool: {speeds[names[2]]:.2f}x" if "local" in parts else ""))
    print("speed-up: the median over rounds of the one-worker wall time over this one, in the same round (the "
          "machine's speed drifts between rounds).\nfirst result: wall time until the first task returned (pool or "
          "cluster start-up and one batch); after start: runs per second from then on.\nbare pool: the same runs on "
          "a plain ProcessPoolExecutor without the experiment runner (the machine's own scaling).")


def _median(values: list[float]) -> float:
    values = sorted(v for v in values if not math.isnan(v))
    if not values:
        return math.nan
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _compare(tidy: pd.DataFrame, ref: pd.DataFrame) -> str:
    """'identical' (bit for bit), or which columns differ and by how much."""
    if tidy.equals(ref):
        return "identical"
    if list(tidy.columns) != list(ref.columns) or len(tidy) != len(ref):
        return "DIFFERENT SHAPE"
    out = []
    for col in tidy.columns:
        if not tidy[col].equals(ref[col]):
            a, b = tidy[col], ref[col]
            if pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
                rel = ((a - b).abs() / b.abs().where(b != 0, 1.0)).max()
                out.append(f"{col} (relative {rel:.1e})")
            else:
                out.append(col)
    return "differ: " + ", ".join(out)


if __name__ == "__main__":  # needed: process pools and Dask workers start by importing this module
    main()
