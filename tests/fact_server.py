"""A responder for tests.openai_test_server that knows the truth behind everything it writes.

    responder = FactResponder(seed=1)
    with OpenAITestServer(responder=responder) as server:
        ...  # generate a dataset, create an exam, judge answers against server.base_url
    responder.truth[question]  # {"kind", "fact_id", "value", "value_type", "true", "answer", ...}

It extracts *facts* from the slice in each prompt: sentences, list items and table rows holding a value
(a version, an error code, a number with its unit, an inline-code identifier, a quoted string), and writes
training pairs and exam questions from them: cloze questions whose blank is the value, distractors and
false statements made by altering the value within its type (a number stays a number, a version a
version). It grades exam answers by the reference's key value and records whether the judge was shown
evidence from the question's slice. Replies depend only on the seed, the request's messages and the
constructor's options (`docs` adds the doc set's values as distractors). Questions are written in the
slice's language (the fact sentence is quoted; nothing is translated).

Options: `seed`; `lead_ins` (mc cloze wordings, "{cloze}" and optionally "{noun}"); `tf_style` "twins"
({"statement", "false_statement"}) or "legacy" ({"question", "answer": bool}, about 2/3 false, an unbalanced
writer); `label_prefix` (True: "A. " before each mc option; or a format with {letter}); `package` (imported by
code references when the slice shows no import); `docs`; `project` (named in pair questions when the
prompt does not name it).

Standalone: `python -m tests.fact_server --port 8001 [--latency 0.2] [--seed 1] [--docs workdir/docs/tidewater]`.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import random
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tests.openai_test_server import (
    OpenAITestServer,
    RequestInfo,
    default_responder,
    exam_request_kind,
    is_exam_request,
    is_judge_request,
    make_judgement,
    make_pairs,
    serve_until_interrupted,
    system_text,
)
from tools.quality.language import detect_language

VALUE_TYPES = ("version", "error_code", "number", "identifier", "string")
# The value a sentence is asked about first when it holds several (at most MAX_VALUES_PER_SENTENCE facts each).
VALUE_PRIORITY = {"error_code": 0, "version": 1, "number": 2, "string": 3, "identifier": 4}
MAX_VALUES_PER_SENTENCE = 3
MAX_QUESTIONS = 20
BLANK = "___"

# ---------------------------------------------------------------- values

UNITS = r"seconds?|ms|minutes?|hours?|days?|s|%|秒钟|秒|分钟|小时|天|次|个"
ERROR_CODE = re.compile(r"^[A-Z]{2,6}-\d{3,5}$")
VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")
NUMBER = re.compile(rf"^([±+-]?)(\d+(?:\.(\d+))?)((?:\s?(?:{UNITS}))?)$")
STRING = re.compile(r'^(?:"[^"\n]{1,80}"|“[^”\n]{1,80}”)$')
IDENTIFIER = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?:\(\))?$")
# Not worth a question: literals with two values, and builtin type names.
NOT_IDENTIFIERS = {"true", "false", "none", "null", "any", "int", "str", "float", "bool", "list", "dict", "tuple",
                   "bytes", "type", "callable", "self"}

_PLAIN_ERROR_CODE = re.compile(r"(?<![A-Za-z0-9_\-])[A-Z]{2,6}-\d{3,5}(?![A-Za-z0-9_])")
_PLAIN_VERSION = re.compile(r"(?<![A-Za-z0-9_.\-/])v?\d+\.\d+\.\d+(?![A-Za-z0-9_]|\.\d)")
_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PLAIN_STRING = re.compile(r'"[^"\n]{1,40}"|“[^”\n]{1,40}”')
_PLAIN_NUMBER = re.compile(
    rf"(?<![A-Za-z0-9_.\-/:\x00])\d+(?:\.\d+)?(?:\s?(?:{UNITS}))?(?![A-Za-z0-9_:\x00]|\.\d|\.[A-Za-z])")


def value_type_of(value: str) -> str | None:
    """The type of a value as written ("2.3.1" -> "version"), or None when it is not one."""
    value = value.strip()
    if ERROR_CODE.match(value):
        return "error_code"
    if VERSION.match(value):
        return "version"
    if NUMBER.match(value):
        return "number"
    if STRING.match(value):
        return "string"
    if IDENTIFIER.match(value) and value.rstrip("()").casefold() not in NOT_IDENTIFIERS:
        return "identifier"
    return None


def _quoted_string_words(value: str) -> int:
    return len(value.strip('"“”').split())


def find_values(text: str, code_spans: list[tuple[int, int]]) -> list[tuple[int, int, str, str]]:
    """(start, end, value, type) of every value in cleaned text, inline code (`code_spans`) included."""
    found = []
    for start, end in code_spans:
        content = text[start:end]
        kind = value_type_of(content)
        if kind:
            found.append((start, end, content, kind))
    masked = list(text)
    for start, end in code_spans:
        masked[start:end] = "\x00" * (end - start)
    plain = "".join(masked)

    def mask(span: tuple[int, int]) -> None:
        nonlocal plain
        plain = plain[: span[0]] + "\x00" * (span[1] - span[0]) + plain[span[1]:]

    for match in _PLAIN_DATE.finditer(plain):
        mask(match.span())
    for pattern, kind in ((_PLAIN_ERROR_CODE, "error_code"), (_PLAIN_VERSION, "version"), (_PLAIN_STRING, "string"),
                          (_PLAIN_NUMBER, "number")):
        for match in list(pattern.finditer(plain)):
            if kind == "string" and _quoted_string_words(match.group()) > 6:
                continue
            found.append((match.start(), match.end(), match.group(), kind))
            mask(match.span())
    return sorted(found)


# ---------------------------------------------------------------- Markdown: blocks, cleaning, sentences

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([^`\s]*)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}(?:-{3,}|\*{3,}|_{3,})\s*$")
_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+(.*)$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


@dataclass
class _Block:
    kind: str  # "text" (paragraph or list item), "table", "code", "heading"
    text: str = ""  # raw Markdown (code: the block's content)
    headings: tuple[tuple[int, str], ...] = ()  # (level, raw title) above it within the slice
    info: str = ""  # code: the fence's language
    rows: tuple[tuple[str, ...], ...] = ()  # table: raw cells of the data rows
    header: tuple[str, ...] = ()
    item: bool = False  # text: a list item


def _join_lines(lines: list[str]) -> str:
    text = ""
    for line in lines:
        line = line.strip()
        if text and not (_CJK.match(text[-1]) or _CJK.match(line[:1] or " ")):
            text += " "
        text += line
    return text


def _cells(line: str) -> tuple[str, ...]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return tuple(cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line))


def markdown_blocks(text: str) -> list[_Block]:
    """The slice text as paragraphs/list items, tables, code blocks and headings (front matter dropped)."""
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":
        for end in range(1, min(len(lines), 60)):
            if lines[end].strip() in ("---", "..."):
                lines = lines[end + 1:]
                break
    blocks: list[_Block] = []
    headings: list[tuple[int, str]] = []
    paragraph: list[str] = []
    in_item = False
    blank_before = True
    i = 0

    def flush() -> None:
        nonlocal paragraph, in_item
        if paragraph:
            blocks.append(_Block("text", _join_lines(paragraph), tuple(headings), item=in_item))
        paragraph, in_item = [], False

    def heading(level: int, title: str) -> None:
        while headings and headings[-1][0] >= level:
            headings.pop()
        headings.append((level, title))
        blocks.append(_Block("heading", title, tuple(headings)))

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(1)
            closing = re.compile(rf"^\s{{0,3}}{re.escape(marker[0])}{{{len(marker)},}}\s*$")
            body = []
            i += 1
            while i < len(lines) and not closing.match(lines[i]):
                body.append(lines[i])
                i += 1
            blocks.append(_Block("code", "\n".join(body), tuple(headings), info=fence.group(2).lower()))
            i += 1
            blank_before = False
            continue
        if not stripped:
            flush()
            blank_before = True
            i += 1
            continue
        match = _HEADING.match(line)
        if match:
            flush()
            heading(len(match.group(1)), match.group(2))
            i += 1
            continue
        if (not paragraph and i + 1 < len(lines) and _SETEXT.match(lines[i + 1]) and not stripped.startswith("|")
                and not _ITEM.match(line)):
            heading(1 if lines[i + 1].strip()[0] == "=" else 2, stripped)
            i += 2
            continue
        if _RULE.match(line):
            flush()
            i += 1
            continue
        if stripped.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            header: tuple[str, ...] = ()
            if len(rows) > 1 and all(re.fullmatch(r":?-{3,}:?", cell) for cell in rows[1] if cell):
                header, rows = rows[0], rows[2:]
            blocks.append(_Block("table", headings=tuple(headings), rows=tuple(rows), header=header))
            blank_before = False
            continue
        if (line.startswith("    ") or line.startswith("\t")) and blank_before and not in_item and not paragraph:
            body = []
            while i < len(lines) and (lines[i].startswith("    ") or lines[i].startswith("\t") or not lines[i].strip()):
                body.append(lines[i][4:] if lines[i].startswith("    ") else lines[i].lstrip("\t"))
                i += 1
            blocks.append(_Block("code", "\n".join(body).strip("\n"), tuple(headings)))
            continue
        item = _ITEM.match(line)
        if item:
            flush()
            paragraph, in_item = [item.group(1)], True
        else:
            paragraph.append(stripped)
        blank_before = False
        i += 1
    flush()
    return blocks


def _clean_plain(text: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>\n]+>", "", text)
    text = text.replace("**", "")
    text = re.sub(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)", r"\1", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|])", r"\1", text)
    return re.sub(r"\s+", " ", text)


def clean_markdown(raw: str) -> tuple[str, list[tuple[int, int]]]:
    """Text without Markdown, and where its inline code was (start, end)."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    length, position = 0, 0
    for match in _INLINE_CODE.finditer(raw):
        plain = _clean_plain(raw[position: match.start()])
        code = match.group(2).strip()
        parts += [plain, code]
        spans.append((length + len(plain), length + len(plain) + len(code)))
        length += len(plain) + len(code)
        position = match.end()
    parts.append(_clean_plain(raw[position:]))
    text = "".join(parts)
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    return text, [(start - lead, end - lead) for start, end in spans]


