"""Invented names: identifiers an answer presents as part of the library that the doc set never mentions.

What counts as presented as a name (in the answer's prose, code spans and code blocks):
  * a whole inline code span that is one identifier, call or dotted path (`Tide`, `Tide.run()`);
  * inside code: dotted paths, calls, keyword arguments, snake_case, CamelCase, CONSTANT_CASE, flags;
  * in prose: `module.function()` calls, dotted paths with a snake_case or CamelCase part, CamelCase
    class names, CONSTANT_CASE names and error codes such as TW-1203.
A name is known when it occurs in the doc set (tools.quality.sources.identifier_index: as written or
lower-cased), or, for a dotted path or call, when its last part is used as code in the doc set (so
`tide.run()` on an instance is fine when the docs show `Tide.run()`), or when it is Python's
(builtins; a path starting with a standard-library module) or a well-known product name. Anything
else is reported once per message, with its span.
"""

from __future__ import annotations

import builtins
import re
import sys

from tools.quality.sources import DocContext
from tools.quality.text import INLINE_CODE, fenced_blocks

DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+"
DOTTED_OR_NAME = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
# Prose patterns, most specific first; each match is one candidate name.
# Each alternative starts only where a word starts (the lookbehind), so no word is scanned twice.
PROSE_NAME = re.compile(
    r"(?<![\w.@/-])(?:"
    rf"(?P<call>@?{DOTTED_OR_NAME}\(\))"  # module.function() or function()
    rf"|(?P<dotted>{DOTTED})"  # a.b.c
    r"|(?P<code>[A-Z][A-Z0-9]+-\d{2,}\b)"  # TW-1203
    r"|(?P<const>[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b)"  # MAX_WORKERS
    r"|(?P<camel>[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b))"  # RetryPolicy
)
CODE_TOKEN = re.compile(r"(?<![\w-])(?:--[A-Za-z][\w-]*|@?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?P<after>\s*[(=])?)")
SINGLE_NAME = re.compile(rf"^@?(?:{DOTTED}|[A-Za-z_]\w*)(?:\(.*\))?$")
STRUCTURED = re.compile(r"_|\d|^.+[A-Z]")
CAMEL_OR_CONSTANT = re.compile(r"^[A-Z]\w*[A-Z_]")
DEFINITION = re.compile(r"\b(?:def|class)\s+([A-Za-z_]\w*)")
FILE_SUFFIX = re.compile(r"\.(?:md|py|txt|toml|json|jsonl|yaml|yml|cfg|ini|html|lock|log|csv|sh|com|org|net|io)$", re.I)
# CamelCase words that are products or formats, not a library's classes.
COMMON_NAMES = frozenset("""
GitHub GitLab JavaScript TypeScript PyTorch TensorFlow PowerShell YouTube LinkedIn WordPress NumPy SciPy
FastAPI PostgreSQL MySQL SQLite MongoDB OpenAI DeepSeek HuggingFace ChatGPT JetBrains VSCode DevOps
WebSocket OAuth JSON YAML TOML HTTP HTTPS CUDA MacOS iOS PyPI CPython IPython JupyterLab LaTeX
""".split())
TOKEN_CACHE_SIZE = 500_000  # distinct tokens / code texts whose names are remembered
PYTHON_NAMES = frozenset(dir(builtins)) | frozenset(sys.stdlib_module_names)


def _is_known(name: str, context: DocContext) -> bool:
    name = name.lstrip("@")
    if name.endswith("()"):
        name = name[:-2]
    if name in context.words or name.lower() in context.words or name in PYTHON_NAMES or name in COMMON_NAMES:
        return True
    parts = name.split(".")
    if len(parts) > 1:
        if parts[0] in sys.stdlib_module_names or FILE_SUFFIX.search(name):
            return True
        return parts[-1] in context.code_names
    return False


_code_names: dict[tuple[bool, str], tuple[tuple[str, int], ...]] = {}


def _names_in_code(code: str, is_block: bool) -> tuple[tuple[str, int], ...]:
    """(name, offset) of the names a code block (is_block) or an inline code span presents; remembered
    per distinct code text (answers quote the same snippets again and again)."""
    key = (is_block, code)
    names = _code_names.get(key)
    if names is not None:
        return names
    found = []
    if is_block:
        for token in CODE_TOKEN.finditer(code):
            name = token.group(0).rstrip("(= \t")
            if (name.startswith("--") or (token.group("after") or "").strip() == "(" or "." in name
                    or CAMEL_OR_CONSTANT.search(name)):
                found.append((name, token.start()))
    else:
        inner = code.strip()
        offset = len(code) - len(code.lstrip())
        if SINGLE_NAME.match(inner):
            found.append((inner.split("(", 1)[0], offset))
        else:
            for token in CODE_TOKEN.finditer(inner):
                name = token.group(0).rstrip("(= \t")
                if name.startswith("--") or token.group("after") or "." in name or STRUCTURED.search(name):
                    found.append((name, offset + token.start()))
    names = tuple(found)
    if len(_code_names) < TOKEN_CACHE_SIZE:
        _code_names[key] = names
    return names


