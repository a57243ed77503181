"""Reading a model's reply: the text of a chat completion body, and the JSON value in it, repaired the way
every LLM run needs (generation, exam creation, the judges). The caller checks the value's shape."""

from __future__ import annotations

import json
import re
from typing import Any

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCED = re.compile(r"```[\w-]*[ \t]*\n(.*?)\n?```", re.DOTALL)


class OutputError(Exception):
    """A reply that holds nothing usable; `reason` is a short code, `detail` is shown to the model and user."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def reply_content(response: Any) -> str | None:
    """The first choice's message text of a chat completion body; None when there is none."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None


def without_reasoning(content: str | None) -> str:
    """The reply without its <think> blocks, stripped; "" when a think block is left open (the model ran
    out of tokens while reasoning: nothing after it is an answer)."""
    text = _THINK_BLOCK.sub("", content or "")
    if "<think>" in text.lower():
        return ""
    return text.strip()


def json_from_reply(content: str | None) -> Any:
    """The JSON value of a model reply: <think> blocks, code fences and prose around the JSON are dropped;
    OutputError (empty_output, invalid_json) otherwise. The caller checks the shape."""
    text = without_reasoning(content)
    if not text:
        raise OutputError("empty_output", "the reply was empty")
    fenced = _FENCED.search(text)
    if fenced:
        text = fenced.group(1).strip()
    return _loads_json(text)


def _loads_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as first_error:
        # Prose around the JSON ("Here are the pairs: {...}"): try the outermost brackets.
        for opener, closer in (("{", "}"), ("[", "]")):
            start, end = text.find(opener), text.rfind(closer)
            if 0 <= start < end:
                try:
                    return json.loads(text[start : end + 1])
                except json.JSONDecodeError:
                    continue
        raise OutputError("invalid_json", f"not valid JSON ({first_error.msg} at line {first_error.lineno} column {first_error.colno})") from None
