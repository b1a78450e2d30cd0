"""The SimPy world: a site's VMs replicating to the cloud over a shared link, and what happens when things fail.

The fluid fair-share link and its capacity schedule, churn curves, recovery points, the interval ticker, a
VM's replication, the failure timeline, failover and failback operations, and the failover policies'
behaviour. The model writes what happens into a :class:`~drsim.model.recorder.Recorder`; the results stage
reads it. Imports only :mod:`drsim.scenario`.
"""

from drsim.model.context import Context
from drsim.model.incidents import INCIDENT_COLUMNS, OPERATION_COLUMNS, Incident
from drsim.model.policies import Policy, available_policies, make_policy, register
from drsim.model.recovery import RETRY_BACKOFF, Recovery
from drsim.model.site import SiteModel

__all__ = ["SiteModel", "Policy", "register", "available_policies", "make_policy", "Context", "Incident",
           "Recovery", "INCIDENT_COLUMNS", "OPERATION_COLUMNS", "RETRY_BACKOFF"]