_EN_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-Za-z0-9`\"“(*\[])")
_ZH_BOUNDARY = re.compile(r"(?<=[。！？!?])\s*")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "No.")


def split_sentences(raw: str) -> list[str]:
    """Sentences of a paragraph in Markdown: English ones end with . ! ? and a space (not after "e.g." or a
    lone letter), Chinese ones with 。！？; never inside inline code."""
    code = [match.span() for match in _INLINE_CODE.finditer(raw)]
    cuts = [0]
    for pattern in (_EN_BOUNDARY, _ZH_BOUNDARY):
        for match in pattern.finditer(raw):
            at = match.start()
            if (any(start < at < end for start, end in code) or raw[:at].endswith(_ABBREVIATIONS)
                    or re.search(r"(?:^|\s)\w[.]$", raw[:at])):
                continue
            cuts.append(at)
    cuts = sorted(set(cuts)) + [len(raw)]
    return [raw[a:b].strip() for a, b in zip(cuts, cuts[1:]) if raw[a:b].strip()]


# ---------------------------------------------------------------- facts


@dataclass(frozen=True)
class Fact:
    """One value of the docs in its sentence; `cloze` is the sentence with the value blanked out."""

    id: str
    source: str
    section: str
    text: str
    value: str
    value_type: str
    cloze: str
    lang: str = "en"

    def with_value(self, value: str) -> str:
        """The sentence with `value` in place of the truth: a false twin when it differs."""
        return self.cloze.replace(BLANK, value)


def fact_id(source: str, section: str, text: str, value: str) -> str:
    return hashlib.sha1(f"{source}\x1f{section}\x1f{text}\x1f{value}".encode()).hexdigest()[:12]


def _occurrences(value: str, value_type: str) -> re.Pattern:
    """Where a value occurs as itself (4 in "max 4 workers", not in "TW-1104" or "4.5")."""
    forms = [re.escape(value)]
    if value_type == "number":
        forms.append(re.escape(NUMBER.match(value).group(2)))
    elif value_type == "identifier" and value.endswith("()"):
        forms.append(re.escape(value[:-2]))
    return re.compile(rf"(?<![A-Za-z0-9_.\-])(?:{'|'.join(forms)})(?![A-Za-z0-9_]|\.\d|\.[A-Za-z_])")


def make_fact(text: str, value: str, value_type: str, source: str, section: str, lang: str) -> Fact | None:
    cloze = _occurrences(value, value_type).sub(BLANK, text)
    if BLANK not in cloze:
        return None
    return Fact(fact_id(source, section, text, value), source, section, text, value, value_type, cloze, lang)


def _sentence_facts(raw: str, source: str, section: str, lang: str, context: str = "") -> list[Fact]:
    """Facts of one sentence; `context` (a list item's headings, "2.3.0 › Added") is put before its text."""
    text, spans = clean_markdown(raw)
    if len(text) < 12 or len(text) > 500 or (len(text.split()) < 3 and len(_CJK.findall(text)) < 6):
        return []
    values = {}
    for start, end, value, kind in find_values(text, spans):
        values.setdefault(value, (VALUE_PRIORITY[kind], start, kind))
    chosen = sorted(values.items(), key=lambda item: item[1][:2])[:MAX_VALUES_PER_SENTENCE]
    text = f"{context}{'：' if lang == 'zh' else ': '}{text}" if context else text
    facts = [make_fact(text, value, kind, source, section, lang) for value, (_, _, kind) in chosen]
    return [fact for fact in facts if fact]


def _heading_title(raw: str) -> str:
    """A heading as plain text; a signature heading (`Tide.run(...)`) as the callable's name."""
    match = re.fullmatch(r"\s*`([^`]+)`\s*", raw)
    found = parse_signature(match.group(1)) if match else None
    return found[0] if found else clean_markdown(raw)[0]


def _heading_context(headings: tuple[tuple[int, str], ...]) -> str:
    return " › ".join(_heading_title(title) for _, title in headings[-2:])


def _row_fact(block: _Block, row: tuple[str, ...], source: str, section: str, lang: str) -> Fact | None:
    """A table row as one sentence ("Context: first — Header: cell; ..."), asked about one value: an error code
    anywhere, else a number/version/string of a later cell (not a Type column), else the first cell's value."""
    header = block.header
    pieces: list[tuple[str, list[tuple[int, int]], int]] = []  # (text, spans, column)
    context = _heading_context(block.headings)
    text = f"{context}: " if context else ""
    for column, raw in enumerate(row):
        cell, spans = clean_markdown(raw)
        if not cell:
            continue
        label = ""
        if column > 0:
            name = clean_markdown(header[column])[0] if column < len(header) else ""
            label = f"{name}: " if name else ""
            text += " — " if len(pieces) == 1 else "; "
        text += label
        pieces.append((cell, [(s + len(text), e + len(text)) for s, e in spans], column))
        text += cell.rstrip(".") if column < len(row) - 1 else cell
    if len(pieces) < 2:
        return None
    text = text if text.endswith((".", "。")) else text + ("。" if lang == "zh" else ".")
    spans = [span for _, cell_spans, _ in pieces for span in cell_spans]
    type_columns = {i for i, name in enumerate(header) if clean_markdown(name)[0].casefold() in ("type", "类型")}
    offsets = []  # (start, end, column) of each cell in the row text
    position = len(f"{context}: ") if context else 0
    for cell, _, column in pieces:
        start = text.find(cell.rstrip("."), position)
        offsets.append((start, start + len(cell), column))
        position = start + 1
    candidates = []
    for start, end, value, kind in find_values(text, spans):
        column = next((c for s, e, c in offsets if s <= start < e + 1), None)
        if column is None or column in type_columns:
            continue
        if kind == "error_code":
            rank = 0
        elif column > 0 and kind in ("number", "version", "string"):
            rank = 1
        elif column == 0:
            rank = 2
        else:
            rank = 3
        candidates.append((rank, start, value, kind))
    if not candidates:
        return None
    _, _, value, kind = min(candidates)
    return make_fact(text, value, kind, source, section, lang)


def extract_facts(slice_text: str, source: str, section: str) -> list[Fact]:
    """The facts of a slice in document order: sentences, list items and table rows with a value (code skipped)."""
    lang = "zh" if detect_language(slice_text) == "zh" else "en"
    facts: dict[str, Fact] = {}
    for block in markdown_blocks(slice_text):
        if block.kind == "text":
            context = _heading_context(block.headings) if block.item else ""
            found = [fact for sentence in split_sentences(block.text)
                     for fact in _sentence_facts(sentence, source, section, lang, context)]
        elif block.kind == "table":
            found = [_row_fact(block, row, source, section, lang) for row in block.rows]
        else:
            continue
        for fact in found:
            if fact is not None:
                facts.setdefault(fact.id, fact)
    return list(facts.values())


def slice_values(text: str) -> list[str]:
    """Every value of a text (facts' and others'), in order, once: a pool of same-type distractors."""
    seen: dict[str, None] = {}
    for block in markdown_blocks(text):
        raws = [block.text] if block.kind == "text" else [cell for row in block.rows for cell in row]
        for raw in raws:
            cleaned, spans = clean_markdown(raw)
            for _, _, value, _ in find_values(cleaned, spans):
                seen.setdefault(value, None)
    return list(seen)


# ---------------------------------------------------------------- altered values


def _format_number(number: float, decimals: int) -> str:
    return f"{number:.{decimals}f}"


def _number_variants(value: str) -> list[str]:
    sign, digits, fraction, unit = NUMBER.match(value).groups()
    decimals = len(fraction or "")
    truth = float(digits)
    out = []
    steps = ((truth * 2, truth + 1, truth / 2, truth - 1, truth * 10, truth + 2, truth * 3, truth / 10, truth + 3,
              truth + 5, truth * 5) if decimals == 0 else
             (truth * 2, truth + 1, truth / 2, truth - 1, truth + 0.5, truth * 3, truth + 2, truth + 3))
    for candidate in steps:
        if candidate < 0 or (truth > 0 and candidate == 0) or (decimals == 0 and candidate != int(candidate)):
            continue
        text = _format_number(candidate, decimals)
        if float(text) != truth:
            out.append(f"{sign}{text}{unit}")
    return out


def _version_variants(value: str) -> list[str]:
    prefix = "v" if value.startswith("v") else ""
    major, minor, patch = (int(part) for part in value.lstrip("v").split("."))
    candidates = [(major, minor, patch + 1), (major, minor + 1, patch), (major, minor + 1, 0), (major + 1, 0, 0),
                  (major, minor, patch - 1), (major, minor - 1, patch), (major - 1, minor, patch), (major, minor, patch + 2)]
    return [prefix + ".".join(map(str, parts)) for parts in candidates
            if min(parts) >= 0 and parts != (major, minor, patch)]


def _error_code_variants(value: str, pool: list[str], rng: random.Random) -> list[str]:
    prefix, digits = value.rsplit("-", 1)
    family = [code for code in pool if code != value and code.rsplit("-", 1)[0] == prefix
              and code.rsplit("-", 1)[1][:2] == digits[:2]]
    rng.shuffle(family)
    number, width = int(digits), len(digits)
    nearby = [f"{prefix}-{number + step:0{width}d}" for step in (1, -1, 2, -2, 3, -3) if number + step >= 0]
    return family + nearby


def _identifier_shape(value: str) -> tuple:
    base = value[:-2] if value.endswith("()") else value
    last = base.rsplit(".", 1)[-1]
    case = ("upper" if last.isupper() else "camel" if last[:1].isupper() else
            "snake" if "_" in last.strip("_") else "lower")
    return base.count("."), value.endswith("()"), case


def _identifier_mutations(value: str) -> list[str]:
    suffix = "()" if value.endswith("()") else ""
    base = value[:-2] if suffix else value
    head, _, last = base.rpartition(".")
    prefix = f"{head}." if head else ""
    words = [word for word in last.split("_") if word]
    out = [last[:-1] if last.endswith("s") and len(last) > 3 else last + "s"]
    if len(words) > 1:
        out.append("_".join(reversed(words)))
    if last[:1].isupper():
        out += ["Base" + last, last + "Config", last + "Manager"]
    else:
        out += [last[8:] if last.startswith("default_") else "default_" + last, last + "_count",
                "min_" + last[4:] if last.startswith("max_") else "max_" + last]
    return [prefix + word + suffix for word in out if word and word != last]


def _identifier_variants(value: str, pool: list[str], rng: random.Random) -> list[str]:
    others = [v for v in pool if v != value and v.casefold() != value.casefold()]
    shape = _identifier_shape(value)
    head = value.rpartition(".")[0]
    same = [v for v in others if _identifier_shape(v) == shape]
    close = [v for v in others if _identifier_shape(v)[:2] == shape[:2] and v not in same]
    rng.shuffle(same)
    rng.shuffle(close)
    # The same owner first: `tidewater.toml` for `tidewater.yaml`, `RetryPolicy.none` for `RetryPolicy.retry`.
    same.sort(key=lambda v: v.rpartition(".")[0] != head)
    return same + close + _identifier_mutations(value)


def _string_variants(value: str, pool: list[str], rng: random.Random) -> list[str]:
    opener, closer, inner = value[0], value[-1], value[1:-1]
    others = [v for v in pool if v[0] == opener and v[1:-1].casefold() != inner.casefold()]
    rng.shuffle(others)
    words = inner.split()
    if len(words) > 2:  # a phrase: drop or swap words
        mutations = [" ".join(words[:-1]), " ".join(words[1:]), " ".join([words[1], words[0]] + words[2:]),
                     " ".join(words[:-2] + [words[-1]])]
    else:
        mutations = [inner + "s", "default_" + inner, inner + "_old", inner[:-1] if len(inner) > 3 else inner + "2"]
    return others + [opener + word + closer for word in mutations]


def altered_values(fact: Fact, pool: Iterable[str], count: int, rng: random.Random) -> list[str]:
    """Up to `count` distinct values of the fact's type (and shape), none equal to the truth: numbers x2/+1/÷2
    with the same decimals and unit, versions with a bumped part, error codes of the same family (the pool's
    first, else ±1), identifiers and strings from the pool (else a plausible mutation)."""
    values = [v for v in dict.fromkeys(v.strip() for v in pool) if value_type_of(v) == fact.value_type]
    kind, truth = fact.value_type, fact.value
    if kind == "number":
        candidates = _number_variants(truth)
        rng.shuffle(candidates)
    elif kind == "version":
        candidates = _version_variants(truth)
        rng.shuffle(candidates)
    elif kind == "error_code":
        candidates = _error_code_variants(truth, values, rng)
    elif kind == "identifier":
        candidates = _identifier_variants(truth, values, rng)
    else:
        candidates = _string_variants(truth, values, rng)
    out: list[str] = []
    for candidate in candidates:
        if candidate != truth and candidate not in out and value_type_of(candidate) == kind:
            out.append(candidate)
        if len(out) == count:
            break
    return out


# ---------------------------------------------------------------- code tasks: documented signatures


def parse_signature(text: str) -> tuple[str, dict[str, object]] | None:
    """("RetryPolicy", {"max_attempts": 3, ...}) from "RetryPolicy(max_attempts=3, ...)": the literal defaults."""
    match = re.fullmatch(r"\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\((.*)\)\s*", text, re.DOTALL)
    if not match:
        return None
    try:
        arguments = ast.parse(f"def _signature({match.group(2)}): pass").body[0].args
    except SyntaxError:
        return None
    positional = arguments.posonlyargs + arguments.args
    pairs = list(zip(positional[len(positional) - len(arguments.defaults):], arguments.defaults))
    pairs += [(arg, default) for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults) if default is not None]
    defaults = {}
    for arg, node in pairs:
        try:
            value = ast.literal_eval(node)
        except ValueError:
            continue
        if value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and value):
            defaults[arg.arg] = value
    return match.group(1), defaults


