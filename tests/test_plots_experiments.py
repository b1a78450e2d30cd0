"""Figures of experiments and plans: sweep heatmap, sweep lines, CDFs across replications, planner curve."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import drsim  # noqa: E402
from drsim.experiments.runner import run_experiment  # noqa: E402
from drsim.views import figures as plots  # noqa: E402
from tests.conftest import make_scenario  # noqa: E402

HOST_FAILURES = {"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "2d"},
                 "repair": {"dist": "lognormal", "median": "2h", "p95": "6h"}}
UPLOADS = ["2Mbit/s", "8Mbit/s"]
INTERVALS = ["5m", "15m"]


def stochastic():
    """The tiny scenario over four days with random churn and random host failures (10 GB used on a 40 GB disk:
    its log never reaches half the disk, so no resync at 2 Mbit/s)."""
    return make_scenario({"duration": "4d", "site.hosts[0].vms[0].churn.variation": 0.3,
                          "site.hosts[0].vms[0].disks": [{"size": "40GB", "used": "10GB"}],
                          "failures": [HOST_FAILURES]})


@pytest.fixture(scope="module")
def exp():
    return run_experiment(stochastic(), replications=2, executor=ThreadPoolExecutor(1), seed=3,
                          sweep={"link.upload": UPLOADS, "replication.interval": INTERVALS})


@pytest.fixture(scope="module")
def planned():
    return drsim.plan(stochastic(), rpo="15m", replications=1, tolerance="1Mbit/s", executor=ThreadPoolExecutor(1))


@pytest.fixture(autouse=True)
def _close():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def by_gid(ax, gid, kind=None):
    artists = [*ax.lines, *ax.collections, *ax.patches, *ax.texts]
    return [a for a in artists if a.get_gid() == gid and (kind is None or isinstance(a, kind))]


def site_mean(exp, metric):
    agg = exp.aggregate
    agg = agg[(agg["vm"] == "(site)") & (agg["metric"] == metric)]
    return {(u, i): m for u, i, m in zip(agg["link.upload"], agg["replication.interval"], agg["mean"], strict=True)}


# ----------------------------------------------------------------------------------------------------
# heatmap


def test_heatmap_has_one_annotated_cell_per_point_in_sweep_order(exp):
    fig = plots.sweep_heatmap(exp, "link.upload", "replication.interval")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "link.upload (Mbit/s)"
    assert ax.get_ylabel() == "replication.interval (min)"
    assert [t.get_text() for t in ax.get_xticklabels()] == UPLOADS
    assert [t.get_text() for t in ax.get_yticklabels()] == INTERVALS
    image = ax.images[0].get_array()
    assert image.shape == (2, 2)
    means = site_mean(exp, "rpo_p95_s")
    for i, iv in enumerate(INTERVALS):
        for j, up in enumerate(UPLOADS):
            assert image[i, j] == pytest.approx(means[(up, iv)] / 60)  # minutes, as the colour bar says
    cells = by_gid(ax, "cell")
    assert len(cells) == 4
    # human units in the cells: the first line of each is the mean as format_duration writes it
    firsts = {t.get_text().split("\n")[0] for t in cells}
    assert firsts == {drsim.scenario.units.format_duration(m) for m in means.values()}
    assert "(min)" in fig.axes[1].get_ylabel()  # the colour bar


def test_heatmap_marks_the_cells_missing_the_objective_and_their_boundary(exp):
    means = site_mean(exp, "rpo_p95_s")
    target = exp.scenario.objectives.rpo
    missing = sum(m > target for m in means.values())
    assert 0 < missing < 4, means  # the sweep straddles the objective
    ax = plots.sweep_heatmap(exp, "link.upload", "replication.interval").axes[0]
    assert len(by_gid(ax, "misses-objective", Rectangle)) == missing
    (boundary,) = by_gid(ax, "objective-boundary", LineCollection)
    assert len(boundary.get_segments()) >= 1
    # an objective above every mean: nothing missed, no boundary
    ax = plots.sweep_heatmap(exp, "link.upload", "replication.interval", objective="30d").axes[0]
    assert by_gid(ax, "misses-objective") == []
    assert len(by_gid(ax, "objective-boundary")[0].get_segments()) == 0


def test_heatmap_defaults_to_the_rto_objective_for_rto_metrics_and_refuses_bad_paths(exp):
    fig = plots.sweep_heatmap(exp, "replication.interval", "link.upload", metric="downtime_s")
    assert any("2 h" in t.get_text() for t in fig.legends[0].get_texts())
    with pytest.raises(ValueError, match="not swept"):
        plots.sweep_heatmap(exp, "link.upload", "link.download")
    with pytest.raises(ValueError, match="no metric"):
        plots.sweep_heatmap(exp, "link.upload", "replication.interval", metric="nonsense")


# ----------------------------------------------------------------------------------------------------
# lines


def test_sweep_lines_one_line_and_band_per_value_of_by(exp):
    fig = plots.sweep_lines(exp, "link.upload", "rpo_p95_s", by="replication.interval")
    ax = fig.axes[0]
    lines = by_gid(ax, "mean")
    assert len(lines) == 2 and len(by_gid(ax, "ci95")) == 2
    assert ax.get_xlabel() == "link.upload (Mbit/s)"
    assert ax.get_ylabel().startswith("p95 RPO, site (")
    np.testing.assert_allclose(lines[0].get_xdata(), [2.0, 8.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == [f"replication.interval = {v}"
                                                                      for v in INTERVALS]
    (objective,) = by_gid(ax, "objective")
    assert "RPO objective 15 min" in objective.get_label()
    # the band of the first line (interval 5m: points 0 and 2) is mean ± ci95
    agg = exp.aggregate
    rows = agg[(agg["vm"] == "(site)") & (agg["metric"] == "rpo_p95_s") & agg["point"].isin([0, 2])]
    unit = {"s": 1, "min": 60, "h": 3600, "d": 86400}[ax.get_ylabel().rsplit("(", 1)[1].rstrip(")")]
    ys = by_gid(ax, "ci95")[0].get_paths()[0].vertices[:, 1] * unit
    assert ys.max() == pytest.approx((rows["mean"] + rows["ci95"]).max())
    assert ys.min() == pytest.approx((rows["mean"] - rows["ci95"]).min())


def test_sweep_lines_needs_every_other_swept_path_fixed(exp):
    with pytest.raises(ValueError, match="also sweeps replication.interval"):
        plots.sweep_lines(exp, "link.upload", "rpo_p95_s")
    fig = plots.sweep_lines(exp, "replication.interval", "availability", vm="vm1", by="link.upload")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "replication.interval (min)"
    assert ax.get_ylabel() == "availability, vm1 (%)"
    assert by_gid(ax, "objective") == []


# ----------------------------------------------------------------------------------------------------
# CDFs


def test_replication_cdfs_one_panel_per_metric_one_line_per_point_with_objectives(exp):
    fig = plots.replication_cdfs(exp)
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title(loc="left") for ax in panels] == ["p95 RPO", "max data loss", "max RTO", "downtime"]
    for ax in panels:
        assert ax.get_ylabel() == "share of replications ≤ x"
        assert ax.get_xlabel().endswith(("(s)", "(min)", "(h)", "(d)"))
        (objective,) = by_gid(ax, "objective")
        assert len(by_gid(ax, "cdf")) <= 4
    rpo_panel = panels[0]
    assert len(by_gid(rpo_panel, "cdf")) == 4  # every replication has an RPO
    # the RPO objective (15 min) on the RPO panels, the RTO objective (2 h) on the others
    scale = {"(s)": 1, "(min)": 60, "(h)": 3600, "(d)": 86400}
    for ax, target in zip(panels, (900, 900, 7200, 7200), strict=True):
        unit = ax.get_xlabel().rsplit(" ", 1)[1]
        assert by_gid(ax, "objective")[0].get_xdata()[0] * scale[unit] == pytest.approx(target)
    # a step CDF ends at 1
    assert by_gid(rpo_panel, "cdf")[0].get_ydata()[-1] == 1.0
    assert len(fig.legends[0].get_texts()) == 4 + 1


def test_replication_cdfs_of_one_point():
    exp1 = run_experiment(stochastic(), replications=3, executor=ThreadPoolExecutor(1))
    fig = plots.replication_cdfs(exp1, metrics=["rpo_p95_s"], point=0)
    (ax,) = fig.axes
    (line,) = by_gid(ax, "cdf")
    assert len(line.get_xdata()) == 4  # the start and one step per replication
    np.testing.assert_allclose(line.get_ydata(), [0, 1 / 3, 2 / 3, 1])


# ----------------------------------------------------------------------------------------------------
# planner


def test_planner_curve_marks_required_formula_and_target(planned):
    fig = plots.planner_curve(planned)
    ax = fig.axes[0]
    site = planned[planned["vm"] == "(site)"].iloc[0]
    assert ax.get_xlabel().startswith("upload bandwidth (Mbit/s")
    assert ax.get_ylabel().startswith("p95 RPO")
    (req,) = by_gid(ax, "required-bandwidth")
    (form,) = by_gid(ax, "formula-bandwidth")
    assert req.get_xdata()[0] == pytest.approx(site["required_Bps"] * 8 / 1e6)
    assert form.get_xdata()[0] == pytest.approx(site["formula_Bps"] * 8 / 1e6)
    (target,) = by_gid(ax, "objective")
    unit = ax.get_ylabel().rsplit("(", 1)[1].rstrip(")")
    assert target.get_ydata()[0] * {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit] == pytest.approx(900)
    (curve,) = by_gid(ax, "site-curve")
    evals = planned.attrs["evaluations"]
    finite = [e for e in evals if np.isfinite(max(e["rpo_stat_s"].values()))]
    assert len(curve.get_xdata()) == len(finite)
    np.testing.assert_allclose(curve.get_xdata(), [e["upload_Bps"] * 8 / 1e6 for e in finite])


def test_planner_curve_refuses_a_frame_without_evaluations(planned):
    bare = planned.copy()
    bare.attrs = {}
    with pytest.raises(ValueError, match="evaluations"):
        plots.planner_curve(bare)


def test_figures_use_the_okabe_ito_palette(exp, planned):
    palette = {c.lower() for c in plots.OKABE_ITO.values()}
    fig = plots.sweep_lines(exp, "link.upload", "rpo_p95_s", by="replication.interval")
    for line in by_gid(fig.axes[0], "mean"):
        assert matplotlib.colors.to_hex(line.get_color()) in palette
    fig = plots.replication_cdfs(exp)
    for ax in fig.axes:
        for line in by_gid(ax, "cdf"):
            assert matplotlib.colors.to_hex(line.get_color()) in palette
    fig = plots.planner_curve(planned)
    for what in ("required", "formula"):
        assert matplotlib.colors.to_hex(by_gid(fig.axes[0], f"{what}-bandwidth")[0].get_color()) in palette


def _host_failures_scenario():
    """A VM on a host that fails every 12 h on average (3 h repairs), over 2 days."""
    from tests.conftest import base_scenario

    d = base_scenario()
    d["duration"] = "2d"
    d["site"]["hosts"][0]["vms"][0]["disks"] = ["100MB"]
    d["failures"] = [{"kind": "host", "target": "H1", "every": {"dist": "exponential", "mean": "12h"},
                      "repair": {"dist": "exponential", "mean": "3h"}}]
    return make_scenario(base=d)


def test_paired_differences_of_two_policies():
    from drsim.views.figures import paired_differences

    with ThreadPoolExecutor(1) as pool:
        exp = run_experiment(_host_failures_scenario(), replications=4, executor=pool,
                             sweep={"policy.name": ["wait-for-repair", "automatic"]})
    fig = paired_differences(exp, metric="downtime_s")
    ax = fig.axes[0]
    bars = [p for p in ax.patches]
    assert len(bars) == 2  # vm1 and the site, one comparison
    tidy = exp.tidy[exp.tidy["vm"] == "vm1"].pivot(index="replication", columns="policy.name", values="downtime_s")
    expected = (tidy["automatic"] - tidy["wait-for-repair"]).mean()
    label = ax.get_xlabel()
    unit = label[label.rindex("(") + 1:-1]
    scale = {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit]
    assert bars[0].get_width() * scale == pytest.approx(expected)
    assert expected < 0  # failing over at once beats waiting for the repair
    assert "95 % CI" in ax.get_title(loc="left")


def test_availability_by_vm_across_replications():
    from drsim.views.figures import availability_by_vm

    with ThreadPoolExecutor(1) as pool:
        exp = run_experiment(_host_failures_scenario(), replications=3, executor=pool)
    fig = availability_by_vm(exp)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["vm1", "(site)"]
    mean = exp.tidy.loc[exp.tidy["vm"] == "vm1", "availability"].mean() * 100
    assert ax.patches[0].get_width() == pytest.approx(mean)
    assert ax.get_xlabel() == "availability (%)"
