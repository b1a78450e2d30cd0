"""The vocabulary of the recorded tables: transfer kinds, lifecycle states, health levels, cycle outcomes,
recovery-point consistency and link directions, as lists of names and the integer codes the model records.

New names go at the end of their list, so the codes already recorded keep their meaning.

Imports nothing of drsim.
"""

from __future__ import annotations

__all__ = ["KINDS", "STATES", "HEALTH", "OUTCOMES", "CONSISTENCY", "DIRECTIONS", "SERVICE_UP"]

KINDS = ["initial", "catchup", "delta", "final_sync", "reverse", "failback", "restore", "resync"]
STATES = ["not_protected", "initial_replication", "protected", "unsupported",
          "down", "failing_over", "in_cloud", "failback_sync", "failing_back", "restoring", "resync"]
HEALTH = ["normal", "warning", "critical"]
OUTCOMES = ["sent", "missed"]
CONSISTENCY = ["none", "crash", "app"]
DIRECTIONS = ["upload", "download"]

K_INITIAL, K_CATCHUP, K_DELTA, K_FINAL, K_REVERSE, K_FAILBACK, K_RESTORE, K_RESYNC = range(8)
S_NOT_PROTECTED, S_INITIAL, S_PROTECTED, S_UNSUPPORTED = range(4)
# where the VM runs (its service); on-prem the shown state is the replication state
ONPREM, DOWN, FAILING_OVER, IN_CLOUD, FAILBACK_SYNC, FAILING_BACK, RESTORING = 0, 4, 5, 6, 7, 8, 9
S_RESYNC = 10  # marked for resynchronisation: delta replication stopped until the resync completes
REPLICATING = frozenset({S_PROTECTED, S_RESYNC})  # the cloud holds the VM's recovery points; the RPO is defined
SERVICE_UP = frozenset({ONPREM, IN_CLOUD, FAILBACK_SYNC})  # clients can reach the VM
H_NORMAL, H_WARNING, H_CRITICAL = range(3)
C_NONE, C_CRASH, C_APP = range(3)
