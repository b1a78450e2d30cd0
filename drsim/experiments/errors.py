"""The error of an experiment that cannot run as asked: :class:`ExperimentError`.

Imports nothing of drsim (every module of the experiment stage may raise it).
"""

from __future__ import annotations

__all__ = ["ExperimentError"]


class ExperimentError(ValueError):
    """An experiment that cannot run as asked: a bad option, or a folder that holds a different experiment.
    ``key``: the experiment setting at fault (``"samples"``, ``"precision"``...), when there is one."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key
