"""Figures of experiments and plans: sweep heatmap, sweep lines, CDFs across replications, planner curve."""

from __future__ import annotations

import copy
import io
from concurrent.futures import ThreadPoolExecutor

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import drsim  # noqa: E402
from drsim.experiments.runner import run_experiment  # noqa: E402
from drsim.views import figures as plots  # noqa: E402
from drsim.views.rendering import draw_figure  # noqa: E402
from tests.conftest import big_site, make_scenario  # noqa: E402

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
    return drsim.plan(stochastic(), rpo="15m", replications=1, tolerance="1Mbit/s", executor=ThreadPoolExecutor(1),
                      method="full")  # the full search: the curve spans its doublings (a log axis)


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


def test_heatmap_colours_are_anchored_on_the_objective(exp):
    target = exp.scenario.objectives.rpo
    fig = plots.sweep_heatmap(exp, "link.upload", "replication.interval")
    ax, bar = fig.axes
    norm, cmap = ax.images[0].norm, ax.images[0].get_cmap()
    assert norm(target / 60) == pytest.approx(0.5)  # the objective in the middle of the scale, minutes shown
    for mean in site_mean(exp, "rpo_p95_s").values():  # blue below the objective, red above
        r, _, b, _ = cmap(norm(mean / 60))
        assert (b > r) if mean < target else (r > b)
    (mark,) = [line for line in bar.lines if line.get_gid() == "colorbar-target"]
    assert mark.get_ydata()[0] == pytest.approx(target / 60)
    # far below an objective, values a few minutes apart look alike: the colours do not span their own range
    means = np.array(list(site_mean(exp, "rpo_p95_s").values())) / 60
    assert means.max() - means.min() > 10  # 8 to 25 minutes
    norm = plots.sweep_heatmap(exp, "link.upload", "replication.interval", objective="4h").axes[0].images[0].norm
    assert norm(means.max()) - norm(means.min()) < 0.1
    assert norm(240.0) == pytest.approx(0.5)


def test_heatmap_on_a_log_colour_scale_has_plain_labels(exp):
    # an objective of 20 s: the means (minutes) span more than 20 times it, the colour scale is logarithmic
    drawn = draw_figure("heatmap", "", "h.png",
                        lambda: plots.sweep_heatmap(exp, "link.upload", "replication.interval", objective=20))
    assert not any("$" in t or "mathdefault" in t for t in drawn.texts)
    fig = plots.sweep_heatmap(exp, "link.upload", "replication.interval", objective=20)
    assert fig.axes[0].images[0].norm(20 / 60) == pytest.approx(0.5)


def test_heatmap_defaults_to_the_rto_objective_for_rto_metrics_and_refuses_bad_paths(exp):
    fig = plots.sweep_heatmap(exp, "replication.interval", "link.upload", metric="downtime_s")
    assert any("2 h" in t.get_text() for t in fig.legends[0].get_texts())
    with pytest.raises(ValueError, match="not swept"):
        plots.sweep_heatmap(exp, "link.upload", "link.download")
    with pytest.raises(ValueError, match="no metric"):
        plots.sweep_heatmap(exp, "link.upload", "replication.interval", metric="nonsense")


# ----------------------------------------------------------------------------------------------------
# lines


