"""The report of a bandwidth plan (:func:`drsim.plan`): :func:`write_plan_report` writes it (the answer with the
planner's findings, the per-VM plan, the planner's search curve, the request and method, the scenario in brief)
and :func:`write_plan_folder` a whole plan folder (the table as Parquet, its attrs as JSON, the report). Rendered
by the generic templates ``document.html.j2`` and ``document.md.j2`` with the run report's escaping.

Imports pandas, :mod:`drsim.experiments.planner` (the plan's text and Mbit/s), :mod:`drsim.results` (counts,
folders), :mod:`drsim.scenario`, the figures and :mod:`drsim.views.rendering` and :mod:`drsim.views.brief`.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from drsim.experiments.planner_text import mbit as planner_mbit
from drsim.experiments.planner_text import plan_text, tolerance_text
from drsim.results.findings import count
from drsim.results.folders import atomic_folder, package_versions
from drsim.results.tables import SITE
from drsim.scenario import units
from drsim.scenario.document import Scenario
from drsim.version import __version__
from drsim.views import figures as plots
from drsim.views.brief import brief_of
from drsim.views.rendering import (
    Block,
    ReportFigure,
    Section,
    Table,
    figure_blocks,
    is_missing,
    json_safe,
    write_document,
)

__all__ = ["plan_report_context", "write_plan_report", "write_plan_folder"]

_fmt = units.format_duration


def _mbit(bytes_per_s: Any) -> str:
    return planner_mbit(float(bytes_per_s)) if not is_missing(bytes_per_s) else "-"


def _dur_ci(seconds: Any, ci: Any = math.nan) -> str:
    if is_missing(seconds):
        return "-"
    text = _fmt(float(seconds))
    return text + (f" ± {_fmt(float(ci))}" if not is_missing(ci) and math.isfinite(float(ci)) and ci > 0 else "")


def _plan_table(plan_df: pd.DataFrame) -> Table:
    pct = f"p{plan_df.attrs['percentile']:g}"
    header = ["VM", "batch", "mean churn", "required", "formula", "formula / required", f"{pct} RPO now",
              f"{pct} RPO at formula", f"{pct} RPO at required", "initial replication", "batch replication",
              "protected after"]
    rows, total = [], None
    for r in plan_df.itertuples(index=False):
        ratio = r.formula_ratio
        row = [str(r.vm), "" if pd.isna(r.batch) else str(r.batch), _mbit(r.mean_churn_Bps), _mbit(r.required_Bps),
               _mbit(r.formula_Bps), "-" if is_missing(ratio) or not math.isfinite(ratio) else f"{ratio:.2f}",
               _dur_ci(r.rpo_current_s, r.rpo_current_ci95_s), _dur_ci(r.rpo_formula_s),
               _dur_ci(r.rpo_required_s, r.rpo_required_ci95_s), _dur_ci(r.initial_replication_s),
               _dur_ci(r.batch_initial_replication_s), _dur_ci(r.protected_after_s)]
        if r.vm == SITE:
            total = row
        else:
            rows.append(row)
    return Table(header, rows, [False, True, *([True] * 10)], caption="Bandwidth per VM and for the site",
                 total=total,
                 note="required: the raw upload at which the VM (the site: every VM) meets the target on the shared "
                      "link. formula: the VM's term of drsim's reconstruction of the vendor planner's sizing (p95 of "
                      "hourly churn x 1.3; the vendor's algorithm is unpublished). RPO columns: means over "
                      "replications (± 95 % confidence half-width) at the current, the formula's and the required "
                      "bandwidth; the site row shows the worst VM. Initial replication times at the site's required "
                      "bandwidth.")


def _plan_findings(plan_df: pd.DataFrame) -> list[str]:
    """The findings of :func:`drsim.experiments.planner.plan_text`, as sentences."""

    lines = plan_text(plan_df).splitlines()
    start = lines.index("Findings:") + 1 if "Findings:" in lines else len(lines)
    return [line[2:] if line.startswith("- ") else line for line in lines[start:] if line.strip()]


def plan_report_context(plan_df: pd.DataFrame, scenario: Scenario) -> tuple[dict[str, Any], list[ReportFigure]]:
    """The sections of a plan's report, and its figure."""

    a = plan_df.attrs
    if "rpo_s" not in a:
        raise ValueError("plan_df has no planner attrs: pass the DataFrame returned by drsim.plan")
    site = plan_df[plan_df["vm"] == SITE].iloc[0]
    pct = f"p{a['percentile']:g}"
    ratio = site["formula_ratio"]
    current = site["rpo_current_s"]
    answer = [
        ("Required bandwidth (site)", _mbit(site["required_Bps"])
         + ("" if is_missing(site["required_Bps"]) else f" (not met at {_mbit(site['required_low_Bps'])})")),
        ("Reconstructed planner formula bandwidth", _mbit(site["formula_Bps"])
         + ("" if is_missing(ratio) or not math.isfinite(ratio) else f", {ratio:.2f} x the required bandwidth")),
        ("Current upload", _mbit(a["current_upload_Bps"])),
        (f"Achievable {pct} RPO now (worst VM)", _dur_ci(current, site["rpo_current_ci95_s"])
         + ("" if is_missing(current) else " (meets the target)" if current <= a["rpo_s"] else " (misses the target)")),
        (f"{pct} RPO at the formula bandwidth (worst VM)", _dur_ci(site["rpo_formula_s"])),
        ("Initial replication at the required bandwidth", _dur_ci(site["initial_replication_s"])),
        ("Every VM protected after", _dur_ci(site["protected_after_s"])),
        ("Lower bound of the search", _mbit(a["lower_bound_Bps"])),
    ]
    request = [
        ("RPO target", f"{_fmt(a['rpo_s'])}, {a['percentile']:g} % of the time, every VM"),
        ("Measured", a["measured"]),
        ("Criterion", a["criterion_text"]),
        ("Replications", f"{a['replications']} per bandwidth (the same run seeds at every bandwidth)"),
        ("Experiment seed", str(a["experiment_seed"])),
        ("Tolerance", tolerance_text(a)),
        ("Simulated", f"{count(len(a['evaluations']), 'bandwidth')}, {count(a['runs'], 'run')}, "
                      f"{a['wall_time_s']:.1f} s"),
        ("Sizing scenario", a["sizing"]),
        ("Throttle", (a["throttle"] + "; the bandwidths are the raw uplink") if a["throttle"] else "none"),
        ("Formula", a["formula"]),
    ]
    brief, hosts = brief_of(scenario)
    fig_blocks, figures = figure_blocks([(
        "Planner search", "The RPO percentile judged at every simulated bandwidth for the worst VM (filled where the "
        "whole site met the target) and each VM, joining the bandwidths judged with every replication (grey "
        "diamonds: simulated with fewer, to steer the search); the target is dashed; vertical lines mark the "
        "required, the formula and the current bandwidth.", "report-planner-curve.png",
        lambda: plots.planner_curve(plan_df))])
    sections = [
        Section("answer", "Answer", [Block("dl", answer), Block("h3", "Findings"),
                                     Block("ul", _plan_findings(plan_df))]),
        Section("vms", "Per-VM plan", [Block("table", _plan_table(plan_df))]),
        Section("figures", "Figures", fig_blocks),
        Section("request", "Request and method", [Block("dl", request)]),
        Section("scenario", "Scenario", [
            Block("p", "The scenario as given; the planner sizes it without its failures, maintenance and drills."),
            Block("dl", brief), Block("table", hosts)]),
    ]
    ctx = {
        "title": f"Bandwidth plan: {a['scenario']}",
        "meta": f"drsim {__version__} · experiment seed {a['experiment_seed']} · RPO target {_fmt(a['rpo_s'])}",
        "version": __version__,
        "sections": sections,
        "footer": f"Generated by drsim {__version__}. The same scenario and request with experiment seed "
                  f"{a['experiment_seed']} gives the same plan.",
    }
    return ctx, figures


