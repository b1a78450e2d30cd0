"""Named random streams: every random draw in a run comes from a stream named for what it serves.

``Streams(seed).get("churn", "ramh157v01")`` always gives the same ``numpy.random.Generator`` for the
same seed and names, independent of which other streams exist or in which order they are asked for.
Adding a VM, changing a policy or a bandwidth therefore leaves every other stream, such as the failure
timeline, unchanged (common random numbers). Global random state is never used.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["Streams"]


def _key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


class Streams:
    """A family of independent generators derived from one ``SeedSequence``."""

    def __init__(self, seed: int | np.random.SeedSequence):
        self.root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)

    def get(self, *names: str) -> np.random.Generator:
        """The generator for a path of names, e.g. ``get("failures", "host", "RAM-H1-7")``."""
        seq = np.random.SeedSequence(
            entropy=self.root.entropy,
            spawn_key=(*self.root.spawn_key, *(_key(n) for n in names)),
        )
        return np.random.Generator(np.random.PCG64(seq))