_token_names: dict[str, tuple[str, ...]] = {}
# The tokens that present no name (most words of most answers): taken out of a text's tokens with one
# set difference, so that only the few others are looked at one by one.
_nameless: set[str] = set()


def _prose_names(token: str) -> tuple[str, ...]:
    """The names a whitespace-separated token presents, remembered per distinct token: answers share
    most of their words, so the pattern runs once per word of the dataset, not once per occurrence."""
    names = _token_names.get(token)
    if names is None:
        found = []
        for match in PROSE_NAME.finditer(token):
            name = match.group(0)
            if match.group("dotted") and not STRUCTURED.search(name.split(".", 1)[1]):
                continue  # "e.g", "api.example": a dotted path counts in prose only with a code-like part
            found.append(name[:-2] if name.endswith("()") else name)
        names = tuple(found)
        if names and len(_token_names) < TOKEN_CACHE_SIZE:
            _token_names[token] = names
        elif not names and len(_nameless) < TOKEN_CACHE_SIZE:
            _nameless.add(token)
    return names


def _candidates(text: str) -> list[tuple[str, int]]:
    """(name, start) of every distinct name the text presents as code or as part of the library, start -1
    for a name in prose (its first occurrence in the text: text.find, asked only for an unknown name);
    names its own code defines (def/class) are left out: defining one is not a claim about the library.
    One list, no generators: a dataset's answers present millions of names."""
    seen: set[str] = set()
    found: list[tuple[str, int]] = []
    if "def " in text or "class " in text:
        seen.update(DEFINITION.findall(text))
    if "```" in text or "~~~" in text:
        for start, end in fenced_blocks(text):
            for name, offset in _names_in_code(text[start:end], True):
                if name not in seen:
                    seen.add(name)
                    found.append((name, start + offset))
    if "`" in text:
        for span in INLINE_CODE.finditer(text):
            names = _names_in_code(span.group(1), False)
            if names:
                start = span.start(1)
                for name, offset in names:
                    if name not in seen:
                        seen.add(name)
                        found.append((name, start + offset))
    tokens = text.split()
    pending = set(tokens).difference(_nameless)  # looks up each of the text's tokens, not each of _nameless
    if pending:
        # In the order of their first occurrence: a name is reported where its token first stands.
        for token in sorted(pending, key=tokens.index) if len(pending) > 1 else pending:
            for name in _prose_names(token):
                if name not in seen:
                    seen.add(name)
                    found.append((name, -1))
    return found


def _all_known(pieces: set[str], known_pieces: set[str], names_of, context: DocContext) -> bool:
    """Whether every name of every piece is known; the pieces found so are added to `known_pieces`."""
    for piece in pieces.difference(known_pieces):
        if not all(context.is_known_name(name, _is_known) for name in names_of(piece)):
            return False
        if len(known_pieces) < TOKEN_CACHE_SIZE:
            known_pieces.add(piece)
    return True


def _presents_only_known(text: str, context: DocContext) -> bool:
    """A quick look: True when no name the text presents can be unknown (most answers), so that
    _candidates, which orders the names and places them, runs only for the others. Looks at a superset
    of _candidates' names (the text's own definitions are not taken out), so a True is certain."""
    pieces = context.known_pieces
    tokens = text.split()
    # Tokens seen before that present no name or only known ones: most answers have no other, and
    # issuperset tells so without building a set of the answer's tokens.
    passed = pieces.setdefault("token_passed", set())
    if not passed.issuperset(tokens):
        if not _all_known(set(tokens).difference(_nameless), pieces.setdefault("token", set()), _prose_names, context):
            return False
        if len(passed) < TOKEN_CACHE_SIZE:
            passed.update(tokens)
    if "`" in text and not _all_known(set(INLINE_CODE.findall(text)), pieces.setdefault("span", set()),
                                      lambda code: (name for name, _ in _names_in_code(code, False)), context):
        return False
    if "```" in text or "~~~" in text:
        blocks = {text[start:end] for start, end in fenced_blocks(text)}
        if blocks and not _all_known(blocks, pieces.setdefault("block", set()),
                                     lambda code: (name for name, _ in _names_in_code(code, True)), context):
            return False
    return True


def invented_name_findings(item: dict, context: DocContext | None) -> list[dict]:
    """One finding per unknown name per assistant message, with the span of its first occurrence."""
    if context is None:
        return []
    findings = []
    known = context.is_known_name
    for index, message in enumerate(item.get("messages") or []):
        if message.get("role") != "assistant":
            continue
        content = message.get("content") or ""
        if _presents_only_known(content, context):
            continue
        for name, start in _candidates(content):
            if not known(name, _is_known):
                if start < 0:
                    start = content.find(name)
                findings.append({"item_id": item["id"], "kind": "invented_name",
                                 "where": {"message": index, "field": "content", "span": [start, start + len(name)]},
                                 "detail": {"name": name}})
    return findings
