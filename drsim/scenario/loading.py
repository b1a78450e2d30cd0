"""Scenario files: YAML validated into typed models, with located, readable errors.

:func:`load_scenario` reads a file, :func:`parse_scenario` a mapping; both raise :class:`ScenarioError`
naming the file, the place (e.g. ``site.hosts[0].vms[2].disks[0]``), the line, and what was expected. The
YAML loader refuses duplicate keys; pydantic's errors are turned into plain messages ("unknown key 'x'
(did you mean 'y'?)") and located in the file through the composed node tree.

What is read is bounded: a scenario file is read only if it is a regular file of at most
:data:`MAX_FILE_BYTES`, and YAML aliases may add at most :data:`MAX_ALIAS_VALUES` values (an alias bomb is
refused while composing, before anything is expanded). Merge keys (``<<: *defaults``) are understood.

Imports only :mod:`drsim.scenario` (the document, its problems and checks, files, quoting).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ValidationError

from drsim.scenario.checks import bare_duration_warnings, cross_section_problems, warning_problems
from drsim.scenario.document import Scenario
from drsim.scenario.files import FileRefused, read_regular_file
from drsim.scenario.problems import Problem, ScenarioError
from drsim.scenario.quoting import excerpt

__all__ = ["parse_scenario", "load_scenario", "Check", "MAX_ALIAS_VALUES", "MAX_FILE_BYTES"]


#: Most values YAML aliases (``*name``) may add to a document when expanded; a value of text counts once per
#: 100 characters. Bounds what an alias bomb (anchors nested a few deep, each repeating the one before) can make of
#: a small file. [assumption: a scenario repeats a disk list or a churn section with aliases, a few thousand
#: values at most; expanding 100,000 takes well under a second]
MAX_ALIAS_VALUES = 100_000
#: Most bytes of a scenario file. [assumption: a site of a thousand VMs takes about 200 kB of YAML]
MAX_FILE_BYTES = 10 * 2**20


class _MarkLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys (a silent overwrite hides mistakes) and bounds the values aliases
    add (:data:`MAX_ALIAS_VALUES`), counting them as it composes, before anything is expanded."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> values it expands to, once composed
        self._alias_values = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise yaml.composer.ComposerError(None, None, f"the alias *{event.anchor} refers to itself (a value "
                                                  "that holds itself cannot be read)", event.start_mark)
            self._alias_values += size
            if self._alias_values > MAX_ALIAS_VALUES:
                raise yaml.composer.ComposerError(
                    None, None, f"YAML aliases expand this file to more than {MAX_ALIAS_VALUES:,} values (here "
                    f"*{event.anchor}, which stands for {size:,}); write the values out, or alias less",
                    event.start_mark)
            return node
        node = super().compose_node(parent, index)
        if isinstance(node, yaml.ScalarNode):
            size = 1 + len(node.value) // 100
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes[id(child)] for child in node.value)
        else:
            size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        self._sizes[id(node)] = size
        return node


def _construct_mapping(loader: _MarkLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # '<<: *defaults' merges a mapping; its keys may be given again here, which override them
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {excerpt(key)}", key_node.start_mark
            )
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


def _construct_int(loader: _MarkLoader, node: yaml.ScalarNode) -> int:
    if len(node.value) > 1000:  # Python refuses to read integers of more than 4,300 digits
        raise yaml.constructor.ConstructorError(None, None, f"a number of {len(node.value):,} digits",
                                                node.start_mark)
    return loader.construct_yaml_int(node)


_MarkLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_MarkLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _node_at(root: yaml.Node | None, loc: tuple[str | int, ...]) -> tuple[yaml.Node | None, bool]:
    """Find the YAML node at ``loc``; the flag says whether the whole path was found."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    node = v
                    break
            else:
                return node, False
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node, False
    return node, True


def _key_node(root: yaml.Node | None, loc: tuple[str | int, ...]) -> yaml.Node | None:
    parent, found = _node_at(root, loc[:-1])
    if found and isinstance(parent, yaml.MappingNode):
        for k, _ in parent.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(loc[-1]):
                return k
    return None


