"""Code answers read as code: the code an answer holds, whether it parses, and the library names used inside it.

A code question is answered by code; prose that mentions an API ("Use Tide.run to run it.") holds none.
The names a snippet uses are read from its syntax tree, so a local variable's attribute or a stdlib call
is not taken for the library's API, and `import tidewater as tw; tw.Tide` is resolved to `tidewater.Tide`.
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
import textwrap

# Fence info strings that mark a block as written in a language; an untagged fence counts for any language.
LANGUAGE_TAGS = {
    "python": {"python", "py", "python3", "py3"},
    "javascript": {"javascript", "js", "node"},
    "typescript": {"typescript", "ts"},
    "bash": {"bash", "sh", "shell", "zsh"},
}
_FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
_BUILTINS = set(dir(builtins))
_STDLIB = set(sys.stdlib_module_names) | {"__future__"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


# ---------------------------------------------------------------- the code of an answer


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info tag in lower case, body) of every fenced block; an unclosed last fence runs to the end (a cut-off answer)."""
    blocks, lines, index = [], (text or "").splitlines(), 0
    while index < len(lines):
        match = _FENCE_OPEN.match(lines[index])
        index += 1
        if not match:
            continue
        fence, body = match.group("fence"), []
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        while index < len(lines) and not closing.match(lines[index]):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        blocks.append((match.group("info").lower(), textwrap.dedent("\n".join(body))))
    return blocks


def extract_code(answer: str, language: str = "python") -> str | None:
    """The code an answer holds: its fenced blocks in `language` (or untagged), else the whole answer when it
    parses as code and looks like code, else None. Inline `code` spans alone are not a code answer."""
    tags = LANGUAGE_TAGS.get(language.lower(), {language.lower()})
    blocks = fenced_blocks(answer)
    if blocks:
        chosen = [body for info, body in blocks if (not info or info in tags) and body.strip()]
        return "\n".join(chosen) if chosen else None
    text = (answer or "").strip()
    if not text or language.lower() != "python":
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    return text if any(_is_code_statement(node) for node in tree.body) else None


def _is_code_statement(node: ast.stmt) -> bool:
    """Anything but a bare expression counts; a bare expression counts only when it is a call
    ("TW-1001" parses as a subtraction, "Tide" as a name: neither is code)."""
    if not isinstance(node, ast.Expr):
        return True
    return isinstance(node.value, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom))


def code_parses(code: str, language: str = "python") -> tuple[bool | None, str | None]:
    """(True, None) when `code` parses, (False, "SyntaxError: ... (line N)") when not, (None, None) for a language we cannot check."""
    if language.lower() != "python":
        return None, None
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return False, f"{type(exc).__name__}: {exc.msg} (line {exc.lineno})"
    except ValueError as exc:  # null bytes
        return False, f"{type(exc).__name__}: {exc}"
    return True, None


# ---------------------------------------------------------------- library names used inside the code


