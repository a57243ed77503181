"""Chat templates: the named ones used when a tokenizer has none (and the tiny model's), what a template
does with tool calls (does it render them at all, and how it writes a call), and reading calls back from
generated text.

Tool support is judged by what a template renders, never by its source text: a probe conversation with
one listed tool and a call of another function is rendered, and both names must appear. How a template
writes a call is then looked up in TOOL_CALL_FORMATS, a table keyed by what the rendering holds (Qwen2.5,
Qwen3 and Hermes write <tool_call>{"name", "arguments"}</tool_call>, Mistral [TOOL_CALLS][...], Llama 3.1
a bare {"name", "parameters"} object); the same row reads the model's calls back out of its answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from tools.core.errors import UserError

# ChatML, as used by Qwen. The {% generation %} markers let transformers return an assistant-token
# mask (return_assistant_tokens_mask); our own masking does not depend on them.
CHATML = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{- message['content'] + '<|im_end|>' -}}{% endgeneration %}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# ChatML with tool calls, written for the tiny model (our own wording, in the layout Qwen2.5 and Hermes
# models are trained on). A conversation without tools, calls or tool results renders exactly as CHATML
# does. With `tools`, a system turn lists them (after the conversation's own system text) and says how to
# call; an assistant turn writes each call as <tool_call>{"name", "arguments"}</tool_call> after its text;
# consecutive tool results share one user turn, each in <tool_response>.
CHATML_TOOLS = (
    "{%- if tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if messages and messages[0]['role'] == 'system' -%}{{- messages[0]['content'] + '\\n\\n' -}}{%- endif -%}"
    "{{- '# Tools\\n\\nThese functions can be called; each line inside <tools> is one of them, in JSON:\\n<tools>' -}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- '\\n</tools>\\n\\nTo call one, write its name and its arguments as one JSON object between <tool_call> and </tool_call>:\\n"
    "<tool_call>\\n{\"name\": <the function name>, \"arguments\": <a JSON object>}\\n</tool_call><|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' and tools and loop.first -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{% generation %}"
    "{{- message['content'] or '' -}}"
    "{%- for call in message['tool_calls'] or [] -%}"
    "{%- set function = call['function'] if call['function'] is defined else call -%}"
    "{%- if message['content'] or not loop.first -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>\\n{\"name\": \"' + function['name'] + '\", \"arguments\": ' -}}"
    "{%- if function['arguments'] is string -%}{{- function['arguments'] -}}{%- else -%}{{- function['arguments'] | tojson -}}{%- endif -%}"
    "{{- '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>' -}}"
    "{% endgeneration %}"
    "{{- '\\n' -}}"
    "{%- elif message['role'] == 'tool' -%}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' -}}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

FALLBACK_TEMPLATES = {"chatml": CHATML}
CHATML_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def fallback_template(name: str) -> str:
    try:
        return FALLBACK_TEMPLATES[name]
    except KeyError:
        raise UserError("error.train_unknown_template", name=name, choices=", ".join(FALLBACK_TEMPLATES)) from None


# ---------------------------------------------------------------- messages as templates want them


def call_arguments(arguments: Any) -> Any:
    """A call's arguments as open templates want them: a dict (stored and sent by OpenAI clients as the JSON
    text of one). Text that is not a JSON object is left as it is."""
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return arguments
        return parsed if isinstance(parsed, dict) else arguments
    return {} if arguments is None else arguments


def template_messages(messages: list[dict]) -> list[dict]:
    """The messages as a chat template sees them: `weight` is training metadata, not text; tool calls'
    arguments are dicts."""
    rendered = []
    for message in messages:
        message = {key: value for key, value in message.items() if key != "weight"}
        if message.get("tool_calls"):
            message["tool_calls"] = [{**call, "function": {**call["function"], "arguments": call_arguments(call["function"].get("arguments"))}}
                                     for call in message["tool_calls"]]
        rendered.append(message)
    return rendered


def render_chat(tokenizer, messages: list[dict], add_generation_prompt: bool, tools: list[dict] | None = None) -> str:
    """The template's text of `messages` (stored or OpenAI shape), with `tools` shown when given."""
    kwargs = {"tools": tools} if tools else {}
    return tokenizer.apply_chat_template(template_messages(messages), tokenize=False,
                                         add_generation_prompt=add_generation_prompt, **kwargs)


# ---------------------------------------------------------------- does a template render tools?

# Two names: one only in the tools shown, one only in the call made, so each is seen to be rendered.
PROBE_LISTED = "workbench_probe_listed"
PROBE_CALLED = "workbench_probe_called"
PROBE_TOOLS = [{"type": "function", "function": {
    "name": PROBE_LISTED, "description": "A probe.",
    "parameters": {"type": "object", "properties": {"probe_value": {"type": "integer"}}, "required": ["probe_value"]}}}]
# The id has nine letters and digits: Mistral's templates refuse any other.
PROBE_MESSAGES = [
    {"role": "user", "content": "Probe?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "probe0001", "type": "function",
                                                         "function": {"name": PROBE_CALLED, "arguments": '{"probe_value": 1}'}}]},
    {"role": "tool", "tool_call_id": "probe0001", "name": PROBE_CALLED, "content": "1"},
    {"role": "assistant", "content": "Done."},
]


def _probe(tokenizer) -> str | None:
    """The template's rendering of the probe conversation, None when it fails on it (a template that
    refuses the tool role or calls has no tool support)."""
    try:
        return render_chat(tokenizer, PROBE_MESSAGES, add_generation_prompt=False, tools=PROBE_TOOLS)
    except Exception:  # noqa: BLE001 - jinja errors, a template's raise_exception, type errors: all mean "cannot"
        return None


