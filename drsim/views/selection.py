"""Which VMs or incidents a figure shows when they do not all fit: ranked by what matters (never protected,
incidents, downtime, health, time above the RPO target; the longest outages), with a note for the figure that
says how many are shown, how they were chosen and what the ones left out are like ("30 of 300 VMs shown, the
worst first ...; 270 left out, none of them with an incident ...").

:func:`vm_facts` gathers per VM what the rankings use; :func:`choose` cuts a ranked list and writes the note.
Imports numpy, pandas, :mod:`drsim.scenario.units`, :mod:`drsim.results.tables` and :mod:`drsim.views.curves`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from drsim.scenario.units import format_duration
from drsim.views.curves import steady_pieces

if TYPE_CHECKING:
    from drsim.results.tables import Results

__all__ = ["Choice", "choose", "vm_facts", "timeline_choice", "rpo_choice", "initial_choice", "incident_choice",
           "vms_left_out"]


@dataclass(frozen=True)
class Choice:
    """What a figure shows: ``shown`` in rank order (worst first), and ``note`` ("" when nothing is left out)."""

    shown: list
    note: str

    def title(self, width: int = 150) -> str:
        """The note as lines of at most ``width`` characters after a line break, to append to a title ("" when
        nothing is left out)."""
        return "\n" + textwrap.fill(self.note, width) if self.note else ""

    def ordered(self, original: Sequence) -> list:
        """The shown ones in rank order when some are left out (the note says how they were ranked), else in
        the ``original`` order (a small site's figure keeps the scenario's order)."""
        if self.note:
            return list(self.shown)
        keep = set(self.shown)
        return [x for x in original if x in keep]


def choose(ranked: Sequence, limit: int, what: str, criterion: str,
           left_out: Callable[[list], str] | None = None) -> Choice:
    """The first ``limit`` of ``ranked`` and a note "N of M {what} shown, {criterion}; K left out{left_out(rest)}"
    when some are left out (``left_out`` describes the rest, e.g. ", none of them with an incident")."""
    if limit < 1:
        raise ValueError(f"the number of {what} shown must be at least 1, got {limit}")
    ranked = list(ranked)
    shown, rest = ranked[:limit], ranked[limit:]
    if not rest:
        return Choice(shown, "")
    detail = left_out(rest) if left_out is not None else ""
    return Choice(shown, f"{len(shown)} of {len(ranked)} {what} shown, {criterion}; {len(rest)} left out{detail}")


def vm_facts(results: Results) -> pd.DataFrame:
    """Per VM (scenario order): ``never_protected`` (could be protected, never was), ``unsupported``, ``incidents`` (any
    kind), ``downtime_s``, ``health`` (worst reached: 0 normal, 1 warning, 2 critical), ``unhealthy_s`` (seconds in
    warning or critical), ``over_s`` (seconds above the RPO target after start-up: each stretch of the RPO curve counted
    from the moment the VM caught up, :func:`~drsim.views.curves.steady_pieces`) and ``steady_max_s`` (the highest RPO
    after start-up; NaN without one)."""
    names = [vm.name for _, vm in results.scenario.vms()]
    summary = results.summary.set_index("vm")
    st = results.states
    unsupported = set(st.loc[st["state"] == "unsupported", "vm"].astype(str))
    facts = pd.DataFrame(index=pd.Index(names, name="vm"))
    facts["unsupported"] = [n in unsupported for n in names]
    facts["never_protected"] = ~summary.loc[names, "protected"].astype(bool).to_numpy() & ~facts["unsupported"]
    facts["incidents"] = results.incidents["vm"].astype(str).value_counts().reindex(names, fill_value=0)
    facts["downtime_s"] = summary.loc[names, "downtime_s"].astype(float).fillna(0.0).to_numpy()
    he = results.health
    level = he["health"].astype(str).map({"normal": 0, "warning": 1, "critical": 2}).fillna(0).astype(int)
    vm = he["vm"].astype(str)
    facts["health"] = level.groupby(vm).max().reindex(names, fill_value=0)
    bad = level > 0
    facts["unhealthy_s"] = (he["end"] - he["start"])[bad].groupby(vm[bad]).sum().reindex(names, fill_value=0.0)
    over, peak = _steady_rpo(results)
    facts["over_s"] = over.reindex(names, fill_value=0.0)
    facts["steady_max_s"] = peak.reindex(names)
    return facts


def _steady_rpo(results: Results) -> tuple[pd.Series, pd.Series]:
    """Per VM: seconds above the RPO target and the highest RPO, both after start-up."""
    rpo = results.rpo
    target = float(results.scenario.objectives.rpo)
    times, values = rpo["time"].to_numpy(), rpo["rpo"].to_numpy()
    codes = rpo["vm"].cat.codes.to_numpy()[0::2]
    categories = list(rpo["vm"].cat.categories)
    steady = np.zeros(len(codes), dtype=bool)
    bounds = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):  # one VM's pieces at a time (sorted by VM)
        steady[a:b] = steady_pieces(times[2 * a:2 * b], values[2 * a:2 * b], target)
    r0, r1 = values[0::2][steady], values[1::2][steady]
    vm = pd.Categorical.from_codes(codes[steady], categories=categories)
    over = pd.Series(np.clip(r1 - np.maximum(r0, target), 0.0, None)).groupby(vm, observed=True).sum()
    peak = pd.Series(r1).groupby(vm, observed=True).max()
    over.index, peak.index = over.index.astype(str), peak.index.astype(str)
    return over, peak


def vms_left_out(facts: pd.DataFrame) -> Callable[[list[str]], str]:
    """A describer of left-out VMs for :func:`choose`: their names when three or fewer, else how many of them
    were never protected, had an incident, went into warning health or above the RPO target after start-up,
    and their highest RPO after start-up."""

    def describe(names: list[str]) -> str:
        if len(names) <= 3:
            return ": " + ", ".join(names)
        f = facts.loc[names]
        counts = [(int(f["never_protected"].sum()), "never protected"), (int(f["unsupported"].sum()), "unsupported"),
                  (int((f["incidents"] > 0).sum()), "with an incident"),
                  (int((f["health"] > 0).sum()), "in warning or critical health"),
                  (int((f["over_s"] > 0).sum()), "above the RPO target after start-up")]
        said = [f"{n} {what}" for n, what in counts if n]
        text = (", of them " + ", ".join(said) if said else
                ", none of them never protected, with an incident, in warning health or above the RPO target after "
                "start-up")
        peak = f["steady_max_s"].max()
        if np.isfinite(peak):
            text += f"; their highest RPO after start-up {format_duration(float(peak))}"
        return text

    return describe


def timeline_choice(results: Results, limit: int, facts: pd.DataFrame | None = None) -> Choice:
    """VMs for the protection timeline, the worst first: never protected, unsupported, then by incidents,
    downtime, worst health and its duration, time above the RPO target after start-up; ties in scenario
    order."""
    f = vm_facts(results) if facts is None else facts
    order = np.lexsort((np.arange(len(f)), -f["over_s"].to_numpy(), -f["unhealthy_s"].to_numpy(),
                        -f["health"].to_numpy(), -f["downtime_s"].to_numpy(), -f["incidents"].to_numpy(),
                        ~f["unsupported"].to_numpy(), ~f["never_protected"].to_numpy()))
    ranked = [f.index[i] for i in order]
    return choose(ranked, limit, "VMs", "the worst (never protected, incidents, downtime, health, time above the "
                  "RPO target)", vms_left_out(f))


def rpo_choice(results: Results, candidates: Sequence[str], limit: int,
               facts: pd.DataFrame | None = None) -> Choice:
    """VMs for the RPO figure among ``candidates``: the most time above the RPO target after start-up first, then
    the most incidents (a VM hit by a failure has gaps and restarts in its curve), then the highest RPO after
    start-up; ties in scenario order."""
    f = (vm_facts(results) if facts is None else facts).loc[list(candidates)]
    order = np.lexsort((np.arange(len(f)), -f["steady_max_s"].fillna(-1).to_numpy(), -f["incidents"].to_numpy(),
                        -f["over_s"].to_numpy()))
    ranked = [f.index[i] for i in order]
    return choose(ranked, limit, "VMs", "the worst first (time above the RPO target after start-up, incidents, "
                  "peak RPO)", vms_left_out(f))


def initial_choice(protected_at: pd.Series, candidates: Sequence[str], limit: int,
                   when: Callable[[float], str] = lambda s: "t = " + format_duration(s)) -> Choice:
    """VMs for the initial-replication panel: never protected first, then the last protected (``protected_at``:
    seconds, by VM name; ``when`` writes a time for the note)."""
    at = [float(protected_at.get(n, np.nan)) for n in candidates]
    order = sorted(range(len(candidates)), key=lambda i: (not np.isnan(at[i]), -at[i] if not np.isnan(at[i]) else 0,
                                                          i))
    ranked = [candidates[i] for i in order]

    def describe(rest: list[str]) -> str:
        if len(rest) <= 3:
            return ": " + ", ".join(rest)
        done = [float(protected_at[n]) for n in rest if n in protected_at.index and not np.isnan(protected_at[n])]
        return f", each protected by {when(max(done))}" if len(done) == len(rest) else ""

    return choose(ranked, limit, "VMs", "the last to be protected first", describe)


def incident_choice(incidents: pd.DataFrame, limit: int) -> Choice:
    """Incidents (row positions of ``incidents``) for the waterfall: those never restored first, then by RTO and
    data loss, the longest first; ties in time order. The note gives the left-out ones' longest RTO and data
    loss."""
    rto = incidents["rto_s"].to_numpy(dtype=float)
    loss = incidents["data_loss_s"].to_numpy(dtype=float)
    restored = incidents["service_restored_at"].notna().to_numpy()
    order = np.lexsort((np.arange(len(incidents)), -np.nan_to_num(loss, nan=-1.0),
                        -np.nan_to_num(rto, nan=np.inf), restored))
    ranked = [int(i) for i in order]

    def describe(rest: list[int]) -> str:
        r, d = rto[rest], loss[rest]
        parts = []
        if np.isfinite(r).any():
            parts.append(f"RTO at most {format_duration(float(np.nanmax(r)))}")
        if np.isfinite(d).any():
            parts.append(f"data loss at most {format_duration(float(np.nanmax(d)))}")
        return (" (" + ", ".join(parts) + ")") if parts else ""

    return choose(ranked, limit, "incidents", "the longest outages first (not restored, then by RTO)", describe)
