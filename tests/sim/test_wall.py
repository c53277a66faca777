"""The simulator is walled off: it imports nothing of the runner but itself."""

from __future__ import annotations

import ast
from pathlib import Path

import runner.sim


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_runner_sim_imports_only_runner_sim() -> None:
    folder = Path(runner.sim.__file__).parent
    modules = sorted(folder.glob("*.py"))
    assert len(modules) > 5
    outside = {
        f"{path.name}: {name}"
        for path in modules
        for name in _imports(path)
        if (name == "runner" or name.startswith("runner.")) and not name.startswith("runner.sim")
    }
    assert not outside