def write_plan_report(plan_df: pd.DataFrame, scenario: Scenario, folder: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (with ``report-planner-curve.png``) of a plan
    returned by :func:`drsim.plan` for ``scenario`` into ``folder`` (created if needed). Returns (HTML, Markdown)."""
    ctx, figures = plan_report_context(plan_df, scenario)
    return write_document(Path(folder), ctx, figures)


def write_plan_folder(plan_df: pd.DataFrame, scenario: Scenario, out_root: str | Path = "results") -> Path:
    """Write a plan into a new folder ``out_root/<scenario>/plan-<UTC time>/`` (a ``-2``... suffix if it exists),
    created atomically: ``plan.parquet`` (the table, without attrs), ``metadata.json`` (the attrs as JSON, NaN and
    infinities as null) and the plan report. Returns the folder."""
    now = datetime.now(UTC)

    def fill(tmp: Path) -> None:
        flat = pd.DataFrame(plan_df, copy=True)
        flat.attrs = {}
        flat.to_parquet(tmp / "plan.parquet", index=False)
        meta = {**json_safe(dict(plan_df.attrs)), "created_at": now.isoformat(timespec="seconds"),
                "versions": package_versions(),
                "units": {"time": "seconds", "rate": "bytes per second"}}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        write_plan_report(plan_df, scenario, tmp)

    return atomic_folder(Path(out_root) / scenario.name, f"plan-{now:%Y%m%d-%H%M%S}", fill)
