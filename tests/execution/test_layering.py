"""The execution app's layering: domain modules send tasks by name and never import the task objects;
its modules import each other without a cycle."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "execution"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The execution modules ``path`` imports, at any depth of its code (function bodies included)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(part for part in (base, node.module or "") if part)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import lifecycle`
    return {name for name in found if name.split(".")[0] == "execution"}


MODULES = {
    module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts and path.stem != "apps"
}


def test_no_module_but_the_app_config_imports_the_celery_tasks() -> None:
    importers = {name for name, path in MODULES.items() if "execution.tasks" in imported_modules(path)}
    assert importers == set()


def test_the_execution_modules_import_each_other_without_a_cycle() -> None:
    graph = {name: imported_modules(path) & set(MODULES) - {name} for name, path in MODULES.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as cycle:  # pragma: no cover - the failure message
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")