class _NameReader:
    """What one snippet binds (imports, locals, instances of library classes) and the library names it uses."""

    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.imported: dict[str, str | None] = {}  # bound name -> dotted origin (None: a stdlib module's name)
        self.star_modules: list[str] = []
        self.names: set[str] = set()
        self.locals: set[str] = set()
        self.instances: dict[str, str | None] = {}  # variable -> class it was made from (None: made from several)
        self.parents: dict[ast.AST, ast.AST] = {}

    def read(self) -> set[str]:
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        for node in ast.walk(self.tree):
            self._read_binding(node)
        self.locals -= set(self.imported)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                self._read_instance(node)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
                parent = self.parents.get(node)
                if isinstance(parent, ast.Attribute) and parent.value is node:
                    continue  # only the longest chain is a name
                dotted = self.resolve(node)
                if dotted and not _is_stdlib(dotted):
                    self.names.add(dotted)
        return self.names

    def _read_binding(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.imported[alias.asname] = None if _is_stdlib(alias.name) else alias.name
                else:
                    root = alias.name.split(".")[0]
                    self.imported[root] = None if _is_stdlib(alias.name) else root
                if not _is_stdlib(alias.name):
                    self.names.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level or not node.module:
                for alias in node.names:  # relative imports are the snippet's own modules
                    self.locals.add(alias.asname or alias.name)
                return
            stdlib = _is_stdlib(node.module)
            if not stdlib:
                self.names.add(node.module)
            for alias in node.names:
                if alias.name == "*":
                    if not stdlib:
                        self.star_modules.append(node.module)
                    continue
                origin = f"{node.module}.{alias.name}"
                self.imported[alias.asname or alias.name] = None if stdlib else origin
                if not stdlib:
                    self.names.add(origin)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            self.locals.add(node.id)
        elif isinstance(node, ast.arg):
            self.locals.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.locals.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self.locals.add(node.name)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            self.locals.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            self.locals.update(node.names)

    def _read_instance(self, node: ast.Assign | ast.AnnAssign) -> None:
        """`tide = Tide(...)`: later `tide.run` is `tidewater.Tide.run` (only for calls of a CamelCase library name)."""
        made_from = self._class_called(node.value)
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                if target.id in self.instances and self.instances[target.id] != made_from:
                    self.instances[target.id] = None
                else:
                    self.instances[target.id] = made_from

    def _class_called(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Call):
            dotted = self.resolve(node.func)
            if dotted and dotted.rsplit(".", 1)[-1][:1].isupper():
                return dotted
        return None

    def resolve(self, node: ast.AST) -> str | None:
        """The dotted library name an expression stands for, or None (locals, builtins, stdlib, anything computed)."""
        if isinstance(node, ast.Name):
            if node.id in self.imported:
                return self.imported[node.id]
            if node.id in self.locals:
                return self.instances.get(node.id)
            if node.id in _BUILTINS or (node.id.startswith("__") and node.id.endswith("__")):
                return None
            # A free name: from a star import when there is one, else the library name it is written as.
            return f"{self.star_modules[-1]}.{node.id}" if self.star_modules else node.id
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call):
            return self._class_called(node)  # `Tide(...).add_stage` -> `tidewater.Tide.add_stage`
        return None


def _is_stdlib(dotted: str) -> bool:
    return dotted.split(".")[0] in _STDLIB


def names_in_code(code: str) -> list[str]:
    """The library names a snippet uses (imports, attribute chains and calls rooted at them, free names),
    resolved through aliases; builtins, locals and the standard library left out. Sorted, unique; [] when it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    return sorted(_NameReader(tree).read())


# ---------------------------------------------------------------- grounding in the docs


def docs_name_index(texts: list[str]) -> set[str]:
    """Every identifier and dotted name the docs contain, and each dotted name's parts and suffixes."""
    index: set[str] = set()
    for text in texts:
        for name in _IDENTIFIER.findall(text):
            parts = name.split(".")
            index.add(name)
            index.update(parts)
            index.update(".".join(parts[i:]) for i in range(1, len(parts)))
    return index


def name_known(name: str, index: set[str]) -> bool:
    """A name is grounded when the docs contain it, or its last two parts (module aliases differ: `tw.Tide` vs
    `tidewater.Tide`), or each of its parts (`tidewater.Tide` when the docs name the module and `Tide` apart)."""
    parts = name.split(".")
    return (name in index or (len(parts) > 1 and ".".join(parts[-2:]) in index)
            or (len(parts) > 1 and all(part in index for part in parts)))


def code_grounding(code: str, index: set[str]) -> tuple[float | None, list[str], list[str]]:
    """(share of the code's library names found in the docs, or None when it uses none; the names; the unknown ones)."""
    names = names_in_code(code)
    if not names:
        return None, [], []
    unknown = [name for name in names if not name_known(name, index)]
    return 1 - len(unknown) / len(names), names, unknown
