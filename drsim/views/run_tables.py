"""The tables of a run's report: objective compliance per VM, replication, recovery (each with the site as the
total row), and the incidents.

Imports pandas, :mod:`drsim.results` (tables, time points), :mod:`drsim.scenario.units` and
:mod:`drsim.views.rendering`.
"""

from __future__ import annotations

import pandas as pd

from drsim.results.findings import _when_short, protected_after
from drsim.results.tables import SITE, Results
from drsim.scenario import units
from drsim.views.rendering import Table, is_missing, percent

__all__ = ["vm_rows", "compliance_table", "replication_table", "recovery_table", "incidents_table"]

_fmt = units.format_duration


def _status(ok: bool, incidents: int) -> str:
    if incidents == 0:
        return "met (no incident)"
    return "met" if ok else "missed"


def vm_rows(results: Results) -> tuple[pd.DataFrame, pd.Series]:
    summ = results.summary
    return summ[summ["vm"] != SITE], summ[summ["vm"] == SITE].iloc[0]


def compliance_table(results: Results) -> Table:
    s = results.scenario
    vms, site = vm_rows(results)

    def row(r: pd.Series) -> list[str]:
        within = "-" if is_missing(r["rpo_steady_over_target"]) else percent(max(0.0, 1 - r["rpo_steady_over_target"]))
        n = int(r["incidents"])
        return [r["vm"], within, _status(bool(r["rpo_met"]), n), _fmt(r["data_loss_max_s"]),
                _status(bool(r["rto_met"]), n), _fmt(r["rto_max_s"]), str(n)]

    header = ["VM", f"time within RPO {_fmt(s.objectives.rpo)}", "RPO in incidents", "worst data loss",
              f"RTO {_fmt(s.objectives.rto)}", "worst RTO", "unplanned incidents"]
    return Table(header, [row(r) for _, r in vms.iterrows()], [False, True, False, True, False, True, True],
                 caption="RPO and RTO objectives per VM", total=row(site),
                 note="Time within the RPO target is the share of the protected time after start-up (from the "
                      "first recovery point cut after protection) when the newest recovery point was at most the "
                      "target old. An incident meets the RPO objective when its data loss "
                      "is within the target, and the RTO objective when service was back within the target; "
                      "an unrecoverable or unfinished incident meets neither.")


def replication_table(results: Results) -> Table:
    s = results.scenario
    vms, site = vm_rows(results)

    resynced = bool((site["resyncs"] > 0) if "resyncs" in site else False)  # the column only when a VM resynced

    def row(r: pd.Series) -> list[str]:
        worst = str(r["worst_health"])
        resync = [f"{int(r['resyncs'])} ({_fmt(r['resync_s'])})" if r["resyncs"] else "0"] if resynced else []
        return [
            r["vm"], r["host"],
            _fmt(protected_after(results, r["protected_at"])) if r["protected"] else "not protected",
            units.format_size(r["initial_bytes"]),
            _fmt(r["rpo_steady_mean_s"]), _fmt(r["rpo_steady_p95_s"]), _fmt(r["rpo_steady_max_s"]),
            percent(r["rpo_steady_over_target"]), _fmt(r["rpo_startup_max_s"]),
            str(int(r["cycles_sent"])), str(int(r["cycles_missed"])), *resync,
            units.format_size(r["bytes_written"]), units.format_size(r["bytes_sent"]),
            worst + (f" for {_fmt(r['worst_health_s'])}" if worst in ("warning", "critical") else ""),
        ]

    header = ["VM", "host", "protected after", "initial copy", "RPO mean", "RPO p95", "RPO max",
              f"over {_fmt(s.objectives.rpo)}", "RPO at start-up", "cycles sent", "cycles missed",
              *(["resyncs (time in resync)"] if resynced else []), "written", "uploaded", "worst health"]
    offset = s.initial_start_offset()
    note = ("RPO columns: the steady state, from each VM's first recovery point cut after protection; RPO at "
            "start-up: the worst RPO before it (the age of the initial copy's point). Worst health: the worst reached "
            "while replicating, and the time spent in it (the site: with at least one VM in it).")
    if resynced:
        note += " Resyncs: times a disk's change log reached half the disk, and the time spent in resynchronisation."
    if offset > 0:
        note += (f" Protected after: from the start of protection (replication.initial.start, {_fmt(offset)} into "
                 "the run).")
    return Table(header, [row(r) for _, r in vms.iterrows()], [False, False, *([True] * (11 + resynced)), False],
                 caption="Replication", total=row(site), note=note)


def recovery_table(results: Results) -> Table:
    vms, site = vm_rows(results)

    def row(r: pd.Series) -> list[str]:
        return [r["vm"], percent(r["availability"], 3), _fmt(r["downtime_s"]), str(int(r["incidents"])),
                _fmt(r["data_loss_mean_s"]), _fmt(r["data_loss_max_s"]), _fmt(r["rto_mean_s"]), _fmt(r["rto_max_s"]),
                str(int(r["drills"])), _fmt(r["drill_rto_mean_s"])]

    header = ["VM", "availability", "downtime", "unplanned incidents", "data loss mean", "data loss max",
              "RTO mean", "RTO max", "drills", "drill RTO mean"]
    return Table(header, [row(r) for _, r in vms.iterrows()], [False] + [True] * 9, caption="Recovery",
                 total=row(site))


def incidents_table(results: Results) -> Table:
    inc = results.incidents
    rows = []
    for _, r in inc.iterrows():
        detected = r["detected_at"] - r["failed_at"]
        back = _when_short(results, r["failback_done_at"]) if not is_missing(r["failback_done_at"]) else "-"
        rows.append([r["vm"], str(r["kind"]), _when_short(results, r["failed_at"]).removeprefix("on "),
                     _fmt(detected), _fmt(r["data_loss_s"]), _fmt(r["rto_s"]), _fmt(r["sla_rto_s"]),
                     _fmt(r["downtime_s"]), str(r["outcome"]), back.removeprefix("on ")])
    header = ["VM", "kind", "failed", "detected after", "data loss", "RTO", "SLA RTO", "downtime", "outcome",
              "failed back"]
    return Table(header, rows, [False, False, False, True, True, True, True, True, False, False],
                 caption="Incidents (planned maintenance moves included)",
                 note="RTO runs from the outage start (for corruption, its detection) to service restored; SLA "
                      "RTO from failover start to the VM running in the cloud, as the vendor's SLA measures it; "
                      "downtime adds the failback cutover.")
