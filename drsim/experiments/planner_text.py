"""The bandwidth planner's answer in plain text, as ``drsim plan`` prints it (:func:`plan_text`), and bandwidths
in Mbit/s (:func:`mbit`).

Imports :mod:`drsim.scenario`, :mod:`drsim.results` and, of this stage, the planner's formula constants.
"""

from __future__ import annotations

import math

import pandas as pd

from drsim.experiments.sizing import FORMULA_GROWTH, FORMULA_PERCENTILE
from drsim.results.findings import count, text_table
from drsim.results.tables import SITE
from drsim.scenario import units

__all__ = ["plan_text", "mbit", "tolerance_text"]


def mbit(bytes_per_s: float) -> str:
    if bytes_per_s is None or not math.isfinite(bytes_per_s):
        return "-"
    mbit = bytes_per_s * 8 / 1e6
    if mbit < 0.1:
        return units.format_rate(bytes_per_s)
    return f"{mbit:.2f} Mbit/s" if mbit < 100 else f"{mbit:.1f} Mbit/s"


def tolerance_text(attrs: dict) -> str:
    """The search's tolerance as requested and, when the relative one decided, its width at the answer:
    ``0.50 Mbit/s``, ``0.50 Mbit/s or 1 % of the answer (0.50 Mbit/s here)``."""
    rel = attrs.get("rel_tolerance", 0.0)
    text = mbit(attrs["tolerance_Bps"])
    if not rel:
        return text
    here = attrs.get("bracket_tolerance_Bps", math.nan)
    return f"{text} or {rel * 100:g} % of the answer" + (f" ({mbit(here)} here)" if math.isfinite(here) else "")


def _dur(seconds: float, ci: float = math.nan) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    text = units.format_duration(seconds)
    return f"{text} ± {units.format_duration(ci)}" if math.isfinite(ci) and ci > 0 else text


def _formula_verdict(df: pd.DataFrame) -> str:
    """Whether the formula's bandwidth met the target (simulated), and by how much it over- or under-provisions;
    a difference that rounds to 0 % is said as such (within the search's tolerance)."""
    site = df[df["vm"] == SITE].iloc[0]
    ratio = float(site["formula_ratio"])
    meets = bool(df.attrs.get("formula_meets", ratio >= 1))
    share = f"{abs(ratio - 1):.0%}"
    if meets:
        return ("it meets the target, within the search's tolerance of the required bandwidth" if share == "0%"
                else f"it meets the target and over-provisions by {share}")
    if share == "0%":
        return "it falls just short of the target (less than 1 % below the required bandwidth)"
    return f"it under-provisions by {share} and misses the target"


def plan_text(df: pd.DataFrame) -> str:
    """The plan as printed by ``drsim plan``: the table and what it means."""
    a = df.attrs
    target = units.format_duration(a["rpo_s"])
    pct = f"p{a['percentile']:g}"
    lines = [
        f"{a['scenario']}: upload for a {target} RPO {a['percentile']:g} % of the time, every VM",
        f"measured: {a['measured']}; criterion: {a['criterion_text']}",
        f"{count(a['replications'], 'replication')} per bandwidth (same run seeds at every bandwidth), "
        f"tolerance {tolerance_text(a)}; {count(len(a['evaluations']), 'bandwidth')} simulated "
        f"({count(a['runs'], 'run')}) in {a['wall_time_s']:.1f} s",
        f"sizing scenario: {a['sizing']}; throttle "
        + (a["throttle"] + " (the bandwidths are the raw uplink)" if a["throttle"] else "none"),
        "",
    ]
    header = ("VM", "batch", "mean churn", "required", "formula", "formula/req", f"{pct} now",
              f"{pct} at formula", f"{pct} at required", "initial repl.", "batch repl.", "protected after")
    rows = []
    for r in df.itertuples(index=False):
        ratio = r.formula_ratio
        rows.append((
            r.vm, "" if pd.isna(r.batch) else str(r.batch), mbit(r.mean_churn_Bps), mbit(r.required_Bps),
            mbit(r.formula_Bps), "-" if not math.isfinite(ratio) else f"{ratio:.2f}",
            _dur(r.rpo_current_s, r.rpo_current_ci95_s), _dur(r.rpo_formula_s), _dur(r.rpo_required_s),
            _dur(r.initial_replication_s), _dur(r.batch_initial_replication_s), _dur(r.protected_after_s),
        ))
    lines += text_table(header, rows)
    site = df[df["vm"] == SITE].iloc[0]
    vms = df[df["vm"] != SITE]
    lines.append("")
    lines += [
        "required: the raw upload at which the VM (the site: every VM) meets the target on the shared link.",
        f"formula: the VM's term of drsim's reconstruction of the vendor planner's sizing (p{FORMULA_PERCENTILE:g} "
        f"of hourly churn x {FORMULA_GROWTH} / compression / efficiency; the vendor's algorithm is unpublished).",
        f"{pct}: means over replications at the current {mbit(a['current_upload_Bps'])} (± 95 % CI half-width), "
        "the formula's and the row's required bandwidth;",
        "the site row shows the worst VM. Initial replication times at the site's required bandwidth.",
        f"Lower bound of the search (mean churn / compression / efficiency / throttle share): "
        f"{mbit(a['lower_bound_Bps'])}; no VM's required bandwidth is below it (the link must carry the site's "
        "churn).",
    ]
    lines.append("")
    lines.append("Findings:")
    req = site["required_Bps"]
    if math.isfinite(req):
        lines.append(f"- Every VM meets a {target} RPO {a['percentile']:g} % of the time from {mbit(req)} "
                     f"(not at {mbit(site['required_low_Bps'])}"
                     + (", the lower bound" if site["required_low_Bps"] == a["lower_bound_Bps"] else "") + ").")
        lines.append(f"- The reconstructed planner formula (p{FORMULA_PERCENTILE:g} hourly churn x {FORMULA_GROWTH}) "
                     f"gives {mbit(site['formula_Bps'])}: {_formula_verdict(df)}; at that bandwidth the worst VM's "
                     f"{pct} RPO is {_dur(site['rpo_formula_s'])}"
                     + (f" and {site['missed_formula']:.1%} of cycles are missed" if site["missed_formula"] > 0
                        else "") + ".")
        lines.append(f"- At {mbit(req)} the initial replication takes {_dur(site['initial_replication_s'])}; "
                     f"every VM is protected after {_dur(site['protected_after_s'])}.")
        batches = vms.dropna(subset=["batch"]).groupby("batch", sort=True)
        if batches.ngroups > 1:
            parts = [f"{int(k)}: {', '.join(g['vm'])} {_dur(float(g['batch_initial_replication_s'].iloc[0]))}"
                     for k, g in batches]
            lines.append("- Batches at that bandwidth: " + "; ".join(parts) + ".")
    now = site["rpo_current_s"]
    meets = math.isfinite(now) and now <= a["rpo_s"]
    lines.append(f"- At the current {mbit(a['current_upload_Bps'])} the worst VM's {pct} RPO is {_dur(now)} "
                 + ("(meets the target)." if meets else "(misses the target)."))
    for note in a["notes"]:
        lines.append(f"- {note}.")
    return "\n".join(lines)
