"""CSV files as Windows tools write them: the encoding, the separator and the decimal mark, found out.

The hypervisor's inventory (PowerShell ``Export-Csv``) and performance-counter logs (``typeperf``, ``relog -f
csv``) reach drsim in whatever form the machine wrote them or a spreadsheet saved them again: UTF-8 with or
without a byte-order mark, UTF-16 (what Windows PowerShell 5.1 writes with ``-Encoding Unicode``), or the
Windows ANSI code page; separated by commas, semicolons (``Export-Csv -UseCulture`` and spreadsheets in locales
whose decimal mark is a comma) or tabs; numbers with a decimal point or a decimal comma. This module reads such a
file into rows of text cells with their line numbers and parses numbers, and refuses what it cannot read with a
message that says which line and what to do. It imports nothing from drsim.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CsvTextError", "CsvRows", "read_rows", "decode", "sniff_delimiter", "decimal_mark", "parse_number",
           "is_blank"]

SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}


class CsvTextError(ValueError):
    """A CSV file that cannot be read; the message names the file and, where known, the line."""


@dataclass
class CsvRows:
    """A CSV file read as text: ``header`` cells, data ``rows`` (each a list of cells) with their ``lines``
    (1-based line numbers in the file), the ``encoding`` and ``delimiter`` found, and ``skipped`` lines (e.g. a
    ``#TYPE`` line of Windows PowerShell's ``Export-Csv``)."""

    path: Path
    header: list[str]
    header_line: int
    rows: list[list[str]]
    lines: list[int]
    encoding: str
    delimiter: str


def decode(data: bytes, what: str) -> tuple[str, str]:
    """The text of a file's bytes and the name of its encoding.

    A byte-order mark decides (UTF-8, UTF-16 LE or BE); without one, NUL bytes in every other position mean
    UTF-16 without a mark; otherwise UTF-8, and when that fails the Windows ANSI code page 1252 (an assumption:
    the usual one in Western Europe and the Americas; other code pages show wrong accented letters in names)."""
    boms = ((codecs.BOM_UTF8, "utf-8", "UTF-8 with BOM"), (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE with BOM"),
            (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE with BOM"))
    for bom, codec, name in boms:
        if data.startswith(bom):
            return _decode(data[len(bom):], codec, name, what)
    head = data[:400]
    if len(head) >= 4:
        odd_nul = head[1::2].count(0) / len(head[1::2])
        even_nul = head[0::2].count(0) / len(head[0::2])
        if odd_nul > 0.9 and even_nul < 0.1:
            return _decode(data, "utf-16-le", "UTF-16 LE without BOM", what)
        if even_nul > 0.9 and odd_nul < 0.1:
            return _decode(data, "utf-16-be", "UTF-16 BE without BOM", what)
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "Windows-1252 (not valid UTF-8)"


def _decode(data: bytes, codec: str, name: str, what: str) -> tuple[str, str]:
    try:
        return data.decode(codec), name
    except UnicodeDecodeError as exc:
        raise CsvTextError(f"{what}: looks like {name} but byte {exc.start} cannot be read as such; save it again "
                           "as UTF-8 or UTF-16 (Export-Csv -Encoding UTF8, or 'CSV UTF-8' in a spreadsheet)") from None


def sniff_delimiter(line: str) -> str:
    """The separator of a header line: the most frequent of comma, semicolon and tab outside quotes (comma on a
    tie)."""
    counts = dict.fromkeys(SEPARATORS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts.values())
    return "," if best == 0 or counts[","] == best else max(counts, key=lambda k: counts[k])


def read_rows(path: str | Path, what: str, delimiter: str | None = None, skip_type_line: bool = False) -> CsvRows:
    """Read a CSV file into a header and rows of text cells.

    ``what`` names the file in messages (e.g. ``"inventory site.csv"``). ``delimiter`` (default: found from the
    header line) may be given when the caller knows it. ``skip_type_line`` skips a first line starting with
    ``#TYPE`` (Windows PowerShell's ``Export-Csv`` writes one unless told ``-NoTypeInformation``). Blank lines are
    skipped. Raises :class:`CsvTextError`."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise CsvTextError(f"{what}: file not found") from None
    except OSError as exc:
        raise CsvTextError(f"{what}: cannot read it: {exc.strerror or exc}") from None
    text, encoding = decode(data, what)
    lines = text.splitlines(keepends=True)
    first = 0
    while first < len(lines) and not lines[first].strip():
        first += 1
    if skip_type_line and first < len(lines) and lines[first].lstrip().startswith("#TYPE"):
        first += 1
    if first >= len(lines):
        raise CsvTextError(f"{what}: the file is empty")
    delimiter = delimiter or sniff_delimiter(lines[first])
    reader = csv.reader(io.StringIO("".join(lines[first:])), delimiter=delimiter)
    header: list[str] | None = None
    header_line = first + 1
    rows: list[list[str]] = []
    numbers: list[int] = []
    start = 1
    try:
        for cells in reader:
            line = first + start
            start = reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header, header_line = cells, line
            else:
                rows.append(cells)
                numbers.append(line)
    except csv.Error as exc:
        raise CsvTextError(f"{what}, line {first + reader.line_num}: not readable as CSV: {exc}") from None
    assert header is not None
    return CsvRows(p, header, header_line, rows, numbers, encoding, delimiter)


def is_blank(cell: str) -> bool:
    """An empty cell, or one of spaces only (how counter logs mark a missing sample)."""
    return not cell.strip()


def decimal_mark(cells: Sequence[str]) -> tuple[str, int | None]:
    """The decimal mark of a file's numbers, ``"."`` or ``","``, and the index of a cell that makes it ambiguous
    (``None`` if none does).

    A comma is the decimal mark when some numbers have a comma and none has a point (a spreadsheet saved in a
    locale such as German or French). A number with both (``1,234.5``: a thousands separator), or a file whose
    numbers mix the two, is ambiguous."""
    comma = point = None
    for i, c in enumerate(cells):
        has_comma, has_point = "," in c, "." in c
        if has_comma and has_point:
            return ".", i
        if has_comma and comma is None:
            comma = i
        if has_point and point is None:
            point = i
    if comma is not None and point is not None:
        return ".", max(comma, point)
    return ("," if comma is not None else "."), None


def parse_number(cell: str, decimal: str = ".") -> float:
    """A number written with ``decimal`` as its decimal mark (spaces around it ignored). Raises ValueError."""
    text = cell.strip()
    if decimal == ",":
        text = text.replace(",", ".")
    elif "," in text:
        raise ValueError(cell)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(cell)
    return value
