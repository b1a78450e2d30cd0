"""A VM's replication: the replica that cuts and ships its log, its health, and the hooks failover and failback use.

:class:`VMReplica` runs one VM's protection: initial replication (disks one by one, then a catch-up
delta), then a cut of the change log every interval shipped as a delta over the upload
:class:`~drsim.model.link.FluidLink`, health as the service judges it, and the hooks failover and failback
use (pause, final sync, resume). :class:`~drsim.model.ticker.Ticker` ticks every replica of one interval length
with one timer.
The state, kind and health codes (:mod:`drsim.model.codes`) are the vocabulary of the recorded tables;
resynchronisation is in :mod:`drsim.model.resync`.

Imports the codes, recovery points, transfers, churn curves and resync of this package, and the scenario types.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

import simpy

from drsim.model.churn import WriteCurve
from drsim.model.codes import (
    C_APP,
    C_CRASH,
    H_CRITICAL,
    H_NORMAL,
    H_WARNING,
    K_CATCHUP,
    K_DELTA,
    K_FINAL,
    K_INITIAL,
    K_RESYNC,
    K_REVERSE,
    ONPREM,
    REPLICATING,
    S_INITIAL,
    S_NOT_PROTECTED,
    S_PROTECTED,
    S_RESYNC,
    S_UNSUPPORTED,
    SERVICE_UP,
)
from drsim.model.points import RecoveryPoints
from drsim.model.resync import RESYNC_LOG_SHARE, ResyncMixin, resync_threshold
from drsim.model.ticker import Ticker
from drsim.model.transfer import Transfer
from drsim.scenario.site import VM, Host, protectable

if TYPE_CHECKING:
    from drsim.model.site import SiteModel

__all__ = ["VMReplica", "Ticker"]


# the health rule the monitoring FAQ gives for Hyper-V replication (vendor documentation; date not recorded)
HEALTH_WINDOW = 3600.0  # s: the service judges missed cycles over the last hour
WARN_MISSED_SHARE = 0.20  # warning when at least this share of the window's cycles was missed
WARN_SILENCE = 3600.0  # s: warning when nothing replicated for longer than this
CRITICAL_LOG_SHARE = RESYNC_LOG_SHARE  # critical (resynchronisation) when a disk's log reaches this share of it


class VMReplica(ResyncMixin):
    """Replication of one VM: initial copy, catch-up, then a delta every interval.

    A recovery point *captures* the VM when its log is cut and becomes *available* when its transfer
    ends. At most one delta is in flight per VM: a tick that finds the previous transfer still running
    is *missed* and the writes roll into the next cut. A tick that finds a disk's log at 50 % of the disk
    marks the VM for resynchronisation (:mod:`drsim.model.resync`).
    """

    # slots: a thousand replicas stay compact in memory, which keeps the hot path cache-friendly
    __slots__ = (
        "app_every", "cloud_w0", "critical_bytes", "curve", "disks_lost", "eligible", "env", "health",
        "health_since", "host", "index", "initial_started_at", "interval", "link", "model", "points",
        "protected", "protected_at", "rep_state", "resyncs", "retention", "rpo_tally", "service", "state",
        "state_since", "tick_origin", "ticks", "vm", "vm_faults", "weight", "host_space",
        "_generation", "_host_peers", "_inflight", "_initial", "_initial_inflight", "_last_app", "_last_success",
        "_missed_extend", "_missed_pack", "_missed_ticks", "_paused", "_resync", "_resync_marked", "_resync_marked_at",
        "_stopped_at", "_tick_no", "_ticking", "_ticks_per_window", "_w_cut", "_w_inflight", "_w_newest", "_w_offset",
        "_waiters",
    )

    def __init__(self, model: SiteModel, index: int, host: Host, vm: VM, curve: WriteCurve):
        self.model = model
        self.env = model.env
        self.index = index
        self.host = host
        self.vm = vm
        self.curve = curve
        self.link = model.upload
        rep = model.scenario.replication
        self.interval = rep.interval
        self.retention = rep.retention
        self.app_every = rep.app_consistent_every
        self.weight = float(vm.threads)
        self.critical_bytes = resync_threshold(vm)  # pending bytes at which a disk's log reaches 50 % of the disk
        self.eligible = protectable(host, vm)
        self.rep_state = S_NOT_PROTECTED if host.supported and vm.supported else S_UNSUPPORTED
        self.service = ONPREM
        self.state = self.rep_state  # shown state: the replication state on-prem, else the service state
        self.state_since = 0.0
        self._stopped_at = math.nan  # the VM is not running anywhere since (NaN: running)
        self._w_offset = 0.0  # writes the curve counts while the VM was not running
        self.health = -1  # not judged until protected
        self.health_since = math.nan
        self.protected = self.env.event()
        self.initial_started_at = math.nan
        self.protected_at = math.nan
        # log and recovery points
        self._w_cut = 0.0  # cumulative writes at the last cut
        self._last_app = -math.inf
        self._inflight: Transfer | None = None
        self._w_inflight = 0.0  # cumulative writes at the in-flight point's capture
        self._initial_inflight: Transfer | None = None
        self.points = RecoveryPoints(self.retention)  # available in the cloud: (captured, available, consistency)
        self._w_newest = 0.0  # cumulative writes at the newest point's capture (of the image the cloud holds)
        self._last_success = math.nan
        # cycles and health
        self.ticks = 0  # ticks while protected (cycles sent or missed)
        # the health window counts ticks by their number, not by time: tick times are built by repeated addition,
        # so ``now - 3600`` can round below a tick exactly one hour old and keep it one interval too long
        self._tick_no = 0  # every tick since the VM joined its ticker, protected or not
        self._missed_ticks: deque[int] = deque()  # numbers of the missed ticks still in the window
        self._ticks_per_window = int(HEALTH_WINDOW // self.interval)
        self._ticking = False  # joined a ticker (ticks go on for the whole run; they skip while not protected)
        self.tick_origin = math.nan  # s: when it joined the ticker (ticks at tick_origin + k * interval)
        self.rpo_tally = None  # running RPO statistics (drsim.model.tally.RPOTally), when the run keeps them
        self._initial: simpy.Process | None = None
        self._paused: list[Transfer] = []  # transfers held while the host's agent is down
        # resynchronisation (see drsim.model.resync)
        self.resyncs = 0  # times the VM was marked for resynchronisation
        self._resync: simpy.Process | None = None
        self._resync_marked = False
        self._resync_marked_at = math.nan
        self._generation = 0  # initial replications started (a watcher of an earlier one stops)
        self.host_space = host.free_space  # bytes free on the host for change logs (None: not limited)
        self._host_peers: list[VMReplica] | None = None  # the replicating VMs of the same host
        self._waiters: list[simpy.Event] = []  # woken when the in-flight point is delivered
        # failures and failover (see drsim.model.recovery)
        self.vm_faults = 0  # active guest-level failures
        self.disks_lost = False  # on-prem disks destroyed: recovery needs the whole image
        self.cloud_w0 = 0.0  # writes when the VM started in the cloud
        self._missed_extend, self._missed_pack = model.missed_ticks.buffer.extend, model.missed_ticks.pack

    # --- lifecycle ----------------------------------------------------------------------------------

    def _show(self) -> None:
        state = self.rep_state if self.service == ONPREM else self.service
        if state == self.state:
            return
        now = self.env.now
        if now > self.state_since:
            self.model.states.append(self.index, self.state, self.state_since, now)
        tally = self.rpo_tally
        if tally is not None:
            # the RPO is defined while the VM replicates on-prem: protected, or marked for resync
            if self.state in REPLICATING:
                if state not in REPLICATING:
                    tally.end(now)
            elif state in REPLICATING:
                tally.begin(now)
        self.state = state
        self.state_since = now
        if self.health >= 0 and (self.service != ONPREM or self.rep_state not in REPLICATING):
            self._set_health(-1, now)  # health is judged only while replicating
        elif state in REPLICATING and self.health < 0 and self.points:
            self._judge_health(now, self.writes(now))  # replicating again: judged from now on

    def set_state(self, state: int) -> None:
        """Set the replication state (not_protected, initial_replication, protected, unsupported)."""
        self.rep_state = state
        self._show()

    def set_service(self, service: int) -> None:
        """Set where the VM runs (ONPREM, DOWN, FAILING_OVER, IN_CLOUD, ...); writes stop while it is down."""
        now = self.env.now
        running = service in SERVICE_UP
        if running and self._stopped_at == self._stopped_at:  # was stopped: writes resume
            self._w_offset += self.curve(now) - self.curve(self._stopped_at)
            self._stopped_at = math.nan
        elif not running and self._stopped_at != self._stopped_at:
            self._stopped_at = now
        self.service = service
        self._show()

    @property
    def service_up(self) -> bool:
        return self.service in SERVICE_UP

    def writes(self, t: float) -> float:
        """Bytes the VM has written in [0, t] while running (on-prem or in the cloud); t is now or earlier
        than any change of service."""
        stopped = self._stopped_at
        if stopped == stopped and t > stopped:
            t = stopped
        return self.curve(t) - self._w_offset

    def _set_health(self, health: int, now: float) -> None:
        """Record a health change; -1 means not judged (not replicating)."""
        if health == self.health:
            return
        if self.health >= 0 and now > self.health_since:
            self.model.health.append(self.index, self.health, self.health_since, now)
        self.health = health
        self.health_since = now

    def initial_replication(self, host_ready: simpy.Event):
        """Copy each disk in turn, then send the writes made meanwhile; protected when both are in."""
        env = self.env
        try:
            yield host_ready
            while self.service != ONPREM:  # down when its turn came: wait until it runs again
                yield env.timeout(self.interval)
            self.set_state(S_INITIAL)
            if self.initial_started_at != self.initial_started_at:
                self.initial_started_at = env.now
            snapshot = env.now
            self._w_cut = self.writes(snapshot)
            self._w_newest = self._w_cut  # the copies carry the image at the snapshot
            self._resync_marked = False
            self._generation += 1
            env.process(self._watch_initial(self._generation))
            for disk in self.vm.disks:
                done = env.event()
                self._initial_inflight = self.link.start(self.index, K_INITIAL, disk.copy_bytes, self.weight,
                                                         on_done=done.succeed)
                yield done
                self._initial_inflight = None
            if self._resync_marked:  # a disk's log outgrew its limit during the copy: resync, no catch-up
                self.set_state(S_RESYNC)
                yield from self.resync()
                return
            # catch-up: the log accumulated during the copy carries the first recovery point
            self._cut(env.now, K_CATCHUP)
            if not self._ticking:
                self._ticking = True
                self.tick_origin = env.now
                self.model.tick_every_interval(self)
            yield self.protected
        except simpy.Interrupt:
            return  # replication dropped (failover, rebuild)

    def _tick(self, now: float) -> None:
        self._tick_no += 1
        if self.state != S_PROTECTED:
            return  # finishing initial replication or a resync, or not running on-prem: no cycle
        stopped = self._stopped_at  # as in writes(), inlined on this hot path
        w = self.curve(stopped if stopped == stopped and now > stopped else now) - self._w_offset
        if w - self._w_newest >= self.critical_bytes or (
                self.host_space is not None and self.host_log_bytes(now) > self.host_space):
            self.mark_resync(now)  # a disk's log reached 50 % of the disk, or the host's log space ran out
            return
        self.ticks += 1
        if self._inflight is not None:
            self._missed_ticks.append(self._tick_no)
            self._missed_extend(self._missed_pack(self.index, now))
            self._judge_health(now, w)
        else:
            self._cut(now, K_DELTA, w)
            if (self.health == H_NORMAL and not self._missed_ticks
                    and not now - self._last_success > WARN_SILENCE):
                return  # normal and still normal (the common case; the rules are in _judge_health)
            self._judge_health(now, w)

    def _cut(self, now: float, kind: int, w: float = math.nan) -> None:
        """Cut the log: ship the writes since the last cut as a recovery point captured now (``w``: the
        cumulative writes now, if known)."""
        if w != w:
            stopped = self._stopped_at  # as in writes(), inlined on this hot path
            w = self.curve(stopped if stopped == stopped and now > stopped else now) - self._w_offset
        data = w - self._w_cut
        self._w_cut = w
        consistency = C_CRASH
        if self.app_every > 0 and now - self._last_app >= self.app_every - 1e-6:
            consistency = C_APP
            self._last_app = now
        self._w_inflight = w
        # A delta's delivery only updates this replica's bookkeeping, so it needs no event of its own
        # (passive) unless someone waits for it; the catch-up changes the state (protection).
        passive = kind == K_DELTA and not self._waiters
        self._inflight = self.link.start(self.index, kind, data, self.weight, self._delivered, now, consistency,
                                         passive)

    def _delivered(self, tr: Transfer) -> None:
        """A log transfer ended: its recovery point is now available in the cloud."""
        now = tr.finished_at  # a passive delta's callback may run after its finish
        self._inflight = None
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for ev in waiters:
                ev.succeed(tr)
        self.points.add(tr.point, now, tr.consistency)
        if self.rpo_tally is not None:
            self.rpo_tally.point(now, tr.point, self.state in REPLICATING)
        self._w_newest = self._w_inflight
        self._last_success = now
        if self.rep_state != S_PROTECTED and tr.kind in (K_CATCHUP, K_REVERSE, K_RESYNC):
            if self.protected_at != self.protected_at:  # NaN: first protection
                self.protected_at = now
            self.set_state(S_PROTECTED)
            if self.state == S_PROTECTED:  # replicating on-prem (not down meanwhile)
                self._judge_health(now, self.writes(now))
            if not self.protected.triggered:
                self.protected.succeed()

    def _judge_health(self, now: float, w_now: float) -> None:
        """Health as the service reports it: critical > warning > normal. ``w_now`` = writes up to now."""
        if self.rep_state == S_RESYNC or w_now - self._w_newest >= self.critical_bytes:  # resync pending
            health = H_CRITICAL
        else:
            share = 0.0
            missed = self._missed_ticks
            if missed:
                cutoff = self._tick_no - self._ticks_per_window  # the window: the last ticks_per_window ticks
                while missed and missed[0] <= cutoff:
                    missed.popleft()
                window = min(self.ticks, self._ticks_per_window)
                share = len(missed) / window if window else 0.0
            silent = now - self._last_success > WARN_SILENCE
            health = H_WARNING if silent or share >= WARN_MISSED_SHARE else H_NORMAL
        if health != self.health:
            self._set_health(health, now)

    # --- replication under failures (driven by drsim.model.recovery) ---------------------------------------

    def in_flight(self) -> Transfer | None:
        """The delta (or catch-up) transfer in flight, if any."""
        return self._inflight

    def wait_delivery(self) -> simpy.Event:
        """An event that succeeds when the in-flight point is delivered."""
        ev = self.env.event()
        self._waiters.append(ev)
        if self._inflight is not None:
            self.link.make_urgent(self._inflight)
        return ev

    def stall_waiters(self) -> None:
        """Wake whoever waits for the in-flight point with None: it will not arrive soon (agent or link down)."""
        waiters, self._waiters = self._waiters, []
        for ev in waiters:
            ev.succeed(None)

    def pause_replication(self) -> None:
        """The host's agent stops: transfers in flight stall where they are."""
        for tr in (self._initial_inflight, self._inflight):
            if tr is not None and math.isnan(tr.finished_at) and not tr.cancelled and tr not in self._paused:
                self.link.pause(tr)
                self._paused.append(tr)
        self.stall_waiters()

    def resume_replication(self) -> None:
        """The host's agent is back: stalled transfers continue where they stopped."""
        paused, self._paused = self._paused, []
        for tr in paused:
            self.link.resume(tr)

    def drop_replication(self) -> None:
        """Abandon on-prem replication (the VM moved to the cloud): in-flight transfers are cancelled."""
        self.stop_resync()
        for tr in (self._inflight, self._initial_inflight):
            if tr is not None:
                self.link.cancel(tr)  # recorded unfinished, unless it had finished
        self._paused = []
        self.stall_waiters()
        self._inflight = None
        if self._initial is not None and self._initial.is_alive:
            self._initial.interrupt("dropped")
        self._initial_inflight = None

    def final_sync(self) -> Transfer:
        """Cut and ship the whole pending log (planned failover); the point captures the VM now. A resync
        pending or running is abandoned: every write since the newest point goes."""
        if self.rep_state == S_RESYNC:
            self.stop_resync()
            for tr in (self._initial_inflight, self._inflight):
                if tr is not None:
                    self.link.cancel(tr)
            self._initial_inflight = None
            self._inflight = None
            self._w_cut = self._w_newest
        self._cut(self.env.now, K_FINAL)
        assert self._inflight is not None
        return self._inflight

    def resume_after_recovery(self, captured_at: float) -> None:
        """The VM runs on-prem again from an image the cloud also holds (failback, restore): replication
        resumes without a full copy; the first point captures the image taken at ``captured_at``."""
        now = self.env.now
        self.points.clear()  # points from before the VM moved describe a diverged past
        self._w_cut = self.writes(now)
        self._w_inflight = self._w_cut
        # nothing to send: the cloud already holds this image; the point is available at once
        tr = Transfer(self.index, K_REVERSE, 0.0, 0.0, self.weight, now, None, captured_at, C_CRASH)
        tr.finished_at = now
        self.link.record(tr)
        self.set_state(S_INITIAL)
        self._delivered(tr)

    def start_protected(self) -> None:
        """Protected from now on without an initial replication: the cloud holds the VM's image as of now (a
        first recovery point, captured and available now) and the log is cut every interval from now on. A run
        that starts in the steady protected state (the long-horizon engine's windows) starts its VMs this way."""
        now = self.env.now
        if self.initial_started_at != self.initial_started_at:
            self.initial_started_at = now
        self.resume_after_recovery(now)
        if not self._ticking:
            self._ticking = True
            self.tick_origin = now
            self.model.tick_every_interval(self)

    @property
    def stalled(self) -> bool:
        """Transfers of this VM are held while its host's agent is down."""
        return bool(self._paused)

    def restart_initial(self) -> None:
        """Protect again from scratch (the on-prem VM was rebuilt without its data). A VM whose batch has not
        started its initial replication yet waits for its batch, as before."""
        self.drop_replication()
        self.points.clear()
        self.set_state(S_NOT_PROTECTED)
        if self.eligible and (self._initial is not None or self._ticking):
            self.protected = self.env.event()
            self._initial = self.env.process(self.initial_replication(self.env.timeout(0)))

    # --- queries ------------------------------------------------------------------------------------

    def available_points(self, now: float) -> list[tuple[float, float, int]]:
        """Recovery points usable at ``now``: available, within retention, and always the newest."""
        pts = [p for p in self.points if p[1] <= now]
        if not pts:
            return []
        keep = [p for p in pts[:-1] if p[0] >= now - self.retention]
        return [*keep, pts[-1]]

    def finish(self, end: float) -> None:
        """Close open intervals at the end of the run (the links record the transfers still open)."""
        if self.health >= 0 and end > self.health_since:
            self.model.health.append(self.index, self.health, self.health_since, end)
        if end > self.state_since:
            self.model.states.append(self.index, self.state, self.state_since, end)
        if self.rpo_tally is not None and self.state in REPLICATING:
            self.rpo_tally.end(end)
