"""The bundled scenarios' tables, pinned: a refactoring must give bit-identical tables.

Each table of a default-seed run of every bundled scenario is reduced to a digest of its column names, dtypes and
the exact bytes of its values. A change that alters any number fails here; when a change of the model is meant
to alter them, say so in the commit and update the digests with ``python tests/test_pinned_tables.py``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import drsim
from drsim.results import TABLES

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

PINNED = {
    "branch-what-if": {
        "cycles": "4ac11e7f65106ee9", "health": "9c5704d58dc74ed5", "incidents": "f4c179fa06642baf",
        "link": "a9661f409b1ea9e6", "operations": "45b0132ea3e26ef3", "recovery_points": "2db0d9828a4ac677",
        "rpo": "f0375b8c602a231d", "states": "54c7b0f2c6ab2268", "summary": "2228e736e0857bd6",
        "transfers": "9d06a6c3f82bee47",
    },
    "essentials-office": {
        "cycles": "68b4fc4532aadfd7", "health": "42f5672d15c3895b", "incidents": "af6919f688d36e5a",
        "link": "79033101dbba50f3", "operations": "150eb3c648722650", "recovery_points": "4fdecab2045cce92",
        "rpo": "88912ddb6c0e4b74", "states": "5151f87986b163dc", "summary": "4963ecad685b46aa",
        "transfers": "6cff12152d422b0e",
    },
    "ransomware": {
        "cycles": "ccc7f3bbc53d89aa", "health": "5d4f57f7aacf5bd3", "incidents": "fffc74e5634b26b3",
        "link": "05386078cd7ab028", "operations": "7ded99014df976b2", "recovery_points": "b4cab2c4b377e253",
        "rpo": "9d2b51c7db33250e", "states": "d015f4786474aa76", "summary": "1f66f32458eba1e1",
        "transfers": "f37a69bfce8500d5",
    },
    "saturated-branch": {
        "cycles": "0f4ca10f3668f6ef", "health": "93cd39c1f7389e20", "incidents": "61eca8754341e258",
        "link": "42799eee051e4458", "operations": "801b148efd55b45f", "recovery_points": "bdb102d052e57d0b",
        "rpo": "e979c16f0c4ce735", "states": "2af979bdc12441eb", "summary": "4927d9ebc6523dc4",
        "transfers": "5754764c6ea15066",
    },
    "site-disaster": {
        "cycles": "eb3c718dc1dac186", "health": "db2c9b54dec55d5e", "incidents": "359769483d5900cf",
        "link": "46e808fbc34afa94", "operations": "06aa300c7552a166", "recovery_points": "4cbff6c434f7c28f",
        "rpo": "c2a3cfaa3dffbffe", "states": "50874472626727a9", "summary": "c422e5b84bca6606",
        "transfers": "80c77227c5dfca16",
    },
    "trace-replay": {
        "cycles": "7e590296ae6daef8", "health": "36bf01c13877d793", "incidents": "61eca8754341e258",
        "link": "ad44187ce5032d6d", "operations": "cee5f698072e64d4", "recovery_points": "4c724096c72467be",
        "rpo": "dd0bbed587d7fdda", "states": "3eb8216ba808246c", "summary": "42c671b648744480",
        "transfers": "e0d7c371a4d86212",
    },
}


def frame_digest(df: pd.DataFrame) -> str:
    """16 hex digits of SHA-256 over the column names, dtypes and the exact bytes of every value."""
    h = hashlib.sha256()
    h.update(repr(list(df.columns)).encode())
    h.update(repr([str(t) for t in df.dtypes]).encode())
    for c in df.columns:
        col = df[c]
        if col.dtype.kind in "biufcmM":
            h.update(np.ascontiguousarray(col.to_numpy()).tobytes())
        else:
            h.update("\x1f".join(map(str, col.tolist())).encode())
    return h.hexdigest()[:16]


def digests(name: str) -> dict[str, str]:
    results = drsim.simulate(SCENARIOS / f"{name}.yaml")
    return {table: frame_digest(getattr(results, table)) for table in TABLES}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_bundled_scenario_tables_are_bit_identical(name):
    assert digests(name) == PINNED[name]


def test_the_digest_sees_the_last_bit():
    df = pd.DataFrame({"x": [1.0, 2.0]})
    nudged = pd.DataFrame({"x": [1.0, np.nextafter(2.0, 3.0)]})
    assert frame_digest(df) != frame_digest(nudged)


if __name__ == "__main__":  # print the digests to pin after an intended change of the model
    json.dump({p.stem: digests(p.stem) for p in sorted(SCENARIOS.glob("*.yaml"))}, sys.stdout, indent=1)
