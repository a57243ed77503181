"""The functions a doc set shows the signature of, read without an LLM: what a tool call may call and with
which arguments, and the OpenAI tool definition each one makes.

Where a signature counts as shown (strongest first; a name shown in several places keeps the strongest,
the first in doc order among equals):
  3. a `def` (or JavaScript `function`) in a code block — a method inside `class X:` is `X.method`,
     `__init__` is the class itself, `self`/`cls` dropped — and a code block that holds nothing but
     signature lines (`Tide(name, stages=None, *, fail_fast=True)`, several lines or several signatures);
  2. a heading that is a signature (`#### Tide.run(inputs=None, *, max_workers=4)`), or a code span in a
     heading that is one with parameters;
  1. a code span in prose that is a signature with parameters (`tidewater.configure(path)`).
A line inside a code block among other statements is an example call, not a signature, and so is a
decorator line (`@stage(map=True)`) and a prose mention with empty parentheses (`Tide.run()`), which
says "this is a function", not "it takes no arguments". Parameters are read with Python's own parser
(`def _(<parameters>): pass`), so a call with literal arguments (`Tide("orders")`) is never taken for a
signature; TypeScript-style parameters (`b?: string`, `...rest`) are read when Python's parser refuses.
A Markdown table after a signature whose first column names its parameters (| Name | Type | ... |)
supplies their types and descriptions where the signature has none.

Time is linear in the doc set's size: every candidate's parenthesis scan stops at MAX_SIGNATURE_CHARS.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from dataclasses import dataclass
from typing import Iterable

from schema.document import DocumentSlice
from tools.core.i18n import t

MAX_SIGNATURE_CHARS = 2000  # a longer parameter list is not a signature a reader is shown
MAX_DESCRIPTION_CHARS = 300
DESCRIPTION_LOOKBACK = 200  # at most this many blocks are searched around a signature for its description and table
NAME = r"[A-Za-z_$][\w$]*"
DOTTED = rf"{NAME}(?:\.{NAME})*"
# Where a signature may start in a code line: def/function/class NAME( or a (dotted) NAME( at the start.
DEFINITION = re.compile(rf"^(?P<indent>[ \t]*)(?:async[ \t]+)?(?P<keyword>def|function)[ \t]+(?P<name>{NAME})[ \t]*\(")
CLASS = re.compile(rf"^(?P<indent>[ \t]*)class[ \t]+(?P<name>{NAME})\b")
# No space before "(": "Examples (advanced)" is a heading with a remark, not a signature.
SIGNATURE_START = re.compile(rf"^[ \t]*(?P<name>{DOTTED})\(")
FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([\w+#.-]*)")
HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
TABLE_ROW = re.compile(r"^[ \t]*\|(.*)\|[ \t]*$")
TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t:|-]+\|?[ \t]*$")
# What may follow a signature's closing parenthesis: a return annotation, a colon, a semicolon, a comment.
SIGNATURE_TAIL = re.compile(r"^\s*(?:(?:->|:)\s*[^#]*?)?\s*[:;]?\s*(?:(?:#|//).*)?$")
COMMENT_LINE = re.compile(r"^\s*(?:#|//)")
JS_PARAMETER = re.compile(rf"^(?P<rest>\.\.\.)?(?P<name>{NAME})(?P<optional>\?)?\s*(?::\s*(?P<type>[^=]+?))?\s*(?:=\s*(?P<default>.+))?$")
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
# Column titles of a parameter table, per column, as docs write them (lower-cased, English and Chinese).
NAME_COLUMNS = ("name", "parameter", "param", "argument", "arg", "参数", "名称", "参数名")
TYPE_COLUMNS = ("type", "类型")
DESCRIPTION_COLUMNS = ("description", "meaning", "说明", "描述", "含义")
# JSON-schema types of the annotations whose meaning is clear (the base name, lower-cased).
JSON_TYPES = {
    "int": "integer", "integer": "integer",
    "float": "number", "number": "number", "double": "number",
    "str": "string", "string": "string",
    "bool": "boolean", "boolean": "boolean",
    "list": "array", "tuple": "array", "set": "array", "frozenset": "array", "sequence": "array",
    "iterable": "array", "array": "array",
    "dict": "object", "mapping": "object", "object": "object", "record": "object",
}
NONE_TYPES = frozenset({"none", "null", "undefined", "nonetype"})


@dataclass(frozen=True)
class Parameter:
    name: str
    required: bool
    annotation: str | None
    default: str | None  # the default's source text, as the docs write it
    description: str = ""  # from a parameter table beside the signature


@dataclass(frozen=True)
class DocumentedFunction:
    name: str  # as the docs write it: "Tide.run", "tidewater.configure"
    parameters: tuple[Parameter, ...]
    description: str
    slice_id: str | None
    accepts_any_keyword: bool  # a **kwargs: any argument name is accepted
    strength: int = 1  # 3 definition or signature block, 2 heading, 1 prose code span (see the module doc)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(parameter.name for parameter in self.parameters)


@dataclass(frozen=True)
class ArgumentProblem:
    kind: str  # "unknown" or "missing"
    argument: str


# ------------------------------------------------------------------ reading signatures


def _closing_paren(text: str, opening: int) -> int:
    """Index of the parenthesis closing text[opening] ("(" ), skipping strings and nested brackets; -1 when
    there is none within MAX_SIGNATURE_CHARS."""
    depth = 0
    quote = ""
    end = min(len(text), opening + MAX_SIGNATURE_CHARS)
    index = opening
    while index < end:
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index if char == ")" else -1
        index += 1
    return -1


def _python_parameters(source: str, drop_first: bool) -> tuple[tuple[Parameter, ...], bool] | None:
    """(parameters, has **kwargs) of a Python parameter list, or None when it is not one."""
    try:
        tree = ast.parse(f"def _({source}\n): pass")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    arguments = tree.body[0].args
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    pairs = list(zip(positional, defaults)) + list(zip(arguments.kwonlyargs, arguments.kw_defaults))
    if drop_first and pairs and pairs[0][0].arg in ("self", "cls"):
        pairs = pairs[1:]
    parameters = tuple(
        Parameter(name=argument.arg, required=default is None,
                  annotation=ast.unparse(argument.annotation) if argument.annotation is not None else None,
                  default=ast.unparse(default) if default is not None else None)
        for argument, default in pairs)
    return parameters, arguments.kwarg is not None


def _split_top_level(source: str) -> list[str]:
    """The comma-separated parts of a parameter list, commas inside brackets and strings left alone."""
    parts, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(source):
        if quote:
            if char == quote and source[index - 1] != "\\":
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{<":
            depth += 1
        elif char in ")]}>" and not (char == ">" and source[index - 1] == "="):
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(source[start:index])
            start = index + 1
    parts.append(source[start:])
    return [part.strip() for part in parts if part.strip()]


def _script_parameters(source: str) -> tuple[tuple[Parameter, ...], bool] | None:
    """Parameters written the JavaScript/TypeScript way (`a`, `b?: string`, `c = 1`, `...rest`), or None."""
    parameters = []
    for part in _split_top_level(source):
        match = JS_PARAMETER.match(part)
        if match is None:
            return None
        if match.group("rest"):
            continue  # a rest parameter takes positional values, not named arguments
        default = match.group("default")
        parameters.append(Parameter(name=match.group("name"), required=not (default or match.group("optional")),
                                    annotation=(match.group("type") or "").strip() or None,
                                    default=default.strip() if default else None))
    return tuple(parameters), False


def _parameters(source: str, drop_first: bool = False) -> tuple[tuple[Parameter, ...], bool] | None:
    parsed = _python_parameters(source, drop_first)
    return parsed if parsed is not None else _script_parameters(source)


@dataclass
class _Found:
    name: str
    parameters: tuple[Parameter, ...]
    accepts_any_keyword: bool
    strength: int
    element: int  # index of the block element it was found in (for its description and table)


def _signature_at(text: str, start: int, name_end: int) -> tuple[str, int] | None:
    """(parameter source, index after ')') of the signature whose '(' is the first one at or after name_end."""
    opening = text.find("(", name_end)
    if opening < 0:
        return None
    closing = _closing_paren(text, opening)
    if closing < 0:
        return None
    return text[opening + 1:closing], closing + 1


def _whole_signature(text: str) -> tuple[str, tuple[Parameter, ...], bool] | None:
    """(name, parameters, **kwargs) when the whole text is one signature (with an optional return annotation)."""
    match = SIGNATURE_START.match(text)
    if match is None:
        return None
    found = _signature_at(text, match.start(), match.end() - 1)
    if found is None or not SIGNATURE_TAIL.match(text[found[1]:]):
        return None
    parsed = _parameters(found[0], drop_first="." in match.group("name"))
    if parsed is None:
        return None
    return match.group("name"), parsed[0], parsed[1]


def _is_stub(code: str, header_end: int, indent: int, keyword: str) -> bool:
    """Whether a definition shows only its signature: no body, or a body of a docstring, `...` or `pass`
    (Python); nothing or `{}` / `;` after it (JavaScript). A definition with a working body is example code
    (a user's stage function in a tutorial), not the library's API."""
    rest = code[header_end:]
    if keyword == "function":
        rest = re.sub(r"^[ \t]*:[^{;\n]*", "", rest).lstrip()
        return not rest.startswith("{") or rest.startswith("{}")
    line_end = rest.find("\n")
    same_line = rest if line_end < 0 else rest[:line_end]
    tail = same_line.split(":", 1)[1] if ":" in same_line else ""
    body = [tail.strip()] if tail.strip() and not tail.strip().startswith("#") else []
    if line_end >= 0:
        for line in rest[line_end + 1:].split("\n"):
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            body.append(line)
    source = "\n".join(body).strip()
    if not source:
        return True
    try:
        statements = ast.parse(textwrap.dedent("\n".join(body)).strip()).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return all(isinstance(statement, ast.Pass) or (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
               for statement in statements)


def _definitions(code: str, element: int) -> list[_Found]:
    """Every def/function in a code block that shows only its signature (see _is_stub); methods are
    named Class.method, __init__ is the class itself."""
    found = []
    classes: list[tuple[int, str]] = []  # (indent, name) of the enclosing class blocks
    lines = code.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        while classes and indent <= classes[-1][0]:
            classes.pop()
        class_match = CLASS.match(line)
        if class_match:
            classes.append((indent, class_match.group("name")))
            continue
        match = DEFINITION.match(line)
        if match is None:
            continue
        signature = _signature_at(code, offsets[number], offsets[number] + match.end() - 1)
        if signature is None or not _is_stub(code, signature[1], indent, match.group("keyword")):
            continue
        owner = classes[-1][1] if classes and match.group("keyword") == "def" else None
        parsed = _parameters(signature[0], drop_first=owner is not None)
        name = match.group("name")
        if parsed is None or (name.startswith("__") and name != "__init__"):
            continue
        if owner is not None:
            name = owner if name == "__init__" else f"{owner}.{name}"
        elif name == "__init__":
            continue
        found.append(_Found(name, parsed[0], parsed[1], 3, element))
    return found


def _signature_block(code: str, element: int) -> list[_Found]:
    """The signatures of a block that holds nothing else (comments and blank lines aside); [] otherwise."""
    found = []
    position = 0
    while position < len(code):
        line_end = code.find("\n", position)
        line_end = len(code) if line_end < 0 else line_end
        line = code[position:line_end]
        if not line.strip() or COMMENT_LINE.match(line):
            position = line_end + 1
            continue
        match = SIGNATURE_START.match(line)
        if match is None:
            return []
        signature = _signature_at(code, position, position + match.end() - 1)
        if signature is None:
            return []
        tail_end = code.find("\n", signature[1])
        tail_end = len(code) if tail_end < 0 else tail_end
        if not SIGNATURE_TAIL.match(code[signature[1]:tail_end]):
            return []
        parsed = _parameters(signature[0], drop_first="." in match.group("name"))
        if parsed is None:
            return []
        found.append(_Found(match.group("name"), parsed[0], parsed[1], 3, element))
        position = tail_end + 1
    return found


# ------------------------------------------------------------------ a slice's blocks


@dataclass
class _Element:
    kind: str  # "heading", "code", "paragraph", "table"
    text: str
    slice_id: str
    rows: list[list[str]] | None = None
    level: int = 0  # a heading's level (1 for #)


def _elements(text: str, slice_id: str, elements: list[_Element]) -> None:
    """Append the slice's headings, code blocks, paragraphs and tables to `elements`, in order (a small line
    scanner: enough for finding signatures, not a Markdown parser)."""
    lines = text.split("\n")
    index = 0
    paragraph: list[str] = []

    def flush():
        if paragraph:
            elements.append(_Element("paragraph", " ".join(line.strip() for line in paragraph), slice_id))
            paragraph.clear()

    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(1)
            body = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(marker):
                body.append(lines[index])
                index += 1
            elements.append(_Element("code", "\n".join(body), slice_id))
            index += 1
            continue
        heading = HEADING.match(line)
        if heading:
            flush()
            elements.append(_Element("heading", heading.group(2).strip(), slice_id, level=len(heading.group(1))))
        elif TABLE_ROW.match(line):
            flush()
            rows = []
            while index < len(lines) and TABLE_ROW.match(lines[index]):
                if not TABLE_RULE.match(lines[index]):
                    cells = re.split(r"(?<!\\)\|", TABLE_ROW.match(lines[index]).group(1))
                    rows.append([cell.strip().replace("\\|", "|") for cell in cells])
                index += 1
            elements.append(_Element("table", "", slice_id, rows))
            continue
        elif not line.strip():
            flush()
        else:
            paragraph.append(line)
        index += 1
    flush()


def _found_in(elements: list[_Element]) -> list[_Found]:
    found: list[_Found] = []
    for position, element in enumerate(elements):
        if element.kind == "code":
            found.extend(_definitions(element.text, position))
            if "(" in element.text:
                found.extend(_signature_block(element.text, position))
        elif element.kind == "heading":
            whole = _whole_signature(element.text.replace("`", ""))
            if whole is not None:
                found.append(_Found(whole[0], whole[1], whole[2], 2, position))
                continue
            for span in INLINE_CODE.findall(element.text):
                whole = _whole_signature(span)
                if whole is not None and whole[1]:
                    found.append(_Found(whole[0], whole[1], whole[2], 2, position))
        elif element.kind == "paragraph" and "`" in element.text:
            for span in INLINE_CODE.findall(element.text):
                whole = _whole_signature(span)
                if whole is not None and whole[1] and not span.lstrip().startswith("@"):
                    found.append(_Found(whole[0], whole[1], whole[2], 1, position))
    return found


def _short(text: str) -> str:
    """A paragraph as a tool description: no code backticks, the first two sentences, at most
    MAX_DESCRIPTION_CHARS characters."""
    text = " ".join(text.replace("`", "").split())
    text = " ".join(SENTENCE_END.split(text)[:2])
    if text.endswith(":"):  # "..., so calls can be chained:" introduced an example that is not here
        text = text[:-1].rstrip() + "."
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[:MAX_DESCRIPTION_CHARS - 1].rstrip() + "…"
    return text


def _description(elements: list[_Element], found: _Found) -> str:
    """What the function is, in the docs' words. A heading's signature: the paragraph after it. A code
    block's: the nearest paragraph before it that names the function (`A Stage wraps ...` above
    `### Constructor`), else the paragraph before it in its section, else the one after it."""
    last = found.name.rsplit(".", 1)[-1]
    after = ""
    for element in _following(elements, found.element):
        if element.kind == "heading" or element.kind == "code" and _found_in_code(element.text):
            break
        if element.kind == "paragraph":
            after = element.text
            break
    if elements[found.element].kind == "heading":
        return _short(after)
    if elements[found.element].kind == "paragraph":
        return _short(elements[found.element].text)
    before = ""
    in_section = True
    section_level = None  # the level of the signature's own heading: the search ends at its parent's
    for element in reversed(elements[max(0, found.element - DESCRIPTION_LOOKBACK):found.element]):
        if element.kind == "heading":
            in_section = False
            if section_level is None:
                section_level = element.level
            elif element.level < section_level:  # the parent's heading: what lies before it is not about this
                break
        elif element.kind == "paragraph":
            if _mentions(element.text, last):
                return _short(element.text)
            if in_section and not before:
                before = element.text
    return _short(before or after)


def _following(elements: list[_Element], index: int):
    """The blocks after elements[index], at most DESCRIPTION_LOOKBACK of them (a scan for a signature's
    paragraph or table stops there: a doc without headings must not make every scan run to its end)."""
    for position in range(index + 1, min(len(elements), index + 1 + DESCRIPTION_LOOKBACK)):
        yield elements[position]


def _mentions(text: str, name: str) -> bool:
    """Whether `name` occurs in `text` as a word of its own (not inside a longer identifier or dotted path)."""
    start = text.find(name)
    while start >= 0:
        end = start + len(name)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before in "_.") and not (after.isalnum() or after == "_"):
            return True
        start = text.find(name, start + 1)
    return False


def _found_in_code(code: str) -> bool:
    return bool(SIGNATURE_START.match(code.lstrip()) or DEFINITION.search(code))


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for index, title in enumerate(header):
        if title.strip().strip("*").lower() in names:
            return index
    return None


def _with_table(elements: list[_Element], found: _Found) -> tuple[Parameter, ...]:
    """The parameters with the types and descriptions of the parameter table that follows the signature
    (before the next heading), where they lack them."""
    table = None
    for element in _following(elements, found.element):
        if element.kind == "heading":
            break
        if element.kind == "table" and element.rows:
            table = element.rows
            break
    if table is None or len(table) < 2:
        return found.parameters
    name_column = _column(table[0], NAME_COLUMNS)
    if name_column is None:
        return found.parameters
    type_column = _column(table[0], TYPE_COLUMNS)
    description_column = _column(table[0], DESCRIPTION_COLUMNS)
    rows = {}
    for row in table[1:]:
        if name_column < len(row):
            rows.setdefault(row[name_column].replace("`", "").strip(), row)
    parameters = []
    for parameter in found.parameters:
        row = rows.get(parameter.name)
        if row is None:
            parameters.append(parameter)
            continue
        annotation = parameter.annotation
        if annotation is None and type_column is not None and type_column < len(row):
            annotation = row[type_column].replace("`", "").strip() or None
        description = parameter.description
        if not description and description_column is not None and description_column < len(row):
            description = _short(row[description_column])
        parameters.append(Parameter(parameter.name, parameter.required, annotation, parameter.default, description))
    return tuple(parameters)


def documented_functions(slices: Iterable[DocumentSlice]) -> dict[str, DocumentedFunction]:
    """Every function whose signature the doc set shows, by its name as the docs write it (see the module
    doc for what counts and which showing wins). The slices of one file are read as one text, so a
    signature's description and parameter table are found across a slice boundary. Deterministic: the
    slices' order decides among equals; sorted by name."""
    documents: dict[str, list[DocumentSlice]] = {}
    for piece in slices:
        documents.setdefault(piece.source, []).append(piece)
    functions: dict[str, DocumentedFunction] = {}
    for pieces in documents.values():
        if not any("(" in piece.text for piece in pieces):
            continue
        elements: list[_Element] = []
        for piece in pieces:
            _elements(piece.text, piece.slice_id, elements)
        for found in _found_in(elements):
            known = functions.get(found.name)
            if known is not None and known.strength >= found.strength:
                continue
            functions[found.name] = DocumentedFunction(
                name=found.name, parameters=_with_table(elements, found), description=_description(elements, found),
                slice_id=elements[found.element].slice_id, accepts_any_keyword=found.accepts_any_keyword,
                strength=found.strength)
    return dict(sorted(functions.items()))


