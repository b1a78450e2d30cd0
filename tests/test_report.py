"""Reports: report.html (self-contained, escaped, valid) and report.md (escaped tables, figures beside it), and
rebuilding the report of a run folder by re-simulating it."""

from __future__ import annotations

import base64
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import drsim
from drsim.results.findings import findings, incident_lines
from drsim.results.folders import write_run
from drsim.results.tables import SITE
from drsim.views.rendering import HTML_NAME, MD_NAME, markdown_escape
from drsim.views.report_folder import ReportError, write_report_from_folder
from drsim.views.rpo_hours import rpo_by_hour
from drsim.views.run_report import FIGURES, SECTIONS, write_report
from tests.conftest import base_scenario, make_scenario

EVIL_VM = "<script>alert(1)</script>"
EVIL_HOST = 'a&b"c'
NAME2 = r"vm|2*_`$\x$"  # Markdown table and emphasis characters; mathtext in matplotlib and GitHub
STEPS = {"shutdown": "2m", "prepare": "3m", "process_pending": "5m", "start": "8m", "reconnect": "2m",
         "onprem_start": "5m", "cleanup": "10m", "portal": "15m"}


def _vm(name: str) -> dict[str, Any]:
    return {"name": name, "disks": ["1GB"], "churn": {"rate": "100kB/s"}}


def report_scenario(**changes: Any) -> dict[str, Any]:
    """Two hosts, three VMs (one named like a script, one with Markdown table characters), one day: a host
    failure with failover and failback, and a drill."""
    d = base_scenario()
    d["site"] = {"hosts": [{"name": EVIL_HOST, "vms": [_vm(EVIL_VM), _vm(NAME2)]},
                           {"name": "H2", "vms": [_vm("vm3")]}]}
    d["failover"] = dict(STEPS)
    d["failures"] = [{"kind": "host", "target": EVIL_HOST, "at": "6h", "repair": "2h"}]
    d["policy"] = {"name": "manual", "detect": "10m", "respond": "15m", "failback": "immediate", "point": "latest"}
    d["drills"] = [{"vms": ["vm3"], "at": "3h", "duration": "1h"}]
    d["objectives"] = {"rpo": "15m", "rto": "1h"}
    d.update(changes)
    return d


VM_NAMES = [EVIL_VM, NAME2, "vm3"]


