"""Experiments: seeding (common random numbers), sweeps, executors, failures, aggregation, the sweep command."""

from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import drsim
from drsim.cli import main
from drsim.experiments.design import sweep_points
from drsim.experiments.runner import run_experiment
from drsim.experiments.seeds import replication_seed
from drsim.experiments.settings_paths import apply_settings, parse_set
from drsim.experiments.statistics import aggregate, t_975
from drsim.model.failures import failure_timeline
from drsim.model.policies import Policy, register
from drsim.model.streams import Streams
from drsim.results.tables import SITE
from drsim.scenario.problems import ScenarioError
from tests.conftest import make_scenario

HOST_FAILURES = {"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "3d"},
                 "repair": {"dist": "lognormal", "median": "2h", "p95": "6h"}}


def stochastic(**changes):
    """The tiny scenario with random churn and random host failures over ten days."""
    return make_scenario({"duration": "10d", "site.hosts[0].vms[0].churn.variation": 0.3,
                          "failures": [HOST_FAILURES], **changes})


SWEEP = {"link.upload": ["8Mbit/s", "16Mbit/s"], "policy.name": ["wait-for-repair", "automatic"]}


# ----------------------------------------------------------------------------------------------------
# seeds


def test_replication_seed_depends_on_the_experiment_seed_and_replication_only():
    seeds = [replication_seed(7, k) for k in range(50)]
    assert seeds == [replication_seed(7, k) for k in range(50)]
    assert len(set(seeds)) == 50
    assert all(0 <= s < 2**63 for s in seeds)
    assert replication_seed(8, 0) != seeds[0]
    child = np.random.SeedSequence(np.random.SeedSequence(7).entropy, spawn_key=(3,))
    assert seeds[3] == int(child.generate_state(1, dtype=np.uint64)[0]) >> 1