# ------------------------------------------------------------------ using them


def _normal(name: str) -> str:
    return re.sub(r"[.\-:]", "_", name).lower()


def find_documented(functions: dict[str, DocumentedFunction], name: str) -> DocumentedFunction | None:
    """The documented function a call's name means: the same name; else the only one that is the same but
    for case and `.`/`_`/`-` (`tide_run` for `Tide.run`, a tool name cannot hold a dot in OpenAI's API);
    else the only one the name ends with as a dotted path (`tidewater.Tide` for `Tide`) or whose last part
    it is (`run` for `Tide.run`). None when there is none or it is ambiguous."""
    if name in functions:
        return functions[name]
    for matches in (
        [function for key, function in functions.items() if _normal(key) == _normal(name)],
        [function for key, function in functions.items() if name.endswith("." + key)],
        [function for key, function in functions.items() if key.rsplit(".", 1)[-1] == name],
    ):
        if len(matches) == 1:
            return matches[0]
    return None


def _json_type(annotation: str | None):
    """The JSON-schema type of an annotation whose meaning is clear ("int | None" -> "integer", "list[str]"
    -> "array", "int | str" -> ["integer", "string"]); None when it is not (Any, a class, a callable)."""
    if not annotation:
        return None
    text = annotation.strip().replace("typing.", "")
    optional = re.fullmatch(r"Optional\[(.*)\]", text)
    if optional:
        text = optional.group(1)
    union = re.fullmatch(r"Union\[(.*)\]", text)
    members = _split_top_level(union.group(1)) if union else [part.strip() for part in _split_union(text)]
    types = []
    for member in members:
        base = re.split(r"[\[<(]", member, 1)[0].strip().strip("'\"").lower()
        if base in NONE_TYPES:
            continue
        kind = "array" if member.endswith("[]") else JSON_TYPES.get(base)
        if kind is None:
            return None
        if kind not in types:
            types.append(kind)
    if "number" in types and "integer" in types:
        types.remove("integer")
    if not types:
        return None
    return types[0] if len(types) == 1 else types


