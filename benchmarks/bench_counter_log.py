"""How long drsim takes to read a large performance-counter log and make a VM's churn trace from it.

    python benchmarks/bench_counter_log.py [--days 31] [--interval 15] [--columns 20]

writes a synthetic PDH-CSV log (the vendor's deployment planner samples every 15 s and profiles up to 31 days, so
the default is its largest: 178,561 rows) into a temporary folder, then times: reading it (decoding, parsing the
timestamps and the numbers), one VM's trace of 4 columns resampled to a minute, and the same with the log's time
zone given (every timestamp converted with zoneinfo). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from drsim.scenario.counters import counter_trace
from drsim.scenario.perfmon import read_counter_log


def write_log(path: Path, days: int, interval: int, columns: int) -> int:
    rows = days * 86400 // interval + 1
    rng = np.random.default_rng(1)
    names = [f"\\\\HV01\\Hyper-V Virtual Storage Device(D:-VMs-vm{j // 4}-disk{j % 4}.vhdx)\\Write Bytes/sec"
             for j in range(columns)]
    start = datetime(2026, 1, 5)
    with open(path, "w", encoding="ascii", newline="") as f:
        f.write(",".join(f'"{c}"' for c in ["(PDH-CSV 4.0) (W. Europe Standard Time)(-60)", *names]) + "\r\n")
        values = rng.lognormal(11, 1, size=(rows, columns))
        for i in range(rows):
            t = start + timedelta(seconds=interval * i)
            cells = [f"{t:%m/%d/%Y %H:%M:%S}.000", *(f"{v:.6f}" for v in values[i])]
            f.write(",".join(f'"{c}"' for c in cells) + "\r\n")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--interval", type=int, default=15, help="seconds between samples")
    parser.add_argument("--columns", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "counters.csv"
        rows = write_log(path, args.days, args.interval, args.columns)
        size = path.stat().st_size
        print(f"log: {rows:,} rows x {args.columns} columns, {size / 1e6:.1f} MB")
        t0 = time.perf_counter()
        log = read_counter_log(path)
        t1 = time.perf_counter()
        trace = counter_trace(str(path), [r"\\HV01\*(D:-VMs-vm0-*)\Write Bytes/sec"], step=60)
        t2 = time.perf_counter()
        read_counter_log(path, "Europe/Berlin")
        t3 = time.perf_counter()
        print(f"read: {t1 - t0:.2f} s ({rows / (t1 - t0):,.0f} rows/s); values {log.values.shape}")
        print(f"one VM's trace (4 columns, 1-minute step, {len(trace.bytes):,} steps): {t2 - t1:.2f} s")
        print(f"read with timezone Europe/Berlin: {t3 - t2:.2f} s")


if __name__ == "__main__":
    main()
