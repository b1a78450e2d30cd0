"""What every drsim report is made of and how it is written: tables of formatted cells, drawn figures, sections
of blocks; values formatted for people; the Jinja2 environments (the HTML one autoescaped, the Markdown one
escaping every value with :func:`markdown_escape`); figures drawn as PNG bytes and data URIs; files written
atomically; plain JSON data (:func:`json_safe`).

The templates are in ``drsim/views/templates``: ``report.*.j2`` for a run, ``document.*.j2`` (sections of blocks)
for an experiment or a plan. Imports Jinja2, matplotlib, numpy, pandas, :mod:`drsim.scenario` (units,
distributions) and :func:`drsim.results.folders.atomic_write`; every report module imports it, it imports none.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import matplotlib
import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.text import Text

from drsim.results.folders import atomic_write
from drsim.scenario import units
from drsim.scenario.distributions import Distribution

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["HTML_NAME", "MD_NAME", "DOCUMENT_HTML", "DOCUMENT_MD", "DPI", "Table", "ReportFigure", "Block", "Section",
           "is_missing", "percent", "describe", "markdown_escape", "environment", "write_atomic", "write_files",
           "draw_figure", "drawn_texts", "figure_blocks", "render_document", "write_document", "json_safe"]

HTML_NAME = "report.html"
MD_NAME = "report.md"
#: the generic templates of the experiment and plan reports: a list of sections, each a list of blocks
DOCUMENT_HTML = "document.html.j2"
DOCUMENT_MD = "document.md.j2"

DPI = 100  # of the PNG figures (pixels per inch)

_fmt = units.format_duration


# --- what a report holds: tables, figures, sections of blocks ------------------------------------------------


@dataclass
class Table:
    """A table of formatted cells; ``numeric`` columns are right-aligned; ``total`` is the site row."""

    header: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    caption: str = ""
    total: list[str] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        for row in [*self.rows, *([self.total] if self.total else [])]:
            if len(row) != len(self.header):
                raise ValueError(f"row {row!r} has {len(row)} cells for {len(self.header)} columns")


@dataclass
class ReportFigure:
    """A drawn figure: PNG bytes, its data URI for the HTML, the file name beside report.md, and every text drawn
    in it (titles, axis and tick labels, legends, notes: to check and to search what a figure says)."""

    title: str
    caption: str
    file: str
    data_uri: str
    png: bytes = field(repr=False, default=b"")
    texts: tuple[str, ...] = field(repr=False, default=())


@dataclass
class Block:
    """One piece of a section: ``kind`` is p, lead, note, h3, ul (a list of texts), dl ((label, value) pairs),
    table (a :class:`Table`) or figure (a :class:`ReportFigure`, with its ``number``)."""

    kind: str
    value: Any
    number: int = 0


@dataclass
class Section:
    id: str
    heading: str
    blocks: list[Block] = field(default_factory=list)


# --- values for people ---------------------------------------------------------------------------------------


def is_missing(x: Any) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def percent(x: float, digits: int = 1) -> str:
    return "-" if is_missing(x) else f"{100 * float(x):.{digits}f} %"


def describe(d: Any) -> str:
    """A random duration or a plain duration, for people."""
    if isinstance(d, Distribution):
        return d.describe(_fmt)
    if isinstance(d, int | float) and not isinstance(d, bool):
        return _fmt(float(d))
    return str(d)


# --- rendering and writing ---------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~#$])")  # $: GitHub renders $...$ as math


def markdown_escape(value: Any) -> str:
    """Text safe in Markdown, in a table cell or a paragraph: markup characters backslash-escaped, line breaks
    made spaces."""
    text = " ".join(str(value).splitlines())
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_finalize(value: Any) -> Any:
    if isinstance(value, Markup):  # produced by the report itself (file names, links)
        return str(value)
    if value is None:
        return ""
    return markdown_escape(value)


@cache
def environment(markdown: bool) -> jinja2.Environment:
    loader = jinja2.PackageLoader("drsim.views", "templates")
    if markdown:
        env = jinja2.Environment(loader=loader, autoescape=False, finalize=_md_finalize, keep_trailing_newline=True,
                                 trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    else:
        env = jinja2.Environment(
            loader=loader,
            # report.html.j2 ends in .j2, so .j2 is listed; any other name escapes too (default)
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "j2"), default_for_string=True,
                                                default=True),
            keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.globals["Markup"] = Markup
    return env


def write_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_files(folder: Path, html: str, md: str, figures: list[ReportFigure]) -> tuple[Path, Path]:
    """Write ``report.html``, ``report.md`` and the figures' PNG files into ``folder`` (created if needed), each
    under a temporary name and renamed, so a file that exists is whole. Returns (HTML path, Markdown path).

    When a write fails (a full disk), the files this call created are removed again, so the folder holds the
    whole report or none of the new files (files that were there before are kept), and the error is raised."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [(folder / fig.file, fig.png) for fig in figures]
    files += [(folder / MD_NAME, md.encode("utf-8")), (folder / HTML_NAME, html.encode("utf-8"))]
    created: list[Path] = []
    try:
        for path, data in files:
            new = not path.exists()
            write_atomic(path, data)
            if new:
                created.append(path)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return folder / HTML_NAME, folder / MD_NAME