def _split_union(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "[(<{":
            depth += 1
        elif char in "])>}":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _json_default(default: str | None):
    """(True, value) when the default's source is a JSON-able literal ("None" -> null), else (False, None)."""
    if default is None:
        return False, None
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = {"null": None, "true": True, "false": False, "undefined": None}.get(default, ...)
        if value is ...:
            return False, None
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False, None
    return True, list(value) if isinstance(value, tuple) else value


def tool_definition(function: DocumentedFunction) -> dict:
    """The OpenAI tool of a documented function: {"type": "function", "function": {"name", "description",
    "parameters": a JSON schema with a property per parameter (its type where the annotation is clear,
    its description, its default) and the required ones}}."""
    properties = {}
    for parameter in function.parameters:
        schema: dict = {}
        kind = _json_type(parameter.annotation)
        if kind is not None:
            schema["type"] = kind
        if parameter.description:
            schema["description"] = parameter.description
        has_default, value = _json_default(parameter.default)
        if has_default:
            schema["default"] = value
        properties[parameter.name] = schema
    parameters: dict = {"type": "object", "properties": properties,
                        "required": [parameter.name for parameter in function.parameters if parameter.required]}
    definition: dict = {"name": function.name}
    if function.description:
        definition["description"] = function.description
    definition["parameters"] = parameters
    return {"type": "function", "function": definition}


def argument_problems(function: DocumentedFunction, arguments: dict) -> list[ArgumentProblem]:
    """Arguments a call gives that the signature does not take (unless it has **kwargs), then required
    parameters it leaves out, each in order."""
    names = set(function.parameter_names)
    problems = [] if function.accepts_any_keyword else [
        ArgumentProblem("unknown", argument) for argument in arguments if argument not in names]
    problems += [ArgumentProblem("missing", parameter.name) for parameter in function.parameters
                 if parameter.required and parameter.name not in arguments]
    return problems


def check_arguments(function: DocumentedFunction, arguments: dict, lang: str | None = None) -> list[str]:
    """argument_problems as sentences for a person, in `lang` (default: the process language)."""
    key = {"unknown": "tool_calls.argument_unknown", "missing": "tool_calls.argument_missing"}
    signature = f"{function.name}({', '.join(function.parameter_names)})"
    return [t(key[problem.kind], lang, argument=problem.argument, function=function.name, signature=signature)
            for problem in argument_problems(function, arguments)]
