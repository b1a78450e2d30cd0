"""The package's layering stays true: each stage imports only the stages before it.

drsim is built in stages, scenario -> model -> results -> experiments -> views -> cli (docs/architecture.md).
These tests read every module's imports (top-level, inside functions and under ``TYPE_CHECKING``) and fail on
an import that runs back up the stages, on a function-local import of drsim (the usual way to dodge a cycle;
allowed only in the CLI and the package facade, which import later stages lazily for start-up time), on a
module without a docstring, and on a module much longer than the 400 lines a reader takes in at once.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "drsim"
STAGES = ("scenario", "model", "results", "experiments", "views", "cli")
BASE = {"drsim.version": -1}  # imports nothing; any stage may read it
FACADES = {"drsim", "drsim._moved"}  # the public facade over every stage, and the old-path aliases
MAX_LINES = 450  # "about 400"
#: the stages whose modules the size rule checks (widened as the other stages are split)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stage(module: str) -> int | None:
    if module in BASE:
        return BASE[module]
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "drsim":
        return None
    return STAGES.index(parts[1]) if parts[1] in STAGES else None


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _drsim_imports(tree: ast.Module) -> list[tuple[ast.stmt, str, bool]]:
    """(node, imported module, inside a function) for every import of a drsim module."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0 \
                    and child.module.split(".")[0] == "drsim":
                if child.module == "drsim":  # from drsim import x: the facade, or a subpackage named x
                    for alias in child.names:
                        found.append((child, f"drsim.{alias.name}" if _stage(f"drsim.{alias.name}") is not None
                                      else "drsim", inside))
                else:
                    found.append((child, child.module, inside))
            elif isinstance(child, ast.Import):
                found.extend((child, a.name, inside) for a in child.names if a.name.split(".")[0] == "drsim")
            visit(child, inside)

    visit(tree, False)
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_stage_imports_only_the_stages_before_it(path):
    name = _module_name(path)
    if name in FACADES:
        return
    own = _stage(name)
    assert own is not None, f"{name} belongs to no stage: put it in one of {STAGES}"
    for node, target, _ in _drsim_imports(ast.parse(path.read_text())):
        theirs = _stage(target)
        if target == "drsim":
            assert name.startswith("drsim.cli"), (f"{name}:{node.lineno} imports the facade 'drsim'; import the "
                                                  "stage module")
            continue
        assert theirs is not None, f"{name}:{node.lineno} imports {target}, which belongs to no stage"
        assert theirs <= own, (f"{name}:{node.lineno} imports {target}: stage {STAGES[own]} may not import the "
                               f"later stage {STAGES[theirs]}")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_function_local_imports_of_drsim(path):
    name = _module_name(path)
    if name in FACADES or name.split(".")[:2] == ["drsim", "cli"]:
        return
    local = [(node.lineno, target) for node, target, inside in _drsim_imports(ast.parse(path.read_text())) if inside]
    assert not local, f"{name} imports drsim modules inside functions (lines {local}): import them at the top"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_says_what_it_holds(path):
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(PACKAGE)} has no docstring"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_much_longer_than_a_reader_takes_in(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, (f"{path.relative_to(PACKAGE)} has {lines} lines (at most {MAX_LINES}): split it by "
                                "concept into modules of about 400 lines")


def test_the_checker_catches_an_upward_import(tmp_path):
    """The rules above can fail: an import from a later stage is found, inside a function too."""
    tree = ast.parse("def f():\n    from drsim.views.report import write_report\n")
    [(node, target, inside)] = _drsim_imports(tree)
    assert target == "drsim.views.report" and inside
    assert _stage(target) > _stage("drsim.model.link")


def test_old_module_paths_still_import():
    """Paths from before the stages (public for users' code and notebooks) give the modules that hold the names."""
    import drsim.experiment
    import drsim.plots
    from drsim.experiment import run_experiment
    from drsim.planner import plan
    from drsim.policies import ENTRY_POINT_GROUP, Policy, register
    from drsim.recovery import Context

    import drsim

    assert drsim.plots.__name__ == "drsim.views.figures"
    assert run_experiment is drsim.experiments.run_experiment and plan is drsim.experiments.plan
    assert Policy is drsim.model.Policy and register is drsim.model.register and Context is drsim.model.Context
    assert ENTRY_POINT_GROUP == "drsim.policies"
    assert drsim.experiment is drsim.experiments


def test_the_architecture_document_names_every_module():
    """docs/architecture.md gives each module's job in one line: a new module must be added there too."""
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(PACKAGE.parent)) for p in _modules()
               if f"`{p.relative_to(PACKAGE.parent)}`" not in doc]
    assert not missing, f"docs/architecture.md does not name {missing}"
