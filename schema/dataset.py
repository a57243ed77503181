"""Dataset items: a conversation (list of messages) plus where it came from."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

from schema.tool_calls import TOOL_ROLE, answer_text, checked_tool_calls, checked_tools
from tools.core.errors import UserError

ROLES = ("system", "user", "assistant", "tool")


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    # OpenAI's fine-tuning format: an assistant turn with weight 0 is shown to the model but not
    # trained on (its tokens get no loss). Absent means trained, like 1.
    weight: Optional[Literal[0, 1]] = None
    tool_calls: Optional[list[dict]] = None  # an assistant turn's function calls (schema.tool_calls)
    tool_call_id: Optional[str] = None  # a tool result: the call it answers
    name: Optional[str] = None  # a tool result: the function's name, where the file gives it


class Provenance(BaseModel):
    """Where an item came from; every field optional so imported items fit too."""

    source_doc: Optional[str] = None
    heading_path: Optional[list[str]] = None
    provider: Optional[str] = None
    model: Optional[str] = None
    template_id: Optional[str] = None
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    origin: Optional[str] = None  # "generated", "imported:<file>", "edited"
    unit: Optional[str] = None  # generation unit key (slice id + round), used to resume runs
    variant: Optional[str] = None  # "question:k" (a phrasing) or "rendering:NAME" (tools.generation.variants)
    group: Optional[str] = None  # the phrasings of one question share it


class DatasetItem(BaseModel):
    id: str
    messages: list[Message]
    tools: Optional[list[dict]] = None  # the functions the model is shown (schema.tool_calls)
    provenance: Provenance = Field(default_factory=Provenance)


def phrasing_group(item: dict) -> str:
    """The group of an item's phrasings (tools.generation.variants): its provenance's `group`, else its own id
    (a question alone). The phrasings of one question are one fact asked several ways: a split keeps them together."""
    return (item.get("provenance") or {}).get("group") or str(item.get("id"))


def validate_messages(messages: Any, where: str = "item", field_name: str = "messages") -> list[dict]:
    """Check a conversation and return it as plain dicts; errors name the position and field (`field_name`:
    the file's own name for the list, e.g. "conversations").

    Shape required for training: an optional system message first, then user/assistant turns
    alternating, starting with user and ending with assistant, none empty. An assistant turn may call
    functions (`tool_calls`, schema.tool_calls): its content may then be empty, and the calls' results
    follow as `tool` messages, one per call, before the next assistant turn; a conversation may end on
    calls without results (the model is taught to call).
    """

    def fail(detail: str):
        raise UserError("error.invalid_messages", where=where, detail=detail)

    if not isinstance(messages, list) or not messages:
        fail(f"field '{field_name}' must be a non-empty list of {{role, content}} objects")
    clean: list[dict] = []
    call_numbers = iter(range(1, 1_000_000))
    for index, message in enumerate(messages):
        field = f"{field_name}[{index}]"
        if not isinstance(message, dict):
            fail(f"field '{field}' must be an object with 'role' and 'content'")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            fail(f"field '{field}.role' must be one of {', '.join(ROLES)} (got {role!r})")
        calls = message.get("tool_calls")
        if content is None and (calls or role == TOOL_ROLE):
            content = ""
        if not isinstance(content, str) or (not content.strip() and not calls and role != TOOL_ROLE):
            fail(f"field '{field}.content' must be a non-empty string")
        clean.append({"role": role, "content": content})
        if calls:
            if role != "assistant":
                fail(f"field '{field}.tool_calls' belongs on an assistant message (this one is {role!r})")
            clean[-1]["tool_calls"] = checked_tool_calls(calls, f"{field}.tool_calls", where,
                                                         lambda: f"call_{next(call_numbers)}")
        if role == TOOL_ROLE:
            for key in ("tool_call_id", "name"):
                if message.get(key) is not None:
                    if not isinstance(message[key], str) or not message[key].strip():
                        fail(f"field '{field}.{key}' must be a non-empty string")
                    clean[-1][key] = message[key]
        if "weight" in message:
            clean[-1]["weight"] = _checked_weight(message["weight"], role, field, where)
    offset = 1 if clean[0]["role"] == "system" else 0
    turns = clean[offset:]
    if not turns:
        fail("a conversation needs at least one user and one assistant message")
    expected, pending = "user", []  # pending: ids of the last assistant turn's calls not yet answered
    for index, message in enumerate(turns):
        position = index + offset
        role = message["role"]
        if pending:
            if role != TOOL_ROLE:
                fail(f"field '{field_name}[{position}].role' should be 'tool': call {pending[0]!r} has no result yet")
            call_id = message.get("tool_call_id") or pending[0]
            if call_id not in pending:
                fail(f"field '{field_name}[{position}].tool_call_id' {call_id!r} answers no call of the assistant turn before it")
            message["tool_call_id"] = call_id
            pending.remove(call_id)
            expected = "assistant" if not pending else TOOL_ROLE
            continue
        if role != expected:
            if role == TOOL_ROLE:
                fail(f"field '{field_name}[{position}].role' is 'tool', but no assistant call before it is waiting for a result")
            fail(f"field '{field_name}[{position}].role' should be '{expected}': turns must alternate user/assistant after an optional system message")
        if role == "assistant" and message.get("tool_calls"):
            pending = [call["id"] for call in message["tool_calls"]]
            if len(set(pending)) != len(pending):
                fail(f"field '{field_name}[{position}].tool_calls' uses one id twice")
            expected = TOOL_ROLE
        else:
            expected = "assistant" if role == "user" else "user"
    last = turns[-1]
    if last["role"] != "assistant":
        fail("the last message must be the assistant's answer" + (" (a tool result needs the assistant turn that reads it)"
                                                                 if last["role"] == TOOL_ROLE else ""))
    return clean


def validate_tools(record: Any, where: str = "item") -> dict:
    """The `tools` key of a stored or imported record, checked ({} when it has none): the functions the
    conversation's model is shown (schema.tool_calls)."""
    if not isinstance(record, dict) or record.get("tools") in (None, "", []):
        return {}
    return {"tools": checked_tools(record["tools"], where)}


def item_extras(record: Any, messages: list[dict], where: str = "item") -> dict:
    """What a stored item keeps beside its messages, checked: its `tools` and its preference keys."""
    return {**validate_tools(record, where), **validate_preference(record, messages, where)}


# ---------------------------------------------------------------- preference items
#
# A preference item is a dataset item with one more key beside `messages` (whose last assistant turn is the
# chosen answer, or the one judged answer):
#   "rejected": str  - the worse answer to the same conversation (a pair: DPO, ORPO; KTO takes both halves)
#   "label": bool    - an unpaired judgement of the last answer (KTO: desirable or not)
# Supervised tuning on such a dataset trains on the chosen answers and leaves label-false items out.
PREFERENCE_KEYS = ("rejected", "label")


def validate_preference(record: Any, messages: list[dict], where: str = "item") -> dict:
    """The preference keys of a stored or imported record, checked ({} for a plain item): at most one of
    `rejected` (a non-empty string unlike the chosen answer) and `label` (true or false)."""
    if not isinstance(record, dict):
        return {}
    given = {key: record[key] for key in PREFERENCE_KEYS if record.get(key) is not None}
    if not given:
        return {}
    if len(given) > 1:
        raise UserError("error.preference_both", where=where)
    if "label" in given:
        if not isinstance(given["label"], bool):
            raise UserError("error.preference_label", where=where, value=repr(given["label"]))
        return given
    rejected = given["rejected"]
    if not isinstance(rejected, str) or not rejected.strip():
        raise UserError("error.preference_rejected_empty", where=where)
    if rejected.strip() == messages[-1]["content"].strip():
        raise UserError("error.preference_same", where=where)
    return given


def preference_kind(items: list[dict]) -> str | None:
    """"pairs" when every item has a rejected answer, "labels" when every item has a rejected answer or a
    label (KTO), None for a dataset of plain items (or a mix with plain items: not a preference dataset)."""
    if not items:
        return None
    if all(item.get("rejected") for item in items):
        return "pairs"
    if all(item.get("rejected") or isinstance(item.get("label"), bool) for item in items):
        return "labels"
    return None


def _checked_weight(weight: Any, role: str, field: str, where: str) -> int:
    """An assistant turn's training weight, 0 or 1 (booleans are refused: JSON true is not OpenAI's 1)."""
    if role != "assistant":
        raise UserError("formats.weight_not_assistant", where=where, field=f"{field}.weight", role=role)
    if type(weight) is not int or weight not in (0, 1):
        raise UserError("formats.weight_value", where=where, field=f"{field}.weight", value=repr(weight))
    return weight


def trained_turn(message: dict) -> bool:
    """Whether training learns this message: an assistant turn not marked weight 0."""
    return message["role"] == "assistant" and message.get("weight", 1) != 0


def qa_messages(question: str, answer: str, system: str | None = None) -> list[dict]:
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def first_exchange(messages: list[dict]) -> tuple[str, str]:
    """The first question and answer of a conversation, for tables and previews."""
    question = next((m["content"] for m in messages if m["role"] == "user"), "")
    answer = next((answer_text(m) for m in messages if m["role"] == "assistant"), "")
    return question, answer


# ---------------------------------------------------------------- comparing questions


def normalize_question(text: str) -> str:
    """The form under which two questions count as the same: case, whitespace and punctuation
    (Chinese and fullwidth included) removed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return folded.translate(_DROPPED_FOR_COMPARISON)


class _DroppedCharacters(dict):
    """str.translate table: whitespace and punctuation map to None, anything else to itself.
    Filled per distinct character on first sight (a category lookup per character of every
    question was a measurable share of the generator's CPU; the full table costs 0.5 s to build)."""

    def __missing__(self, code: int):
        character = chr(code)
        value = None if character.isspace() or unicodedata.category(character).startswith("P") else code
        self[code] = value
        return value


_DROPPED_FOR_COMPARISON = _DroppedCharacters()