def _literal_cell(raw: str) -> tuple[bool, object]:
    text = raw.strip().strip("`").strip()
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False, None
    ok = value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and value)
    return ok, value


def extract_signatures(slice_text: str) -> dict[str, dict[str, object]]:
    """Documented callables and their literal parameter defaults: signatures in ```python blocks and in
    headings (`Tide.run(...)`), and "Name | Default" tables under a class's "Constructor" heading."""
    signatures: dict[str, dict[str, object]] = {}

    def add(found: tuple[str, dict] | None) -> None:
        if found and found[1]:
            signatures.setdefault(found[0], {}).update(found[1])

    for block in markdown_blocks(slice_text):
        if block.kind == "code" and block.info in ("python", "py", "python3"):
            add(parse_signature(block.text))
        elif block.kind == "heading":
            match = re.fullmatch(r"\s*`([^`]+)`\s*", block.text)
            if match:
                add(parse_signature(match.group(1)))
        elif block.kind == "table" and block.headings:
            names = [clean_markdown(cell)[0].casefold() for cell in block.header]
            name_column = next((i for i, n in enumerate(names) if n in ("name", "parameter", "名称", "参数")), None)
            default_column = next((i for i, n in enumerate(names) if n in ("default", "默认值")), None)
            target = _table_target(block.headings)
            if name_column is None or default_column is None or not target:
                continue
            defaults = {}
            for row in block.rows:
                if max(name_column, default_column) < len(row):
                    name = clean_markdown(row[name_column])[0]
                    ok, value = _literal_cell(row[default_column])
                    if ok and IDENTIFIER.match(name):
                        defaults[name] = value
            add((target, defaults))
    return signatures


