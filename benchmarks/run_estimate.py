"""How close the run-size estimate is to what a run takes: events, table rows, peak memory and time.

For the bundled scenarios and a few variants of a small one (failures, drills, a throttle, hourly profiles, a
trace), prints ``drsim.model.estimate.estimate_run`` beside the measured SimPy events (the environment's event
counter), the rows of every table the run produces, the peak memory of the run's own data (tracemalloc, while
the run and its result tables are built) and the wall time. It never fails; read the ratios.

    python benchmarks/run_estimate.py            # everything (about a minute)
    python benchmarks/run_estimate.py base drills  # some variants only (names in the first column)

The constants of drsim.model.estimate are taken from these figures, rounded up.
"""

from __future__ import annotations

import copy
import sys
import time
import tracemalloc
from pathlib import Path

from drsim.model.estimate import estimate_run
from drsim.model.site import SiteModel
from drsim.results.tables import TABLES, Results
from drsim.scenario.loading import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
BASE = {"name": "c", "duration": "30d", "seed": 1,
        "site": {"hosts": [{"name": "H1", "vms": [{"name": "vm1", "disks": ["10GB"], "churn": {"rate": "100kB/s"}}]}]},
        "link": {"upload": "20Mbit/s", "download": "80Mbit/s"}}


def variant(**changes) -> dict:
    d = copy.deepcopy(BASE)
    for key, value in changes.items():
        if key == "vms":
            d["site"]["hosts"][0]["vms"] = [{"name": f"vm{i}", "disks": ["10GB"], "churn": {"rate": "100kB/s"}}
                                            for i in range(value)]
        elif key == "churn":
            for vm in d["site"]["hosts"][0]["vms"]:
                vm["churn"] = value
        else:
            d[key] = value
    return d


def scenarios():
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        yield path.stem, load_scenario(path)
    variants = {
        "base": variant(),
        "vms10": variant(vms=10),
        "interval30s": variant(replication={"interval": "30s"}),
        "drills1h": variant(vms=5, duration="3d", drills=[{"vms": "all", "every": "1h"}]),
        "vmfail5min": variant(vms=5, duration="3d", failures=[{"kind": "vm", "target": "all", "every": "1m"}]),
        "hostfail": variant(vms=3, failures=[{"kind": "host", "target": "all", "every": "5d", "repair": "4h"}]),
        "linkfail": variant(failures=[{"kind": "link", "every": "2d"}]),
        "corruption": variant(failures=[{"kind": "corruption", "target": "all", "every": "5d"}]),
        "throttle": variant(link={"upload": "20Mbit/s", "download": "80Mbit/s",
                                  "throttle": {"work_limit": "5Mbit/s"}}),
        "profile": variant(vms=10, churn={"rate": "100kB/s", "profile": "office", "variation": 0.5}),
    }
    for name, data in variants.items():
        yield name, parse_scenario(data)


def main(only: list[str]) -> None:
    print(f"{'scenario':18s} {'events':>9s} {'est.':>9s} {'ratio':>6s} {'rows':>9s} {'est.':>9s} {'ratio':>6s} "
          f"{'peak MB':>8s} {'est.':>8s} {'ratio':>6s} {'time s':>7s} {'events/s':>9s}")
    for name, s in scenarios():
        if only and name not in only:
            continue
        est = estimate_run(s)
        tracemalloc.start()
        model = SiteModel(s)
        model.run()
        results = Results(model)
        rows = sum(len(getattr(results, t)) for t in TABLES)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        events = next(model.env._eid)  # SimPy's event counter: every event scheduled so far
        t0 = time.perf_counter()
        SiteModel(s).run()  # again, without tracemalloc, for the speed
        elapsed = time.perf_counter() - t0
        print(f"{name:18s} {events:9d} {est.events:9.0f} {est.events / events:6.2f} {rows:9d} {est.rows:9.0f} "
              f"{est.rows / max(rows, 1):6.2f} {peak / 2**20:8.1f} {est.bytes / 2**20:8.1f} "
              f"{est.bytes / peak:6.2f} {elapsed:7.2f} {events / elapsed:9.0f}")
    print("est. = drsim.model.estimate.estimate_run; ratio = estimate / measured; time and events/s: the model's "
          "run alone, without tracemalloc")


if __name__ == "__main__":
    main(sys.argv[1:])
