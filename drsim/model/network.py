"""Clients reconnecting to failed-over VMs through the cloud virtual network.

Clients reach a VM running in the cloud through the cloud virtual network (the source document: "with a cloud
virtual network in place, client computers reconnect transparently"): over a site-to-site VPN from the site, or
a point-to-site VPN from anywhere (``failover.network``). A VPN that is not ready is set up once, during the
first incident that needs it: from the start of the first failover whose clients will need it (``setup``; every
VM needing it meanwhile waits for the same setup); it then exists for the rest of the run. While the site itself
is down, its clients can only come in point-to-site from elsewhere.

:class:`CloudNetwork` runs the reconnection step of a failover: it picks the path, waits for its VPN, then the
``reconnect`` step. It records a ``vpn: <path>`` step per VM (the wait for the VPN; zero long when it was ready)
and each setup as a step of target ``cloud network``, kind ``vpn``. Times in seconds.

Imports only the scenario (and the orchestrator and replica for hints).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

if TYPE_CHECKING:
    from drsim.model.recovery import Recovery
    from drsim.model.replication import VMReplica

__all__ = ["CloudNetwork", "SITE_TO_SITE", "POINT_TO_SITE"]

SITE_TO_SITE = "site-to-site"
POINT_TO_SITE = "point-to-site"
TARGET = "cloud network"


class CloudNetwork:
    """The VPNs into the cloud network of one run and the reconnection of clients through them."""

    def __init__(self, recovery: Recovery):
        self._rec = recovery
        self.env = recovery.env
        cfg = recovery.scenario.failover.network
        self.config = cfg
        self._ready: dict[str, simpy.Event] = {}  # path -> event that succeeds when its VPN exists
        for path, state in ((SITE_TO_SITE, cfg.site_to_site), (POINT_TO_SITE, cfg.point_to_site)):
            if state == "ready":
                ev = self.env.event()
                ev.succeed()
                self._ready[path] = ev

    def path(self) -> str:
        """The VPN clients use now: site-to-site from a running site that has (or will have) one, else
        point-to-site."""
        if self._rec.site_faults == 0 and self.config.site_to_site != "none":
            return SITE_TO_SITE
        return POINT_TO_SITE

    def failover_starts(self) -> None:
        """A failover starts: the VPN its clients will need is set up now if it is not there yet."""
        self._vpn(self.path())

    def _vpn(self, path: str) -> simpy.Event:
        ev = self._ready.get(path)
        if ev is None:  # not there yet: set it up now (once; later incidents find it)
            ev = self._ready[path] = self.env.event()
            self.env.process(self._setup(path, ev))
        return ev

    def _setup(self, path: str, ready: simpy.Event):
        start = self.env.now
        yield self.env.timeout(self.config.setup.sample(self._rec.rng("network", path)))
        self._rec.operations.append((TARGET, "vpn", f"{path} setup", start, self.env.now, 0.0, self._rec._new_op()))
        ready.succeed()

    def reconnect(self, r: VMReplica, kind: str, rng: np.random.Generator, op: int):
        """Clients reconnect to ``r`` in the cloud: through the VPN of the current path (waiting for its setup if
        needed), then the ``reconnect`` step."""
        path = self.path()
        start = self.env.now
        ready = self._vpn(path)
        if not ready.triggered:
            yield ready
        self._rec.operations.append((r.vm.name, kind, f"vpn: {path}", start, self.env.now, 0.0, op))
        yield from self._rec._step(r.vm.name, kind, "reconnect", self._rec.steps.reconnect, rng, op)