def test_every_point_runs_the_same_seeds():
    calls = []
    exp = run_experiment(stochastic(), replications=3, sweep=SWEEP, executor=ThreadPoolExecutor(1), seed=5,
                         progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (12, 12) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert exp.seeds == [replication_seed(5, k) for k in range(3)]
    runs = exp.tidy[exp.tidy["vm"] == SITE]
    assert len(runs) == 4 * 3
    for _, per_point in runs.groupby("point"):
        assert list(per_point["seed"]) == exp.seeds
    default = run_experiment(stochastic(), replications=1, executor=ThreadPoolExecutor(1))
    assert default.seed == 1 and default.seeds == [replication_seed(1, 0)]  # the scenario's seed


# ----------------------------------------------------------------------------------------------------
# executors


def test_tables_identical_whatever_the_executor():
    scenario = stochastic()

    def run(**kw):
        return run_experiment(scenario, replications=5, sweep=SWEEP, seed=11, **kw)

    with ThreadPoolExecutor(1) as one:
        ref = run(executor=one)
    assert len(ref.tidy) == 4 * 5 * 2 and ref.failures.empty
    assert list(ref.tidy.columns[:6]) == ["point", "link.upload", "policy.name", "replication", "seed", "vm"]
    assert ref.tidy["downtime_s"].nunique() > 1  # really random
    with ProcessPoolExecutor(2) as two:
        others = [run(executor=two), run(executor=two, batch_size=1, max_in_flight=1)]
    with ThreadPoolExecutor(3) as three:
        others.append(run(executor=three, batch_size=2))
    others.append(run())  # default: a process pool with one worker per core
    for other in others:
        pd.testing.assert_frame_equal(other.tidy, ref.tidy)
        pd.testing.assert_frame_equal(other.aggregate, ref.aggregate)
        pd.testing.assert_frame_equal(other.failures, ref.failures)


def test_a_replication_is_reproduced_by_simulate():
    exp = run_experiment(stochastic(), replications=2, sweep=SWEEP, executor=ThreadPoolExecutor(1))
    rows = exp.tidy[(exp.tidy["point"] == 3) & (exp.tidy["replication"] == 1)]
    again = drsim.simulate(exp.scenario_for(3), seed=int(rows["seed"].iloc[0])).summary
    cols = list(again.columns)
    pd.testing.assert_frame_equal(rows[cols].reset_index(drop=True), again)
    pd.testing.assert_frame_equal(exp.simulate(3, 1).summary, again)


# ----------------------------------------------------------------------------------------------------
# common random numbers


def test_policies_see_the_same_failures_in_each_replication():
    scenario = stochastic(duration="20d")
    exp = run_experiment(scenario, replications=4, sweep={"policy.name": ["wait-for-repair", "automatic"]},
                         executor=ThreadPoolExecutor(2))
    timelines = []
    for k, seed in enumerate(exp.seeds):
        a = drsim.simulate(exp.scenario_for(0), seed=seed)
        b = drsim.simulate(exp.scenario_for(1), seed=seed)
        assert len(a.incidents) > 0
        assert list(a.incidents["failed_at"]) == list(b.incidents["failed_at"])
        starts = [e.start for e in failure_timeline(scenario, Streams(seed))]
        assert list(a.incidents["failed_at"]) == starts
        timelines.append(tuple(starts))
        site = exp.tidy[(exp.tidy["vm"] == SITE) & (exp.tidy["replication"] == k)].set_index("point")
        assert site.loc[1, "downtime_s"] < site.loc[0, "downtime_s"]  # the policy matters, the failures don't
    assert len(set(timelines)) == len(timelines)  # replications differ


# ----------------------------------------------------------------------------------------------------
# failures


@register
class _Explodes(Policy):
    """A policy with a bug: it raises as soon as something fails."""

    name = "test-explodes"

    def on_failure(self, ctx, incident):
        raise RuntimeError(f"boom at {ctx.now:.0f}")


def test_a_failing_replication_is_recorded_and_the_rest_completes():
    scenario = stochastic(duration="1d", failures=[{**HOST_FAILURES, "every": {"dist": "exponential",
                                                                                  "mean": "2d"}}])
    exp = run_experiment(scenario, replications=8, sweep={"policy.name": ["manual", "test-explodes"]},
                         executor=ThreadPoolExecutor(2), batch_size=3)
    bad = [k for k, s in enumerate(exp.seeds) if failure_timeline(scenario, Streams(s))]
    assert 0 < len(bad) < 8  # some replications have a failure within the day, some not
    f = exp.failures
    assert list(f.columns) == ["point", "policy.name", "replication", "seed", "error", "traceback"]
    assert list(f["point"]) == [1] * len(bad) and list(f["replication"]) == bad
    assert list(f["seed"]) == [exp.seeds[k] for k in bad]
    assert f["error"].str.fullmatch(r"RuntimeError: boom at \d+").all()
    assert f["traceback"].str.contains("on_failure").all()
    site = exp.tidy[exp.tidy["vm"] == SITE]
    assert list(site.loc[site["point"] == 0, "replication"]) == list(range(8))
    assert list(site.loc[site["point"] == 1, "replication"]) == [k for k in range(8) if k not in bad]
    agg = exp.aggregate
    assert agg.loc[(agg["point"] == 1) & (agg["metric"] == "incidents"), "n"].iloc[0] == 8 - len(bad)
    with pytest.raises(RuntimeError, match="boom"):
        drsim.simulate(exp.scenario_for(1), seed=int(f["seed"].iloc[0]))


def test_every_replication_failing():
    scenario = make_scenario({"failures": [{"kind": "host", "target": "H1", "at": "2h"}],
                              "policy": {"name": "test-explodes"}})
    exp = run_experiment(scenario, replications=3, executor=ThreadPoolExecutor(1))
    assert exp.tidy.empty and exp.aggregate.empty
    assert list(exp.failures["replication"]) == [0, 1, 2]


# ----------------------------------------------------------------------------------------------------
# sweeps


def test_grid_order_values_and_applied_settings():
    base = make_scenario({"policy": {"name": "manual", "detect": "5m", "failback": "immediate"}})
    points = sweep_points(base, {"link.upload": ["8Mbit/s", "16Mbit/s"], "policy.name": ["manual", "automatic"],
                                 "site.hosts[0].vms[0].churn.rate": "50kB/s"})
    assert [(s["link.upload"], s["policy.name"]) for s, _ in points] == [
        ("8Mbit/s", "manual"), ("8Mbit/s", "automatic"), ("16Mbit/s", "manual"), ("16Mbit/s", "automatic")]
    assert [sc.link.upload for _, sc in points] == [1e6, 1e6, 2e6, 2e6]
    assert all(sc.site.hosts[0].vms[0].churn.rate == 50e3 for _, sc in points)
    assert points[0][1].policy.params == {"detect": "5m", "failback": "immediate"}
    assert points[1][1].policy.name == "automatic" and points[1][1].policy.params == {}  # manual's dropped
    threshold = sweep_points(base, {"policy.name": ["threshold"]})[0][1]
    assert threshold.policy.params == {"detect": "5m"}  # kept where the new policy takes it
    both = sweep_points(base, {"policy.name": ["threshold"], "policy.threshold": ["2h"]})[0][1]
    assert both.policy.params == {"detect": "5m", "threshold": "2h"}
    assert sweep_points(base, None) == [({}, base)]
    assert apply_settings(base, {"replication.interval": "30s"}).replication.interval == 30.0


@pytest.mark.parametrize(("sweep", "message"), [
    ({"link.upload": ["fast"]}, "sweep point 0 (link.upload=fast): link.upload: expected a rate"),
    ({"link.uplod": ["1Mbit/s"]}, "link.uplod: unknown key 'uplod' (did you mean 'upload'?)"),
    ({"site.hosts[3].name": ["x"]}, "site.hosts[3]: index 3 is out of range (the list has 1 item)"),
    ({"link.upload.fast": [1]}, "link.upload: is a value, not a section: cannot set 'fast' in it"),
    ({"plans[0].name": ["x"]}, "plans[0]: index 0 is out of range (the list has 0 items)"),
    ({"policy.name": ["nope"]}, "policy.name: unknown policy 'nope'"),
    ({"policy.threshold": ["2h"]}, "policy.threshold: unknown parameter for policy 'manual'"),
    ({"seed": [1, 2]}, "seed: is set for each replication by the experiment"),
    ({"link.upload": []}, "link.upload: no values to sweep"),
    ({"link..upload": [1]}, "bad setting path 'link..upload'"),
])
def test_bad_sweeps_name_the_path(sweep, message):
    with pytest.raises(ScenarioError) as info:
        run_experiment(make_scenario(), replications=1, sweep=sweep, executor=ThreadPoolExecutor(1))
    assert message in str(info.value)


def test_parse_set():
    assert parse_set("link.upload=10Mbit/s, 20Mbit/s") == ("link.upload", ["10Mbit/s", "20Mbit/s"])
    assert parse_set("failover.quota=1,4") == ("failover.quota", [1, 4])
    assert parse_set("failures[0].every={dist: exponential, mean: 1y},{dist: exponential, mean: 2y}") == (
        "failures[0].every", [{"dist": "exponential", "mean": "1y"}, {"dist": "exponential", "mean": "2y"}])
    for text, message in [("link.upload", "expected path=value"), ("link.upload=1,,2", "an empty value"),
                          ("link.upload=[1", "cannot read value"), ("=1", "expected path=value")]:
        with pytest.raises(ScenarioError, match=message):
            parse_set(text)


# ----------------------------------------------------------------------------------------------------
# aggregation


def test_t_quantiles():
    assert t_975(4) == pytest.approx(2.7764451, abs=1e-7)
    assert t_975(30) == pytest.approx(2.0422725, abs=1e-7)
    for df, exact in [(31, 2.0395134), (40, 2.0210754), (60, 2.0002978), (120, 1.9799304), (1000, 1.9623391)]:
        assert t_975(df) == pytest.approx(exact, abs=1e-6)
    assert math.isnan(t_975(0))


def test_aggregate_known_case():
    tidy = pd.DataFrame({
        "point": [0] * 5 + [1] * 5 + [2],
        "replication": [0, 1, 2, 3, 4] * 2 + [0],
        "seed": 0,
        "vm": ["b"] * 5 + ["b", "b", "b", "a", "a"] + ["b"],
        "x": [1.0, 2.0, 3.0, 4.0, 5.0, 10.0, np.nan, 30.0, 1.0, 1.0, 7.0],
        "ok": [True, True, False, True, True, True, True, True, True, True, False],
        "label": "text",
    })
    agg = aggregate(tidy)
    assert list(agg.columns) == ["point", "vm", "metric", "n", "mean", "std", "p50", "p95", "max", "ci95"]
    assert list(zip(agg["point"], agg["vm"], agg["metric"], strict=True)) == [
        (0, "b", "x"), (0, "b", "ok"), (1, "b", "x"), (1, "b", "ok"), (1, "a", "x"), (1, "a", "ok"),
        (2, "b", "x"), (2, "b", "ok")]
    x = agg.iloc[0]
    assert (x["n"], x["mean"], x["p50"], x["p95"], x["max"]) == (5, 3.0, 3.0, pytest.approx(4.8), 5.0)
    assert x["std"] == pytest.approx(math.sqrt(2.5))
    assert x["ci95"] == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5))  # 1.9632
    assert agg.iloc[1]["mean"] == pytest.approx(0.8)  # yes/no metrics: the share of replications
    nan_skipped = agg.iloc[2]
    assert (nan_skipped["n"], nan_skipped["mean"]) == (2, 20.0)
    assert nan_skipped["ci95"] == pytest.approx(12.7062047 * math.sqrt(200) / math.sqrt(2))
    assert agg.iloc[4]["ci95"] == 0.0  # no variation
    assert math.isnan(agg.iloc[6]["ci95"]) and agg.iloc[6]["n"] == 1  # one replication: no interval


