"""The ``drsim`` command line.

``drsim run SCENARIO`` simulates a scenario, writes its tables to ``results/`` and prints a summary; ``drsim
validate FILE...`` checks scenario files; ``drsim schema`` prints the scenario JSON Schema.

User mistakes (a bad scenario, an unwritable folder) print a located message and exit with status 2 (bad input) or 1
(cannot write), never a traceback.

The commands live in one module each (:mod:`drsim.cli.run`, :mod:`drsim.cli.sweep`, ...); importing this package
registers them all on :func:`main`, the ``drsim`` console script.
"""

from drsim.cli import plan, risk, run, site, sweep  # noqa: F401  (registers the commands)
from drsim.cli.common import main

__all__ = ["main"]
