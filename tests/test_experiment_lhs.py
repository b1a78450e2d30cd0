"""Latin hypercube sweeps: ranges with units, choices, seeding, crossing with the grid, the --lhs option."""

from __future__ import annotations

import math
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from drsim.experiments.design import latin_hypercube
from drsim.experiments.runner import run_experiment
from drsim.experiments.seeds import lhs_seed_sequence, replication_seed
from drsim.experiments.settings_paths import parse_lhs_option
from drsim.results.tables import SITE
from drsim.scenario import units
from drsim.scenario.fields import Choices, Range, parse_lhs
from drsim.scenario.problems import ScenarioError
from tests.conftest import make_scenario

HOST_FAILURES = {"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "3d"},
                 "repair": {"dist": "lognormal", "median": "2h", "p95": "6h"}}


def stochastic():
    return make_scenario({"duration": "4d", "site.hosts[0].vms[0].churn.variation": 0.3, "failures": [HOST_FAILURES]})


# ----------------------------------------------------------------------------------------------------
# ranges and choices


@pytest.mark.parametrize(("raw", "kind", "low", "high", "log"), [
    ("10Mbit/s..50Mbit/s", "rate", 1.25e6, 6.25e6, False),
    ("10Mbps .. 2MB/s", "rate", 1.25e6, 2e6, False),
    ("30s..15m", "duration", 30.0, 900.0, False),
    ("1y..100y:log", "duration", units.YEAR, 100 * units.YEAR, True),
    ("100GiB..2TB", "size", 100 * 2.0**30, 2e12, False),
    ("1%..5%", "fraction", 0.01, 0.05, False),
    ("2%/day..5%/day", "fraction", 0.02, 0.05, False),
    ("0.5..0.9", "number", 0.5, 0.9, False),
    ("1..8", "integer", 1, 8, False),
    ({"low": "1h", "high": "1d", "scale": "log"}, "duration", 3600.0, 86400.0, True),
    ({"low": 2, "high": 6}, "integer", 2, 6, False),
])
def test_ranges_read_with_units(raw, kind, low, high, log):
    r = parse_lhs(raw)
    assert isinstance(r, Range)
    assert (r.kind, r.low, r.high, r.log) == (kind, pytest.approx(low), pytest.approx(high), log)


@pytest.mark.parametrize(("raw", "message"), [
    ("50Mbit/s..10Mbit/s", "the range '50Mbit/s..10Mbit/s' is empty: its low end is above its high end"),
    ("10Mbit/s..10Mbit/s", "holds a single value"),
    ("10Mbit/s..5m", "give both ends with the same kind of unit"),
    ("0s..1h:log", "a log range needs a low end above zero"),
    ("1..2:lin", "unknown scale 'lin'"),
    ("fast", "expected a range like '10Mbit/s..50Mbit/s'"),
    (["30s"], "list at least two choices"),
    ({"low": 1}, "a range mapping has the keys low, high"),
    ({"low": 1, "high": 2, "step": 1}, "unknown key 'step'"),
])
def test_bad_ranges_say_what_is_expected(raw, message):
    with pytest.raises(ValueError, match=None) as info:
        parse_lhs(raw)
    assert message in str(info.value)


def test_range_values_and_settings_read_back():
    rate = parse_lhs("10Mbit/s..50Mbit/s")
    assert rate.at(0.0) == 1.25e6 and rate.at(0.5) == pytest.approx(3.75e6)
    assert units.parse_rate(rate.setting(3.75e6 + 0.1)) == 3.75e6 + 0.1  # exactly the value drawn
    size = parse_lhs("1GB..2GB")
    assert units.parse_size(size.setting(1.5e9 + 0.5)) == 1.5e9 + 0.5
    assert parse_lhs("1m..5m").setting(125.5) == 125.5  # a bare number is seconds
    log = parse_lhs("1h..100h:log")
    assert log.at(0.5) == pytest.approx(10 * 3600.0)
    ints = parse_lhs("1..4")
    assert [ints.at(u) for u in (0.0, 0.2499, 0.25, 0.9999)] == [1, 1, 2, 4]
    assert Choices(("a", "b", "c")).at(0.34) == "b"
    assert rate.format(3.75e6) == "30 Mbit/s"