def test_experiment_aggregate_matches_the_tidy_table():
    exp = run_experiment(stochastic(), replications=4, sweep={"link.upload": ["8Mbit/s", "16Mbit/s"]},
                         executor=ThreadPoolExecutor(1))
    agg = exp.aggregate
    assert list(agg.columns[:4]) == ["point", "link.upload", "vm", "metric"]
    assert set(agg["metric"]) >= {"rpo_p95_s", "availability", "downtime_s", "incidents", "protected", "rto_met"}
    assert not ({"point", "replication", "seed", "link.upload", "health", "host"} & set(agg["metric"]))
    row = agg[(agg["point"] == 1) & (agg["vm"] == SITE) & (agg["metric"] == "downtime_s")].iloc[0]
    values = exp.tidy.loc[(exp.tidy["point"] == 1) & (exp.tidy["vm"] == SITE), "downtime_s"]
    assert row["link.upload"] == "16Mbit/s"
    assert row["mean"] == pytest.approx(values.mean())
    assert row["ci95"] == pytest.approx(t_975(3) * values.std() / 2)


# ----------------------------------------------------------------------------------------------------
# the sweep command


def _cli(*args) -> tuple[int, str, str, BaseException | None]:
    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1
    except TypeError:
        runner = CliRunner()
    result = runner.invoke(main, [str(a) for a in args], catch_exceptions=True)
    return result.exit_code, result.stdout, result.stderr, result.exception


