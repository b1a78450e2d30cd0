"""Result tables of one run, as tidy pandas DataFrames.

Times are seconds from t = 0 (with a ``*_ts`` timestamp column beside each when the scenario has a
calendar start); sizes are bytes; rates bytes/s. Tables are built on first access and cached.

==================  ============================================================================
table               one row per
==================  ============================================================================
``transfers``       transfer on the link: vm, kind, direction, bytes, wire_bytes, queued_at,
                    started_at, finished_at (NaN if still in flight at the end or abandoned)
``recovery_points`` recovery point: vm, captured_at, available_at, bytes, consistency, pruned_at
``cycles``          replication tick: vm, time, outcome (sent/missed), bytes cut
``states``          interval in a lifecycle state (``resync``: marked for resynchronisation): vm, state,
                    start, end
``health``          interval in a health state (protected VMs): vm, health, start, end
``rpo``             breakpoint of the RPO curve: vm, time, rpo (two rows where it drops)
``link``            change on the link: time, direction, capacity, active, backlog
``summary``         VM, plus a ``(site)`` row
==================  ============================================================================
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from drsim.model.codes import (
    CONSISTENCY,
    HEALTH,
    K_DELTA,
    K_INITIAL,
    OUTCOMES,
    REPLICATING,
    S_RESYNC,
    STATES,
)
from drsim.model.incidents import INCIDENT_COLUMNS, OPERATION_COLUMNS
from drsim.model.site import SiteModel
from drsim.results.columns import end_health, startup_points, steady_columns, worst_health
from drsim.results.metrics import RPOStats, rpo_stats
from drsim.results.recovery_summary import PLANNED_KINDS, recovery_summary
from drsim.results.running import kept_tables, tally_health, tally_rpo_stats, tally_time
from drsim.scenario.site import SITE_ROW

if TYPE_CHECKING:
    from drsim.scenario.document import Scenario

__all__ = ["Results", "SITE", "TABLES", "SERVICE_DOWN_STATES", "PLANNED_KINDS"]

SITE = SITE_ROW  # the site row's name; a VM may not take it (drsim.scenario.site refuses it)
TABLES = ("summary", "incidents", "operations", "transfers", "recovery_points", "cycles", "states", "health", "rpo",
          "link")
SERVICE_DOWN_STATES = ("down", "failing_over", "failing_back", "restoring")
_TIME_COLUMNS = {
    "transfers": ("queued_at", "started_at", "finished_at"),
    "recovery_points": ("captured_at", "available_at", "pruned_at"),
    "cycles": ("time",),
    "states": ("start", "end"),
    "health": ("start", "end"),
    "rpo": ("time",),
    "link": ("time",),
    "summary": ("protected_at",),
    "incidents": ("failed_at", "detected_at", "decision_at", "failover_started_at", "service_restored_at",
                  "failback_started_at", "failback_done_at", "recovery_point_captured_at"),
    "operations": ("start", "end"),
}


class Results:
    """The outcome of :func:`drsim.simulate`: tables plus the scenario and seed that produced them."""

    def __init__(self, model: SiteModel, tables: tuple[str, ...] | None = None):
        self.scenario: Scenario = model.scenario
        self.seed = model.seed
        self.end = model.horizon
        self._model = model
        self._tables = model.recorder.tables
        #: the result tables this run kept (all by default; see :func:`drsim.simulate`'s ``tables``)
        self.kept: tuple[str, ...] = tables if tables is not None else kept_tables(model.recorder.keep)
        self._tally = model.tally  # running statistics, when per-cycle tables were dropped

    # --- raw tables ---------------------------------------------------------------------------------

    def _need(self, name: str) -> None:
        if name not in self.kept:
            raise ValueError(f"the {name!r} table was not kept in this run (kept: {', '.join(self.kept)}); "
                             "simulate again with it in tables=")

    def _frame(self, name: str) -> pd.DataFrame:
        return self._tables[name].to_frame()

    def _with_timestamps(self, name: str, df: pd.DataFrame) -> pd.DataFrame:
        start = self.scenario.start
        if start is None:
            return df
        base = pd.Timestamp(start)
        for col in _TIME_COLUMNS.get(name, ()):
            if col in df:
                df[col + "_ts"] = base + pd.to_timedelta(df[col], unit="s")
        return df

    @cached_property
    def transfers(self) -> pd.DataFrame:
        self._need("transfers")
        df = self._frame("transfers").drop(columns=["point", "consistency"])
        # a fair-share link starts serving a transfer the moment it is queued
        df.insert(df.columns.get_loc("queued_at") + 1, "started_at", df["queued_at"])
        df.insert(df.columns.get_loc("bytes") + 1, "wire_bytes", df["bytes"] / self.scenario.link.compression)
        df = df.sort_values(["queued_at", "vm"], kind="stable").reset_index(drop=True)
        return self._with_timestamps("transfers", df)

    @cached_property
    def cycles(self) -> pd.DataFrame:
        """One row per replication tick of a protected VM: a sent cycle is its delta transfer (bytes cut), a
        missed one a tick that found the previous transfer still in flight (0 bytes)."""
        self._need("cycles")
        tr = self._tables["transfers"].arrays()
        mt = self._tables["missed_ticks"].arrays()
        delta = (tr["kind"] == K_DELTA) & (tr["direction"] == 0)
        vm = np.concatenate((tr["vm"][delta], mt["vm"]))
        time = np.concatenate((tr["queued_at"][delta], mt["time"]))
        outcome = np.repeat(np.array([0, 1], dtype=np.int16), [int(delta.sum()), len(mt["vm"])])
        nbytes = np.concatenate((tr["bytes"][delta], np.zeros(len(mt["vm"]))))
        order = np.lexsort((vm, time))
        df = pd.DataFrame({
            "vm": pd.Categorical.from_codes(vm[order].astype(np.int16), categories=self._model.vm_names),
            "time": time[order],
            "outcome": pd.Categorical.from_codes(outcome[order], categories=OUTCOMES),
            "bytes": nbytes[order],
        })
        return self._with_timestamps("cycles", df)

    @cached_property
    def states(self) -> pd.DataFrame:
        self._need("states")
        df = self._frame("states").sort_values(["vm", "start"], kind="stable").reset_index(drop=True)
        return self._with_timestamps("states", df)

    @cached_property
    def health(self) -> pd.DataFrame:
        self._need("health")
        df = self._frame("health").sort_values(["vm", "start"], kind="stable").reset_index(drop=True)
        return self._with_timestamps("health", df)

    @cached_property
    def link(self) -> pd.DataFrame:
        self._need("link")
        df = self._frame("link").sort_values(["direction", "time"], kind="stable").reset_index(drop=True)
        return self._with_timestamps("link", df)

    # --- derived tables -----------------------------------------------------------------------------

    @cached_property
    def _point_arrays(self) -> dict[str, np.ndarray]:
        return self._points()

    @cached_property
    def incidents(self) -> pd.DataFrame:
        """One row per failure per affected VM (see :class:`drsim.model.recovery.Incident`)."""
        rows = [inc.row() for inc in self._model.recovery.incidents]
        df = pd.DataFrame(rows, columns=list(INCIDENT_COLUMNS))
        df = df.astype({c: float for c in INCIDENT_COLUMNS if c not in ("vm", "kind", "outcome")})
        df = df.sort_values(["failed_at", "vm"], kind="stable").reset_index(drop=True)
        return self._with_timestamps("incidents", df)

    @cached_property
    def operations(self) -> pd.DataFrame:
        """Every step of every operation: target (VM or plan), kind, step, start, end, bytes, operation id."""
        df = pd.DataFrame(self._model.recovery.operations, columns=list(OPERATION_COLUMNS))
        df = df.astype({"start": float, "end": float, "bytes": float, "operation": int})
        df = df.sort_values(["start", "operation"], kind="stable").reset_index(drop=True)
        return self._with_timestamps("operations", df)

    def _points(self) -> dict[str, np.ndarray]:
        """Delivered recovery points sorted by (vm, available_at), as arrays."""
        a = self._tables["transfers"].arrays()
        index = np.int32 if len(a["vm"]) < 2**31 else np.int64  # row numbers: half the memory at scale
        keep = np.flatnonzero(~np.isnan(a["point"]) & ~np.isnan(a["finished_at"])).astype(index)
        vm = a["vm"][keep]
        avail = a["finished_at"][keep]
        # the ledger is written in finish order, so a stable sort by VM is enough; check, to be safe
        in_order = bool((avail[1:] >= avail[:-1]).all())
        order = np.argsort(vm, kind="stable") if in_order else np.lexsort((avail, vm))
        rows = keep[order]  # ledger rows, for the other columns
        del keep
        return {"vm": vm[order], "captured_at": a["point"][rows], "available_at": avail[order], "rows": rows}

    @cached_property
    def recovery_points(self) -> pd.DataFrame:
        self._need("recovery_points")
        p = self._point_arrays
        vm, cap, avail = p["vm"], p["captured_at"], p["available_at"]
        ledger = self._tables["transfers"].arrays()
        retention = self.scenario.replication.retention
        # pruned when older than the retention, but never while it is the newest available point
        same_next = np.zeros(len(vm), dtype=bool)
        same_next[:-1] = vm[1:] == vm[:-1]
        next_avail = np.full(len(vm), np.nan)
        next_avail[:-1] = avail[1:]
        pruned = np.where(same_next, np.maximum(cap + retention, next_avail), np.nan)
        pruned[pruned > self.end] = np.nan
        df = pd.DataFrame({
            "vm": pd.Categorical.from_codes(vm.astype(np.int16), categories=self._model.vm_names),
            "captured_at": cap,
            "available_at": avail,
            "bytes": ledger["bytes"][p["rows"]],
            "consistency": pd.Categorical.from_codes(ledger["consistency"][p["rows"]].astype(np.int16),
                                                     categories=CONSISTENCY),
            "pruned_at": pruned,
        })
        return self._with_timestamps("recovery_points", df)

    @cached_property
    def _pieces(self) -> dict[str, np.ndarray]:
        """Linear pieces of the RPO curves, sorted by (vm, start): on ``[t0, t1)`` the newest available point
        was captured at ``c`` and the RPO is ``t - c``.

        The RPO is defined while the VM replicates on-prem, so pieces are cut to the ``protected`` intervals:
        a failure ends one; when the VM comes back (after a repair: the point from before the outage is still
        the newest; after failback: the image the VM restarted from), the next interval's first piece starts.
        ``startup`` marks the pieces whose newest point is an initial replication's catch-up (or the resync that
        took its place): from protection until the first point cut after it is available (the start-up; the rest is
        the steady state).
        """
        p = self._point_arrays
        vm, cap, avail = p["vm"], p["captured_at"], p["available_at"]
        bounds = np.searchsorted(vm, np.arange(len(self._model.vm_names) + 1))
        # when the next point of the same VM arrives (inf after its last one)
        next_avail = np.full(len(avail), np.inf)
        same = np.flatnonzero(vm[1:] == vm[:-1])
        next_avail[same] = avail[same + 1]
        st = self._tables["states"].arrays()
        prot = np.flatnonzero(np.isin(st["state"], list(REPLICATING)))  # protected, or in resync
        prot = prot[np.lexsort((st["start"][prot], st["vm"][prot]))]
        iv_vm, iv_s, iv_e = st["vm"][prot].astype(np.int64), st["start"][prot], st["end"][prot]
        # per protected interval, the points whose pieces it holds: from the newest point available at its
        # start (or the VM's first) to the last one arriving before its end
        first = np.empty(len(prot), dtype=np.int64)
        stop = np.empty(len(prot), dtype=np.int64)
        for k, (v, s0, e0) in enumerate(zip(iv_vm.tolist(), iv_s.tolist(), iv_e.tolist(), strict=True)):
            lo, hi = bounds[v], bounds[v + 1]
            a = avail[lo:hi]
            f = max(int(np.searchsorted(a, s0, side="right")) - 1, 0)
            last = int(np.searchsorted(a, e0, side="left"))
            if hi == lo or (last <= f and a[f] > e0):
                first[k] = stop[k] = lo  # no point yet: no piece
            else:
                first[k], stop[k] = lo + f, lo + max(last, f + 1)
        counts = stop - first
        index = np.int32 if len(avail) < 2**31 else np.int64
        j = np.arange(int(counts.sum()), dtype=index) - np.repeat((np.cumsum(counts) - counts - first).astype(index),
                                                                   counts)  # point indices
        e0 = np.repeat(iv_e, counts)
        keep = avail[j] <= e0
        t0 = np.maximum(avail[j], np.repeat(iv_s, counts))
        t1 = np.minimum(next_avail[j], e0, out=e0)  # until the next point arrives, or the interval ends
        del next_avail
        keep &= t1 > t0
        j = j[keep]
        # start-up: the newest point is still an initial replication's catch-up (captured when the copy ended)
        kinds = self._tables["transfers"].arrays()["kind"][p["rows"]]
        startup = startup_points(kinds, vm, avail, st)[j]
        return {"vm": vm[j], "t0": t0[keep], "t1": t1[keep], "c": cap[j], "startup": startup}

    def rpo_segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The RPO curve's pieces as arrays, without a table: (VM code in file order, start time s, RPO at the
        start s, length s), sorted by VM code."""
        pc = self._pieces
        return pc["vm"], pc["t0"], pc["t0"] - pc["c"], pc["t1"] - pc["t0"]

    @cached_property
    def rpo(self) -> pd.DataFrame:
        """The RPO curve of each VM as its linear pieces: two rows per piece, at its start and its end
        (slope 1 in between). Where a recovery point arrives, a piece ends high and the next starts low at
        the same time; a gap between pieces means the VM was not replicating (down, in the cloud)."""
        self._need("rpo")
        pc = self._pieces
        n = len(pc["vm"])
        times = np.empty(2 * n)
        times[0::2], times[1::2] = pc["t0"], pc["t1"]
        values = np.empty(2 * n)
        values[0::2], values[1::2] = pc["t0"] - pc["c"], pc["t1"] - pc["c"]
        df = pd.DataFrame({
            "vm": pd.Categorical.from_codes(np.repeat(pc["vm"], 2).astype(np.int16),
                                            categories=self._model.vm_names),
            "time": times,
            "rpo": values,
        })
        return self._with_timestamps("rpo", df)

    def rpo_stats(self, vm: str | None = None) -> RPOStats:
        """Exact time-weighted RPO statistics for one VM, or pooled over all VMs when ``vm`` is None (from the
        running statistics when the run did not keep its pieces: the percentile then within their resolution)."""
        if self._tally is not None:
            names = self._model.vm_names
            return tally_rpo_stats(self._tally, range(len(names)) if vm is None else [names.index(vm)])
        codes, _, r0, length = self.rpo_segments()
        if vm is not None:
            sel = codes == self._model.vm_names.index(vm)
            r0, length = r0[sel], length[sel]
        return rpo_stats(r0, length, self.scenario.objectives.rpo)

    @cached_property
    def summary(self) -> pd.DataFrame:
        """One row per VM and a ``(site)`` row."""
        model = self._model
        target = self.scenario.objectives.rpo
        n_vm = len(model.vm_names)
        tally = self._tally
        worst, worst_s = worst_health(self._tables["health"].arrays(), n_vm)  # (health changes are always kept)
        if tally is not None:  # running statistics: the per-cycle rows were not kept
            bytes_sent, initial_bytes = np.array(tally.bytes_sent), np.array(tally.initial_bytes)
            sent, missed = np.array(tally.cycles_sent), np.array(tally.cycles_missed)
            resync_time = np.array([t[S_RESYNC] for t in tally.state_time])

            def stats(i: int | None) -> RPOStats:
                return tally_rpo_stats(tally, range(n_vm) if i is None else [i])

            def steady(i: int | None) -> tuple[RPOStats, np.ndarray]:
                # the running statistics do not split start-up from steady state: not computed (NaN)
                return RPOStats(np.nan, np.nan, np.nan, np.nan, 0.0), np.full(1, np.nan)
        else:
            tr = self._tables["transfers"].arrays()
            done = ~np.isnan(tr["finished_at"]) & (tr["direction"] == 0)  # replication: upload only
            bytes_sent = np.bincount(tr["vm"][done], weights=tr["bytes"][done], minlength=n_vm)
            initial_bytes = np.bincount(tr["vm"][done & (tr["kind"] == K_INITIAL)],
                                        weights=tr["bytes"][done & (tr["kind"] == K_INITIAL)], minlength=n_vm)
            sent = np.bincount(tr["vm"][(tr["kind"] == K_DELTA) & (tr["direction"] == 0)], minlength=n_vm)
            missed = np.bincount(self._tables["missed_ticks"].arrays()["vm"], minlength=n_vm)
            st = self._tables["states"].arrays()
            in_resync = st["state"] == S_RESYNC
            resync_time = np.bincount(st["vm"][in_resync], weights=(st["end"] - st["start"])[in_resync],
                                      minlength=n_vm)
            codes, _, r0, length = self.rpo_segments()
            startup = self._pieces["startup"]
            bounds = np.searchsorted(codes, np.arange(n_vm + 1))  # codes are sorted: one slice per VM

            def stats(i: int | None) -> RPOStats:
                if i is None:
                    return rpo_stats(r0, length, target)
                sel = slice(bounds[i], bounds[i + 1])
                return rpo_stats(r0[sel], length[sel], target)

            def steady(i: int | None) -> tuple[RPOStats, np.ndarray]:
                """The steady-state statistics and the start-up pieces' end values."""
                sel = slice(None) if i is None else slice(bounds[i], bounds[i + 1])
                a, b, up = r0[sel], length[sel], startup[sel]
                return rpo_stats(a[~up], b[~up], target), a[up] + b[up]
        rows = []
        for r in model.replicas:
            st = stats(r.index)
            steady_st, startup_ends = steady(r.index)
            rows.append({
                "vm": r.vm.name,
                "host": r.host.name,
                "protected": not np.isnan(r.protected_at),
                "protected_at": r.protected_at,
                "initial_replication_s": r.protected_at - r.initial_started_at,
                "initial_bytes": initial_bytes[r.index],
                "rpo_mean_s": st.mean,
                "rpo_p95_s": st.p95,
                "rpo_max_s": st.max,
                "rpo_over_target": st.over_target,
                **steady_columns(steady_st, startup_ends),
                "cycles_sent": int(sent[r.index]),
                "cycles_missed": int(missed[r.index]),
                "resyncs": r.resyncs,
                "resync_s": resync_time[r.index],
                "bytes_written": r.writes(self.end),
                "bytes_sent": bytes_sent[r.index],
                "health": HEALTH[r.health] if r.health >= 0 else STATES[r.state].replace("_", " "),
                "worst_health": (HEALTH[worst[r.index]] if worst[r.index] >= 0
                                 else STATES[r.state].replace("_", " ")),
                "worst_health_s": worst_s[r.index],
            })
        eligible = [r for r in model.replicas if r.eligible]
        all_protected = bool(eligible) and all(not np.isnan(r.protected_at) for r in eligible)
        site = stats(None)
        site_steady, site_startup = steady(None)
        rows.append({
            "vm": SITE,
            "host": "",
            "protected": all_protected,
            "protected_at": max(r.protected_at for r in eligible) if all_protected else np.nan,
            "initial_replication_s": (max(r.protected_at for r in eligible)
                                      - min(r.initial_started_at for r in eligible)) if all_protected else np.nan,
            "initial_bytes": float(initial_bytes.sum()),
            "rpo_mean_s": site.mean,
            "rpo_p95_s": site.p95,
            "rpo_max_s": site.max,
            "rpo_over_target": site.over_target,
            **steady_columns(site_steady, site_startup),
            "cycles_sent": int(sent.sum()),
            "cycles_missed": int(missed.sum()),
            "resyncs": int(sum(r.resyncs for r in model.replicas)),
            "resync_s": float(resync_time.sum()),
            "bytes_written": float(sum(r.writes(self.end) for r in model.replicas)),
            "bytes_sent": float(bytes_sent.sum()),
            "health": end_health([r.health for r in eligible]),
            "worst_health": HEALTH[worst[-1]] if worst[-1] >= 0 else "not protected",
            "worst_health_s": worst_s[-1],
        })
        summary = pd.DataFrame(rows)
        dr = recovery_summary(self, list(model.vm_names), self._downtime())
        summary = summary.join(dr, on="vm")
        return self._with_timestamps("summary", summary)

    def _downtime(self) -> pd.Series:
        """Seconds each VM's service was down (by VM name)."""
        names = self._model.vm_names
        if "states" not in self.kept:
            return tally_time(self._tally.state_time, names, [STATES.index(s) for s in SERVICE_DOWN_STATES])
        st = self.states
        down = st[st["state"].isin(SERVICE_DOWN_STATES)]
        return (down["end"] - down["start"]).groupby(down["vm"], observed=False).sum().reindex(names).fillna(0.0)

    def health_totals(self) -> pd.DataFrame:
        """Per VM: seconds in ``warning`` and ``critical`` health and the number of spells of each (``warnings``,
        ``criticals``), from the health table or the running statistics when it was not kept."""
        if "health" not in self.kept:
            return tally_health(self._tally, self._model.vm_names)
        h = self.health
        span = (h["end"] - h["start"]).groupby([h["vm"], h["health"]], observed=False)
        return pd.DataFrame({"warning_s": span.sum().xs("warning", level=1),
                             "critical_s": span.sum().xs("critical", level=1),
                             "warnings": span.size().xs("warning", level=1),
                             "criticals": span.size().xs("critical", level=1)})

    # --- helpers ------------------------------------------------------------------------------------

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table this run kept, by name."""
        return {name: getattr(self, name) for name in TABLES if name in self.kept}

    def replica(self, vm: str):
        """The model object of a VM (for inspection in notebooks and tests)."""
        return self._model.replicas[self._model.vm_names.index(vm)]

    def __repr__(self) -> str:
        return f"<Results {self.scenario.name} seed={self.seed} vms={len(self._model.vm_names)} end={self.end:g}s>"