def _allowed_keys(loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the model that holds the key at ``loc`` (for "did you mean" hints)."""
    import types
    import typing

    tp: Any = Scenario
    for part in loc[:-1]:
        while True:
            origin = typing.get_origin(tp)
            if origin is Annotated:
                tp = typing.get_args(tp)[0]
            elif origin in (typing.Union, types.UnionType):
                args = [a for a in typing.get_args(tp) if a is not type(None)]
                tp = args[0] if args else tp
                if not args:
                    return []
            else:
                break
        if isinstance(part, int):
            args = typing.get_args(tp)
            if not args:
                return []
            tp = args[0]
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        else:
            return []
    while typing.get_origin(tp) in (Annotated, typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [n for n, f in tp.model_fields.items() if not f.exclude]
    return []


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        allowed = _allowed_keys(loc)
        hint = difflib.get_close_matches(key, allowed, n=1)
        text = f"unknown key {excerpt(key)}"
        if hint:
            text += f" (did you mean {excerpt(hint[0])}?)"
        elif allowed:
            text += f"; expected one of {', '.join(allowed)}"
        return text
    if kind == "missing":
        return "required key is missing"
    if kind == "too_short":
        return "must list at least one item"
    if kind == "string_too_long" and loc == ("name",):
        return (f"a scenario name has at most {err['ctx']['max_length']} characters (it names the results folder), "
                f"got {len(err['input'])}")
    if kind == "string_pattern_mismatch" and loc == ("name",):
        return (f"a scenario name starts with a letter or digit and holds only letters, digits, '.', '_' and '-' "
                f"(it names the results folder), got {excerpt(err.get('input'))}")
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if "input" in err and kind not in ("value_error",) and not isinstance(err["input"], dict | list):
        msg += f" (got {excerpt(err['input'])})"
    return msg


def _clean_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Drop pydantic's internal union/function tags from a location."""
    return tuple(p for p in loc if isinstance(p, int) or not (isinstance(p, str) and ("[" in p or "-" in p and
                                                                                      p.startswith("function"))))


def _locate(root: yaml.Node | None, loc: tuple[str | int, ...], key: bool) -> tuple[int | None, int | None]:
    node = _key_node(root, loc) if key else None
    if node is None:
        node, _ = _node_at(root, loc)
    if node is None:
        return None, None
    return node.start_mark.line + 1, node.start_mark.column + 1


def parse_scenario(
    data: Any, source: str | None = None, root: yaml.Node | None = None, base: Path | None = None
) -> Scenario:
    """Validate a mapping (already loaded from YAML) into a :class:`Scenario`.

    ``source`` names the file in messages; ``root`` (the composed YAML node tree) gives line numbers;
    ``base`` is the scenario's path, against which trace files resolve.
    """
    if data is None:
        raise ScenarioError([Problem(loc=(), message="the file is empty")], source)
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem(loc=(), message="expected a mapping of scenario keys at the top level, "
                     f"got {type(data).__name__}")],
            source,
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]))
            line, col = _locate(root, loc, key=err["type"] == "extra_forbidden")
            problems.append(Problem(loc=loc, message=_message(err), line=line, column=col))
        raise ScenarioError(problems, source) from None
    if base is not None:
        scenario._source = base
    problems = cross_section_problems(scenario)
    for p in problems:
        p.line, p.column = _locate(root, p.loc, key=False)
    if problems:
        raise ScenarioError(problems, source)
    scenario._raw_warnings = bare_duration_warnings(data)
    if root is not None:
        scenario._warning_lines = {p.loc: _locate(root, p.loc, key=False) for p in warning_problems(scenario)}
    return scenario


def _plain_yaml(exc: yaml.MarkedYAMLError) -> tuple[str, yaml.Mark | None]:
    """PyYAML's error in plain words, and the place to show (the mark of the line at fault)."""
    problem, mark, context = exc.problem or "", exc.problem_mark or exc.context_mark, exc.context_mark
    opened = f" on line {context.line + 1}" if context is not None else ""
    if "'\\t'" in problem or "'\t'" in problem:
        return "a tab character: YAML indents with spaces only", mark
    if problem.startswith(("expected <block end>", "did not find expected key", "did not find expected '-'")):
        return ("bad indentation: this line does not line up with the lines above it in the block that starts"
                f"{opened}; indent the keys of one mapping (the '-' of one list) by the same number of spaces"), mark
    if problem == "mapping values are not allowed here":
        return ("a ':' that cannot be read here: the key on this line is indented deeper than the key above it, or "
                "a value contains ': ' and needs quotes"), mark
    if problem == "could not find expected ':'" and context is not None:
        return "a key without ':' (write 'key: value'), or a line indented like a key by mistake", context
    if problem.startswith(("expected ',' or ']'", "expected ',' or '}'")):
        bracket = "[" if "]" in problem else "{"
        return f"the '{bracket}' opened{opened} is not closed before this line (or a ',' is missing)", mark
    if "end of stream" in problem and exc.context and "quoted scalar" in exc.context:
        return f"the quote opened{opened} is never closed", context
    return " ".join(x for x in (exc.context, exc.problem) if x), mark


def _load_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """The document's data and its node tree (composed once: the tree locates errors, the data is built from
    it)."""
    loader = _MarkLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        what, mark = _plain_yaml(exc)
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raw = " ".join(x for x in (exc.context, exc.problem) if x)
        bound = isinstance(exc, yaml.composer.ComposerError) and raw.startswith(("YAML aliases", "the alias"))
        problem = Problem(loc=(), message=raw if bound else f"malformed YAML: {what}", line=line, column=col)
        raise ScenarioError([problem], source) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(loc=(), message=f"malformed YAML: {exc}")], source) from None
    finally:
        loader.dispose()
    return data, root


#: A further check of a valid scenario: its problems, located by ``loc`` in the file.
Check = Callable[["Scenario"], list["Problem"]]


def load_scenario(path: str | Path, checks: Sequence[Check] = ()) -> Scenario:
    """Read and validate a scenario file. Raises :class:`ScenarioError` on any problem.

    ``checks`` are further checks of the valid scenario, each returning its problems (e.g. the experiment
    section's, :func:`drsim.experiments.section.section_problems`, which ``drsim validate`` and ``drsim sweep``
    run); their problems are located in the file like the others."""
    path = Path(path)
    try:
        text = read_regular_file(path, MAX_FILE_BYTES, "a scenario",
                                 "a site of a thousand VMs takes about 200 kB").decode("utf-8")
    except FileRefused as exc:
        message = "file not found" if exc.missing else str(exc)
        raise ScenarioError([Problem(loc=(), message=message)], str(path)) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError([Problem(loc=(), message=f"cannot read the file: {exc}")], str(path)) from None
    data, root = _load_yaml(text, str(path))
    scenario = parse_scenario(data, source=str(path), root=root, base=path)
    problems = [p for check in checks for p in check(scenario)]
    for p in problems:
        p.line, p.column = _locate(root, p.loc, key=True)
    if problems:
        raise ScenarioError(problems, str(path))
    return scenario
