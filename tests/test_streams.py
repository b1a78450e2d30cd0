"""Named random streams give the generator of SeedSequence(root entropy, spawn key = root's + crc32 of the names),
whatever shortcut computes it (a long run asks for one per incident)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from drsim.model.streams import Streams


def reference(root: np.random.SeedSequence, *names: str) -> np.random.Generator:
    key = (*root.spawn_key, *(zlib.crc32(n.encode("utf-8")) for n in names))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=root.entropy, spawn_key=key)))


@pytest.mark.parametrize("seed", [0, 42, 2**63 - 1, np.random.SeedSequence(7, spawn_key=(0x57494E, 3)),
                                  np.random.SeedSequence(9, spawn_key=(2**40,)), np.random.SeedSequence()])
def test_streams_are_the_seed_sequence_children(seed):
    streams = Streams(seed)
    rng = np.random.default_rng(1)
    for _ in range(20):
        names = [str(rng.integers(0, 10**9)) for _ in range(int(rng.integers(0, 5)))]
        a, b = streams.get(*names), reference(streams.root, *names)
        assert a.bit_generator.state == b.bit_generator.state
        assert (a.integers(0, 2**62, 5) == b.integers(0, 2**62, 5)).all()
