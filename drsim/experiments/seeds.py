"""The seeds of an experiment (common random numbers): the run seed of each replication and the seed sequence
of the Latin hypercube, both children of one ``numpy.random.SeedSequence`` root per experiment.

One root per experiment, from the experiment seed (default: the scenario's seed). Replication ``k`` gets the
child ``SeedSequence(entropy, spawn_key=(k,))`` and from it an integer run seed (:func:`replication_seed`). The
run seed depends on ``k`` only, never on the sweep point, so every point sees the same failure timeline, churn
and operation draws in replication ``k``: comparisons between points are paired. The Latin hypercube draws from
its own child, ``spawn_key=(0x4C4853, 0)`` (:func:`lhs_seed_sequence`), so the design depends on the seed, the
ranges and the number of samples only.

Imports nothing of drsim (numpy only).
"""

from __future__ import annotations

import numpy as np

__all__ = ["replication_seed", "lhs_seed_sequence"]

_LHS_SPAWN_KEY = (0x4C4853, 0)  # "LHS"; two words, so it is never a replication's child (one word)


def replication_seed(experiment_seed: int, replication: int) -> int:
    """The run seed of replication ``replication`` (0-based): a 63-bit integer drawn from the child
    ``SeedSequence(experiment_seed, spawn_key=(replication,))``. It does not depend on the sweep point."""
    root = np.random.SeedSequence(experiment_seed)
    child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, replication))
    return int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def lhs_seed_sequence(experiment_seed: int) -> np.random.SeedSequence:
    """The child ``SeedSequence(experiment_seed, spawn_key=(0x4C4853, 0))`` that draws the Latin hypercube:
    independent of every replication's (their spawn keys have one word)."""
    root = np.random.SeedSequence(experiment_seed)
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *_LHS_SPAWN_KEY))