# ----------------------------------------------------------------------------------------------------
# the design


def test_latin_hypercube_covers_every_stratum_once():
    n = 12
    dims = {"a": parse_lhs("10Mbit/s..50Mbit/s"), "b": parse_lhs("1h..100h:log"), "c": parse_lhs("1..12"),
            "d": parse_lhs(["30s", "5m", "15m"])}
    design = latin_hypercube(dims, n, seed=7)
    assert len(design) == n and all(list(d) == ["a", "b", "c", "d"] for d in design)
    a = np.array([d["a"] for d in design])
    assert sorted(np.floor((a - 1.25e6) / 5e6 * n).astype(int)) == list(range(n))  # one sample per 1/n
    b = np.log(np.array([d["b"] for d in design]) / 3600.0) / np.log(100.0)
    assert sorted(np.floor(b * n).astype(int)) == list(range(n))  # strata of the logarithm
    assert sorted(d["c"] for d in design) == list(range(1, 13))  # 12 integers, 12 samples: each once
    assert Counter(d["d"] for d in design) == {"30s": 4, "5m": 4, "15m": 4}


def test_latin_hypercube_is_drawn_from_its_own_seed_sequence():
    dims = {"x": parse_lhs("0.0..1.0"), "y": parse_lhs("0.0..2.0")}
    state = np.random.get_state()
    design = latin_hypercube(dims, 5, seed=11)
    assert all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
               for a, b in zip(np.random.get_state(), state, strict=True))  # the global state is untouched
    rng = np.random.default_rng(np.random.SeedSequence(11, spawn_key=(0x4C4853, 0)))
    ux = (rng.permutation(5) + rng.random(5)) / 5
    uy = (rng.permutation(5) + rng.random(5)) / 5
    assert [d["x"] for d in design] == pytest.approx(list(ux), abs=0)
    assert [d["y"] for d in design] == pytest.approx(list(2 * uy), abs=0)
    np.random.seed(1)
    again = latin_hypercube(dims, 5, seed=11)
    assert again == design  # the same seed gives the same design, whatever the global state
    assert latin_hypercube(dims, 5, seed=12) != design
    child = lhs_seed_sequence(11)
    assert child.spawn_key == (0x4C4853, 0) and child.entropy == 11
    # independent of the replications' streams
    assert int(child.generate_state(1, dtype=np.uint64)[0]) >> 1 not in {replication_seed(11, k) for k in range(50)}


def test_lhs_crossed_with_the_grid():
    exp = run_experiment(stochastic(), replications=2, seed=3, executor=ThreadPoolExecutor(1),
                         sweep={"policy.name": ["manual", "automatic"]},
                         lhs={"link.upload": "4Mbit/s..16Mbit/s", "replication.interval": ["30s", "5m"]}, samples=3)
    pts = exp.points
    assert list(pts.columns) == ["point", "policy.name", "sample", "link.upload", "replication.interval"]
    assert list(pts["policy.name"]) == ["manual"] * 3 + ["automatic"] * 3
    assert list(pts["sample"]) == [0, 1, 2, 0, 1, 2]
    first, second = pts.iloc[:3], pts.iloc[3:]
    assert list(first["link.upload"]) == list(second["link.upload"])  # the same samples at every grid point
    assert list(first["replication.interval"]) == list(second["replication.interval"])
    expected = latin_hypercube({"link.upload": parse_lhs("4Mbit/s..16Mbit/s"),
                                "replication.interval": parse_lhs(["30s", "5m"])}, 3, seed=3)
    assert list(first["link.upload"]) == [d["link.upload"] for d in expected]
    assert sorted(np.floor((first["link.upload"] - 0.5e6) / 1.5e6 * 3).astype(int)) == [0, 1, 2]
    for p in range(6):
        sc = exp.scenario_for(p)
        assert sc.link.upload == pts.loc[p, "link.upload"]  # the sampled value, exactly
        assert sc.replication.interval == units.parse_duration(pts.loc[p, "replication.interval"])
        assert sc.policy.name == pts.loc[p, "policy.name"]
    assert list(exp.tidy.columns[:8]) == ["point", "policy.name", "sample", "link.upload", "replication.interval",
                                          "replication", "seed", "vm"]
    site = exp.tidy[exp.tidy["vm"] == SITE]
    assert len(site) == 12 and all(list(g["seed"]) == exp.seeds for _, g in site.groupby("point"))
    assert not ({"sample", "link.upload"} & set(exp.aggregate["metric"]))
    assert exp.sweep["link.upload"] == list(first["link.upload"]) and exp.sweep["policy.name"] == ["manual",
                                                                                                   "automatic"]
    meta = exp.metadata()
    assert meta["samples"] == 3 and meta["lhs"]["link.upload"]["kind"] == "rate"
    assert meta["lhs"]["replication.interval"] == {"choices": ["30s", "5m"]}
    # a faster upload protects sooner in every replication (common random numbers make this exact)
    manual = site[site["policy.name"] == "manual"].pivot(index="replication", columns="link.upload",
                                                          values="initial_replication_s")
    assert (np.diff(manual[sorted(manual.columns)].to_numpy(), axis=1) < 0).all()


