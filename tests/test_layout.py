"""The layout is the architecture: imports point down the layers, and no two modules import each other
(directly or around a circle), function-level imports included.

Layers, top to bottom (a module may import its own layer and the ones below it):
  main            parses the global options and dispatches
  frontend        every way in: web page, command line, HTTP API
  train           runs, training, loading, inference, evaluation, export
  global_var      the one owner of process-wide state (the workspace, loaded model, job registry); it
                  holds train's objects as plain values and opens the library's Workspace
  tools           the torch-free library by subject (docs, llm, generation, ...): handed its Workspace
                  (stores, providers, docs) by the caller, it imports nothing of global_var, train or frontend
  db              stores
  schema          models and validation
  tools.core      foundation: user errors, strings, work-directory paths, networking helpers
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("frontend", "train", "tools", "db", "schema")
TOP_MODULES = ("main", "global_var")
# Longest prefix wins: tools.core sits below everything although it lives in tools/.
LAYERS = {
    "main": 7,
    "frontend": 6,
    "train": 5,
    "global_var": 4,
    "tools": 3,
    "db": 2,
    "schema": 1,
    "tools.core": 0,
}


def project_modules() -> dict[str, Path]:
    modules = {name: REPO / f"{name}.py" for name in TOP_MODULES}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_modules(path: Path, module: str, known: set[str]) -> set[str]:
    """Project modules imported anywhere in the file (top level, functions, TYPE_CHECKING blocks)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from pkg import module` imports the module; `from module import name` the module.
            names = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {module: imported_modules(path, module, known) for module, path in modules.items()}


def layer(module: str) -> int:
    best = max((prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")), key=len)
    return LAYERS[best]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_every_module_has_a_layer():
    for module in project_modules():
        assert layer(module) >= 0, module


def test_imports_point_down():
    upward = [f"{module} -> {target}" for module, targets in import_graph().items()
              for target in sorted(targets) if layer(target) > layer(module)]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "modules that import each other (around a circle):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_see_a_violation(tmp_path):
    """The checker itself: an upward import and a two-module circle are found."""
    graph = {"tools.a": {"tools.b"}, "tools.b": {"tools.a"}, "db.x": {"train.y"}, "train.y": set()}
    assert cycles(graph) == [["tools.a", "tools.b"]]
    assert layer("db.x") < layer("train.y")
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from train import trainer\n    import tools.core.i18n\n")
    assert imported_modules(source, "db.m", {"train", "train.trainer", "tools", "tools.core", "tools.core.i18n"}) == {"train.trainer", "tools.core.i18n"}