def _table_target(headings: tuple[tuple[int, str], ...]) -> str | None:
    """The callable a parameter table documents: a signature heading's, or the class above a Constructor heading."""
    title = headings[-1][1]
    match = re.fullmatch(r"\s*`([^`]+)`\s*", title)
    if match:
        found = parse_signature(match.group(1))
        return found[0] if found else None
    if clean_markdown(title)[0].casefold() in ("constructor", "构造函数") and len(headings) > 1:
        owner = clean_markdown(headings[-2][1])[0]
        return owner if IDENTIFIER.match(owner) and owner[:1].isupper() else None
    return None


# ---------------------------------------------------------------- prompts


_SOURCE_LINE = re.compile(r"^Source: (.*)$", re.MULTILINE)
_OTHER_HEADINGS = ("\nAnother part of the same documentation", "\n同一文档的另一部分")
_PASS = re.compile(r"This is pass (\d+)")
_PAIR_COUNT = re.compile(r"(\d+)\s*(?:question/answer pairs|pairs|组问答|个问答|对问答)", re.IGNORECASE)
_QUESTION_COUNT = re.compile(r"exactly (\d+) questions|恰好包含 (\d+) 道题")
_PROJECT = re.compile(r"(?:The project is called|项目名为)\s*[:：]\s*(.+)")
_IMPORT = re.compile(r"^\s*(?:from\s+([A-Za-z_]\w*)[\w.]*\s+import|import\s+([A-Za-z_]\w*))", re.MULTILINE)
_STDLIB = {"inspect", "os", "sys", "json", "re", "time", "typing", "pathlib", "random", "math", "asyncio", "dataclasses"}


