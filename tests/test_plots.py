"""Figures: each function draws on small real runs and produces the expected elements."""

from __future__ import annotations

import copy
import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import drsim  # noqa: E402
from drsim.scenario.units import format_duration  # noqa: E402
from drsim.views import figures as plots  # noqa: E402
from tests.conftest import base_scenario, make_scenario  # noqa: E402

STEPS = {"shutdown": "2m", "prepare": "3m", "process_pending": "5m", "start": "8m", "reconnect": "2m",
         "onprem_start": "5m", "cleanup": "10m", "portal": "15m"}


def _vm(name: str, disk: str = "1GB") -> dict[str, Any]:
    return {"name": name, "disks": [disk], "churn": {"rate": "100kB/s"}}


def incident_scenario(**changes: Any) -> dict[str, Any]:
    """Two hosts, three VMs, one day: a host failure with failover and failback, and a drill."""
    d = base_scenario()
    d["site"] = {"hosts": [{"name": "H1", "vms": [_vm("vm1"), _vm("vm2")]},
                           {"name": "H2", "vms": [_vm("vm3")]}]}
    d["failover"] = dict(STEPS)
    d["failures"] = [{"kind": "host", "target": "H1", "at": "6h", "repair": "2h"}]
    d["policy"] = {"name": "manual", "detect": "10m", "respond": "15m", "failback": "immediate", "point": "latest"}
    d["drills"] = [{"vms": ["vm3"], "at": "3h", "duration": "1h"}]
    d["objectives"] = {"rpo": "15m", "rto": "1h"}
    d.update(changes)
    return d


@pytest.fixture(scope="module")
def results() -> drsim.Results:
    return drsim.simulate(make_scenario(base=incident_scenario()))


@pytest.fixture(scope="module")
def calendar_results() -> drsim.Results:
    return drsim.simulate(make_scenario(base=incident_scenario(start="2026-03-02T08:00:00")))


@pytest.fixture(scope="module")
def many_vms() -> drsim.Results:
    d = base_scenario()
    d["duration"] = "6h"
    d["site"] = {"hosts": [{"name": "H1", "vms": [_vm(f"vm{i:02d}", "200MB") for i in range(8)]}]}
    return drsim.simulate(make_scenario(base=d))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def rendered(fig: Figure) -> Figure:
    """Draw the figure to PNG (catches errors that appear only at draw time)."""
    assert isinstance(fig, Figure)
    fig.savefig(io.BytesIO(), format="png", dpi=40)
    return fig


def legend_texts(fig: Figure) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends, "the figure has no legend"
    return [t.get_text() for lg in legends for t in lg.get_texts()]


def test_the_tiny_run_has_what_the_figures_show(results):
    assert len(results.incidents) == 2  # vm1 and vm2 on H1
    assert results.incidents["failback_done_at"].notna().all()
    ops = results.operations
    assert ((ops["kind"] == "test_failover") & (ops["step"] == "running")).sum() == 1


# --- protection timeline -------------------------------------------------------------------------------


def test_timeline_has_one_row_per_vm_states_markers_and_a_legend(results):
    fig = rendered(plots.protection_timeline(results))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["vm1", "vm2", "vm3"]
    assert ax.get_xlabel() == "time since start (h)"  # a one-day run: hours
    assert ax.get_xlim() == pytest.approx((0.0, 24.0))
    labels = {c.get_label() for c in ax.collections if isinstance(c, PolyCollection)}
    assert {"initial replication", "protected", "down", "failing over", "in cloud", "failback sync"} <= labels
    # one rectangle per state interval
    protected = next(c for c in ax.collections if c.get_label() == "protected")
    assert len(protected.get_paths()) == (results.states["state"] == "protected").sum()
    failures = next(line for line in ax.lines if line.get_label() == "failure")
    assert sorted(failures.get_xdata()) == pytest.approx(sorted(results.incidents["failed_at"] / 3600))
    drills = next(line for line in ax.lines if line.get_label() == "drill (test failover)")
    assert len(drills.get_xdata()) == 1
    assert drills.get_ydata()[0] < 2 < drills.get_ydata()[0] + 1  # on vm3's row (row 2), just above the bar
    texts = legend_texts(fig)
    assert {"protected", "down", "in cloud", "failure", "drill (test failover)"} <= set(texts)
    assert "first" not in ax.get_title(loc="left")


