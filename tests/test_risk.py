"""Annual risk figures: the engines agree with the full simulation, and the estimators with closed forms.

* On a horizon where every engine runs (1 year, host failures every 20 days), the windows engine, the conditional
  estimator and the full simulation agree on every annual figure within their 95 % intervals (common random
  numbers: replication k has the same failure timeline in each), judged as a family of two-sided tests at 5 %.
* The mean data loss per Poisson failure agrees with the time-average RPO of a full run (PASTA).
* Availability agrees with MTBF / (MTBF + MTTR) when the policy waits for the repair, and with the standby formula
  r(1 - exp(-tau/r)) / (MTBF + r) when a failover takes tau and repairs are exponential with mean r.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from statistics import NormalDist

import numpy as np
import pytest
from conftest import make_scenario

import drsim
from drsim.experiments.risk import RiskError, conditional_conditions, risk
from drsim.experiments.risk_output import risk_text
from drsim.scenario.units import DAY, HOUR

_Z = 1.959963984540054
FIGURES = ("data_loss_per_year_s", "p_loss_over_rpo", "downtime_per_year_s", "availability", "failovers_per_year",
           "incidents_per_year", "rto_met_share")


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(2) as p:
        yield p


def small_site(every: str = "20d", **changes):
    return make_scenario({
        "name": "small", "duration": "30d", "seed": 3,
        "site.hosts[0].vms": [{"name": "a", "disks": ["20GB"], "churn": {"rate": "50kB/s"}},
                              {"name": "b", "disks": ["10GB"], "churn": {"rate": "30kB/s"}}],
        "site.hosts[1]": {"name": "H2", "vms": [{"name": "c", "disks": ["10GB"], "churn": {"rate": "20kB/s"}}]},
        "link": {"upload": "10Mbit/s", "download": "100Mbit/s", "efficiency": 1.0, "compression": 1.0},
        "replication": {"interval": "15m", "setup": 0},
        "failures": [{"kind": "host", "target": "all", "every": {"dist": "exponential", "mean": every},
                      "repair": {"dist": "exponential", "mean": "8h"}}],
        "policy": {"name": "manual", "detect": "10m", "respond": "15m", "point": "latest", "failback": "immediate"},
        **changes,
    })


@pytest.fixture(scope="module")
def engines(pool):
    s = small_site()
    return {m: risk(s, years=1, replications=6, method=m, executor=pool, probe_runs=3, probe_weeks=2)
            for m in ("full", "windows", "conditional")}


def _agree(a, b, metric: str, vm: str, comparisons: int) -> None:
    """The two estimates differ by no more than their intervals allow: a two-sided test at a family-wise level of
    5 % over all ``comparisons`` (Bonferroni), each interval's half-width on the side facing the other value taken
    as 1.96 of its standard errors."""
    va, vb = a.value(metric, vm), b.value(metric, vm)
    (la, ha), (lb, hb) = a.interval(metric, vm), b.interval(metric, vm)
    sa, sb = ((ha - va) / _Z, (vb - lb) / _Z) if vb >= va else ((va - la) / _Z, (hb - vb) / _Z)
    k = NormalDist().inv_cdf(1 - 0.05 / (2 * comparisons))
    assert abs(va - vb) <= k * math.hypot(sa, sb) + 1e-12, \
        f"{metric} of {vm}: {a.method} {va} [{la}, {ha}], {b.method} {vb} [{lb}, {hb}]"


@pytest.mark.parametrize("method", ["windows", "conditional"])
def test_the_long_horizon_engines_agree_with_the_full_simulation(engines, method):
    full, other = engines["full"], engines[method]
    assert other.method == method and full.method == "full"
    vms = ("a", "b", "c", "(site)")
    for vm in vms:
        for metric in FIGURES:
            _agree(full, other, metric, vm, len(vms) * len(FIGURES))
    # not vacuous: failures happened, failed over and lost data
    assert full.value("failovers_per_year") > 10 and full.value("data_loss_per_year_s") > 1000


def test_the_same_replication_sees_the_same_failures_with_every_engine(engines):
    counts = {m: r.value("incidents_per_year") for m, r in engines.items()}
    assert counts["windows"] == pytest.approx(counts["full"], rel=0.05)
    assert counts["conditional"] == pytest.approx(counts["full"], rel=0.05)


def test_the_mean_loss_of_a_poisson_failure_is_the_time_average_rpo():
    """Host failures every 5 days over a year: the failovers' mean data loss against the run's mean RPO."""
    s = small_site("5d", duration="1y")
    res = drsim.simulate(s, seed=11)
    inc = res.incidents[res.incidents["outcome"].str.startswith("failed over")]
    for vm in ("a", "c"):
        loss = inc.loc[inc["vm"] == vm, "data_loss_s"].to_numpy()
        rpo = float(res.summary.set_index("vm").loc[vm, "rpo_mean_s"])
        assert len(loss) > 40
        se = loss.std(ddof=1) / math.sqrt(len(loss))
        assert abs(loss.mean() - rpo) <= 3 * se, (vm, loss.mean(), rpo, se)
        assert 400 < rpo < 600  # T/2 + d with T = 15 min: not a vacuous comparison


def test_the_conditional_loss_per_failover_is_the_steady_mean_rpo(engines):
    c = engines["conditional"]
    for vm in ("a", "b", "c"):
        per_failover = c.value("data_loss_per_year_s", vm) / c.value("failovers_per_year", vm)
        steady = float(c.steady.set_index("vm").loc[vm, "rpo_mean_s"])
        assert per_failover == pytest.approx(steady, rel=1e-9)


def _availability_site(policy: dict) -> object:
    return make_scenario({
        "name": "avail", "duration": "30d",
        "site.hosts[0].vms[0]": {"name": "vm1", "disks": ["1GB"], "churn": {"rate": "1kB/s"}},
        "failures": [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "10d"},
                      "repair": {"dist": "exponential", "mean": "1d"}}],
        "failover": {"shutdown": 0, "prepare": 0, "process_pending": 0, "start": 0, "reconnect": 0, "onprem_start": 0,
                     "cleanup": 0},
        "policy": policy,
    })


def _within(result, expected: float) -> None:
    low, high = result.interval("availability", "vm1")
    assert low - 2e-4 <= expected <= high + 2e-4, (low, result.value("availability", "vm1"), high, expected)
    assert high - low < 0.01  # precise enough for the comparison to mean something


def test_availability_waiting_for_repair_is_mtbf_over_mtbf_plus_mttr(pool):
    r = risk(_availability_site({"name": "wait-for-repair", "detect": 0}), years=20, replications=8,
             method="conditional", executor=pool, probe_runs=2, probe_weeks=2)
    _within(r, 10 / 11)


def test_availability_with_failover_follows_the_standby_formula(pool):
    tau, mttr, mtbf = 12 * HOUR, DAY, 10 * DAY
    r = risk(_availability_site({"name": "manual", "detect": tau, "respond": 0, "point": "latest-processed",
                                 "failback": "immediate"}), years=20, replications=8, method="conditional",
             executor=pool, probe_runs=2, probe_weeks=2)
    unavailable = mttr * (1 - math.exp(-tau / mttr)) / (mtbf + mttr)
    _within(r, 1 - unavailable)
    assert abs((1 - unavailable) - 10 / 11) > 0.02  # the two formulas differ: the test tells them apart


def test_conditions_and_fallbacks_are_said(pool):
    s = small_site(failures=[{"kind": "vm", "target": "a", "every": {"dist": "exponential", "mean": "30d"}}])
    held = dict(conditional_conditions(s))
    assert not all(held.values())
    r = risk(s, years=1, replications=2, executor=pool, probe_runs=2, probe_weeks=2)
    assert r.method == "windows"
    assert any("conditional Monte Carlo needs" in n for n in r.notes)
    text = risk_text(r)
    assert "method: windows" in text and "conditional Monte Carlo not used" in text


def test_a_link_that_cannot_keep_up_falls_back_to_full_simulation(pool):
    s = small_site(link={"upload": "0.5Mbit/s", "download": "100Mbit/s", "efficiency": 1.0, "compression": 1.0},
                   **{"site": {"hosts": [{"name": "H1", "vms": [{"name": "a", "disks": ["1GB"],
                                                                  "churn": {"rate": "80kB/s"}}]}]}})
    r = risk(s, years=1, replications=1, executor=pool, probe_runs=2, probe_weeks=2)
    assert r.method == "full"
    assert any("does not keep up" in n for n in r.notes)


def test_bad_requests_are_refused():
    s = small_site()
    with pytest.raises(RiskError):
        risk(s, years=0)
    with pytest.raises(RiskError):
        risk(s, method="magic")


def test_exceedance_falls_with_the_threshold(engines):
    ex = engines["conditional"].exceedance
    site = ex[ex["vm"] == "(site)"].sort_values("x_s")
    assert (np.diff(site["p"].to_numpy()) <= 1e-12).all()
    assert site["p"].iloc[0] > 0.5 and site["p"].iloc[-1] == 0.0
    assert (site["low"] <= site["p"]).all() and (site["p"] <= site["high"]).all()


def test_the_site_is_never_less_likely_to_lose_than_any_of_its_vms(engines):
    ex = engines["conditional"].exceedance
    site = ex[ex["vm"] == "(site)"].set_index("x_s")["p"]
    for vm in ("a", "b", "c"):
        own = ex[ex["vm"] == vm].set_index("x_s")["p"]
        assert (site >= own - 1e-12).all(), vm
    assert ex.loc[ex["vm"] == "(site)", "estimator"].iloc[0].startswith("conditional Monte Carlo, joint losses")


def test_a_site_without_stochastic_failures_has_every_nine(pool):
    """No failure over the horizon: no downtime, availability exactly 1 and infinitely many nines, bounds included
    (not a finite bound from a floor)."""
    r = risk(small_site(failures=[]), years=2, replications=2, executor=pool, probe_runs=2, probe_weeks=2)
    assert r.value("downtime_per_year_s", "(site)") == 0
    assert r.value("availability", "(site)") == 1
    assert r.value("nines", "a") == math.inf and r.interval("nines", "a") == (math.inf, math.inf)
    assert any("no stochastic failures" in n for n in r.notes)


def test_why_replication_does_not_keep_up_is_said_once_per_kind_in_durations():
    """Each probe run finds the same growing RPO with its own figures: the note says it once, in durations."""
    from drsim.experiments.steady import ProbeRun, SteadyState, _check_growth

    runs = []
    for seed, slope in ((1, 1.0), (2, 2.0)):
        run = ProbeRun(seed=seed, protected=True, capacity=1.0, protected_at=np.zeros(1), start=0.0, end=3 * 7 * DAY)
        t = np.arange(0.0, 3 * 7 * DAY, HOUR)  # one piece an hour, each starting later behind: a growing RPO
        _check_growth(run, "erp", slope * t, np.full(len(t), HOUR), 300.0)
        runs.append(run)
    steady = SteadyState(names=["erp"], grid=np.zeros(1), runs=runs)
    (problem,) = steady.problems
    assert problem.startswith("erp's RPO grows from week to week (lowest 0 s and mean 3 d 12 h in the first week, 14 d")
