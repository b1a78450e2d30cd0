"""Precision targets: replications added in rounds until a confidence half-width is small enough."""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from drsim.experiments.precision import Precision, parse_precision
from drsim.experiments.runner import run_experiment
from drsim.experiments.statistics import t_975
from drsim.results.tables import SITE
from tests.conftest import make_scenario

HOST_FAILURES = {"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "2d"},
                 "repair": {"dist": "lognormal", "median": "2h", "p95": "8h"}}
SWEEP = {"policy.name": ["manual", "automatic"], "link.upload": ["4Mbit/s", "16Mbit/s"]}
TARGET = "rpo_mean_s=5s"  # tight at 16 Mbit/s, spread at 4 Mbit/s: the points stop at different rounds
CAP = 24


def scenario():
    return make_scenario({"duration": "4d", "site.hosts[0].vms[0].churn.variation": 0.3, "failures": [HOST_FAILURES]})


def run(**kw):
    kw.setdefault("executor", ThreadPoolExecutor(1))
    return run_experiment(scenario(), sweep=SWEEP, seed=4, **kw)


@pytest.fixture(scope="module")
def reference():
    """Every point at the cap: the precision runs must be prefixes of these replications."""
    return run(replications=CAP)


@pytest.fixture(scope="module")
def precise():
    return run(replications=4, precision=TARGET, max_replications=CAP)


def _half_width(values: np.ndarray) -> tuple[float, float]:
    n = len(values)
    return float(values.mean()), float(t_975(n - 1) * values.std(ddof=1) / math.sqrt(n))


def test_parse_precision():
    assert parse_precision("30s") == Precision("rpo_p95_s", SITE, 30.0, False)
    assert parse_precision("rpo_p95=1m") == Precision("rpo_p95_s", SITE, 60.0, False)
    assert parse_precision("rpo_mean_s@site=2m30s") == Precision("rpo_mean_s", SITE, 150.0, False)
    assert parse_precision("availability@vm1=0.1%") == Precision("availability", "vm1", 0.001, False)
    assert parse_precision("downtime_s=10%rel") == Precision("downtime_s", SITE, 0.1, True)
    assert parse_precision("incidents=0.25") == Precision("incidents", SITE, 0.25, False)
    assert parse_precision("bytes_sent=1GB") == Precision("bytes_sent", SITE, 1e9, False)
    assert parse_precision("rpo_p95_s@vm1", "45s") == Precision("rpo_p95_s", "vm1", 45.0, False)  # file form
    assert Precision("downtime_s", SITE, 0.1, True).limit(-300.0) == pytest.approx(30.0)
    assert str(parse_precision("rpo_p95=30s")) == "rpo_p95_s of (site) within ± 30 s"


@pytest.mark.parametrize(("spec", "message"), [
    ("rpo_p9=30s", "unknown metric 'rpo_p9' (did you mean 'rpo_p95_s'?)"),
    ("health=1", "unknown metric 'health'"),
    ("rpo_p95@vm7=30s", "unknown VM 'vm7' (did you mean 'vm1'?)"),
    ("rpo_p95=fast", "cannot read the tolerance 'fast' of rpo_p95_s: expected e.g. '30s'"),
    ("rpo_p95=0s", "the tolerance of rpo_p95_s must be greater than zero"),
    ("availability=-1%", "must be greater than zero"),
    ("bytes_sent=5", "cannot read the tolerance '5' of bytes_sent"),
    ("rpo_p95=", "no tolerance"),
])
def test_bad_precision_targets(spec, message):
    with pytest.raises(ValueError) as info:
        parse_precision(spec, scenario=scenario())
    assert message in str(info.value)


def test_rounds_stop_where_the_target_is_met(precise, reference):
    per_point = precise.replications_per_point
    assert per_point == [CAP, 4, 20, 4]  # the slow link needs more replications
    status = precise.precision_status
    assert list(status.columns) == ["point", "metric", "vm", "replications", "n", "mean", "ci95", "limit", "reached"]
    ref_site = reference.tidy[reference.tidy["vm"] == SITE]
    for p, n in enumerate(per_point):
        values = ref_site.loc[(ref_site["point"] == p) & (ref_site["replication"] < n), "rpo_mean_s"].to_numpy()
        mean, half = _half_width(values)
        row = status.iloc[p]
        assert (row["replications"], row["n"]) == (n, n)
        assert row["mean"] == pytest.approx(mean) and row["ci95"] == pytest.approx(half)
        assert row["reached"] == (half <= 5.0)
        assert row["reached"] or n == CAP
    # the precision runs are exactly the first replications of the fixed run: same seeds, same rows
    mine = reference.tidy[reference.tidy["replication"] < reference.tidy["point"].map(dict(enumerate(per_point)))]
    pd.testing.assert_frame_equal(precise.tidy, mine.reset_index(drop=True))
    agg = precise.aggregate
    site_rpo = agg[(agg["vm"] == SITE) & (agg["metric"] == "rpo_mean_s")]
    assert list(site_rpo["n"]) == per_point
    assert list(site_rpo["ci95"]) == pytest.approx(list(status["ci95"]))