def test_timeline_shows_health_warnings_as_hatching():
    d = base_scenario()  # 100 kB/s of churn over 50 kB/s: cycles are missed, health degrades
    d["link"]["upload"] = "400kbit/s"
    d["site"]["hosts"][0]["vms"][0]["disks"] = ["100MB"]
    r = drsim.simulate(make_scenario(base=d))
    assert (r.health["health"] != "normal").any()
    fig = rendered(plots.protection_timeline(r))
    hatched = [c for c in fig.axes[0].collections if c.get_hatch()]
    assert {c.get_label() for c in hatched} == {f"health {h}" for h in r.health["health"].unique() if h != "normal"}
    assert any(t.startswith("health ") for t in legend_texts(fig))


def test_timeline_shows_the_worst_rows_and_names_the_rest(many_vms):
    fig = rendered(plots.protection_timeline(many_vms, max_rows=5))
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) == 5 and rows == sorted(rows)  # the worst five, in scenario order
    rest = sorted(set(f"vm{i:02d}" for i in range(8)) - set(rows))
    title = " ".join(ax.get_title(loc="left").split())
    assert "5 of 8 VMs shown, the worst" in title and f"3 left out: {', '.join(rest)}" in title
    assert ax.get_xlabel() == "time since start (h)"


def test_calendar_start_gives_a_date_axis(calendar_results):
    fig = rendered(plots.protection_timeline(calendar_results))
    ax = fig.axes[0]
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    start = mdates.date2num(calendar_results.scenario.start)
    assert ax.get_xlim() == pytest.approx((start, start + 1.0))
    assert "date" in ax.get_xlabel()
    failures = next(line for line in ax.lines if line.get_label() == "failure")
    assert failures.get_xdata()[0] == pytest.approx(start + 0.25)  # the failure at 6 h


# --- RPO -----------------------------------------------------------------------------------------------


def runs_of(results: drsim.Results, vm: str) -> int:
    """Stretches of the RPO curve without a gap, counted from the table: a piece that does not start where the
    previous one ended starts a new stretch."""
    rows = results.rpo[results.rpo["vm"] == vm]
    t = rows["time"].to_numpy()
    return 1 + int(np.sum(np.abs(t[2::2] - t[1:-1:2]) > 1e-6))


def test_rpo_draws_each_stretch_without_joining_gaps(results):
    fig = rendered(plots.rpo_over_time(results))
    axes = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert [ax.get_title(loc="left") for ax in axes] == ["vm1", "vm2", "vm3"]
    target = results.scenario.objectives.rpo
    for ax in axes:
        vm = ax.get_title(loc="left")
        curves = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(curves) == 1
        segments = curves[0].get_segments()
        assert len(segments) == runs_of(results, vm)
        assert sum(len(s) for s in segments) == (results.rpo["vm"] == vm).sum()  # every breakpoint, once
        assert ax.get_ylabel() == "RPO (min)"
        lines = [line for line in ax.lines if line.get_label() == "target"]
        assert len(lines) == 1 and lines[0].get_ydata()[0] == pytest.approx(target / 60)
        assert ax.get_ylim()[1] > target / 60  # the target is in view
    # vm1 and vm2 stopped replicating while their host was down and in the cloud: two stretches each
    assert [len(next(c for c in ax.collections if isinstance(c, LineCollection)).get_segments())
            for ax in axes] == [2, 2, 1]
    assert axes[-1].get_xlabel() == "time since start (h)"
    assert any(t.startswith("target 15 min") for t in legend_texts(fig))
    # each panel says its figures are over the VM's whole protected time (the summary's steady state differs)
    for ax in axes:
        stats = results.rpo_stats(ax.get_title(loc="left"))
        assert ax.get_title(loc="right").startswith(
            f"over its protected time: mean {format_duration(stats.mean)} · p95 "
            f"{format_duration(stats.p95)} · above target {stats.over_target:.1%}")


