"""The executive summary of a run's report in plain words: headline sentences on protection, the RPO with the
bandwidth, the hours when the target is missed most, each incident event (at most four; the rest are in the
Incidents section), the RTO objective and drills.

Imports :mod:`drsim.results` (findings' causes and counts, tables), :mod:`drsim.scenario.units` and the
report modules it builds on (:mod:`drsim.views.rendering`, :mod:`drsim.views.run_tables`,
:mod:`drsim.views.rpo_hours`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from drsim.results.findings import _cause, count, protected_after, saturation
from drsim.results.tables import PLANNED_KINDS, Results
from drsim.scenario import units
from drsim.scenario.site import protectable
from drsim.views.rendering import is_missing, percent
from drsim.views.rpo_hours import busy_hours
from drsim.views.run_tables import vm_rows

__all__ = ["lead_sentences"]

_fmt = units.format_duration
_MAX_EVENTS = 4  # incident events told in the executive summary; the rest are in the Incidents section


def _names(names: Sequence[str], limit: int = 4) -> str:
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def lead_sentences(results: Results, hours: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """Headline sentences: protection, RPO with the bandwidth, when it is missed, incidents, objectives, drills."""
    s = results.scenario
    vms, site = vm_rows(results)
    out: list[str] = []
    eligible = [vm.name for host, vm in s.vms() if protectable(host, vm)]
    protected = vms[vms["protected"] & vms["vm"].isin(eligible)]
    if eligible and len(protected) == len(eligible):
        n = len(eligible)
        who = {1: "The only protectable VM is", 2: "Both protectable VMs are"}.get(n, f"All {n} protectable VMs are")
        after = protected_after(results, site["protected_at"])
        start = " from the start of protection (replication.initial.start)" if after != site["protected_at"] else ""
        out.append(f"{who} protected after {_fmt(after)}{start}.")
    elif eligible:
        missing = [n for n in eligible if n not in set(protected["vm"])]
        out.append(f"{len(protected)} of {count(len(eligible), 'protectable VM')} are protected by the end of the "
                   f"run; not protected: {_names(missing)}.")
    else:
        out.append("No VM can be protected in this scenario.")

    target = _fmt(s.objectives.rpo)
    if len(protected) and not is_missing(site["rpo_steady_over_target"]):
        ratio = saturation(results)
        link = f"With {units.format_rate(s.link.upload)} up"
        if ratio >= 1:
            link += f" (a saturated link: churn is {ratio:.0%} of its mean capacity)"
        text = (f"{link}, the {target} RPO target is met {percent(max(0.0, 1 - site['rpo_steady_over_target']))} "
                "of the time after start-up")
        worst = vms[vms["protected"] & (vms["rpo_steady_over_target"] > 0.01)].sort_values("rpo_steady_over_target",
                                                                                          ascending=False)
        if len(worst):
            parts = [f"{r['vm']} exceeds it {percent(r['rpo_steady_over_target'])} of the time"
                     for _, r in worst.head(2).iterrows()]
            if len(worst) > 2:
                parts.append(f"{count(len(worst) - 2, 'other VM')} more than 1 %")
            text += "; " + ", ".join(parts)
        out.append(text + ".")
        name = str(worst.iloc[0]["vm"]) if len(worst) else None
        b = busy_hours(*hours[name]) if name in hours else None
        overall = hours[name][0].sum() / hours[name][1].sum() if b is not None else math.nan
        # worth a sentence only when concentrated: a part of the day holding much of it, missed more often then
        if b is not None and b.share >= 0.25 and b.last_hour - b.first_hour <= 12 and b.rate >= 1.5 * overall:
            out.append(f"{name} misses it most on {b.text}: {percent(b.share, 0)} of its time over the target falls "
                       f"in those hours, when it is over the target {percent(b.rate, 0)} of the time.")
    out.extend(_incident_sentences(results))
    if int(site["drills"]):
        out.append(f"{count(int(site['drills']), 'test failover')} (drills) measured an RTO of "
                   f"{_fmt(site['drill_rto_mean_s'])} on average.")
    return out


def _incident_sentences(results: Results) -> list[str]:
    s = results.scenario
    inc = results.incidents
    unplanned = inc[~inc["kind"].isin(PLANNED_KINDS)]
    planned = inc[inc["kind"].isin(PLANNED_KINDS)]
    out: list[str] = []
    if not len(inc):
        out.append("No failure hit a VM in this run." if s.failures else "No failures were simulated in this run.")
        return out
    events = list(unplanned.groupby(["kind", "failed_at"], sort=False))
    for (kind, _), g in events[:_MAX_EVENTS]:
        first = g.iloc[0]
        cause = _cause(results, first)
        head = _sentence(cause) if kind in ("host", "site") else f"{first['vm']}: {cause}"
        if len(g) > 1:
            head += f" ({count(len(g), 'VM')})"
        n = len(g)
        parts = []
        lost = g["data_loss_s"]
        if lost.notna().any():
            worst = float(lost.max())
            amount = "no data" if worst == 0 else f"{'up to ' if n > 1 else ''}{_fmt(worst)} of data"
            parts.append(f"it cost {amount}")
        back = g["rto_s"]
        if back.notna().any():
            parts.append(f"service was back {'within' if n > 1 else 'after'} {_fmt(float(back.max()))}")
        unrec = g["outcome"].astype(str).str.startswith("unrecoverable")
        if unrec.any():
            parts.append(f"{_names(g.loc[unrec, 'vm'])} could not be recovered")
        open_ = back.isna() & ~unrec
        if open_.any():
            parts.append(f"{_names(g.loc[open_, 'vm'])} not back by the end of the run")
        out.append(head + ": " + "; ".join(parts) + ".")
    if len(events) > _MAX_EVENTS:
        rest = sum(len(g) for _, g in events[_MAX_EVENTS:])
        out.append(f"{count(rest, 'more unplanned incident')} are listed under Incidents.")
    if len(unplanned):
        rto = s.objectives.rto
        late = unplanned[~(unplanned["rto_s"] <= rto)]
        if not len(late):
            out.append(f"The {_fmt(rto)} RTO target was met in every unplanned incident.")
        else:
            out.append(f"The {_fmt(rto)} RTO target was missed in {len(late)} of "
                       f"{count(len(unplanned), 'unplanned incident')} ({_names(late['vm'].unique())}).")
    for _, g in planned.groupby(["kind", "failed_at"], sort=False):
        what = _sentence(_cause(results, g.iloc[0]))
        lost = g["data_loss_s"].fillna(0).max()
        loss = "no data lost" if lost == 0 else f"up to {_fmt(lost)} of data lost"
        out.append(f"{what}: {count(len(g), 'VM')} moved to the cloud, {loss}, longest interruption "
                   f"{_fmt(float(g['rto_s'].max()))}.")
    return out
