"""Incidents: one failure as it affected one VM, and the columns of the ``incidents`` and ``operations`` tables.

An :class:`Incident` carries the milestones of one VM's recovery from one failure (failed, detected, decided,
failover started, service restored, failback started and done) in seconds from t = 0, with its data loss,
RTO and downtime. :class:`~drsim.model.recovery.Recovery` fills them in; the results stage reads the rows.

Imports only :mod:`drsim.model.failures`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from drsim.model.failures import FailureEvent

__all__ = ["Incident", "INCIDENT_COLUMNS", "OPERATION_COLUMNS"]

INCIDENT_COLUMNS = ("vm", "kind", "failed_at", "detected_at", "decision_at", "failover_started_at",
                    "service_restored_at", "failback_started_at", "failback_done_at",
                    "recovery_point_captured_at", "data_loss_s", "rto_s", "sla_rto_s", "downtime_s", "outcome")
OPERATION_COLUMNS = ("target", "kind", "step", "start", "end", "bytes", "operation")

NAN = math.nan


@dataclass
class Incident:
    """One failure as it affected one VM. Times in seconds from t = 0 (NaN: did not happen)."""

    vm: str
    kind: str
    failed_at: float
    detected_at: float = NAN
    decision_at: float = NAN
    failover_started_at: float = NAN
    service_restored_at: float = NAN
    failback_started_at: float = NAN
    failback_done_at: float = NAN
    recovery_point_captured_at: float = NAN
    data_loss_s: float = NAN
    sla_rto_s: float = NAN
    downtime_s: float = 0.0
    outcome: str = "open"
    # not in the table
    event: FailureEvent | None = field(default=None, repr=False)
    corrupt_since: float = NAN
    clean_point: tuple[float, float, int] | None = field(default=None, repr=False)  # chosen at detection
    planned: bool = False
    closed: bool = False
    restarting: bool = False
    down: list[tuple[float, float]] = field(default_factory=list, repr=False)  # the intervals charged (s)
    note: str = ""  # said in the outcome (e.g. no app-consistent point was kept)

    @property
    def outage_start(self) -> float:
        """When the service went down: the failure, or for corruption its detection (the VM ran, corrupted,
        until then)."""
        return self.detected_at if self.kind == "corruption" else self.failed_at

    @property
    def rto_s(self) -> float:
        """Outage start to service restored (seconds)."""
        return self.service_restored_at - self.outage_start

    def charge(self, start: float, end: float) -> None:
        """Charge the VM's down time from ``start`` to ``end`` (seconds) to this incident: it adds to
        ``downtime_s`` and is kept in ``down``, so that every down interval of a VM is charged to exactly one
        incident (checked by the property tests)."""
        if end > start:
            self.down.append((start, end))
            self.downtime_s += end - start

    def row(self) -> tuple:
        return tuple(getattr(self, c) for c in INCIDENT_COLUMNS)
