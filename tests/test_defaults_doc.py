"""The documented defaults are the code's: the README's one table of product facts, defaults and their basis, its
retry timings, and the bundled scenarios' compression (the service has none)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from drsim.experiments.plan_request import DEFAULT_REL_TOLERANCE, DEFAULT_TOLERANCE
from drsim.model.recovery import RETRY_BACKOFF, RETRY_EVERY
from drsim.scenario.distributions import Distribution, Fixed, LogNormal
from drsim.scenario.policy import AutomaticParams, ManualParams, ThresholdParams
from drsim.scenario.recovery import DEFAULT_DETECTION, DEFAULT_REPAIR, Drill, FailoverSteps, Maintenance
from drsim.scenario.replication import Replication
from drsim.scenario.units import format_duration

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _cell(value: Distribution | float) -> str:
    if isinstance(value, Fixed):
        return format_duration(value.value)
    if isinstance(value, LogNormal):
        return f"{format_duration(value.median)} / {format_duration(value.p95)}"
    return format_duration(float(value))


def _defaults_table() -> dict[str, str]:
    section = README.split("### Product facts, defaults and their basis", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[0].strip(): cells[1].strip() for cells in rows[1:]}


def _row(table: dict[str, str], start: str) -> str:
    (key,) = [k for k in table if k.startswith(start)]
    return table[key]


def test_the_readme_table_of_defaults_matches_the_code():
    table = _defaults_table()
    steps = FailoverSteps()
    for step in ("shutdown", "prepare", "process_pending", "start", "reconnect", "onprem_start", "cleanup", "portal"):
        assert _row(table, f"`failover.{step}`") == _cell(getattr(steps, step)), step
    for kind in ("vm", "host", "site", "link"):
        assert _row(table, f"repair of a `{kind}` failure") == _cell(DEFAULT_REPAIR[kind]), kind
    assert _row(table, "corruption `detected_after`") == _cell(DEFAULT_DETECTION)
    rep = Replication()
    assert _row(table, "`replication.setup`") == _cell(rep.setup)
    assert _row(table, "`replication.processing_lag`") == _cell(rep.processing_lag)
    assert _row(table, "`replication.resync.checksum_rate`") == f"{rep.resync.checksum_rate * 60 / 1e9:g} GB/min"
    assert steps.checksum_rate == rep.resync.checksum_rate
    manual = ManualParams()
    assert _row(table, "policy `detect`") == _cell(manual.detect)
    assert _row(table, "policy `respond`") == _cell(manual.respond)
    auto = AutomaticParams()
    assert _row(table, "policy `automatic`") == f"{format_duration(auto.probe_every)}, {auto.misses}"
    th = ThresholdParams()
    assert _row(table, "policy `threshold`") == f"{format_duration(th.threshold)}, {th.quantile:g}"
    assert _row(table, "`drills[].duration`") == _cell(Drill(vms="all", every=1.0).duration)
    assert _row(table, "`maintenance[].window`") == _cell(Maintenance(host="h", at=0.0).window)
    assert _row(table, "`drsim plan --tolerance`") == (f"{DEFAULT_TOLERANCE * 8 / 1e6:g} Mbit/s, or "
                                                       f"{DEFAULT_REL_TOLERANCE * 100:g} % of the answer when wider")
    # every row has a basis
    section = README.split("### Product facts, defaults and their basis", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        if line.startswith("| ") and "---" not in line:
            assert line.split("|")[3].strip(), line


def test_the_documented_retry_timings_are_the_codes():
    apart = ", ".join(f"{int(x // 60)}" for x in RETRY_BACKOFF[:-1]) + f" and {int(RETRY_BACKOFF[-1] // 60)}"
    after = ", ".join(f"{int(x // 60)}" for x in np.cumsum(RETRY_BACKOFF)[:-1]) + \
        f" and {int(np.cumsum(RETRY_BACKOFF)[-1] // 60)}"
    assert (apart, after) == ("1, 2, 4, 8 and 10", "1, 3, 7, 15 and 25")
    text = f"retries come {apart} min apart ({after} min after the failure), then every {int(RETRY_EVERY // 60)} min"
    assert text in README
    assert text in (ROOT / "scenarios" / "README.md").read_text(encoding="utf-8")
    assert "10 min after the failure" not in README


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_scenarios_use_no_compression_unless_they_model_a_wan_optimiser(path):
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    ratio = data["link"].get("compression", 1.0)
    assert ratio == 1.0 or re.search(r"WAN optimi[sz]er", text, re.IGNORECASE)


def test_the_readme_table_gives_the_codes_limits():
    """The product's limits in the same table are the code's (support matrix)."""
    from drsim.model.replication import WARN_MISSED_SHARE
    from drsim.model.resync import RESYNC_LOG_SHARE
    from drsim.scenario.replication import SUPPORTED_INTERVALS
    from drsim.scenario.site import (
        CHURN_LIMIT_PREMIUM,
        CHURN_LIMIT_PREMIUM_LARGE_IO,
        CHURN_LIMIT_STANDARD,
        DATA_DISK_MAX,
        DATA_DISKS_MAX,
        GIB,
        OS_DISK_MAX,
    )

    table = _defaults_table()
    assert _row(table, "OS disk size").startswith(f"at most {OS_DISK_MAX[1] / GIB:,.0f} GB (generation 1) or "
                                                  f"{OS_DISK_MAX[2] / GIB:,.0f} GB (generation 2)")
    assert _row(table, "data disk size").startswith(f"at most {DATA_DISK_MAX / GIB:,.0f} GB each, at most "
                                                    f"{DATA_DISKS_MAX} data disks")
    assert _row(table, "churn per VM").startswith(
        f"{CHURN_LIMIT_STANDARD / 1e6:g} MB/s on standard storage; {CHURN_LIMIT_PREMIUM / 1e6:g} MB/s on premium (8 KB "
        f"writes), {CHURN_LIMIT_PREMIUM_LARGE_IO / 1e6:g} MB/s with writes of 16 KB or more")
    share = RESYNC_LOG_SHARE * 100
    assert _row(table, "resynchronisation").startswith(f"a disk's change log at {share:g} % of the disk's")
    assert _row(table, "health").startswith(f"warning at ≥ {WARN_MISSED_SHARE * 100:g} % missed cycles")
    first_two = ", ".join(format_duration(x) for x in SUPPORTED_INTERVALS[:2])
    assert _row(table, "replication interval").startswith(first_two)
