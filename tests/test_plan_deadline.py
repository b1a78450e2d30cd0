"""Initial replication against a deadline: the bandwidth, closed form, and the suggested batch order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from click.testing import CliRunner

import drsim
from drsim.cli import main
from drsim.experiments.deadline import deadline_bandwidth
from tests.conftest import base_scenario

MBIT = 1e6 / 8


def two_batches() -> dict:
    """b (4 GB) first, then a (1 GB); 1 kB/s churn, no setup, efficiency and compression 1."""
    d = base_scenario()
    d["site"]["hosts"][0]["vms"] = [{"name": "a", "disks": ["1GB"], "churn": {"rate": "1kB/s"}},
                                    {"name": "b", "disks": ["4GB"], "churn": {"rate": "1kB/s"}}]
    d["replication"]["initial"] = {"batches": [["b"], ["a"]]}
    return d


def test_deadline_bandwidth_closed_form_and_batch_order():
    """5 GB in 10,000 s: 0.5 MB/s = 4 Mbit/s (the catch-ups of 1 kB/s churn add a few parts in a thousand); the
    small VM waits behind the large one: smallest first lowers the mean time to protection from ~9,000 to
    ~6,000 s."""
    with ThreadPoolExecutor(1) as ex:
        r = deadline_bandwidth(drsim.parse_scenario(two_batches()), 10_000, tolerance=0.05 * MBIT, replications=1,
                               executor=ex)
    assert r["required_Bps"] == pytest.approx(5e9 / 10_000, rel=0.015)
    assert r["required_Bps"] - r["not_at_Bps"] <= 0.05 * MBIT
    assert max(r["protected_after_s"].values()) <= 10_000
    assert r["batches"] == [["b"], ["a"]]
    assert r["suggested_batches"] == [["a"], ["b"]]
    assert r["mean_wait_s"] == pytest.approx(9_000, rel=0.02)
    assert r["suggested_mean_wait_s"] == pytest.approx(6_000, rel=0.02)


def test_cli_deadline(tmp_path):
    s = tmp_path / "s.yaml"
    s.write_text(yaml.safe_dump(two_batches()))
    r = CliRunner().invoke(main, ["plan", str(s), "--deadline", "10000s", "--tolerance", "0.1Mbit/s", "-n", "1",
                                  "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "every VM protected within" in r.output and "suggested batch order (smallest first): a; b" in r.output


def test_cli_deadline_refuses_a_bad_tolerance(tmp_path):
    s = tmp_path / "s.yaml"
    s.write_text(yaml.safe_dump(two_batches()))
    r = CliRunner().invoke(main, ["plan", str(s), "--deadline", "10000s", "--rel-tolerance", "50%", "-n", "1",
                                  "--workers", "1"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "error: --rel-tolerance: a share of the answer from 0 to 25% (e.g. 1%), got '50%'" in r.output


def test_deadline_with_a_relative_tolerance():
    """The same 4 Mbit/s answer with a 10 % relative tolerance: a bracket at most 10 % of its upper end wide."""
    with ThreadPoolExecutor(1) as ex:
        r = deadline_bandwidth(drsim.parse_scenario(two_batches()), 10_000, tolerance=0.05 * MBIT, replications=1,
                               executor=ex, rel_tolerance=0.1)
    assert 0.05 * MBIT < r["required_Bps"] - r["not_at_Bps"] <= 0.1 * r["required_Bps"]  # wider than absolute
    assert r["bracket_tolerance_Bps"] == pytest.approx(0.1 * r["required_Bps"])
    assert 5e9 / 10_000 <= r["required_Bps"] <= 1.1 * 5e9 / 10_000 * 1.015
