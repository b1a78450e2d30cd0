"""drsim.risk on a Dask cluster: the same figures as in one local process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

pytest.importorskip("distributed")
from distributed import Client, LocalCluster  # noqa: E402

from drsim.experiments.risk import risk  # noqa: E402
from tests.conftest import make_scenario  # noqa: E402


def test_dask_client_gives_the_local_figures():
    s = make_scenario({"duration": "4d", "site.hosts[0].vms[0].churn.variation": 0.3,
                       "failures": [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "20d"}}]})
    kw = dict(years=2, replications=4, seed=8, probe_runs=2, probe_weeks=2, batch_size=1)
    local = risk(s, executor=ThreadPoolExecutor(1), **kw)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        remote = risk(s, executor=client, **kw)
    assert remote.executor.startswith("dask.distributed (") and remote.workers == 2
    assert remote.method == local.method == "conditional"
    pd.testing.assert_frame_equal(remote.figures, local.figures)
    pd.testing.assert_frame_equal(remote.exceedance, local.exceedance)