@dataclass
class SliceInPrompt:
    source: str
    section: str
    text: str
    other: str  # the distractor excerpt of an mc request ("" if none)


def slice_in_prompt(prompt: str) -> SliceInPrompt | None:
    """The slice block of a prompt ("Source: ...\\nSection: ...\\n\\n<text>"), the distractor excerpt cut off."""
    match = _SOURCE_LINE.search(prompt)
    if not match:
        return None
    rest = prompt[match.end():]
    section = ""
    if rest.startswith("\nSection: "):
        line_end = rest.find("\n", 1)
        line_end = len(rest) if line_end < 0 else line_end
        section, rest = rest[len("\nSection: "): line_end].strip(), rest[line_end:]
    text, other = rest.strip("\n"), ""
    for heading in _OTHER_HEADINGS:
        at = rest.find(heading)
        if at >= 0:
            text = rest[:at].strip("\n")
            other = rest[at + len(heading):].split("\n", 1)[1].strip("\n") if "\n" in rest[at + len(heading):] else ""
            break
    return SliceInPrompt(match.group(1).strip(), section, text, other)


def is_answer_judge_request(info: RequestInfo) -> bool:
    """The exam-answer judge (train/evaluation.py): one user message with a reference and a model answer."""
    prompt = info.prompt
    return ("Reference answer:" in prompt and "Model answer:" in prompt) or ("参考答案" in prompt and "模型回答" in prompt)


_JUDGE_FIELDS = {
    "en": ("Question:", "\nReference answer:", "\nModel answer:", "\nReply with JSON only"),
    "zh": ("问题", "\n参考答案", "\n模型回答", "\n只输出 JSON"),
}


def parse_answer_judge(prompt: str) -> dict:
    """{evidence, question, reference, answer} of an exam-answer judge prompt (evidence "" when none was given)."""
    evidence, body = "", prompt
    for marker in ("Documentation excerpt", "文档节选"):
        at = prompt.find(marker)
        if at >= 0 and prompt.find("<<<\n", at) >= 0:
            start = prompt.find("<<<\n", at) + 4
            end = prompt.find("\n>>>", start)
            end = len(prompt) if end < 0 else end
            evidence, body = prompt[start:end], prompt[end + 4:]
            break
    lang = "en" if "Reference answer:" in body else "zh"
    question_mark, reference_mark, answer_mark, tail_mark = _JUDGE_FIELDS[lang]
    reference_at = body.find(reference_mark)
    question_at = body.rfind("\n" + question_mark, 0, reference_at)
    question_at = question_at + 1 if question_at >= 0 else max(body.find(question_mark), 0)
    answer_at = body.find(answer_mark, reference_at)
    tail_at = body.rfind(tail_mark)
    tail_at = len(body) if tail_at < answer_at else tail_at

    def field_text(start: int, mark: str, end: int) -> str:
        return body[start + len(mark): end].lstrip(":： ").strip()

    return {"evidence": evidence.strip(), "question": field_text(question_at, question_mark, reference_at),
            "reference": field_text(reference_at, reference_mark, answer_at),
            "answer": field_text(answer_at, answer_mark, tail_at)}


def _normalise(text: str) -> str:
    text = re.sub(r"[`*\"“”'‘’]", "", text.casefold())
    return re.sub(r"\s+", " ", text).strip().rstrip(".。")