def test_rpo_selects_and_limits_vms(results):
    fig = rendered(plots.rpo_over_time(results, vms=["vm3", "vm1"]))
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["vm3", "vm1"]
    fig = rendered(plots.rpo_over_time(results, max_vms=2))
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["vm1", "vm2"]  # hit by the host failure
    assert "2 of 3 VMs shown, the worst first" in fig.get_suptitle()
    assert "1 left out: vm3" in fig.get_suptitle()
    fig = rendered(plots.rpo_over_time(results, vms=["vm3", "vm2", "vm1"], max_vms=2))
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["vm3", "vm2"]  # as named
    assert "first 2 of 3 VMs" in fig.get_suptitle()
    with pytest.raises(ValueError, match="unknown VM"):
        plots.rpo_over_time(results, vms=["nope"])


def test_rpo_shading_covers_exactly_the_time_above_target():
    # two pieces: 100 -> 400 s (target 300: above from t = 200 to 300), then 50 -> 350 (above from 550 to 600)
    times = np.array([0.0, 300.0, 300.0, 600.0])
    values = np.array([100.0, 400.0, 50.0, 350.0])
    a, b = plots._above_target(times, values, 300.0)
    assert a == pytest.approx([200.0, 550.0]) and b == pytest.approx([300.0, 600.0])
    # above target across a drop: one merged interval
    a, b = plots._above_target(np.array([0.0, 10.0, 10.0, 20.0]), np.array([500.0, 510.0, 400.0, 410.0]), 300.0)
    assert a == pytest.approx([0.0]) and b == pytest.approx([20.0])


def test_rpo_shades_a_saturated_vm_and_marks_the_target():
    d = base_scenario()
    d["link"]["upload"] = "400kbit/s"
    d["site"]["hosts"][0]["vms"][0]["disks"] = ["100MB"]
    r = drsim.simulate(make_scenario(base=d))
    fig = rendered(plots.rpo_over_time(r))
    ax = fig.axes[0]
    shading = [c for c in ax.collections if c.get_label() == "above target"]
    assert len(shading) == 1 and len(shading[0].get_paths()) >= 1
    assert r.rpo_stats("vm1").over_target > 0


# --- link usage ----------------------------------------------------------------------------------------


def test_link_usage_panels_units_and_initial_progress(results):
    fig = rendered(plots.link_usage(results))
    ax_cap, ax_act, ax_init, ax_back = fig.axes  # the twin axis is added last
    assert ax_cap.get_ylabel() == "capacity (Mbit/s)"
    assert ax_back.get_ylabel() == "backlog (GiB on the wire)"
    assert ax_act.get_ylabel() == "transfers"
    assert ax_init.get_ylabel() == "copied (GiB)"
    assert ax_init.get_xlabel() == "time since start (h)"
    capacity = ax_cap.lines[0].get_ydata()
    assert max(capacity) == pytest.approx(8.0)  # 8 Mbit/s, efficiency 1
    assert max(ax_act.lines[0].get_ydata()) == results.link["active"].max()
    vm_lines = [line for line in ax_init.lines if line.get_label() in ("vm1", "vm2", "vm3")]
    assert len(vm_lines) == 3
    for line in vm_lines:  # each ends at the VM's initial bytes
        assert line.get_ydata()[-1] == pytest.approx(1e9 / 2**30)
    assert {"vm1", "vm2", "vm3", "protected"} <= set(legend_texts(fig))
    assert any("Mbit/s" in t for t in legend_texts(fig))