def test_sweep_lines_with_few_values_are_points_with_error_bars(exp):
    assert len(UPLOADS) < plots.LINE_FROM  # two values: nothing is known between them
    fig = plots.sweep_lines(exp, "link.upload", "rpo_p95_s", by="replication.interval")
    ax = fig.axes[0]
    means = by_gid(ax, "mean")
    assert len(means) == 2 and all(line.get_linestyle() == "None" for line in means)  # points, not joined
    assert [c for c in ax.collections if c.get_gid() == "ci95" and isinstance(c, PolyCollection)] == []  # no band
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    assert ax.get_xlabel() == "link.upload (Mbit/s)"
    assert ax.get_ylabel().startswith("p95 RPO, site (")
    # the two series are shifted a little apart around the swept values, which are the ticks
    np.testing.assert_allclose(np.mean([line.get_xdata() for line in means], axis=0), [2.0, 8.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "8"]
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == [f"replication.interval = {v}, 95 % CI"
                                                                      for v in INTERVALS]
    (objective,) = by_gid(ax, "objective")
    assert "RPO objective 15 min" in objective.get_label()
    assert "points with error bars" in ax.get_title(loc="left")
    # the error bars of the first series (interval 5m: points 0 and 2) are mean ± ci95
    agg = exp.aggregate
    rows = agg[(agg["vm"] == "(site)") & (agg["metric"] == "rpo_p95_s") & agg["point"].isin([0, 2])]
    unit = {"s": 1, "min": 60, "h": 3600, "d": 86400}[ax.get_ylabel().rsplit("(", 1)[1].rstrip(")")]
    segments = bars[0].lines[2][0].get_segments()
    ends = np.array([[seg[0][1], seg[1][1]] for seg in segments]) * unit
    np.testing.assert_allclose(np.sort(ends.min(axis=1)), np.sort(rows["mean"] - rows["ci95"]))
    np.testing.assert_allclose(np.sort(ends.max(axis=1)), np.sort(rows["mean"] + rows["ci95"]))


def test_sweep_lines_with_five_values_or_more_are_a_line_and_a_band():
    uploads = ["2Mbit/s", "3Mbit/s", "4Mbit/s", "6Mbit/s", "8Mbit/s"]
    assert len(uploads) == plots.LINE_FROM
    with ThreadPoolExecutor(1) as pool:
        exp5 = run_experiment(make_scenario({"duration": "1d", "site.hosts[0].vms[0].churn.variation": 0.3}),
                              replications=2, executor=pool, seed=3, sweep={"link.upload": uploads})
    ax = plots.sweep_lines(exp5, "link.upload", "rpo_p95_s").axes[0]
    (line,) = by_gid(ax, "mean")
    np.testing.assert_allclose(line.get_xdata(), [2, 3, 4, 6, 8])
    assert line.get_linestyle() == "-"
    (band,) = by_gid(ax, "ci95")
    assert isinstance(band, PolyCollection)
    assert "line and band" in ax.get_title(loc="left")


def test_errors_about_other_swept_paths_say_by(exp):
    with pytest.raises(ValueError, match=r"give sweep_lines by='replication.interval' for one line per value of it"):
        plots.sweep_lines(exp, "link.upload", "rpo_p95_s")
    with pytest.raises(ValueError, match=r"give sweep_lines by='replication.interval'"):
        plots.paired_differences(exp, "link.upload")
    with pytest.raises(ValueError, match=r"by='link.upload' is x: give by= another swept path"):
        plots.sweep_lines(exp, "link.upload", "rpo_p95_s", by="link.upload")


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


def test_planner_curve_log_axis_has_plain_labels_in_a_report(planned):
    # reports draw with mathtext off; the log axis's labels must still read as numbers
    drawn = draw_figure("Planner search", "", "p.png", lambda: plots.planner_curve(planned))
    assert not any("$" in t or "mathdefault" in t for t in drawn.texts), [t for t in drawn.texts if "$" in t]
    with matplotlib.rc_context({"text.parse_math": False}):
        fig = plots.planner_curve(planned)
        fig.savefig(io.BytesIO(), format="png", dpi=40)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    lo, hi = ax.get_ylim()
    shown = [(t.get_position()[1], t.get_text()) for t in [*ax.get_yticklabels(), *ax.get_yticklabels(minor=True)]
             if lo <= t.get_position()[1] <= hi and t.get_text()]
    assert len(shown) >= 2
    for value, text in shown:  # each label is its tick's value, written plainly
        assert float(text.replace(",", "")) == pytest.approx(value)


def test_planner_curve_joins_only_the_fully_replicated_bandwidths(planned):
    """A fast search's steering bandwidths (fewer replications than asked, the criterion predicted) are drawn apart,
    as small diamonds off the curve, and the title counts them."""
    fast = planned.copy()
    fast.attrs = copy.deepcopy(planned.attrs)
    fast.attrs["replications"] = 10
    evals = sorted(fast.attrs["evaluations"], key=lambda e: e["upload_Bps"])
    for k, e in enumerate(evals):
        e["replications"] = 10 if k % 2 == 0 else 1
    ax = plots.planner_curve(fast).axes[0]
    full = [e["upload_Bps"] * 8 / 1e6 for e in evals if e["replications"] == 10
            and np.isfinite(max(e["rpo_stat_s"].values()))]
    steering = [e["upload_Bps"] * 8 / 1e6 for e in evals if e["replications"] == 1
                and np.isfinite(max(e["rpo_stat_s"].values()))]
    (curve,) = by_gid(ax, "site-curve")
    np.testing.assert_allclose(curve.get_xdata(), full)
    (marks,) = by_gid(ax, "steering")
    np.testing.assert_allclose(marks.get_xdata(), steering)
    assert not by_gid(ax, "unbounded")  # every VM was protected: no triangle
    n_full = sum(e["replications"] == 10 for e in evals)
    assert f"({n_full} bandwidths × 10 replications, {len(evals) - n_full} with fewer)" in ax.get_title(loc="left")
    for e in evals:  # a search that never came near an answer: the curve joins them all, and says so
        e["replications"] = 3
    ax = plots.planner_curve(fast).axes[0]
    assert len(by_gid(ax, "site-curve")[0].get_xdata()) == len(full) + len(steering) and not by_gid(ax, "steering")
    assert f"({len(evals)} bandwidths, each with fewer than 10 replications)" in ax.get_title(loc="left")


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


def test_availability_whiskers_stop_at_100_and_the_legend_covers_no_bar(site40):
    fig = plots.availability_by_vm(site40, 0)
    fig.savefig(io.BytesIO(), format="png", dpi=40)
    ax = fig.axes[0]
    agg = site40.aggregate
    rows = agg[(agg["point"] == 0) & (agg["metric"] == "availability")]
    assert ((rows["mean"] + rows["ci95"]) > 1.0).any()  # some intervals reach past 100 %
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    right = max(seg[1][0] for seg in bars.lines[2][0].get_segments())
    assert right == pytest.approx(100.0)  # cut at 100 %
    assert right < ax.get_xlim()[1]  # and drawn whole, caps included
    caps = [x for cap in bars.lines[1] for x in cap.get_xdata()]
    assert max(caps) <= 100.0 + 1e-9
    legend = fig.legends[0].get_window_extent()
    for patch in ax.patches:
        assert not legend.overlaps(patch.get_window_extent())
    assert any("cut at 100 %" in t.get_text() for t in fig.legends[0].get_texts())


@pytest.fixture(scope="module")
def site40():
    """40 VMs in four hosts and an unsupported one; host HV02 (vm020-vm029) fails at 14 h; how long the operator
    takes to respond is swept (15 min, 2 h)."""
    scenario = drsim.parse_scenario(big_site(40, duration="1d", failure_at="14h", per_host=10, failed_host="HV02"),
                                    source="<site40>")
    with ThreadPoolExecutor(1) as pool:
        return run_experiment(scenario, replications=2, executor=pool, seed=5,
                              sweep={"policy.respond": ["15m", "2h"]})


def test_figures_of_an_experiment_over_40_vms_show_the_worst_and_say_what_is_left_out(site40):
    hit = {f"vm{i:03d}" for i in range(20, 30)}
    ax = plots.availability_by_vm(site40, 1, max_vms=5).axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) == 6 and rows[-1] == "(site)" and set(rows[:-1]) <= hit  # the least available
    agg = site40.aggregate
    avail = agg[(agg["point"] == 1) & (agg["metric"] == "availability") & (agg["vm"] != "(site)")]
    assert avail.set_index("vm")["mean"][rows[:-1]].max() <= avail.set_index("vm")["mean"].drop(rows[:-1]).min()
    title = " ".join(ax.get_title(loc="left").split())
    assert "5 of 40 VMs shown, the least available first; 35 left out, each at least" in title
    ax = plots.paired_differences(site40, "policy.respond", metric="downtime_s", max_vms=5).axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) == 6 and rows[-1] == "(site)" and set(rows[:-1]) <= hit  # the ones the response delays
    title = " ".join(ax.get_title(loc="left").split())
    assert "5 of 40 VMs shown, the largest differences first; 35 left out" in title


