"""Quoting what a user wrote back to them, safely: a short excerpt of any value in a message
(:func:`excerpt`), and names with their control characters escaped (:func:`printable`).

A message quotes the value it complains about, but a value can be a megabyte of text or a list expanded from
YAML aliases: :func:`excerpt` keeps the start of its ``repr`` and says how much was left out. A name (a VM's, a
host's) can hold a newline, a carriage return, a bell or a bidirectional override that would rewrite what a
terminal or a text file shows: :func:`printable` writes them as escapes (``\\n``, ``\\x07``, ``\\u202e``).

Imports nothing of drsim.
"""

from __future__ import annotations

import reprlib

__all__ = ["excerpt", "printable", "EXCERPT_CHARS"]

#: Characters of a value quoted in a message (assumption: enough to recognise the value, short enough to read).
EXCERPT_CHARS = 60

_repr = reprlib.Repr()
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 6
_repr.maxlevel = 3
_repr.maxstring = _repr.maxother = EXCERPT_CHARS


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters: ``'abc'... (10,000 characters)`` for long text, ``[1, 2,
    3, 4, 5, 6, ...]`` for a long list (never expanded whole), the first ``limit`` characters and ``...`` for
    anything else."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value):,} characters)"
    try:
        text = _repr.repr(value) if isinstance(value, list | tuple | dict | set | frozenset) else repr(value)
    except Exception:  # a value whose repr fails (an integer of more digits than Python prints): say what it is
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def printable(text: object) -> str:
    """``text`` with every character a terminal would act on (controls, format characters such as the
    bidirectional overrides, line and paragraph separators) written as a Python escape; other text unchanged.
    Backslashes are kept as they are, so applying it twice changes nothing more."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