def test_backlog_curve_drains_at_the_capacity():
    # 100 bytes at 10 B/s from t = 0: empty at 10, still empty at 20; then 50 bytes at 20, end at 30
    x, y = plots._backlog_curve(np.array([0.0, 20.0]), np.array([100.0, 50.0]), np.array([10.0, 10.0]), 30.0)
    assert list(x) == pytest.approx([0, 10, 20, 20, 25, 30])
    assert list(y) == pytest.approx([100, 0, 0, 50, 0, 0])


def test_link_usage_download_direction(results):
    fig = rendered(plots.link_usage(results, direction="download"))
    assert max(fig.axes[0].lines[0].get_ydata()) == pytest.approx(80.0)
    with pytest.raises(ValueError, match="direction"):
        plots.link_usage(results, direction="sideways")


# --- incident waterfall --------------------------------------------------------------------------------


def expected_bars(inc) -> int:
    """Phases with a known, positive length: outage milestones in order, then the failback."""
    n, prev = 0, inc["failed_at"]
    for col in ("detected_at", "decision_at", "failover_started_at", "service_restored_at"):
        v = inc[col]
        if not math.isnan(v):
            n += v > prev
            prev = max(prev, v)
    return n + (inc["failback_done_at"] > inc["failback_started_at"])


def test_waterfall_has_a_bar_group_per_incident(results):
    fig = rendered(plots.incident_waterfall(results))
    ax_out, ax_back = fig.axes
    inc = results.incidents
    labels = [t.get_text() for t in ax_out.get_yticklabels()]
    assert len(labels) == len(inc) == 2
    assert all(label.startswith(vm) for label, vm in zip(labels, inc["vm"], strict=True))
    bars = [p for ax in (ax_out, ax_back) for p in ax.patches]
    for i, row in inc.iterrows():
        mine = [p for p in bars if p.get_gid() == f"incident-{i}"]
        assert len(mine) == expected_bars(row) >= 4  # detection, decision, failover, failback
        assert all(abs(p.get_y() + p.get_height() / 2 - i) < 1e-9 for p in mine)
    # bars are consecutive: the failover bar ends at the service restoration
    row = inc.iloc[0]
    out = sorted((p for p in ax_out.patches if p.get_gid() == "incident-0"), key=lambda p: p.get_x())
    assert out[-1].get_x() + out[-1].get_width() == pytest.approx((row["service_restored_at"] - row["failed_at"]) / 60)
    assert ax_out.get_xlabel() == "time since failure (min)"
    assert ax_back.get_xlabel().startswith("time since failback start (")
    texts = [t.get_text() for t in ax_out.texts]
    assert all("data loss" in t for t in texts)
    assert {"detection", "decision", "failover", "failback", "RTO target 1 h"} <= set(legend_texts(fig))


def test_waterfall_without_incidents_says_so(many_vms):
    fig = rendered(plots.incident_waterfall(many_vms))
    assert any("no incidents" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_waterfall_limits_incidents_and_marks_unrecoverable():
    d = copy.deepcopy(incident_scenario())
    d["failures"] = [{"kind": "host", "target": "H1", "at": "6h", "repair": "2h"},
                     {"kind": "corruption", "target": "vm3", "at": "2h", "detected_after": "5h"}]
    d["replication"]["retention"] = "1h"  # corruption noticed after the retention: nothing clean left
    r = drsim.simulate(make_scenario(base=d))
    assert (r.incidents["outcome"].str.startswith("unrecoverable")).any()
    fig = rendered(plots.incident_waterfall(r, max_incidents=2))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 2
    assert any(label.startswith("vm3 · corruption") for label in labels)  # never restored: shown first
    assert "2 of 3 incidents shown, the longest outages first" in fig.get_suptitle()
    assert "1 left out (RTO at most" in " ".join(fig.get_suptitle().split())
    fig = rendered(plots.incident_waterfall(r))
    assert any("unrecoverable" in t.get_text() for t in fig.axes[0].texts)