def supports_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders the tools shown and the calls made (not ignoring them)."""
    rendered = _probe(tokenizer)
    return rendered is not None and PROBE_LISTED in rendered and PROBE_CALLED in rendered


# ---------------------------------------------------------------- how a template writes a call


@dataclass(frozen=True)
class ToolCallFormat:
    """How one family of templates writes a call in the assistant's text, and how to read calls back."""

    name: str
    markers: tuple[str, ...]  # the texts a call starts with
    anywhere: bool  # a call may follow some text; else only at the start of the answer
    detect: Callable[[str], bool]  # does the probe's rendering use this format?
    read: Callable[[str], list[dict] | None]  # the calls in text that starts at the marker, None when unreadable
    opening: Callable[[str | None], str]  # text that starts a call (of that function): a forced call's prefix

    def parse(self, text: str) -> tuple[str, list[dict]]:
        """(content, calls) of a generated answer: calls as {"name", "arguments": dict}; the text outside them is
        the content. No readable call: the whole text is the content."""
        start = self.call_start(text)
        if start is None:
            return text, []
        calls = self.read(text[start:])
        if not calls:
            return text, []
        return text[:start].strip(), calls

    def call_start(self, text: str) -> int | None:
        """Where the first call starts in `text`, None when there is none."""
        if self.anywhere:
            found = [index for index in (text.find(marker) for marker in self.markers) if index >= 0]
            return min(found) if found else None
        stripped = text.lstrip()
        return len(text) - len(stripped) if stripped.startswith(self.markers) else None


def _call(value: Any) -> dict | None:
    """One call {"name", "arguments": dict} from a decoded JSON value (Llama 3 says "parameters"), None when
    it is not one."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"].strip():
        return None
    arguments = call_arguments(value.get("arguments", value.get("parameters", {})))
    if not isinstance(arguments, dict):
        return None
    return {"name": value["name"], "arguments": arguments}


def _json_values(text: str) -> list[Any] | None:
    """Every JSON value in `text`, one after the other (separated by whitespace, `;` or `,`); None when
    something else is there."""
    decoder, values, position = json.JSONDecoder(), [], 0
    while True:
        while position < len(text) and (text[position].isspace() or text[position] in ";,"):
            position += 1
        if position >= len(text):
            return values
        try:
            value, position = decoder.raw_decode(text, position)
        except ValueError:
            return None
        values.append(value)


_HERMES_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)


def _read_hermes(text: str) -> list[dict] | None:
    calls = []
    for block in _HERMES_BLOCK.finditer(text):
        values = _json_values(block.group(1))
        call = _call(values[0]) if values and len(values) == 1 else None
        if call is None:
            return None
        calls.append(call)
    return calls or None


def _read_mistral(text: str) -> list[dict] | None:
    # "[TOOL_CALLS]" is a special token: decoded without special tokens, the answer starts at the array.
    body = text.strip().removeprefix("[TOOL_CALLS]").strip()
    values = _json_values(body)
    if not values or not isinstance(values[0], list) or len(values) != 1:
        return None
    calls = [_call(value) for value in values[0]]
    return calls if calls and all(calls) else None


def _read_llama3(text: str) -> list[dict] | None:
    body = text.strip().removeprefix("<|python_tag|>").strip()
    values = _json_values(body)
    calls = [_call(value) for value in values or []]
    return calls if calls and all(calls) else None


def _quoted(name: str | None) -> str:
    return json.dumps(name, ensure_ascii=False)


TOOL_CALL_FORMATS: tuple[ToolCallFormat, ...] = (
    # Qwen2.5, Qwen3, Hermes 2/3 and the tiny model (CHATML_TOOLS).
    ToolCallFormat(
        "hermes", ("<tool_call>",), True,
        detect=lambda rendered: PROBE_CALLED in rendered.partition("<tool_call>")[2],
        read=_read_hermes,
        opening=lambda name: "<tool_call>\n" + (f'{{"name": {_quoted(name)}, "arguments": ' if name else ""),
    ),
    # Mistral and Mixtral instruct models (v0.3 templates); [TOOL_CALLS] is a special token, left out of decoded text.
    ToolCallFormat(
        "mistral", ("[TOOL_CALLS]", "["), False,
        detect=lambda rendered: "[TOOL_CALLS]" in rendered,
        read=_read_mistral,
        opening=lambda name: "[TOOL_CALLS] [" + (f'{{"name": {_quoted(name)}, "arguments": ' if name else ""),
    ),
    # Llama 3.1, 3.2 and 3.3 instruct models (JSON tool calling).
    ToolCallFormat(
        "llama3_json", ("<|python_tag|>", "{"), False,
        detect=lambda rendered: f'"name": "{PROBE_CALLED}", "parameters": ' in rendered,
        read=_read_llama3,
        opening=lambda name: '{"name": ' + (f'{_quoted(name)}, "parameters": ' if name else '"'),
    ),
)


def tool_call_format(tokenizer) -> ToolCallFormat | None:
    """The row of TOOL_CALL_FORMATS the tokenizer's template writes calls in; None when the template has
    no tool support or writes calls in a way the table does not know."""
    rendered = _probe(tokenizer)
    if rendered is None or PROBE_LISTED not in rendered or PROBE_CALLED not in rendered:
        return None
    return next((row for row in TOOL_CALL_FORMATS if row.detect(rendered)), None)
