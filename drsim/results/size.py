"""How big a run will be, before it runs: cycles, rows per table and memory (:func:`run_size`).

``drsim run`` prints this before a long run, with what it keeps, so that a run of decades is never a surprise.
The figures are estimates:

* cycles: every protectable VM ticks once per interval for the whole duration (an upper bound: initial
  replication and outages tick without cycles);
* rows: ``transfers``, ``recovery_points`` and ``cycles`` about one per cycle, ``rpo`` and ``link`` about two;
  ``states``, ``health``, ``incidents`` and ``operations`` grow with events (failures, warnings), not cycles;
* memory: per cycle, the largest cost of a kept table plus a quarter of the others' (the tables are built one
  after another when written), at most 680 bytes per cycle for every table; measured on the office scenario over a
  year (transfers 425, recovery_points 425, cycles 512, rpo 538, link 324, all of them 682 bytes per cycle: peak
  resident memory of ``simulate`` then ``write_run``, measurement of this version); plus the write curves of VMs
  with a profile, weekend factor or variation (hourly breakpoints: about 100 bytes per VM-hour, three lists of
  Python floats) and about 130 MB for Python and the libraries.

Imports :mod:`drsim.results.running` and :mod:`drsim.scenario`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from drsim.results.running import recorder_tables
from drsim.scenario.document import Scenario
from drsim.scenario.site import protectable
from drsim.scenario.units import HOUR, format_duration

__all__ = ["RunSize", "run_size", "size_text", "PER_CYCLE", "LONG_RUN"]

#: measured bytes of peak memory per cycle when the table is kept (see the module docstring)
PER_CYCLE = {"transfers": 425.0, "recovery_points": 425.0, "cycles": 512.0, "rpo": 538.0, "link": 324.0}
ALL_TABLES = 682.0
ROWS_PER_CYCLE = {"transfers": 1.0, "recovery_points": 1.0, "cycles": 1.0, "rpo": 2.0, "link": 2.0}
BASE = 130e6  # bytes: Python, numpy, pandas, pyarrow
CURVE_PER_HOUR = 100.0  # bytes per VM-hour of a shaped write curve
LONG_RUN = 90 * 24 * HOUR  #: s: runs longer than this get their size printed


@dataclass(frozen=True)
class RunSize:
    """Estimated size of a run: ``cycles``; ``rows`` per kept table that grows with cycles; ``memory`` in bytes;
    the result tables ``kept``."""

    cycles: float
    rows: dict[str, float]
    memory: float
    kept: tuple[str, ...]
    all_memory: float  # with every table kept


def _memory(tables: Iterable[str], cycles: float) -> float:
    costs = sorted((PER_CYCLE[t] for t in tables if t in PER_CYCLE), reverse=True)
    if not costs:
        return 0.0
    return cycles * min(ALL_TABLES, costs[0] + 0.25 * sum(costs[1:]))


def run_size(scenario: Scenario, tables: Iterable[str] | None = None) -> RunSize:
    """The estimated size of a run of ``scenario`` keeping ``tables`` (None: all)."""
    _, _, kept = recorder_tables(tables)
    eligible = [vm for host, vm in scenario.vms() if protectable(host, vm)]
    cycles = len(eligible) * scenario.duration / scenario.replication.interval
    shaped = sum(1 for _, vm in scenario.vms() if vm.churn.trace is None and (
        vm.churn.profile is not None or vm.churn.weekend != 1.0 or vm.churn.variation > 0))
    fixed = BASE + shaped * scenario.duration / HOUR * CURVE_PER_HOUR
    rows = {t: cycles * ROWS_PER_CYCLE[t] for t in kept if t in ROWS_PER_CYCLE}
    return RunSize(cycles, rows, fixed + _memory(kept, cycles), kept, fixed + _memory(ROWS_PER_CYCLE, cycles))


def _bytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _count(n: float) -> str:
    return f"{n / 1e6:.1f} million" if n >= 1e6 else f"{n:,.0f}"


def size_text(size: RunSize, scenario: Scenario) -> str:
    """The lines ``drsim run`` prints before a long run."""
    rows = sum(size.rows.values())
    years = scenario.duration / (365 * 24 * HOUR)
    span = f"{years:.3g} years" if years >= 2 else format_duration(scenario.duration)
    lines = [f"{scenario.name}: {span} simulated: about {_count(size.cycles)} "
             f"replication cycles",
             f"keeping {', '.join(size.kept)}: "
             + (f"about {_count(rows)} rows of per-cycle tables, " if rows else "no per-cycle table, ")
             + f"about {_bytes(size.memory)} of memory"]
    if size.memory < size.all_memory * 0.8:
        lines.append(f"(every table would take about {_bytes(size.all_memory)}; the summary is computed as the run "
                     "goes, its RPO percentile to within 1 s)")
    elif size.all_memory > 2e9:
        lines.append("hint: --tables summary,incidents,operations,states keeps memory small (the summary is then "
                     "computed as the run goes)")
    return "\n".join(lines)