def reference_keys(reference: str) -> tuple[bool, list[str]]:
    """(is code, the key values an answer must contain): for code, the names in its last print(...) (its string
    literals and the callable passed to signature(), or else its last name); for a short reference, its
    normalised text (a number with a unit: the number)."""
    lines = [line for line in reference.splitlines() if line.strip()]
    is_code = len(lines) > 1 or bool(re.match(r"^\s*(?:import |from \w|print\()", reference))
    if not is_code:
        key = _normalise(reference)
        number = NUMBER.match(key)
        return False, [number.group(2) if number else key]
    printed = next((line for line in reversed(lines) if "print(" in line), lines[-1])
    keys = re.findall(r"[\"']([^\"']+)[\"']", printed)
    keys += re.findall(r"signature\(([\w.]+)\)", printed)
    if not keys:
        names = re.findall(r"[A-Za-z_]\w*", printed.replace("print(", "", 1))
        keys = names[-1:]
    return True, keys


def _code_part(answer: str) -> str:
    fenced = re.findall(r"```[^\n]*\n(.*?)```", answer, re.DOTALL)
    if fenced:
        return "\n".join(fenced)
    return "\n".join(line for line in answer.splitlines()
                     if re.search(r"^\s*(?:import |from \w+ import|print\(|\w+\s*=)|\w\(.*\)", line))


def grade(reference: str, answer: str) -> tuple[int, str]:
    """10 when the answer holds the reference's key value(s) (inside code for a code reference), else 0."""
    is_code, keys = reference_keys(reference)
    if is_code:
        code = _code_part(answer)
        if not code.strip():
            return 0, "The answer holds no code."
        missing = [key for key in keys if key not in code]
        if missing:
            return 0, f"The code does not use {', '.join(missing)}."
        return 10, f"The code uses {', '.join(keys)} as the reference does."
    key = keys[0]
    pattern = re.compile(rf"(?<![A-Za-z0-9_.\-]){re.escape(key)}(?![A-Za-z0-9_]|\.\d)")
    if key and pattern.search(_normalise(answer)):
        return 10, f"The answer contains the reference value “{key}”."
    return 0, f"The answer lacks the reference value “{key}”."


# ---------------------------------------------------------------- wording

_NOUNS = {"en": {"version": "version", "error_code": "error code", "number": "value", "identifier": "name", "string": "string"},
          "zh": {"version": "版本号", "error_code": "错误码", "number": "数值", "identifier": "名称", "string": "字符串"}}
PAIR_LEAD_INS = {
    "en": ("In {project}, {cloze} — what goes in the blank?", "In {project}, which {noun} completes this: {cloze}",
           "According to the {project} documentation, what fills the blank in “{cloze}”?"),
    "zh": ("在 {project} 中,“{cloze}”空白处应填什么?", "在 {project} 中,哪个{noun}能补全这句话:{cloze}",
           "根据 {project} 的文档,“{cloze}”的空白处是什么?"),
}
MC_LEAD_INS = {
    "en": ("Fill in the blank: {cloze}", "According to the docs, which {noun} completes this: {cloze}",
           "Which value completes: {cloze}"),
    "zh": ("填空:{cloze}", "根据文档,哪个{noun}能补全这句话:{cloze}", "下面这句话的空白处应填什么:{cloze}"),
}
SHORT_LEAD_INS = {
    "en": ("What goes in the blank? {cloze}", "Give the missing {noun}: {cloze}", "Complete from the docs: {cloze}"),
    "zh": ("空白处是什么?{cloze}", "写出缺少的{noun}:{cloze}", "根据文档补全:{cloze}"),
}
RECOGNITION = {"en": "Which statement about {topic} is correct (on “{subject}”)?",
               "zh": "关于{topic}(“{subject}”),哪一项说法是正确的?"}
TF_PREFIXES = {"en": ("", "According to the docs, ", "The documentation says: "),
               "zh": ("", "根据文档,", "文档指出:")}
CODE_TASK = {"en": "Write code with the library that prints the default value of the `{param}` parameter of `{target}`.",
             "zh": "用这个库写代码,打印 `{target}` 的参数 `{param}` 的默认值。"}
VERSION_TASKS = {"en": ("Write code with the library that prints the library's version.",
                        "Write code with the library that prints the installed version of the library.",
                        "Write code with the library that prints its version string."),
                 "zh": ("用这个库写代码,打印库的版本号。", "用这个库写代码,打印已安装的库的版本。", "用这个库写代码,输出它的版本字符串。")}
SIGNATURE_FACT = {"en": "The default value of the {param} parameter of {target} is {value}.",
                  "zh": "{target} 的参数 {param} 的默认值是 {value}。"}
RECOGNITION_SHARE = 0.2  # about 1 in 5 mc questions asks which whole statement is correct
LEGACY_FALSE_SHARE = 2 / 3  # tf_style="legacy": an unbalanced writer, mostly false statements


def _subject(fact: Fact) -> str:
    """A few words around the blank, naming what the statement is about without giving the value away."""
    before, _, after = fact.cloze.partition(BLANK)
    words = before.split()[-5:] if len(before.split()) >= 2 else after.split()[:5]
    if fact.lang == "zh" and len(words) < 2:
        words = [(before[-12:] or after[:12]).strip()]
    return " ".join(words).strip(" ,;:—-。,:") or fact.section or fact.source


# ---------------------------------------------------------------- the responder


