"""Tool calls in dataset items: the one stored shape and its checks (OpenAI's chat format).

A conversation that calls functions, as every item that has them is stored (whatever file it came from):

  {"messages": [
     {"role": "system", "content": "..."},                               optional
     {"role": "user", "content": "Resize the image to 64x64"},
     {"role": "assistant", "content": "",                                content may be empty beside calls
      "tool_calls": [{"id": "call_1", "type": "function",
                      "function": {"name": "tw.resize", "arguments": "{\"width\": 64, \"height\": 64}"}}]},
     {"role": "tool", "tool_call_id": "call_1", "content": "{\"ok\": true}"},   one per call, in order
     {"role": "assistant", "content": "Done: the image is 64x64."}],
   "tools": [{"type": "function", "function": {"name": "tw.resize", "description": "...",
              "parameters": {"type": "object", "properties": {...}, "required": [...]}}}]}

`arguments` is kept as OpenAI keeps it, a JSON text of an object (a dict given is written as one); chat
templates of open models want a dict, which train/ converts to. Every call gets an id ("call_<n>" when the
file had none) and every tool result names the call it answers: a result without an id answers the
earliest call not yet answered. The item's `tools` are the functions the model was shown; a call of a name
the tools do not define is left to the quality checks (the docs, not the file, decide what exists).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tools.core.errors import UserError

TOOL_ROLE = "tool"
FUNCTION_NAME = re.compile(r"^[A-Za-z_][\w.\-]{0,127}$")  # OpenAI: letters, digits, _ and -, at most 64; dots for module paths


def _fail(where: str, detail: str):
    raise UserError("error.invalid_messages", where=where, detail=detail)


def checked_arguments(arguments: Any, field: str, where: str) -> str:
    """A call's arguments as OpenAI keeps them: the JSON text of an object ("{}" when absent)."""
    if arguments is None or arguments == "":
        return "{}"
    if isinstance(arguments, dict):
        return json.dumps(arguments, ensure_ascii=False)
    if not isinstance(arguments, str):
        _fail(where, f"field '{field}' must be a JSON object or the JSON text of one (got {type(arguments).__name__})")
    try:
        parsed = json.loads(arguments)
    except ValueError as exc:
        _fail(where, f"field '{field}' is not valid JSON ({exc.msg} at character {exc.pos})")
    if not isinstance(parsed, dict):
        _fail(where, f"field '{field}' must hold a JSON object (got {type(parsed).__name__})")
    return arguments


def checked_tool_calls(calls: Any, field: str, where: str, next_id) -> list[dict]:
    """An assistant turn's `tool_calls`, each as {"id", "type": "function", "function": {"name", "arguments"}}."""
    if not isinstance(calls, list) or not calls:
        _fail(where, f"field '{field}' must be a non-empty list of calls")
    clean = []
    for index, call in enumerate(calls):
        at = f"{field}[{index}]"
        if not isinstance(call, dict):
            _fail(where, f"field '{at}' must be an object with 'function'")
        function = call.get("function") if isinstance(call.get("function"), dict) else call  # {"name", "arguments"} alone too
        name = function.get("name")
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            _fail(where, f"field '{at}.function.name' must be a function name (letters, digits, _ . -; got {name!r})")
        if call.get("type", "function") != "function":
            _fail(where, f"field '{at}.type' must be 'function' (got {call.get('type')!r})")
        call_id = call.get("id")
        if call_id is not None and (not isinstance(call_id, str) or not call_id.strip()):
            _fail(where, f"field '{at}.id' must be a non-empty string")
        clean.append({"id": call_id or next_id(), "type": "function",
                      "function": {"name": name, "arguments": checked_arguments(function.get("arguments"), f"{at}.function.arguments", where)}})
    return clean


def checked_tools(tools: Any, where: str = "item") -> list[dict]:
    """An item's `tools`: [{"type": "function", "function": {"name", "description"?, "parameters"?}}]; a bare
    {"name", "description", "parameters"} (legacy `functions`, LLaMA-Factory's tools column) is taken too.
    A JSON text of the list (how LLaMA-Factory files hold it) is read."""
    if isinstance(tools, str):
        try:
            tools = json.loads(tools) if tools.strip() else []
        except ValueError as exc:
            _fail(where, f"field 'tools' is not valid JSON ({exc.msg} at character {exc.pos})")
    if not isinstance(tools, list):
        _fail(where, "field 'tools' must be a list of function definitions")
    clean, names = [], set()
    for index, tool in enumerate(tools):
        at = f"tools[{index}]"
        if not isinstance(tool, dict):
            _fail(where, f"field '{at}' must be an object")
        if tool.get("type", "function") != "function":
            _fail(where, f"field '{at}.type' must be 'function' (got {tool.get('type')!r})")
        function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        name = function.get("name")
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            _fail(where, f"field '{at}.function.name' must be a function name (got {name!r})")
        if name in names:
            _fail(where, f"field '{at}.function.name' defines {name!r} twice")
        names.add(name)
        definition: dict = {"name": name}
        description = function.get("description")
        if description is not None:
            if not isinstance(description, str):
                _fail(where, f"field '{at}.function.description' must be a string")
            definition["description"] = description
        parameters = function.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                _fail(where, f"field '{at}.function.parameters' must be a JSON schema object")
            definition["parameters"] = parameters
        clean.append({"type": "function", "function": definition})
    return clean


def has_tool_calls(messages: list[dict]) -> bool:
    return any(message.get("tool_calls") or message["role"] == TOOL_ROLE for message in messages)


def calls_of(messages: list[dict]) -> list[tuple[str, dict | None]]:
    """(function name, parsed arguments or None when they are not a JSON object) of every call, in order."""
    found = []
    for message in messages:
        for call in message.get("tool_calls") or []:
            try:
                arguments = json.loads(call["function"]["arguments"])
            except ValueError:
                arguments = None
            found.append((call["function"]["name"], arguments if isinstance(arguments, dict) else None))
    return found


def call_text(call: dict) -> str:
    """One call as a reader sees it: name(arguments)."""
    return f"{call['function']['name']}({call['function']['arguments']})"


def answer_text(message: dict) -> str:
    """An assistant turn as text for tables, checks and previews: its content, then its calls."""
    parts = [message.get("content") or ""] + [call_text(call) for call in message.get("tool_calls") or []]
    return "\n".join(part for part in parts if part)


def defined_names(tools: list[dict] | None) -> set[str]:
    return {tool["function"]["name"] for tool in tools or []}
