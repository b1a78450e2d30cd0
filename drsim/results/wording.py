"""The words of a run's summaries: counts (``3 VMs``), plain-text tables, times on the calendar, what caused an
incident and one plain line per incident. :mod:`drsim.results.findings` and the reports build on them.

Imports pandas, :mod:`drsim.results.tables` and :mod:`drsim.scenario.units`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from drsim.results.tables import Results
from drsim.scenario import units
from drsim.scenario.quoting import printable

__all__ = ["count", "text_table", "names_text", "incident_lines", "when", "when_short", "cause"]


def count(n: int, noun: str) -> str:
    """``count(1, 'VM')`` -> ``'1 VM'``; ``count(2, 'VM')`` -> ``'2 VMs'``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def names_text(names: Sequence[str], limit: int = 4) -> str:
    """``a, b, c`` or ``a, b, c, d and 5 more``."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def text_table(header: tuple, rows: list[tuple], left: int = 1) -> list[str]:
    """A plain-text table: the header, a rule and the rows, columns as wide as their widest cell; the first
    ``left`` columns aligned left, the others right."""
    header, rows = tuple(printable(x) for x in header), [tuple(printable(x) for x in row) for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def fmt(row: tuple) -> str:
        return "  ".join(str(x).ljust(w) if i < left else str(x).rjust(w)
                         for i, (x, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    return [fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def when(results: Results, t: float) -> str:
    """A time from t = 0 as a duration, with its calendar time when the scenario has a start."""
    text = units.format_duration(t)
    if results.scenario.start is not None and math.isfinite(t):
        stamp = pd.Timestamp(results.scenario.start) + pd.Timedelta(seconds=t)
        text += f" ({stamp:%a %d %b %H:%M})"
    return text


def when_short(results: Results, t: float) -> str:
    """``on day 10 09:12`` (calendar: ``on Wed 18 Mar 09:12``)."""
    if not math.isfinite(t):
        return "-"
    if results.scenario.start is not None:
        stamp = pd.Timestamp(results.scenario.start) + pd.Timedelta(seconds=t)
        return f"on {stamp:%a %d %b %H:%M}"
    day, rest = divmod(t, 86400.0)
    return f"on day {int(day)} {int(rest // 3600):02d}:{int(rest % 3600 // 60):02d}"


def cause(results: Results, inc: pd.Series) -> str:
    """What started an incident, in words: ``host RAM-H1-7 failed on Wed 18 Mar 09:12``."""
    s = results.scenario
    host = next((h.name for h, vm in s.vms() if vm.name == inc["vm"]), "?")
    at = when_short(results, inc["failed_at"])
    return {
        "host": f"host {host} failed {at}",
        "site": f"the site went down {at}",
        "vm": f"the VM crashed {at}",
        "corruption": f"its data was corrupted {at}, noticed {when_short(results, inc['detected_at'])}",
        "maintenance": f"planned maintenance of host {host} {at}",
        "plan": f"moved by its recovery plan {at}",
    }.get(inc["kind"], f"{inc['kind']} failure {at}")


def incident_lines(results: Results, incidents: pd.DataFrame | None = None) -> list[str]:
    """One plain-language line per incident (of ``incidents``, default all), in time order."""
    out = []
    fmt = units.format_duration
    for _, inc in (results.incidents if incidents is None else incidents).iterrows():
        text = f"{inc['vm']}: {cause(results, inc)}; "
        outcome = inc["outcome"]
        if outcome.startswith(("failed over", "planned failover")):
            age = ("no data lost" if inc["data_loss_s"] == 0
                   else f"from a point {fmt(inc['data_loss_s'])} old")
            text += f"failed over to the cloud ({age}); service back after {fmt(inc['rto_s'])}"
            if math.isfinite(inc["failback_done_at"]):
                text += f"; failed back {when_short(results, inc['failback_done_at'])}"
            else:
                text += "; still in the cloud at the end"
            if "(" in outcome:  # what the outcome notes (no app-consistent point, final sync interrupted)
                text += "; " + outcome[outcome.index("(") + 1:outcome.rindex(")")]
        elif outcome == "waited for repair" or outcome == "down for maintenance":
            text += f"no failover; back on-premises after {fmt(inc['rto_s'])}"
        elif outcome == "restored from the cloud":
            text += (f"disks lost; restored from a recovery point {fmt(inc['data_loss_s'])} old; back after "
                     f"{fmt(inc['rto_s'])}")
        elif outcome.startswith("unrecoverable"):
            text += outcome.upper().split(":")[0] + ":" + outcome.split(":", 1)[1]
            if math.isnan(inc["service_restored_at"]):
                text += f"; its data is lost and it is down to the end of the run ({fmt(inc['downtime_s'])})"
        else:
            text += outcome
        out.append(text + ".")
    return out
