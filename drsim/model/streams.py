"""Named random streams: every random draw in a run comes from a stream named for what it serves.

``Streams(seed).get("churn", "ramh157v01")`` always gives the same ``numpy.random.Generator`` for the
same seed and names, independent of which other streams exist or in which order they are asked for.
Adding a VM, changing a policy or a bandwidth therefore leaves every other stream, such as the failure
timeline, unchanged (common random numbers). Global random state is never used.
"""

from __future__ import annotations

import zlib

import numpy as np
from numpy.random.bit_generator import _coerce_to_uint32_array

__all__ = ["Streams"]


def _key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


class Streams:
    """A family of independent generators derived from one ``SeedSequence``."""

    def __init__(self, seed: int | np.random.SeedSequence):
        self.root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        # the root's entropy as the 32-bit words SeedSequence mixes, converted once (a long run asks for a stream
        # per incident); the spawn key is handed over as one array of words: the same words, the same pool
        self._entropy = _coerce_to_uint32_array(self.root.entropy)
        prefix = tuple(int(k) for k in self.root.spawn_key)
        self._prefix = prefix if all(0 <= k < 2**32 for k in prefix) else None  # else: the general path

    def get(self, *names: str) -> np.random.Generator:
        """The generator for a path of names, e.g. ``get("failures", "host", "RAM-H1-7")``: the one of
        ``SeedSequence(entropy=root.entropy, spawn_key=(*root.spawn_key, *crc32(names)))``."""
        if self._prefix is None:
            seq = np.random.SeedSequence(entropy=self.root.entropy,
                                         spawn_key=(*self.root.spawn_key, *(_key(n) for n in names)))
        else:
            key = np.array((*self._prefix, *(_key(n) for n in names)), dtype=np.uint32)
            seq = np.random.SeedSequence(entropy=self._entropy, spawn_key=(key,))
        return np.random.Generator(np.random.PCG64(seq))
