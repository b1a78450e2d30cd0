"""Experiments and plans on a Dask cluster: the same tables as on local processes."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pandas as pd
import pytest
from distributed import Client, LocalCluster

import drsim
from drsim.experiments.errors import ExperimentError
from drsim.experiments.executors import connect_dask
from drsim.experiments.runner import run_experiment
from tests.conftest import make_scenario

HOST_FAILURES = {"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "3d"},
                 "repair": {"dist": "lognormal", "median": "2h", "p95": "6h"}}
KW = dict(replications=4, seed=6, sweep={"policy.name": ["manual", "automatic"]},
          lhs={"link.upload": "4Mbit/s..16Mbit/s"}, samples=2)


def scenario():
    return make_scenario({"duration": "4d", "site.hosts[0].vms[0].churn.variation": 0.3, "failures": [HOST_FAILURES]})


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def local():
    with ProcessPoolExecutor(2) as pool:
        return run_experiment(scenario(), executor=pool, **KW)


def test_dask_client_gives_the_local_tables(client, local):
    exp = run_experiment(scenario(), executor=client, batch_size=1, **KW)
    assert exp.executor.startswith("dask.distributed (") and exp.workers == 2
    assert len(exp.tidy) == 4 * 4 * 2 and exp.tidy["downtime_s"].nunique() > 1
    pd.testing.assert_frame_equal(exp.tidy, local.tidy)
    pd.testing.assert_frame_equal(exp.aggregate, local.aggregate)
    pd.testing.assert_frame_equal(exp.failures, local.failures)


def test_dask_worker_processes_give_the_local_tables(local):
    """Worker processes of their own (Dask's nanny limits BLAS to one thread in them): still the same tables."""
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        exp = run_experiment(scenario(), executor=c, **KW)
    pd.testing.assert_frame_equal(exp.tidy, local.tidy, check_exact=True)


def test_dask_executor_with_precision_and_streaming(client, tmp_path):
    kw = dict(replications=3, seed=6, precision="rpo_mean_s=2s", max_replications=8,
              sweep={"link.upload": ["4Mbit/s", "16Mbit/s"]})
    ref = run_experiment(scenario(), executor=ThreadPoolExecutor(1), **kw)
    exp = run_experiment(scenario(), executor=client.get_executor(pure=False), out=tmp_path / "x", keep_runs=True,
                         **kw)
    assert exp.replications_per_point == ref.replications_per_point and len(set(exp.replications_per_point)) == 2
    pd.testing.assert_frame_equal(exp.tidy, ref.tidy)
    assert len(list((exp.folder / "runs").glob("point-*/replication-*"))) == sum(exp.replications_per_point)
    assert client.status == "running"  # a client given by the caller is left open


def test_plan_on_dask(client):
    s = make_scenario({"duration": "2d", "site.hosts[0].vms[0].churn.variation": 0.2})
    kw = dict(rpo="10m", replications=3, tolerance="1Mbit/s")
    local = drsim.plan(s, executor=ThreadPoolExecutor(1), **kw)
    remote = drsim.plan(s, executor=client, **kw)
    pd.testing.assert_frame_equal(remote, local)


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ExperimentError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9: "):
        connect_dask("tcp://127.0.0.1:9", timeout=0.5)


def test_missing_distributed_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    with pytest.raises(ExperimentError, match=r"needs the 'distributed' package: pip install 'drsim\[dask\]'"):
        connect_dask("tcp://127.0.0.1:8786")
