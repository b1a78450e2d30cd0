"""From a run's recorded events to what a planner reads: tables, exact RPO statistics, findings, run folders.

:func:`simulate` runs one scenario; :class:`Results` holds its tables as DataFrames; :mod:`~drsim.results.metrics`
computes exact statistics of the piecewise-linear RPO curve; :mod:`~drsim.results.findings` says what matters in
plain words; :mod:`~drsim.results.folders` writes run folders. Imports :mod:`drsim.scenario` and :mod:`drsim.model`.
"""

from drsim.results.run import simulate
from drsim.results.tables import SERVICE_DOWN_STATES, SITE, TABLES, Results

__all__ = ["simulate", "Results", "SITE", "TABLES", "SERVICE_DOWN_STATES"]
