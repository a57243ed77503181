"""The house in figures: modules, import edges (tests/test_layout.py's graph), imports of the project's own
modules made inside functions, and the modules over 600 lines.

Run: .venv/bin/python -m bench.house
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from tests.test_layout import import_graph, project_modules

PROJECT_ROOTS = ("frontend", "train", "tools", "db", "schema", "main", "global_var")
LONG_MODULE_LINES = 600


def function_level_imports(path: Path) -> int:
    """Imports of project modules written inside a function (or a method) of the file."""
    count = 0
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and not inner.level:
                origins = [inner.module or ""]
            elif isinstance(inner, ast.Import):
                origins = [alias.name for alias in inner.names]
            else:
                continue
            count += sum(1 for origin in origins if origin.split(".")[0] in PROJECT_ROOTS)
    return count


def main() -> None:
    modules = project_modules()
    edges = sum(len(targets) for targets in import_graph().values())
    inside = Counter({name: function_level_imports(path) for name, path in modules.items()})
    lines = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules.items()}
    print(f"modules {len(modules)}, import edges {edges}, function-level imports of project modules {sum(inside.values())}")
    print("most function-level imports:", ", ".join(f"{name} {count}" for name, count in inside.most_common(8) if count))
    long = sorted(((count, name) for name, count in lines.items() if count > LONG_MODULE_LINES), reverse=True)
    print(f"over {LONG_MODULE_LINES} lines:", ", ".join(f"{name} {count}" for count, name in long) or "none")


if __name__ == "__main__":
    main()
