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


def _code_candidates(text: str):
    """(name, start) of the names in the text's code blocks and inline code spans."""
    if "```" in text or "~~~" in text:
        for start, end in fenced_blocks(text):
            for name, offset in _names_in_code(text[start:end], True):
                yield name, start + offset
    if "`" in text:
        for span in INLINE_CODE.finditer(text):
            for name, offset in _names_in_code(span.group(1), False):
                yield name, span.start(1) + offset


_token_names: dict[str, tuple[str, ...]] = {}


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
        if len(_token_names) < TOKEN_CACHE_SIZE:
            _token_names[token] = names
    return names


def _candidates(text: str):
    """(name, start, end) of every distinct name the text presents as code or as part of the library;
    names its own code defines (def/class) are left out: defining one is not a claim about the library."""
    seen: set[str] = set()
    if "def " in text or "class " in text:
        seen.update(DEFINITION.findall(text))
    if "`" in text or "~~~" in text:
        for name, start in _code_candidates(text):
            if name not in seen:
                seen.add(name)
                yield name, start, start + len(name)
    cache = _token_names  # read here, not through _prose_names: one call less for each word of the dataset
    for token in text.split():
        names = cache.get(token)
        if names is None:
            names = _prose_names(token)
        for name in names:
            if name not in seen:
                seen.add(name)
                start = text.find(name)
                yield name, start, start + len(name)


def invented_name_findings(item: dict, context: DocContext | None) -> list[dict]:
    """One finding per unknown name per assistant message, with the span of its first occurrence."""
    if context is None:
        return []
    findings = []
    for index, message in enumerate(item.get("messages") or []):
        if message.get("role") != "assistant":
            continue
        for name, start, end in _candidates(message.get("content") or ""):
            if not context.is_known_name(name, _is_known):
                findings.append({"item_id": item["id"], "kind": "invented_name",
                                 "where": {"message": index, "field": "content", "span": [start, end]},
                                 "detail": {"name": name}})
    return findings
