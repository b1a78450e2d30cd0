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
        "cycles": "d4f7c36f594188c2", "health": "345d4b727f2cdc25", "incidents": "f4c179fa06642baf",
        "link": "3874569e1e402dff", "operations": "45b0132ea3e26ef3", "recovery_points": "bd6ba045bc490ce8",
        "rpo": "33e4709ba79b971c", "states": "79d5eeb78c2e08a8", "summary": "aff5c92bd2fd84b3",
        "transfers": "c859158f14fad937",
    },
    "essentials-office": {
        "cycles": "c31d4868afa94ace", "health": "bcf5db97ca071574", "incidents": "780ae8137938b161",
        "link": "a1eca0eec5f2b212", "operations": "92fa00154ae22758", "recovery_points": "b3fd2ac4e43cae06",
        "rpo": "5cd05a362beaefd1", "states": "3dbf6d85a55fb420", "summary": "9f5e2d0c4cf6a6f5",
        "transfers": "ecc5e98a81f77dc1",
    },
    "ransomware": {
        "cycles": "11c21ef85723c063", "health": "bf409d7c02a9ad7c", "incidents": "8e06f963d1743d46",
        "link": "716208dbfbd41176", "operations": "f37b3eb3b88cb158", "recovery_points": "54a4a00ba3f6e84c",
        "rpo": "ac1f944d3c27aa33", "states": "e7af750ef316db1f", "summary": "949593338ba3a3bb",
        "transfers": "0e6289a9fe0e7052",
    },
    "saturated-branch": {
        "cycles": "ce228a8611262532", "health": "90c47806562debd1", "incidents": "61eca8754341e258",
        "link": "dec73397f0801f13", "operations": "27f9a9f4b2315e00", "recovery_points": "690895035fe36995",
        "rpo": "4cfda98fff8119af", "states": "8329f21804faeb9a", "summary": "aeaea5ed6fc387fd",
        "transfers": "4f3ff6a19e671dd7",
    },
    "site-disaster": {
        "cycles": "f0030e3200c43f19", "health": "bf0b7bf884d857c6", "incidents": "c2d759c226318374",
        "link": "f427de1f94dafe4f", "operations": "91e709cb050a0cba", "recovery_points": "36e80760d6e7c64c",
        "rpo": "c2400ea4d3710bce", "states": "f55968143b5a73b6", "summary": "30691962e0762e1a",
        "transfers": "be67493333fcb268",
    },
    "trace-replay": {
        "cycles": "844e0ee428334705", "health": "2faa88a7a6ae6e90", "incidents": "61eca8754341e258",
        "link": "11514af5931bfc65", "operations": "cee5f698072e64d4", "recovery_points": "b73319a65240899e",
        "rpo": "a3d544da8e4ab2c7", "states": "15b1f23579119645", "summary": "85c0d6f616d7449b",
        "transfers": "2e3f58f0681d8ff6",
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