def test_lhs_tables_identical_whatever_the_executor():
    kw = dict(replications=3, seed=5, lhs={"link.upload": "2Mbit/s..20Mbit/s:log"}, samples=4)
    ref = run_experiment(stochastic(), executor=ThreadPoolExecutor(1), **kw)
    with ProcessPoolExecutor(2) as pool:
        other = run_experiment(stochastic(), executor=pool, batch_size=1, **kw)
    pd.testing.assert_frame_equal(other.tidy, ref.tidy)
    pd.testing.assert_frame_equal(other.aggregate, ref.aggregate)
    assert ref.tidy["downtime_s"].nunique() > 1


@pytest.mark.parametrize(("kw", "message"), [
    ({"lhs": {"link.uplod": "1Mbit/s..2Mbit/s"}, "samples": 2}, "link.uplod: unknown key 'uplod' (did you mean"),
    ({"lhs": {"link.upload": "1s..2s"}, "samples": 2}, "link.upload: a rate needs a unit"),
    ({"lhs": {"link.upload": "2Mbit/s..1Mbit/s"}, "samples": 2}, "link.upload: the range '2Mbit/s..1Mbit/s' is empty"),
    ({"lhs": {"sample": "1..2"}, "samples": 2}, "'sample' cannot be swept"),
    ({"lhs": {"link.upload": "1Mbit/s..2Mbit/s"}, "samples": 2, "sweep": {"link.upload": ["3Mbit/s"]}},
     "link.upload: is both in the grid and in the Latin hypercube"),
    ({"lhs": {"link.upload": "1Mbit/s..2Mbit/s"}}, "a Latin hypercube needs its number of samples"),
    ({"samples": 3}, "samples is given but no Latin hypercube range is"),
    ({"lhs": {"link.upload": "1Mbit/s..2Mbit/s"}, "samples": 0}, "samples must be a positive integer, got 0"),
])
def test_bad_lhs_requests(kw, message):
    with pytest.raises((ScenarioError, ValueError)) as info:
        run_experiment(make_scenario(), replications=1, executor=ThreadPoolExecutor(1), **kw)
    assert message in str(info.value)


def test_parse_lhs_option():
    path, dim = parse_lhs_option("link.upload=10Mbit/s..50Mbit/s")
    assert path == "link.upload" and dim == Range(1.25e6, 6.25e6, "rate", False, "10Mbit/s..50Mbit/s")
    assert parse_lhs_option("replication.interval=30s, 5m,15m") == ("replication.interval",
                                                                     Choices(("30s", "5m", "15m")))
    assert parse_lhs_option("failover.quota=1,4")[1] == Choices((1, 4))
    assert parse_lhs_option("failures[0].every.mean=1y..100y:log")[1].log
    for text, message in [("link.upload", "expected path=LO..HI or path=V1,V2"),
                          ("link.upload=", "expected path=LO..HI"),
                          ("link.upload=fast", "link.upload: expected a range like"),
                          ("link.upload=9Mbit/s..1Mbit/s", "is empty"),
                          ("link..upload=1..2", "bad setting path")]:
        with pytest.raises(ScenarioError) as info:
            parse_lhs_option(text)
        assert message in str(info.value) and str(info.value).startswith(f"--lhs {text}")
    assert math.isclose(parse_lhs_option("x=1%..3%")[1].high, 0.03)