def _scenario_file(tmp_path: Path) -> Path:
    data = {"name": "tiny", "duration": "3d", "seed": 3,
            "site": {"hosts": [{"name": "H1", "vms": [{"name": "vm1", "disks": ["2GB"],
                                                       "churn": {"rate": "20kB/s", "variation": 0.3}}]}]},
            "link": {"upload": "8Mbit/s", "download": "80Mbit/s"},
            "failures": [HOST_FAILURES]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_cli_sweep_end_to_end(tmp_path):
    path = _scenario_file(tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr, exc = _cli("sweep", path, "--replications", 3, "--set", "link.upload=4Mbit/s,8Mbit/s",
                                     "--set", "policy.name=manual,automatic", "--workers", 2, "--seed", 9,
                                     "--out", out)
    assert code == 0, (stdout, stderr, exc)
    folders = list((out / "tiny").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("sweep-")
    folder = folders[0]
    assert sorted(p.name for p in folder.iterdir()) == ["aggregate.parquet", "metadata.json", "scenario.yaml",
                                                        "tidy.parquet"]
    assert stdout.strip().endswith(f"results: {folder}")
    assert "link.upload" in stdout and "4Mbit/s" in stdout and "automatic" in stdout
    tidy = pd.read_parquet(folder / "tidy.parquet")
    exp = run_experiment(path, replications=3, seed=9, executor=ThreadPoolExecutor(1),
                         sweep={"link.upload": ["4Mbit/s", "8Mbit/s"], "policy.name": ["manual", "automatic"]})
    assert len(tidy) == 4 * 3 * 2
    numeric = [c for c in exp.tidy.columns if pd.api.types.is_numeric_dtype(exp.tidy[c])]
    pd.testing.assert_frame_equal(tidy[numeric], exp.tidy[numeric])
    assert list(tidy["policy.name"]) == list(exp.tidy["policy.name"])
    agg = pd.read_parquet(folder / "aggregate.parquet")
    assert len(agg) == len(exp.aggregate)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["experiment_seed"] == 9 and meta["replications"] == 3 and meta["run_seeds"] == exp.seeds
    assert meta["sweep"] == {"link.upload": ["4Mbit/s", "8Mbit/s"], "policy.name": ["manual", "automatic"]}
    assert meta["failed_runs"] == 0 and meta["workers"] == 2
    # the recorded seed reproduces a replication with `drsim run --seed`
    code, stdout, stderr, exc = _cli("run", path, "--seed", exp.seeds[2], "--out", tmp_path / "runs", "-q")
    assert code == 0, (stdout, stderr, exc)
    summary = pd.read_parquet(Path(stdout.strip()) / "summary.parquet")
    base = tidy[(tidy["link.upload"] == "8Mbit/s") & (tidy["policy.name"] == "manual") & (tidy["replication"] == 2)]
    assert list(summary["downtime_s"]) == list(base["downtime_s"])


@pytest.mark.parametrize(("setting", "message"), [
    ("link.upload=fast", "link.upload: expected a rate like '20Mbit/s', got 'fast'"),
    ("link.uplod=1Mbit/s", "link.uplod: unknown key 'uplod' (did you mean 'upload'?)"),
    ("link.upload", "--set link.upload: expected path=value"),
])
def test_cli_sweep_bad_set(tmp_path, setting, message):
    path = _scenario_file(tmp_path)
    code, stdout, stderr, exc = _cli("sweep", path, "-n", 2, "--set", setting, "--out", tmp_path / "out")
    assert code == 2 and isinstance(exc, SystemExit)
    assert stderr.startswith("error: ") and message in stderr
    assert "Traceback" not in stdout + stderr
    assert not (tmp_path / "out").exists()


def _sigint_handler_is_ignore() -> bool:
    import signal

    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_pool_workers_leave_ctrl_c_to_the_parent_and_stop_at_once():
    import time as _time

    from drsim.experiments.executors import process_pool, stop_pool

    pool = process_pool(2)
    assert pool.submit(_sigint_handler_is_ignore).result(timeout=60)
    busy = [pool.submit(_time.sleep, 30) for _ in range(4)]
    _time.sleep(0.5)
    pids = list(pool._processes)
    t0 = _time.perf_counter()
    stop_pool(pool)

    def ended(pid: int) -> bool:  # gone, or a zombie not reaped yet (the pool's thread and ours may race to reap)
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    while not all(ended(p) for p in pids) and _time.perf_counter() - t0 < 10:
        _time.sleep(0.05)
    assert all(ended(p) for p in pids)
    assert _time.perf_counter() - t0 < 5  # not after the 30 s tasks
    from concurrent.futures import wait as _wait

    _wait([f for f in busy if not f.cancelled()], timeout=10)
    assert all(f.done() for f in busy)  # cancelled, or failed with the pool: none is left hanging
