"""A scenario's problems: where each is (a location in the file) and what was expected, and the error that
reports them one located line each (``file:line:col: place: message``).

Imports nothing of drsim.
"""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["Problem", "ScenarioError", "location_text", "MAX_MESSAGE"]

#: Most characters of one problem's message as printed (messages quote short excerpts of values; this bounds
#: what any other text can add). [assumption: four lines of a terminal at most]
MAX_MESSAGE = 400


class Problem(BaseModel):
    """One problem in a scenario: where it is and what was expected."""

    loc: tuple[str | int, ...]
    message: str
    line: int | None = None
    column: int | None = None


class ScenarioError(Exception):
    """A scenario that cannot be used. ``str()`` gives one located line per problem."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = problems
        self.source = source
        super().__init__(self.format())

    def format(self) -> str:
        lines = []
        for p in self.problems:
            where = self.source or "<scenario>"
            if p.line is not None:
                where += f":{p.line}" + (f":{p.column}" if p.column is not None else "")
            place = location_text(p.loc)
            message = p.message if len(p.message) <= MAX_MESSAGE else p.message[:MAX_MESSAGE] + "... (cut)"
            lines.append(f"{where}: {place + ': ' if place else ''}{message}")
        return "\n".join(lines)


def location_text(loc: tuple[str | int, ...]) -> str:
    """``('site', 'hosts', 0, 'vms', 2)`` -> ``'site.hosts[0].vms[2]'``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
