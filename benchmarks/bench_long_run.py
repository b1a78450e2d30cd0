"""A long run in bounded memory: the bundled office scenario (with its failures, maintenance and drill) over many
years, keeping only the summary, incidents, operations and states (``drsim run --tables``).

Prints the run's size estimate (what ``drsim run`` prints before a long run), the peak resident memory of the
process (``ru_maxrss``, after writing the run folder), the wall time, and the summary's site row. The target is
50 years under 1 GB.

    python benchmarks/bench_long_run.py            # 50 years (several minutes)
    python benchmarks/bench_long_run.py 2y         # a shorter horizon
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import drsim
from drsim.results.folders import write_run
from drsim.results.size import run_size, size_text
from drsim.scenario.units import parse_duration

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "essentials-office.yaml"
TABLES = ("summary", "incidents", "operations", "states")


def main() -> None:
    parser = argparse.ArgumentParser(description="A long run of the office scenario in bounded memory.")
    parser.add_argument("horizon", nargs="?", default="50y", help="simulated time, e.g. 2y or 50y [50y]")
    horizon = parser.parse_args().horizon
    scenario = drsim.load_scenario(SCENARIO)
    scenario = scenario.model_copy(update={"duration": parse_duration(horizon)})
    print(size_text(run_size(scenario, TABLES), scenario))
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    results = drsim.simulate(scenario, tables=TABLES)
    site = results.summary.iloc[-1]
    simulated = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as out:
        folder = write_run(results, out)
        files = sorted(p.name for p in folder.iterdir())
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"horizon {horizon}: simulated in {simulated:.1f} s, written in {wall - simulated:.1f} s; "
          f"peak resident memory {peak:.0f} MB (the process held {start_rss:.0f} MB before the run)")
    print(f"files: {', '.join(files)}")
    print(f"site: cycles {site['cycles_sent'] + site['cycles_missed']:,}, RPO mean {site['rpo_mean_s']:.1f} s, "
          f"p95 {site['rpo_p95_s']:.1f} s, max {site['rpo_max_s']:.0f} s, over target {site['rpo_over_target']:.4%}, "
          f"availability {site['availability']:.5%}, incidents {site['incidents']}")
    print("target: under 1024 MB:", "met" if peak < 1024 else "NOT met")


if __name__ == "__main__":
    main()
