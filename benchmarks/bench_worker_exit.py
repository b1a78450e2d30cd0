"""How long drsim's pool workers outlive a killed parent.

Starts a process that makes ``drsim.experiments.executors.process_pool(2)``, waits until both workers have run a
task, and gives each a 300 s task; then kills the parent (SIGKILL, then SIGTERM in another round) and measures
the time until both workers have exited. Prints one line per round; never fails. POSIX only (reads /proc on
Linux, else polls with signal 0).

    python benchmarks/bench_worker_exit.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

POOL = textwrap.dedent("""
    import os, time
    from drsim.experiments.executors import process_pool

    pool = process_pool(2)
    seen = set()
    while len(seen) < 2:
        seen.update(f.result(timeout=60) for f in [pool.submit(os.getpid) for _ in range(4)])
        seen &= set(pool._processes)
    busy = [pool.submit(time.sleep, 300) for _ in range(2)]
    print(*sorted(seen), flush=True)
    time.sleep(300)
""")


def gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for sig in (signal.SIGKILL, signal.SIGTERM):
        for _ in range(args.rounds):
            parent = subprocess.Popen([sys.executable, "-c", POOL], stdout=subprocess.PIPE, text=True)
            workers = [int(p) for p in parent.stdout.readline().split()]
            t0 = time.monotonic()
            parent.send_signal(sig)
            parent.wait()
            while not all(gone(p) for p in workers) and time.monotonic() - t0 < 60:
                time.sleep(0.005)
            left = [p for p in workers if not gone(p)]
            print(f"{sig.name}: workers exited {time.monotonic() - t0:.3f} s after the parent was killed"
                  if not left else f"{sig.name}: workers {left} still alive after 60 s")
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            parent.stdout.close()


if __name__ == "__main__":
    main()
