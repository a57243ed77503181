"""Prompt templates: f-string templates that must hold {document_slice}; other variables become inputs.

Only plain `{name}` fields are allowed. Format specs, conversions and attribute/index access are
refused: `{document_slice:>1000000000}` would pad every slice to a gigabyte, and `{a.b}` / `{a[0]}`
reach into objects. A template is parsed here, by the standard library's parser, and rendered by
joining its pieces, so what validation sees is exactly what rendering does.

A template is also bounded: at most MAX_TEMPLATE_CHARS characters, each variable at most
MAX_VARIABLE_REPEATS times and MAX_PLACEHOLDERS placeholders in all. `{document_slice}` written
100,000 times in a 1.6 MB template once made every call send 100,000 copies of its slice.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from datetime import datetime, timezone
from typing import Callable, Optional

from pydantic import BaseModel, Field

from tools.core.errors import UserError

SLICE_VARIABLE = "document_slice"
# The built-in templates are under 700 characters with each variable once; these leave room for long
# instructions and few-shot examples, not for a slice copied into the prompt over and over.
MAX_TEMPLATE_CHARS = 50_000
MAX_VARIABLE_REPEATS = 4
MAX_PLACEHOLDERS = 40
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _placeholder(field: str, conversion: str | None, spec: str) -> str:
    """The field as the user wrote it, for messages."""
    return "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"


def parse_template(content: str) -> list[tuple[str, str | None]]:
    """The template as (literal text, variable or None) pieces; raises UserError naming what is refused."""
    try:
        parsed = list(string.Formatter().parse(content))
    except ValueError as exc:
        raise UserError("error.template_syntax", detail=str(exc)) from None
    pieces = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            pieces.append((literal, None))
            continue
        shown = _placeholder(field, conversion, spec or "")
        if "." in field or "[" in field:
            raise UserError("error.template_field_access", placeholder=shown)
        if not _IDENTIFIER.match(field):
            raise UserError("error.template_variable_name", name=field)
        if conversion:
            raise UserError("error.template_conversion", placeholder=shown, name=field)
        if spec:
            raise UserError("error.template_format_spec", placeholder=shown, name=field)
        pieces.append((literal, field))
    return pieces


def check_template_bounds(content: str) -> list[tuple[str, str | None]]:
    """`parse_template` of a template within the size and placeholder caps; raises UserError naming the cap
    (the length is checked before anything is parsed)."""
    if len(content) > MAX_TEMPLATE_CHARS:
        raise UserError("error.bounded_template_too_long", chars=len(content), limit=MAX_TEMPLATE_CHARS)
    pieces = parse_template(content)
    counts = Counter(field for _, field in pieces if field)
    name, repeats = counts.most_common(1)[0] if counts else ("", 0)
    if repeats > MAX_VARIABLE_REPEATS:
        raise UserError("error.bounded_variable_repeated", name=name, count=repeats, limit=MAX_VARIABLE_REPEATS)
    total = sum(counts.values())
    if total > MAX_PLACEHOLDERS:
        raise UserError("error.bounded_too_many_placeholders", count=total, limit=MAX_PLACEHOLDERS)
    return pieces


def template_variables(content: str) -> list[str]:
    """All variables of a template, in order of first appearance; raises UserError on a malformed one."""
    return list(dict.fromkeys(field for _, field in parse_template(content) if field))


def user_variables(content: str) -> list[str]:
    """The variables a user fills in: everything except {document_slice}."""
    return [v for v in template_variables(content) if v != SLICE_VARIABLE]


def validate_template_content(content: str) -> str:
    """The one check of a generation template (the page, the store, a run): not empty, within the caps,
    holding {document_slice}."""
    if not content or not content.strip():
        raise UserError("error.field_required", field="content")
    pieces = check_template_bounds(content)
    if not any(field == SLICE_VARIABLE for _, field in pieces):
        raise UserError("error.template_missing_slice")
    return content


def template_renderer(content: str, variables: dict[str, str] | None = None) -> Callable[[str], str]:
    """Validate and parse a template once; the returned function fills in one document slice.
    (A generation run renders thousands of slices.) Missing user variables render as empty strings
    rather than failing mid-run."""
    validate_template_content(content)
    pieces = parse_template(content)
    values = {name: "" for name in user_variables(content)}
    values.update({k: str(v) for k, v in (variables or {}).items() if k in values})

    def render(document_slice: str) -> str:
        filled = {**values, SLICE_VARIABLE: document_slice}
        return "".join(literal + filled[field] if field else literal for literal, field in pieces)

    return render


def render_template(content: str, document_slice: str, variables: dict[str, str] | None = None) -> str:
    """Fill a template with one slice (see template_renderer)."""
    return template_renderer(content, variables)(document_slice)


class PromptTemplateRecord(BaseModel):
    """One stored template."""

    id: Optional[int] = None
    name: str
    description: str = ""
    content: str
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def variables(self) -> list[str]:
        return user_variables(self.content)