def test_sweep_error_bars_stop_where_the_metric_cannot_go():
    with ThreadPoolExecutor(1) as pool:
        exp3 = run_experiment(_host_failures_scenario(), replications=3, executor=pool, seed=3,
                              sweep={"policy.name": ["wait-for-repair", "automatic"]})
    agg = exp3.aggregate
    site = agg[agg["vm"] == "(site)"].set_index("metric")
    assert ((site.loc["downtime_s", "mean"] - site.loc["downtime_s", "ci95"]) < 0).all()  # intervals below 0 h
    assert ((site.loc["availability", "mean"] + site.loc["availability", "ci95"]) > 1).all()  # and above 100 %
    for metric, low, high in (("downtime_s", 0.0, np.inf), ("availability", -np.inf, 100.0)):
        ax = plots.sweep_lines(exp3, "policy.name", metric).axes[0]
        (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        ends = np.array([[seg[0][1], seg[1][1]] for seg in bars.lines[2][0].get_segments()])
        assert ends.min() >= low - 1e-9 and ends.max() <= high + 1e-9
        assert ends.min() == pytest.approx(low) or ends.max() == pytest.approx(high)  # cut exactly there
        cut = "cut at 0" if metric == "downtime_s" else "cut at 100 %"
        assert any(cut in t.get_text() for t in ax.get_legend().get_texts())
        assert ax.get_xlim() == pytest.approx((-0.5, 1.5))  # two categories, each with room


def test_planner_curve_of_many_vms_draws_the_most_demanding(planned):
    # the plan of one VM, widened to twelve: vm-k needs k Mbit/s and its RPO scales with k
    many = planned.copy()
    many.attrs = copy.deepcopy(planned.attrs)
    names = [f"vm-{k:02d}" for k in range(1, 13)]
    for e in many.attrs["evaluations"]:
        base = e["rpo_stat_s"]["vm1"]
        e["rpo_stat_s"] = {n: base * (k + 1) / 12 for k, n in enumerate(names)}
    rows = [many[many["vm"] == "vm1"].iloc[0].copy() for _ in names]
    for k, (row, n) in enumerate(zip(rows, names, strict=True)):
        row["vm"], row["required_Bps"] = n, (k + 1) * 1e6 / 8
    evaluations = many.attrs["evaluations"]
    many = pd.concat([pd.DataFrame(rows), many[many["vm"] == "(site)"]], ignore_index=True)
    many.attrs = copy.deepcopy(planned.attrs) | {"evaluations": evaluations}
    ax = plots.planner_curve(many, max_vms=3).axes[0]
    drawn = sorted(line.get_label() for line in by_gid(ax, "vm-curve"))
    assert drawn == ["vm-10", "vm-11", "vm-12"]  # the highest required bandwidths
    title = " ".join(ax.get_title(loc="left").split())
    assert "3 of 12 VMs shown, the most demanding" in title and "9 left out, all under the worst-VM line" in title