@pytest.fixture(scope="module")
def results() -> drsim.Results:
    return drsim.simulate(make_scenario(base=report_scenario()))


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> tuple[Path, Path]:
    return write_report(results, tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def page(report) -> str:
    return report[0].read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def md(report) -> str:
    return report[1].read_text(encoding="utf-8")


# --- HTML ---------------------------------------------------------------------------------------------------------

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr", "area", "base", "embed", "track"}


class StrictParser(HTMLParser):
    """Fails on mismatched or unclosed tags; records tables (rows per tbody) and every tag seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, int] = {}
        self._table: str | None = None
        self._in_tbody = False
        self.text: list[str] = []
        self.headings: dict[str, list[str]] = {"h1": [], "h2": [], "h3": []}
        self._heading: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = 0
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody and self._table is not None:
            self.tables[self._table] += 1
        if tag in self.headings:
            self._heading = tag
            self.headings[tag].append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "tbody":
            self._in_tbody = False
        elif tag == "table":
            self._table = None
        if tag == self._heading:
            self._heading = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._heading:
            self.headings[self._heading][-1] += data


@pytest.fixture(scope="module")
def parsed(page) -> StrictParser:
    p = StrictParser()
    p.feed(page)
    p.close()
    return p


def test_report_files(report):
    html_path, md_path = report
    assert html_path.name == HTML_NAME and md_path.name == MD_NAME
    assert html_path.parent == md_path.parent
    for fig in FIGURES:
        assert (md_path.parent / fig.file).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not list(md_path.parent.glob(".*")), "temporary files left behind"


def test_html_parses_without_errors(page, parsed):
    assert page.startswith("<!DOCTYPE html>")
    assert parsed.errors == []
    assert parsed.stack == [], f"unclosed tags: {parsed.stack}"
    assert [t for t, _ in parsed.tags].count("html") == 1


def test_html_has_every_section_and_vm(results, parsed):
    assert parsed.headings["h2"] == [heading for _, heading in SECTIONS]
    ids = {a.get("id") for tag, a in parsed.tags if tag == "section"}
    assert ids == {sid for sid, _ in SECTIONS}
    text = "".join(parsed.text)
    for name in VM_NAMES:
        assert name in text  # as text, once the entities are decoded
    for line in incident_lines(results) + findings(results):
        assert line in text


def test_html_embeds_four_png_figures(page, parsed):
    imgs = [a for tag, a in parsed.tags if tag == "img"]
    assert len(imgs) == len(FIGURES) == 4
    for a in imgs:
        src = a["src"]
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert a.get("alt")
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)) == 4


def test_html_is_self_contained(page, parsed):
    assert "http://" not in page and "https://" not in page
    tags = {t for t, _ in parsed.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed"}
    assert "url(" not in page and "@import" not in page
    for _, attrs in parsed.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), name  # no event handlers
            if name in ("src", "href") and value:
                assert value.startswith(("data:image/png;base64,", "#")), value


def test_html_escapes_names_from_the_scenario(page):
    assert EVIL_VM not in page
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert EVIL_HOST not in page
    assert html.escape(EVIL_HOST) in page or "a&amp;b&#34;c" in page


def test_html_tables_have_a_row_per_vm_or_incident(results, parsed):
    n_vms = len(VM_NAMES)
    assert parsed.tables["hosts-table"] == n_vms
    assert parsed.tables["compliance-table"] == n_vms + 1  # and the site
    assert parsed.tables["replication-table"] == n_vms + 1
    assert parsed.tables["recovery-table"] == n_vms + 1
    assert parsed.tables["incidents-table"] == len(results.incidents) == 2
    assert parsed.tables["defaults-table"] >= 20
    over = results.summary.set_index("vm")["rpo_over_target"]
    assert parsed.tables["busy-hours-table"] == int((over.drop(SITE) > 0).sum()) + 1


def test_executive_summary_in_plain_words(parsed):
    text = " ".join("".join(parsed.text).split())
    assert "All 3 protectable VMs are protected after" in text
    assert "With 8 Mbit/s up, the 15 min RPO target is met" in text
    assert f"Host {EVIL_HOST} failed on day 0 06:00 (2 VMs): it cost up to" in text
    assert "The 1 h RTO target was met in every unplanned incident." in text
    assert "1 test failover (drills) measured an RTO of" in text


def test_assumptions_name_defaults_and_their_basis(page, parsed):
    text = " ".join("".join(parsed.text).split())
    assert "drsim/scenario/recovery.py" in text and "Product facts, defaults and their basis" in text
    assert "drsim/scenario/churn.py" in text and "illustrative" in text
    # the scenario gives the default value for one step, another value for the other
    assert '<th scope="row">failover.onprem_start</th><td>5 min (default)</td><td>5 min</td>' in page
    assert ('<th scope="row">failover.start</th><td>8 min</td><td>log-normal, median 8 min, p95 20 min</td>'
            in page)
    assert "Test failovers cost nothing on the link" in text  # the README's approximations


# --- Markdown -----------------------------------------------------------------------------------------------------

_PIPE = re.compile(r"(?<!\\)\|")


def md_tables(md: str) -> list[list[list[str]]]:
    """Each table block: rows of cells, split on unescaped pipes (header and separator included)."""
    tables, current = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            current.append([c.strip() for c in _PIPE.split(line)[1:-1]])
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_markdown_sections_and_vms(md):
    for _, heading in SECTIONS:
        assert f"\n## {heading}\n" in md
    assert md.startswith("# ")
    for name in VM_NAMES:
        assert markdown_escape(name) in md


def test_markdown_images_exist_beside_it(report, md):
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links == [f.file for f in FIGURES]
    for link in links:
        assert not Path(link).is_absolute() and "/" not in link
        assert (report[1].parent / link).is_file()
    assert "http://" not in md and "https://" not in md


def test_markdown_escapes_names(md):
    assert EVIL_VM not in md
    assert r"\<script\>alert(1)\</script\>" in md
    assert r"vm\|2\*\_\`\$\\x\$" in md
    assert r"a\&b" in md


def test_markdown_tables_are_whole(md):
    tables = md_tables(md)
    assert len(tables) >= 7
    for t in tables:
        width = len(t[0])
        assert all(len(row) == width for row in t), t
        assert all(re.fullmatch(r"-{3}:?", c) for c in t[1])
    first_cells = {row[0] for t in tables for row in t[2:]}
    for name in VM_NAMES:
        assert markdown_escape(name) in first_cells
    compliance = next(t for t in tables if t[0][0] == "VM" and t[0][1].startswith("time within RPO"))
    assert len(compliance) == 2 + len(VM_NAMES) + 1


def test_markdown_escape():
    assert markdown_escape("a|b*c_d`e<f>g&h\\i$") == r"a\|b\*c\_d\`e\<f\>g\&h\\i\$"
    assert markdown_escape("two\nlines") == "two lines"


# --- exact statistics behind the 'worst hours' -----------------------------------------------------------------


def test_rpo_by_hour_adds_up_to_the_summary(results):
    hours = rpo_by_hour(results)
    summ = results.summary.set_index("vm")
    rpo = results.rpo
    for name, (over, cov) in hours.items():
        assert over.shape == cov.shape == (168,)
        assert np.all(over >= -1e-9) and np.all(over <= cov + 1e-6)
        assert over.sum() / cov.sum() == pytest.approx(summ.loc[name, "rpo_over_target"], rel=1e-9, abs=1e-12)
        if name != SITE:
            t = rpo.loc[rpo["vm"] == name, "time"].to_numpy()
            assert cov.sum() == pytest.approx(float(np.sum(t[1::2] - t[0::2])), rel=1e-12)
    # a one-day run starting on Monday 00:00 has no time on other days
    assert hours[SITE][1][24:].sum() == 0


# --- rebuilding from a run folder ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_folder(results, tmp_path_factory) -> Path:
    return write_run(results, tmp_path_factory.mktemp("runs"))


def test_report_from_folder_reproduces_the_report(report, page, md, run_folder):
    html_path, md_path = write_report_from_folder(run_folder)
    assert html_path == run_folder / HTML_NAME and md_path == run_folder / MD_NAME
    assert html_path.read_text(encoding="utf-8") == page
    assert md_path.read_text(encoding="utf-8") == md
    for fig in FIGURES:
        assert (run_folder / fig.file).read_bytes() == (report[1].parent / fig.file).read_bytes()


def test_report_from_folder_refuses_a_changed_scenario(run_folder, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_folder, copy)
    (copy / HTML_NAME).unlink(missing_ok=True)
    text = (copy / "scenario.yaml").read_text(encoding="utf-8")
    (copy / "scenario.yaml").write_text(text.replace("retention: 86400.0s", "retention: 43200.0s"))
    with pytest.raises(ReportError, match="changed after the run"):
        write_report_from_folder(copy)
    assert not (copy / HTML_NAME).exists()


def test_report_from_folder_refuses_other_folders(run_folder, tmp_path):
    with pytest.raises(ReportError, match="not a run folder"):
        write_report_from_folder(tmp_path)
    import shutil

    copy = tmp_path / "sweep"
    shutil.copytree(run_folder, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    del meta["seed"]
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ReportError, match="not the folder of a single run"):
        write_report_from_folder(copy)


def test_report_from_folder_checks_the_stored_tables(run_folder, tmp_path):
    import shutil

    import pandas as pd

    copy = tmp_path / "run"
    shutil.copytree(run_folder, copy)
    summary = pd.read_parquet(copy / "summary.parquet")
    summary.loc[0, "rpo_mean_s"] += 1.0
    summary.to_parquet(copy / "summary.parquet", index=False)
    first_vm = summary.loc[0, "vm"]
    with pytest.raises(ReportError, match=rf"does not reproduce the stored summary .*: rpo_mean_s of "
                                          rf"{re.escape(first_vm)} is .* in the folder and .* re-simulated\. "
                                          r"'drsim report --no-verify'"):
        write_report_from_folder(copy)
    write_report_from_folder(copy, verify=False)
    assert (copy / HTML_NAME).is_file()
    from click.testing import CliRunner

    from drsim.cli import main

    assert CliRunner().invoke(main, ["report", str(copy)]).exit_code == 2
    assert CliRunner().invoke(main, ["report", "--no-verify", str(copy)]).exit_code == 0


# --- other runs ------------------------------------------------------------------------------------------------


def test_report_of_a_calm_calendar_run(tmp_path):
    d = report_scenario(start="2026-03-02T08:00:00", failures=[], drills=[])
    res = drsim.simulate(make_scenario(base=d))
    html_path, md_path = write_report(res, tmp_path)
    page = html_path.read_text(encoding="utf-8")
    p = StrictParser()
    p.feed(page)
    assert p.errors == [] and p.stack == []
    assert "No incidents in this run." in page
    assert "No failures were simulated in this run." in page
    assert "Mon 02 Mar 2026 08:00" in page
    assert "incidents-table" not in p.tables
    assert len([a for t, a in p.tags if t == "img"]) == 4
    assert "\n## Incidents\n\nNo incidents in this run.\n" in md_path.read_text(encoding="utf-8")


def test_report_files_have_the_permissions_of_the_other_result_files(run_folder):
    import stat

    from drsim.views.report_folder import write_report_from_folder

    write_report_from_folder(run_folder)
    mode = stat.S_IMODE((run_folder / "summary.parquet").stat().st_mode)
    for name in (HTML_NAME, "report.md"):
        assert stat.S_IMODE((run_folder / name).stat().st_mode) == mode, name