# --- figures -------------------------------------------------------------------------------------------------


def draw_figure(title: str, caption: str, file: str, draw: Callable[[], Figure]) -> ReportFigure:
    """Draw one figure (``draw()`` returns a matplotlib Figure) as PNG bytes and a data URI."""
    # names from the scenario are text, never mathtext: a VM named "$\\foo$" must not break the drawing (so a
    # figure must not rely on mathtext either: log axes get plain labels, style.plain_log_ticks)
    with matplotlib.rc_context({"text.parse_math": False}):
        fig = draw()
        buf = io.BytesIO()
        # no "Software" chunk: the PNG carries no address and is the same on every run
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    png = buf.getvalue()
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return ReportFigure(title, caption, file, uri, png, drawn_texts(fig))


def drawn_texts(fig: Figure) -> tuple[str, ...]:
    """The non-empty visible texts of a figure after it was drawn (tick labels as formatted at that draw)."""
    return tuple(t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip())


def figure_blocks(specs: Sequence[tuple[str, str, str, Any]]) -> tuple[list[Block], list[ReportFigure]]:
    """Figure blocks for (title, caption, file, draw) specs; a plot that raises ValueError (it does not apply to
    these data) is skipped with a note."""
    blocks: list[Block] = []
    drawn: list[ReportFigure] = []
    for title, caption, file, draw in specs:
        try:
            fig = draw_figure(title, caption, file, draw)
        except ValueError as exc:
            blocks.append(Block("note", f"{title}: not drawn ({exc})."))
            continue
        drawn.append(fig)
        blocks.append(Block("figure", fig, len(drawn)))
    if not specs:
        blocks.append(Block("p", "No figure applies."))
    return blocks, drawn


# --- documents: the experiment and plan reports -----------------------------------------------------------


def render_document(ctx: dict[str, Any]) -> tuple[str, str]:
    """A document (``title``, ``meta``, ``version``, ``sections``, ``footer``) as (HTML, Markdown) text."""
    html = environment(False).get_template(DOCUMENT_HTML).render(ctx)
    md = environment(True).get_template(DOCUMENT_MD).render(ctx)
    return html, md


def write_document(folder: Path, ctx: dict[str, Any], figures: list[ReportFigure]) -> tuple[Path, Path]:
    """Render a document and write it with its figures into ``folder``. Returns (HTML path, Markdown path)."""
    html, md = render_document(ctx)
    return write_files(folder, html, md, figures)


# --- JSON ----------------------------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars as Python numbers, NaN and infinities as None, tuples as lists,
    anything else unknown as text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA:
        return None
    return str(value)