class FactResponder:
    """An OpenAITestServer responder that writes items and questions from the facts of each slice and records
    the truth behind every one (see the module docstring). Thread-safe; call it as `responder(info)`."""

    def __init__(self, seed: int = 0, lead_ins: dict[str, list[str]] | list[str] | None = None,
                 tf_style: str = "twins", label_prefix: bool | str = False, package: str = "tidewater",
                 docs: Path | str | None = None, project: str | None = None):
        if tf_style not in ("twins", "legacy"):
            raise ValueError("tf_style must be 'twins' or 'legacy'")
        self.seed = seed
        if isinstance(lead_ins, (list, tuple)):
            lead_ins = {"en": list(lead_ins), "zh": list(lead_ins)}
        self.lead_ins = {**{lang: list(v) for lang, v in MC_LEAD_INS.items()}, **(lead_ins or {})}
        self.tf_style = tf_style
        # True: "A. ", "B. ", ...; a string: a format with {letter} ("({letter}) ").
        self.label_prefix = "{letter}. " if label_prefix is True else (label_prefix or "")
        self.package = package  # imported by code references when the slice shows no import
        self.project = project  # named in pair questions when the prompt does not name it
        self.truth: dict[str, dict] = {}
        self.facts: dict[str, Fact] = {}
        self.pairs: list[tuple[str, str, str]] = []
        self.judge_requests: list[dict] = []
        self._pair_keys: set[tuple[str, str, str]] = set()
        self._slices: dict[tuple[str, str], str] = {}  # (source, section) -> the slice's text, whitespace collapsed
        self._lock = threading.Lock()
        self.docs_pool: list[str] = []
        if docs is not None:
            self.docs_pool = self._docs_values(Path(docs))

    @staticmethod
    def _docs_values(folder: Path) -> list[str]:
        """Every value of a doc set: distractors "seen in the docs" for any slice (fixed at construction)."""
        from tools.docs.docsets import slice_docset

        slices, _ = slice_docset(folder)
        return list(dict.fromkeys(value for piece in slices for value in slice_values(piece.text)))

    # ---- dispatch ----

    def __call__(self, info: RequestInfo) -> str:
        if is_judge_request(info):
            return json.dumps(make_judgement(info), ensure_ascii=False)
        if is_exam_request(info):
            return json.dumps({"questions": self.exam_questions(info)}, ensure_ascii=False)
        if is_answer_judge_request(info):
            return json.dumps(self.judge(info), ensure_ascii=False)
        if '"pairs"' in system_text(info) + info.prompt:
            return json.dumps({"pairs": self.training_pairs(info)}, ensure_ascii=False)
        return default_responder(info)

    def _rng(self, info: RequestInfo) -> random.Random:
        # The system message and the first user message: a correction round gets the same answer again.
        digest = hashlib.sha256(f"{self.seed}\x1f{system_text(info)}\x1f{info.prompt}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _read_slice(self, info: RequestInfo) -> tuple[SliceInPrompt | None, list[Fact], str]:
        found = slice_in_prompt(info.prompt)
        if found is None:
            return None, [], "en"
        facts = extract_facts(found.text, found.source, found.section)
        lang = "zh" if detect_language(found.text) == "zh" else "en"
        with self._lock:
            for fact in facts:
                self.facts.setdefault(fact.id, fact)
            self._slices[(found.source, found.section)] = re.sub(r"\s+", " ", found.text)
        return found, facts, lang

    def _pool(self, found: SliceInPrompt) -> list[str]:
        return list(dict.fromkeys(slice_values(found.text) + slice_values(found.other) + self.docs_pool))

    # ---- training pairs ----

    def training_pairs(self, info: RequestInfo) -> list[dict]:
        """N pairs: a cloze question on the next facts of the slice (pass R starts R-1 batches on, wrapping),
        the whole sentence as the answer."""
        found, facts, lang = self._read_slice(info)
        if not facts:
            return make_pairs(info)
        match = _PAIR_COUNT.search(system_text(info)) or _PAIR_COUNT.search(info.prompt)
        count = max(1, min(int(match.group(1)), 50)) if match else 3
        round_match = _PASS.search(system_text(info))
        start = (int(round_match.group(1)) - 1) * count if round_match else 0
        named = _PROJECT.search(info.prompt)
        project = (named.group(1).strip() if named else self.project) or ("该库" if lang == "zh" else "the library")
        pairs, seen = [], set()
        for index in range(count):
            fact = facts[(start + index) % len(facts)]
            for turn in range(len(PAIR_LEAD_INS[lang])):
                template = PAIR_LEAD_INS[lang][(start + index + turn) % len(PAIR_LEAD_INS[lang])]
                question = template.format(project=project, cloze=fact.cloze, noun=_NOUNS[lang][fact.value_type])
                if question not in seen:
                    break
            else:
                continue
            seen.add(question)
            pairs.append({"question": question, "answer": fact.text})
            with self._lock:
                key = (question, fact.text, fact.id)
                if key not in self._pair_keys:
                    self._pair_keys.add(key)
                    self.pairs.append(key)
        return pairs

    # ---- exam questions ----

    def exam_questions(self, info: RequestInfo) -> list[dict]:
        kind = exam_request_kind(info)
        match = _QUESTION_COUNT.search(system_text(info))
        count = max(1, min(int(match.group(1) or match.group(2)), MAX_QUESTIONS)) if match else 2
        if kind == "tool_call":  # the calls of the offered tools: the plain server's (make_exam_questions)
            return json.loads(default_responder(info))["questions"]
        found, facts, lang = self._read_slice(info)
        if found is None:
            return json.loads(default_responder(info))["questions"]
        rng = self._rng(info)
        if kind == "code":
            return self._code_questions(found, facts, lang, count, rng)
        if not facts:
            return json.loads(default_responder(info))["questions"]
        pool = self._pool(found)
        order = rng.sample(facts, len(facts))
        wordings = {fact.id: rng.randrange(len(MC_LEAD_INS["en"])) for fact in order}
        written: list[dict] = []
        seen: set[str] = set()
        for turn in range(3):  # a slice with fewer facts than asked: the facts again, other wordings
            for fact in order:
                if len(written) == count:
                    return written
                write = {"mc": self._mc, "tf": self._tf, "short": self._short}[kind]
                entry = write(fact, pool, lang, wordings[fact.id] + turn, turn, rng, seen)
                if entry is not None:
                    written.append(entry)
        return written

    def _record(self, question: str, fact: Fact, kind: str, answer, true: bool | None = None, **extra) -> None:
        with self._lock:
            self.facts.setdefault(fact.id, fact)
            self.truth[question] = {"kind": kind, "fact_id": fact.id, "value": fact.value,
                                    "value_type": fact.value_type, "true": true, "answer": answer,
                                    "slice_source": fact.source, "section": fact.section, **extra}

    def _mc(self, fact: Fact, pool, lang, wording, turn, rng, seen) -> dict | None:
        wrong = altered_values(fact, pool, 3, rng)
        if len(wrong) < 3:
            return None
        answer = rng.randrange(4)
        recognition = rng.random() < RECOGNITION_SHARE
        if recognition:
            topic = (fact.section.split(" -> ")[-1] if fact.section else fact.source) or fact.source
            question = RECOGNITION[lang].format(topic=topic, subject=_subject(fact))
            if turn:
                question = f"{TF_PREFIXES[lang][turn]}{question}"
            options = [fact.with_value(value) for value in wrong]
            options.insert(answer, fact.text)
        else:
            templates = self.lead_ins.get(lang) or self.lead_ins["en"]
            template = templates[wording % len(templates)]
            question = template.format(cloze=fact.cloze, noun=_NOUNS[lang][fact.value_type])
            options = list(wrong)
            options.insert(answer, fact.value)
        if question in seen or len(set(options)) != 4:
            return None
        seen.add(question)
        self._record(question, fact, "recognition" if recognition else "mc", options[answer], answer_index=answer,
                     options=list(options))
        if self.label_prefix:
            options = [self.label_prefix.format(letter="ABCD"[i]) + option for i, option in enumerate(options)]
        return {"question": question, "options": options, "answer": answer}

    def _tf(self, fact: Fact, pool, lang, wording, turn, rng, seen) -> dict | None:
        wrong = altered_values(fact, pool, 1, rng)
        if not wrong:
            return None
        prefix = TF_PREFIXES[lang][turn]
        statement, false_statement = prefix + fact.text, prefix + fact.with_value(wrong[0])
        if self.tf_style == "legacy":
            truth = rng.random() >= LEGACY_FALSE_SHARE
            question = statement if truth else false_statement
            if question in seen:
                return None
            seen.add(question)
            self._record(question, fact, "tf", truth, true=truth, altered=None if truth else wrong[0])
            return {"question": question, "answer": truth}
        if statement in seen or false_statement in seen:
            return None
        seen.update((statement, false_statement))
        self._record(statement, fact, "tf", True, true=True, twin=false_statement)
        self._record(false_statement, fact, "tf", False, true=False, twin=statement, altered=wrong[0])
        return {"statement": statement, "false_statement": false_statement}

    def _short(self, fact: Fact, pool, lang, wording, turn, rng, seen) -> dict | None:
        templates = SHORT_LEAD_INS[lang]
        question = templates[wording % len(templates)].format(
            cloze=fact.cloze, noun=_NOUNS[lang][fact.value_type])
        if question in seen:
            return None
        seen.add(question)
        self._record(question, fact, "short", fact.value)
        return {"question": question, "answer": fact.value}

    def _code_questions(self, found: SliceInPrompt, facts: list[Fact], lang: str, count: int,
                        rng: random.Random) -> list[dict]:
        """Tasks that print a documented parameter default (checked by running them), else the library's version."""
        imports = [a or b for a, b in _IMPORT.findall(found.text + "\n" + found.other) if (a or b) not in _STDLIB]
        package = imports[0] if imports else self.package
        tasks = [(target, param, value) for target, params in extract_signatures(found.text).items()
                 for param, value in params.items()]
        rng.shuffle(tasks)
        written: list[dict] = []
        for target, param, value in tasks[:count]:
            printed = str(value)  # what print() shows
            question = CODE_TASK[lang].format(param=param, target=target)
            owner = target.split(".")[0]
            reference = (f"import inspect\nfrom {package} import {owner}\n\n"
                         f"print(inspect.signature({target}).parameters[\"{param}\"].default)")
            fact = next((f for f in facts if f.value == printed and owner in f.text
                         and re.search(rf"\b{re.escape(param)}\b", f.text)), None)
            if fact is None:
                text = SIGNATURE_FACT[lang].format(param=param, target=target, value=printed)
                fact = make_fact(text, printed, value_type_of(printed) or "identifier", found.source, found.section, lang)
            self._record(question, fact, "code", reference, expected_output=printed, target=target, parameter=param)
            written.append({"question": question, "answer": reference})
        if len(written) < count:
            versions = Counter(v for v in slice_values(found.text) + self.docs_pool if value_type_of(v) == "version")
            current = versions.most_common(1)[0][0] if versions else None
            digest = int(hashlib.sha1(found.text.encode()).hexdigest(), 16)
            question = VERSION_TASKS[lang][digest % len(VERSION_TASKS[lang])]
            reference = f"import {package}\nprint({package}.__version__)"
            text = (f"The current version of {package} is {current}." if lang == "en" else f"{package} 的当前版本是 {current}。")
            fact = make_fact(text, current, "version", found.source, found.section, lang) if current else None
            with self._lock:
                if fact is not None:
                    self.facts.setdefault(fact.id, fact)
                self.truth[question] = {"kind": "code", "fact_id": fact.id if fact else None, "value": current,
                                        "value_type": "version", "true": None, "answer": reference,
                                        "slice_source": found.source, "section": found.section,
                                        "expected_output": current}
            written.append({"question": question, "answer": reference})
        return written

    # ---- judging exam answers ----

    def judge(self, info: RequestInfo) -> dict:
        parsed = parse_answer_judge(info.prompt)
        score, reason = grade(parsed["reference"], parsed["answer"])
        with self._lock:
            known = self.truth.get(parsed["question"])
            slice_text = self._slices.get((known["slice_source"], known["section"]), "") if known else ""
            self.judge_requests.append({"question": parsed["question"], "had_evidence": _evidence_from(parsed["evidence"], slice_text),
                                        "score": score, "known": known is not None})
        return {"score": score, "reason": reason}


def _evidence_from(evidence: str, slice_text: str) -> bool:
    """Whether the judge's evidence holds text of the question's slice (a line of it, whitespace aside)."""
    if not evidence or not slice_text:
        return False
    flat = re.sub(r"\s+", " ", evidence).strip()
    if flat and flat in slice_text:
        return True
    return any(len(line.strip()) >= 20 and re.sub(r"\s+", " ", line).strip() in slice_text for line in evidence.splitlines())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible test server that writes items and exams from the facts of the docs.")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each chat request waits before answering")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", default=None, help="a doc set folder whose values serve as distractors for every slice")
    parser.add_argument("--tf-style", choices=("twins", "legacy"), default="twins")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    args = parser.parse_args(argv)
    responder = FactResponder(seed=args.seed, docs=args.docs, tf_style=args.tf_style)
    server = OpenAITestServer(latency=args.latency, seed=args.seed, port=args.port, api_key=args.api_key, responder=responder)
    serve_until_interrupted(server, "Fact test server")


if __name__ == "__main__":
    main()