def test_the_schedule_follows_the_rule(precise, reference):
    """Rebuild the rounds from the fixed run: after each round, a point short of the target goes to
    min(cap, 2n, max(n + 1, ceil(n * (half / limit)^2))) replications."""
    site = reference.tidy[reference.tidy["vm"] == SITE]
    targets, rounds = [4] * 4, 1
    while True:
        following = []
        for p, n in enumerate(targets):
            values = site.loc[(site["point"] == p) & (site["replication"] < n), "rpo_mean_s"].to_numpy()
            mean, half = _half_width(values)
            limit = 5.0
            if half <= limit or n >= CAP:
                following.append(n)
            else:
                following.append(min(CAP, 2 * n, max(n + 1, math.ceil(n * (half / limit) ** 2))))
        if following == targets:
            break
        targets, rounds = following, rounds + 1
    assert precise.replications_per_point == targets and precise.rounds == rounds == 4  # 4 -> 8 -> 16 -> 24


def test_precision_identical_whatever_the_executor(precise):
    with ProcessPoolExecutor(2) as pool:
        other = run(replications=4, precision=TARGET, max_replications=CAP, executor=pool, batch_size=1,
                    max_in_flight=3)
    assert other.replications_per_point == precise.replications_per_point
    pd.testing.assert_frame_equal(other.tidy, precise.tidy)
    pd.testing.assert_frame_equal(other.precision_status, precise.precision_status)


def test_precision_resumes_to_the_same_rounds(tmp_path, precise):
    def stop(done, total):
        if done >= 20:  # within the second round (16 runs in the first, 8 more in the second)
            raise KeyboardInterrupt

    folders = []
    with pytest.raises(KeyboardInterrupt):
        run(replications=4, precision=TARGET, max_replications=CAP, out=tmp_path / "results", progress=stop,
            batch_size=2, on_folder=folders.append)
    (folder,) = folders
    with pytest.raises(ValueError, match="the precision targets"):
        run(replications=4, precision="rpo_mean_s=6s", max_replications=CAP, out=folder, resume=True)
    with pytest.raises(ValueError, match="the maximum replications"):
        run(replications=4, precision=TARGET, max_replications=CAP + 1, out=folder, resume=True)
    calls = []
    again = run(replications=4, precision=TARGET, max_replications=CAP, out=folder, resume=True, batch_size=2,
                progress=lambda d, t: calls.append((d, t)))
    assert calls[0][0] > 20 and calls[-1] == (52, 52)
    assert again.replications_per_point == precise.replications_per_point
    pd.testing.assert_frame_equal(again.tidy, precise.tidy)


def test_an_unreachable_target_stops_at_the_cap():
    exp = run(replications=3, precision=["rpo_p95_s=1ms", "downtime_s@vm1=1s"], max_replications=7)
    assert exp.replications_per_point == [7, 7, 7, 7] and exp.precision_reached is False
    assert exp.rounds == 3  # 3 -> 6 -> 7, then nothing more to do
    status = exp.precision_status
    assert len(status) == 8 and not status["reached"].any()
    meta = exp.metadata()["precision"]
    assert meta["reached"] is False and meta["points_reached"] == 0 and meta["rounds"] == 3
    assert meta["first_round"] == 3 and meta["max_replications"] == 7
    assert [t["metric"] for t in meta["targets"]] == ["rpo_p95_s", "downtime_s"]
    assert exp.metadata()["runs"] == 28


def test_precision_settings_are_checked():
    for kw, message in [({"precision": "30s", "replications": 1}, "at least 2 replications in the first round"),
                        ({"max_replications": 20}, "max_replications applies only with a precision target"),
                        ({"precision": "30s", "replications": 10, "max_replications": 5}, "below the first round"),
                        ({"precision": "30s", "max_replications": 0}, "max_replications must be a positive")]:
        with pytest.raises(ValueError) as info:
            run(**kw)
        assert message in str(info.value)
    assert run(replications=2, precision="rpo_p95_s=1h").replications_per_point == [2] * 4  # met at once


def test_report_counts_the_runs_each_point_had(precise, tmp_path):
    from drsim.views.experiment_report import write_experiment_report

    per_point = precise.replications_per_point
    assert min(per_point) < max(per_point)  # the points stopped at different rounds
    _, md = write_experiment_report(precise, tmp_path)
    text = md.read_text()
    assert f"4 sweep points x {min(per_point)} to {max(per_point)} replications = {sum(per_point)} runs" in text
    assert f"{min(per_point)} to {max(per_point)} replications per point" in text
